"""Command line: ``python -m rcnn_from_scratch COMMAND``; each command has ``--help``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.out, seed=args.seed)
    return 0


def _train(args: argparse.Namespace) -> int:
    import json

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
    train.add_argument("model", choices=["rcnn", "fast-rcnn"], help="which stage to train")
    train.add_argument("--seed", type=int, default=0, help="seed of initialisation and sampling")
    train.add_argument("--out", required=True, help="weights file to write (.npz)")
    train.add_argument("--images", type=int, default=400, help="training images")
    train.add_argument("--steps", type=int, default=1500, help="optimisation steps")
    train.add_argument("--eval-images", type=int, default=200, help="evaluation images")
    train.set_defaults(run=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
