"""Selective search: region features against per-region loops and scikit-image, the fast grouping
against the slow reference, the hierarchy's structure, ranking, and recall on real and shapes images."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import data, measure, transform

from rcnn_from_scratch.boxes import box_iou
from rcnn_from_scratch.datasets.shapes import ShapesDataset
from rcnn_from_scratch.proposals.region_features import (
    COLOUR_BINS,
    COLOUR_SPACES,
    TEXTURE_BINS,
    convert_colour,
    histogram_bins,
    pixel_bins,
    region_adjacency,
    region_features,
    texture_responses,
)
from rcnn_from_scratch.proposals.selective_search import (
    SIMILARITIES,
    best_overlaps,
    hierarchical_grouping,
    hierarchical_grouping_reference,
    hierarchy_labels,
    initial_segmentation,
    recall_and_mabo,
    selective_search,
    selective_search_reference,
    strategies,
)

LABELS = json.loads((Path(__file__).parent / "labelled_boxes.json").read_text())["images"]


def small_image():
    return data.coffee()[::8, ::8]  # (50, 75, 3)


def segmented(image, space="hsv", k=100):
    channels = convert_colour(image, space)
    colour_bins, texture_bins = pixel_bins(channels)
    labels = initial_segmentation(channels, k)
    return channels, labels, region_features(labels, colour_bins, texture_bins)


def resized_500(name):
    image = getattr(data, name)()
    image = image[0] if isinstance(image, tuple) else image
    s = 500 / max(image.shape[:2])
    shape = (round(image.shape[0] * s), round(image.shape[1] * s))
    return (transform.resize(image, shape, anti_aliasing=True) * 255).round().astype(np.uint8)


# --- region features ------------------------------------------------------------------------


@pytest.mark.parametrize("space", COLOUR_SPACES)
def test_colour_spaces_lie_in_the_unit_range(space):
    out = convert_colour(small_image(), space)
    assert out.shape[:2] == (50, 75) and out.shape[2] in (1, 3)
    assert out.min() >= 0 and out.max() <= 1


def test_rgi_chromaticity_and_hue_ignore_the_intensity():
    image = small_image().astype(np.float64) / 255 * 0.5
    for space, channels in (("rgi", slice(0, 2)), ("hue", slice(0, 1))):
        a = convert_colour(image, space)[..., channels]
        b = convert_colour(image * 1.8, space)[..., channels]
        np.testing.assert_allclose(a, b, atol=1e-6)  # the pipeline's images are float32


def test_region_features_match_per_region_histograms_and_regionprops():
    image = small_image()
    channels, labels, f = segmented(image)
    R = labels.max() + 1
    props = measure.regionprops(labels + 1)
    resp = texture_responses(channels)
    lo, hi = resp.min(axis=(0, 1)), resp.max(axis=(0, 1))
    for r in range(R):
        mask = labels == r
        assert f.size[r] == mask.sum() == props[r].area
        y1, x1, y2, x2 = props[r].bbox
        np.testing.assert_array_equal(f.boxes[r], [x1, y1, x2, y2])
        colour = np.concatenate(
            [np.histogram(channels[..., c][mask], COLOUR_BINS, (0, 1))[0] for c in range(3)]
        )
        np.testing.assert_allclose(f.colour[r], colour / colour.sum())
        texture = np.concatenate(
            [
                np.histogram(resp[..., c, o][mask], TEXTURE_BINS, (lo[c, o], hi[c, o]))[0]
                for c in range(3)
                for o in range(8)
            ]
        )
        np.testing.assert_allclose(f.texture[r], texture / texture.sum())


@pytest.mark.parametrize("space", ["hsv", "lab", "intensity"])
def test_pixel_bins_equal_the_bins_of_the_whole_response_array(space):
    # the fast path bins one (H, W) response at a time; the definition bins the (H, W, C, 8) array
    channels = convert_colour(data.astronaut()[::4, ::4], space)
    colour_bins, texture_bins = pixel_bins(channels)
    C = channels.shape[2]
    resp = texture_responses(channels)
    lo, hi = resp.min(axis=(0, 1)), resp.max(axis=(0, 1))
    expected = np.clip(((resp - lo) / np.where(hi > lo, hi - lo, 1) * 10).astype(int), 0, 9)
    assert colour_bins.shape == (C, 128, 128) and texture_bins.shape == (8 * C, 128, 128)
    np.testing.assert_array_equal(
        colour_bins, np.moveaxis(np.clip((channels * 25).astype(int), 0, 24), 2, 0)
    )
    np.testing.assert_array_equal(texture_bins, np.moveaxis(expected.reshape(128, 128, -1), 2, 0))


def test_histogram_bins_of_values_outside_the_range_go_to_the_end_bins():
    values = np.array([-0.5, 0.0, 0.05, 0.1, 0.55, 0.99, 1.0, 1.7])
    np.testing.assert_array_equal(histogram_bins(values, 10), [0, 0, 0, 1, 5, 9, 9, 9])
    np.testing.assert_array_equal(histogram_bins(np.full(3, 2.0), 4, 2.0, 2.0), [0, 0, 0])


def test_region_features_refuse_labels_with_gaps():
    labels = np.array([[0, 0, 2], [0, 2, 2]])
    bins = np.zeros((1, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="labels"):
        region_features(labels, bins, bins)


def test_texture_responses_are_steered_gaussian_derivatives():
    # on a linear ramp a x + b y the derivative along theta is a cos + b sin, away from the border
    # (up to the truncation of the sampled Gaussian kernel)
    yy, xx = np.mgrid[0:40, 0:40].astype(np.float64)
    ramp = (0.01 * xx + 0.02 * yy)[..., None]
    resp = texture_responses(ramp)[10:-10, 10:-10, 0]  # (H, W, 8)
    theta = np.arange(8) * np.pi / 4
    np.testing.assert_allclose(
        resp, np.broadcast_to(0.01 * np.cos(theta) + 0.02 * np.sin(theta), resp.shape), rtol=1e-3
    )


def test_adjacency_matches_a_loop_over_8_neighbours():
    labels = segmented(small_image())[1]
    H, W = labels.shape
    expected = set()
    for i in range(H):
        for j in range(W):
            for di, dj in ((0, 1), (1, 0), (1, 1), (1, -1)):
                if 0 <= i + di < H and 0 <= j + dj < W and labels[i, j] != labels[i + di, j + dj]:
                    a, b = labels[i, j], labels[i + di, j + dj]
                    expected.add((min(a, b), max(a, b)))
    assert {tuple(p) for p in region_adjacency(labels).tolist()} == expected


# --- grouping --------------------------------------------------------------------------------


@pytest.mark.parametrize("sim", list(SIMILARITIES))
@pytest.mark.parametrize("space", ["rgb", "lab", "intensity"])
def test_fast_grouping_equals_the_reference(sim, space):
    _, labels, f = segmented(small_image(), space, k=30)
    adjacency = region_adjacency(labels)
    fast = hierarchical_grouping(f, adjacency, SIMILARITIES[sim])
    slow = hierarchical_grouping_reference(f, adjacency, SIMILARITIES[sim])
    assert len(f.size) > 10
    np.testing.assert_array_equal(fast.merges, slow.merges)
    np.testing.assert_array_equal(fast.boxes, slow.boxes)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    k=st.sampled_from([5, 20, 60]),
    weights=st.tuples(*[st.integers(0, 1)] * 4),
)
def test_fast_grouping_equals_the_reference_on_random_images(seed, k, weights):
    # blocky random images: plenty of equal similarities, so the tie rule is exercised too
    rng = np.random.default_rng(seed)
    image = np.kron(rng.integers(0, 4, (6, 8, 3)) * 80, np.ones((3, 3, 1))).astype(np.uint8)
    _, labels, f = segmented(image, "rgb", k)
    adjacency = region_adjacency(labels)
    fast = hierarchical_grouping(f, adjacency, weights)
    slow = hierarchical_grouping_reference(f, adjacency, weights)
    np.testing.assert_array_equal(fast.merges, slow.merges)
    np.testing.assert_array_equal(fast.boxes, slow.boxes)
    assert len(fast.boxes) == 2 * len(f.size) - 1


def test_hierarchy_ends_in_the_whole_image_and_merged_boxes_are_unions():
    _, labels, f = segmented(small_image())
    h = hierarchical_grouping(f, region_adjacency(labels), SIMILARITIES["CTSF"])
    R = len(f.size)
    assert h.boxes.shape == (2 * R - 1, 4) and h.merges.shape == (R - 1, 2)
    np.testing.assert_array_equal(h.boxes[-1], [0, 0, 75, 50])
    a, b = h.boxes[h.merges[:, 0]], h.boxes[h.merges[:, 1]]
    np.testing.assert_array_equal(h.boxes[R:, :2], np.minimum(a[:, :2], b[:, :2]))
    np.testing.assert_array_equal(h.boxes[R:, 2:], np.maximum(a[:, 2:], b[:, 2:]))
    # each region is merged exactly once, and only after it was formed
    used = h.merges.ravel()
    assert len(np.unique(used)) == len(used) == 2 * R - 2
    assert np.all(h.merges < np.arange(R, 2 * R - 1)[:, None])


def test_merged_histograms_are_the_histograms_of_the_merged_pixels():
    channels, labels, f = segmented(small_image())
    h = hierarchical_grouping(f, region_adjacency(labels), SIMILARITIES["CTSF"])
    colour_bins, texture_bins = pixel_bins(channels)
    n = len(h.merges) // 2
    level = hierarchy_labels(labels, h.merges, n)
    # the region formed by merge n - 1 has the histograms of its pixels, computed from scratch
    mask = (level == len(f.size) + n - 1).astype(np.int64)
    whole = region_features(mask, colour_bins, texture_bins)
    np.testing.assert_array_equal(whole.boxes[1], h.boxes[len(f.size) + n - 1])
    # the size-weighted mean rule, replayed along the merges, reaches the same histogram
    colour = list(f.colour)
    size = list(f.size)
    for a, b in h.merges[:n].tolist():
        colour.append((size[a] * colour[a] + size[b] * colour[b]) / (size[a] + size[b]))
        size.append(size[a] + size[b])
    np.testing.assert_allclose(colour[-1], whole.colour[1], atol=1e-12)


def test_size_similarity_alone_grows_the_smallest_regions_first():
    _, labels, f = segmented(small_image())
    h = hierarchical_grouping(f, region_adjacency(labels), SIMILARITIES["S"])
    first = h.merges[0]
    adjacency = region_adjacency(labels)
    pair_sizes = f.size[adjacency[:, 0]] + f.size[adjacency[:, 1]]
    assert f.size[first].sum() == pair_sizes.min()


# --- the public function --------------------------------------------------------------------


def test_strategies_of_the_three_modes_are_the_papers():
    assert len(strategies("single")) == 1
    assert len(strategies("fast")) == 8
    assert len(strategies("quality")) == 80
    assert {s.colour_space for s in strategies("fast")} == {"hsv", "lab"}


def test_boxes_are_unique_on_pixel_edges_inside_the_image_and_include_the_whole_image():
    image = small_image()
    boxes = selective_search(image, "fast")
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert len(np.unique(boxes, axis=0)) == len(boxes)
    np.testing.assert_array_equal(boxes, np.round(boxes))
    assert boxes[:, :2].min() >= 0 and boxes[:, 2].max() <= 75 and boxes[:, 3].max() <= 50
    assert np.all(boxes[:, 2:] > boxes[:, :2])
    assert [0, 0, 75, 50] in boxes.tolist()


def test_single_strategy_ranks_exactly_the_hierarchys_boxes():
    image = small_image()
    _, labels, f = segmented(image, "hsv", 100)
    h = hierarchical_grouping(f, region_adjacency(labels), SIMILARITIES["CTSF"])
    boxes = selective_search(image, "single")
    assert {tuple(b) for b in boxes.tolist()} == {tuple(b) for b in h.boxes.tolist()}


def test_ranking_follows_the_seed_and_the_reference_grouping_gives_the_same_boxes():
    image = small_image()[:32, :40]
    a = selective_search(image, "fast", seed=3)
    np.testing.assert_array_equal(a, selective_search(image, "fast", seed=3))
    np.testing.assert_array_equal(a, selective_search_reference(image, "fast", seed=3))
    b = selective_search(image, "fast", seed=4)
    assert not np.array_equal(a, b)
    assert {tuple(x) for x in a.tolist()} == {tuple(x) for x in b.tolist()}
    np.testing.assert_array_equal(selective_search(image, "fast", seed=3, max_boxes=5), a[:5])


def test_threads_change_nothing_but_the_time():
    # every colour space and segmentation is worked out independently; the ranking runs after
    image = resized_500("coffee")[::2, ::2]
    one = selective_search(image, "fast", threads=1)
    np.testing.assert_array_equal(selective_search(image, "fast", threads=2), one)
    np.testing.assert_array_equal(selective_search(image, "fast", threads=3), one)
    np.testing.assert_array_equal(selective_search(image, "fast"), one)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_bad_thread_counts_are_named(threads):
    with pytest.raises(ValueError, match="threads"):
        selective_search(small_image(), "single", threads=threads)


def test_top_of_the_ranking_prefers_large_late_regions():
    # random * level: the early ranks hold regions from high in the hierarchy, hence large ones
    # (a random order would give a ratio near 1; we measured 2.2 to 3.1 over these seeds)
    for seed in range(5):
        boxes = selective_search(small_image(), "fast", seed=seed)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        quarter = len(boxes) // 4
        assert np.median(area[:quarter]) > 1.8 * np.median(area[-quarter:])


def test_quality_mode_runs_on_a_small_image_and_finds_more_boxes_than_fast():
    image = data.astronaut()[::16, ::16]  # (32, 32, 3)
    quality = selective_search(image, "quality")
    fast = selective_search(image, "fast")
    assert len(quality) > len(fast)


def test_grayscale_and_float_images_are_accepted():
    grey = data.camera()[::10, ::10]
    assert len(selective_search(grey, "single")) > 0
    assert len(selective_search(grey / 255.0, "single")) > 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode"):
        selective_search(small_image(), "best")
    with pytest.raises(ValueError, match="colour_spaces"):
        selective_search(small_image(), colour_spaces=("xyz",))
    with pytest.raises(ValueError, match="similarities"):
        selective_search(small_image(), similarities=("CT",))
    with pytest.raises(ValueError, match="image"):
        selective_search(np.zeros((4, 4, 2)))


# --- quality ---------------------------------------------------------------------------------


def test_recall_and_mabo_of_a_worked_case():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30.0]])
    proposals = np.array([[0, 0, 10, 10], [20, 20, 30, 35.0]])  # IoU 1 and 100 / 150
    recall, mabo = recall_and_mabo(proposals, gt)
    np.testing.assert_allclose(recall, [1.0, 0.5])
    np.testing.assert_allclose(mabo, (1 + 2 / 3) / 2)
    np.testing.assert_array_equal(best_overlaps(np.zeros((0, 4)), gt), [0, 0])


def test_recall_on_shapes_images_is_close_to_one():
    dataset = ShapesDataset("eval", size=8)
    best = []
    for i in range(len(dataset)):
        image, target = dataset[i]
        best.append(best_overlaps(selective_search(image, "fast")[:2000], target["boxes"]))
    best = np.concatenate(best)
    assert len(best) >= 10
    assert (best >= 0.5).mean() >= 0.95
    assert best.mean() >= 0.8


@pytest.mark.parametrize("name", ["coffee", "stereo_motorcycle"])
def test_recall_on_labelled_photographs(name):
    # measured 1.00 recall@0.5 over all six labelled photographs at 2,000 boxes (benchmarks/):
    # two of them here keep the suite fast; the bound leaves room for the ranking's randomness
    image = resized_500(name)
    gt = np.array(list(LABELS[name].values()), np.float64)
    boxes = selective_search(image, "fast")[:2000]
    recall, mabo = recall_and_mabo(boxes, gt)
    assert recall[0] >= 0.85 and mabo >= 0.75
    # and the best box of each object is far better than the whole image would be
    whole = box_iou(gt, [[0, 0, image.shape[1], image.shape[0]]])[:, 0]
    assert np.all(best_overlaps(boxes, gt) >= whole)
