"""The backbone ablation's runner on a tiny budget: both arms trained with one seed and one budget,
and the table with AP by size, RPN recall and the paper's figure."""

from rcnn_from_scratch.training.ablation import (
    PAPER_BACKBONE,
    backbone_ablation_table,
    run_backbone_ablation,
)
from rcnn_from_scratch.training.faster_rcnn import training_record

TINY = dict(trunk_channels=(4, 8, 8, 8), fpn_channels=8, hidden=16, mask_layers=(4,),
            rpn_batch_size=32, rois_per_image=16, rpn_post_nms_test=50)  # fmt: skip


def test_both_arms_train_with_the_same_settings_and_the_table_shows_them(tmp_path):
    paths = run_backbone_ablation(tmp_path, steps=1, seed=3, config=TINY, num_images=2,
                                  eval_images=1, progress=False, log=lambda _: None)  # fmt: skip
    assert set(paths) == {"single_level", "fpn"} and all(p.exists() for p in paths.values())
    records = {arm: training_record(p)[0] for arm, p in paths.items()}
    assert records["fpn"]["arm"] == "fpn" and records["single_level"]["arm"] == "single_level"
    for key in ("seed", "steps", "num_images", "images_per_step", "lr"):
        assert records["fpn"][key] == records["single_level"][key], key
    table = backbone_ablation_table(paths["single_level"], paths["fpn"])
    lines = table.splitlines()
    assert "AP_S" in lines[0] and "paper mask AP" in lines[0]
    assert sum(line.startswith("| FPN") for line in lines) == 2 + 3  # mask, box; 3 recall rows
    assert (
        f"| {PAPER_BACKBONE['fpn']} |" in table and f"| {PAPER_BACKBONE['single_level']} |" in table
    )
