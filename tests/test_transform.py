"""torchvision's GeneralizedRCNNTransform: the size rule, normalising, padding, boxes and masks back."""

import tracemalloc

import numpy as np
import pytest

from rcnn_from_scratch.transform import GeneralizedRCNNTransform, ImageList, resize_boxes

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.mark.parametrize(
    ("size", "resized", "padded"),
    [  # REALSCALE's checked table
        ((480, 640), (800, 1066), (800, 1088)),
        ((427, 640), (800, 1199), (800, 1216)),
        ((640, 480), (1066, 800), (1088, 800)),
        ((333, 1000), (443, 1333), (448, 1344)),
        ((128, 128), (800, 800), (800, 800)),
    ],
)
def test_size_rule_and_padding_of_the_checked_table(size, resized, padded):
    transform = GeneralizedRCNNTransform()
    assert transform.resized_size(*size)[:2] == resized
    batch = transform([np.zeros((*size, 3), np.uint8)])
    assert isinstance(batch, ImageList)
    assert batch.image_sizes == [resized] and batch.tensors.shape == (1, 3, *padded)
    assert batch.tensors.dtype == np.float32


def test_scale_is_the_short_side_rule_unless_the_long_side_binds():
    transform = GeneralizedRCNNTransform()
    assert transform.resized_size(480, 640)[2] == 800 / 480
    assert transform.resized_size(333, 1000)[2] == 1333 / 1000


def test_eval_uses_the_last_min_size_and_fixed_size_is_w_h():
    assert GeneralizedRCNNTransform(min_size=(480, 600)).resized_size(300, 400)[:2] == (600, 800)
    fixed = GeneralizedRCNNTransform(fixed_size=(320, 240))
    assert fixed.resized_size(480, 640) == (240, 320, None)
    assert fixed([np.zeros((50, 70, 3), np.uint8)]).image_sizes == [(240, 320)]


def test_normalised_values_and_zero_padding_of_a_constant_image():
    image = np.empty((10, 20, 3), np.uint8)
    image[...] = (255, 0, 128)
    batch = GeneralizedRCNNTransform()([image])
    (h, w), x = batch.image_sizes[0], batch.tensors[0]
    assert (h, w) == (666, 1333) and x.shape == (3, 672, 1344)
    rgb = np.array([255, 0, 128], np.float32) / np.float32(255)
    expected = (rgb - MEAN) / STD  # float32 throughout, as torchvision
    # the resize blends equal values, which in float32 can be off by an ulp (torch's too)
    full = np.broadcast_to(expected[:, None, None], (3, h, w))
    np.testing.assert_allclose(x[:, :h, :w], full, rtol=3e-7)
    assert not x[:, h:, :].any() and not x[:, :, w:].any()  # padding is 0 after normalising


def test_uint8_float_and_grayscale_inputs_agree():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    transform = GeneralizedRCNNTransform(min_size=64, max_size=100)
    a = transform([rgb]).tensors
    np.testing.assert_array_equal(transform([gray]).tensors, a)
    np.testing.assert_allclose(transform([rgb.astype(np.float32) / 255]).tensors, a, atol=1e-6)
    np.testing.assert_array_equal(transform(rgb).tensors, a)  # a single array is one image


def test_batch_pads_every_image_to_the_largest_size_rounded_to_32():
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(480, 640, 3), (333, 500, 3)]]
    batch = GeneralizedRCNNTransform()(images)
    assert batch.image_sizes == [(800, 1066), (800, 1201)]
    assert batch.tensors.shape == (2, 3, 800, 1216)
    assert not batch.tensors[0, :, :, 1066:].any() and batch.tensors[1, :, :, 1066:1201].any()


def test_input_image_is_not_changed():
    image = np.random.default_rng(2).random((20, 30, 3)).astype(np.float32)
    before = image.copy()
    GeneralizedRCNNTransform(min_size=32, max_size=64)([image])
    np.testing.assert_array_equal(image, before)


def test_a_large_photograph_costs_one_float32_copy_and_output_sized_temporaries():
    image = np.random.default_rng(3).integers(0, 256, (3000, 2000, 3), dtype=np.uint8)
    tracemalloc.start()
    batch = GeneralizedRCNNTransform()([image])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    one_copy = 3 * 3000 * 2000 * 4  # the float32 (3, H, W) image
    resized = 3 * 1200 * 800 * 4
    assert batch.image_sizes == [(1200, 800)]
    assert peak < one_copy + 4 * resized, (peak, one_copy)  # a float64 copy alone would be 2 x


@pytest.mark.parametrize("seed", range(3))
def test_boxes_resized_and_back_are_the_same_boxes(seed):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 400, (20, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0, 200, (20, 2))], axis=1).astype(np.float32)
    there = resize_boxes(boxes, (427, 640), (800, 1199))
    back = resize_boxes(there, (800, 1199), (427, 640))
    assert there.dtype == np.float32
    np.testing.assert_allclose(back, boxes, rtol=1e-6, atol=1e-4)


def test_the_whole_image_box_maps_to_the_whole_image_box():
    out = resize_boxes([[0, 0, 640, 480]], (480, 640), (800, 1066))
    np.testing.assert_allclose(out, [[0, 0, 1066, 800]], rtol=1e-7)


def test_postprocess_rescales_boxes_pastes_masks_and_keeps_other_keys():
    transform = GeneralizedRCNNTransform()
    detections = [
        {
            "boxes": np.array([[100.0, 200.0, 500.0, 600.0]], np.float32),
            "labels": np.array([3]),
            "masks": np.ones((1, 1, 28, 28), np.float32),
        },
        {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)},
    ]
    out = transform.postprocess(detections, [(800, 1066), (800, 800)], [(480, 640), (128, 128)])
    np.testing.assert_allclose(
        out[0]["boxes"], [[100 * 640 / 1066, 120, 500 * 640 / 1066, 360]], rtol=1e-6
    )
    assert out[0]["masks"].shape == (1, 1, 480, 640) and out[0]["labels"].tolist() == [3]
    assert out[0]["masks"][0, 0, 240, 150] == 1.0 and out[0]["masks"][0, 0, 10, 10] == 0.0
    assert out[1]["boxes"].shape == (0, 4) and "masks" not in out[1]
    assert detections[0]["masks"].shape == (1, 1, 28, 28)  # inputs untouched


@pytest.mark.parametrize(
    ("images", "message"),
    [([], "at least one image"), ([np.zeros((4, 4, 2), np.uint8)], r"images\[0\]")],
)
def test_bad_images_give_clear_errors(images, message):
    with pytest.raises(ValueError, match=message):
        GeneralizedRCNNTransform()(images)


def test_bad_constructor_arguments_give_clear_errors():
    with pytest.raises(ValueError, match="image_mean"):
        GeneralizedRCNNTransform(image_mean=(0.5, 0.5))
    with pytest.raises(ValueError, match="min_size"):
        GeneralizedRCNNTransform(min_size=0)


def _torchvision_transform():
    pytest.importorskip("torch")
    detection = pytest.importorskip("torchvision.models.detection.transform")
    return detection.GeneralizedRCNNTransform(800, 1333, list(MEAN), list(STD)).eval()


def test_transform_equals_torchvisions_in_eval():
    torch = pytest.importorskip("torch")
    theirs_transform = _torchvision_transform()
    rng = np.random.default_rng(5)
    images = [
        rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in [(480, 640), (427, 640), (333, 500)]
    ]
    with torch.no_grad():  # torchvision's preset: uint8 -> float / 255, C x H x W
        theirs, _ = theirs_transform(
            [torch.from_numpy(i).permute(2, 0, 1).float() / 255 for i in images]
        )
    ours = GeneralizedRCNNTransform()(images)
    assert ours.image_sizes == [tuple(s) for s in theirs.image_sizes]
    assert ours.tensors.shape == tuple(theirs.tensors.shape)
    np.testing.assert_allclose(ours.tensors, theirs.tensors.numpy(), rtol=0, atol=1e-5)


def test_postprocess_equals_torchvisions():
    torch = pytest.importorskip("torch")
    theirs_transform = _torchvision_transform()
    rng = np.random.default_rng(6)
    sizes, originals = [(800, 1066), (800, 1201)], [(480, 640), (333, 500)]
    detections = []
    for h, w in sizes:
        xy = rng.uniform(0, [w - 50, h - 50], (15, 2))
        boxes = np.concatenate([xy, np.minimum(xy + rng.uniform(1, 300, (15, 2)), [w, h])], 1)
        masks = rng.random((15, 1, 28, 28), dtype=np.float32)
        detections.append({"boxes": boxes.astype(np.float32), "masks": masks})
    ours = GeneralizedRCNNTransform().postprocess(detections, sizes, originals)
    as_torch = [{k: torch.from_numpy(v) for k, v in d.items()} for d in detections]
    theirs = theirs_transform.postprocess(as_torch, sizes, originals)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(o["boxes"], t["boxes"].numpy())
        diff = np.abs(o["masks"] - t["masks"].numpy())
        assert (diff <= 1e-6).mean() >= 0.9999 and diff.max() < 1e-5
