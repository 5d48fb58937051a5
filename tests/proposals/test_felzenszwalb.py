"""Our readable Felzenszwalb-Huttenlocher against scikit-image's compiled one: identical labels."""

import numpy as np
import pytest
from skimage import data
from skimage.segmentation import felzenszwalb as skimage_felzenszwalb

from rcnn_from_scratch.proposals.felzenszwalb import felzenszwalb, pixel_graph

IMAGES = {
    "astronaut": lambda: data.astronaut()[100:164, 150:230],
    "coffee": lambda: data.coffee()[::6, ::6],
    "chelsea": lambda: data.chelsea()[::5, ::5],
    "camera (grayscale)": lambda: data.camera()[::8, ::8],
    "noise (float)": lambda: np.random.default_rng(0).random((30, 40, 3)),
}


@pytest.mark.parametrize("name", list(IMAGES))
@pytest.mark.parametrize(
    "scale, sigma, min_size", [(1, 0.8, 20), (100, 0.8, 50), (300, 0.5, 10), (50, 0.0, 0)]
)
def test_segmentation_is_identical_to_skimage(name, scale, sigma, min_size):
    image = IMAGES[name]()
    ours = felzenszwalb(image, scale, sigma, min_size)
    theirs = skimage_felzenszwalb(
        image,
        scale=scale,
        sigma=sigma,
        min_size=min_size,
        channel_axis=-1 if image.ndim == 3 else None,
    )
    np.testing.assert_array_equal(ours, theirs)


def test_segments_respect_min_size_and_are_numbered_in_raster_order():
    image = data.coffee()[::8, ::8]
    labels = felzenszwalb(image, scale=100, sigma=0.8, min_size=30)
    assert np.bincount(labels.ravel()).min() >= 30
    _, first = np.unique(labels.ravel(), return_index=True)
    assert np.all(np.diff(first) > 0)


def test_two_flat_halves_give_two_segments():
    image = np.zeros((10, 12, 3), np.uint8)
    image[:, 6:] = 200
    labels = felzenszwalb(image, scale=10, sigma=0.0, min_size=1)
    expected = np.zeros((10, 12), np.int64)
    expected[:, 6:] = 1
    np.testing.assert_array_equal(labels, expected)


def test_pixel_graph_has_every_8_neighbour_pair_once_sorted_by_weight():
    H, W = 4, 5
    image = np.random.default_rng(1).random((H, W, 3))
    edges, weights = pixel_graph(image)
    assert len(edges) == 4 * H * W - 3 * H - 3 * W + 2
    assert np.all(np.diff(weights) >= 0)
    pairs = {tuple(sorted(e)) for e in edges.tolist()}
    expected = {
        tuple(sorted((i * W + j, (i + di) * W + j + dj)))
        for i in range(H) for j in range(W)
        for di, dj in ((0, 1), (1, 0), (1, 1), (-1, 1))
        if 0 <= i + di < H and 0 <= j + dj < W
    }  # fmt: skip
    assert pairs == expected
    a, b = np.unravel_index(edges[:, 0], (H, W)), np.unravel_index(edges[:, 1], (H, W))
    np.testing.assert_allclose(weights, np.linalg.norm(image[a] - image[b], axis=1))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="image"):
        felzenszwalb(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="scale"):
        felzenszwalb(np.zeros((4, 4)), scale=0)
