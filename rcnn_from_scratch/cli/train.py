"""`train` and `ablation`: the training commands, every user error before the first step."""

from __future__ import annotations

import argparse
import sys

from .checks import _cannot_write, _check_output_file, _fail

# steps of the shipped weights' training commands (data/README.md)
STEPS = {"rcnn": 1000, "fast-rcnn": 2000, "faster-rcnn": 6000, "mask-rcnn": 4500,
         "mask-rcnn-fpn": 4000}  # fmt: skip
# steps of each arm of the two ablations (ablation; ablation --backbone)
ABLATION_STEPS = {"roi": 3000, "backbone": 4000}


TWO_STAGE = ("faster-rcnn", "mask-rcnn")


def _train(args: argparse.Namespace) -> int:
    import json

    if args.steps is None:
        args.steps = STEPS[args.model]
    if args.arm is not None and args.model != "mask-rcnn-fpn":
        return _fail("--arm is an option of mask-rcnn-fpn only")
    if args.model == "mask-rcnn-fpn":
        return _train_pyramid(args)
    if args.class_agnostic and args.model != "mask-rcnn":
        return _fail("--class-agnostic is an option of mask-rcnn only")
    if args.model not in TWO_STAGE:
        given = [name for name, value in (("--minutes", args.minutes), ("--resume", args.resume),
                 ("--evaluate-every", args.evaluate_every)) if value]  # fmt: skip
        if given:
            return _fail(
                f"{given[0]} is an option of faster-rcnn, mask-rcnn and mask-rcnn-fpn only"
            )
        if args.pooler:
            return _fail("--pooler is an option of faster-rcnn and mask-rcnn only")
    problem = _check_output_file(args.out)
    if problem is None and args.model in TWO_STAGE:
        problem = _check_output_file(_checkpoint_path(args.out), "--out's checkpoint")
    if problem is not None:
        return _fail(problem)

    if args.model in TWO_STAGE:
        return _train_two_stage(args)
    if args.model == "rcnn":
        from ..training.rcnn import evaluate_model as evaluate
        from ..training.rcnn import train_rcnn

        model, report = train_rcnn(num_images=args.images, steps=args.steps, seed=args.seed)
    else:
        from ..training.fast_rcnn import evaluate_fast_rcnn as evaluate
        from ..training.fast_rcnn import train_fast_rcnn

        model, report = train_fast_rcnn(num_images=args.images, steps=args.steps, seed=args.seed)
    report.pop("history", None)  # every step's losses: too long for the weights file's record
    result, times = evaluate(model, args.eval_images)
    report.update(
        command=" ".join(["python -m rcnn_from_scratch", *sys.argv[1:]]),
        box_ap50=round(result.map50, 4),
        box_map=round(result.map, 4),
        test_seconds_per_image={k: round(v, 4) for k, v in times.items()},
    )
    model.save(args.out, extra={"training": json.dumps(report)})
    print(result.table())
    print(json.dumps(report, indent=1))
    print(f"saved {args.out}")
    return 0


def _checkpoint_path(out):
    from pathlib import Path

    out = Path(out)
    return out.with_name(out.stem + ".checkpoint.npz")  # as training.faster_rcnn.train_and_save


def _train_pyramid(args: argparse.Namespace) -> int:
    """The small Mask R-CNN over a feature pyramid, or its single-level arm, on multi-scale shapes."""
    from ..training.feature_pyramid import build_mask_rcnn_fpn, train_and_save_pyramid

    if args.pooler or args.class_agnostic:
        return _fail("--pooler and --class-agnostic are options of mask-rcnn only")
    problem = _check_output_file(args.out)
    if problem is None:
        problem = _check_output_file(_checkpoint_path(args.out), "--out's checkpoint")
    if problem is not None:
        return _fail(problem)
    model = build_mask_rcnn_fpn(args.arm or "fpn", seed=args.seed)
    return _run_training(train_and_save_pyramid, model, args)


def _train_two_stage(args: argparse.Namespace) -> int:
    """Faster and Mask R-CNN: time budget, checkpoints, resume, periodic evaluation."""
    from ..training.faster_rcnn import build_detector, train_and_save

    model = build_detector(args.model, args.pooler, seed=args.seed,
                           class_agnostic=args.class_agnostic)  # fmt: skip
    return _run_training(train_and_save, model, args)


def _run_training(train_and_save, model, args: argparse.Namespace) -> int:
    """``train_and_save(model, out, command, ...)`` (Faster / Mask R-CNN's or the pyramid's) with
    the command's settings; a checkpoint it cannot resume from, Ctrl-C and SIGTERM are one line."""
    from ..training.faster_rcnn import ResumeError

    command = " ".join(["python -m rcnn_from_scratch", *sys.argv[1:]])
    try:
        with _sigterm_as_interrupt():
            train_and_save(model, args.out, command, eval_images=args.eval_images,
                           num_images=args.images, steps=args.steps, seed=args.seed,
                           minutes=args.minutes, resume=args.resume,
                           evaluate_every=args.evaluate_every)  # fmt: skip
    except ResumeError as err:  # raised before the first step
        return _fail(str(err))
    except KeyboardInterrupt:
        print(f"error: interrupted; {_checkpoint_path(args.out)} holds the last checkpoint (every "
              "250 steps); the same command with --resume continues from it",
              file=sys.stderr)  # fmt: skip
        return 130
    return 0


class _sigterm_as_interrupt:
    """While training, SIGTERM (``kill``, a job scheduler) stops the run as Ctrl-C does, so the
    weights file being written is cleaned up rather than left as a ``*.tmp`` file."""

    def __enter__(self):
        import signal
        import threading

        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


def _ablation(args: argparse.Namespace) -> int:
    """Both arms of one ablation into the folder ``--out``, then its table: RoI pooling against
    RoIAlign, or with ``--backbone`` the single-level trunk against the feature pyramid."""
    from pathlib import Path

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out}: is a file; the ablation writes two weights files into a folder")
    existing = next(p for p in (out, *out.parents) if p.exists())  # the folder is created below it
    reason = _cannot_write(existing) if existing.is_dir() else "not a folder"
    if reason is not None:
        return _fail(f"--out {out}: cannot write in {existing} ({reason})")
    steps = args.steps or ABLATION_STEPS["backbone" if args.backbone else "roi"]
    settings = dict(steps=steps, seed=args.seed, num_images=args.images,
                    eval_images=args.eval_images, minutes=args.minutes)  # fmt: skip
    if args.backbone:
        from ..training.ablation import backbone_ablation_table, run_backbone_ablation

        paths = run_backbone_ablation(args.out, **settings)
        print(backbone_ablation_table(paths["single_level"], paths["fpn"]))
        return 0
    from ..training.ablation import ablation_table, run_ablation

    paths = run_ablation(args.out, **settings)
    print(ablation_table(paths["roi_pool"], paths["roi_align"]))
    return 0
