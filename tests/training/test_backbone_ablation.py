"""The backbone ablation: its runner on a tiny budget (both arms, one seed, one budget, the shipped
files' names), the FPN's gain by size from hand-made records, and the table with empty size
classes and the papers' figures quoted exactly."""

import pytest

from rcnn_from_scratch.models.mask_rcnn_fpn import DEFAULT_WEIGHTS
from rcnn_from_scratch.training.ablation import (
    PAPER_BACKBONE,
    PAPER_FPN_RPN,
    backbone_ablation_table,
    fpn_gain_by_size,
    run_backbone_ablation,
)
from rcnn_from_scratch.training.faster_rcnn import training_record

TINY = dict(trunk_channels=(4, 8, 8, 8), fpn_channels=8, hidden=16, mask_layers=(4,),
            rpn_batch_size=32, rois_per_image=16, rpn_post_nms_test=50)  # fmt: skip
SIZES = ("all", "small", "medium", "large")


def record(ap: dict, recall: float | None = 0.5) -> dict:
    """A record as ``evaluate_pyramid`` writes it: ``ap[kind][size]`` is the AP (map), AP@0.5 is
    AP + 0.1 and AP@0.75 is AP - 0.1 (``None`` stays ``None``); every recall at IoU 0.5 is
    ``recall``, at 0.7 half of it."""

    def three(v):
        return {"map": v, "map50": None if v is None else round(v + 0.1, 4),
                "map75": None if v is None else round(v - 0.1, 4)}  # fmt: skip

    out = {kind: {size: three(v) for size, v in by_size.items()} for kind, by_size in ap.items()}
    strict = None if recall is None else recall / 2
    out["rpn_recall"] = {s: {n: {"0.5": recall, "0.7": strict} for n in ("100", "300", "1000")}
                         for s in SIZES}  # fmt: skip
    return out


SINGLE = record({"segm": {"all": 0.30, "small": 0.10, "medium": 0.35, "large": 0.50},
                 "bbox": {"all": 0.32, "small": 0.12, "medium": 0.36, "large": 0.55}})  # fmt: skip
FPN = record({"segm": {"all": 0.36, "small": 0.25, "medium": 0.38, "large": 0.49},
              "bbox": {"all": 0.40, "small": 0.30, "medium": 0.40, "large": 0.56}})  # fmt: skip


def test_both_arms_train_with_the_same_settings_under_the_shipped_names(tmp_path):
    paths = run_backbone_ablation(tmp_path, steps=2, seed=3, config=TINY, num_images=2,
                                  eval_images=2, progress=False, log=lambda _: None)  # fmt: skip
    assert list(paths) == ["single_level", "fpn"]  # the single level is trained first
    assert {arm: p.name for arm, p in paths.items()} == {
        arm: DEFAULT_WEIGHTS[arm].name for arm in paths
    }
    records = {arm: training_record(p)[0] for arm, p in paths.items()}
    assert records["fpn"]["arm"] == "fpn" and records["single_level"]["arm"] == "single_level"
    for key in ("seed", "steps", "num_images", "images_per_step", "lr", "eval_images"):
        assert records["fpn"][key] == records["single_level"][key], key
    assert records["fpn"]["seed"] == 3 and records["fpn"]["steps_run"] == 2
    table = backbone_ablation_table(paths["single_level"], paths["fpn"])
    lines = table.splitlines()
    assert "AP_S" in lines[0] and "paper mask AP" in lines[0]
    assert sum(line.startswith("| FPN (P2-P6)") for line in lines) == 2 + 3  # mask, box; 3 recalls
    assert sum(line.startswith("| FPN - single level") for line in lines) == 2


def test_gain_is_fpn_minus_single_level_for_each_size_and_kind():
    gain = fpn_gain_by_size(SINGLE, FPN)
    assert gain["segm"] == pytest.approx({"all": 0.06, "small": 0.15, "medium": 0.03,
                                          "large": -0.01})  # fmt: skip
    assert gain["bbox"] == pytest.approx({"all": 0.08, "small": 0.18, "medium": 0.04,
                                          "large": 0.01})  # fmt: skip
    # the other metrics are read from their own fields: here shifted equally in both arms
    assert fpn_gain_by_size(SINGLE, FPN, "map50")["segm"] == pytest.approx(gain["segm"])
    assert fpn_gain_by_size(FPN, SINGLE)["segm"]["small"] == pytest.approx(-0.15)


def test_an_empty_size_class_or_an_unevaluated_run_gives_none_not_an_error():
    no_large = record({"segm": {"all": 0.3, "small": 0.1, "medium": 0.4, "large": None},
                       "bbox": {"all": 0.3, "small": 0.1, "medium": 0.4, "large": None}})  # fmt: skip
    gain = fpn_gain_by_size(no_large, FPN)
    assert gain["segm"]["large"] is None and gain["bbox"]["large"] is None
    assert gain["segm"]["small"] == pytest.approx(0.15)
    unevaluated = {"arm": "fpn", "steps": 0}  # eval_images=0: no AP at all
    assert fpn_gain_by_size(SINGLE, unevaluated) == {
        kind: dict.fromkeys(SIZES) for kind in ("segm", "bbox")
    }


def test_an_unknown_metric_is_a_value_error():
    with pytest.raises(ValueError, match="metric"):
        fpn_gain_by_size(SINGLE, FPN, "map_small")


def test_the_table_gives_each_arm_the_gain_and_the_papers_figures():
    table = backbone_ablation_table(SINGLE, FPN)
    lines = table.splitlines()
    rows = {" | ".join(line.split(" | ")[:2]): line for line in lines if line.count(" | ") > 2}
    # AP, AP@0.5, AP@0.75, AP_S, AP_M, AP_L in percent
    assert (
        "| 30.0 | 40.0 | 20.0 | 10.0 | 35.0 | 50.0 | 30.3 (R50-C4) |"
        in (rows["| single level (stride 32) | mask"])
    )
    assert (
        "| 36.0 | 46.0 | 26.0 | 25.0 | 38.0 | 49.0 | 33.6 (R50-FPN) |"
        in rows["| FPN (P2-P6) | mask"]
    )
    assert (
        "| +6.0 | +6.0 | +6.0 | +15.0 | +3.0 | -1.0 | +3.3 |" in rows["| FPN - single level | mask"]
    )
    assert "| +8.0 | +8.0 | +8.0 | +18.0 | +4.0 | +1.0 |  |" in rows["| FPN - single level | box"]
    # Mask R-CNN's Table 2a and the FPN paper's Table 1 as the papers give them
    assert PAPER_BACKBONE == {"single_level": 30.3, "fpn": 33.6}
    assert PAPER_FPN_RPN == {
        "(a) C4, one map": (36.1, 48.3, 32.0, 58.7, 62.2),
        "(b) C5, one map (stride 32)": (36.3, 44.9, 25.3, 55.5, 64.2),
        "(c) FPN": (44.0, 56.3, 44.9, 63.4, 66.2),
    }
    assert "| (b) C5, one map (stride 32) | 36.3 | 44.9 | 25.3 | 55.5 | 64.2 |" in lines
    assert "| (c) FPN | 44.0 | 56.3 | 44.9 | 63.4 | 66.2 |" in lines
    assert "0.50:0.95" in table and "IoU 0.5 and 0.7" in table  # what AR is, beside ours
    # recall: three rows (100 / 300 / 1000 proposals) per arm, four sizes at two IoUs each
    fpn_rows = [line.split(" | ") for line in lines if line.startswith("| FPN (P2-P6) |")]
    assert [r[1] for r in fpn_rows] == ["mask", "box", "100", "300", "1000"]
    assert all(r[2:] == ["50.0 / 25.0"] * 3 + ["50.0 / 25.0 |"] for r in fpn_rows[2:])


def test_the_table_writes_na_for_an_empty_size_class_and_an_unevaluated_run():
    no_small = record({"segm": {"all": 0.3, "small": None, "medium": 0.4, "large": 0.5},
                       "bbox": {"all": 0.3, "small": None, "medium": 0.4, "large": 0.5}},
                      recall=None)  # fmt: skip
    lines = backbone_ablation_table(no_small, FPN).splitlines()
    single_mask = next(
        line for line in lines if line.startswith("| single level (stride 32) | mask")
    )
    assert "| 30.0 | 40.0 | 20.0 | n/a | 40.0 | 50.0 |" in single_mask
    gain_mask = next(line for line in lines if line.startswith("| FPN - single level | mask"))
    assert "| +6.0 | +6.0 | +6.0 | n/a | -2.0 | -1.0 |" in gain_mask
    single_recall = next(
        line for line in lines if line.startswith("| single level (stride 32) | 100")
    )
    assert single_recall.count("n/a / n/a") == 4
    table = backbone_ablation_table({"arm": "single_level"}, {"arm": "fpn"})  # no evaluation
    assert "| n/a | n/a | n/a | n/a | n/a | n/a | 33.6 (R50-FPN) |" in table


def test_the_gain_reads_weights_files_as_their_records():
    from rcnn_from_scratch.models.mask_rcnn_fpn import DEFAULT_WEIGHTS
    from rcnn_from_scratch.training.faster_rcnn import training_record

    files = DEFAULT_WEIGHTS["single_level"], DEFAULT_WEIGHTS["fpn"]
    records = [training_record(f)[0] for f in files]
    gain = fpn_gain_by_size(*files)
    assert gain == fpn_gain_by_size(*records)
    small = records[1]["segm"]["small"]["map"] - records[0]["segm"]["small"]["map"]
    assert gain["segm"]["small"] == pytest.approx(small, abs=1e-4)
