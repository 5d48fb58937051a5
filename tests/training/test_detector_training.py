"""The Faster / Mask R-CNN training loop: a resumed run equals an uninterrupted one, budgets hold."""

import numpy as np
import pytest

from rcnn_from_scratch.models.faster_rcnn import FasterRCNN, FasterRCNNConfig
from rcnn_from_scratch.models.mask_rcnn import MaskRCNN, MaskRCNNConfig
from rcnn_from_scratch.training.faster_rcnn import evaluate_detector, train_detector

SMALL = FasterRCNNConfig(channels=(4, 8, 8), hidden=16, rpn_batch_size=32, rois_per_image=16)
QUIET = {"progress": False, "log": lambda _: None, "num_images": 4}


def params(model):
    return {n: p.data.copy() for n, p in model.named_parameters()}


def test_a_spent_time_budget_runs_no_step_and_a_finished_run_resumes_to_itself(tmp_path):
    report = train_detector(FasterRCNN(SMALL), steps=3, minutes=0.0, **QUIET)
    assert report["steps_run"] == 0 and report["final_loss"] == {}
    ckpt = tmp_path / "ckpt.npz"
    done = FasterRCNN(SMALL, seed=0)
    train_detector(done, steps=3, checkpoint=ckpt, **QUIET)
    again = FasterRCNN(SMALL, seed=5)  # other initial weights: all must come from the file
    report = train_detector(again, steps=3, checkpoint=ckpt, resume=True, **QUIET)
    assert report["steps_run"] == 3  # nothing was left to do
    for name, value in params(done).items():
        np.testing.assert_array_equal(params(again)[name], value, err_msg=name)


def test_resume_mid_run_matches(tmp_path):
    straight = FasterRCNN(SMALL, seed=0)
    train_detector(straight, steps=4, **QUIET)
    ckpt = tmp_path / "ckpt.npz"
    half = FasterRCNN(SMALL, seed=0)
    # a 2-step schedule would differ, so stop a 4-step run after its checkpoint at step 2 instead
    from rcnn_from_scratch.training import faster_rcnn as training

    calls = {"n": 0}
    real = training._save_checkpoint

    def crash_after_first_checkpoint(*args):
        real(*args)
        calls["n"] += 1
        raise KeyboardInterrupt

    training._save_checkpoint = crash_after_first_checkpoint
    try:
        with pytest.raises(KeyboardInterrupt):
            train_detector(half, steps=4, checkpoint=ckpt, checkpoint_every=2, **QUIET)
    finally:
        training._save_checkpoint = real
    resumed = FasterRCNN(SMALL, seed=7)
    report = train_detector(resumed, steps=4, checkpoint=ckpt, resume=True, **QUIET)
    assert len(report["history"]) == 4
    for name, value in params(straight).items():
        np.testing.assert_array_equal(params(resumed)[name], value, err_msg=name)


def test_resuming_with_other_settings_is_refused(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    train_detector(FasterRCNN(SMALL), steps=2, checkpoint=ckpt, **QUIET)
    with pytest.raises(ValueError, match="settings"):
        train_detector(FasterRCNN(SMALL), steps=3, checkpoint=ckpt, resume=True, **QUIET)
    with pytest.raises(ValueError, match="another model"):
        other = FasterRCNN(FasterRCNNConfig(**{**SMALL.__dict__, "hidden": 8}))
        train_detector(other, steps=2, checkpoint=ckpt, resume=True, **QUIET)


def test_periodic_evaluation_reports_box_and_mask_ap():
    config = MaskRCNNConfig(**{**SMALL.__dict__, "pooler": "roi_align"}, mask_layers=(4,))
    logged = []
    report = train_detector(MaskRCNN(config), steps=2, evaluate_every=2, eval_images=2,
                            progress=False, log=logged.append, num_images=4)  # fmt: skip
    (entry,) = report["evaluations"]
    assert entry["step"] == 2 and {"bbox_ap50", "segm_ap50"} <= set(entry)
    assert len(logged) == 1
    assert set(report["final_loss"]) >= {"mask", "rpn_objectness"}


def test_evaluation_of_a_box_model_has_no_mask_metric():
    results, times = evaluate_detector(FasterRCNN(SMALL), num_images=2)
    assert set(results) == {"bbox"} and set(times) == {"features", "proposals", "heads"}


def test_resuming_from_a_damaged_checkpoint_is_refused_before_the_first_step(tmp_path):
    from rcnn_from_scratch.nn import load_weights, save_weights
    from rcnn_from_scratch.training.faster_rcnn import ResumeError

    ckpt = tmp_path / "ckpt.npz"
    train_detector(FasterRCNN(SMALL), steps=2, checkpoint=ckpt, **QUIET)
    state, meta = load_weights(ckpt)
    name = next(k for k in state if k.startswith("model."))
    damaged = [
        ({k: v for k, v in state.items() if k != name}, meta, "missing or of another shape"),
        ({**state, name: state[name][..., :1]}, meta, "missing or of another shape"),
        (state, {k: v for k, v in meta.items() if k != "rng"}, "damaged checkpoint"),
        (state, {**meta, "step": 5}, "damaged checkpoint"),
    ]
    for arrays, config, words in damaged:
        save_weights(ckpt, arrays, config)
        with pytest.raises(ResumeError, match=words):
            train_detector(FasterRCNN(SMALL), steps=2, checkpoint=ckpt, resume=True, **QUIET)
    ckpt.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(ResumeError, match="not resuming"):
        train_detector(FasterRCNN(SMALL), steps=2, checkpoint=ckpt, resume=True, **QUIET)


def test_temporary_files_of_a_killed_write_are_removed_and_no_others(tmp_path):
    from rcnn_from_scratch.training.faster_rcnn import remove_stale_temporaries

    names = ["m.npz.abc.tmp", "m.npz.x_y.tmp", "m.npz", "m.npzz.a.tmp", "n.npz.abc.tmp", "m.tmp"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temporaries(tmp_path / "m.npz")
    assert sorted(p.name for p in removed) == ["m.npz.abc.tmp", "m.npz.x_y.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "m.npzz.a.tmp", "m.tmp",
                                                           "n.npz.abc.tmp"]  # fmt: skip
