"""Time and measure the memory of the NumPy ResNet-50-FPN detectors against torchvision's (issue 13).

    ../parity/bin/python benchmarks/bench_realscale.py [--weights PATH] [--min-size 800 512]
        [--models maskrcnn_resnet50_fpn fasterrcnn_resnet50_fpn] [--repeats 2] [--threads 2]

Both sides run the same checkpoint on the same three scikit-image photographs (astronaut 512 x 512,
coffee 400 x 600, chelsea 300 x 451), one image at a time, in eval mode with torchvision's default
thresholds. The checkpoint is ``--weights`` (a torchvision ``.pth``, e.g. the published COCO file, for
the model it belongs to) or, without it, a random one drawn as in
``tests/models/test_resnet_fpn_parity.py`` (He-scaled weights, batch-norm statistics near 1, a
classifier scaled so that every image keeps the full 100 detections: the worst case of the mask
branch). torchvision's model is built as its builder builds it for a weights file
(``FrozenBatchNorm2d``, ``overwrite_eps(model, 0.0)``), ours by ``maskrcnn_resnet50_fpn(weights=path)``.

Each side runs in its own subprocess, so its peak resident memory (``VmHWM``, the high-water mark of
the resident set) is its own: reported after loading the model and after the run. Both get
``--threads`` threads: ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` set before
NumPy or torch is imported, threadpoolctl where installed, ``torch.set_num_threads``.

Seconds per image: the median over photographs x ``--repeats`` calls, after one untimed call. Stages:
ours from ``model.timings`` (``transform`` is the total minus the timed stages: image conversion,
normalisation, resize, padding); torchvision's by calling its submodules in ``GeneralizedRCNN.forward``'s
order under ``torch.no_grad()``: ``transform``, ``backbone``, ``rpn``, ``roi_heads`` (box head,
detections, mask head), ``transform.postprocess`` (boxes to the original image, mask pasting). Ratios
are ours / torchvision's (below 1: we are faster or smaller).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHOTOS = ("astronaut", "coffee", "chelsea")
MODELS = ("maskrcnn_resnet50_fpn", "fasterrcnn_resnet50_fpn")
STAGES = ("transform", "backbone", "rpn", "roi_heads", "postprocess")


def vm_hwm_mib() -> float:
    """The process's peak resident set so far, in MiB (``/proc/self/status`` or ``getrusage``)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def limit_blas_threads(threads: int) -> str:
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        value = os.environ.get("OPENBLAS_NUM_THREADS")
        return f"OPENBLAS_NUM_THREADS={value} (threadpoolctl not installed to confirm)"
    threadpool_limits(threads)
    blas = [f"{i['internal_api']} {i['version']}, {i['num_threads']} threads"
            for i in threadpool_info() if i["user_api"] == "blas"]  # fmt: skip
    return "; ".join(blas)


def photographs():
    import skimage.data

    return [getattr(skimage.data, name)() for name in PHOTOS]


# --- the random checkpoint -------------------------------------------------------------------------


def random_checkpoint(model_name: str, path: Path, seed: int = 0) -> None:
    """A torchvision state dict drawn from ``seed`` (as the parity test draws it), saved to ``path``."""
    import torch
    from torchvision.models import detection

    model = getattr(detection, model_name)(weights=None, weights_backbone=None).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(n, generator=g))
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
                w = m.weight
                fan_in = w.shape[0] if isinstance(m, torch.nn.ConvTranspose2d) else w[0].numel()
                w.copy_(torch.randn(w.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.05 * torch.randn(m.bias.shape, generator=g))
        model.rpn.head.cls_logits.weight.mul_(0.3)
        model.rpn.head.bbox_pred.weight.mul_(0.03)
        model.rpn.head.bbox_pred.bias.mul_(0.1)
        model.roi_heads.box_predictor.cls_score.weight.mul_(0.2)
        model.roi_heads.box_predictor.bbox_pred.weight.mul_(0.1)
    torch.save(model.state_dict(), path)


# --- one side, in its own process ----------------------------------------------------------------


def run_ours(model_name, weights, min_size, repeats):
    import numpy as np

    from rcnn_from_scratch.models import resnet_fpn

    model = getattr(resnet_fpn, model_name)(weights=weights, min_size=min_size)
    loaded = vm_hwm_mib()
    images = photographs()
    model.predict(images[0])  # warm-up
    totals, stages, detections = [], {s: [] for s in STAGES}, []
    for image in images:
        for _ in range(repeats):
            out = model.predict(image)
            t = dict(model.timings)
            timed = {
                "backbone": t["backbone"],
                "rpn": t["rpn"],
                "roi_heads": t["box_head"] + t.get("mask_head", 0.0),
                "postprocess": t.get("paste", 0.0),
            }
            timed["transform"] = t["total"] - sum(timed.values())
            for s in STAGES:
                stages[s].append(timed[s])
            totals.append(t["total"])
        detections.append(int(len(out["scores"])))
    return totals, stages, detections, loaded, f"NumPy {np.__version__}"


def run_torchvision(model_name, weights, min_size, repeats, threads):
    import torch
    from torchvision.models import detection, resnet50
    from torchvision.models.detection._utils import overwrite_eps
    from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
    from torchvision.ops.misc import FrozenBatchNorm2d

    torch.set_num_threads(threads)
    # the builder's path for a weights file: frozen batch norm, 3 trainable layers, eps 0.0
    body = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    backbone = _resnet_fpn_extractor(body, 3)
    cls = detection.MaskRCNN if model_name.startswith("mask") else detection.FasterRCNN
    model = cls(backbone, num_classes=91, min_size=min_size)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    overwrite_eps(model, 0.0)
    model.eval()
    loaded = vm_hwm_mib()
    tensors = [torch.from_numpy(im).permute(2, 0, 1).float() / 255 for im in photographs()]

    def forward(x):
        times = {}
        with torch.no_grad():
            t = time.perf_counter()
            images, _ = model.transform([x])
            times["transform"] = time.perf_counter() - t
            t = time.perf_counter()
            features = model.backbone(images.tensors)
            times["backbone"] = time.perf_counter() - t
            t = time.perf_counter()
            proposals, _ = model.rpn(images, features)
            times["rpn"] = time.perf_counter() - t
            t = time.perf_counter()
            det, _ = model.roi_heads(features, proposals, images.image_sizes)
            times["roi_heads"] = time.perf_counter() - t
            t = time.perf_counter()
            det = model.transform.postprocess(det, images.image_sizes, [tuple(x.shape[1:])])
            times["postprocess"] = time.perf_counter() - t
        return det[0], times

    forward(tensors[0])  # warm-up
    totals, stages, detections = [], {s: [] for s in STAGES}, []
    for x in tensors:
        for _ in range(repeats):
            out, times = forward(x)
            for s in STAGES:
                stages[s].append(times[s])
            totals.append(sum(times.values()))
        detections.append(int(len(out["scores"])))
    return totals, stages, detections, loaded, f"torch {torch.__version__}"


def worker(args) -> None:
    blas = limit_blas_threads(args.threads)
    if args.worker == "ours":
        result = run_ours(args.model, args.weights, args.min_size[0], args.repeats)
    else:
        result = run_torchvision(args.model, args.weights, args.min_size[0], args.repeats,
                                 args.threads)  # fmt: skip
    totals, stages, detections, loaded, version = result
    print(json.dumps({
        "seconds": statistics.median(totals), "spread": [min(totals), max(totals)],
        "stages": {s: statistics.median(v) for s, v in stages.items()},
        "detections": detections, "loaded_mib": loaded, "peak_mib": vm_hwm_mib(),
        "library": version, "blas": blas,
    }))  # fmt: skip


def measure(side, model_name, weights, min_size, args) -> dict:
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    cmd = [sys.executable, __file__, "--worker", side, "--model", model_name,
           "--weights", str(weights), "--min-size", str(min_size),
           "--repeats", str(args.repeats), "--threads", str(args.threads)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{side} {model_name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, help="a torchvision .pth for the (single) model")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--min-size", type=int, nargs="+", default=[800, 512])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", choices=("ours", "torchvision"), help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.weights is not None and len(args.models) != 1:
        parser.error("--weights holds one model: name it with --models")
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    print(f"{os.cpu_count()} CPUs, {args.threads} threads per side, load average {load}; "
          f"{len(PHOTOS)} photographs x {args.repeats} repeats; "
          f"weights: {args.weights or 'random (seed 0)'}")  # fmt: skip
    rows, stage_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for model_name in args.models:
            weights = args.weights
            if weights is None:
                weights = Path(tmp) / f"{model_name}.pth"
                random_checkpoint(model_name, weights)
            for min_size in args.min_size:
                ours = measure("ours", model_name, weights, min_size, args)
                theirs = measure("torchvision", model_name, weights, min_size, args)
                if ours["detections"] != theirs["detections"]:
                    print(f"note: detections per photo differ: ours {ours['detections']}, "
                          f"torchvision {theirs['detections']}")  # fmt: skip
                rows.append(
                    f"| {model_name} | {min_size} | {ours['seconds']:.2f} | "
                    f"{theirs['seconds']:.2f} | {ratio(ours['seconds'], theirs['seconds'])} | "
                    f"{ours['peak_mib']:.0f} ({ours['loaded_mib']:.0f}) | "
                    f"{theirs['peak_mib']:.0f} ({theirs['loaded_mib']:.0f}) | "
                    f"{ratio(ours['peak_mib'], theirs['peak_mib'])} |"
                )
                stage_rows.append(
                    f"| {model_name} | {min_size} | "
                    + " | ".join(
                        f"{ours['stages'][s]:.2f} / {theirs['stages'][s]:.2f}" for s in STAGES
                    )  # fmt: skip
                    + " |"
                )
                print(f"{model_name} {min_size}: ours {ours['seconds']:.2f} s "
                      f"(spread {ours['spread'][0]:.2f}-{ours['spread'][1]:.2f}), torchvision "
                      f"{theirs['seconds']:.2f} s (spread {theirs['spread'][0]:.2f}-"
                      f"{theirs['spread'][1]:.2f}); detections {ours['detections']}; "
                      f"{ours['library']}, {theirs['library']}; BLAS {ours['blas']}",
                      flush=True)  # fmt: skip
    print()
    print(
        "| model | min size | ours s/image | torchvision s/image | ratio | ours peak MiB "
        "(after load) | torchvision peak MiB (after load) | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print()
    print("Seconds per stage, ours / torchvision (medians):")
    print()
    print("| model | min size | " + " | ".join(STAGES) + " |")
    print("|---|---|" + "---|" * len(STAGES))
    print("\n".join(stage_rows))


if __name__ == "__main__":
    main()
