"""The four stages side by side, measured: AP, training time, test time per image by part.

    python benchmarks/bench_stages.py                 # 200 evaluation images of 128 x 128
    python benchmarks/bench_stages.py --size 512 --objects 16 --images 20
    python benchmarks/bench_stages.py --photos          # test time on scikit-image's photographs

Runs :func:`rcnn_from_scratch.comparison.compare_detectors` with the shipped weights and prints its
table. On 128 x 128 images with a few objects selective search takes tens of milliseconds and R-CNN's
CNN sees a few hundred crops, so the speed-ups are smaller than the papers'; ``--size 512`` shows how
they grow with the image (the models were trained on 128 x 128 shapes, so AP there is not the point).
Flat-coloured shapes give selective search few regions even at 512 x 512, so ``--photos`` times the
stages on six photographs shipped with scikit-image, resized to 512 px on their longer side, where
it finds the papers' thousands of regions per image (no labels there: times only).
"""

from __future__ import annotations

import argparse

from rcnn_from_scratch.comparison import (
    STAGES,
    compare_detectors,
    comparison_table,
    time_detectors,
    timing_table,
)

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "camera")


def photographs(side: int = 512):
    """scikit-image's sample photographs as RGB uint8, the longer side resized to ``side``."""
    from skimage import color, data
    from skimage.transform import resize

    out = []
    for name in PHOTOS:
        image = getattr(data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo: the left view
        if image.ndim == 2:
            image = color.gray2rgb(image)
        scale = side / max(image.shape[:2])
        size = (round(image.shape[0] * scale), round(image.shape[1] * scale))
        out.append((resize(image[..., :3], size, anti_aliasing=True) * 255).astype("uint8"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=None, help="image side (default 128)")
    parser.add_argument("--objects", type=int, default=None, help="most objects per image")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--photos", action="store_true", help="time on photographs instead")
    args = parser.parse_args()
    if args.photos:
        images = photographs(args.size or 512)
        times = time_detectors(images, args.stages)
        regions = next(iter(times.values()))["regions"]
        print(f"{len(images)} photographs ({', '.join(PHOTOS)}), longer side {args.size or 512} "
              f"px; {regions:.0f} selective-search regions per image on average\n")  # fmt: skip
        print(timing_table(times))
        return
    results = compare_detectors(args.images, args.stages, args.size, args.objects)
    size = args.size or 128
    print(f"{args.images} evaluation images of {size} x {size}\n")
    print(comparison_table(results))


if __name__ == "__main__":
    main()
