"""Time ``nms`` and ``box_iou`` against torchvision's CPU ops in the same run.

    python benchmarks/bench_boxes.py            # our ops alone, or beside torchvision where installed

Boxes are clustered around a few centres, as proposals around objects are, so NMS has real work to do.
Each figure is the median of several repeats; ratios are ours / torchvision's (below 1 is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rcnn_from_scratch import box_iou, nms, nms_reference


def clustered_boxes(n: int, centres: int = 8, seed: int = 0):
    """``n`` float32 boxes in an 800 x 800 frame, jittered around ``centres`` object centres."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(100, 700, (centres, 2))[rng.integers(0, centres, n)]
    centre = centre + rng.normal(0, 12, (n, 2))
    size = rng.uniform(40, 160, (centres, 2))[rng.integers(0, centres, n)] * rng.uniform(
        0.8, 1.25, (n, 2)
    )
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).astype(np.float32)
    return boxes, rng.random(n).astype(np.float32)


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    try:
        import torch
        import torchvision.ops as tvops

        torch.set_num_threads(2)
    except ImportError:
        torch = None
        print("torchvision not installed: our times only")

    rows = []
    for n in (2000, 12000):
        boxes, scores = clustered_boxes(n)
        ours = median_time(lambda b=boxes, s=scores: nms(b, s, 0.7), args.repeats)
        kept = len(nms(boxes, scores, 0.7))
        ref = None
        if n == 2000:
            ref = median_time(lambda b=boxes, s=scores: nms_reference(b, s, 0.7), 1)
        theirs = None
        if torch is not None:
            tb, ts = torch.from_numpy(boxes), torch.from_numpy(scores)
            theirs = median_time(lambda tb=tb, ts=ts: tvops.nms(tb, ts, 0.7), args.repeats)
            same = np.array_equal(nms(boxes, scores, 0.7), tvops.nms(tb, ts, 0.7).numpy())
            print(f"nms {n}: same indices as torchvision: {same}")
        rows.append((f"nms, {n} boxes ({kept} kept), IoU 0.7", ours, theirs, ref))

    boxes, _ = clustered_boxes(2000, seed=1)
    ours = median_time(lambda: box_iou(boxes, boxes), args.repeats)
    theirs = None
    if torch is not None:
        tb = torch.from_numpy(boxes)
        theirs = median_time(lambda: tvops.box_iou(tb, tb), args.repeats)
    rows.append(("box_iou, 2000 x 2000", ours, theirs, None))

    print(
        f"\n{'operation':40s} {'ours ms':>9s} {'torchvision ms':>15s} {'ratio':>7s} {'loop ref / ours':>16s}"
    )
    for name, ours, theirs, ref in rows:
        t = f"{theirs * 1e3:15.2f}" if theirs else f"{'-':>15s}"
        r = f"{ours / theirs:7.2f}" if theirs else f"{'-':>7s}"
        s = f"{ref / ours:16.0f}" if ref else f"{'-':>16s}"
        print(f"{name:40s} {ours * 1e3:9.2f} {t} {r} {s}")


if __name__ == "__main__":
    main()
