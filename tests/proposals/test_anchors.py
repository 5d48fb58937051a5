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
