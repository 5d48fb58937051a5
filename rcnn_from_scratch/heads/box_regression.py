"""R-CNN's bounding-box regression: ridge regression from CNN features to box deltas, per class.

For each class, training pairs are proposals with IoU > 0.6 with a ground-truth box of that class;
the targets are the R-CNN deltas (``BoxCoder`` with weights 1, 1, 1, 1) that move the proposal onto it.
The weights solve the ridge problem in closed form (lambda = 1000 in the paper, for its pool5 features)::

    W = (X^T X + lambda I)^-1 X^T T        X: (n, F + 1) features with a column of ones
"""

from __future__ import annotations

import numpy as np

from ..box_coder import BoxCoder

__all__ = ["fit_ridge", "RidgeBoxRegressor"]


def fit_ridge(x, t, lam: float) -> np.ndarray:
    """Ridge regression with an unregularised bias: ``(n, F)``, ``(n, 4)`` -> ``(F + 1, 4)``."""
    x = np.asarray(x, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    xb = np.hstack([x, np.ones((len(x), 1))])
    reg = lam * np.eye(xb.shape[1])
    reg[-1, -1] = 0.0  # the bias is not pulled towards 0
    return np.linalg.solve(xb.T @ xb + reg, xb.T @ t)


class RidgeBoxRegressor:
    """Class-specific ridge regressors; a class with no training pair keeps its proposals as they are.

    Args:
        num_classes: ``K`` object classes (1..K).
        lam: the ridge penalty.
    """

    def __init__(self, num_classes: int, lam: float = 1000.0):
        self.num_classes = int(num_classes)
        self.lam = float(lam)
        self.coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.weights: np.ndarray | None = None  # (K, F + 1, 4)

    def fit(self, features, proposals, gt_boxes, labels) -> RidgeBoxRegressor:
        """Fit from pairs already selected (IoU > 0.6).

        Args:
            features: ``(n, F)`` features of the proposals; ``proposals``: ``(n, 4)``;
            gt_boxes: ``(n, 4)`` the ground truth each proposal is paired with; ``labels``: ``(n,)``
            classes ``1..K``.
        """
        x = np.asarray(features, dtype=np.float64)
        targets = self.coder.encode_single(
            np.asarray(gt_boxes, np.float64), np.asarray(proposals, np.float64)
        )
        labels = np.asarray(labels)
        self.weights = np.zeros((self.num_classes, x.shape[1] + 1, 4))
        for k in range(1, self.num_classes + 1):
            members = labels == k
            if members.any():
                self.weights[k - 1] = fit_ridge(x[members], targets[members], self.lam)
        return self

    def predict(self, features, proposals, labels) -> np.ndarray:
        """Refined boxes: ``(n, 4)`` proposals moved by their class's regressor."""
        if self.weights is None:
            raise RuntimeError("RidgeBoxRegressor.predict called before fit or load")
        x = np.asarray(features, dtype=np.float64)
        xb = np.hstack([x, np.ones((len(x), 1))])
        labels = np.asarray(labels)
        deltas = (
            np.einsum("nf,nfc->nc", xb, self.weights[labels - 1]) if len(x) else np.zeros((0, 4))
        )
        return self.coder.decode_single(deltas, np.asarray(proposals, np.float64)).astype(
            np.float32
        )
