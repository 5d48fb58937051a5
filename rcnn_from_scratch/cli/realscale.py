"""torchvision's ResNet-50-FPN models from the command line: their weights found or fetched,
`predict --model`, `convert` and `fetch-weights`."""

from __future__ import annotations

import argparse

from .checks import _fail, _to_original

REAL_MODELS = ("maskrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn")


def _real_model(name: str, weights, **kwargs):
    """The ResNet-50-FPN model ``name`` from ``weights`` (or from a cache folder), or the one-line
    reason as a ``str``; every check runs before the long work."""
    from pathlib import Path

    from ..checkpoints.torchvision import (
        PUBLISHED,
        find_weights,
        torch_hub_checkpoints_dir,
        weights_dir,
    )
    from ..models import resnet_fpn

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
    from ..viz.pyramid import plot_full_scale_detections

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

    from ..checkpoints.torchvision import read_torch_checkpoint
    from ..models.resnet_fpn import FasterRCNNResNet50FPN, MaskRCNNResNet50FPN

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


# checkpoints.torchvision.PUBLISHED's names, spelled out so that building the parser imports nothing
PUBLISHED_WEIGHTS = ["fasterrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn"]


def _fetch_weights(args: argparse.Namespace) -> int:
    from ..checkpoints.torchvision import WeightsDownloadError, fetch_weights

    try:
        path = fetch_weights(args.name, directory=args.dir, url=args.url)
    except (WeightsDownloadError, ValueError) as err:
        return _fail(str(err))
    print(path)
    return 0
