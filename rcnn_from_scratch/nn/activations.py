"""``ReLU``: ``max(x, 0)``, a forward/backward pair and a ``Module`` around it (the contract is in
``module.py``)."""

from __future__ import annotations

import numpy as np

from .module import Module

__all__ = ["relu_forward", "relu_backward", "ReLU"]


def relu_forward(x) -> tuple[np.ndarray, np.ndarray]:
    """``max(x, 0)`` elementwise, any shape and float dtype.

    Returns:
        ``(out, positive)``: the cache is the boolean mask ``x > 0``.
    """
    x = np.asarray(x)
    positive = x > 0
    return np.maximum(x, 0), positive


def relu_backward(dout, positive: np.ndarray) -> np.ndarray:
    """The gradient passes where the input was positive; 0 at exactly 0, as in PyTorch."""
    return np.asarray(dout) * positive


class ReLU(Module):
    """``ReLU()``: no parameters."""

    def _forward(self, x):
        return relu_forward(x)

    def _backward(self, dout, cache):
        return relu_backward(dout, cache)
