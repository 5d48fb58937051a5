"""RoIAlign over a pyramid: the level rule's measured table, the scales, which level a RoI reads,
the scatter back into order, gradients, and torchvision's LevelMapper and MultiScaleRoIAlign."""

import numpy as np
import pytest

from rcnn_from_scratch.nn.gradcheck import numerical_gradient, relative_error
from rcnn_from_scratch.roi.multiscale import (
    MultiScaleRoIAlign,
    infer_scale,
    level_of_boxes,
    multiscale_roi_align_backward,
    multiscale_roi_align_forward,
    setup_scales,
)
from rcnn_from_scratch.roi.roi_align import roi_align


def _squares(sides, x0=0.0):
    s = np.asarray(sides, np.float32)
    return np.stack([np.full_like(s, x0), np.full_like(s, x0), x0 + s, x0 + s], axis=1)


def test_level_rule_boundaries_at_112_224_448():
    # REALSCALE.md's table, measured with torchvision's LevelMapper(2, 5)
    sides = [5, 32, 111, 112, 224, 447, 448, 1000]
    assert level_of_boxes(_squares(sides), 2, 5).tolist() == [0, 0, 0, 1, 2, 2, 3, 3]


def test_level_rule_of_a_non_square_box_uses_the_square_root_of_its_area():
    boxes = np.array([[0, 0, 448, 112], [10, 10, 10 + 896, 10 + 56]], np.float32)  # both 224 x 224
    assert level_of_boxes(boxes, 2, 5).tolist() == [2, 2]


def test_zero_area_boxes_go_to_the_finest_level():
    boxes = np.array([[3, 3, 3, 50], [0, 0, 0, 0], [5, 5, 900, 5]], np.float32)
    assert level_of_boxes(boxes, 2, 5).tolist() == [0, 0, 0]


def test_level_rule_matches_torchvision_level_mapper():
    torch = pytest.importorskip("torch")
    poolers = pytest.importorskip("torchvision.ops.poolers")
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (3000, 2))
    wh = np.exp(rng.uniform(np.log(1), np.log(1200), (3000, 2)))
    boxes = np.hstack([xy, xy + wh]).astype(np.float32)
    boxes = np.concatenate([boxes, _squares([112, 224, 448, 0, 111.99999])])
    expected = poolers.LevelMapper(2, 5)([torch.from_numpy(boxes)]).numpy()
    np.testing.assert_array_equal(level_of_boxes(boxes, 2, 5), expected)
    expected = poolers.LevelMapper(3, 6, 100, 5)([torch.from_numpy(boxes)]).numpy()
    np.testing.assert_array_equal(level_of_boxes(boxes, 3, 6, 100, 5), expected)


def test_scales_of_an_fpn_from_the_heights_of_the_largest_image():
    shapes = [(1, 256, 200, 272), (1, 256, 100, 136), (1, 256, 50, 68), (1, 256, 25, 34)]
    assert setup_scales(shapes, [(800, 1066)]) == ([0.25, 0.125, 0.0625, 0.03125], 2, 5)
    assert infer_scale((112, 1), (443, 7)) == 0.25  # only the height counts
    # the maximum over images, height and width separately
    assert setup_scales([(50, 50)], [(100, 400), (200, 300)]) == ([0.25], 2, 2)
    with pytest.raises(ValueError, match="image_shapes"):
        setup_scales(shapes, [])


def _level_valued_maps(c=2):
    """Three maps for a 64 x 64 image at strides 4, 8, 16, each filled with its level index."""
    return [np.full((1, c, 64 // s, 64 // s), float(i)) for i, s in enumerate((4, 8, 16))]


# canonical side 16 at level 3: sides in [8, 16) read level 2, [16, 32) level 3, >= 32 level 4
SMALL_RULE = dict(canonical_scale=16, canonical_level=3)


def test_each_roi_reads_its_level_and_comes_back_in_order():
    rois = np.array(
        [[0, 1, 1, 41, 41], [0, 2, 2, 12, 12], [0, 5, 5, 25, 25], [0, 0, 0, 3, 3]], np.float64
    )  # sides 40, 10, 20, 3 -> levels 2, 0, 1, 0
    out, cache = multiscale_roi_align_forward(
        _level_valued_maps(), rois, 2, 2, [0.25, 0.125, 0.0625], 2, 4, **SMALL_RULE
    )
    assert cache.levels.tolist() == [2, 0, 1, 0]
    np.testing.assert_allclose(out[:, 0, 0, 0], [2, 0, 1, 0])
    assert [i.tolist() for i in cache.index] == [[1, 3], [2], [0]]


def test_each_level_equals_roi_align_on_that_map():
    rng = np.random.default_rng(1)
    maps = [rng.standard_normal((2, 3, 64 // s, 64 // s)) for s in (4, 8, 16)]
    xy = rng.uniform(0, 30, (30, 2))
    rois = np.hstack([rng.integers(0, 2, (30, 1)), xy, xy + rng.uniform(4, 40, (30, 2))])
    scales = [0.25, 0.125, 0.0625]
    out, cache = multiscale_roi_align_forward(maps, rois, (3, 4), 2, scales, 2, 4, **SMALL_RULE)
    assert out.shape == (30, 3, 3, 4) and len(set(cache.levels.tolist())) == 3
    for lv in range(3):
        rows = cache.index[lv]
        np.testing.assert_allclose(
            out[rows], roi_align(maps[lv], rois[rows], (3, 4), scales[lv], 2)
        )


def test_a_single_map_takes_every_roi_without_the_level_rule():
    maps = [np.ones((1, 2, 8, 8))]
    rois = np.array([[0, 0, 0, 500, 500], [0, 0, 0, 2, 2]], np.float64)
    out, cache = multiscale_roi_align_forward(maps, rois, 2, 2, [0.25], 2, 5)
    assert cache.levels.tolist() == [0, 0] and out.shape == (2, 2, 2, 2)


def test_backward_equals_numerical_gradient_per_level():
    rng = np.random.default_rng(2)
    maps = [rng.standard_normal((2, 2, 64 // s, 64 // s)) for s in (4, 8, 16)]
    xy = rng.uniform(0, 30, (9, 2)) + 0.013  # keep samples off grid lines
    rois = np.hstack([rng.integers(0, 2, (9, 1)), xy, xy + rng.uniform(5, 40, (9, 2))])
    args = ((2, 3), 2, [0.25, 0.125, 0.0625], 2, 4)
    out, cache = multiscale_roi_align_forward(maps, rois, *args, **SMALL_RULE)
    assert len(set(cache.levels.tolist())) == 3
    dout = rng.standard_normal(out.shape)
    grads = multiscale_roi_align_backward(dout, cache)
    for lv in range(3):

        def loss(_):
            return float(
                np.sum(multiscale_roi_align_forward(maps, rois, *args, **SMALL_RULE)[0] * dout)
            )

        numeric = numerical_gradient(loss, maps[lv])
        assert grads[lv].shape == maps[lv].shape
        assert relative_error(grads[lv], numeric) < 1e-7


def test_module_wraps_the_pair_and_records_levels():
    rng = np.random.default_rng(3)
    maps = _level_valued_maps(c=3)
    features = {"0": maps[0], "1": maps[1], "2": maps[2], "pool": np.zeros((1, 3, 2, 2))}
    pooler = MultiScaleRoIAlign(["0", "1", "2"], 2, 2, **SMALL_RULE)
    boxes = [np.array([[1, 1, 41, 41], [2, 2, 12, 12], [5, 5, 25, 25]], np.float32)]
    out = pooler(features, boxes, [(64, 64)])
    assert out.shape == (3, 3, 2, 2) and pooler.last_levels.tolist() == [2, 0, 1]
    np.testing.assert_allclose(out[:, 0, 0, 0], [2, 0, 1])
    dout = rng.standard_normal(out.shape)
    grads = pooler.backward(dout)
    assert sorted(grads) == ["0", "1", "2"]
    _, cache = multiscale_roi_align_forward(
        maps, np.hstack([np.zeros((3, 1)), boxes[0]]), 2, 2, [0.25, 0.125, 0.0625], 2, 4,
        **SMALL_RULE,
    )  # fmt: skip
    for lv, g in enumerate(multiscale_roi_align_backward(dout, cache)):
        np.testing.assert_allclose(grads[str(lv)], g)
    with pytest.raises(RuntimeError):
        pooler.backward(dout)


def test_no_boxes_give_an_empty_output_and_zero_gradients():
    pooler = MultiScaleRoIAlign(["0", "1", "2"], 7, 2)
    features = dict(zip("012", _level_valued_maps(c=4), strict=True))
    out = pooler(features, [np.zeros((0, 4)), np.zeros((0, 4))], [(64, 64)])
    assert out.shape == (0, 4, 7, 7) and pooler.last_levels.shape == (0,)
    grads = pooler.backward(out)
    assert all(not g.any() and g.shape == features[n].shape for n, g in grads.items())


def test_bad_input_gives_a_clear_value_error():
    pooler = MultiScaleRoIAlign(["0", "1"], 7, 2)
    with pytest.raises(ValueError, match=r"lacks the map\(s\) \['1'\]"):
        pooler({"0": np.zeros((1, 2, 8, 8))}, [np.zeros((1, 4))], [(32, 32)])
    maps = _level_valued_maps()
    with pytest.raises(ValueError, match="k_min..k_max"):
        multiscale_roi_align_forward(maps, np.zeros((1, 5)), 2, 2, [0.25, 0.125, 0.0625], 2, 5)
    with pytest.raises(ValueError, match="scales"):
        multiscale_roi_align_forward(maps, np.zeros((1, 5)), 2, 2, [0.25], 2, 4)


def test_matches_torchvision_multiscale_roi_align_on_an_800_by_1088_pyramid():
    torch = pytest.importorskip("torch")
    tvops = pytest.importorskip("torchvision.ops")
    rng = np.random.default_rng(4)
    names = ["0", "1", "2", "3"]
    features = {
        n: rng.standard_normal((1, 8, 800 // s, 1088 // s)).astype(np.float32)
        for n, s in zip(names, (4, 8, 16, 32), strict=True)
    }
    features["pool"] = rng.standard_normal((1, 8, 13, 17)).astype(np.float32)
    side = np.exp(rng.uniform(np.log(16), np.log(800), (200, 2)))  # every level
    xy = rng.uniform(0, 1, (200, 2)) * (np.array([1066, 800]) - side)
    boxes = np.hstack([xy, xy + side]).astype(np.float32)
    ours = MultiScaleRoIAlign(names, 7, 2)
    out = ours(features, [boxes], [(800, 1066)])
    assert set(ours.last_levels.tolist()) == {0, 1, 2, 3}

    def theirs(dtype):
        pooler = tvops.MultiScaleRoIAlign(names, 7, 2)
        return pooler(
            {n: torch.from_numpy(f).to(dtype) for n, f in features.items()},
            [torch.from_numpy(boxes).to(dtype)],
            [(800, 1066)],
        ).numpy()

    # torchvision's float32 kernel computes sample coordinates in float32 (about 1.5e-5 cells of
    # error at x = 250 cells); ours computes them in float64, so it agrees with torchvision run in
    # float64 to 3e-7 and with its float32 run to only about 3e-5
    np.testing.assert_allclose(out, theirs(torch.float64), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(out, theirs(torch.float32), atol=1e-4)
    out64 = ours({n: f.astype(np.float64) for n, f in features.items()}, [boxes], [(800, 1066)])
    np.testing.assert_allclose(out64, theirs(torch.float64), atol=1e-12)
