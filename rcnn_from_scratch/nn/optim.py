"""Optimisers and learning-rate schedules, outside the layers (layers only accumulate ``.grad``).

Update rules are PyTorch's, so hyper-parameters carry over:

* SGD: ``g = grad + wd p``; ``v = momentum v + g``; ``p -= lr v``.
* Adam: ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``; ``p -= lr m_hat / (sqrt(v_hat) + eps)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .module import Parameter

__all__ = ["SGD", "Adam", "WarmupStepSchedule"]


class _Optimizer:
    def __init__(self, params: Sequence[Parameter], lr: float):
        self.params = [p for p in params if p.requires_grad]  # frozen parameters are skipped
        if not self.params:
            raise ValueError("the optimiser got no parameters that require a gradient")
        if not lr >= 0:
            raise ValueError(f"lr must be >= 0; got {lr}")
        self.lr = float(lr)  # a schedule sets it before each step: ``opt.lr = schedule(step)``

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()


class SGD(_Optimizer):
    """Stochastic gradient descent with momentum and (L2) weight decay."""

    def __init__(self, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(params, lr)
        if not 0 <= momentum < 1 or not weight_decay >= 0:
            raise ValueError(
                f"momentum must lie in [0, 1) and weight_decay be >= 0; got {momentum}, {weight_decay}"
            )
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        for p, v in zip(self.params, self.velocity, strict=True):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            v *= self.momentum
            v += g
            p.data -= self.lr * v


class Adam(_Optimizer):
    """Adam with bias correction; ``weight_decay`` adds ``wd p`` to the gradient (PyTorch's Adam)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):  # fmt: skip
        super().__init__(params, lr)
        self.b1, self.b2 = (float(b) for b in betas)
        if not (0 <= self.b1 < 1 and 0 <= self.b2 < 1):
            raise ValueError(f"betas must lie in [0, 1); got {betas}")
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.m = [np.zeros_like(p.data) for p in self.params]
        self.v = [np.zeros_like(p.data) for p in self.params]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            v += (1 - self.b2) * g * g
            p.data -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The moments and the step count as plain arrays (for a checkpoint's ``.npz``)."""
        state = {f"m.{i}": m for i, m in enumerate(self.m)}
        state.update({f"v.{i}": v for i, v in enumerate(self.v)})
        state["t"] = np.array(self.t, np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state_dict`'s arrays; a mismatch with the parameters is a ``ValueError``."""
        for i, (m, v) in enumerate(zip(self.m, self.v, strict=True)):
            for name, own in ((f"m.{i}", m), (f"v.{i}", v)):
                if name not in state or np.shape(state[name]) != own.shape:
                    raise ValueError(f"optimiser state {name!r} is missing or has the wrong shape")
                own[...] = state[name]
        self.t = int(state["t"])


@dataclass(frozen=True)
class WarmupStepSchedule:
    """Linear warm-up from ``warmup_factor * base_lr``, then a step decay by ``gamma`` at each
    milestone (the detectors' usual schedule). ``schedule(step) -> lr``."""

    base_lr: float
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_steps: int = 0
    warmup_factor: float = 0.001

    def __post_init__(self):
        if list(self.milestones) != sorted(self.milestones) or self.warmup_steps < 0:
            raise ValueError(
                f"milestones must be increasing and warmup_steps >= 0; got {self.milestones}, "
                f"{self.warmup_steps}"
            )

    def __call__(self, step: int) -> float:
        lr = self.base_lr * self.gamma ** sum(step >= m for m in self.milestones)
        if step < self.warmup_steps:
            alpha = step / self.warmup_steps
            lr *= self.warmup_factor * (1 - alpha) + alpha
        return lr
