"""Exercises with checks: write a key piece of the lecture yourself and find out at once whether it
is right, and, when it is not, which rule it breaks.

::

    from rcnn_from_scratch import exercises

    exercises.NAMES                      # what can be checked, in lecture order
    exercises.show("box_iou")            # the task: signature, contract, hint
    exercises.check("box_iou", box_iou)  # your function against the package's own

An exercise that mirrors a public function of the package has its name and signature, so the
package's function passes unchanged, and so does any other correct one, whatever its floating-point
order. ``check`` runs small hand-made cases first (one rule each), then random ones, and stops at the
first that breaks: the report shows its inputs, the expected and the returned values, and the rule
in words. The exercise notebooks are in ``notebooks/exercises/``; :func:`write_solution_edition` turns
one into its solution edition (each stub replaced by the package's answer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from . import boxes, heads, interpolation, masks, pyramid, roi
from .checker import CheckResult, Exercise, run_check

__all__ = ["NAMES", "check", "show", "answer", "exercise", "write_solution_edition", "CheckResult"]

_EXERCISES: dict[str, Exercise] = {
    e.name: e
    for module in (interpolation, boxes, roi, heads, masks, pyramid)
    for e in module.EXERCISES
}

NAMES: tuple[str, ...] = tuple(_EXERCISES)


def exercise(name: str) -> Exercise:
    """The :class:`~rcnn_from_scratch.exercises.checker.Exercise` called ``name`` (one of NAMES)."""
    if name not in _EXERCISES:
        raise ValueError(f"name must be one of exercises.NAMES {list(NAMES)}; got {name!r}")
    return _EXERCISES[name]


def check(name: str, fn: Callable) -> CheckResult:
    """Check ``fn`` against the package's own implementation of exercise ``name``.

    Args:
        name: one of :data:`NAMES`, e.g. ``"box_iou"``.
        fn: your function, with the exercise's signature (``exercises.show(name)`` prints it).

    Returns:
        A :class:`CheckResult`: truthy when every case passed; printing it (or leaving it as a
        cell's last value) shows the report. A failure names the first case that broke, its
        inputs, the expected and the returned values, and a hint; an exception inside ``fn`` shows
        ``fn``'s own traceback; a stub that raises ``NotImplementedError`` reports "not implemented".
    """
    return run_check(exercise(name), fn)


def show(name: str) -> None:
    """Print the task of exercise ``name``: its signature, its contract and a hint."""
    ex = exercise(name)
    print(f"{ex.signature}\n\n{ex.contract}\n\nHint: {ex.hint}")


def answer(name: str) -> Callable:
    """The package's own answer to exercise ``name`` (it passes :func:`check`)."""
    return exercise(name).reference


def _answer_source(name: str) -> str:
    ref = answer(name)
    return (
        f"# solution edition: the package's own {name}, from {ref.__module__}\n"
        f"{name} = exercises.answer({name!r})"
    )


def write_solution_edition(notebook, destination) -> Path:
    """Write the solution edition of an exercise notebook: every stub cell (a code cell whose
    metadata has ``"exercise": name``) becomes ``name = exercises.answer(name)``, the package's own
    function; every other cell stays as it is. Stored without outputs, like the exercise edition.

    Args:
        notebook: path of an exercise notebook (``.ipynb``, nbformat 4).
        destination: path of the notebook to write (its folder must exist).

    Returns:
        ``destination`` as a :class:`~pathlib.Path`.
    """
    source = Path(notebook)
    nb = json.loads(source.read_text(encoding="utf-8"))
    if not isinstance(nb, dict) or "cells" not in nb:
        raise ValueError(f"notebook must be a Jupyter notebook file; got {source}")
    for cell in nb["cells"]:
        name = cell.get("metadata", {}).get("exercise")
        if cell.get("cell_type") == "code" and name is not None:
            cell["source"] = _answer_source(exercise(name).name)
    out = Path(destination)
    out.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out
