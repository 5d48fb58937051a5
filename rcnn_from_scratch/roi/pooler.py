"""Choosing the RoI operator of a detector's heads: RoI pooling (Fast / Faster R-CNN) or RoIAlign
(Mask R-CNN), by name, so that one config field switches it (the Mask R-CNN ablation)."""

from __future__ import annotations

from .roi_align import RoIAlign
from .roi_pool import RoIPool

__all__ = ["POOLERS", "make_pooler"]

POOLERS = ("roi_pool", "roi_align")


def make_pooler(kind: str, output_size: int, spatial_scale: float) -> RoIPool | RoIAlign:
    """``"roi_pool"``: :class:`RoIPool`; ``"roi_align"``: :class:`RoIAlign` with Mask R-CNN's
    settings (sampling ratio 2, aligned). Both map ``(N, C, H, W)`` features and ``(K, 5)`` RoIs in
    image pixels to ``(K, C, output_size, output_size)``; ``spatial_scale`` is 1 / the stride."""
    size = (int(output_size), int(output_size))
    if kind == "roi_pool":
        return RoIPool(size, spatial_scale)
    if kind == "roi_align":
        return RoIAlign(size, spatial_scale, sampling_ratio=2, aligned=True)
    raise ValueError(f"pooler must be one of {POOLERS}; got {kind!r}")
