"""What every command checks before it starts work: argparse types, output files, images in,
and the one-line error with exit code 2."""

from __future__ import annotations

import argparse
import sys

# The longest side of a photograph that predict and propose look at; a larger one is shrunk first
# (with a note). predict: torchvision's max_size, so the ResNet-50-FPN models lose nothing they would
# see (their transform resizes to at most 1333 anyway) and the shapes model peaks near 700 MiB on a
# 1333 x 1333 image; propose: selective search peaks near 700 MiB (fast) and 800 MiB (quality) at
# 800 x 800, 1.9 GB at 1333 x 1333.
PREDICT_MAX_SIDE = 1333
PROPOSE_MAX_SIDE = 800
# training images are generated and held in memory (about 0.1 MB each)
MAX_IMAGES = 10_000


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a mistake is one line (``error: ...``) and exit code 2; argparse's own
    prints the usage first. Subcommands inherit it (``add_subparsers`` uses the parent's class)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _int_in(low: int, high: int | None = None, why: str = ""):
    """An argparse ``type``: an int in ``[low, high]``, else argparse's one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}{why}; got {value}")
        return value

    return parse


def _minutes(text: str) -> float:
    """An argparse ``type``: a positive, finite number of minutes."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes; got {text}")
    return value


def _cannot_write(folder) -> str | None:
    """Why no file can be created in ``folder``, or ``None`` if one can (tried, not guessed:
    permission bits say nothing for root or on a read-only file system)."""
    import os
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".rcnn-write-check-", dir=folder)
    except OSError as err:
        return err.strerror or type(err).__name__
    os.close(fd)
    os.unlink(probe)
    return None


def _check_output_file(path, option: str = "--out", suffixes=None) -> str | None:
    """The one-line reason why ``path`` cannot be written, or ``None``; checked before any work."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        return f"{option} {path}: is a folder; name the file to write in it"
    if suffixes is not None and path.suffix.lower().lstrip(".") not in suffixes:
        return f"{option} {path}: the file name must end in one of " + ", ".join(
            "." + s for s in sorted(suffixes)
        )
    folder = path.parent
    if not folder.is_dir():
        return f"{option} {path}: the folder {folder} does not exist"
    reason = _cannot_write(folder)
    if reason is not None:
        return f"{option} {path}: cannot write in the folder {folder} ({reason})"
    return None


def _figure_suffixes() -> set[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes())


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _read(path: str, max_side: int, note: str = ""):
    """The image at ``path`` shrunk to fit ``max_side`` (a one-line note says so, ending in
    ``note``) and its original ``(height, width)``, or ``None`` after printing the one-line reason."""
    from ..image_io import ImageReadError, fit_longer_side, read_image

    try:
        image = read_image(path)
    except ImageReadError as err:
        _fail(str(err))
        return None
    original = image.shape[:2]
    image = fit_longer_side(image, max_side)
    if image.shape[:2] != original:
        (h, w), (H, W) = image.shape[:2], original
        print(f"note: {path} is {W} x {H} pixels; shrunk to {w} x {h} (longer side at most "
              f"{max_side}) to bound the memory{note}")  # fmt: skip
    return image, original


def _to_original(boxes, image, original):
    """Boxes in the (shrunk) image's pixels -> the original image's pixels."""
    import numpy as np

    sy, sx = original[0] / image.shape[0], original[1] / image.shape[1]
    return boxes * np.array([sx, sy, sx, sy], np.float32)
