"""Weight initialisation. He (Kaiming) normal: ``std = sqrt(2 / fan_in)``, so that a ReLU network keeps
the variance of its activations from layer to layer (He et al., 2015)."""

from __future__ import annotations

import numpy as np

__all__ = ["kaiming_normal", "make_rng"]


def make_rng(rng=None) -> np.random.Generator:
    """A ``np.random.Generator``: given one, it is returned; an int seeds one; ``None`` means seed 0,
    so that an un-seeded layer is still reproducible."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(0 if rng is None else rng)


def kaiming_normal(shape, rng=None, dtype=np.float32) -> np.ndarray:
    """He-normal weights for a layer whose output has ``shape[0]`` units; fan-in is the rest.

    Args:
        shape: ``(out, in, ...)``, e.g. ``(F, C, kh, kw)`` or ``(out_features, in_features)``.
        rng: generator or seed (see :func:`make_rng`).
    """
    fan_in = int(np.prod(shape[1:]))
    return (make_rng(rng).standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
