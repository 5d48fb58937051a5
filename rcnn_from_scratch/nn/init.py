"""Weight initialisation. He (Kaiming) normal: ``std = sqrt(2 / fan_in)``, so that a ReLU network keeps
the variance of its activations from layer to layer (He et al., 2015).

Randomness always comes from an explicit ``np.random.Generator`` (never NumPy's global state), so the
same seed gives bit-identical parameters.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kaiming_normal", "make_rng"]


def make_rng(rng=None) -> np.random.Generator:
    """A ``np.random.Generator``: given one, it is returned as it is (so that layers built in turn
    draw from one stream); an int seeds a new one; ``None`` means seed 0, so that even a layer built
    without a seed is reproducible."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is not None and not isinstance(rng, (int, np.integer)):
        raise ValueError(f"rng must be a np.random.Generator, an int seed or None; got {rng!r}")
    return np.random.default_rng(0 if rng is None else int(rng))


def kaiming_normal(shape, rng=None, dtype=np.float32, fan_in: int | None = None) -> np.ndarray:
    """He-normal weights: zero-mean Gaussian with ``std = sqrt(2 / fan_in)``.

    Args:
        shape: ``(out, in, ...)``, e.g. ``(F, C, kh, kw)`` or ``(out_features, in_features)``.
        rng: generator or seed (see :func:`make_rng`).
        dtype: float32 by default (cast a module with ``Module.to`` for float64 checks).
        fan_in: inputs feeding one output unit; by default ``prod(shape[1:])``.
    """
    if fan_in is None:
        fan_in = int(np.prod(shape[1:]))
    if fan_in <= 0:
        raise ValueError(f"fan_in must be positive; got {fan_in} for shape {tuple(shape)}")
    return (make_rng(rng).standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
