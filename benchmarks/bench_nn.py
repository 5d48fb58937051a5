"""Time the backbone's convolutions against NumPy's own matrix product and PyTorch's CPU layers.

    python benchmarks/bench_nn.py

Backbone: 3 -> 16 -> 32 -> 64 channels, 3x3 convs, max-pool after each, stride 8; 128 x 128 input,
batch 8. For each conv: its forward GFLOP/s beside the GFLOP/s of a bare ``np.matmul`` of the same GEMM
shape (the practical ceiling), then the whole backbone's forward and forward+backward time beside
PyTorch's (2 threads), all in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from rcnn_from_scratch.nn import make_backbone
from rcnn_from_scratch.nn.conv import Conv2d, conv2d_forward


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
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    try:
        import torch

        torch.set_num_threads(2)
    except ImportError:
        torch = None
        print("torch not installed: our figures only")

    rng = np.random.default_rng(0)
    N, size = 8, 128
    x = rng.random((N, 3, size, size), dtype=np.float32)
    net = make_backbone((16, 32, 64), rng=0)

    print(
        f"{'conv layer':28s} {'GFLOP':>7s} {'ours GFLOP/s':>13s} {'matmul GFLOP/s':>15s} {'share':>6s}"
    )
    h = x
    for layer in net.layers:
        if isinstance(layer, Conv2d):
            F, C, kh, kw = layer.weight.shape
            Ho, Wo = h.shape[2:]
            flop = 2.0 * N * Ho * Wo * F * C * kh * kw
            ours = median_time(
                lambda h=h, layer=layer: conv2d_forward(
                    h, layer.weight.data, layer.bias.data, 1, 1
                ),
                args.repeats,
            )
            a = rng.random((N * Ho * Wo, C * kh * kw), dtype=np.float32)
            b = rng.random((C * kh * kw, F), dtype=np.float32)
            gemm = median_time(lambda a=a, b=b: a @ b, args.repeats)
            name = f"{C}->{F}, {Ho}x{Wo}"
            rates = f"{flop / ours / 1e9:13.1f} {flop / gemm / 1e9:15.1f}"
            print(f"{name:28s} {flop / 1e9:7.3f} {rates} {gemm / ours:6.0%}")
        h = layer(h)

    def ours_fwd():
        return net(x)

    def ours_fwd_bwd():
        out = net(x)
        net.backward(np.ones_like(out))

    t_fwd = median_time(ours_fwd, args.repeats)
    t_both = median_time(ours_fwd_bwd, args.repeats)
    times = f"forward {t_fwd * 1e3:.1f} ms, forward+backward {t_both * 1e3:.1f} ms"
    print(f"\nbackbone, batch {N}, {size}x{size}: {times}")
    if torch is not None:
        tnet = torch.nn.Sequential(
            *[m for c_in, c_out in ((3, 16), (16, 32), (32, 64))
              for m in (torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2))]
        )  # fmt: skip
        tx = torch.from_numpy(x)

        def torch_fwd():
            with torch.no_grad():
                tnet(tx)

        def torch_fwd_bwd():
            tnet.zero_grad()
            out = tnet(tx)  # like ours: no gradient for the image
            out.backward(torch.ones_like(out))

        p_fwd = median_time(torch_fwd, args.repeats)
        p_both = median_time(torch_fwd_bwd, args.repeats)
        times = f"forward {p_fwd * 1e3:.1f} ms, forward+backward {p_both * 1e3:.1f} ms"
        print(f"PyTorch {torch.__version__}: {times}")
        print(
            f"ratio ours / PyTorch: forward {t_fwd / p_fwd:.2f}, forward+backward {t_both / p_both:.2f}"
        )


if __name__ == "__main__":
    main()
