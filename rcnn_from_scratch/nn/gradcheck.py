"""Numerical gradients by central differences in float64: the reference every backward is tested
against. Slow by design (two function calls per entry); for tests on small inputs only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .module import Module

__all__ = ["numerical_gradient", "relative_error", "check_module_gradients"]


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """``df/dx`` of a scalar function of ``x`` (changed in place and restored), entry by entry."""
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f()
        x[i] = old - eps
        down = f()
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    """``max |a - b| / max(|a| + |b|)``, 0 for two zero arrays: scale-free agreement of gradients."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.max(np.abs(a) + np.abs(b), initial=0.0)
    return float(np.max(np.abs(a - b), initial=0.0) / scale) if scale > 0 else 0.0


def check_module_gradients(module: Module, inputs, rng: np.random.Generator, eps: float = 1e-6):
    """Relative errors of a module's backward against numerical gradients, in float64.

    Uses the loss ``sum(forward(*inputs) * r)`` with a fixed random ``r``, so every output entry
    matters. The module's parameters must already be float64 (``module.to(np.float64)``).

    Returns:
        ``{"input": err, "<param name>": err, ...}``.
    """
    x = inputs[0]
    r = rng.standard_normal(module.forward(*inputs).shape)

    def loss() -> float:
        return float(np.sum(module.forward(*inputs) * r))

    module.zero_grad()
    module.forward(*inputs)
    dx = module.backward(r)
    errors = {"input": relative_error(dx, numerical_gradient(loss, x, eps))}
    analytic = {name: p.grad.copy() for name, p in module.named_parameters()}
    for name, p in module.named_parameters():
        errors[name] = relative_error(analytic[name], numerical_gradient(loss, p.data, eps))
    module._cache = None
    return errors
