"""The four stages side by side, measured: AP, training time, test time per image by part.

    python benchmarks/bench_stages.py                 # 200 evaluation images of 128 x 128
    python benchmarks/bench_stages.py --size 512 --objects 16 --images 20

Runs :func:`rcnn_from_scratch.comparison.compare_detectors` with the shipped weights and prints its
table. On 128 x 128 images with a few objects selective search takes tens of milliseconds and R-CNN's
CNN sees a few hundred crops, so the speed-ups are smaller than the papers'; ``--size 512`` shows how
they grow with the image (the models were trained on 128 x 128 shapes, so AP there is not the point).
"""

from __future__ import annotations

import argparse

from rcnn_from_scratch.comparison import STAGES, compare_detectors, comparison_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=None, help="image side (default 128)")
    parser.add_argument("--objects", type=int, default=None, help="most objects per image")
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    args = parser.parse_args()
    results = compare_detectors(args.images, args.stages, args.size, args.objects)
    size = args.size or 128
    print(f"{args.images} evaluation images of {size} x {size}\n")
    print(comparison_table(results))


if __name__ == "__main__":
    main()
