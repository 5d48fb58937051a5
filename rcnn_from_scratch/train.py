"""The training loop helper: a progress bar, a clear stop on NaN, a history of the losses.

``run_training(step_fn, num_steps)`` calls ``step_fn(step) -> {"loss name": value, ...}`` for each
step; everything model-specific (data, forward, backward, optimiser) lives in ``step_fn``. The bar is
``tqdm.auto``'s, so it renders in a terminal and in a notebook alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from tqdm.auto import tqdm

__all__ = ["TrainingDiverged", "run_training"]


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite; the message names the loss and the step."""


def run_training(
    step_fn: Callable[[int], dict[str, float]],
    num_steps: int,
    start_step: int = 0,
    description: str = "training",
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Run ``step_fn`` for steps ``start_step .. num_steps - 1``.

    Args:
        step_fn: does one optimisation step and returns its losses as floats.
        num_steps: the step to stop before (so a resumed run passes the same ``num_steps``).
        on_step: optional callback after each step (checkpoints, periodic evaluation).

    Returns:
        The losses of every step run, in order.

    Raises:
        TrainingDiverged: at the first NaN or infinite loss, naming it and the step.
    """
    history: list[dict[str, float]] = []
    bar = tqdm(range(start_step, num_steps), desc=description, disable=not progress, leave=False)
    for step in bar:
        losses = {k: float(v) for k, v in step_fn(step).items()}
        for name, value in losses.items():
            if not math.isfinite(value):
                bar.close()
                raise TrainingDiverged(
                    f"loss {name!r} became {value} at step {step}; lower the learning rate or check "
                    "the inputs of that step"
                )
        history.append(losses)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if on_step is not None:
            on_step(step, losses)
    bar.close()
    return history
