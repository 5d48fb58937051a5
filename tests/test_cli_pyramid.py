"""The pyramid's commands: ``train mask-rcnn-fpn`` (its options' errors in one line with exit code 2,
the shipped figure as the default steps, its settings handed to the training, Ctrl-C and SIGTERM,
a tiny run that writes weights with their record) and ``ablation --backbone`` (both arms' settings,
the defaults of each ablation, the table printed)."""

import json
import os
import signal

import numpy as np
import pytest

import rcnn_from_scratch.training.ablation as ablation
import rcnn_from_scratch.training.feature_pyramid as feature_pyramid
from rcnn_from_scratch import cli
from rcnn_from_scratch.cli import main
from rcnn_from_scratch.nn import save_weights
from rcnn_from_scratch.training.faster_rcnn import training_record


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "mask-rcnn", "--arm", "fpn"], "--arm is an option of mask-rcnn-fpn only"),
        (["train", "mask-rcnn-fpn", "--pooler", "roi_pool"], "--pooler"),
        (["train", "mask-rcnn-fpn", "--class-agnostic"], "--class-agnostic"),
        (["train", "rcnn", "--pooler", "roi_pool"], "--pooler is an option of faster-rcnn"),
    ],
)
def test_options_of_other_models_are_one_line_errors(tmp_path, capsys, argv, message):
    code = main([*argv, "--out", str(tmp_path / "w.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err
    assert err.count("\n") == 1 and not (tmp_path / "w.npz").exists()


def test_an_out_file_in_a_missing_folder_is_refused_before_training(tmp_path, capsys):
    code = main(["train", "mask-rcnn-fpn", "--out", str(tmp_path / "no" / "w.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "--out" in err


@pytest.fixture
def calls(monkeypatch):
    """``train_and_save_pyramid`` replaced by a recorder of the model's arm and the keywords."""
    seen = []

    def record(model, out, command, **kwargs):
        seen.append({"arm": model.config.arm, "out": str(out), "command": command, **kwargs})

    monkeypatch.setattr(feature_pyramid, "train_and_save_pyramid", record)
    return seen


def test_the_default_steps_are_the_shipped_weights_figure(tmp_path, calls):
    assert cli.STEPS["mask-rcnn-fpn"] == 4000
    assert main(["train", "mask-rcnn-fpn", "--out", str(tmp_path / "w.npz")]) == 0
    assert calls[0]["arm"] == "fpn" and calls[0]["steps"] == 4000


def test_the_shipped_command_hands_its_settings_to_the_training(tmp_path, calls):
    out = str(tmp_path / "w.npz")
    argv = ["train", "mask-rcnn-fpn", "--arm", "single_level", "--seed", "0", "--images", "400",
            "--steps", "4000", "--evaluate-every", "1000", "--minutes", "30", "--out", out]  # fmt: skip
    assert main(argv) == 0
    assert calls == [{"arm": "single_level", "out": out, "command": calls[0]["command"],
                      "eval_images": 200, "num_images": 400, "steps": 4000, "seed": 0,
                      "minutes": 30.0, "resume": False, "evaluate_every": 1000}]  # fmt: skip


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_run_is_one_line_exit_130_naming_resume(tmp_path, monkeypatch, capsys, how):
    def interrupted(*args, **kwargs):
        if how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # the command's handler raises KeyboardInterrupt
        raise KeyboardInterrupt

    monkeypatch.setattr(feature_pyramid, "train_and_save_pyramid", interrupted)
    previous = signal.getsignal(signal.SIGTERM)
    assert main(["train", "mask-rcnn-fpn", "--out", str(tmp_path / "w.npz")]) == 130
    assert signal.getsignal(signal.SIGTERM) == previous
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: interrupted")
    assert "w.checkpoint.npz" in err and "--resume" in err


def test_a_tiny_single_level_run_saves_weights_and_its_record(tmp_path, capsys):
    out = tmp_path / "single.npz"
    argv = ["train", "mask-rcnn-fpn", "--arm", "single_level", "--out", str(out), "--steps", "1",
            "--images", "2", "--eval-images", "1"]  # fmt: skip
    assert main(argv) == 0
    report, history = training_record(out)
    assert report["arm"] == "single_level" and len(history) == 1
    assert (tmp_path / "single.checkpoint.npz").exists()


# --- ablation --backbone -----------------------------------------------------------------------


def _record(small_ap: float) -> dict:
    ap = {"map": 0.3, "map50": 0.5, "map75": 0.2}
    by_size = {"all": ap, "small": {**ap, "map": small_ap}, "medium": ap, "large": ap}
    recall = {n: {"0.5": 0.9, "0.7": 0.6} for n in ("100", "300", "1000")}
    return {"bbox": by_size, "segm": by_size,
            "rpn_recall": dict.fromkeys(("all", "small", "medium", "large"), recall)}  # fmt: skip


@pytest.fixture
def ablation_calls(monkeypatch):
    """Both ablations' runners replaced by recorders that write weights files with made-up
    records (the backbone's: mask and box AP_S 0.1 single level, 0.3 FPN)."""
    seen = []

    def fake(arms, records):
        def run(out_dir, **kwargs):
            seen.append({"arms": arms, "out_dir": str(out_dir), **kwargs})
            os.makedirs(out_dir, exist_ok=True)
            paths = {}
            for arm, rec in zip(arms, records, strict=True):
                paths[arm] = save_weights(f"{out_dir}/{arm}.npz", {"w": np.zeros(1)},
                                          {"training": json.dumps(rec)})  # fmt: skip
            return paths

        return run

    old = {"segm_map": 0.3, "segm_map50": 0.5, "segm_map75": 0.2, "bbox_map": 0.3,
           "bbox_map50": 0.5}  # fmt: skip
    monkeypatch.setattr(ablation, "run_ablation", fake(("roi_pool", "roi_align"), (old, old)))
    monkeypatch.setattr(ablation, "run_backbone_ablation",
                        fake(("single_level", "fpn"), (_record(0.1), _record(0.3))))  # fmt: skip
    return seen


def test_ablation_backbone_trains_both_arms_with_the_defaults_and_prints_the_table(
    tmp_path, ablation_calls, capsys
):
    assert main(["ablation", "--backbone", "--out", str(tmp_path)]) == 0
    assert ablation_calls == [{"arms": ("single_level", "fpn"), "out_dir": str(tmp_path),
                               "steps": 4000, "seed": 0, "num_images": 400, "eval_images": 200,
                               "minutes": None}]  # fmt: skip
    out = capsys.readouterr().out
    assert "| FPN - single level | mask | +0.0 | +0.0 | +0.0 | +20.0 | +0.0 | +0.0 | +3.3 |" in out
    assert "30.3 (R50-C4)" in out and "| (c) FPN | 44.0 |" in out


def test_ablation_backbone_passes_its_options_and_the_roi_ablation_keeps_its_default(
    tmp_path, ablation_calls, capsys
):
    argv = ["--out", str(tmp_path / "new"), "--seed", "1", "--images", "50", "--eval-images",
            "20", "--minutes", "2.5"]  # fmt: skip
    assert main(["ablation", "--backbone", "--steps", "7", *argv]) == 0
    assert main(["ablation", *argv]) == 0
    settings = {"out_dir": str(tmp_path / "new"), "seed": 1, "num_images": 50,
                "eval_images": 20, "minutes": 2.5}  # fmt: skip
    assert ablation_calls == [
        {"arms": ("single_level", "fpn"), "steps": 7, **settings},
        {"arms": ("roi_pool", "roi_align"), "steps": cli.ABLATION_STEPS["roi"], **settings},
    ]
    assert cli.ABLATION_STEPS == {"roi": 3000, "backbone": 4000}
    assert "RoIAlign" in capsys.readouterr().out
