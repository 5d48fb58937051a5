"""The package's conventions, stated once, and the input checks every public function uses.

Boxes
    A float array of shape ``(N, 4)`` holding ``x1, y1, x2, y2`` in *continuous pixel coordinates*:
    pixel ``(row i, col j)`` covers the square ``[j, j + 1) x [i, i + 1)``, so the whole of an
    ``H x W`` image is the box ``[0, 0, W, H]``. Width is ``x2 - x1`` and height ``y2 - y1`` (no +1,
    as in torchvision). A box with ``x2 == x1`` is legal and has zero area; ``x2 < x1`` is an error.

RoIs
    ``(K, 5)``: the batch index of the image first, then a box: ``[n, x1, y1, x2, y2]`` (torchvision's
    layout; d2l calls the first column "class", which it is not). A list of ``(L_i, 4)`` arrays, one
    per image, is accepted wherever torchvision accepts it.

Images
    In: ``H x W x 3`` uint8, or float in ``[0, 1]``. ``H x W`` and ``H x W x 1`` (grayscale) and
    ``H x W x 4`` (RGBA, alpha dropped) are converted. Anything else is a ``ValueError``. Note the trap:
    scikit-image's ``felzenszwalb`` docstring says ``(width, height, 3)``; the array is ``(H, W, 3)``.

Tensors
    Inside the networks: ``N x C x H x W``, float32 (gradient checks use float64). Shape letters used
    everywhere: N images, C channels, H/W height/width, K RoIs, A anchors per location, P pooled size,
    M mask size, G ground-truth boxes, D detections.

Other frames, for readers coming from elsewhere: torchvision's anchor aspect ratio is ``h / w`` (d2l's is
``w / h``; ours is torchvision's); matterport stores normalised ``(y1, x1, y2, x2)``; ours is pixels.

Numbers and sizes
    A threshold, a scale, a count or a size that a function or a config takes is checked at the entry
    (:func:`check_real`, :func:`check_threshold`, :func:`check_positive_finite`, :func:`check_int`):
    a string, ``None``, a bool, NaN or an out-of-range value is a ``ValueError`` there, never a NumPy
    message later. An array whose size follows from the arguments (RoIs x bins x samples, a huge
    output size) is checked by :func:`check_allocation` before it is made: above
    ``MAX_ALLOCATION_BYTES`` it is a ``ValueError``, never a ``MemoryError``.

Every check raises ``ValueError`` (never ``assert``, which ``python -O`` removes) with a message that
names the argument, what was expected and what came.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "as_boxes",
    "as_rois",
    "as_scores",
    "as_feature_map",
    "as_rgb_float",
    "as_rgb_uint8",
    "check_finite",
    "check_real",
    "check_threshold",
    "check_positive_finite",
    "check_int",
    "check_allocation",
    "MAX_ALLOCATION_BYTES",
]

# the largest array any function makes from its arguments (4 GiB): far above what the models need
# (torchvision-size RoI heads use tens of MB), far below what would exhaust a machine's memory
MAX_ALLOCATION_BYTES = 4 * 2**30


def _describe(x: np.ndarray) -> str:
    return f"shape {tuple(x.shape)} and dtype {x.dtype}"


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``x`` holds a NaN or an infinity."""
    if x.size and not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise ValueError(f"{name} must be finite; got {bad} NaN or infinite value(s)")


def _as_real_array(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except Exception as err:  # ragged lists and the like
        raise ValueError(f"{name} must be a numeric array; got {type(x).__name__}") from err
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    return arr


def as_boxes(boxes, name: str = "boxes", dtype=None) -> np.ndarray:
    """Check ``boxes`` and return it as a float ``(N, 4)`` array.

    Args:
        boxes: array-like ``(N, 4)`` of ``x1, y1, x2, y2`` in pixels. An empty input (``N = 0``, also
            a plain ``[]``) is legal and gives shape ``(0, 4)``.
        name: the argument's name, used in error messages.
        dtype: the float dtype wanted; by default float64 inputs stay float64 and everything else
            becomes float32.

    Raises:
        ValueError: wrong shape or dtype, NaN or infinity, or ``x2 < x1`` or ``y2 < y1``.
    """
    arr = _as_real_array(boxes, name)
    if arr.size == 0 and arr.ndim <= 2 and (arr.ndim < 2 or arr.shape[-1] in (0, 4)):
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) as x1, y1, x2, y2; got {_describe(arr)}")
    if dtype is None:
        dtype = np.float64 if arr.dtype == np.float64 else np.float32
    arr = arr.astype(dtype, copy=False)
    check_finite(arr, name)
    bad = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must satisfy x1 <= x2 and y1 <= y2; box {i} is {arr[i].tolist()}")
    return arr


def as_scores(scores, n: int, name: str = "scores") -> np.ndarray:
    """Check a ``(N,)`` array of finite scores that goes with ``n`` boxes; return it as float."""
    arr = _as_real_array(scores, name)
    if arr.size == 0 and n == 0:
        arr = arr.reshape(0)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), one per box; got {_describe(arr)}")
    arr = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32, copy=False)
    check_finite(arr, name)
    return arr


def as_rois(boxes, num_images: int | None = None, name: str = "boxes") -> np.ndarray:
    """Return RoIs as a float ``(K, 5)`` array ``[n, x1, y1, x2, y2]``.

    Args:
        boxes: ``(K, 5)`` with the batch index first, or a list of ``(L_i, 4)`` NumPy arrays, one
            per image (the list's position is the batch index), as torchvision accepts.
        num_images: when given, every batch index must lie in ``[0, num_images)``.

    Raises:
        ValueError: wrong shape, a non-integer or out-of-range batch index, NaN, or ``x2 < x1``.
    """
    if isinstance(boxes, (list, tuple)) and all(isinstance(b, np.ndarray) for b in boxes):
        parts = [as_boxes(b, f"{name}[{i}]", dtype=np.float64) for i, b in enumerate(boxes)]
        idx = [np.full((len(p), 1), i, dtype=np.float64) for i, p in enumerate(parts)]
        if not parts:
            return np.zeros((0, 5), np.float32)
        rois = np.concatenate([np.concatenate(idx), np.concatenate(parts)], axis=1)
        any_f64 = any(np.asarray(b).dtype == np.float64 for b in boxes)
        return rois.astype(np.float64 if any_f64 else np.float32)
    arr = _as_real_array(boxes, name)
    if arr.size == 0 and arr.ndim <= 2 and (arr.ndim < 2 or arr.shape[-1] in (0, 5)):
        arr = arr.reshape(0, 5)
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(
            f"{name} must have shape (K, 5) with the batch index first, or be a list of (L, 4) "
            f"arrays; got {_describe(arr)}"
        )
    arr = arr.astype(np.float64 if arr.dtype == np.float64 else np.float32, copy=False)
    check_finite(arr, name)
    as_boxes(arr[:, 1:], name)
    index = arr[:, 0]
    if np.any(index != np.round(index)) or np.any(index < 0):
        raise ValueError(f"{name}[:, 0] is the batch index and must hold integers >= 0")
    if num_images is not None and np.any(index >= num_images):
        raise ValueError(
            f"{name}[:, 0] holds batch index {int(index.max())}, but the input has only "
            f"{num_images} image(s)"
        )
    return arr


def as_feature_map(x, name: str = "input") -> np.ndarray:
    """Check an ``(N, C, H, W)`` float feature map (float32 or float64) and return it."""
    arr = np.asarray(x)
    if arr.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W); got {_describe(arr)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be float32 or float64; got dtype {arr.dtype}")
    check_finite(arr, name)
    return arr


def as_rgb_float(image, name: str = "image") -> np.ndarray:
    """Return an image as ``H x W x 3`` float32 in ``[0, 1]``.

    Accepts ``H x W x 3`` uint8 or float in ``[0, 1]``; grayscale (``H x W`` or ``H x W x 1``) is
    repeated over three channels; RGBA drops its alpha channel. Anything else is a ``ValueError``.
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must be an H x W x 3 colour image (H x W grayscale and H x W x 4 RGBA are "
            f"converted); got {_describe(arr)}"
        )
    arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        check_finite(arr, name)
        if arr.min() < 0 or arr.max() > 1:
            raise ValueError(
                f"{name} as floats must lie in [0, 1]; got values in [{arr.min():g}, {arr.max():g}]"
            )
        return arr.astype(np.float32)
    raise ValueError(f"{name} must be uint8 or float in [0, 1]; got dtype {arr.dtype}")


def as_rgb_uint8(image, name: str = "image") -> np.ndarray:
    """Return an image as ``H x W x 3`` uint8 (same input rules as :func:`as_rgb_float`)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3:
        return arr
    return np.round(as_rgb_float(arr, name) * 255.0).astype(np.uint8)


def as_size(size: int | Sequence[int], name: str) -> tuple[int, int]:
    """Return ``(h, w)`` from an int or a pair of positive ints (torchvision's ``output_size``)."""
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an int or a pair (h, w); got {size!r}") from err
    if h <= 0 or w <= 0:
        raise ValueError(f"{name} must be positive; got {(h, w)}")
    return h, w


def check_real(value, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float: a real number (int or float, NumPy's too; not a bool, a string or
    ``None``), not NaN, in ``[low, high]`` (infinities pass only if the range includes them)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name} must be a real number, not NaN")
    if not (low <= v <= high):
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}]; got {value!r}")
    return v


def check_threshold(value, name: str) -> float:
    """An IoU (or probability) threshold: a real number in ``[0, 1]``, returned as a float."""
    return check_real(value, name, 0.0, 1.0)


def check_positive_finite(value, name: str) -> float:
    """A scale or a size: a finite real number ``> 0``, returned as a float."""
    v = check_real(value, name)
    if not (0 < v < math.inf):
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return v


def check_int(value, name: str, low: int | None = None, high: int | None = None) -> int:
    """An integer (Python's or NumPy's; not a bool or a float) in ``[low, high]``, returned as int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}]; got {v}")
    return v


def check_allocation(num_elements, itemsize: int, what: str) -> None:
    """Refuse to make an array of ``num_elements`` items of ``itemsize`` bytes above
    ``MAX_ALLOCATION_BYTES``; ``what`` says which array and which arguments set its size.

    ``num_elements`` may be a float (a product computed before any cast), so that a product that
    would overflow int64 is caught too.
    """
    n = float(num_elements)
    if not n * itemsize <= MAX_ALLOCATION_BYTES:  # also catches NaN
        raise ValueError(
            f"{what} would need {n * itemsize / 2**30:.3g} GiB, more than the "
            f"{MAX_ALLOCATION_BYTES / 2**30:g} GiB any array may take"
        )
