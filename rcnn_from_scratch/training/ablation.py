"""The Mask R-CNN paper's Table 2c in miniature: the same model trained twice, RoI pooling against
RoIAlign in both heads, same seed, same budget; mask and box AP side by side with the paper's figures.

    python -m rcnn_from_scratch ablation --out DIR --steps N --seed S

trains both arms (``train mask-rcnn --pooler roi_pool`` and ``--pooler roi_align``) into ``DIR`` and
prints the table. The shipped files in ``data/`` come from exactly these two training commands.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .faster_rcnn import build_detector, train_and_save, training_record

__all__ = ["PAPER", "run_ablation", "ablation_table"]

# He et al. 2017, Table 2c (ResNet-50-C4, COCO minival): mask AP, AP50, AP75
PAPER = {"roi_pool": (26.9, 48.8, 26.4), "roi_align": (30.3, 51.2, 31.5)}


def run_ablation(out_dir, steps: int = 3000, seed: int = 0, **kwargs) -> dict[str, Path]:
    """Train both arms into ``out_dir`` (``mask_rcnn_roi_pool.npz``, ``mask_rcnn_roi_align.npz``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    eval_images = kwargs.pop("eval_images", 200)
    paths = {}
    for pooler in ("roi_pool", "roi_align"):
        paths[pooler] = out_dir / f"mask_rcnn_{pooler}.npz"
        command = " ".join(["python -m rcnn_from_scratch", *sys.argv[1:]]) + f"  [arm {pooler}]"
        train_and_save(build_detector("mask-rcnn", pooler, seed), paths[pooler], command,
                       eval_images=eval_images, steps=steps, seed=seed, **kwargs)  # fmt: skip
    return paths


def ablation_table(roi_pool_path, roi_align_path) -> str:
    """A Markdown table from the two weights files' records, with the paper's figures beside ours."""
    lines = [
        "| RoI operator | mask AP | mask AP@0.5 | mask AP@0.75 | box AP | box AP@0.5 | paper mask "
        "AP / AP50 / AP75 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, path in (("RoIPool", roi_pool_path), ("RoIAlign", roi_align_path)):
        r, _ = training_record(path)
        paper = " / ".join(
            f"{v:.1f}" for v in PAPER["roi_pool" if name == "RoIPool" else "roi_align"]
        )
        lines.append(
            f"| {name} | {100 * r['segm_map']:.1f} | {100 * r['segm_map50']:.1f} | "
            f"{100 * r['segm_map75']:.1f} | {100 * r['bbox_map']:.1f} | {100 * r['bbox_map50']:.1f} | "
            f"{paper} |"
        )
    return "\n".join(lines)
