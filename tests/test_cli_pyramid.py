"""The train command's mask-rcnn-fpn choice: its options' errors in one line with exit code 2, and a
tiny run that writes weights with their record."""

import pytest

from rcnn_from_scratch.cli import main
from rcnn_from_scratch.training.faster_rcnn import training_record


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "mask-rcnn", "--arm", "fpn"], "--arm is an option of mask-rcnn-fpn only"),
        (["train", "mask-rcnn-fpn", "--pooler", "roi_pool"], "--pooler"),
        (["train", "mask-rcnn-fpn", "--class-agnostic"], "--class-agnostic"),
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


def test_a_tiny_single_level_run_saves_weights_and_its_record(tmp_path, capsys):
    out = tmp_path / "single.npz"
    argv = ["train", "mask-rcnn-fpn", "--arm", "single_level", "--out", str(out), "--steps", "1",
            "--images", "2", "--eval-images", "1"]  # fmt: skip
    assert main(argv) == 0
    report, history = training_record(out)
    assert report["arm"] == "single_level" and len(history) == 1
    assert (tmp_path / "single.checkpoint.npz").exists()
