"""The interpolation exercises' checks catch the typical mistakes, each with the hint meant for it."""

import math

import numpy as np
import pytest

from rcnn_from_scratch import exercises


def weights(y, x, mistake=None):
    y0 = round(y) if mistake == "round" else math.floor(y)
    x0 = round(x) if mistake == "round" else math.floor(x)
    ly, lx = y - y0, x - x0
    w = np.array([[(1 - ly) * (1 - lx), (1 - ly) * lx], [ly * (1 - lx), ly * lx]])
    if mistake == "swapped":
        w = w[::-1, ::-1]
    return w.T if mistake == "transposed" else w


@pytest.mark.parametrize(
    "mistake, hint",
    [("swapped", "OPPOSITE"), ("transposed", "transposed"), ("round", "not round(y)")],
)
def test_bilinear_weights_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("bilinear_weights", lambda y, x: weights(y, x, mistake))
    assert not result and hint in result.hint, str(result)


def _axis(c, n, mistake):
    """Neighbours and weights along one axis, torchvision's border rule unless a mistake says so."""
    valid = (c >= -1) & (c <= n)
    if mistake == "no zero outside":
        valid = np.ones_like(c, bool)
    if mistake != "negative wraps":
        c = np.maximum(c, 0)
    lo = np.floor(c).astype(int)
    if mistake == "no last-row rule":
        hi, l = lo + 1, c - lo
    elif mistake == "zero past the last row":
        valid &= c <= n - 1
        at_end = lo >= n - 1
        lo = np.where(at_end, n - 1, lo)
        hi, l = np.where(at_end, n - 1, lo + 1), np.where(at_end, 0.0, c - lo)
    else:
        at_end = lo >= n - 1
        lo = np.where(at_end, n - 1, lo)
        hi, l = np.where(at_end, n - 1, lo + 1), np.where(at_end, 0.0, c - lo)
    return lo, hi, l, valid


def interpolate(feature, y, x, mistake=None):
    f = np.asarray(feature, dtype=np.float64)
    y, x = np.broadcast_arrays(np.asarray(y, np.float64), np.asarray(x, np.float64))
    if mistake == "x first":
        y, x = x, y
    H, W = f.shape[-2:]
    y0, y1, ly, vy = _axis(y, H, mistake)
    x0, x1, lx, vx = _axis(x, W, mistake)
    if mistake == "floor":
        ly, lx = 0 * ly, 0 * lx
    if mistake == "swapped weights":
        ly, lx = 1 - ly, 1 - lx
    out = (
        f[..., y0, x0] * (1 - ly) * (1 - lx)
        + f[..., y0, x1] * (1 - ly) * lx
        + f[..., y1, x0] * ly * (1 - lx)
        + f[..., y1, x1] * ly * lx
    )
    out = out * (vy & vx)
    if mistake == "channels last" and f.ndim == 3:
        out = np.moveaxis(out, 0, -1)
    return out


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("x first", "you read feature[x, y]"),
        ("floor", "floor instead of interpolation"),
        ("swapped weights", "OPPOSITE"),
        ("no last-row rule", "reads row H - 1 only"),
        ("zero past the last row", "only a point beyond y = H reads 0"),
        ("negative wraps", "NumPy's index -1 is the LAST row"),
        ("no zero outside", "reads 0"),
        ("channels last", "(C, *S)"),
    ],
)
def test_bilinear_interpolate_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("bilinear_interpolate", lambda f, y, x: interpolate(f, y, x, mistake))
    assert not result and hint in result.hint, str(result)


def test_an_index_error_in_the_students_code_shows_the_students_traceback():
    result = exercises.check(
        "bilinear_interpolate", lambda f, y, x: interpolate(f, y, x, "no last-row rule")
    )
    assert result.failure.kind == "exception"
    text = str(result)
    assert "IndexError" in text and "in interpolate" in text  # the student's own frame
    assert "checker.py" not in text  # not the checker's


@pytest.mark.parametrize(
    "name, fn", [("bilinear_weights", weights), ("bilinear_interpolate", interpolate)]
)
def test_a_correct_student_version_passes(name, fn):
    result = exercises.check(name, fn)
    assert result, str(result)
