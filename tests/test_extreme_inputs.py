"""The array functions on extreme values: each call returns the right answer or a ValueError.

Huge and tiny coordinates (near float32's and float64's overflow and underflow), NaN, inf, empty
inputs, x2 < x1, huge category ids, NaN scales, huge sizes. The references are exact (fractions) or
per-category; any exception other than ``ValueError`` (a NumPy error, a ``MemoryError``) fails.
"""

from fractions import Fraction

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rcnn_from_scratch import batched_nms, box_iou, nms, roi_align, roi_pool
from rcnn_from_scratch.proposals.anchors import AnchorGenerator
from rcnn_from_scratch.roi.roi_align import roi_align_reference
from rcnn_from_scratch.roi.roi_pool import roi_pool_reference

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = st.sampled_from([np.float32, np.float64])


@st.composite
def boxes(draw, dtype, max_n=4):
    """Boxes at one extreme scale (or any float at all, NaN and inf included)."""
    n = draw(st.integers(0, max_n))
    if draw(st.booleans()):  # anything, including NaN, inf and x2 < x1
        width = 32 if dtype == np.float32 else 64
        values = draw(st.lists(st.floats(width=width), min_size=4 * n, max_size=4 * n))
        return np.array(values, dtype).reshape(n, 4)
    top = 38 if dtype == np.float32 else 307
    exponent = draw(st.integers(-top, top))
    unit = dtype(10.0) ** dtype(exponent)
    grid = draw(st.lists(st.integers(0, 8), min_size=4 * n, max_size=4 * n))
    b = np.array(grid, dtype).reshape(n, 4) * unit
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2])  # x2 >= x1 (most of the time still on the grid)
    return b


def exact_iou(a, b) -> Fraction:
    a, b = [Fraction(float(v)) for v in a], [Fraction(float(v)) for v in b]
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union else Fraction(0)


def valid(b) -> bool:
    return bool(np.all(np.isfinite(b)) and np.all(b[:, 2:] >= b[:, :2]))


def exact_nms(b, s, threshold) -> list[int]:
    kept = []
    for i in sorted(range(len(b)), key=lambda i: (-s[i], i)):
        if all(exact_iou(b[i], b[k]) <= threshold for k in kept):
            kept.append(i)
    return kept


@SETTINGS
@given(st.data(), DTYPES)
def test_box_iou_is_exact_finite_and_in_the_unit_interval_or_a_value_error(data, dtype):
    a, b = data.draw(boxes(dtype)), data.draw(boxes(dtype))
    if not (valid(a) and valid(b)):
        try:
            box_iou(a, b)
        except ValueError as err:
            assert "boxes" in str(err)
            return
        raise AssertionError("invalid boxes were accepted")
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b)) and np.all(np.isfinite(iou))
    assert np.all((iou >= 0) & (iou <= 1))
    want = [[float(exact_iou(p, q)) for q in b] for p in a]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(iou, np.array(want).reshape(iou.shape), atol=tol, rtol=0)


@SETTINGS
@given(st.data(), DTYPES, st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]))
def test_nms_equals_exact_greedy_nms_at_any_scale(data, dtype, threshold):
    b = data.draw(boxes(dtype, max_n=6))
    assume(valid(b))
    s = np.array(data.draw(st.permutations(range(len(b)))), dtype)
    exact = [[exact_iou(p, q) for q in b] for p in b]
    assume(all(abs(v - Fraction(threshold)) > Fraction(1, 10**6) for row in exact for v in row))
    assert nms(b, s, threshold).tolist() == exact_nms(b, s, threshold)


@SETTINGS
@given(
    st.data(), DTYPES,
    st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=3),
    st.sampled_from([0.0, 0.5, 1.0]),
)  # fmt: skip
def test_batched_nms_equals_per_category_nms_for_any_ids_and_scales(data, dtype, pool, thr):
    b = data.draw(boxes(dtype, max_n=6))
    assume(valid(b))
    ids = np.array(
        [pool[data.draw(st.integers(0, len(pool) - 1))] for _ in range(len(b))], np.int64
    )
    s = np.array(data.draw(st.permutations(range(len(b)))), dtype)
    keep = []
    for c in np.unique(ids):
        members = np.flatnonzero(ids == c)
        keep += members[nms(b[members], s[members], thr)].tolist()
    keep.sort(key=lambda i: (-s[i], i))
    assert batched_nms(b, s, ids, thr).tolist() == keep


any_number = st.one_of(
    st.floats(), st.integers(-(10**9), 10**9), st.just("0.5"), st.none(), st.booleans()
)


@SETTINGS
@given(any_number)
def test_nms_threshold_is_a_number_in_the_unit_interval_or_a_value_error(threshold):
    b = np.array([[0, 0, 1, 1], [0, 0, 1, 1]], float)
    try:
        keep = nms(b, np.array([1.0, 0.5]), threshold)
    except ValueError as err:
        assert "iou_threshold" in str(err)
        return
    assert 0 <= float(threshold) <= 1 and keep.tolist() == ([0] if threshold < 1 else [0, 1])


@SETTINGS
@given(
    st.data(),
    st.one_of(st.floats(), st.sampled_from([0.25, 0.5, 1.0])),
    st.one_of(st.integers(-2, 4), st.integers(-(10**9), 10**9)),
    st.one_of(st.integers(1, 3), st.integers(-2, 10**6)),
    st.booleans(),
)
def test_roi_align_and_roi_pool_are_right_or_a_value_error(data, scale, ratio, size, aligned):
    x = np.random.default_rng(0).normal(size=(1, 2, 6, 7))
    b = data.draw(boxes(np.float64, max_n=2))
    rois = np.hstack([np.zeros((len(b), 1)), b])
    for fn, ref, kwargs in (
        (roi_align, roi_align_reference, {"sampling_ratio": ratio, "aligned": aligned}),
        (roi_pool, roi_pool_reference, {}),
    ):
        try:
            out = fn(x, rois, size, scale, **kwargs)
        except ValueError:
            continue  # every other exception (MemoryError, a NumPy error) fails the test
        assert out.shape == (len(b), 2, size, size) and np.all(np.isfinite(out))
        samples = abs(ratio) if fn is roi_align and ratio > 0 else 1
        if size <= 3 and samples <= 4 and np.abs(b).max(initial=0) * scale < 50:
            np.testing.assert_allclose(out, ref(x, rois, size, scale, **kwargs), atol=1e-9)


@SETTINGS
@given(
    st.lists(st.one_of(st.floats(), st.integers(-5, 600)), max_size=3),
    st.lists(st.one_of(st.floats(), st.integers(-1, 3)), max_size=3),
    st.tuples(st.integers(-1, 40), st.integers(-1, 40)),
)
def test_anchors_are_finite_ordered_boxes_or_a_value_error(sizes, ratios, grid):
    try:
        anchors = AnchorGenerator((tuple(sizes),), (tuple(ratios),))((64, 64), [grid])
    except ValueError:
        return
    assert anchors.shape == (grid[0] * grid[1] * len(sizes) * len(ratios), 4)
    assert np.all(np.isfinite(anchors)) and np.all(anchors[:, 2:] >= anchors[:, :2])
