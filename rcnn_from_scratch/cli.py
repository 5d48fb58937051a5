"""Command line: ``python -m rcnn_from_scratch COMMAND``; each command has ``--help``."""

from __future__ import annotations

import argparse
import sys

from .datasets.shapes import CLASS_NAMES

__all__ = ["main"]

# The longest side of a photograph that predict and propose look at; a larger one is shrunk first
# (with a note). predict: torchvision's max_size, so the ResNet-50-FPN models lose nothing they would
# see (their transform resizes to at most 1333 anyway) and the shapes model peaks near 700 MiB on a
# 1333 x 1333 image; propose: selective search peaks near 700 MiB (fast) and 800 MiB (quality) at
# 800 x 800, 1.9 GB at 1333 x 1333.
PREDICT_MAX_SIDE = 1333
PROPOSE_MAX_SIDE = 800
# training images are generated and held in memory (about 0.1 MB each)
MAX_IMAGES = 10_000


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but a mistake is one line (``error: ...``) and exit code 2; argparse's own
    prints the usage first. Subcommands inherit it (``add_subparsers`` uses the parent's class)."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _int_in(low: int, high: int | None = None, why: str = ""):
    """An argparse ``type``: an int in ``[low, high]``, else argparse's one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer; got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            raise argparse.ArgumentTypeError(f"must be {bounds}{why}; got {value}")
        return value

    return parse


def _minutes(text: str) -> float:
    """An argparse ``type``: a positive, finite number of minutes."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of minutes; got {text}")
    return value


def _cannot_write(folder) -> str | None:
    """Why no file can be created in ``folder``, or ``None`` if one can (tried, not guessed:
    permission bits say nothing for root or on a read-only file system)."""
    import os
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".rcnn-write-check-", dir=folder)
    except OSError as err:
        return err.strerror or type(err).__name__
    os.close(fd)
    os.unlink(probe)
    return None


def _check_output_file(path, option: str = "--out", suffixes=None) -> str | None:
    """The one-line reason why ``path`` cannot be written, or ``None``; checked before any work."""
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        return f"{option} {path}: is a folder; name the file to write in it"
    if suffixes is not None and path.suffix.lower().lstrip(".") not in suffixes:
        return f"{option} {path}: the file name must end in one of " + ", ".join(
            "." + s for s in sorted(suffixes)
        )
    folder = path.parent
    if not folder.is_dir():
        return f"{option} {path}: the folder {folder} does not exist"
    reason = _cannot_write(folder)
    if reason is not None:
        return f"{option} {path}: cannot write in the folder {folder} ({reason})"
    return None


def _figure_suffixes() -> set[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes())


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, seed=args.seed)
    return 0


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
        from .training.rcnn import evaluate_model as evaluate
        from .training.rcnn import train_rcnn

        model, report = train_rcnn(num_images=args.images, steps=args.steps, seed=args.seed)
    else:
        from .training.fast_rcnn import evaluate_fast_rcnn as evaluate
        from .training.fast_rcnn import train_fast_rcnn

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
    from .training.feature_pyramid import build_mask_rcnn_fpn, train_and_save_pyramid

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
    from .training.faster_rcnn import build_detector, train_and_save

    model = build_detector(args.model, args.pooler, seed=args.seed,
                           class_agnostic=args.class_agnostic)  # fmt: skip
    return _run_training(train_and_save, model, args)


def _run_training(train_and_save, model, args: argparse.Namespace) -> int:
    """``train_and_save(model, out, command, ...)`` (Faster / Mask R-CNN's or the pyramid's) with
    the command's settings; a checkpoint it cannot resume from, Ctrl-C and SIGTERM are one line."""
    from .training.faster_rcnn import ResumeError

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
        from .training.ablation import backbone_ablation_table, run_backbone_ablation

        paths = run_backbone_ablation(args.out, **settings)
        print(backbone_ablation_table(paths["single_level"], paths["fpn"]))
        return 0
    from .training.ablation import ablation_table, run_ablation

    paths = run_ablation(args.out, **settings)
    print(ablation_table(paths["roi_pool"], paths["roi_align"]))
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _read(path: str, max_side: int, note: str = ""):
    """The image at ``path`` shrunk to fit ``max_side`` (a one-line note says so, ending in
    ``note``) and its original ``(height, width)``, or ``None`` after printing the one-line reason."""
    from .image_io import ImageReadError, fit_longer_side, read_image

    try:
        image = read_image(path)
    except ImageReadError as err:
        _fail(str(err))
        return None
    original = image.shape[:2]
    image = fit_longer_side(image, max_side)
    if image.shape[:2] != original:
        (h, w), (H, W) = image.shape[:2], original
        print(f"note: {path} is {W} x {H} pixels; shrunk to {w} x {h} (longer side at most "
              f"{max_side}) to bound the memory{note}")  # fmt: skip
    return image, original


def _to_original(boxes, image, original):
    """Boxes in the (shrunk) image's pixels -> the original image's pixels."""
    import numpy as np

    sy, sx = original[0] / image.shape[0], original[1] / image.shape[1]
    return boxes * np.array([sx, sy, sx, sy], np.float32)


def _predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    args.out_path = Path(args.out or Path(args.image).stem + "_predictions.png")
    problem = _check_output_file(args.out_path, suffixes=_figure_suffixes())
    if problem is not None:
        return _fail(problem)
    if not 0.0 <= args.score_threshold <= 1.0:
        return _fail(f"--score must lie in [0, 1]; got {args.score_threshold}")
    if args.model not in REAL_MODELS and args.min_size is not None:
        return _fail("--min-size is an option of the ResNet-50-FPN models only")
    if args.min_size is not None and not 32 <= args.min_size <= 1333:
        return _fail(f"--min-size must lie in [32, 1333]; got {args.min_size}")
    read = _read(args.image, PREDICT_MAX_SIDE, "; boxes are given in the original's pixels")
    if read is None:
        return 2
    image, original = read
    if args.model in REAL_MODELS:
        return _predict_real(args, image, original)
    from matplotlib.figure import Figure

    from .image_io import ImageReadError, check_min_side
    from .models.mask_rcnn import MaskRCNN
    from .nn import WeightsError
    from .viz.shapes import draw_detections

    try:
        model = MaskRCNN.pretrained(args.weights)
    except (WeightsError, ValueError) as err:
        return _fail(str(err))
    stride = model.backbone.stride  # three 2 x 2 poolings: a side below 8 pools to nothing
    try:
        check_min_side(image, stride, args.image, f"the shapes Mask R-CNN (stride {stride})")
    except ImageReadError as err:
        return _fail(str(err))
    out = model.predict(image)
    keep = out["scores"] >= args.score_threshold
    out = {k: v[keep] for k, v in out.items()}
    fig = Figure(figsize=(6, 6 * image.shape[0] / image.shape[1]), layout="constrained")
    draw_detections(image, out, ax=fig.add_subplot())
    fig.savefig(args.out_path, dpi=120)
    print("note: the shipped model knows only the generated shapes (circle, square, triangle);")
    print("      on a photograph its boxes and masks show what it mistakes for those shapes;")
    print("      --model maskrcnn_resnet50_fpn runs torchvision's COCO model (80 classes).")
    boxes = _to_original(out["boxes"], image, original)
    for box, label, score in zip(boxes, out["labels"], out["scores"], strict=True):
        corners = ", ".join(f"{v:.1f}" for v in box)
        print(f"  {CLASS_NAMES[label]:9s} {score:.2f}  box x1, y1, x2, y2 = {corners}")
    times = ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in model.timings.items())
    print(f"{len(out['boxes'])} detections (score >= {args.score_threshold}) in {times}")
    print(f"saved {args.out_path}")
    return 0


REAL_MODELS = ("maskrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn")


def _real_model(name: str, weights, **kwargs):
    """The ResNet-50-FPN model ``name`` from ``weights`` (or from a cache folder), or the one-line
    reason as a ``str``; every check runs before the long work."""
    from pathlib import Path

    from .checkpoints.torchvision import (
        PUBLISHED,
        find_weights,
        torch_hub_checkpoints_dir,
        weights_dir,
    )
    from .models import resnet_fpn

    if weights is None:
        weights = find_weights(name)
        if weights is None:
            return (
                f"no --weights given and {PUBLISHED[name].filename} is in neither {weights_dir()} "
                f"nor {torch_hub_checkpoints_dir()}; run `python -m rcnn_from_scratch fetch-weights "
                f"{name}`, or pass --weights FILE"
            )
    elif not Path(weights).is_file():
        return f"--weights {weights}: no such file"
    try:
        return getattr(resnet_fpn, name)(weights=weights, **kwargs)
    except (ValueError, TypeError) as err:  # WeightsError and CheckpointError are ValueErrors
        return str(err)


def _predict_real(args: argparse.Namespace, image, original) -> int:
    from .viz.pyramid import plot_full_scale_detections

    # scores below --score are dropped inside the model, so no mask of theirs is pasted (memory)
    kwargs = {"box_score_thresh": args.score_threshold}
    if args.min_size is not None:
        # torchvision's ratio of the two limits (800 / 1333), kept for other short sides
        kwargs.update(
            min_size=args.min_size, max_size=max(args.min_size, round(args.min_size * 1333 / 800))
        )
    model = _real_model(args.model, args.weights, **kwargs)
    if isinstance(model, str):
        return _fail(model)
    try:  # no minimum size, but a side that the resize would make 0 pixels (a 1 x 2000 strip)
        model.transform.resized_size(*image.shape[:2])
    except ValueError as err:
        return _fail(f"{args.image}: too narrow for {args.model}: {err}")
    out = model.predict(image)
    keep = out["scores"] >= args.score_threshold
    out = {k: v[keep] for k, v in out.items()}
    fig = plot_full_scale_detections(image, out, model.categories, args.score_threshold)
    fig.savefig(args.out_path, dpi=120)
    boxes = _to_original(out["boxes"], image, original)
    for box, label, score in zip(boxes, out["labels"], out["scores"], strict=True):
        corners = ", ".join(f"{v:.1f}" for v in box)
        print(f"  {model.categories[label]:14s} {score:.2f}  box x1, y1, x2, y2 = {corners}")
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in model.timings.items() if k != "total")
    print(
        f"{len(out['boxes'])} detections (score >= {args.score_threshold}) in "
        f"{model.timings['total']:.2f} s ({stages})"
    )
    print(f"saved {args.out_path}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .checkpoints.torchvision import read_torch_checkpoint
    from .models.resnet_fpn import FasterRCNNResNet50FPN, MaskRCNNResNet50FPN

    src, dst = Path(args.file), Path(args.out)
    if not src.is_file():
        return _fail(f"{src}: no such file")
    if dst.suffix != ".npz":
        return _fail(f"{dst}: the output must be an .npz file")
    if not dst.parent.is_dir():
        return _fail(f"{dst}: the folder {dst.parent} does not exist")
    try:
        state = read_torch_checkpoint(src)
        masks = any(k.startswith("roi_heads.mask") for k in state)
        cls = MaskRCNNResNet50FPN if masks else FasterRCNNResNet50FPN
        model = cls.from_state_dict(state, source=str(src))
    except (ValueError, TypeError) as err:  # CheckpointError is a ValueError
        return _fail(str(err))
    model.save(dst)
    print(f"{src} -> {dst}: {model.model_name}, {len(state)} arrays; both files load")
    return 0


def _propose(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    path = Path(args.out or Path(args.image).stem + "_proposals.png")
    problem = _check_output_file(path, suffixes=_figure_suffixes())
    if problem is not None:
        return _fail(problem)
    read = _read(args.image, PROPOSE_MAX_SIDE)  # selective search works on any size from 1 x 1
    if read is None:
        return 2
    image, _ = read
    from matplotlib.figure import Figure

    from .proposals.selective_search import selective_search
    from .viz.boxes import draw_boxes

    start = time.perf_counter()
    boxes = selective_search(image, mode=args.mode)
    seconds = time.perf_counter() - start
    fig = Figure(figsize=(6, 6 * image.shape[0] / image.shape[1]), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(image)
    draw_boxes(ax, boxes[: args.show], linewidth=0.8, alpha=0.7)
    ax.set_axis_off()
    ax.set_title(f"first {min(args.show, len(boxes))} of {len(boxes)} selective-search boxes")
    fig.savefig(path, dpi=120)
    print(f"{len(boxes)} proposals ({args.mode} mode) in {seconds:.2f} s; saved {path}")
    return 0


# checkpoints.torchvision.PUBLISHED's names, spelled out so that building the parser imports nothing
PUBLISHED_WEIGHTS = ["fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn"]


def _fetch_weights(args: argparse.Namespace) -> int:
    from .checkpoints.torchvision import WeightsDownloadError, fetch_weights

    try:
        path = fetch_weights(args.name, directory=args.dir, url=args.url)
    except (WeightsDownloadError, ValueError) as err:
        return _fail(str(err))
    print(path)
    return 0


def _book(args: argparse.Namespace) -> int:
    """Execute the notebooks and write the book and the slides (the ``book`` extra)."""
    import importlib.util
    import time
    from pathlib import Path

    missing = [
        m for m in ("nbconvert", "nbclient", "latex2mathml") if not importlib.util.find_spec(m)
    ]
    if missing:
        return _fail(f'the book needs {", ".join(missing)}: pip install -e ".[book]"')
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return _fail(f"--out {out}: exists and is not a folder")
    if not out.resolve().parent.is_dir():
        return _fail(f"--out {out}: the folder {out.resolve().parent} does not exist")
    from .book import build_book, find_notebooks

    try:
        find_notebooks(args.notebooks)  # every user error before the first notebook runs
    except ValueError as err:
        return _fail(str(err))
    start = time.perf_counter()
    report = build_book(out, args.notebooks)
    print(f"{len(report.pages)} pages in {time.perf_counter() - start:.0f} s; "
          f"open {out / 'index.html'}")  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m rcnn_from_scratch",
        description="The R-CNN family in pure NumPy: demo and tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="walk generated images through every stage, saving figures as PNG files"
    )
    demo.add_argument("--out", default="rcnn_demo_output", help="folder for the figures")
    demo.add_argument("--seed", type=_int_in(0), default=0, help="seed of the generated images")
    demo.set_defaults(run=_demo)

    train = commands.add_parser("train", help="train a model on the generated shapes and save it")
    train.add_argument(
        "model",
        choices=["rcnn", "fast-rcnn", "faster-rcnn", "mask-rcnn", "mask-rcnn-fpn"],
        help="which stage (mask-rcnn-fpn: the feature pyramid on multi-scale shapes)",
    )
    count = _int_in(2, MAX_IMAGES, " (two images a step; they are held in memory)")
    train.add_argument("--seed", type=_int_in(0), default=0,
                       help="seed of initialisation and sampling")  # fmt: skip
    train.add_argument("--out", required=True, help="weights file to write (.npz)")
    train.add_argument("--images", type=count, default=400, help="training images")
    train.add_argument("--steps", type=_int_in(1), default=None,
                       help="optimisation steps, the schedule's length (default: the shipped "
                            "weights' figure: " + ", ".join(f"{k} {v}" for k, v in STEPS.items())
                            + ")")  # fmt: skip
    train.add_argument("--eval-images", type=_int_in(1, MAX_IMAGES), default=200,
                       help="evaluation images")  # fmt: skip
    two = "Faster / Mask R-CNN and mask-rcnn-fpn only: "
    train.add_argument(
        "--minutes", type=_minutes, help=two + "stop when this wall-clock budget is spent"
    )
    train.add_argument("--resume", action="store_true",
                       help=two + "continue from OUT's checkpoint (OUT.checkpoint.npz)")  # fmt: skip
    train.add_argument("--evaluate-every", type=_int_in(0), default=0, metavar="STEPS",
                       help=two + "print box (and mask) AP@0.5 on 50 images every STEPS steps "
                                  "(0: never)")  # fmt: skip
    train.add_argument("--pooler", choices=["roi_pool", "roi_align"],
                       help=two + "the RoI operator of the heads (the ablation)")  # fmt: skip
    train.add_argument("--class-agnostic", action="store_true",
                       help="Mask R-CNN only: one mask for every class instead of one per class")  # fmt: skip
    train.add_argument("--arm", choices=["fpn", "single_level"],
                       help="mask-rcnn-fpn only: the pyramid (default) or the trunk's last map "
                            "alone (the backbone ablation's other arm)")  # fmt: skip
    train.set_defaults(run=_train)

    ablation = commands.add_parser(
        "ablation",
        help="Mask R-CNN trained twice, RoI pooling vs RoIAlign (the paper's Table 2c), or with "
        "--backbone one map vs a feature pyramid (Table 2a): the table beside the papers'",
    )
    ablation.add_argument("--out", required=True, help="folder for the two weights files")
    ablation.add_argument("--backbone", action="store_true",
                          help="the backbone ablation: train mask-rcnn-fpn's two arms "
                               "(single_level, then fpn) on the multi-scale shapes")  # fmt: skip
    ablation.add_argument("--seed", type=_int_in(0), default=0, help="seed of both runs")
    ablation.add_argument("--steps", type=_int_in(1), default=None,
                          help="optimisation steps of each run (default: "
                               f"{ABLATION_STEPS['roi']}; with --backbone "
                               f"{ABLATION_STEPS['backbone']})")  # fmt: skip
    ablation.add_argument("--minutes", type=_minutes, help="wall-clock budget of each run")
    ablation.add_argument("--images", type=count, default=400, help="training images")
    ablation.add_argument("--eval-images", type=_int_in(1, MAX_IMAGES), default=200,
                          help="evaluation images")  # fmt: skip
    ablation.set_defaults(run=_ablation)

    predict = commands.add_parser(
        "predict",
        help="boxes and masks of a Mask R-CNN (the shipped one, or torchvision's COCO "
        "model in NumPy) drawn over your image",
    )
    predict.add_argument("image", help="an image file (PNG, JPEG, ...)")
    predict.add_argument("--out", help="PNG to write (default: IMAGE_predictions.png)")
    predict.add_argument("--model", default="mask-rcnn", choices=["mask-rcnn", *REAL_MODELS],
                         help="mask-rcnn: the shipped shapes model (default); the ResNet-50-FPN "
                              "models are torchvision's COCO detectors, run in NumPy")  # fmt: skip
    predict.add_argument("--weights", help="weights file (default: the shipped one; for the "
                                           "ResNet-50-FPN models, the published file found in our "
                                           "or torch's cache folder)")  # fmt: skip
    predict.add_argument("--min-size", type=int,
                         help="ResNet-50-FPN only: the resized short side (torchvision: 800)")  # fmt: skip
    predict.add_argument("--score", "--score-threshold", dest="score_threshold", type=float,
                         default=0.5, help="hide lower scores (default 0.5)")  # fmt: skip
    predict.set_defaults(run=_predict)

    propose = commands.add_parser("propose", help="selective-search boxes drawn over your image")
    propose.add_argument("image", help="an image file (PNG, JPEG, ...)")
    propose.add_argument("--out", help="PNG to write (default: IMAGE_proposals.png)")
    propose.add_argument("--mode", choices=["fast", "quality"], default="fast",
                         help="selective search's strategy set")  # fmt: skip
    propose.add_argument("--show", type=_int_in(0), default=200, help="how many boxes to draw")
    propose.set_defaults(run=_propose)

    fetch = commands.add_parser(
        "fetch-weights", help="download torchvision's COCO weights file and check its hash"
    )
    fetch.add_argument("name", choices=PUBLISHED_WEIGHTS, help="which published model")
    fetch.add_argument("--dir", help="folder to put it in (default: this package's weights cache)")
    fetch.add_argument("--url", help="download from this mirror instead of download.pytorch.org")
    fetch.set_defaults(run=_fetch_weights)

    convert = commands.add_parser(
        "convert", help="torchvision's .pth weights to this package's pickle-free .npz"
    )
    convert.add_argument("file", help="a torchvision ResNet-50-FPN .pth (either torch.save format)")
    convert.add_argument("out", help=".npz file to write (the config is recorded in it)")
    convert.set_defaults(run=_convert)

    book = commands.add_parser(
        "book", help="execute the notebooks and write the lecture as a web book and as slides"
    )
    book.add_argument("--out", default="book", help="folder to write the site into (default: book)")
    book.add_argument("--notebooks", nargs="+", metavar="NAME",
                      help="build only the notebooks whose names start so (e.g. 00 03b)")  # fmt: skip
    book.set_defaults(run=_book)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
