"""The FPN level-rule exercise's check catches the typical mistakes, each with its hint."""

import numpy as np
import pytest

from rcnn_from_scratch import exercises


def levels(boxes, k_min, k_max, canonical_scale=224, canonical_level=4, eps=1e-6, mistake=None):
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    plus = 1 if mistake == "plus one" else 0
    w, h = b[:, 2] - b[:, 0] + plus, b[:, 3] - b[:, 1] + plus
    s = {"area": w * h, "width": w, "longer side": np.maximum(w, h)}.get(mistake, np.sqrt(w * h))
    if mistake == "fixed constants":
        canonical_scale, canonical_level = 224, 4
    e = 0.0 if mistake == "no eps" else eps
    log = np.log if mistake == "natural log" else np.log2
    with np.errstate(divide="ignore"):
        k = canonical_level + log(s / canonical_scale) + e
    k = np.round(k) if mistake == "round" else np.floor(k)
    if mistake != "no clamp":
        k = np.clip(k, k_min, k_max)
    if mistake == "nan for zero area":
        k = np.where(s == 0, np.nan, k)
    if mistake == "level not index":
        return k.astype(np.int64)
    with np.errstate(invalid="ignore"):
        out = (k - k_min).astype(np.int64)
    return out.astype(np.float64) if mistake == "float" else out


@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("level not index", "not k itself"),
        ("natural log", "log2, not the natural log"),
        ("round", "do not round"),
        ("no clamp", "clamp k to [k_min, k_max]"),
        ("area", "square root of the AREA"),
        ("width", "square root of the AREA"),
        ("longer side", "square root of the AREA"),
        ("plus one", "no +1"),
        ("no eps", "add eps = 1e-6"),
        ("nan for zero area", "log2(0) = -inf"),
        ("fixed constants", "canonical_scale and canonical_level"),
        ("float", "int64"),
    ],
)
def test_level_of_boxes_mistakes_fail_with_their_hint(mistake, hint):
    result = exercises.check("level_of_boxes", lambda *a, **k: levels(*a, **k, mistake=mistake))
    assert not result and hint in result.hint, str(result)


def test_a_correct_float64_student_version_passes():
    result = exercises.check("level_of_boxes", levels)
    assert result, str(result)
