"""Time ``roi_align`` and ``roi_pool`` against torchvision's CPU ops, and against our loop reference.

    python benchmarks/bench_roi.py

Cases (issue 5): (A) features (1, 256, 50, 50), 512 RoIs in an 800 x 800 image, scale 1/16, 7 x 7,
sampling ratio 2, aligned; (B) the same with 14 x 14 output; (C) features (1, 32, 16, 16), 64 RoIs in a
128 x 128 image, scale 1/8, 7 x 7. Ratios are ours / torchvision's (below 1: we are faster).

``roi_pool`` is timed three ways: ``roi_pool`` (values only, as torchvision's Python API returns),
``roi_pool_forward`` (values and the argmax a backward needs; torchvision's kernel always computes
both) and forward + backward against torchvision's autograd. ``--pool-only`` skips ``roi_align``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rcnn_from_scratch.roi.roi_align import (
    roi_align_backward,
    roi_align_forward,
    roi_align_reference,
)
from rcnn_from_scratch.roi.roi_pool import (
    roi_pool,
    roi_pool_backward,
    roi_pool_forward,
    roi_pool_reference,
)

CASES = {
    "A": dict(shape=(1, 256, 50, 50), rois=512, image=800, scale=1 / 16, out=7),
    "B": dict(shape=(1, 256, 50, 50), rois=512, image=800, scale=1 / 16, out=14),
    "C": dict(shape=(1, 32, 16, 16), rois=64, image=128, scale=1 / 8, out=7),
}


def random_rois(n: int, image: int, rng) -> np.ndarray:
    """Boxes of 1/16 to 1/2 of the image inside it, batch index 0."""
    wh = rng.uniform(image / 16, image / 2, (n, 2))
    xy = rng.uniform(0, 1, (n, 2)) * (image - wh)
    return np.hstack([np.zeros((n, 1)), xy, xy + wh]).astype(np.float32)


def median_time(fn, repeats: int) -> float:
    """Median of ``repeats`` calls after one warm-up; at least 51 for calls under 2 ms (case C),
    whose medians of 7 move by tens of percent here."""
    fn()
    start = time.perf_counter()
    fn()
    if time.perf_counter() - start < 2e-3:
        repeats = max(repeats, 51)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tv_backward(op, tx, tr, dout, *args, **kw):
    """torchvision's forward and backward of ``op`` (a fresh leaf each call, as a training step)."""
    import torch

    xg = tx.clone().requires_grad_(True)
    op(xg, tr, *args, **kw).backward(torch.from_numpy(dout))


def time_case(name, c, x, rois, rng, args, tvops):
    """Rows ``(case, operation, ours s, torchvision s or None, loop reference s or None)``."""
    torch = None if tvops is None else __import__("torch")
    tx, tr = (torch.from_numpy(x), torch.from_numpy(rois)) if torch is not None else (x, rois)

    def timed(op, ours, theirs, ref=None):
        t = median_time(theirs, args.repeats) if torch is not None else None
        return (name, op, median_time(ours, args.repeats), t, ref)

    rows = []
    if not args.pool_only:
        kw = dict(output_size=c["out"], spatial_scale=c["scale"], sampling_ratio=2, aligned=True)
        out, cache = roi_align_forward(x, rois, **kw)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        ref = median_time(lambda: roi_align_reference(x, rois, **kw), 1) if name == "C" else None
        if torch is not None:
            same = np.allclose(out, tvops.roi_align(tx, tr, **kw).numpy(), atol=1e-4)
            print(f"({name}) roi_align output equals torchvision's: {same}")
        rows.append(timed(
            "roi_align forward", lambda: roi_align_forward(x, rois, **kw),
            lambda: tvops.roi_align(tx, tr, **kw), ref,
        ))  # fmt: skip
        rows.append(timed(
            "roi_align forward+backward",
            lambda: roi_align_backward(dout, roi_align_forward(x, rois, **kw)[1]),
            lambda: tv_backward(tvops.roi_align, tx, tr, dout, **kw),
        ))  # fmt: skip
    P, scale = c["out"], c["scale"]
    out, cache = roi_pool_forward(x, rois, P, scale)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    ref = median_time(lambda: roi_pool_reference(x, rois, P, scale), 1) if name == "C" else None
    if torch is not None:
        same = np.array_equal(roi_pool(x, rois, P, scale), tvops.roi_pool(tx, tr, P, scale))
        print(f"({name}) roi_pool output equals torchvision's: {same}")
    rows.append(timed(
        "roi_pool forward", lambda: roi_pool(x, rois, P, scale),
        lambda: tvops.roi_pool(tx, tr, P, scale), ref,
    ))  # fmt: skip
    rows.append(timed(
        "roi_pool forward, argmax", lambda: roi_pool_forward(x, rois, P, scale),
        lambda: tvops.roi_pool(tx, tr, P, scale),
    ))  # fmt: skip
    rows.append(timed(
        "roi_pool forward+backward",
        lambda: roi_pool_backward(dout, roi_pool_forward(x, rois, P, scale)[1]),
        lambda: tv_backward(tvops.roi_pool, tx, tr, dout, P, scale),
    ))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cases", default="ABC", help="which cases, e.g. AC (default ABC)")
    parser.add_argument("--pool-only", action="store_true", help="time roi_pool only")
    args = parser.parse_args()
    try:
        import torch
        import torchvision.ops as tvops

        torch.set_num_threads(2)
    except ImportError:
        tvops = None
        print("torchvision not installed: our times only")
    rng = np.random.default_rng(0)
    rows = []
    for name, c in CASES.items():
        x = rng.standard_normal(c["shape"]).astype(np.float32)
        rois = random_rois(c["rois"], c["image"], rng)
        if name in args.cases:
            rows += time_case(name, c, x, rois, rng, args, tvops)
    head = f"{'ours ms':>9s} {'torchvision ms':>15s} {'ratio':>6s} {'loop ref / ours':>16s}"
    print(f"\n{'case':5s} {'operation':28s} {head}")
    for name, op, ours, theirs, ref in rows:
        t = f"{theirs * 1e3:15.2f}" if theirs else f"{'-':>15s}"
        r = f"{ours / theirs:6.2f}" if theirs else f"{'-':>6s}"
        s = f"{ref / ours:16.0f}" if ref else f"{'-':>16s}"
        print(f"{name:5s} {op:28s} {ours * 1e3:9.2f} {t} {r} {s}")


if __name__ == "__main__":
    main()
