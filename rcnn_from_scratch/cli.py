"""Command line: ``python -m rcnn_from_scratch COMMAND``; each command has ``--help``."""

from __future__ import annotations

import argparse
import sys

from .datasets.shapes import CLASS_NAMES

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, seed=args.seed)
    return 0


# steps of the shipped weights' training commands (data/README.md)
STEPS = {"rcnn": 1000, "fast-rcnn": 2000, "faster-rcnn": 6000, "mask-rcnn": 4500,
         "mask-rcnn-fpn": 500}  # fmt: skip


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

    if args.model in ("faster-rcnn", "mask-rcnn"):
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


def _train_pyramid(args: argparse.Namespace) -> int:
    """The small Mask R-CNN over a feature pyramid, or its single-level arm, on multi-scale shapes."""
    import math
    from pathlib import Path

    from .training.feature_pyramid import build_mask_rcnn_fpn, train_and_save_pyramid

    if args.pooler or args.class_agnostic:
        return _fail("--pooler and --class-agnostic are options of mask-rcnn only")
    out = Path(args.out)
    if out.is_dir() or not out.resolve().parent.is_dir():
        return _fail(f"--out {out}: name a file in an existing folder")
    if args.images < 2 or args.steps < 1 or args.eval_images < 1:
        return _fail("--images must be at least 2, --steps and --eval-images at least 1")
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        return _fail(f"--minutes must be a positive number; got {args.minutes}")
    model = build_mask_rcnn_fpn(args.arm or "fpn", seed=args.seed)
    command = " ".join(["python -m rcnn_from_scratch", *sys.argv[1:]])
    train_and_save_pyramid(model, out, command, eval_images=args.eval_images,
                           num_images=args.images, steps=args.steps, seed=args.seed,
                           minutes=args.minutes, resume=args.resume,
                           evaluate_every=args.evaluate_every)  # fmt: skip
    return 0


def _train_two_stage(args: argparse.Namespace) -> int:
    """Faster and Mask R-CNN: time budget, checkpoints, resume, periodic evaluation."""
    from .training.faster_rcnn import build_detector, train_and_save

    model = build_detector(args.model, args.pooler, seed=args.seed,
                           class_agnostic=args.class_agnostic)  # fmt: skip
    command = " ".join(["python -m rcnn_from_scratch", *sys.argv[1:]])
    train_and_save(model, args.out, command, eval_images=args.eval_images, num_images=args.images,
                   steps=args.steps, seed=args.seed, minutes=args.minutes, resume=args.resume,
                   evaluate_every=args.evaluate_every)  # fmt: skip
    return 0


def _ablation(args: argparse.Namespace) -> int:
    from .training.ablation import ablation_table, run_ablation

    paths = run_ablation(args.out, steps=args.steps, seed=args.seed, num_images=args.images,
                         eval_images=args.eval_images, minutes=args.minutes)  # fmt: skip
    print(ablation_table(paths["roi_pool"], paths["roi_align"]))
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _read(path: str):
    """The image at ``path``, or ``None`` after printing the one-line reason."""
    from .image_io import ImageReadError, read_image

    try:
        return read_image(path)
    except ImageReadError as err:
        _fail(str(err))
        return None


def _predict(args: argparse.Namespace) -> int:
    from pathlib import Path

    image = _read(args.image)
    if image is None:
        return 2
    args.out_path = Path(args.out or Path(args.image).stem + "_predictions.png")
    if not args.out_path.parent.is_dir():
        return _fail(f"--out {args.out_path}: the folder {args.out_path.parent} does not exist")
    if not 0.0 <= args.score_threshold <= 1.0:
        return _fail(f"--score must lie in [0, 1]; got {args.score_threshold}")
    if args.model in REAL_MODELS:
        return _predict_real(args, image)
    if args.min_size is not None:
        return _fail("--min-size is an option of the ResNet-50-FPN models only")
    from matplotlib.figure import Figure

    from .models.mask_rcnn import MaskRCNN
    from .nn import WeightsError
    from .viz.shapes import draw_detections

    try:
        model = MaskRCNN.pretrained(args.weights)
    except (WeightsError, ValueError) as err:
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
    for box, label, score in zip(out["boxes"], out["labels"], out["scores"], strict=True):
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


def _predict_real(args: argparse.Namespace, image) -> int:
    from .viz.pyramid import plot_full_scale_detections

    kwargs = {}
    if args.min_size is not None:
        if not 32 <= args.min_size <= 1333:
            return _fail(f"--min-size must lie in [32, 1333]; got {args.min_size}")
        # torchvision's ratio of the two limits (800 / 1333), kept for other short sides
        kwargs.update(
            min_size=args.min_size, max_size=max(args.min_size, round(args.min_size * 1333 / 800))
        )
    model = _real_model(args.model, args.weights, **kwargs)
    if isinstance(model, str):
        return _fail(model)
    out = model.predict(image)
    keep = out["scores"] >= args.score_threshold
    out = {k: v[keep] for k, v in out.items()}
    fig = plot_full_scale_detections(image, out, model.categories, args.score_threshold)
    fig.savefig(args.out_path, dpi=120)
    for box, label, score in zip(out["boxes"], out["labels"], out["scores"], strict=True):
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

    image = _read(args.image)
    if image is None:
        return 2
    from matplotlib.figure import Figure

    from .proposals.selective_search import selective_search
    from .viz.boxes import draw_boxes

    start = time.perf_counter()
    boxes = selective_search(image, mode=args.mode)
    seconds = time.perf_counter() - start
    path = Path(args.out or Path(args.image).stem + "_proposals.png")
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
    parser = argparse.ArgumentParser(
        prog="python -m rcnn_from_scratch",
        description="The R-CNN family in pure NumPy: demo and tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="walk generated images through every stage, saving figures as PNG files"
    )
    demo.add_argument("--out", default="rcnn_demo_output", help="folder for the figures")
    demo.add_argument("--seed", type=int, default=0, help="seed of the generated images")
    demo.set_defaults(run=_demo)

    train = commands.add_parser("train", help="train a model on the generated shapes and save it")
    train.add_argument(
        "model",
        choices=["rcnn", "fast-rcnn", "faster-rcnn", "mask-rcnn", "mask-rcnn-fpn"],
        help="which stage (mask-rcnn-fpn: the feature pyramid on multi-scale shapes)",
    )
    train.add_argument("--seed", type=int, default=0, help="seed of initialisation and sampling")
    train.add_argument("--out", required=True, help="weights file to write (.npz)")
    train.add_argument("--images", type=int, default=400, help="training images")
    train.add_argument("--steps", type=int, default=None,
                       help="optimisation steps, the schedule's length (default: the shipped "
                            "weights' figure: " + ", ".join(f"{k} {v}" for k, v in STEPS.items())
                            + ")")  # fmt: skip
    train.add_argument("--eval-images", type=int, default=200, help="evaluation images")
    two = "Faster / Mask R-CNN only: "
    train.add_argument(
        "--minutes", type=float, help=two + "stop when this wall-clock budget is spent"
    )
    train.add_argument("--resume", action="store_true",
                       help=two + "continue from OUT's checkpoint (OUT.checkpoint.npz)")  # fmt: skip
    train.add_argument("--evaluate-every", type=int, default=0, metavar="STEPS",
                       help=two + "print box (and mask) AP@0.5 on 50 images every STEPS steps")  # fmt: skip
    train.add_argument("--pooler", choices=["roi_pool", "roi_align"],
                       help=two + "the RoI operator of the heads (the ablation)")  # fmt: skip
    train.add_argument("--class-agnostic", action="store_true",
                       help="Mask R-CNN only: one mask for every class instead of one per class")  # fmt: skip
    train.add_argument("--arm", choices=["fpn", "single_level"],
                       help="mask-rcnn-fpn only: the pyramid (default) or the trunk's last map "
                            "alone (the backbone ablation's other arm)")  # fmt: skip
    train.set_defaults(run=_train)

    ablation = commands.add_parser(
        "ablation", help="Mask R-CNN trained twice, RoI pooling vs RoIAlign: the paper's table"
    )
    ablation.add_argument("--out", required=True, help="folder for the two weights files")
    ablation.add_argument("--seed", type=int, default=0, help="seed of both runs")
    ablation.add_argument("--steps", type=int, default=3000, help="optimisation steps of each run")
    ablation.add_argument("--minutes", type=float, help="wall-clock budget of each run")
    ablation.add_argument("--images", type=int, default=400, help="training images")
    ablation.add_argument("--eval-images", type=int, default=200, help="evaluation images")
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
    propose.add_argument("--show", type=int, default=200, help="how many boxes to draw")
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
