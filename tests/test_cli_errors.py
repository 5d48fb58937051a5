"""Every command-line mistake of issue 18 is one line (``error: ...`` on stderr), exit code 2, no
traceback and no file left behind, and it is caught before the long work: the functions that train,
evaluate, generate the data or run a model are replaced by ones that fail the test if called."""

import os
import signal

import imageio.v3 as iio
import numpy as np
import pytest

from rcnn_from_scratch import cli
from rcnn_from_scratch.cli import main
from rcnn_from_scratch.datasets.shapes import make_shapes_sample
from rcnn_from_scratch.nn import save_weights


def _run(argv) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse's errors exit from inside parse_args
        return exit_.code


def _files(folder) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*")}


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with a 1 x 1, a 2 x 3 and a 128 x 128 image, as the current directory."""
    monkeypatch.chdir(tmp_path)
    iio.imwrite(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8))
    iio.imwrite(tmp_path / "two3.png", np.full((2, 3, 3), 200, np.uint8))
    iio.imwrite(tmp_path / "shapes.png", make_shapes_sample(1)[0])
    (tmp_path / "folder").mkdir()
    return tmp_path


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A real checkpoint of ``train mask-rcnn --steps 1 --images 2`` (written once)."""
    from rcnn_from_scratch.training.faster_rcnn import build_detector, train_detector

    path = tmp_path_factory.mktemp("checkpoint") / "m.checkpoint.npz"
    train_detector(build_detector("mask-rcnn"), num_images=2, steps=1, progress=False,
                   checkpoint=path, log=lambda _: None)  # fmt: skip
    return path


def _other_settings_checkpoint(folder, tiny_checkpoint):
    """The checkpoint of ``--steps 1 --images 2`` beside ``m.npz``."""
    import shutil

    shutil.copy(tiny_checkpoint, folder / "m.checkpoint.npz")


def _corrupt_checkpoint(folder, _):
    (folder / "m.checkpoint.npz").write_bytes(b"PK\x03\x04 cut short by a full disk")


def _foreign_checkpoint(folder, _):
    save_weights(folder / "m.checkpoint.npz", {"w": np.zeros(3)}, {"model": "something else"})


TRAIN = ["train", "mask-rcnn", "--out", "m.npz"]
TINY = ["--steps", "1", "--images", "2", "--eval-images", "1"]
FPN = ["train", "mask-rcnn-fpn", "--out", "m.npz"]

# (argv, words the one line must hold, setup run in the folder first)
CASES = {
    # predict / propose
    "predict a 1 x 1 image": (["predict", "one.png"], ["too small", "1 x 1", "8 x 8"], None),
    "predict a 2 x 3 image": (["predict", "two3.png"], ["too small", "3 x 2", "8 x 8"], None),
    "predict --out in a missing folder": (
        ["predict", "shapes.png", "--out", "nope/x.png"], ["nope", "does not exist"], None),
    "propose --out in a missing folder": (
        ["propose", "shapes.png", "--out", "nope/x.png"], ["nope", "does not exist"], None),
    "predict --out naming a folder": (
        ["predict", "shapes.png", "--out", "folder"], ["folder", "is a folder"], None),
    "propose --out of an unknown format": (
        ["propose", "shapes.png", "--out", "boxes.xyz"], ["boxes.xyz", ".png"], None),
    "propose --show -1": (["propose", "shapes.png", "--show", "-1"], ["--show"], None),
    "predict --score nan": (["predict", "shapes.png", "--score", "nan"], ["--score"], None),
    # train: numbers
    "train --steps 0": ([*TRAIN, "--steps", "0"], ["--steps", "at least 1"], None),
    "train --steps -5": ([*TRAIN, "--steps", "-5"], ["--steps", "-5"], None),
    "train --minutes 0": ([*TRAIN, "--minutes", "0"], ["--minutes", "positive"], None),
    "train --minutes -1": ([*TRAIN, "--minutes", "-1"], ["--minutes", "positive"], None),
    "train --minutes nan": ([*TRAIN, "--minutes", "nan"], ["--minutes"], None),
    "train --eval-images 0": ([*TRAIN, "--eval-images", "0"], ["--eval-images"], None),
    "train --images 0": ([*TRAIN, "--images", "0"], ["--images", "between 2 and"], None),
    "train --images 1": ([*TRAIN, "--images", "1"], ["--images", "two images a step"], None),
    "train --images -3": ([*TRAIN, "--images", "-3"], ["--images"], None),
    "train --images 10**9": ([*TRAIN, "--images", "1000000000"], ["--images", "memory"], None),
    "train --seed -1": ([*TRAIN, "--seed", "-1"], ["--seed", "at least 0"], None),
    "train --evaluate-every -1": ([*TRAIN, "--evaluate-every", "-1"], ["--evaluate-every"], None),
    "train --steps abc": ([*TRAIN, "--steps", "abc"], ["--steps", "integer"], None),
    "train --stepz 3": ([*TRAIN, "--stepz", "3"], ["--stepz"], None),
    "train rcnn --steps 0": (["train", "rcnn", "--out", "r.npz", "--steps", "0"], ["--steps"], None),
    "train fast-rcnn --images 1": (
        ["train", "fast-rcnn", "--out", "f.npz", "--images", "1"], ["--images"], None),
    "train rcnn --minutes 5": (
        ["train", "rcnn", "--out", "r.npz", "--minutes", "5"], ["--minutes", "faster-rcnn"], None),
    "train fast-rcnn --resume": (
        ["train", "fast-rcnn", "--out", "f.npz", "--resume"], ["--resume", "mask-rcnn"], None),
    # train: the output file
    "train --out in a missing folder": (
        ["train", "mask-rcnn", "--out", "nope/m.npz"], ["nope", "does not exist"], None),
    "train --out naming a folder": (
        ["train", "mask-rcnn", "--out", "folder"], ["folder", "is a folder"], None),
    "train rcnn --out naming a folder": (
        ["train", "rcnn", "--out", "folder"], ["is a folder"], None),
    # train: resume
    "train --resume from a corrupt checkpoint": (
        [*TRAIN, *TINY, "--resume"], ["m.checkpoint.npz", "not resuming"], _corrupt_checkpoint),
    "train --resume from another file": (
        [*TRAIN, *TINY, "--resume"], ["another model", "not resuming"], _foreign_checkpoint),
    "train --resume with other steps": (
        [*TRAIN, "--steps", "2", "--images", "2", "--resume"], ["steps 1 there, 2 here"],
        _other_settings_checkpoint),
    "train --resume with another pooler": (
        [*TRAIN, *TINY, "--resume", "--pooler", "roi_pool"], ["another model or configuration"],
        _other_settings_checkpoint),
    # ablation
    "ablation --steps 0": (["ablation", "--out", "ab", "--steps", "0"], ["--steps"], None),
    "ablation --images 1": (["ablation", "--out", "ab", "--images", "1"], ["--images"], None),
    "ablation --minutes 0": (["ablation", "--out", "ab", "--minutes", "0"], ["--minutes"], None),
    "ablation --out naming a file": (
        ["ablation", "--out", "one.png"], ["one.png", "is a file"], None),
    # train mask-rcnn-fpn
    "train mask-rcnn-fpn --arm c4": ([*FPN, "--arm", "c4"], ["--arm", "'c4'", "single_level"], None),
    "train mask-rcnn-fpn --steps 0": ([*FPN, "--steps", "0"], ["--steps", "at least 1"], None),
    "train mask-rcnn-fpn --images 1": ([*FPN, "--images", "1"], ["--images", "two images"], None),
    "train mask-rcnn-fpn --eval-images 0": ([*FPN, "--eval-images", "0"], ["--eval-images"], None),
    "train mask-rcnn-fpn --minutes nan": ([*FPN, "--minutes", "nan"], ["--minutes"], None),
    "train mask-rcnn-fpn --minutes -1": ([*FPN, "--minutes", "-1"], ["--minutes", "positive"], None),
    "train mask-rcnn-fpn --seed -1": ([*FPN, "--seed", "-1"], ["--seed", "at least 0"], None),
    "train mask-rcnn-fpn --evaluate-every -1": (
        [*FPN, "--evaluate-every", "-1"], ["--evaluate-every"], None),
    "train mask-rcnn-fpn --out in a missing folder": (
        ["train", "mask-rcnn-fpn", "--out", "nope/m.npz"], ["nope", "does not exist"], None),
    "train mask-rcnn-fpn --out naming a folder": (
        ["train", "mask-rcnn-fpn", "--out", "folder"], ["folder", "is a folder"], None),
    "train mask-rcnn-fpn --out's checkpoint naming a folder": (
        [*FPN], ["--out's checkpoint", "is a folder"],
        lambda folder, _: (folder / "m.checkpoint.npz").mkdir()),
    "train mask-rcnn-fpn --resume from a corrupt checkpoint": (
        [*FPN, *TINY, "--resume"], ["m.checkpoint.npz", "not resuming"], _corrupt_checkpoint),
    "train mask-rcnn-fpn --resume from another file": (
        [*FPN, *TINY, "--resume"], ["another model", "not resuming"], _foreign_checkpoint),
    "train mask-rcnn-fpn --resume from mask-rcnn's (other) checkpoint": (
        [*FPN, *TINY, "--resume"], ["another model or configuration"], _other_settings_checkpoint),
    # ablation --backbone
    "ablation --backbone --steps 0": (
        ["ablation", "--backbone", "--out", "ab", "--steps", "0"], ["--steps"], None),
    "ablation --backbone --images 1": (
        ["ablation", "--backbone", "--out", "ab", "--images", "1"], ["--images"], None),
    "ablation --backbone --eval-images 0": (
        ["ablation", "--backbone", "--out", "ab", "--eval-images", "0"], ["--eval-images"], None),
    "ablation --backbone --minutes 0": (
        ["ablation", "--backbone", "--out", "ab", "--minutes", "0"], ["--minutes"], None),
    "ablation --backbone --seed -1": (
        ["ablation", "--backbone", "--out", "ab", "--seed", "-1"], ["--seed"], None),
    "ablation --backbone --out naming a file": (
        ["ablation", "--backbone", "--out", "one.png"], ["one.png", "is a file"], None),
    "ablation --backbone --out below a file": (
        ["ablation", "--backbone", "--out", "one.png/ab"], ["one.png", "not a folder"], None),
    "ablation --backbone=yes": (["ablation", "--backbone=yes", "--out", "ab"], ["--backbone"], None),
    "ablation --backbone without --out": (["ablation", "--backbone"], ["--out"], None),
}  # fmt: skip


@pytest.fixture
def no_long_work(monkeypatch):
    """A function after which training, data generation, evaluation, selective search and the
    shapes model fail the test if they are reached."""
    import rcnn_from_scratch.proposals.selective_search as ss
    import rcnn_from_scratch.training.ablation as ablation
    import rcnn_from_scratch.training.fast_rcnn as fast
    import rcnn_from_scratch.training.faster_rcnn as faster
    import rcnn_from_scratch.training.feature_pyramid as pyramid
    import rcnn_from_scratch.training.rcnn as rcnn
    from rcnn_from_scratch.models.mask_rcnn import MaskRCNN

    def long_work(*args, **kwargs):
        raise AssertionError("the long work started before the mistake was caught")

    def forbid():
        for module, name in [(faster, "ShapesDataset"), (faster, "run_training"),
                             (faster, "evaluate_detector"), (rcnn, "train_rcnn"),
                             (fast, "train_fast_rcnn"), (ablation, "run_ablation"),
                             (ablation, "run_backbone_ablation"), (pyramid, "evaluate_pyramid"),
                             (pyramid, "ShapesDataset"),
                             (ss, "selective_search"), (MaskRCNN, "predict")]:  # fmt: skip
            monkeypatch.setattr(module, name, long_work)

    return forbid


@pytest.mark.parametrize("case", list(CASES))
def test_each_mistake_is_one_line_exit_code_2_before_the_work(
    case, workdir, no_long_work, capsys, request
):
    argv, words, setup = CASES[case]
    if setup is not None:
        checkpoint = request.getfixturevalue("tiny_checkpoint") if "other" in case else None
        setup(workdir, checkpoint)
    no_long_work()
    before = _files(workdir)
    capsys.readouterr()
    assert _run(argv) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error:") and err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)
    assert _files(workdir) == before  # no output, no half-written file, no *.tmp


def test_a_folder_no_one_may_write_in_is_refused_before_training(workdir, no_long_work, capsys):
    import tempfile

    def refuse(*args, **kwargs):  # what mkstemp raises in a read-only folder
        raise PermissionError(13, "Permission denied")

    no_long_work()
    (workdir / "locked").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "mkstemp", refuse)
        codes = [_run(["train", "mask-rcnn", "--out", "locked/m.npz"]),
                 _run(["predict", "shapes.png", "--out", "locked/x.png"]),
                 _run(["ablation", "--out", "locked/ab"]),
                 _run(["train", "mask-rcnn-fpn", "--out", "locked/m.npz"]),
                 _run(["ablation", "--backbone", "--out", "locked/ab"])]  # fmt: skip
    assert codes == [2] * 5
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5 and all("Permission denied" in line for line in lines)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_folder_is_refused_before_training(workdir, no_long_work, capsys):
    no_long_work()
    locked = workdir / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert _run(["train", "mask-rcnn", "--out", str(locked / "m.npz")]) == 2
    finally:
        locked.chmod(0o755)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err
    assert not list(locked.iterdir())


# --- a 6000 x 4000 photograph: shrunk before the model or selective search sees it ------------------


@pytest.fixture(scope="module")
def big_photo(tmp_path_factory):
    """A 6000 x 4000 (width x height) JPEG: 24 M pixels, 72 MB once decoded (written once)."""
    image = np.zeros((4000, 6000, 3), np.uint8)
    image[1000:3000, 2000:4000] = 255
    path = tmp_path_factory.mktemp("photo") / "big.jpg"
    iio.imwrite(path, image)
    return path


def test_propose_shrinks_a_big_photograph_for_selective_search(
    big_photo, workdir, monkeypatch, capsys
):
    import rcnn_from_scratch.proposals.selective_search as ss

    seen = []

    def record(image, mode="fast"):
        seen.append(image.shape)
        return np.zeros((0, 4), np.float32)

    monkeypatch.setattr(ss, "selective_search", record)
    assert _run(["propose", str(big_photo), "--out", "boxes.png"]) == 0
    # longer side 6000 -> PROPOSE_MAX_SIDE (800), the other 4000 * 800 / 6000 = 533.3 -> 533
    assert seen == [(533, cli.PROPOSE_MAX_SIDE, 3)]
    assert "shrunk to 800 x 533" in capsys.readouterr().out


def test_predict_shrinks_a_big_photograph_and_gives_boxes_in_its_pixels(big_photo, workdir, monkeypatch,
                                                                        capsys):  # fmt: skip
    from rcnn_from_scratch.models.mask_rcnn import MaskRCNN

    seen = []

    def whole_image_box(self, image):
        seen.append(image.shape)
        h, w = image.shape[:2]
        return {"boxes": np.array([[0, 0, w, h]], np.float32), "labels": np.array([1]),
                "scores": np.array([0.9], np.float32), "masks": np.zeros((1, h, w), bool)}  # fmt: skip

    monkeypatch.setattr(MaskRCNN, "predict", whole_image_box)
    assert _run(["predict", str(big_photo), "--out", "pred.png"]) == 0
    # 6000 -> 1333, 4000 * 1333 / 6000 = 888.67 -> 889
    assert seen == [(889, cli.PREDICT_MAX_SIDE, 3)]
    out = capsys.readouterr().out
    assert "shrunk to 1333 x 889" in out
    assert "box x1, y1, x2, y2 = 0.0, 0.0, 6000.0, 4000.0" in out  # back in the original's pixels


def test_predict_real_model_gets_the_shrunk_photograph_and_the_score_threshold(
    big_photo, workdir, monkeypatch, capsys
):
    from rcnn_from_scratch.transform import GeneralizedRCNNTransform

    calls = {}

    class Model:  # stands in for the 170 MB ResNet-50-FPN: what the command hands it is the point
        transform = GeneralizedRCNNTransform(800, 1333, (0.5,) * 3, (0.25,) * 3)
        categories = ["__background__", "person"]
        timings = {"backbone": 1.0, "total": 1.0}

        def predict(self, image):
            calls["shape"] = image.shape
            return {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64),
                    "scores": np.zeros(0, np.float32)}  # fmt: skip

    def build(name, weights, **kwargs):
        calls["kwargs"] = kwargs
        return Model()

    monkeypatch.setattr(cli.realscale, "_real_model", build)  # where predict --model finds it
    argv = ["predict", str(big_photo), "--model", "fasterrcnn_resnet50_fpn", "--out", "c.png"]
    assert _run(argv) == 0
    assert calls["shape"] == (889, 1333, 3)
    assert calls["kwargs"]["box_score_thresh"] == 0.5  # no mask is pasted for a hidden detection


# --- interrupted and killed runs leave no *.tmp file ------------------------------------------------


def test_a_killed_runs_temporary_files_are_removed_at_the_next_start(workdir, capsys):
    stale = ["m.npz.k3j2h1.tmp", "m.checkpoint.npz.x9y8z7.tmp"]  # as save_weights names them
    for name in [*stale, "notes.tmp", "m2.npz.a.tmp"]:
        (workdir / name).write_bytes(b"half a file")
    assert _run([*TRAIN, *TINY]) == 0
    assert not any((workdir / name).exists() for name in stale)
    assert (workdir / "notes.tmp").exists() and (workdir / "m2.npz.a.tmp").exists()  # not ours
    assert (workdir / "m.npz").is_file() and (workdir / "m.checkpoint.npz").is_file()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_checkpoint_write_leaves_no_tmp_and_says_how_to_resume(
    how, workdir, monkeypatch, capsys
):
    real_savez = np.savez

    def interrupted_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 the first bytes")
        if how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises before this returns
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted_savez)
    previous = signal.getsignal(signal.SIGTERM)
    code = _run([*TRAIN, *TINY])
    monkeypatch.setattr(np, "savez", real_savez)
    assert code == 130
    assert signal.getsignal(signal.SIGTERM) == previous  # the handler is the command's only
    last = capsys.readouterr().err.splitlines()[-1]  # after the progress bar's line
    assert last.startswith("error: interrupted") and "--resume" in last
    assert not list(workdir.glob("*.tmp")) and not (workdir / "m.checkpoint.npz").exists()
