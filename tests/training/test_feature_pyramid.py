"""Training the pyramid model through the shared loop: a few steps on a few multi-scale images,
the loss falls, a checkpoint is written and resumed, the record holds the figures by size."""

import numpy as np
import pytest

from rcnn_from_scratch.datasets.shapes import MULTISCALE
from rcnn_from_scratch.models.mask_rcnn_fpn import MaskRCNNFPN
from rcnn_from_scratch.training.faster_rcnn import train_detector, training_record
from rcnn_from_scratch.training.feature_pyramid import (
    build_mask_rcnn_fpn,
    evaluate_pyramid,
    train_and_save_pyramid,
)

TINY = dict(trunk_channels=(4, 8, 8, 8), fpn_channels=8, hidden=16, mask_layers=(4,),
            rpn_batch_size=32, rois_per_image=16, rpn_post_nms_test=50)  # fmt: skip
QUIET = {"progress": False, "log": lambda _: None, "num_images": 3}


def params(model):
    return {n: p.data.copy() for n, p in model.named_parameters()}


def test_a_few_steps_lower_the_loss_of_the_single_level_arm():
    report = train_detector(build_mask_rcnn_fpn("single_level", **TINY), steps=8, lr=3e-3, **QUIET)
    totals = [sum(h.values()) for h in report["history"]]
    assert all(np.isfinite(totals)) and len(totals) == 8
    assert np.mean(totals[-3:]) < np.mean(totals[:3])


def test_the_fpn_arm_learns_and_a_resumed_run_equals_a_straight_one(tmp_path):
    straight = build_mask_rcnn_fpn("fpn", seed=0, **TINY)
    report = train_detector(straight, steps=6, lr=3e-3, **QUIET)
    totals = [sum(h.values()) for h in report["history"]]
    assert all(np.isfinite(totals)) and np.mean(totals[-2:]) < np.mean(totals[:2])
    ckpt = tmp_path / "ckpt.npz"
    first = build_mask_rcnn_fpn("fpn", seed=0, **TINY)
    train_detector(first, steps=6, lr=3e-3, checkpoint=ckpt, minutes=0.0, **QUIET)
    assert ckpt.exists()  # written at the end even when the budget ran no step
    resumed = build_mask_rcnn_fpn("fpn", seed=3, **TINY)  # other weights: all come from the file
    report = train_detector(resumed, steps=6, lr=3e-3, checkpoint=ckpt, resume=True, **QUIET)
    assert report["steps_run"] == 6
    for name, value in params(straight).items():
        np.testing.assert_array_equal(params(resumed)[name], value, err_msg=name)


def test_the_loop_trains_on_the_multiscale_images(monkeypatch):
    seen = []
    model = build_mask_rcnn_fpn("single_level", **TINY)
    real = model.loss

    def spy(images, targets, rng, **kwargs):
        seen.extend(im.shape for im in images)
        return real(images, targets, rng, **kwargs)

    monkeypatch.setattr(model, "loss", spy)
    train_detector(model, steps=1, **QUIET)
    assert seen and all(s == (MULTISCALE.image_size, MULTISCALE.image_size, 3) for s in seen)


def test_train_and_save_records_ap_and_recall_by_size(tmp_path):
    out = tmp_path / "fpn.npz"
    model = build_mask_rcnn_fpn("fpn", **TINY)
    train_and_save_pyramid(model, out, "the command", eval_images=2, steps=2, seed=0, **QUIET)
    assert out.exists() and (tmp_path / "fpn.checkpoint.npz").exists()
    report, history = training_record(out)
    assert report["command"] == "the command" and report["arm"] == "fpn" and len(history) == 2
    assert set(report["bbox"]) == set(report["segm"]) == {"all", "small", "medium", "large"}
    assert set(report["rpn_recall"]["small"]) == {"100", "300", "1000"}
    assert set(report["rpn_recall"]["all"]["100"]) == {"0.5", "0.7"}
    assert MaskRCNNFPN.pretrained("fpn", path=out).config.fpn_channels == 8


def test_evaluation_recall_grows_with_the_number_of_proposals():
    result = evaluate_pyramid(build_mask_rcnn_fpn("fpn", seed=1, **TINY), num_images=2)
    r = result["rpn_recall"]["all"]
    assert r["100"]["0.5"] <= r["300"]["0.5"] <= r["1000"]["0.5"]
    assert all(r[n]["0.7"] <= r[n]["0.5"] for n in r)


def test_an_unknown_arm_is_a_value_error():
    with pytest.raises(ValueError, match="arm"):
        build_mask_rcnn_fpn("c4")


def test_a_killed_runs_half_written_weights_file_is_removed_at_the_next_start(tmp_path):
    out = tmp_path / "fpn.npz"
    stale = [tmp_path / "fpn.npz.k3j2h1.tmp", tmp_path / "fpn.checkpoint.npz.x9y8.tmp"]
    other = tmp_path / "fpn2.npz.a1.tmp"  # another file's: kept
    for path in [*stale, other]:
        path.write_bytes(b"half a file")
    model = build_mask_rcnn_fpn("single_level", **TINY)
    train_and_save_pyramid(model, out, "the command", eval_images=0, steps=1, **QUIET)
    assert not any(p.exists() for p in stale) and other.exists() and out.exists()
