"""Command line: ``python -m rcnn_from_scratch COMMAND``; each command has ``--help``.

One module per kind of command: ``checks`` (what every command checks first), ``train``
(``train``, ``ablation``), ``predict`` (``predict``, ``propose``), ``realscale`` (torchvision's
models: ``convert``, ``fetch-weights``); the parser, ``demo`` and ``book`` here."""

from __future__ import annotations

import argparse

from .checks import (
    MAX_IMAGES,
    PREDICT_MAX_SIDE,
    PROPOSE_MAX_SIDE,
    _fail,
    _int_in,
    _minutes,
    _Parser,
)
from .predict import _predict, _propose
from .realscale import PUBLISHED_WEIGHTS, REAL_MODELS, _convert, _fetch_weights
from .train import ABLATION_STEPS, STEPS, _ablation, _train

__all__ = ["main", "build_parser"]


def _demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(args.out, seed=args.seed)
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
    from ..book import build_book, find_notebooks

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
