"""Reading images from disk: good files of every kind, and a one-line error for everything else."""

import imageio.v3 as iio
import numpy as np
import pytest

from rcnn_from_scratch.image_io import ImageReadError, read_image


@pytest.mark.parametrize(
    "array",
    [
        np.random.default_rng(0).integers(0, 256, (12, 9, 3), dtype=np.uint8),
        np.random.default_rng(1).integers(0, 256, (12, 9), dtype=np.uint8),
        np.random.default_rng(2).integers(0, 256, (12, 9, 4), dtype=np.uint8),
    ],
    ids=["rgb", "gray", "rgba"],
)
def test_png_files_are_read_as_rgb_uint8(tmp_path, array):
    path = tmp_path / "image.png"
    iio.imwrite(path, array)
    image = read_image(path)
    assert image.shape == (12, 9, 3) and image.dtype == np.uint8
    expected = array[..., :3] if array.ndim == 3 else np.repeat(array[..., None], 3, axis=2)
    np.testing.assert_array_equal(image, expected)


def test_sixteen_bit_images_are_scaled_to_eight_bits(tmp_path):
    path = tmp_path / "deep.png"
    iio.imwrite(path, np.full((4, 4), 65535, np.uint16))
    assert read_image(path).max() == 255


def test_a_missing_file_is_named_in_a_one_line_error(tmp_path):
    with pytest.raises(ImageReadError, match="no such file") as info:
        read_image(tmp_path / "nope.png")
    assert "\n" not in str(info.value)


def test_a_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_a_text_file_posing_as_png_is_rejected(tmp_path):
    path = tmp_path / "fake.png"
    path.write_text("this is not an image")
    with pytest.raises(ImageReadError, match="cannot be read") as info:
        read_image(path)
    assert "\n" not in str(info.value)


# --- sizes ----------------------------------------------------------------------------------------


def test_a_photograph_is_shrunk_to_its_longer_side_keeping_the_aspect_ratio():
    from PIL import Image

    from rcnn_from_scratch.image_io import fit_longer_side

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (300, 450, 3), dtype=np.uint8)
    small = fit_longer_side(image, 150)
    assert small.shape == (100, 150, 3) and small.dtype == np.uint8
    # Pillow's own bilinear reduction (an antialiased filter), which the function must be
    expected = np.asarray(Image.fromarray(image).resize((150, 100), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(small, expected)
    # an image that fits is handed back untouched, and a strip keeps at least one pixel
    assert fit_longer_side(image, 450) is image
    assert fit_longer_side(np.zeros((2, 3000, 3), np.uint8), 1000).shape == (1, 1000, 3)


def test_shrinking_a_constant_image_keeps_its_value():
    from rcnn_from_scratch.image_io import fit_longer_side

    small = fit_longer_side(np.full((999, 1001, 3), 77, np.uint8), 100)
    assert small.shape == (100, 100, 3) and np.all(small == 77)


def test_an_image_smaller_than_a_model_takes_is_named_with_the_minimum():
    from rcnn_from_scratch.image_io import check_min_side

    check_min_side(np.zeros((8, 9, 3), np.uint8), 8, "a.png", "the model")
    with pytest.raises(ImageReadError, match=r"a.png: the image is too small, 3 x 2 .* 8 x 8"):
        check_min_side(np.zeros((2, 3, 3), np.uint8), 8, "a.png", "the model")


def test_a_file_of_too_many_pixels_is_refused_before_it_is_decoded(tmp_path, monkeypatch):
    import rcnn_from_scratch.image_io as image_io

    path = tmp_path / "wide.png"
    iio.imwrite(path, np.zeros((20, 30, 3), np.uint8))
    monkeypatch.setattr(image_io, "MAX_PIXELS", 599)
    decoded = []
    monkeypatch.setattr(iio, "imread", lambda *a, **k: decoded.append(1))
    with pytest.raises(ImageReadError, match=r"wide.png: 30 x 20 pixels .* more than") as info:
        read_image(path)
    assert "\n" not in str(info.value) and not decoded
