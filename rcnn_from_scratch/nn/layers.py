"""The small layers: ``Linear``, ``ReLU``, ``Flatten`` and ``MaxPool2d``, each a forward/backward pair
and a ``Module`` around it."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .init import kaiming_normal
from .module import Module, Parameter

__all__ = [
    "linear_forward",
    "linear_backward",
    "relu_forward",
    "relu_backward",
    "max_pool2d_forward",
    "max_pool2d_backward",
    "Linear",
    "ReLU",
    "Flatten",
    "MaxPool2d",
]


# --- Linear -----------------------------------------------------------------------------------------


class LinearCache(NamedTuple):
    x: np.ndarray  # (N, D_in)
    weight: np.ndarray  # (D_out, D_in)


def linear_forward(x, weight, bias):
    """``x @ weight.T + bias``: ``(N, D_in)`` -> ``(N, D_out)``; weight ``(D_out, D_in)`` as in PyTorch."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"x must have shape (N, {weight.shape[1]}); got {x.shape}")
    out = x @ weight.T
    if bias is not None:
        out += bias
    return out, LinearCache(x, weight)


def linear_backward(dout, cache: LinearCache):
    """``(dx (N, D_in), dweight (D_out, D_in), dbias (D_out,))``."""
    return dout @ cache.weight, dout.T @ cache.x, dout.sum(axis=0)


class Linear(Module):
    """``Linear(in_features, out_features, bias=True, rng=None)``, He-initialised, float32."""

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


# --- ReLU and Flatten -------------------------------------------------------------------------------


def relu_forward(x):
    """``max(x, 0)``; the cache is the mask of positive inputs."""
    positive = x > 0
    return x * positive, positive


def relu_backward(dout, positive):
    """The gradient passes where the input was positive (0 at exactly 0, as in PyTorch)."""
    return dout * positive


class ReLU(Module):
    def _forward(self, x):
        return relu_forward(x)

    def _backward(self, dout, cache):
        return relu_backward(dout, cache)


class Flatten(Module):
    """``(N, ...)`` -> ``(N, prod(...))``, as ``torch.flatten(x, 1)``."""

    def _forward(self, x):
        return x.reshape(len(x), -1), x.shape

    def _backward(self, dout, shape):
        return dout.reshape(shape)


# --- MaxPool2d --------------------------------------------------------------------------------------


class MaxPoolCache(NamedTuple):
    argmax: np.ndarray  # (N, C, Ho, Wo) flat index into the padded H x W plane
    padded_hw: tuple[int, int]
    x_shape: tuple[int, int, int, int]
    padding: int


def max_pool2d_forward(x, kernel_size: int, stride: int | None = None, padding: int = 0):
    """Max over ``k x k`` windows, ``stride`` apart (default ``k``); padding reads ``-inf``.

    A running maximum over the ``k * k`` kernel offsets: each step compares one strided view of the
    input with the best so far, so no window is ever copied.

    Args:
        x: ``(N, C, H, W)``.

    Returns:
        ``(out (N, C, Ho, Wo), cache)``; ``Ho = (H + 2 p - k) // s + 1``. Ties go to the first maximum
        in row-major order, so the backward routes to exactly one input.
    """
    k, s, p = int(kernel_size), int(stride or kernel_size), int(padding)
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, C, H, W); got {x.shape}")
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf) if p else x
    Hp, Wp = xp.shape[2:]
    Ho, Wo = (Hp - k) // s + 1, (Wp - k) // s + 1
    best = xp[:, :, : s * (Ho - 1) + 1 : s, : s * (Wo - 1) + 1 : s].copy()
    offset = np.zeros(best.shape, np.int64)  # flat offset i * Wp + j of the best so far
    for i in range(k):
        for j in range(k):
            if i == j == 0:
                continue
            view = xp[:, :, i : i + s * (Ho - 1) + 1 : s, j : j + s * (Wo - 1) + 1 : s]
            better = view > best  # strict: the first maximum wins ties
            np.copyto(best, view, where=better)
            np.copyto(offset, i * Wp + j, where=better)
    corner = (np.arange(Ho)[:, None] * s) * Wp + np.arange(Wo)[None, :] * s  # window origins
    return best, MaxPoolCache(offset + corner, (Hp, Wp), x.shape, p)


def max_pool2d_backward(dout, cache: MaxPoolCache):
    """Each output gradient goes to its window's maximum (added up where windows overlap)."""
    N, C, H, W = cache.x_shape
    Hp, Wp = cache.padded_hw
    plane = np.arange(N * C)[:, None] * (Hp * Wp)  # offset of each (n, c) plane
    index = (cache.argmax.reshape(N * C, -1) + plane).ravel()
    grad = np.bincount(
        index, weights=np.asarray(dout, np.float64).ravel(), minlength=N * C * Hp * Wp
    )
    grad = grad.reshape(N, C, Hp, Wp).astype(dout.dtype)
    p = cache.padding
    return grad[:, :, p : p + H, p : p + W] if p else grad


class MaxPool2d(Module):
    """``MaxPool2d(kernel_size, stride=None, padding=0)``, PyTorch's semantics."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def _forward(self, x):
        return max_pool2d_forward(x, self.kernel_size, self.stride, self.padding)

    def _backward(self, dout, cache):
        return max_pool2d_backward(dout, cache)
