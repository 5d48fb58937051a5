"""The proposal figures: each returns a Figure with the panels it promises; hierarchy levels."""

import numpy as np
from matplotlib.figure import Figure
from skimage import data

from rcnn_from_scratch.proposals.region_features import (
    convert_colour,
    pixel_bins,
    region_adjacency,
    region_features,
)
from rcnn_from_scratch.proposals.selective_search import (
    SIMILARITIES,
    hierarchical_grouping,
    hierarchy_labels,
    initial_segmentation,
    selective_search,
)
from rcnn_from_scratch.viz.proposals import (
    mean_colour_image,
    plot_hierarchy,
    plot_proposals,
    plot_segments,
    plot_warps,
)


def grouped():
    image = data.coffee()[::8, ::8]
    channels = convert_colour(image, "hsv")
    labels = initial_segmentation(channels, 30)
    f = region_features(labels, *pixel_bins(channels))
    return image, labels, hierarchical_grouping(f, region_adjacency(labels), SIMILARITIES["CTSF"])


def test_hierarchy_labels_lose_one_region_per_merge_and_end_in_one():
    _, labels, h = grouped()
    R = labels.max() + 1
    for n in (0, 1, R // 2, R - 1):
        assert len(np.unique(hierarchy_labels(labels, h.merges, n))) == R - n
    np.testing.assert_array_equal(hierarchy_labels(labels, h.merges, 0), labels)
    assert np.all(hierarchy_labels(labels, h.merges, R - 1) == 2 * R - 2)


def test_mean_colour_image_is_constant_per_segment_with_the_segments_mean():
    image, labels, _ = grouped()
    out = mean_colour_image(image, labels)
    mask = labels == 3
    np.testing.assert_allclose(
        out[mask], np.broadcast_to((image[mask] / 255).mean(0), out[mask].shape), atol=1e-6
    )


def test_figures_have_their_panels():
    image, labels, h = grouped()
    assert isinstance(plot_segments(image, labels), Figure)
    assert len(plot_segments(image, labels).axes) == 2
    assert len(plot_hierarchy(image, labels, h.merges, counts=(None, 10, 1)).axes) == 3
    boxes = selective_search(image, "single")
    assert len(plot_proposals(image, boxes, n=(5, 50), gt_boxes=[[10, 5, 40, 30]]).axes) == 2
    fig = plot_warps(image, [10, 5, 40, 20], size=32, padding=4)
    assert len(fig.axes) == 4
    assert fig.axes[1].get_title().endswith("aspect 1.00")  # the anisotropic warp squares it
    assert fig.axes[2].get_title().endswith("aspect 2.00")  # the square crops keep 30 / 15
