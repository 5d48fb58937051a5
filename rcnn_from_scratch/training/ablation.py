"""The Mask R-CNN paper's Table 2c in miniature: the same model trained twice, RoI pooling against
RoIAlign in both heads, same seed, same budget; mask and box AP side by side with the paper's figures.

    python -m rcnn_from_scratch ablation --out DIR --steps N --seed S

trains both arms (``train mask-rcnn --pooler roi_pool`` and ``--pooler roi_align``) into ``DIR`` and
prints the table. The shipped files in ``data/`` come from exactly these two training commands.

The backbone ablation (Mask R-CNN's Table 2a, FPN's Table 1, in miniature) does the same for the
pyramid: :func:`run_backbone_ablation` trains ``train mask-rcnn-fpn --arm single_level`` and
``--arm fpn`` with one seed and one budget, :func:`backbone_ablation_table` puts their AP by size and
RPN recall side by side.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .faster_rcnn import build_detector, train_and_save, training_record
from .feature_pyramid import build_mask_rcnn_fpn, train_and_save_pyramid

__all__ = [
    "PAPER", "run_ablation", "ablation_table", "PAPER_BACKBONE", "run_backbone_ablation",
    "backbone_ablation_table",
]  # fmt: skip

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


# He et al. 2017, Table 2a (COCO minival): mask AP, ResNet-50-C4 against ResNet-50-FPN
PAPER_BACKBONE = {"single_level": 30.3, "fpn": 33.6}
BACKBONE_ARMS = ("single_level", "fpn")


def run_backbone_ablation(
    out_dir, steps: int = 500, seed: int = 0, config: dict | None = None, **kwargs
) -> dict[str, Path]:
    """Train both arms of the pyramid model into ``out_dir`` (``mask_rcnn_single_level.npz``,
    ``mask_rcnn_fpn.npz``): same seed, same steps, same time budget (``minutes`` in ``kwargs``,
    :func:`~.faster_rcnn.train_detector`'s keywords). ``config`` overrides model fields (a smoke
    test's tiny widths), the same for both arms."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    eval_images = kwargs.pop("eval_images", 200)
    paths = {}
    for arm in BACKBONE_ARMS:
        paths[arm] = out_dir / f"mask_rcnn_{arm}.npz"
        command = " ".join(["python -m rcnn_from_scratch", *sys.argv[1:]]) + f"  [arm {arm}]"
        model = build_mask_rcnn_fpn(arm, seed=seed, **(config or {}))
        train_and_save_pyramid(model, paths[arm], command, eval_images=eval_images, steps=steps,
                               seed=seed, **kwargs)  # fmt: skip
    return paths


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def backbone_ablation_table(single_level_path, fpn_path) -> str:
    """Markdown tables from the two arms' records: box and mask AP (all sizes, AP@0.5, AP@0.75,
    small / medium / large), then the RPN's recall by size; the paper's mask AP beside ours."""
    records = {"single level (stride 32)": training_record(single_level_path)[0],
               "FPN (P2-P6)": training_record(fpn_path)[0]}  # fmt: skip
    paper = dict(zip(records, (PAPER_BACKBONE["single_level"], PAPER_BACKBONE["fpn"]), strict=True))
    lines = [
        "| backbone | kind | AP | AP@0.5 | AP@0.75 | AP_S | AP_M | AP_L | paper mask AP |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in records.items():
        for kind in ("segm", "bbox"):
            a = r[kind]
            lines.append(
                f"| {name} | {'mask' if kind == 'segm' else 'box'} | {_pct(a['all']['map'])} | "
                f"{_pct(a['all']['map50'])} | {_pct(a['all']['map75'])} | "
                f"{_pct(a['small']['map'])} | {_pct(a['medium']['map'])} | "
                f"{_pct(a['large']['map'])} | {paper[name] if kind == 'segm' else ''} |"
            )
    sizes = ("all", "small", "medium", "large")
    lines += ["", "| backbone | proposals | " + " | ".join(f"recall {s} @0.5 / @0.7" for s in sizes)
              + " |", "|---|---|" + "---|" * len(sizes)]  # fmt: skip
    for name, r in records.items():
        for n in ("100", "300", "1000"):
            cells = [
                f"{_pct(r['rpn_recall'][s][n]['0.5'])} / {_pct(r['rpn_recall'][s][n]['0.7'])}"
                for s in sizes
            ]
            lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
