"""Time ``roi_align`` and ``roi_pool`` against torchvision's CPU ops, and against our loop reference.

    python benchmarks/bench_roi.py

Cases (issue 5): (A) features (1, 256, 50, 50), 512 RoIs in an 800 x 800 image, scale 1/16, 7 x 7,
sampling ratio 2, aligned; (B) the same with 14 x 14 output; (C) features (1, 32, 16, 16), 64 RoIs in a
128 x 128 image, scale 1/8, 7 x 7. Ratios are ours / torchvision's (below 1: we are faster).
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
from rcnn_from_scratch.roi.roi_pool import roi_pool, roi_pool_reference

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
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    try:
        import torch
        import torchvision.ops as tvops

        torch.set_num_threads(2)
    except ImportError:
        torch = None
        print("torchvision not installed: our times only")
    rng = np.random.default_rng(0)
    rows = []
    for name, c in CASES.items():
        x = rng.standard_normal(c["shape"]).astype(np.float32)
        rois = random_rois(c["rois"], c["image"], rng)
        kw = dict(output_size=c["out"], spatial_scale=c["scale"], sampling_ratio=2, aligned=True)
        out, cache = roi_align_forward(x, rois, **kw)
        dout = rng.standard_normal(out.shape).astype(np.float32)
        fwd = median_time(
            lambda x=x, rois=rois, kw=kw: roi_align_forward(x, rois, **kw), args.repeats
        )
        both = median_time(
            lambda x=x, rois=rois, kw=kw, d=dout: roi_align_backward(
                d, roi_align_forward(x, rois, **kw)[1]
            ),
            args.repeats,
        )
        pool = median_time(
            lambda x=x, rois=rois, c=c: roi_pool(x, rois, c["out"], c["scale"]), args.repeats
        )
        ref = ref_pool = None
        if name == "C":
            ref = median_time(lambda x=x, rois=rois, kw=kw: roi_align_reference(x, rois, **kw), 1)
            ref_pool = median_time(
                lambda x=x, rois=rois, c=c: roi_pool_reference(x, rois, c["out"], c["scale"]), 1
            )
        t_fwd = t_both = t_pool = None
        if torch is not None:
            tx, tr = torch.from_numpy(x), torch.from_numpy(rois)
            t_fwd = median_time(
                lambda tx=tx, tr=tr, kw=kw: tvops.roi_align(tx, tr, **kw), args.repeats
            )

            tdout = torch.from_numpy(dout)

            def tv_both(tx=tx, tr=tr, kw=kw, d=tdout):
                xg = tx.clone().requires_grad_(True)
                tvops.roi_align(xg, tr, **kw).backward(d)

            t_both = median_time(tv_both, args.repeats)
            t_pool = median_time(
                lambda tx=tx, tr=tr, c=c: tvops.roi_pool(tx, tr, c["out"], c["scale"]), args.repeats
            )
            same = np.allclose(out, tvops.roi_align(tx, tr, **kw).numpy(), atol=1e-4)
            print(f"({name}) roi_align output equals torchvision's: {same}")
        rows.append((name, "roi_align forward", fwd, t_fwd, ref))
        rows.append((name, "roi_align forward+backward", both, t_both, None))
        rows.append((name, "roi_pool forward", pool, t_pool, ref_pool))
    head = f"{'ours ms':>9s} {'torchvision ms':>15s} {'ratio':>6s} {'loop ref / ours':>16s}"
    print(f"\n{'case':5s} {'operation':28s} {head}")
    for name, op, ours, theirs, ref in rows:
        t = f"{theirs * 1e3:15.2f}" if theirs else f"{'-':>15s}"
        r = f"{ours / theirs:6.2f}" if theirs else f"{'-':>6s}"
        s = f"{ref / ours:16.0f}" if ref else f"{'-':>16s}"
        print(f"{name:5s} {op:28s} {ours * 1e3:9.2f} {t} {r} {s}")


if __name__ == "__main__":
    main()
