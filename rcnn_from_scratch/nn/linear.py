"""``Linear`` (a fully connected layer) and ``Flatten``, each a forward/backward pair and a
``Module`` around it (the contract is in ``module.py``)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .init import kaiming_normal
from .module import Module, Parameter

__all__ = ["linear_forward", "linear_backward", "Linear", "Flatten"]


class LinearCache(NamedTuple):
    x: np.ndarray  # (N, D_in)
    weight: np.ndarray  # (D_out, D_in)


def linear_forward(x, weight, bias=None) -> tuple[np.ndarray, LinearCache]:
    """``x @ weight.T + bias``.

    Args:
        x: ``(N, D_in)``; ``weight``: ``(D_out, D_in)`` (PyTorch's layout); ``bias``: ``(D_out,)``
            or ``None``.

    Returns:
        ``(out (N, D_out), cache)``. ``N = 0`` gives a ``(0, D_out)`` output.
    """
    x, weight = np.asarray(x), np.asarray(weight)
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must have shape (N, {weight.shape[1]}); got {x.shape}")
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out, LinearCache(x, weight)


def linear_backward(dout, cache: LinearCache):
    """Gradients of :func:`linear_forward`: ``(dx (N, D_in), dweight (D_out, D_in), dbias (D_out,))``."""
    dout = np.asarray(dout)
    return dout @ cache.weight, dout.T @ cache.x, dout.sum(axis=0)


class Linear(Module):
    """``Linear(in_features, out_features, bias=True, rng=None)``.

    Parameters ``weight`` ``(out_features, in_features)``, He-normal, and ``bias``, zero; float32.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None):
        self.weight = Parameter(kaiming_normal((out_features, in_features), rng))
        self.bias = Parameter(np.zeros(out_features, np.float32)) if bias else None

    def _forward(self, x):
        return linear_forward(x, self.weight.data, None if self.bias is None else self.bias.data)

    def _backward(self, dout, cache):
        dx, dw, db = linear_backward(dout, cache)
        self.weight.grad += dw
        if self.bias is not None:
            self.bias.grad += db
        return dx


class Flatten(Module):
    """``(N, ...)`` -> ``(N, prod(...))``, as ``torch.flatten(x, 1)``; no parameters."""

    def _forward(self, x):
        x = np.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"x must have a batch axis; got shape {x.shape}")
        return x.reshape(len(x), -1), x.shape

    def _backward(self, dout, shape):
        return np.asarray(dout).reshape(shape)
