"""The checker: a student's function against the package's own, one case at a time.

An :class:`Exercise` holds the task (signature, contract, hint), the package's answer, hand-made
cases (small, printable, one rule each, in teaching order) and a maker of random cases. Checking a
function runs the hand-made cases first and stops at the first one that breaks, so the report names
the rule the student broke (each :class:`Case` carries its rule and the hint for the typical mistake;
``also`` lists known wrong answers with a more precise hint of their own). Then random cases catch
what the hand-made ones miss.

Comparison accepts any correct floating-point order (``rtol``/``atol``), any float dtype where a float
is expected, any integer dtype where indices are expected; shapes must match exactly.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Case", "Exercise", "CheckResult", "Failure", "run_check"]

RANDOM_SEED = 2024


@dataclass(frozen=True)
class Case:
    """One input of an exercise and the rule it tests.

    Args:
        rule: what the case shows, in student words ("touching boxes have IoU 0").
        args, kwargs: the call's arguments (copied before each call: a student may modify them).
        hint: the likely mistake when this case breaks, and how to mend it.
        also: ``((wrong_value, hint), ...)``: when the returned value equals a known wrong answer,
            that answer's hint is shown instead.
        shape_rule: the case is about the result's shape or dtype, so ``hint`` also explains a
            wrong shape; otherwise a wrong shape gets the exercise's "must return ..." hint.
    """

    rule: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    hint: str = ""
    also: tuple = ()
    shape_rule: bool = False


@dataclass(frozen=True)
class Exercise:
    """A task: write ``signature`` so that it returns what ``reference`` returns on every case."""

    name: str
    signature: str
    contract: str
    hint: str
    reference: Callable
    cases: Callable[[], list[Case]]  # hand-made, built on demand
    random_case: Callable[[np.random.Generator], Case] | None = None
    n_random: int = 12
    rtol: float = 1e-5
    atol: float = 1e-5
    # turns what the student returned into what is compared (e.g. keep the first two of a tuple)
    prepare: Callable | None = None
    parameters: tuple[str, ...] = ()  # argument names, for the report


@dataclass(frozen=True)
class Failure:
    """The first case that broke."""

    kind: str  # "not implemented", "exception", "type", "shape", "size", "dtype" or "value"
    case_number: int  # 1-based
    hand_made: bool
    rule: str
    inputs: str
    expected: str
    returned: str
    problem: str  # what differs: "shape (2,), expected (2, 1)"
    hint: str
    student_traceback: str = ""


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` returns: truthy when every case passed; printing it gives the report."""

    name: str
    passed: int
    total: int
    hand_made: int
    failure: Failure | None

    def __bool__(self) -> bool:
        return self.failure is None

    @property
    def hint(self) -> str:
        return self.failure.hint if self.failure else ""

    def __str__(self) -> str:
        if self.failure is None:
            return (
                f"{self.name}: all {self.total} checks passed "
                f"({self.hand_made} hand-made, {self.total - self.hand_made} random)."
            )
        f = self.failure
        if f.kind == "not implemented":
            return (
                f"{self.name}: not implemented yet ({f.problem}).\n"
                f"  hint: {f.hint}\n  Write the function, run its cell, then this one again."
            )
        where = "hand-made" if f.hand_made else "random"
        lines = [
            f"{self.name}: FAILED at check {f.case_number} of {self.total} ({where}): {f.rule}",
            f"  ({f.case_number - 1} passed before it)",
            "  inputs:",
            _indent(f.inputs, 4),
            "  expected:",
            _indent(f.expected, 4),
        ]
        if f.kind == "exception":
            lines += ["  your function raised:", _indent(f.student_traceback.rstrip(), 4)]
        else:
            lines += ["  returned:", _indent(f.returned, 4), f"  problem: {f.problem}"]
        lines.append(f"  hint: {f.hint}")
        return "\n".join(lines)

    __repr__ = __str__


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def format_value(x) -> str:
    """A compact, printable form of an input or output (arrays summarised beyond 64 numbers)."""
    if isinstance(x, (tuple, list)) and not _is_numeric_list(x):
        if not x:
            return "[]" if isinstance(x, list) else "()"
        return "\n".join(f"[{i}] " + _indent(format_value(v), 4).lstrip() for i, v in enumerate(x))
    if isinstance(x, (float, np.floating)):
        return f"{float(x):.6g}"
    if isinstance(x, (int, np.integer, bool, np.bool_)) or x is None:
        return repr(x if not isinstance(x, np.generic) else x.item())
    if isinstance(x, str):
        return repr(x)
    try:
        a = np.asarray(x)
    except Exception:  # a student's object that is not array-like
        return f"{type(x).__name__}: {x!r}"[:200]
    if a.dtype == object:
        return f"{type(x).__name__}: {x!r}"[:200]
    head = f"array {a.shape} {a.dtype}"
    if a.size > 64:
        if a.dtype.kind in "fiu" and a.size:
            return f"{head}, min {a.min():.4g}, max {a.max():.4g}"
        return head
    body = np.array2string(a, precision=4, suppress_small=True, max_line_width=96, separator=" ")
    return body if a.ndim <= 1 else f"{head}\n{body}"


def _is_numeric_list(x) -> bool:
    return all(isinstance(v, (int, float, np.number)) for v in x)


def _array(x):
    """``x`` as an array, or None when it is not array-like (a ragged list, an object, ...)."""
    try:
        a = np.asarray(x)
    except Exception:
        return None
    return None if a.dtype == object else a


def difference(expected, got, rtol: float, atol: float, where: str = "") -> tuple[str, str] | None:
    """``(kind, problem)`` for the first way ``got`` differs from ``expected``, or None."""
    label = where or "the result"
    if isinstance(expected, (tuple, list)) and not _is_numeric_list(expected):
        if not isinstance(got, (tuple, list)):
            return (
                "type",
                f"{label} should be a sequence of {len(expected)}; got {type(got).__name__}",
            )
        if len(got) != len(expected):
            return "shape", f"{label} should have {len(expected)} entries; got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            d = difference(e, g, rtol, atol, f"{where}[{i}]")
            if d:
                return d
        return None
    e, g = np.asarray(expected), _array(got)
    if g is None:
        return "type", f"{label} should be a NumPy array; got {type(got).__name__}"
    if g.shape != e.shape:
        # same number of axes, other lengths (nms keeping too many boxes): a question of values
        kind = "size" if g.ndim == e.ndim else "shape"
        return kind, f"{label} has shape {g.shape}; expected {e.shape}"
    kinds = {"b": "bool", "i": "integer", "u": "integer", "f": "float"}
    want, have = kinds.get(e.dtype.kind, e.dtype.kind), kinds.get(g.dtype.kind, g.dtype.kind)
    if want != have:
        return "dtype", f"{label} has dtype {g.dtype}; expected {want} ({e.dtype})"
    if want == "float":
        bad_nan = np.isnan(g) & ~np.isnan(e)
        if np.any(bad_nan):
            return "value", f"{label} holds NaN where {e[bad_nan].ravel()[0]:.6g} is expected"
        close = np.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    else:
        close = g == e
    if not np.all(close):
        first = tuple(int(i) for i in np.argwhere(~close)[0]) if e.ndim else ()
        at = f" at index {first}" if e.ndim else ""
        return "value", (
            f"{label} differs{at}: expected {format_value(e[first])}, got {format_value(g[first])}"
            f" ({int(np.count_nonzero(~close))} of {close.size} value(s) differ)"
        )
    return None


def _student_traceback(err: BaseException) -> str:
    """The traceback of an exception raised inside the student's function, without the checker's
    own frame (the first one, where the checker called the function)."""
    tb = err.__traceback__.tb_next if err.__traceback__ is not None else None
    return "".join(traceback.format_exception(type(err), err, tb))


def _inputs(exercise: Exercise, case: Case) -> str:
    names = list(exercise.parameters) or [f"arg{i}" for i in range(len(case.args))]
    parts = [(names[i] if i < len(names) else f"arg{i}", v) for i, v in enumerate(case.args)]
    parts += list(case.kwargs.items())
    out = []
    for name, value in parts:
        text = format_value(value)
        out.append(f"{name} = {text}" if "\n" not in text else f"{name} =\n{_indent(text, 2)}")
    return "\n".join(out)


def _cases(exercise: Exercise) -> list[tuple[Case, bool]]:
    hand = [(c, True) for c in exercise.cases()]
    rng = np.random.default_rng(RANDOM_SEED)
    if exercise.random_case is None:
        return hand
    return hand + [(exercise.random_case(rng), False) for _ in range(exercise.n_random)]


def run_check(exercise: Exercise, fn: Callable) -> CheckResult:
    """Run ``fn`` on every case of ``exercise``; stop at the first that breaks."""
    if not callable(fn):
        raise ValueError(f"fn must be a function; got {type(fn).__name__}")
    cases = _cases(exercise)
    hand_made = sum(1 for _, h in cases if h)
    for number, (case, is_hand_made) in enumerate(cases, start=1):
        expected = exercise.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        if exercise.prepare is not None:
            expected = exercise.prepare(expected)

        def failed(
            kind,
            problem,
            returned="",
            hint=None,
            tb="",
            c=case,
            n=number,
            h=is_hand_made,
            e=expected,
        ):
            rule_hint = c.hint or (exercise.hint if h else "")
            if kind in ("shape", "dtype", "type") and not c.shape_rule:
                returns = exercise.signature.rpartition("->")[2].strip()
                rule_hint = f"{exercise.name} must return {returns}"
            elif not h:
                rule_hint = "a random case broke although every hand-made case passed: " + (
                    c.hint or "compare your function with the contract, line by line"
                )
            return CheckResult(
                exercise.name, n - 1, len(cases), hand_made,
                Failure(kind, n, h, c.rule, _inputs(exercise, c), format_value(e),
                        returned, problem, hint or rule_hint, tb),
            )  # fmt: skip

        try:
            got = fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        except NotImplementedError as err:
            return failed(
                "not implemented", f"NotImplementedError: {err}", hint=str(err) or exercise.hint
            )
        except Exception as err:  # the student's bug: show the student's traceback
            return failed("exception", f"{type(err).__name__}: {err}", tb=_student_traceback(err))
        if exercise.prepare is not None:
            try:
                got = exercise.prepare(got)
            except Exception:
                return failed("type", f"unexpected result {type(got).__name__}", format_value(got))
        d = difference(expected, got, exercise.rtol, exercise.atol)
        if d is not None:
            kind, problem = d
            hint = None
            if kind == "value":
                for wrong, wrong_hint in case.also:
                    if difference(wrong, got, exercise.rtol, exercise.atol) is None:
                        hint = wrong_hint
                        break
            return failed(kind, problem, format_value(got), hint)
    return CheckResult(exercise.name, len(cases), len(cases), hand_made, None)
