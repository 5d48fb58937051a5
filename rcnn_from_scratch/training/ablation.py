"""The Mask R-CNN paper's Table 2c in miniature: the same model trained twice, RoI pooling against
RoIAlign in both heads, same seed, same budget; mask and box AP side by side with the paper's figures.

    python -m rcnn_from_scratch ablation --out DIR --steps N --seed S

trains both arms (``train mask-rcnn --pooler roi_pool`` and ``--pooler roi_align``) into ``DIR`` and
prints the table. The shipped files in ``data/`` come from exactly these two training commands.

The backbone ablation (Mask R-CNN's Table 2a, FPN's Table 1, in miniature) does the same for the
pyramid:

    python -m rcnn_from_scratch ablation --backbone --out DIR --steps N --seed S

:func:`run_backbone_ablation` trains ``train mask-rcnn-fpn --arm single_level`` and ``--arm fpn``
with one seed and one budget, :func:`backbone_ablation_table` puts their AP by size and RPN recall
side by side, and :func:`fpn_gain_by_size` gives what the pyramid buys at each object size.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..models.mask_rcnn_fpn import DEFAULT_WEIGHTS
from .faster_rcnn import build_detector, train_and_save, training_record
from .feature_pyramid import build_mask_rcnn_fpn, train_and_save_pyramid

__all__ = [
    "PAPER", "run_ablation", "ablation_table", "PAPER_BACKBONE", "PAPER_FPN_RPN",
    "run_backbone_ablation", "fpn_gain_by_size", "backbone_ablation_table",
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


# He et al. 2017, Table 2a (COCO minival): mask AP, ResNet-50-C4 against ResNet-50-FPN. The paper's
# single-level backbone reads C4 (stride 16); ours reads the trunk's last map (stride 32), as FPN's (b).
PAPER_BACKBONE = {"single_level": 30.3, "fpn": 33.6}
# Lin et al. 2017 (FPN), Table 1: the RPN on COCO minival, average recall (over IoU 0.50:0.95)
# AR100, AR1k, and AR1k of small, medium and large objects
PAPER_FPN_RPN = {
    "(a) C4, one map": (36.1, 48.3, 32.0, 58.7, 62.2),
    "(b) C5, one map (stride 32)": (36.3, 44.9, 25.3, 55.5, 64.2),
    "(c) FPN": (44.0, 56.3, 44.9, 63.4, 66.2),
}
BACKBONE_ARMS = ("single_level", "fpn")  # the order of training and of the tables' rows
SIZES = ("all", "small", "medium", "large")


def run_backbone_ablation(
    out_dir, steps: int = 4000, seed: int = 0, config: dict | None = None, **kwargs
) -> dict[str, Path]:
    """Train both arms of the pyramid model into ``out_dir``, single level first, under the shipped
    files' names (``mask_rcnn_single_level_multiscale.npz``, ``mask_rcnn_fpn_multiscale.npz``):
    same seed, same steps, same time budget (``minutes`` in ``kwargs``,
    :func:`~.faster_rcnn.train_detector`'s keywords). ``config`` overrides model fields (a smoke
    test's tiny widths), the same for both arms. Returns ``{arm: path}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    eval_images = kwargs.pop("eval_images", 200)
    paths = {}
    for arm in BACKBONE_ARMS:
        paths[arm] = out_dir / DEFAULT_WEIGHTS[arm].name
        command = " ".join(["python -m rcnn_from_scratch", *sys.argv[1:]]) + f"  [arm {arm}]"
        model = build_mask_rcnn_fpn(arm, seed=seed, **(config or {}))
        train_and_save_pyramid(model, paths[arm], command, eval_images=eval_images, steps=steps,
                               seed=seed, **kwargs)  # fmt: skip
    return paths


def _value(record, *keys):
    """``record[k1][k2]...``, or ``None`` where a key is missing (a run evaluated on no image) or
    the value is ``None`` (a size class with no object, so no AP)."""
    for key in keys:
        if not isinstance(record, dict) or record.get(key) is None:
            return None
        record = record[key]
    return record


def fpn_gain_by_size(single_level: dict, fpn: dict, metric: str = "map") -> dict:
    """FPN minus single level, per size: what the pyramid buys, object size by object size.

    Args:
        single_level, fpn: the two arms' weights files, or their records
            (:func:`~.faster_rcnn.training_record`'s first value), each ``{"bbox" | "segm":
            {"all" | "small" | "medium" | "large": {metric: AP}}}``.
        metric: ``"map"`` (AP over IoU 0.50:0.95), ``"map50"`` or ``"map75"``.

    Returns:
        ``{"segm": {size: d}, "bbox": {size: d}}``, ``d`` a fraction as the records' (0.05 is five AP
        points), or ``None`` where either arm has no value (an empty size class).
    """
    if metric not in ("map", "map50", "map75"):
        raise ValueError(f"metric must be 'map', 'map50' or 'map75'; got {metric!r}")
    single_level, fpn = _record(single_level), _record(fpn)
    gain = {}
    for kind in ("segm", "bbox"):
        gain[kind] = {}
        for size in SIZES:
            a, b = _value(single_level, kind, size, metric), _value(fpn, kind, size, metric)
            gain[kind][size] = None if a is None or b is None else round(b - a, 4)
    return gain


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def _signed(value) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}"


def _record(source) -> dict:
    return source if isinstance(source, dict) else training_record(source)[0]


KINDS = {"segm": "mask", "bbox": "box"}
# the AP table's columns: (size, metric)
AP_COLUMNS = (("all", "map"), ("all", "map50"), ("all", "map75"),
              ("small", "map"), ("medium", "map"), ("large", "map"))  # fmt: skip


def backbone_ablation_table(single_level, fpn) -> str:
    """Markdown tables of the two arms: box and mask AP (all sizes, AP@0.5, AP@0.75, small / medium
    / large) with the FPN's gain and Mask R-CNN's Table 2a beside them; the RPN's recall by size at
    IoU 0.5 / 0.7; FPN's Table 1 (average recall, quoted). ``single_level`` and ``fpn`` are weights
    files or their records (dicts); a missing value (an empty size class) reads ``n/a``."""
    records = {"single level (stride 32)": _record(single_level), "FPN (P2-P6)": _record(fpn)}
    return "\n\n".join([_ap_table(records), _recall_table(records), _paper_rpn_table()])


def _ap_table(records: dict) -> str:
    single_level, fpn = records.values()
    paper = dict(zip(records, (f"{PAPER_BACKBONE['single_level']} (R50-C4)",
                               f"{PAPER_BACKBONE['fpn']} (R50-FPN)"), strict=True))  # fmt: skip
    lines = [
        "| backbone | kind | AP | AP@0.5 | AP@0.75 | AP_S | AP_M | AP_L | paper mask AP (Table 2a) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in records.items():
        for kind, kind_name in KINDS.items():
            cells = [_pct(_value(r, kind, size, metric)) for size, metric in AP_COLUMNS]
            quote = paper[name] if kind == "segm" else ""
            lines.append(f"| {name} | {kind_name} | " + " | ".join(cells) + f" | {quote} |")
    gains = {m: fpn_gain_by_size(single_level, fpn, m) for m in ("map", "map50", "map75")}
    paper_gain = f"{PAPER_BACKBONE['fpn'] - PAPER_BACKBONE['single_level']:+.1f}"
    for kind, kind_name in KINDS.items():
        cells = [_signed(gains[metric][kind][size]) for size, metric in AP_COLUMNS]
        quote = paper_gain if kind == "segm" else ""
        lines.append(f"| FPN - single level | {kind_name} | " + " | ".join(cells) + f" | {quote} |")
    return "\n".join(lines)


def _recall_table(records: dict) -> str:
    header = " | ".join(f"recall {s} @0.5 / @0.7" for s in SIZES)
    lines = [f"| backbone | proposals | {header} |", "|---|---|" + "---|" * len(SIZES)]
    for name, r in records.items():
        for n in ("100", "300", "1000"):
            cells = [
                f"{_pct(_value(r, 'rpn_recall', s, n, '0.5'))} / "
                f"{_pct(_value(r, 'rpn_recall', s, n, '0.7'))}"
                for s in SIZES
            ]
            lines.append(f"| {name} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paper_rpn_table() -> str:
    lines = [
        "| FPN paper, Table 1 (RPN, COCO minival) | AR100 | AR1k | AR_s 1k | AR_m 1k | AR_l 1k |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in PAPER_FPN_RPN.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.1f}" for v in figures) + " |")
    lines += [
        "",
        "The FPN paper's AR averages recall over IoU 0.50:0.95 on COCO; ours above is recall at IoU "
        "0.5 and 0.7 on the multi-scale shapes: compare the gaps, not the values.",
    ]
    return "\n".join(lines)
