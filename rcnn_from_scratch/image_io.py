"""Reading a user's image from disk into the package's image convention (``H x W x 3`` uint8).

Used by the command line (``predict``, ``propose``). Every failure is an :class:`ImageReadError`
with a one-line message naming the file and the reason, so the CLI can print it and exit with code 2.

Sizes: a file of more than :data:`MAX_PIXELS` pixels is refused before it is decoded (where Pillow
can read its header); :func:`fit_longer_side` shrinks a photograph for a command whose memory grows
with the image (a 6000 x 6000 photograph is 36 M pixels); :func:`check_min_side` refuses an image
smaller than a model can take, in the user's words rather than an internal tensor's.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .conventions import as_rgb_uint8

__all__ = ["MAX_PIXELS", "ImageReadError", "read_image", "fit_longer_side", "check_min_side"]

# 100 M pixels (10,000 x 10,000) is 300 MB as H x W x 3 uint8; Pillow's own guard is 179 M
MAX_PIXELS = 100_000_000


class ImageReadError(ValueError):
    """The file is missing, unreadable, or not an image we can use."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as ``H x W x 3`` uint8.

    Grayscale is repeated over three channels, alpha is dropped, 16-bit images are scaled to 8 bits.

    Raises:
        ImageReadError: missing file, a folder, an unreadable or non-image file, an image of more
            than :data:`MAX_PIXELS` pixels, or an image whose array is not 2-D grayscale or colour
            (for example an animation or a volume).
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{p}: no such file")
    if p.is_dir():
        raise ImageReadError(f"{p}: is a folder, not an image file")
    _check_pixels(p, _header_size(p))
    try:
        import imageio.v3 as iio

        with warnings.catch_warnings():  # imageio warns about plugins it tries on odd files
            warnings.simplefilter("ignore")
            array = np.asarray(iio.imread(p))
    except Exception as err:  # imageio raises many types for a file it cannot decode
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageReadError(f"{p}: cannot be read as an image ({reason})") from None
    if array.ndim >= 2:
        _check_pixels(p, (array.shape[1], array.shape[0]))
    if array.dtype == np.uint16:
        array = (array.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    try:
        return as_rgb_uint8(array, name=str(p))
    except ValueError as err:
        raise ImageReadError(str(err)) from None


def _header_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` from the file's header without decoding it, or ``None`` if Pillow cannot
    tell (imageio's other plugins then decode it, and the size is checked after)."""
    try:
        from PIL import Image

        with warnings.catch_warnings():  # Pillow warns about huge sizes: that is what we check
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return im.size
    except Exception:  # not an image Pillow knows; read_image reports it
        return None


def _check_pixels(path: Path, size: tuple[int, int] | None) -> None:
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        w, h = size
        raise ImageReadError(
            f"{path}: {w} x {h} pixels (width x height) is more than the "
            f"{MAX_PIXELS // 10**6} M pixels this package reads; shrink the image first"
        )


def fit_longer_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` (``H x W x 3`` uint8) shrunk so that its longer side is ``max_side`` pixels, the
    aspect ratio kept (each side rounded, at least 1 pixel); an image that fits is returned as is.

    The shrinking is Pillow's bilinear filter, which widens with the reduction (an average over the
    source pixels each output pixel covers, so no aliasing) and works in uint8: the memory is the
    input and the output, never a float copy of a large photograph.
    """
    if not isinstance(max_side, (int, np.integer)) or max_side < 1:
        raise ValueError(f"max_side must be a positive int; got {max_side!r}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be H x W x 3 uint8; got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    from PIL import Image

    scale = max_side / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR)
    return np.asarray(resized)


def check_min_side(image: np.ndarray, min_side: int, name: str, needs: str) -> None:
    """Raise :class:`ImageReadError` if ``image`` (``H x W x ...``) is narrower than ``min_side``
    pixels on either side; the message names the image (``name``), its size, the minimum and what
    needs it (``needs``, e.g. ``"the shapes Mask R-CNN (stride 8)"``)."""
    h, w = image.shape[:2]
    if min(h, w) < min_side:
        raise ImageReadError(
            f"{name}: the image is too small, {w} x {h} pixels (width x height); {needs} needs "
            f"at least {min_side} x {min_side}"
        )
