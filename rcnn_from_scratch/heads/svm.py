"""R-CNN's classifiers: one linear SVM per class on CNN features, with hard-negative mining.

R-CNN fine-tunes its CNN as a softmax classifier, then throws the softmax away and trains one linear
SVM per class on the features of the last hidden layer: positives are the ground-truth boxes only,
negatives are proposals with IoU < 0.3 with every object of that class, and proposals in between are
ignored. Negatives vastly outnumber positives, so training starts from a random subset and repeatedly
adds the *hard* negatives, the ones the current SVM scores inside the margin (score > -1).

The SVM is L2-regularised with the squared hinge loss (liblinear's default, "L2-loss SVC"), so the
objective is smooth and L-BFGS solves it in a few dozen steps::

    min_w,b   0.5 |w|^2 + C * sum_i max(0, 1 - y_i (w . x_i + b))^2
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize

__all__ = ["LinearSVM", "train_linear_svm", "train_svm_with_hard_negatives", "SVMHead"]


class LinearSVM(NamedTuple):
    """A trained linear SVM: ``score(x) = x @ weight + bias``."""

    weight: np.ndarray  # (F,) float64
    bias: float

    def score(self, features) -> np.ndarray:
        """``(n, F)`` features -> ``(n,)`` scores (positive: the class)."""
        return np.asarray(features, dtype=np.float64) @ self.weight + self.bias


def _squared_hinge(params: np.ndarray, x: np.ndarray, y: np.ndarray, c: float):
    """Objective and gradient of the L2-loss SVM; the bias is not regularised."""
    w, b = params[:-1], params[-1]
    slack = np.maximum(0.0, 1.0 - y * (x @ w + b))  # (n,)
    loss = 0.5 * w @ w + c * slack @ slack
    g = -2.0 * c * slack * y  # d loss / d score
    return loss, np.concatenate([w + x.T @ g, [g.sum()]])


def train_linear_svm(features, labels, c: float = 1.0, max_iter: int = 500) -> LinearSVM:
    """Fit an L2-regularised, squared-hinge linear SVM.

    Args:
        features: ``(n, F)`` float array.
        labels: ``(n,)`` with +1 (positive) and -1 (negative); both must occur.
        c: weight of the data term against the regulariser (liblinear's ``C``).

    Returns:
        :class:`LinearSVM`.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features must be (n, F) with one label each; got {x.shape}, {y.shape}")
    if not (np.any(y == 1) and np.any(y == -1)) or not np.all(np.abs(y) == 1):
        raise ValueError("labels must be +1 or -1, and both classes must occur")
    result = minimize(
        _squared_hinge, np.zeros(x.shape[1] + 1), args=(x, y, c), jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter},
    )  # fmt: skip
    return LinearSVM(result.x[:-1].copy(), float(result.x[-1]))


def train_svm_with_hard_negatives(
    positives,
    negatives,
    rng: np.random.Generator,
    c: float = 1.0,
    initial_negatives: int = 1000,
    rounds: int = 3,
    max_cache: int = 20000,
) -> tuple[LinearSVM, list[int]]:
    """Train on all positives and a growing cache of hard negatives.

    Each round scores every negative with the current SVM and adds those inside the margin
    (score > -1) to the cache; easy ones (score < -1.2) leave it, as in R-CNN's code.

    Args:
        positives: ``(P, F)`` features of positives; ``negatives``: ``(Q, F)`` features of negatives.
        rng: picks the first random negatives.

    Returns:
        ``(svm, cache_sizes)``: the final SVM and the negative cache's size in each round.
    """
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("hard-negative mining needs at least one positive and one negative")
    cache = rng.choice(len(neg), min(initial_negatives, len(neg)), replace=False)
    sizes = []
    svm = None
    for _ in range(rounds):
        sizes.append(len(cache))
        x = np.concatenate([pos, neg[cache]])
        y = np.concatenate([np.ones(len(pos)), -np.ones(len(cache))])
        svm = train_linear_svm(x, y, c)
        scores = svm.score(neg)
        hard = np.flatnonzero(scores > -1.0)
        kept = cache[scores[cache] >= -1.2]
        new = np.union1d(kept, hard)
        if len(new) > max_cache:  # keep the hardest
            new = new[np.argsort(-scores[new])[:max_cache]]
        if np.array_equal(np.sort(new), np.sort(cache)):
            break
        cache = new
    return svm, sizes


class SVMHead:
    """One SVM per class; ``scores(features) -> (n, K + 1)`` with column 0 the background (zero)."""

    def __init__(self, svms: list[LinearSVM]):
        self.svms = list(svms)

    @property
    def num_classes(self) -> int:
        return len(self.svms)

    def scores(self, features) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        if not self.svms:
            return np.zeros((len(x), 1))
        w = np.stack([s.weight for s in self.svms], axis=1)  # (F, K)
        b = np.array([s.bias for s in self.svms])
        return np.concatenate([np.zeros((len(x), 1)), x @ w + b], axis=1)

    def state(self) -> dict[str, np.ndarray]:
        """Arrays to save: ``svm.weight`` ``(F, K)`` and ``svm.bias`` ``(K,)``."""
        return {
            "svm.weight": np.stack([s.weight for s in self.svms], axis=1).astype(np.float32),
            "svm.bias": np.array([s.bias for s in self.svms], np.float32),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> SVMHead:
        w, b = np.asarray(state["svm.weight"]), np.asarray(state["svm.bias"])
        return cls([LinearSVM(w[:, k].astype(np.float64), float(b[k])) for k in range(len(b))])
