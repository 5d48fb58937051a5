"""Box algebra: properties (hypothesis), the slow NMS reference, edge cases, torchvision parity."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rcnn_from_scratch import (
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    nms,
    nms_reference,
    remove_small_boxes,
)

coords = st.floats(-50, 150, allow_nan=False, width=32)
sizes = st.floats(0.5, 80, allow_nan=False, width=32)


@st.composite
def box_arrays(draw, min_n=0, max_n=30, min_size=sizes):
    n = draw(st.integers(min_n, max_n))
    xy = draw(arrays(np.float64, (n, 2), elements=coords))
    wh = draw(arrays(np.float64, (n, 2), elements=min_size))
    return np.concatenate([xy, xy + wh], axis=1)


def random_boxes(rng, n, spread=100.0):
    xy = rng.uniform(0, spread, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 40, (n, 2))], axis=1)


# --- closed-form cases ----------------------------------------------------------------------------


def test_box_area_is_width_times_height_without_plus_one():
    assert box_area([[1, 2, 4, 7]]).tolist() == [15.0]


def test_box_iou_of_half_overlapping_squares_is_one_third():
    iou = box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2]])
    np.testing.assert_allclose(iou, [[1 / 3]])


def test_clip_boxes_to_image_uses_height_width_order():
    out = clip_boxes_to_image([[-5, -5, 50, 80]], (60, 40))
    assert out.tolist() == [[0, 0, 40, 60]]


def test_remove_small_boxes_keeps_boxes_at_exactly_min_size():
    keep = remove_small_boxes([[0, 0, 2, 2], [0, 0, 1.9, 5], [0, 0, 5, 5]], 2.0)
    assert keep.tolist() == [0, 2] and keep.dtype == np.int64


def test_nms_keeps_a_pair_at_exactly_the_threshold():
    boxes = np.array([[0, 0, 2, 2], [1, 0, 3, 2]], np.float32)  # IoU exactly 1/3
    np.testing.assert_array_equal(nms(boxes, [0.9, 0.8], 1 / 3), [0, 1])
    np.testing.assert_array_equal(nms(boxes, [0.9, 0.8], 0.3), [0])


# --- properties -----------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(box_arrays(), box_arrays())
def test_box_iou_is_symmetric_and_in_unit_interval(a, b):
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    np.testing.assert_allclose(iou, box_iou(b, a).T, rtol=1e-12)
    assert np.all((iou >= 0) & (iou <= 1 + 1e-12))


@settings(max_examples=80, deadline=None)
@given(box_arrays(min_n=1))
def test_box_iou_of_a_box_with_itself_is_one(a):
    np.testing.assert_allclose(np.diag(box_iou(a, a)), 1.0, rtol=1e-12)


@settings(max_examples=80, deadline=None)
@given(box_arrays(), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_nms_keeps_a_sorted_subset_with_no_pair_above_threshold(b, thr, seed):
    scores = np.random.default_rng(seed).permutation(len(b)).astype(np.float64)
    keep = nms(b, scores, thr)
    assert len(set(keep.tolist())) == len(keep) and np.all(keep < len(b))
    assert np.all(np.diff(scores[keep]) <= 0)
    iou = box_iou(b[keep], b[keep])
    assert not np.any(np.triu(iou > thr, k=1))


@settings(max_examples=100, deadline=None)
@given(box_arrays(max_n=60), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_nms_equals_the_slow_reference(b, thr, seed):
    # integer-valued scores with repeats exercise the tie rule (stable: lower index first)
    scores = np.random.default_rng(seed).integers(0, 5, len(b)).astype(np.float64)
    np.testing.assert_array_equal(nms(b, scores, thr), nms_reference(b, scores, thr))


@pytest.mark.parametrize("seed", range(3))
def test_nms_equals_the_slow_reference_on_many_blocks(seed):
    # more boxes than one block of the fast path, densely overlapping
    rng = np.random.default_rng(seed)
    b = random_boxes(rng, 700, spread=60)
    s = rng.random(700)
    np.testing.assert_array_equal(nms(b, s, 0.5), nms_reference(b, s, 0.5))


@settings(max_examples=80, deadline=None)
@given(box_arrays(max_n=40), st.integers(0, 2**31 - 1))
def test_batched_nms_never_suppresses_across_classes(b, seed):
    rng = np.random.default_rng(seed)
    scores = rng.random(len(b))
    labels = rng.integers(0, 3, len(b))
    keep = batched_nms(b, scores, labels, 0.5)
    for c in range(3):
        members = np.flatnonzero(labels == c)
        expected = members[nms(b[members], scores[members], 0.5)]
        assert set(keep[labels[keep] == c].tolist()) == set(expected.tolist())
    assert np.all(np.diff(scores[keep]) <= 0)


def test_batched_nms_keeps_identical_boxes_of_different_classes():
    boxes = np.array([[0, 0, 10, 10]] * 3, np.float32)
    keep = batched_nms(boxes, [0.5, 0.9, 0.7], [0, 1, 0], 0.5)
    assert keep.tolist() == [1, 2]


def _batched_nms_by_hand(b, scores, labels, thr):
    """Per-category NMS written out: each category's survivors, then all sorted by score, index."""
    kept = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        kept += members[nms_reference(b[members], scores[members], thr)].tolist()
    return np.array(sorted(kept, key=lambda k: (-scores[k], k)), dtype=np.int64)


@settings(max_examples=100, deadline=None)
@given(
    box_arrays(max_n=40),
    st.floats(0.0, 1.0),
    st.integers(0, 2**31 - 1),
    st.sampled_from([3, 2**40, 10**16, 2**62]),
)
def test_batched_nms_equals_per_category_nms_for_any_ids(b, thr, seed, id_range):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, len(b)).astype(np.float64)  # repeats exercise the tie rule
    pool = rng.integers(-id_range, id_range, 3, dtype=np.int64)  # few categories, huge values
    labels = pool[rng.integers(0, 3, len(b))]
    np.testing.assert_array_equal(
        batched_nms(b, scores, labels, thr), _batched_nms_by_hand(b, scores, labels, thr)
    )


def test_batched_nms_keeps_categories_apart_even_with_huge_ids():
    # an offset trick would map ids 0 and 10**16 to boxes 10**16 * 11 apart in float64, where
    # [0, 0, 1, 1] shifted loses its size; per-category NMS keeps the big box and one small one
    boxes = [[0, 0, 10, 10], [0, 0, 1, 1], [0, 0, 1, 1]]
    keep = batched_nms(boxes, [1.0, 0.9, 0.8], [0, 10**16, 10**16], 0.5)
    assert keep.tolist() == [0, 1]


def test_batched_nms_orders_equal_scores_by_index_across_categories():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [0, 0, 1, 1], [9, 9, 10, 10]], np.float32)
    keep = batched_nms(boxes, [0.5, 0.5, 0.5, 0.7], [2, 1, 0, 2], 0.5)
    assert keep.tolist() == [3, 0, 1, 2]


# --- edge cases -----------------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [np.zeros((0, 4), np.float32), [], np.zeros((0,), np.float32)])
def test_empty_inputs_give_empty_outputs_of_the_right_shape(empty):
    assert box_area(empty).shape == (0,)
    assert box_iou(empty, [[0, 0, 1, 1]]).shape == (0, 1)
    assert box_iou([[0, 0, 1, 1]], empty).shape == (1, 0)
    assert clip_boxes_to_image(empty, (5, 5)).shape == (0, 4)
    for keep in (
        remove_small_boxes(empty, 1),
        nms(empty, [], 0.5),
        batched_nms(empty, [], np.zeros(0, np.int64), 0.5),
    ):
        assert keep.shape == (0,) and keep.dtype == np.int64


def test_zero_area_boxes_have_zero_iou_not_nan():
    b = np.array([[1, 1, 1, 5], [1, 1, 1, 5], [0, 0, 4, 4]], np.float32)
    iou = box_iou(b, b)
    assert not np.isnan(iou).any()
    assert iou[0, 1] == 0 and iou[2, 2] == 1
    assert nms(b, [0.3, 0.2, 0.1], 0.5).tolist() == [0, 1, 2]


def test_float32_stays_float32_and_float64_stays_float64():
    b32 = np.array([[0, 0, 2, 2]], np.float32)
    assert box_iou(b32, b32).dtype == np.float32
    assert box_iou(b32.astype(np.float64), b32.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize(
    "fn",
    [
        lambda b: box_area(b),
        lambda b: box_iou(b, b),
        lambda b: nms(b, np.ones(len(b)), 0.5),
        lambda b: clip_boxes_to_image(b, (10, 10)),
    ],
)
@pytest.mark.parametrize(
    "bad, message",
    [
        ([[0, 0, 1, np.nan]], "finite"),
        ([[5, 0, 1, 1]], "x1 <= x2"),
        ([[0, 0, 1]], r"\(N, 4\)"),
        (np.zeros((2, 4), bool), "real numbers"),
    ],
)
def test_bad_boxes_give_a_clear_value_error(fn, bad, message):
    with pytest.raises(ValueError, match=message):
        fn(np.asarray(bad))


def test_nan_scores_give_a_clear_value_error():
    with pytest.raises(ValueError, match="scores must be finite"):
        nms([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5, np.nan], 0.5)
    with pytest.raises(ValueError, match=r"scores must have shape \(2,\)"):
        nms([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5], 0.5)


# --- parity with torchvision (skipped where it is not installed) ----------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_ops_match_torchvision(seed):
    torch = pytest.importorskip("torch")
    tvops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(seed)
    b = random_boxes(rng, 300, spread=80).astype(np.float32)
    s = rng.random(300).astype(np.float32)
    labels = rng.integers(0, 4, 300)
    tb, ts = torch.from_numpy(b), torch.from_numpy(s)
    np.testing.assert_allclose(box_iou(b, b), tvops.box_iou(tb, tb).numpy(), atol=1e-6)
    np.testing.assert_allclose(box_area(b), tvops.box_area(tb).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(nms(b, s, 0.5), tvops.nms(tb, ts, 0.5).numpy())
    np.testing.assert_array_equal(
        batched_nms(b, s, labels, 0.5),
        tvops.batched_nms(tb, ts, torch.from_numpy(labels), 0.5).numpy(),
    )
    np.testing.assert_array_equal(
        remove_small_boxes(b, 10.0), tvops.remove_small_boxes(tb, 10.0).numpy()
    )
    np.testing.assert_array_equal(
        clip_boxes_to_image(b - 20, (70, 60)), tvops.clip_boxes_to_image(tb - 20, (70, 60)).numpy()
    )


@pytest.mark.parametrize("n, classes", [(300, 60), (2500, 91)])
def test_batched_nms_matches_torchvision_with_many_classes(n, classes):
    # 2500 boxes take torchvision's per-class ("vanilla") path, 300 its coordinate-offset path
    torch = pytest.importorskip("torch")
    tvops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(n)
    b = random_boxes(rng, n, spread=300).astype(np.float32)
    s = rng.random(n).astype(np.float32)
    labels = rng.integers(0, classes, n)
    expected = tvops.batched_nms(
        torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(labels), 0.5
    ).numpy()
    np.testing.assert_array_equal(batched_nms(b, s, labels, 0.5), expected)


@pytest.mark.parametrize(
    "dtype, scale",
    [(np.float64, 1e155), (np.float64, 1e307), (np.float32, 3e38), (np.float32, 1e20)],
)
def test_box_iou_of_boxes_whose_area_overflows_is_exact_not_nan(dtype, scale):
    # a square and its left half: IoU 1/2; the areas (scale^2) overflow the dtype
    b = np.array([[0, 0, 1, 1], [0, 0, 0.5, 1]], dtype) * dtype(scale)
    iou = box_iou(b, b)
    assert iou.dtype == dtype
    np.testing.assert_allclose(iou, [[1, 0.5], [0.5, 1]], rtol=1e-6)
    assert nms(b[[0, 0]], np.array([1.0, 0.5], dtype), 0.5).tolist() == [0]  # equal boxes: one


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e-170), (np.float32, 1e-25)])
def test_box_iou_of_tiny_boxes_whose_area_underflows_is_exact_not_zero(dtype, scale):
    b = np.array([[0, 0, 1, 1], [0, 0, 0.5, 1]], dtype) * dtype(scale)
    np.testing.assert_allclose(box_iou(b, b), [[1, 0.5], [0.5, 1]], rtol=1e-6)


def test_box_iou_spanning_the_whole_float64_range_stays_finite():
    big = np.finfo(np.float64).max
    b = np.array([[-big, -big, big, big], [0, 0, big, big]])
    np.testing.assert_allclose(box_iou(b, b), [[1, 0.25], [0.25, 1]], rtol=1e-12)


@pytest.mark.parametrize("fn", [nms, nms_reference])
@pytest.mark.parametrize(
    "threshold, message",
    [(float("nan"), "not NaN"), ("0.5", "real number"), (None, "real number"), (1.5, r"\[0, 1\]")],
)
def test_nms_refuses_a_threshold_that_is_not_a_number_in_the_unit_interval(fn, threshold, message):
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 1]], float)
    with pytest.raises(ValueError, match="iou_threshold.*" + message):
        fn(boxes, np.array([1.0, 0.5]), threshold)


def test_batched_nms_refuses_a_nan_threshold():
    with pytest.raises(ValueError, match="iou_threshold"):
        batched_nms(np.zeros((1, 4)), np.ones(1), np.zeros(1, int), float("nan"))
