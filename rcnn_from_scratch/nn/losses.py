"""The detectors' losses, each returning ``(loss, gradient with respect to its first input)``.

* :func:`softmax_cross_entropy`: the classification loss of the RoI heads (K + 1 classes);
* :func:`smooth_l1`: Fast R-CNN's box-regression loss, quadratic near 0 and linear beyond ``beta``;
* :func:`binary_cross_entropy_with_logits`: the RPN's objectness loss and Mask R-CNN's per-pixel loss.

``reduction="mean"`` divides by the number of (weighted, non-ignored) terms; ``"sum"`` does not. A loss
over zero terms is 0 with a zero gradient, never the NaN of an empty mean.
"""

from __future__ import annotations

import numpy as np

__all__ = ["softmax_cross_entropy", "smooth_l1", "binary_cross_entropy_with_logits"]


def _reduce(values: np.ndarray, weights: np.ndarray, reduction: str) -> tuple[float, np.ndarray]:
    """Weighted sum or mean of per-term losses ``values``; also returns each term's factor in it
    (``weights / normaliser``), by which the per-term gradients are multiplied."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")
    scale = 1.0
    if reduction == "mean":
        denom = float(np.sum(weights))
        scale = 1.0 / denom if denom > 0 else 0.0
    return float(np.sum(values * weights)) * scale, weights * scale


def softmax_cross_entropy(logits, labels, weights=None, ignore_index: int = -1, reduction="mean"):
    """Cross-entropy of softmax probabilities: ``-log p[label]``, computed by log-sum-exp.

    Args:
        logits: ``(N, K)`` class scores; ``labels``: ``(N,)`` ints in ``[0, K)`` or ``ignore_index``.
        weights: optional ``(N,)`` per-sample weights.
        reduction: ``"mean"`` (over the weights of non-ignored samples) or ``"sum"``.

    Returns:
        ``(loss, dlogits (N, K))``; ``dlogits = (softmax - onehot) * weight / normaliser``.
    """
    z = np.asarray(logits)
    labels = np.asarray(labels).astype(np.int64)
    if z.ndim != 2 or labels.shape != (len(z),):
        raise ValueError(f"logits must be (N, K) and labels (N,); got {z.shape} and {labels.shape}")
    used = labels != ignore_index
    if np.any(used & ((labels < 0) | (labels >= z.shape[1]))):
        raise ValueError(f"labels must lie in [0, {z.shape[1]}) or equal ignore_index")
    w = np.ones(len(z), z.dtype) if weights is None else np.asarray(weights, z.dtype)
    w = w * used
    shifted = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    log_p = shifted - log_norm  # (N, K) log-probabilities
    safe = np.where(used, labels, 0)
    per_sample = -log_p[np.arange(len(z)), safe]
    grad = np.exp(log_p)
    grad[np.arange(len(z)), safe] -= 1.0
    loss, factor = _reduce(per_sample, w, reduction)
    return loss, (grad * factor[:, None]).astype(z.dtype, copy=False)


def smooth_l1(pred, target, beta: float = 1.0, weights=None, reduction="sum"):
    """Fast R-CNN's smooth L1: ``0.5 x^2 / beta`` where ``|x| < beta``, else ``|x| - 0.5 beta``.

    With ``beta = 1`` this is the paper's formula; torchvision's detectors use ``beta = 1/9``;
    ``beta = 0`` is plain L1. Less sensitive to outliers than L2, so large early box errors do not
    blow up the gradients.

    Args:
        pred, target: arrays of one shape, e.g. ``(K, 4)`` deltas.
        weights: optional array broadcastable to that shape (e.g. ``(K, 1)`` foreground masks).
        reduction: ``"sum"`` (the detectors then divide by the number of sampled RoIs) or ``"mean"``.

    Returns:
        ``(loss, dpred)``.
    """
    p, t = np.asarray(pred), np.asarray(target, dtype=np.asarray(pred).dtype)
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have one shape; got {p.shape} and {t.shape}")
    x = p - t
    ax = np.abs(x)
    if beta > 0:
        small = ax < beta
        values = np.where(small, 0.5 * x * x / beta, ax - 0.5 * beta)
        grad = np.where(small, x / beta, np.sign(x))
    else:
        values, grad = ax, np.sign(x)
    w = (
        np.ones_like(p)
        if weights is None
        else np.broadcast_to(np.asarray(weights, p.dtype), p.shape)
    )
    loss, factor = _reduce(values, w, reduction)
    return loss, (grad * factor).astype(p.dtype, copy=False)


def binary_cross_entropy_with_logits(logits, targets, weights=None, reduction="mean"):
    """``-t log sigmoid(x) - (1 - t) log(1 - sigmoid(x))``, in the stable form
    ``max(x, 0) - x t + log(1 + exp(-|x|))``, exact for any logit (also ``|x| > 50``).

    Args:
        logits, targets: arrays of one shape; targets in ``[0, 1]``.
        weights: optional, broadcastable to that shape (0 drops a term, e.g. unsampled anchors).

    Returns:
        ``(loss, dlogits)`` with ``dlogits = (sigmoid(x) - t) * weight / normaliser``.
    """
    x = np.asarray(logits)
    t = np.asarray(targets, dtype=x.dtype)
    if x.shape != t.shape:
        raise ValueError(f"logits and targets must have one shape; got {x.shape} and {t.shape}")
    values = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
    sigmoid = 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|
    w = (
        np.ones_like(x)
        if weights is None
        else np.broadcast_to(np.asarray(weights, x.dtype), x.shape)
    )
    loss, factor = _reduce(values, w, reduction)
    return loss, ((sigmoid - t) * factor).astype(x.dtype, copy=False)
