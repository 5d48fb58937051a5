"""Selective search: our fast mode against OpenCV's ximgproc (fast mode) on the same 500 px images.

    python benchmarks/bench_selective_search.py              # run in ../parity for OpenCV
    python benchmarks/bench_selective_search.py --quality    # also our quality mode (slow)
    python benchmarks/bench_selective_search.py --phases     # where our time goes, one thread

Images: scikit-image's bundled photographs with the hand-labelled boxes of
tests/proposals/labelled_boxes.json (long side resized to 500 px). Quality: recall at IoU 0.5 and 0.7
and MABO (mean over all labelled objects of the best IoU) of the first 100 / 500 / 1000 / 2000 boxes;
then recall at 0.5 of the first 2000 boxes on shapes evaluation images. Time: the median of a few
runs per image, summed over the images; the ratio is ours / OpenCV's (below 1 is faster), for our
default (a thread per core; the boxes are the same with any number) and for one thread.
OpenCV's fast mode differs from the paper's in its k (150, 300 instead of 50, 100) and its texture
(Scharr derivatives); ours follows the paper.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from skimage import data, transform

from rcnn_from_scratch.datasets.shapes import ShapesDataset
from rcnn_from_scratch.proposals.region_features import (
    convert_colour,
    pixel_bins,
    region_adjacency,
    region_features,
)
from rcnn_from_scratch.proposals.selective_search import (
    MODES,
    SIMILARITIES,
    best_overlaps,
    hierarchical_grouping,
    initial_segmentation,
    selective_search,
)

LABELS = Path(__file__).resolve().parents[1] / "tests" / "proposals" / "labelled_boxes.json"
TOPS = (100, 500, 1000, 2000)


def resize_long_side(image: np.ndarray, long_side: int = 500) -> np.ndarray:
    s = long_side / max(image.shape[:2])
    shape = (round(image.shape[0] * s), round(image.shape[1] * s))
    return (transform.resize(image, shape, anti_aliasing=True) * 255).round().astype(np.uint8)


def labelled_images():
    """``[(name, image (H, W, 3) uint8, gt boxes (G, 4))]`` in the 500-px frame."""
    out = []
    for name, objects in json.loads(LABELS.read_text())["images"].items():
        image = getattr(data, name)()
        image = image[0] if isinstance(image, tuple) else image  # the stereo pair's left image
        image = resize_long_side(image)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        out.append((name, image, np.array(list(objects.values()), np.float64)))
    return out


def opencv_fast(image: np.ndarray) -> np.ndarray:
    import cv2

    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(np.ascontiguousarray(image[:, :, ::-1]))  # OpenCV wants BGR
    ss.switchToSelectiveSearchFast()
    xywh = ss.process().astype(np.float64)
    return np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)  # x1, y1, x2, y2


def timed(fn, image, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(image)
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def quality(proposals: list[np.ndarray], gts: list[np.ndarray]) -> dict:
    """Recall at 0.5 / 0.7 and MABO over all objects of all images, per number of boxes kept."""
    rows = {}
    for top in TOPS:
        best = np.concatenate(
            [best_overlaps(p[:top], g) for p, g in zip(proposals, gts, strict=True)]
        )
        rows[top] = ((best >= 0.5).mean(), (best >= 0.7).mean(), best.mean())
    return rows


def report(name: str, props, gts, seconds: float, n_images: int):
    rows = quality(props, gts)
    mean_n = np.mean([len(p) for p in props])
    print(
        f"\n{name}: {seconds / n_images:.2f} s per image, {mean_n:.0f} boxes per image on average"
    )
    print("   boxes   recall@0.5  recall@0.7   MABO")
    for top, (r5, r7, mabo) in rows.items():
        print(f"   {top:5d}   {r5:10.3f}  {r7:10.3f}  {mabo:6.3f}")
    return rows


def phases(images, repeats: int) -> None:
    """Seconds per image of each step of fast mode, run one after the other in one thread."""
    fast = MODES["fast"]
    spent: dict[str, float] = {}

    def step(name, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - start
        return out

    for _ in range(repeats):
        for _, image, _ in images:
            for space in fast["colour_spaces"]:
                channels = step("colour conversion", convert_colour, image, space)
                bins = step("pixel bins (colour, texture)", pixel_bins, channels)
                for k in fast["ks"]:
                    labels = step("felzenszwalb (scikit-image)", initial_segmentation, channels, k)
                    features = step("region features", region_features, labels, *bins)
                    adjacency = step("region adjacency", region_adjacency, labels)
                    for sim in fast["similarities"]:
                        step("hierarchical grouping", hierarchical_grouping, features, adjacency,
                             SIMILARITIES[sim])  # fmt: skip
    total = sum(spent.values())
    n = repeats * len(images)
    print(f"\nwhere the time goes (fast mode, one thread, {total / n * 1000:.0f} ms per image):")
    for name, seconds in spent.items():
        print(f"   {name:30s} {seconds / n * 1000:7.1f} ms   {seconds / total:6.1%}")


def shapes_recall(fn, n_images: int) -> float:
    dataset = ShapesDataset("eval", size=n_images)
    best = []
    for i in range(n_images):
        image, target = dataset[i]
        best.append(best_overlaps(fn(image)[:2000], target["boxes"]))
    return float((np.concatenate(best) >= 0.5).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", type=int, default=50, help="shapes images for the recall check")
    parser.add_argument("--quality", action="store_true", help="also time our quality mode (slow)")
    parser.add_argument("--phases", action="store_true", help="only: where our time goes")
    args = parser.parse_args()
    try:
        import cv2

        have_cv = hasattr(cv2, "ximgproc")
        cv_version = cv2.__version__
    except ImportError:
        have_cv, cv_version = False, None
    images = labelled_images()
    gts = [g for _, _, g in images]
    n_obj = sum(len(g) for g in gts)
    print(f"{len(images)} images ({', '.join(n for n, _, _ in images)}), {n_obj} labelled objects")
    if args.phases:
        phases(images, args.repeats)
        return

    ours = [timed(lambda im: selective_search(im, "fast"), im, args.repeats) for _, im, _ in images]
    t_ours = sum(t for _, t in ours)
    report("ours, fast mode", [b for b, _ in ours], gts, t_ours, len(images))
    one = [
        timed(lambda im: selective_search(im, "fast", threads=1), im, args.repeats)
        for _, im, _ in images
    ]
    t_one = sum(t for _, t in one)
    for (a, _), (b, _) in zip(ours, one, strict=True):
        np.testing.assert_array_equal(a, b)  # threads change the time only
    print(f"ours, fast mode, one thread: {t_one / len(images):.2f} s per image (the same boxes)")
    if have_cv:
        theirs = [timed(opencv_fast, im, args.repeats) for _, im, _ in images]
        t_cv = sum(t for _, t in theirs)
        report(
            f"OpenCV {cv_version} ximgproc, fast mode ({cv2.getNumThreads()} threads allowed)",
            [b for b, _ in theirs],
            gts,
            t_cv,
            len(images),
        )
        print(f"\ntime ratio ours / OpenCV: {t_ours / t_cv:.2f} (one thread: {t_one / t_cv:.2f})")
    else:
        print("\nOpenCV ximgproc: not installed (run in an environment with opencv-contrib)")
    if args.quality:
        q = [timed(lambda im: selective_search(im, "quality"), im, 1) for _, im, _ in images]
        report("ours, quality mode", [b for b, _ in q], gts, sum(t for _, t in q), len(images))
    s = [timed(lambda im: selective_search(im, "single"), im, 1) for _, im, _ in images]
    report("ours, single strategy", [b for b, _ in s], gts, sum(t for _, t in s), len(images))

    print(f"\nshapes ({args.shapes} eval images), recall@0.5 of the first 2000 boxes:")
    print(
        f"   ours, fast mode: {shapes_recall(lambda im: selective_search(im, 'fast'), args.shapes):.3f}"
    )
    if have_cv:
        print(f"   OpenCV fast mode: {shapes_recall(opencv_fast, args.shapes):.3f}")


if __name__ == "__main__":
    main()
