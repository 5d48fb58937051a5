"""Numerical gradients by central differences in float64: the reference every backward is tested
against, in this package and by the tests of every later stage.

    df/dx[i] ~= (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

The truncation error is ``O(eps^2)`` and the rounding error ``O(1e-16 / eps)``; ``eps = 1e-6`` in
float64 balances them at about ``1e-10`` relative, far below the ``1e-6`` the tests demand. Slow by
design (two evaluations per entry): for small inputs only. Keep inputs off kinks (no ReLU input at 0,
no max-pool ties, no ``|x| = beta`` in smooth L1), where a central difference straddles two slopes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .module import Module

__all__ = ["numerical_gradient", "relative_error", "check_gradient", "check_module_gradients"]


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6):
    """``df/dx`` of a scalar function, one entry at a time.

    Args:
        f: called as ``f(x)``; it may also ignore its argument and read ``x`` through a closure,
            since ``x`` is changed **in place** (and restored after each entry).
        x: a float64 array (float32 would drown the difference in rounding).
        eps: the step.

    Returns:
        A float64 array of the shape of ``x``.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"x must be a float64 array (changed in place); got {got}")
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = float(f(x))
        x[i] = old - eps
        down = float(f(x))
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    """``max |a - b| / max(|a| + |b|)``; 0 for two zero arrays: a scale-free distance of gradients.

    Normalising by the largest entry (not entry by entry) keeps tiny entries, where both sides are
    mostly rounding noise, from dominating.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have one shape; got {a.shape} and {b.shape}")
    scale = np.max(np.abs(a) + np.abs(b), initial=0.0)
    return float(np.max(np.abs(a - b), initial=0.0) / scale) if scale > 0 else 0.0


def check_gradient(f, x: np.ndarray, analytic, eps: float = 1e-6, tol: float = 1e-6) -> float:
    """Compare an ``analytic`` gradient of ``f`` at ``x`` with the numerical one.

    Returns:
        The relative error.

    Raises:
        AssertionError: if the error exceeds ``tol`` (meant for tests), with both gradients' norms.
    """
    numeric = numerical_gradient(f, x, eps)
    err = relative_error(analytic, numeric)
    if not err < tol:
        raise AssertionError(
            f"gradient check failed: relative error {err:.3g} > {tol:g} "
            f"(|analytic| = {np.linalg.norm(analytic):.4g}, |numeric| = {np.linalg.norm(numeric):.4g})"
        )
    return err


def check_module_gradients(module: Module, inputs, rng: np.random.Generator, eps: float = 1e-6):
    """Relative errors of a module's backward against numerical gradients, in float64.

    Uses the loss ``sum(forward(*inputs) * r)`` with a random upstream gradient ``r``, so that every
    output entry matters with its own weight. The module's parameters and the inputs must be float64
    (``module.to(np.float64)``).

    Returns:
        ``{"input": err, "<param name>": err, ...}``; ``"input"`` is left out when the module's
        ``backward`` returns ``None`` (a first layer that computes no image gradient).
    """
    x = inputs[0]
    for name, p in [("input", x), *module.named_parameters()]:
        if np.asarray(p.data if hasattr(p, "data") else p).dtype != np.float64:
            raise ValueError(
                f"{name} must be float64 for a gradient check; call module.to(np.float64)"
            )
    r = rng.standard_normal(module.forward(*inputs).shape)

    def loss(_=None) -> float:
        return float(np.sum(module.forward(*inputs) * r))

    module.zero_grad()
    module.forward(*inputs)
    dx = module.backward(r)
    trained = [(name, p) for name, p in module.named_parameters() if p.grad is not None]
    analytic = {name: p.grad.copy() for name, p in trained}
    errors = {}
    if dx is not None:
        errors["input"] = relative_error(dx, numerical_gradient(loss, x, eps))
    for name, p in trained:  # frozen parameters (``requires_grad=False``) have no gradient
        errors[name] = relative_error(analytic[name], numerical_gradient(loss, p.data, eps))
    return errors
