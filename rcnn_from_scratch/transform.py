"""torchvision's ``GeneralizedRCNNTransform``: what happens to an image before the backbone sees it,
and to the detections on their way back.

Forward, per image (eval; torchvision's ``forward``, ``normalize``, ``resize``, ``batch_images``):

1. to float32 ``C x H x W`` in ``[0, 1]`` (uint8 is divided by 255, as the weights' preset
   ``convert_image_dtype`` does);
2. normalise, ``(x - mean) / std`` per channel, in float32;
3. resize so that the short side becomes ``min_size`` unless the long side would then pass
   ``max_size`` (:meth:`GeneralizedRCNNTransform.resized_size`), with torch's bilinear kernel
   (:func:`~rcnn_from_scratch.bilinear.interpolate_bilinear`, no antialias even when shrinking);
4. pad the batch with zeros on the bottom and right to a multiple of ``size_divisible``; the padding
   is 0 *after* normalising, i.e. the mean colour.

Back (``postprocess``): boxes, found in the resized image, are scaled to the original image
(:func:`resize_boxes`, no clipping), and 28 x 28 mask probabilities are pasted into the original image
(:func:`~rcnn_from_scratch.postprocess.paste_masks_torchvision`).

A 480 x 640 photograph becomes ``(1, 3, 800, 1088)`` with ``image_sizes == [(800, 1066)]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .bilinear import interpolate_bilinear
from .conventions import as_boxes, as_rgb_float, as_rgb_uint8
from .postprocess import paste_masks_torchvision

__all__ = ["ImageList", "GeneralizedRCNNTransform", "resize_boxes"]


class ImageList(NamedTuple):
    """A padded batch and the size of each image inside it (torchvision's ``ImageList``)."""

    tensors: np.ndarray  # (N, 3, Hp, Wp) float32, normalised, zero-padded bottom / right
    image_sizes: list[tuple[int, int]]  # resized, unpadded (h, w) of each image


def resize_boxes(boxes, original_size, new_size) -> np.ndarray:
    """Scale boxes from an image of ``original_size`` to one of ``new_size`` (torchvision's).

    Args:
        boxes: ``(D, 4)`` ``x1, y1, x2, y2`` in the pixels of the ``original_size`` image.
        original_size: ``(h, w)`` the boxes are in.
        new_size: ``(h, w)`` they go to.

    Returns:
        ``(D, 4)`` boxes, float32 (float64 stays float64): ``x`` times ``new_w / orig_w`` and ``y``
        times ``new_h / orig_h``, each ratio computed in float32 as torchvision does; not clipped.
    """
    b = as_boxes(boxes)
    (oh, ow), (nh, nw) = original_size, new_size
    if min(oh, ow, nh, nw) <= 0:
        raise ValueError(
            f"original_size and new_size must be positive (h, w); got {original_size}, {new_size}"
        )
    ratio_h = np.float32(nh) / np.float32(oh)
    ratio_w = np.float32(nw) / np.float32(ow)
    ratios = np.array([ratio_w, ratio_h, ratio_w, ratio_h], dtype=np.float32).astype(b.dtype)
    return b * ratios


def _normalised_chw(image, mean: np.ndarray, std: np.ndarray, name: str) -> np.ndarray:
    """``(3, H, W)`` float32 ``(x / 255 - mean) / std`` with one full-size float32 array only."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        rgb = as_rgb_uint8(arr, name)  # H x W x 3 input comes back as itself, no copy
        out = np.empty((3, *rgb.shape[:2]), np.float32)
        for c in range(3):  # one whole plane per step
            np.divide(rgb[:, :, c], np.float32(255), out=out[c], dtype=np.float32)
    else:
        rgb = as_rgb_float(arr, name)  # float32 H x W x 3, a copy of its own
        if np.may_share_memory(rgb, arr):
            rgb = rgb.copy()
        out = rgb.transpose(2, 0, 1)  # (3, H, W) view
    for c in range(3):
        out[c] -= mean[c]
        out[c] /= std[c]
    return out


class GeneralizedRCNNTransform:
    """Normalise, resize and batch images for the R-CNN detectors; map detections back.

    Args:
        min_size: target length of the short side; a tuple lists training choices and eval uses
            the last (torchvision turns an int into a one-tuple).
        max_size: the long side is never made longer than this.
        image_mean, image_std: per-channel RGB statistics of ``[0, 1]`` images (ImageNet's).
        size_divisible: the batch's height and width are rounded up to a multiple of this.
        fixed_size: ``(w, h)`` (torchvision's order) to resize every image to, ignoring its aspect
            ratio; ``None`` (the detectors' setting) uses the min / max rule.

    Only the eval path is implemented (no targets, no random choice of ``min_size``).
    """

    def __init__(
        self,
        min_size: int | Sequence[int] = 800,
        max_size: int = 1333,
        image_mean: Sequence[float] = (0.485, 0.456, 0.406),
        image_std: Sequence[float] = (0.229, 0.224, 0.225),
        size_divisible: int = 32,
        fixed_size: tuple[int, int] | None = None,
    ):
        if not isinstance(min_size, (list, tuple)):
            min_size = (min_size,)
        if len(min_size) == 0 or any(int(s) <= 0 for s in min_size):
            raise ValueError(f"min_size must be a positive int or tuple of them; got {min_size}")
        if int(max_size) <= 0:
            raise ValueError(f"max_size must be positive; got {max_size}")
        mean = np.asarray(image_mean, dtype=np.float32)
        std = np.asarray(image_std, dtype=np.float32)
        if mean.shape != (3,) or std.shape != (3,) or np.any(std <= 0):
            raise ValueError(
                f"image_mean and image_std must hold 3 values (RGB), std > 0; got {image_mean} "
                f"and {image_std}"
            )
        if int(size_divisible) <= 0:
            raise ValueError(f"size_divisible must be positive; got {size_divisible}")
        if fixed_size is not None and (len(fixed_size) != 2 or min(fixed_size) <= 0):
            raise ValueError(f"fixed_size must be a positive (w, h) or None; got {fixed_size}")
        self.min_size = tuple(int(s) for s in min_size)
        self.max_size = int(max_size)
        self.image_mean = tuple(float(v) for v in image_mean)
        self.image_std = tuple(float(v) for v in image_std)
        self.size_divisible = int(size_divisible)
        self.fixed_size = None if fixed_size is None else (int(fixed_size[0]), int(fixed_size[1]))
        self._mean, self._std = mean, std

    def resized_size(self, h: int, w: int) -> tuple[int, int, float | None]:
        """``(new_h, new_w, scale)`` of an ``h x w`` image (torchvision's eager rule).

        ``scale = min(min_size / min(h, w), max_size / max(h, w))`` in Python float and
        ``new = int(side * scale)``, a truncation: 480 x 640 -> 800 x 1066 (scale 5 / 3);
        427 x 640 -> 800 x 1199; 333 x 1000 -> 443 x 1333 (the long side binds); 128 x 128 ->
        800 x 800 (upscaled 6.25 times). With ``fixed_size = (fw, fh)`` it is ``(fh, fw, None)``.
        """
        h, w = int(h), int(w)
        if h <= 0 or w <= 0:
            raise ValueError(f"image size must be positive; got {(h, w)}")
        if self.fixed_size is not None:
            return self.fixed_size[1], self.fixed_size[0], None
        scale = min(self.min_size[-1] / min(h, w), self.max_size / max(h, w))
        new_h, new_w = int(h * scale), int(w * scale)
        if new_h < 1 or new_w < 1:
            raise ValueError(f"an image of {h} x {w} would be resized to {new_h} x {new_w}")
        return new_h, new_w, scale

    def __call__(self, images) -> ImageList:
        """Normalise, resize and pad a list of images into one batch.

        Args:
            images: a list of ``H x W x 3`` images, uint8 or float in ``[0, 1]`` (grayscale and RGBA
                are converted, see ``conventions``), of any sizes; a single array is one image.

        Returns:
            ``ImageList(tensors, image_sizes)``: ``(N, 3, Hp, Wp)`` float32 with ``Hp, Wp`` the
            largest resized height and width rounded up to ``size_divisible``, zeros in the padding;
            ``image_sizes[i]`` is image ``i``'s resized ``(h, w)`` before padding.

        Each image exists at full size once, as a float32 ``(3, H, W)`` array, and is resized before
        the next is read, so a 6000 x 6000 photograph costs one float32 copy, nothing in float64.
        """
        if isinstance(images, np.ndarray):
            images = [images]
        images = list(images)
        if not images:
            raise ValueError("images must hold at least one image; got an empty list")
        resized = []
        for i, image in enumerate(images):
            chw = _normalised_chw(image, self._mean, self._std, f"images[{i}]")
            new_h, new_w, _ = self.resized_size(*chw.shape[1:])
            resized.append(interpolate_bilinear(chw, (new_h, new_w)))  # (3, h, w)
            del chw
        sizes = [(int(r.shape[1]), int(r.shape[2])) for r in resized]
        stride = float(self.size_divisible)
        Hp = int(math.ceil(max(h for h, _ in sizes) / stride) * stride)
        Wp = int(math.ceil(max(w for _, w in sizes) / stride) * stride)
        batch = np.zeros((len(resized), 3, Hp, Wp), np.float32)  # (N, 3, Hp, Wp)
        for i, r in enumerate(resized):
            batch[i, :, : r.shape[1], : r.shape[2]] = r
        return ImageList(batch, sizes)

    def postprocess(self, detections, image_sizes, original_image_sizes) -> list[dict]:
        """Detections from resized-image pixels back to the original images.

        Args:
            detections: one dict per image with ``"boxes"`` ``(D, 4)`` in the resized image's pixels
                and optionally ``"masks"``: ``(D, 1, M, M)`` (torchvision's layout) or ``(D, M, M)``
                mask probabilities; other keys (``"labels"``, ``"scores"``) pass through.
            image_sizes: resized ``(h, w)`` per image (``ImageList.image_sizes``).
            original_image_sizes: ``(H, W)`` per image before the transform.

        Returns:
            New dicts (the inputs are not changed): ``"boxes"`` scaled by :func:`resize_boxes`
            (float32, not clipped) and ``"masks"`` pasted by
            :func:`~rcnn_from_scratch.postprocess.paste_masks_torchvision` with the rescaled boxes
            into ``(D, 1, H, W)`` float32 probabilities, not thresholded (torchvision's layout).
        """
        if not (len(detections) == len(image_sizes) == len(original_image_sizes)):
            raise ValueError(
                "detections, image_sizes and original_image_sizes must have one entry per image; "
                f"got {len(detections)}, {len(image_sizes)} and {len(original_image_sizes)}"
            )
        results = []
        for pred, size, original in zip(detections, image_sizes, original_image_sizes, strict=True):
            out = dict(pred)
            out["boxes"] = resize_boxes(pred["boxes"], size, original)
            if "masks" in pred:
                out["masks"] = paste_masks_torchvision(pred["masks"], out["boxes"], original)
            results.append(out)
        return results
