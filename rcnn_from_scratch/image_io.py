"""Reading a user's image from disk into the package's image convention (``H x W x 3`` uint8).

Used by the command line (``predict``, ``propose``). Every failure is an :class:`ImageReadError`
with a one-line message naming the file and the reason, so the CLI can print it and exit with code 2.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .conventions import as_rgb_uint8

__all__ = ["ImageReadError", "read_image"]


class ImageReadError(ValueError):
    """The file is missing, unreadable, or not an image we can use."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``H x W x 3`` uint8.

    Grayscale is repeated over three channels, alpha is dropped, 16-bit images are scaled to 8 bits.

    Raises:
        ImageReadError: missing file, a folder, an unreadable or non-image file, or an image whose
            array is not 2-D grayscale or colour (for example an animation or a volume).
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{p}: no such file")
    if p.is_dir():
        raise ImageReadError(f"{p}: is a folder, not an image file")
    try:
        import imageio.v3 as iio

        with warnings.catch_warnings():  # imageio warns about plugins it tries on odd files
            warnings.simplefilter("ignore")
            array = np.asarray(iio.imread(p))
    except Exception as err:  # imageio raises many types for a file it cannot decode
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageReadError(f"{p}: cannot be read as an image ({reason})") from None
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    try:
        return as_rgb_uint8(array, name=str(p))
    except ValueError as err:
        raise ImageReadError(str(err)) from None
