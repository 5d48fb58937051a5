"""The layer contract: pure forward/backward pairs, wrapped by a tiny ``Module``.

Every op of the package is two pure functions in its idea-module::

    out, cache = conv2d_forward(x, weight, bias, stride, padding)   # cache: a NamedTuple
    dx, dweight, dbias = conv2d_backward(dout, cache)

A ``Module`` wraps such a pair for composition. Its contract, the same for every layer:

* ``forward(*inputs)`` returns the output and keeps exactly one cache: what ``backward`` needs.
* ``backward(dout)`` consumes that cache, **accumulates** (``+=``) parameter gradients into
  ``Parameter.grad`` and returns the gradient with respect to the first input. A second ``backward``
  without a new ``forward`` raises ``RuntimeError`` instead of silently reusing a stale cache.
* ``named_parameters()`` yields dotted names (``"0.weight"``, ``"head.cls.bias"``) in definition
  order, chosen to match torchvision's state-dict keys where a counterpart exists.

Subclasses implement ``_forward(*inputs) -> (out, cache)`` and ``_backward(dout, cache) -> dx``. The
optimiser lives outside the layers (``nn/optim.py``); layers keep no history beyond the one cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["Parameter", "Module", "ModuleList", "Sequential"]


class Parameter:
    """A learnable array and the gradient accumulated into it (same shape, same dtype).

    ``Parameter(data, requires_grad=False)`` is a frozen array (frozen batch-norm statistics, a
    pretrained layer kept fixed): it keeps its place and name in ``named_parameters`` and state
    dicts, but ``grad`` is ``None`` (no second array of its size), ``zero_grad`` and ``Module.to``
    leave it alone, and the optimisers skip it.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray, requires_grad: bool = True):
        self.data = np.asarray(data)
        self.grad = np.zeros_like(self.data) if requires_grad else None

    @property
    def requires_grad(self) -> bool:
        return self.grad is not None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def zero_grad(self) -> None:
        if self.grad is not None:
            self.grad[...] = 0

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"


class Module:
    """Base class: one cache between ``forward`` and ``backward``; parameters found by attribute."""

    _cache: Any = None

    def _forward(self, *inputs):  # -> (out, cache)
        raise NotImplementedError

    def _backward(self, dout, cache):  # -> dx
        raise NotImplementedError

    def forward(self, *inputs):
        out, self._cache = self._forward(*inputs)
        return out

    __call__ = forward

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called without a forward (or twice after one)"
            )
        cache, self._cache = self._cache, None
        return self._backward(dout, cache)

    def children(self) -> Iterator[tuple[str, Module]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def to(self, dtype) -> Module:
        """Cast every parameter (and its gradient) to ``dtype``, e.g. float64 for gradient checks."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:
                p.grad = p.grad.astype(dtype)
        return self

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter arrays by dotted name (copies, so later training does not change them)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy arrays into the parameters; a missing, extra or wrong-shaped key is a ``ValueError``."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(state))
        extra = sorted(set(state) - set(own))
        if missing or extra:
            raise ValueError(f"state dict does not fit: missing {missing}, unexpected {extra}")
        for name, p in own.items():
            value = np.asarray(state[name])
            if value.shape != p.data.shape:
                raise ValueError(
                    f"parameter {name!r} has shape {p.data.shape}; the state dict gives {value.shape}"
                )
            p.data[...] = value

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={type(m).__name__}" for n, m in self.children())
        return f"{type(self).__name__}({inner})"


class ModuleList(Module):
    """Modules by index (torchvision's ``nn.ModuleList``): children and parameters are named
    ``"0"``, ``"1"``..., so keys come out as ``"{i}.<name>"``; it has no forward of its own."""

    def __init__(self, modules=()):
        self.layers = list(modules)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Module):
                raise ValueError(
                    f"{type(self).__name__} takes Modules; item {i} is {type(layer).__name__}"
                )

    def children(self):
        return ((str(i), m) for i, m in enumerate(self.layers))

    def named_parameters(self, prefix: str = ""):
        for i, layer in enumerate(self.layers):
            yield from layer.named_parameters(f"{prefix}{i}.")

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def modules(self) -> list[Module]:
        """The modules in order (the same list as ``layers``)."""
        return self.layers


class Sequential(ModuleList):
    """Layers applied in order; backward runs them in reverse. Children are named ``"0"``, ``"1"``..."""

    def __init__(self, *layers: Module):
        super().__init__(layers)
        for i, layer in enumerate(self.layers):
            setattr(self, str(i), layer)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout
