"""The command line: every command has --help, bad images give one line and exit code 2, the demo
and the tools write their figures."""

import imageio.v3 as iio
import numpy as np
import pytest

from rcnn_from_scratch.cli import build_parser, main
from rcnn_from_scratch.datasets.shapes import make_shapes_sample
from rcnn_from_scratch.models.mask_rcnn import DEFAULT_WEIGHTS

COMMANDS = ["demo", "train", "ablation", "predict", "propose"]


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv", [["demo"], ["train", "mask-rcnn", "--out", "x"], ["ablation", "--out", "x"]]
)
def test_every_command_that_draws_randomly_takes_a_seed(argv):
    assert build_parser().parse_args([*argv, "--seed", "3"]).seed == 3


@pytest.mark.parametrize("command", ["predict", "propose"])
def test_a_missing_image_is_one_line_and_exit_code_2(command, tmp_path, capsys):
    assert main([command, str(tmp_path / "nope.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.png" in err and err.startswith("error:")


@pytest.mark.parametrize("command", ["predict", "propose"])
def test_a_file_that_is_not_an_image_is_one_line_and_exit_code_2(command, tmp_path, capsys):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    assert main([command, str(path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_corrupt_weights_file_is_one_line_and_exit_code_2(tmp_path, capsys):
    image = tmp_path / "shapes.png"
    iio.imwrite(image, make_shapes_sample(1)[0])
    weights = tmp_path / "broken.npz"
    weights.write_bytes(b"PK\x03\x04 truncated")
    assert main(["predict", str(image), "--weights", str(weights)]) == 2
    assert "broken.npz" in capsys.readouterr().err


def test_propose_draws_the_boxes(tmp_path, capsys):
    image = tmp_path / "shapes.png"
    iio.imwrite(image, make_shapes_sample(2)[0])
    out = tmp_path / "boxes.png"
    assert main(["propose", str(image), "--out", str(out), "--show", "20"]) == 0
    assert out.stat().st_size > 0 and "proposals" in capsys.readouterr().out


def test_predict_draws_masks_and_says_what_the_model_knows(tmp_path, capsys):
    assert DEFAULT_WEIGHTS.exists()
    image = tmp_path / "shapes.png"
    iio.imwrite(image, make_shapes_sample(3)[0])
    out = tmp_path / "pred.png"
    assert main(["predict", str(image), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.stat().st_size > 0 and "only the generated shapes" in text


def test_the_demo_walks_all_four_stages(tmp_path, capsys, empty_caches):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    for stage in ("R-CNN", "Fast R-CNN", "Faster R-CNN", "Mask R-CNN", "photograph"):
        assert stage in text
    # the pyramid step: its image's four small objects, found by the FPN arm, not by one map
    assert "6 objects (4 small): one map finds 2 (0 small), the pyramid 6 (4 small)" in text
    # without torchvision's weights file the full-scale step says how to get it, and goes on
    assert "fetch-weights maskrcnn_resnet50_fpn" in text
    names = {p.name for p in tmp_path.glob("*.png")}
    expected = {"1_rcnn_detections.png", "2_fast_rcnn_detections.png", "3_rpn_proposals.png",
                "4_mask_rcnn_masks.png", "4_worked_example_mask.png", "5_photo_mask_rcnn.png",
                "5_feature_pyramid.png"}  # fmt: skip
    assert expected <= names


def test_class_agnostic_masks_are_a_mask_rcnn_option_only(capsys):
    assert main(["train", "faster-rcnn", "--class-agnostic", "--out", "x.npz"]) == 2
    assert "mask-rcnn" in capsys.readouterr().err


# --- the ResNet-50-FPN models ---------------------------------------------------------------------


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Neither our weights folder nor torch's holds a file."""
    monkeypatch.setenv("RCNN_FROM_SCRATCH_HOME", str(tmp_path / "ours"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


@pytest.fixture(scope="module")
def random_real_weights(tmp_path_factory):
    """A seeded random Mask R-CNN ResNet-50-FPN in our .npz format (178 MB in a temporary folder)."""
    from rcnn_from_scratch import maskrcnn_resnet50_fpn

    model = maskrcnn_resnet50_fpn(seed=0, box_score_thresh=0.0)
    return model.save(tmp_path_factory.mktemp("weights") / "maskrcnn_random.npz")


def _photo(tmp_path):
    path = tmp_path / "photo.png"
    iio.imwrite(path, make_shapes_sample(4)[0])
    return path


def test_predict_real_model_without_weights_says_where_to_put_them(empty_caches, capsys):
    image = _photo(empty_caches)
    assert main(["predict", str(image), "--model", "maskrcnn_resnet50_fpn"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth" in err and "fetch-weights" in err


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--weights", "missing.pth"], "no such file"),
        (["--min-size", "5"], "--min-size"),
        (["--score", "1.5"], "--score"),
        (["--out", "no/such/folder/x.png"], "does not exist"),
    ],
)
def test_predict_real_model_user_errors_are_one_line(empty_caches, capsys, extra, words):
    image = _photo(empty_caches)
    assert main(["predict", str(image), "--model", "maskrcnn_resnet50_fpn", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_predict_real_model_draws_coco_names_and_a_time_line(tmp_path, capsys, random_real_weights):
    image, out = _photo(tmp_path), tmp_path / "coco.png"
    argv = ["predict", str(image), "--model", "maskrcnn_resnet50_fpn", "--weights",
            str(random_real_weights), "--min-size", "64", "--score", "0.0", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert out.stat().st_size > 0
    assert "backbone" in text and "rpn" in text and "mask_head" in text and "saved" in text


@pytest.mark.parametrize("shape", [(1, 1), (2, 3)])
def test_predict_real_model_takes_a_tiny_image(tmp_path, capsys, random_real_weights, shape):
    """No minimum size: torchvision's transform upsamples the short side to min_size."""
    image, out = tmp_path / "tiny.png", tmp_path / "tiny_out.png"
    iio.imwrite(image, np.full((*shape, 3), 90, np.uint8))
    argv = ["predict", str(image), "--model", "maskrcnn_resnet50_fpn", "--weights",
            str(random_real_weights), "--min-size", "64", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0 and out.stat().st_size > 0


def test_predict_real_model_refuses_a_strip_its_resize_would_make_empty(tmp_path, capsys,
                                                                        random_real_weights):  # fmt: skip
    image = tmp_path / "strip.png"  # min size 32 allows a long side of 53: 1 x 1000 -> 0 x 53
    iio.imwrite(image, np.zeros((1, 1000, 3), np.uint8))
    argv = ["predict", str(image), "--model", "maskrcnn_resnet50_fpn", "--weights",
            str(random_real_weights), "--min-size", "32"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too narrow" in err and "strip.png" in err


def test_predict_shapes_model_refuses_min_size(tmp_path, capsys):
    assert main(["predict", str(_photo(tmp_path)), "--min-size", "512"]) == 2
    assert "ResNet-50-FPN" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, content, out, words",
    [
        ("missing.pth", None, "x.npz", "no such file"),
        ("w.pth", b"\x80\x02 not really a checkpoint", "x.npz", "w.pth"),
        ("w.pth", b"PK\x03\x04 truncated zip", "x.npz", "w.pth"),
        ("w.pth", b"", "x.txt", ".npz"),
        ("w.pth", b"", "no/folder/x.npz", "does not exist"),
    ],
)
def test_convert_user_errors_are_one_line(tmp_path, capsys, monkeypatch, name, content, out, words):
    monkeypatch.chdir(tmp_path)
    if content is not None:
        (tmp_path / name).write_bytes(content)
    assert main(["convert", name, out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err
    assert not list(tmp_path.glob("*.npz"))


def test_convert_help_and_fetch_weights_help():
    for command in ("convert", "fetch-weights"):
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0


def test_convert_a_torch_saved_checkpoint_and_both_files_load_the_same(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from rcnn_from_scratch import fasterrcnn_resnet50_fpn

    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None
    )
    src = tmp_path / "faster.pth"
    torch.save(model.state_dict(), src, _use_new_zipfile_serialization=False)  # COCO v1's format
    dst = tmp_path / "faster.npz"
    assert main(["convert", str(src), str(dst)]) == 0
    assert "fasterrcnn_resnet50_fpn" in capsys.readouterr().out
    from_pth, from_npz = fasterrcnn_resnet50_fpn(weights=src), fasterrcnn_resnet50_fpn(weights=dst)
    assert from_pth.config == from_npz.config
    ours, theirs = from_npz.state_dict(), model.state_dict()
    for key, value in ours.items():
        np.testing.assert_array_equal(value, from_pth.state_dict()[key])
        np.testing.assert_array_equal(value, theirs[key].numpy())
