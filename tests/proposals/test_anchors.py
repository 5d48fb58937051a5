"""Anchors: the reference values, the shift by the stride, and torchvision parity."""

import numpy as np
import pytest

from rcnn_from_scratch.proposals.anchors import AnchorGenerator


def test_base_anchors_are_the_reference_values():
    base = AnchorGenerator.generate_anchors([32], [0.5, 1.0, 2.0])
    assert base.tolist() == [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]]


def test_anchors_are_shifted_by_the_stride_location_by_location():
    gen = AnchorGenerator(((16,),), ((1.0,),))
    anchors = gen((32, 48), [(2, 3)])
    assert anchors.shape == (6, 4)
    # centres on each cell's top-left corner: x = 0, 16, 32; y = 0, 16
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    assert centres.tolist() == [[0, 0], [16, 0], [32, 0], [0, 16], [16, 16], [32, 16]]


def test_anchor_generator_matches_torchvision():
    torch = pytest.importorskip("torch")
    anchor_utils = pytest.importorskip("torchvision.models.detection.anchor_utils")
    image_list = pytest.importorskip("torchvision.models.detection.image_list")
    sizes, ratios = ((16, 32, 64), (32, 64, 128)), ((0.5, 1.0, 2.0),) * 2
    theirs = anchor_utils.AnchorGenerator(sizes, ratios)
    images = image_list.ImageList(torch.zeros(1, 3, 128, 128), [(128, 128)])
    feats = [torch.zeros(1, 8, 16, 16), torch.zeros(1, 8, 8, 8)]
    expected = theirs(images, feats)[0].numpy()
    ours = AnchorGenerator(sizes, ratios)((128, 128), [(16, 16), (8, 8)])
    np.testing.assert_array_equal(ours, expected)
    assert AnchorGenerator(sizes, ratios).num_anchors_per_location() == [9, 9]


FPN_SIZES = ((32,), (64,), (128,), (256,), (512,))
FPN_RATIOS = ((0.5, 1.0, 2.0),) * 5
FPN_GRIDS = [(200, 272), (100, 136), (50, 68), (25, 34), (13, 17)]  # padded 800 x 1088


def test_five_fpn_levels_of_an_800_by_1088_image_give_217413_anchors():
    gen = AnchorGenerator(FPN_SIZES, FPN_RATIOS)
    anchors = gen((800, 1088), FPN_GRIDS)
    assert anchors.shape == (217413, 4) and anchors.dtype == np.float32
    assert gen.num_anchors_per_location() == [3] * 5
    # the cell anchors of REALSCALE.md (torch.round: half to even)
    half = {32: (23, 11, 16), 64: (45, 23, 32), 128: (91, 45, 64), 256: (181, 91, 128),
            512: (362, 181, 256)}  # fmt: skip
    for (size,), base in zip(FPN_SIZES, gen.cell_anchors, strict=True):
        a, b, c = half[size]
        assert base.tolist() == [[-a, -b, a, b], [-c, -c, c, c], [-b, -a, b, a]]
    # the 'pool' level: 13 x 17 cells, stride 800 // 13 = 61 down, 1088 // 17 = 64 across
    pool = anchors[-13 * 17 * 3 :].reshape(13, 17, 3, 4)
    centres = (pool[..., 1, :2] + pool[..., 1, 2:]) / 2  # the square anchor of each cell
    assert centres[1, 0].tolist() == [0, 61] and centres[0, 1].tolist() == [64, 0]
    assert centres[12, 16].tolist() == [16 * 64, 12 * 61]


def test_five_fpn_levels_match_torchvision_exactly():
    torch = pytest.importorskip("torch")
    anchor_utils = pytest.importorskip("torchvision.models.detection.anchor_utils")
    image_list = pytest.importorskip("torchvision.models.detection.image_list")
    theirs = anchor_utils.AnchorGenerator(FPN_SIZES, FPN_RATIOS)
    images = image_list.ImageList(torch.zeros(1, 3, 800, 1088), [(800, 1066)])
    feats = [torch.zeros(1, 1, h, w) for h, w in FPN_GRIDS]
    expected = theirs(images, feats)[0].numpy()
    ours = AnchorGenerator(FPN_SIZES, FPN_RATIOS)((800, 1088), FPN_GRIDS)
    assert ours.dtype == expected.dtype
    np.testing.assert_array_equal(ours, expected)


@pytest.mark.parametrize(
    "sizes, ratios, message",
    [
        ((), (), "sizes must be a non-empty"),
        (((),), ((1.0,),), r"sizes\[0\] must be a non-empty"),
        (((-16.0,),), ((1.0,),), r"sizes\[0\]\[0\] must be a finite number > 0"),
        (((16.0,),), ((0.0,),), r"aspect_ratios\[0\]\[0\] must be a finite number > 0"),
        (((16.0,),), ((float("inf"),),), r"aspect_ratios\[0\]\[0\]"),
        (((16.0,),), ((float("nan"),),), r"aspect_ratios\[0\]\[0\] must be a real number, not NaN"),
        (((16.0,),), (("1",),), r"aspect_ratios\[0\]\[0\] must be a real number"),
    ],
)
def test_empty_negative_zero_infinite_or_nan_sizes_and_ratios_are_refused(sizes, ratios, message):
    with pytest.raises(ValueError, match=message):
        AnchorGenerator(sizes, ratios)


@pytest.mark.parametrize(
    "image_size, feature_size, message",
    [
        ((64, 64), (0, 8), r"feature_sizes\[0\]\[0\] must be an integer in \[1, inf\]"),
        ((64, 64), (8, -1), r"feature_sizes\[0\]\[1\]"),
        ((64, 64), (128, 8), "larger than image_size"),
        ((0, 64), (1, 1), r"image_size\[0\]"),
        ((10**9, 10**9), (10**8, 10**8), "anchors .* would need"),
    ],
)
def test_feature_sizes_of_zero_larger_than_the_image_or_too_many_anchors_are_refused(
    image_size, feature_size, message
):
    with pytest.raises(ValueError, match=message):
        AnchorGenerator(((16.0,),), ((1.0,),))(image_size, [feature_size])
