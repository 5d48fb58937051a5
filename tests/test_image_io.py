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
