"""Time the convolution at every layer shape of ResNet-50-FPN and of the mask head (issue 19, item 4).

    ../parity/bin/python benchmarks/bench_conv_shapes.py [--repeats 3] [--threads 2]
        [--size 800 1088] [--only 3x3]

Shapes: every distinct convolution of torchvision's ``maskrcnn_resnet50_fpn`` on one 800 x 1088
image (batch 1): the stem's 7x7, the 1x1 and 3x3 convolutions of each ResNet stage (with the stride
on the 3x3, as torchvision's v1.5, and the 1x1 downsample), the FPN's 1x1 laterals and 3x3
outputs, the RPN head's 3x3 and its two 1x1s on P2..P6; and the mask head's 3x3 convolutions, its
2x2 deconvolution and its 1x1 logits on 100 RoIs of 14 x 14 (28 x 28) with 256 channels. A shape
used by several layers (the FPN's 3x3 outputs and the RPN's 3x3 on P2..P5) is timed once; the
``uses`` column says how many layers share it. Every convolution has a bias (ours fold the frozen
batch norm into one). All float32, forward only (the real-scale models are inference-only).

For each shape, all in this one run:

* ``ours``: ``conv2d_forward`` (``conv_transpose2d_forward`` for the deconvolution), GFLOP/s;
* ``matmul``: one ``np.matmul`` of the very GEMM it computes, ``(F, C kh kw) @ (C kh kw, N Ho Wo)``
  (``(F kh kw, C) @ (C, N H W)`` for the deconvolution), both operands and the output ready: the
  practical ceiling; ``share`` is its time over ours (target: at least 70 %);
* ``torch``: ``torch.nn.functional.conv2d`` (``conv_transpose2d``) where PyTorch is installed, and
  ``ours/torch``, the ratio of times;
* ``scratch``: our peak memory besides the input and the output, from ``tracemalloc`` in one
  untimed call with the convolution's kept scratch buffers dropped first (so they count; NumPy
  reports its allocations to ``tracemalloc``), in MB.

Times: the median of ``--repeats`` calls after one warm-up call, the best in brackets. Threads:
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` are set to ``--threads``
before NumPy is imported (threadpoolctl too where installed), and ``torch.set_num_threads``.
"""

from __future__ import annotations

import argparse
import os
import sys


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(800, 1088), metavar=("H", "W"))
    parser.add_argument("--rois", type=int, default=100, help="RoIs of the mask head")
    parser.add_argument("--only", default="", help="time only layers whose name contains this")
    return parser.parse_args()


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:  # before NumPy's import, so that its BLAS starts with this many threads
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
from bench_nn import limit_blas_threads, timings, torch_with_threads  # noqa: E402  (the script's folder is on sys.path)

from rcnn_from_scratch.nn.conv import conv2d_forward  # noqa: E402
from rcnn_from_scratch.nn.conv_transpose import conv_transpose2d_forward  # noqa: E402


def resnet50_fpn_shapes(H: int, W: int, rois: int = 100) -> list[dict]:
    """Every distinct convolution of ResNet-50-FPN + RPN + mask head at an ``H x W`` input.

    Returns:
        dicts with ``name``, ``uses`` (layers of that shape), ``x`` ``(N, C, H, W)``, ``F``,
        ``k``, ``s``, ``p`` and ``transposed`` (the mask head's 2x2 deconvolution).
    """
    shapes: dict[tuple, dict] = {}

    def add(name, N, C, h, w, F, k, s=1, p=0, transposed=False):
        key = (N, C, h, w, F, k, s, p, transposed)
        if key in shapes:
            shapes[key]["uses"] += 1
            return
        shapes[key] = dict(name=name, uses=1, x=(N, C, h, w), F=F, k=k, s=s, p=p,
                           transposed=transposed)  # fmt: skip

    def down(n):  # a 3x3 (or 1x1) stride-2 convolution with padding 1 (0)
        return (n - 1) // 2 + 1

    h, w = down(H), down(W)
    add("stem 7x7/2", 1, 3, H, W, 64, 7, 2, 3)
    h, w = down(h), down(w)  # max-pool 3x3/2
    c_in, levels = 64, []
    stages = zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)
    for stage, (planes, blocks) in enumerate(stages, start=2):
        stride = 1 if stage == 2 else 2
        for b in range(blocks):
            s = stride if b == 0 else 1
            ho, wo = (down(h), down(w)) if s == 2 else (h, w)
            add(f"C{stage} 1x1 reduce", 1, c_in, h, w, planes, 1)
            add(f"C{stage} 3x3" + ("/2" if s == 2 else ""), 1, planes, h, w, planes, 3, s, 1)
            add(f"C{stage} 1x1 expand", 1, planes, ho, wo, 4 * planes, 1)
            if b == 0:
                add(f"C{stage} 1x1 downsample" + ("/2" if s == 2 else ""), 1, c_in, h, w,
                    4 * planes, 1, s)  # fmt: skip
            c_in, h, w = 4 * planes, ho, wo
        levels.append((c_in, h, w))
    for i, (c, h, w) in enumerate(levels, start=2):
        add(f"FPN lateral P{i}", 1, c, h, w, 256, 1)
    for i, (_, h, w) in enumerate(levels, start=2):
        add(f"FPN out 3x3 P{i}", 1, 256, h, w, 256, 3, 1, 1)
    p6 = (down(levels[-1][1]), down(levels[-1][2]))  # max-pool 1x1/2 of P5
    for i, (h, w) in enumerate([lv[1:] for lv in levels] + [p6], start=2):
        add(f"RPN 3x3 P{i}", 1, 256, h, w, 256, 3, 1, 1)
        add(f"RPN cls 1x1 P{i}", 1, 256, h, w, 3, 1)
        add(f"RPN box 1x1 P{i}", 1, 256, h, w, 12, 1)
    for i in range(4):
        add(f"mask 3x3 #{i + 1}", rois, 256, 14, 14, 256, 3, 1, 1)
    add("mask deconv 2x2/2", rois, 256, 14, 14, 256, 2, 2, 0, transposed=True)
    add("mask logits 1x1", rois, 256, 28, 28, 91, 1)
    return list(shapes.values())


def scratch_mb(fn, x: np.ndarray) -> float:
    """Peak traced memory of ``fn()`` besides its output, in MB (``x`` exists before the call)."""
    import tracemalloc

    from rcnn_from_scratch.nn import conv

    conv._workspaces.__dict__.clear()  # so that the scratch buffers it keeps count too
    tracemalloc.start()
    try:
        out = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - out.nbytes) / 1e6


def main() -> None:
    args = ARGS
    print(f"NumPy {np.__version__}, OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print(limit_blas_threads(args.threads))
    torch = torch_with_threads(args.threads)
    H, W = args.size
    rng = np.random.default_rng(0)
    print(f"\nconvolution forward at a {H} x {W} image, float32, GFLOP/s median (best)")
    head = f"{'layer':24s} {'uses':>4s} {'x (N, C, H, W) -> F':26s} {'GFLOP':>6s}"
    head += f" {'ours':>13s} {'matmul':>13s} {'share':>11s}"
    print(head + (f" {'torch':>13s} {'ours/torch':>11s}" if torch else "") + f" {'scratch':>8s}")
    total = {"ours": 0.0, "matmul": 0.0, "torch": 0.0}
    for shape in resnet50_fpn_shapes(H, W, args.rois):
        if args.only not in shape["name"]:
            continue
        N, C, h, w = shape["x"]
        F, k, s, p = shape["F"], shape["k"], shape["s"], shape["p"]
        x = rng.random((N, C, h, w), dtype=np.float32)
        if shape["transposed"]:
            weight = rng.standard_normal((C, F, k, k), dtype=np.float32)
            Ho, Wo = (h - 1) * s + k - 2 * p, (w - 1) * s + k - 2 * p
            a_shape, b_shape = (F * k * k, C), (C, N * h * w)
        else:
            weight = rng.standard_normal((F, C, k, k), dtype=np.float32)
            Ho, Wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            a_shape, b_shape = (F, C * k * k), (C * k * k, N * Ho * Wo)
        bias = rng.standard_normal(F, dtype=np.float32)
        flop = 2.0 * a_shape[0] * a_shape[1] * b_shape[1]
        forward = conv_transpose2d_forward if shape["transposed"] else conv2d_forward

        def ours(x=x, weight=weight, bias=bias, s=s, p=p, forward=forward):
            return forward(x, weight, bias, s, p)[0]

        t_ours = timings(ours, args.repeats)
        scratch = scratch_mb(ours, x)
        a = rng.random(a_shape, dtype=np.float32)
        b = rng.random(b_shape, dtype=np.float32)
        c = np.empty((a_shape[0], b_shape[1]), np.float32)
        t_gemm = timings(lambda a=a, b=b, c=c: np.matmul(a, b, out=c), args.repeats)
        del a, b, c

        def rate(t, flop=flop):
            return f"{flop / t[0] / 1e9:6.1f} ({flop / t[1] / 1e9:4.0f})"

        share = f"{t_gemm[0] / t_ours[0]:4.0%} ({t_gemm[1] / t_ours[1]:3.0%})"
        geometry = f"({N}, {C}, {h}, {w}) -> {F}"
        line = f"{shape['name']:24s} {shape['uses']:>4d} {geometry:26s} {flop / 1e9:6.2f}"
        line += f" {rate(t_ours)} {rate(t_gemm)} {share}"
        total["ours"] += shape["uses"] * t_ours[0]
        total["matmul"] += shape["uses"] * t_gemm[0]
        if torch is not None:
            tx, tw, tb = (torch.from_numpy(v) for v in (x, weight, bias))
            conv = torch.nn.functional.conv_transpose2d if shape["transposed"] else None
            conv = conv or torch.nn.functional.conv2d

            def theirs(tx=tx, tw=tw, tb=tb, s=s, p=p, conv=conv):
                with torch.no_grad():
                    return conv(tx, tw, tb, s, p)

            t_torch = timings(theirs, args.repeats)
            total["torch"] += shape["uses"] * t_torch[0]
            line += f" {rate(t_torch)} {t_ours[0] / t_torch[0]:5.2f} ({t_ours[1] / t_torch[1]:.2f})"
        print(line + f" {scratch:8.1f}", flush=True)
    summary = f"\nall layers, each shape times its uses, medians: ours {total['ours']:.3f} s, "
    summary += f"matmul {total['matmul']:.3f} s (share {total['matmul'] / total['ours']:.0%})"
    if torch is not None:
        summary += (
            f", torch {total['torch']:.3f} s (ours/torch {total['ours'] / total['torch']:.2f})"
        )
    print(summary)


if __name__ == "__main__":
    sys.exit(main())
