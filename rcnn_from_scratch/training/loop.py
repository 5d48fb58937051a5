"""The training loop helper: a progress bar, a clear stop on NaN, a history of the losses.

``run_training(step_fn, num_steps)`` calls ``step_fn(step) -> {"loss name": value, ...}`` for each
step; everything model-specific (data, forward, backward, optimiser) lives in ``step_fn``. The bar is
``tqdm.auto``'s when ipywidgets is installed, so it renders in a terminal and in a notebook alike;
without ipywidgets it is plain ``tqdm`` (``tqdm.auto`` would fall back to it anyway, after printing
``TqdmWarning: IProgress not found`` in every notebook that imports the package).

Reproducibility: every random draw of the package comes from an explicit ``np.random.Generator``
(layers take ``rng=``, the backbone ``seed=``). :func:`seed_everything` gives the one generator a run
draws from and also seeds the global generators, for any code that still uses them. The same seed then
gives bit-identical parameters and losses on the same machine (same NumPy and BLAS, same thread count:
a BLAS may sum in a different order with another number of threads).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from importlib.util import find_spec

import numpy as np

if find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:  # no widgets: the text bar, without tqdm.auto's warning
    from tqdm import tqdm

__all__ = ["TrainingDiverged", "run_training", "seed_everything"]


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's and NumPy's global generators and return a fresh ``np.random.Generator(seed)``.

    Pass the returned generator (or ints drawn from it) to everything random: layer initialisation,
    data sampling, RoI sampling.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 (legacy global state, for third-party code)
    return np.random.default_rng(int(seed))


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite; the message names the loss and the step."""


def run_training(
    step_fn: Callable[[int], dict[str, float]],
    num_steps: int,
    start_step: int = 0,
    description: str = "training",
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    time_limit: float | None = None,
) -> list[dict[str, float]]:
    """Run ``step_fn`` for steps ``start_step .. num_steps - 1``.

    Args:
        step_fn: does one optimisation step and returns its losses as floats.
        num_steps: the step to stop before (so a resumed run passes the same ``num_steps``).
        on_step: optional callback after each step (checkpoints, periodic evaluation).
        time_limit: optional budget in seconds: no step starts after it is spent (the run then
            returns fewer than ``num_steps - start_step`` entries).

    Returns:
        The losses of every step run, in order.

    Raises:
        TrainingDiverged: at the first NaN or infinite loss, naming it and the step.
    """
    if num_steps < start_step:
        raise ValueError(f"num_steps ({num_steps}) must be >= start_step ({start_step})")
    history: list[dict[str, float]] = []
    bar = tqdm(range(start_step, num_steps), desc=description, disable=not progress, leave=False)
    start = time.perf_counter()
    for step in bar:
        if time_limit is not None and time.perf_counter() - start >= time_limit:
            break
        result = step_fn(step)
        if not isinstance(result, dict):
            bar.close()
            raise ValueError(
                f"step_fn must return a dict of named losses; at step {step} it returned "
                f"{type(result).__name__}"
            )
        losses = {k: float(v) for k, v in result.items()}
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
