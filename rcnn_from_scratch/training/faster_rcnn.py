"""Training Faster (and Mask) R-CNN by approximate joint training: the losses summed, one backward.

The paper's original scheme alternated four steps (train the RPN; train Fast R-CNN on its proposals;
fine-tune the RPN on the now-shared, frozen backbone; fine-tune the head). Joint training reaches the
same accuracy (70.0 against 69.9 mAP in the paper) in one run and is what libraries do now.

:func:`train_detector` is the loop both stages share: Adam with a step-down schedule, a step budget
and an optional time budget, periodic evaluation, and atomic checkpoints that a run resumes from
bit for bit (the model, the optimiser's moments, the sampling generator and the history are saved).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from glob import escape as glob_escape
from pathlib import Path

import numpy as np

from ..datasets.shapes import ShapesDataset
from ..evaluation import EvaluationResult, evaluate_detections
from ..models.faster_rcnn import FasterRCNN, FasterRCNNConfig
from ..nn import Adam, WarmupStepSchedule, WeightsError, load_weights, save_weights
from .loop import run_training

__all__ = [
    "train_detector",
    "train_faster_rcnn",
    "evaluate_detector",
    "evaluate_faster_rcnn",
    "training_record",
    "build_detector",
    "train_and_save",
    "ResumeError",
    "remove_stale_temporaries",
]


def _save_checkpoint(path: Path, model: FasterRCNN, opt: Adam, rng, step: int, history, settings):
    state = {"model." + n: p.data for n, p in model.named_parameters()}
    state.update({"optim." + k: v for k, v in opt.state_dict().items()})
    meta = {"model": model.model_name, "config": model.config_dict(), "step": step,
            "rng": rng.bit_generator.state, "history": history, "settings": settings}  # fmt: skip
    save_weights(path, state, meta)


class ResumeError(ValueError):
    """``resume=True`` found a checkpoint it cannot continue from: damaged, or written by another
    model, configuration or training settings. Raised before any training step."""


def _load_checkpoint(path: Path, model: FasterRCNN, opt: Adam, rng, settings) -> tuple[int, list]:
    try:
        state, meta = load_weights(path)
    except WeightsError as err:
        raise ResumeError(f"{err}; not resuming (delete it to start afresh)") from None
    if meta.get("model") != model.model_name or meta.get("config") != model.config_dict():
        raise ResumeError(f"{path}: a checkpoint of another model or configuration; not resuming")
    saved = meta.get("settings")
    if saved != settings:
        saved = saved if isinstance(saved, dict) else {}
        diff = ", ".join(f"{k} {saved.get(k)} there, {v} here" for k, v in settings.items()
                         if saved.get(k) != v)  # fmt: skip
        raise ResumeError(f"{path}: written with other training settings ({diff}); not resuming "
                          "(resume with the first run's settings, or delete it)")  # fmt: skip
    params = dict(model.named_parameters())
    for name, p in params.items():
        saved = state.get("model." + name)
        if saved is None or saved.shape != p.data.shape:
            raise ResumeError(f"{path}: parameter {name!r} is missing or of another shape; "
                              "not resuming (delete it to start afresh)")  # fmt: skip
    try:
        step, history = int(meta["step"]), list(meta["history"])
        if not 0 <= step <= settings["steps"] or len(history) != step:
            raise ValueError(f"step {step} with {len(history)} losses")
        opt.load_state_dict({k[len("optim.") :]: v for k, v in state.items()
                             if k.startswith("optim.")})  # fmt: skip
        rng.bit_generator.state = meta["rng"]
    except (KeyError, TypeError, ValueError) as err:
        raise ResumeError(f"{path}: a damaged checkpoint ({type(err).__name__}: {err}); not "
                          "resuming (delete it to start afresh)") from None  # fmt: skip
    for name, p in params.items():
        p.data[...] = state["model." + name]
    return step, history


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files that an interrupted write of ``path`` left beside it.

    ``save_weights`` writes ``<name>.<random>.tmp`` and renames it over ``<name>``; it deletes the
    temporary file itself on an exception or Ctrl-C, but a killed process (SIGKILL, power loss)
    cannot, so every run calls this for its checkpoint and its output before it starts.

    Returns:
        The files removed.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(glob_escape(path.name) + ".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _variant(model) -> str:
    """The shapes variant a model trains and is evaluated on (``"standard"`` unless it says)."""
    return getattr(model, "dataset_variant", "standard")


def train_detector(
    model: FasterRCNN,
    num_images: int = 400,
    steps: int = 3000,
    images_per_step: int = 2,
    lr: float = 1e-3,
    seed: int = 0,
    minutes: float | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 250,
    resume: bool = False,
    evaluate_every: int = 0,
    eval_images: int = 50,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train ``model`` (a :class:`FasterRCNN` or :class:`MaskRCNN`) on generated shapes, in place.

    Args:
        model: freshly built (its seed fixes the initialisation) or being resumed.
        num_images: training images (``ShapesDataset("train")``), drawn ``images_per_step`` a step.
        steps: the schedule's length; the learning rate drops 10x at 75% and 90% of it.
        seed: seed of the sampling (which images, anchors and RoIs each step sees).
        minutes: optional wall-clock budget; training stops early when it is spent.
        checkpoint: file to write every ``checkpoint_every`` steps and at the end (atomically).
        resume: continue from ``checkpoint`` if it exists (same model, config and settings;
            otherwise :class:`ResumeError` before the first step).
        evaluate_every: box (and mask) AP@0.5 on ``eval_images`` evaluation images every so many
            steps, logged and kept in the report (0: never).

    Returns:
        A report: seed, steps run, seconds, the final losses (mean of the last 100 steps), the loss
        history of every step and the periodic evaluations.
    """
    settings = {"num_images": num_images, "steps": steps, "images_per_step": images_per_step,
                "lr": lr, "seed": seed}  # fmt: skip
    rng = np.random.default_rng(seed)
    opt = Adam(model.parameters(), lr=lr)
    schedule = WarmupStepSchedule(lr, (int(0.75 * steps), int(0.9 * steps)), warmup_steps=50)
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    start, history = 0, []
    if checkpoint is not None:
        remove_stale_temporaries(checkpoint)
    if resume and checkpoint is not None:
        if checkpoint.exists():  # checked before the data is generated: a refusal comes at once
            start, history = _load_checkpoint(checkpoint, model, opt, rng, settings)
            log(f"resuming from {checkpoint} at step {start}")
        else:
            log(f"no checkpoint {checkpoint} yet; starting at step 0")
    # the model names its data: the multi-scale variant for the pyramid (models/mask_rcnn_fpn.py)
    dataset = ShapesDataset("train", size=num_images, variant=_variant(model))
    samples = [dataset[i] for i in range(num_images)]
    evaluations = []

    def step(k):
        pick = rng.choice(num_images, images_per_step, replace=False)
        opt.lr = schedule(k)
        opt.zero_grad()
        losses = model.loss([samples[i][0] for i in pick], [samples[i][1] for i in pick], rng)
        model.backward()
        opt.step()
        return losses

    def after(k, losses):
        history.append(losses)
        done = k + 1
        if checkpoint is not None and done % checkpoint_every == 0:
            _save_checkpoint(checkpoint, model, opt, rng, done, history, settings)
        if evaluate_every and done % evaluate_every == 0:
            results, _ = evaluate_detector(model, eval_images)
            entry = {"step": done, **{f"{t}_ap50": round(r.map50, 4) for t, r in results.items()}}
            evaluations.append(entry)
            log(json.dumps(entry))

    t0 = time.perf_counter()
    name = type(model).__name__
    run_training(step, steps, start_step=start, description=name, progress=progress,
                 on_step=after, time_limit=None if minutes is None else 60 * minutes)  # fmt: skip
    seconds = time.perf_counter() - t0
    if checkpoint is not None:
        _save_checkpoint(checkpoint, model, opt, rng, len(history), history, settings)
    last = history[-100:]
    final = {k: round(float(np.mean([h[k] for h in last])), 4) for k in (last[0] if last else {})}
    return {
        **settings, "steps_run": len(history), "seconds": {"training": round(seconds, 1)},
        "final_loss": final,
        "history": history, "evaluations": evaluations,
    }  # fmt: skip


def train_faster_rcnn(
    config: FasterRCNNConfig | None = None, seed: int = 0, **kwargs
) -> tuple[FasterRCNN, dict]:
    """A Faster R-CNN built with ``seed`` and trained by :func:`train_detector` (same keywords)."""
    model = FasterRCNN(config or FasterRCNNConfig(), seed=seed)
    return model, train_detector(model, seed=seed, **kwargs)


def evaluate_detector(model: FasterRCNN, num_images: int = 200) -> tuple[dict, dict]:
    """COCO-style AP on the evaluation images, and the mean time per image of each stage.

    Returns:
        ``({"bbox": EvaluationResult, "segm": EvaluationResult (models with masks only)},
        {stage: seconds})``.
    """
    dataset = ShapesDataset("eval", size=num_images, variant=_variant(model))
    predictions, targets, timings = [], [], []
    for image, target in dataset:
        predictions.append(model.predict(image))
        targets.append(target)
        timings.append(dict(model.timings))
    mean = {k: float(np.mean([t[k] for t in timings])) for k in timings[0]}
    results = {"bbox": evaluate_detections(predictions, targets, iou_type="bbox")}
    if "masks" in predictions[0]:
        results["segm"] = evaluate_detections(predictions, targets, iou_type="segm")
    return results, mean


def evaluate_faster_rcnn(model: FasterRCNN, num_images: int = 200) -> tuple[EvaluationResult, dict]:
    """Box AP on the evaluation images and the mean time per image of each stage."""
    results, mean = evaluate_detector(model, num_images)
    return results["bbox"], mean


def training_record(path) -> tuple[dict, list[dict[str, float]]]:
    """What the ``train`` command recorded in a weights file: its report (command, seed, steps,
    seconds, AP) and the loss history of every step (for :func:`viz.detection.plot_training_curve`)."""
    state, config = load_weights(path)
    report = json.loads(config.get("training", "{}"))
    curves = {k[len("record.") :]: v for k, v in state.items() if k.startswith("record.")}
    steps = len(next(iter(curves.values()))) if curves else 0
    history = [{k: float(v[i]) for k, v in curves.items()} for i in range(steps)]
    return report, history


def build_detector(name: str, pooler: str | None = None, seed: int = 0,
                   class_agnostic: bool = False) -> FasterRCNN:  # fmt: skip
    """``"faster-rcnn"`` or ``"mask-rcnn"`` with its default config (``pooler`` overrides the RoI
    operator of the heads; ``class_agnostic`` gives Mask R-CNN one mask for every class)."""
    from ..models.mask_rcnn import MaskRCNN, MaskRCNNConfig

    models = {
        "faster-rcnn": (FasterRCNN, FasterRCNNConfig),
        "mask-rcnn": (MaskRCNN, MaskRCNNConfig),
    }
    if name not in models:
        raise ValueError(f"model must be one of {sorted(models)}; got {name!r}")
    Model, Config = models[name]
    changes = {} if pooler is None else {"pooler": pooler}
    if class_agnostic:
        if name != "mask-rcnn":
            raise ValueError("class-agnostic masks need the mask-rcnn model")
        changes["class_agnostic_masks"] = True
    return Model(Config(**changes), seed=seed)


def train_and_save(model: FasterRCNN, out, command: str, eval_images: int = 200, **kwargs) -> dict:
    """Train (:func:`train_detector`'s keywords), evaluate on ``eval_images`` images, and save the
    weights with their record: the command, the report, the AP and the loss curves. The checkpoint
    sits beside ``out`` as ``<stem>.checkpoint.npz``. Prints the tables; returns the record."""
    out = Path(out)
    checkpoint = out.with_name(out.stem + ".checkpoint.npz")
    remove_stale_temporaries(out)
    report = train_detector(model, checkpoint=checkpoint, **kwargs)
    history = report.pop("history")
    results, times = evaluate_detector(model, eval_images)
    report.update(
        command=command, eval_images=eval_images,
        **{f"{kind}_{name}": round(getattr(r, name), 4)
           for kind, r in results.items() for name in ("map50", "map75", "map")},
        test_seconds_per_image={k: round(v, 4) for k, v in times.items()},
    )  # fmt: skip
    names = history[0] if history else {}  # a spent time budget may have run no step
    curves = {k: np.array([h[k] for h in history], np.float32) for k in names}
    model.save(out, extra={"training": json.dumps(report)}, arrays=curves)
    for result in results.values():
        print(result.table())
    print(json.dumps(report, indent=1))
    print(f"saved {out} (checkpoint {checkpoint})")
    return report
