"""`predict` (the shipped shapes model, or torchvision's COCO models) and `propose` (selective
search) on the user's image."""

from __future__ import annotations

import argparse

from ..datasets.shapes import CLASS_NAMES
from .checks import (
    PREDICT_MAX_SIDE,
    PROPOSE_MAX_SIDE,
    _check_output_file,
    _fail,
    _figure_suffixes,
    _read,
    _to_original,
)
from .realscale import REAL_MODELS, _predict_real


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

    from ..image_io import ImageReadError, check_min_side
    from ..models.mask_rcnn import MaskRCNN
    from ..nn import WeightsError
    from ..viz.shapes import draw_detections

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

    from ..proposals.selective_search import selective_search
    from ..viz.boxes import draw_boxes

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
