"""The detectors' losses, each returning ``(loss, gradient with respect to its first input)``.

* :func:`softmax_cross_entropy`: the classification loss of the RoI heads (K + 1 classes);
* :func:`smooth_l1`: Fast R-CNN's box-regression loss, quadratic near 0 and linear beyond ``beta``;
* :func:`binary_cross_entropy_with_logits`: the RPN's objectness loss and Mask R-CNN's per-pixel loss.

Reductions: ``"sum"`` adds the (weighted) terms; ``"mean"`` divides that sum by the sum of the weights
(with no weights: the number of terms, PyTorch's default; ignored labels count 0). A loss over zero
terms, or whose weights are all 0, is 0 with a zero gradient, never the NaN of an empty mean. The
loss is a Python float; the gradient has the shape and float dtype of the first input.
"""

from __future__ import annotations

import numpy as np

__all__ = ["softmax_cross_entropy", "smooth_l1", "binary_cross_entropy_with_logits"]


def _float_array(x, name: str) -> np.ndarray:
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return x


def _weights(weights, shape, dtype, name: str = "weights") -> np.ndarray:
    """Per-term weights broadcast to ``shape`` (all ones when ``None``)."""
    if weights is None:
        return np.ones(shape, dtype)
    w = np.asarray(weights, dtype)
    try:
        return np.broadcast_to(w, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {w.shape} does not broadcast to {shape}") from None


def _reduce(values: np.ndarray, weights: np.ndarray, reduction: str) -> tuple[float, np.ndarray]:
    """Weighted sum or mean of per-term losses ``values``; also returns each term's factor in it
    (``weights / normaliser``), by which the per-term gradients are multiplied."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")
    scale = 1.0
    if reduction == "mean":
        denom = float(np.sum(weights, dtype=np.float64))
        scale = 1.0 / denom if denom > 0 else 0.0
    loss = float(np.sum(values * weights, dtype=np.float64)) * scale
    return loss, weights * np.asarray(scale, weights.dtype)


def softmax_cross_entropy(logits, labels, weights=None, ignore_index: int = -1, reduction="mean"):
    """Cross-entropy of softmax probabilities, ``-log p[label]``, computed by log-sum-exp.

    ``log p_k = z_k - m - log sum_j exp(z_j - m)`` with ``m = max_j z_j``: no exponential overflows,
    whatever the logits.

    Args:
        logits: ``(N, K)`` class scores (float32 or float64).
        labels: ``(N,)`` ints in ``[0, K)``, or ``ignore_index`` for a sample that does not count.
        weights: optional ``(N,)`` per-sample weights.
        ignore_index: the label of ignored samples (torch's default is -100; ours -1, the matchers'
            "ignore" label).
        reduction: ``"mean"`` (over the weights of non-ignored samples, as PyTorch) or ``"sum"``.

    Returns:
        ``(loss, dlogits (N, K))``; ``dlogits = (softmax - onehot) * weight / normaliser`` and 0 in
        ignored rows.
    """
    z = _float_array(logits, "logits")
    labels = np.asarray(labels)
    if z.ndim != 2 or labels.shape != (len(z),):
        raise ValueError(f"logits must be (N, K) and labels (N,); got {z.shape} and {labels.shape}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers; got dtype {labels.dtype}")
    labels = labels.astype(np.int64)
    used = labels != ignore_index
    if np.any(used & ((labels < 0) | (labels >= z.shape[1]))):
        raise ValueError(f"labels must lie in [0, {z.shape[1]}) or equal ignore_index")
    w = _weights(weights, (len(z),), z.dtype) * used
    rows = np.arange(len(z))
    safe = np.where(used, labels, 0)
    shifted = z - z.max(axis=1, keepdims=True, initial=-np.inf)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, K)
    loss, factor = _reduce(-log_p[rows, safe], w, reduction)
    grad = np.exp(log_p)  # softmax
    grad[rows, safe] -= 1.0
    return loss, (grad * factor[:, None]).astype(z.dtype, copy=False)


def smooth_l1(pred, target, beta: float = 1.0, weights=None, reduction="mean"):
    """Fast R-CNN's smooth L1 of ``x = pred - target``: ``0.5 x^2 / beta`` where ``|x| < beta``, else
    ``|x| - 0.5 beta``.

    ``beta = 1`` is the paper's formula; torchvision's detectors use ``beta = 1/9`` with
    ``reduction="sum"`` divided by the number of sampled RoIs; ``beta = 0`` is plain L1. Quadratic near
    0 and linear beyond ``beta``, so large early box errors do not blow up the gradients as L2 would.

    Args:
        pred, target: arrays of one shape, e.g. ``(K, 4)`` deltas.
        beta: the width of the quadratic zone, ``>= 0``.
        weights: optional, broadcastable to that shape (e.g. ``(K, 1)`` foreground masks).
        reduction: ``"mean"`` (PyTorch's default) or ``"sum"``.

    Returns:
        ``(loss, dpred)``; ``dpred = clip(x / beta, -1, 1)`` times the weights / normaliser.
    """
    p = _float_array(pred, "pred")
    t = np.asarray(target, dtype=p.dtype)
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have one shape; got {p.shape} and {t.shape}")
    if not beta >= 0:
        raise ValueError(f"beta must be >= 0; got {beta}")
    x = p - t
    ax = np.abs(x)
    if beta > 0:
        small = ax < beta
        values = np.where(small, 0.5 * x * x / beta, ax - 0.5 * beta)
        grad = np.where(small, x / beta, np.sign(x))
    else:
        values, grad = ax, np.sign(x)
    loss, factor = _reduce(values, _weights(weights, p.shape, p.dtype), reduction)
    return loss, (grad * factor).astype(p.dtype, copy=False)


def binary_cross_entropy_with_logits(logits, targets, weights=None, reduction="mean"):
    """``-t log sigmoid(x) - (1 - t) log(1 - sigmoid(x))`` on logits ``x``.

    Computed in the stable form ``max(x, 0) - x t + log(1 + exp(-|x|))``: no exponential of a large
    number and no ``log(0)``, so it is exact for any logit (``|x| > 50`` included, where
    ``sigmoid(x)`` rounds to 0 or 1).

    Args:
        logits, targets: arrays of one shape; targets in ``[0, 1]``.
        weights: optional, broadcastable to that shape (0 drops a term, e.g. unsampled anchors).
        reduction: ``"mean"`` or ``"sum"``.

    Returns:
        ``(loss, dlogits)`` with ``dlogits = (sigmoid(x) - t) * weight / normaliser``.
    """
    x = _float_array(logits, "logits")
    t = np.asarray(targets, dtype=x.dtype)
    if x.shape != t.shape:
        raise ValueError(f"logits and targets must have one shape; got {x.shape} and {t.shape}")
    values = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    sigmoid = 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|
    loss, factor = _reduce(values, _weights(weights, x.shape, x.dtype), reduction)
    return loss, ((sigmoid - t) * factor).astype(x.dtype, copy=False)
