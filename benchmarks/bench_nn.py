"""Time the backbone's convolutions against NumPy's own matrix product and PyTorch's CPU layers.

    python benchmarks/bench_nn.py [--repeats 15] [--threads 2] [--parts]

Backbone: 3 -> 16 -> 32 -> 64 channels, 3x3 convs (padding 1), ReLU and 2x2 max-pool after each,
stride 8; 128 x 128 input, batch 8, float32. Reported, all measured in this one run:

* each conv's forward GFLOP/s beside the GFLOP/s of a bare ``np.matmul`` of the very GEMM it runs,
  ``(F, C kh kw) @ (C kh kw, N Ho Wo)`` (the practical ceiling; target: at least 50 %), and beside
  ``torch.nn.functional.conv2d``;
* the whole backbone's forward and forward+backward time beside PyTorch's (target: forward+backward
  at most 2x). Neither computes a gradient for the image. Beside it, the minor page faults per
  forward+backward (Unix): memory the process touches for the first time since it got it from the
  operating system, which costs time on every pass that allocates fresh large arrays.

With ``--parts``, our backward layer by layer (each layer's backward timed alone on the caches of
one forward), each convolution's split into its weight gradient and its input gradient, beside the
bare ``np.matmul`` of the GEMMs each of them runs: what is left is the non-GEMM work (im2col
copies, col2im adds, layout copies).

Both libraries get the same number of threads (``--threads``; NumPy's BLAS through threadpoolctl when
it is installed). Times are the median of ``--repeats`` runs, with the best run in brackets: on a
shared machine the best run is the better estimate of the cost.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rcnn_from_scratch.backbones.convnet import make_backbone
from rcnn_from_scratch.nn.conv import Conv2d, conv2d_backward, conv2d_forward


def timings(fn, repeats: int) -> tuple[float, float]:
    """``(median, best)`` seconds of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.min(times))


def page_faults(fn, repeats: int) -> float | None:
    """Minor page faults per call of ``fn()`` (``None`` where ``resource`` is missing)."""
    try:
        import resource
    except ImportError:
        return None
    fn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / repeats


def limit_blas_threads(threads: int) -> str:
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return "NumPy BLAS threads: not limited (threadpoolctl not installed)"
    threadpool_limits(threads)
    blas = [f"{i['internal_api']} {i['version']}, {i['num_threads']} threads"
            for i in threadpool_info() if i["user_api"] == "blas"]  # fmt: skip
    return "NumPy BLAS: " + "; ".join(blas)


def torch_with_threads(threads: int):
    """``torch`` limited to ``threads`` threads (its version printed), or ``None`` without it."""
    try:
        import torch
    except ImportError:
        print("PyTorch: not installed (our figures only)")
        return None
    torch.set_num_threads(threads)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    return torch


def torch_backbone(torch, net):
    """The same layers in PyTorch, with our weights."""
    layers = []
    for layer in net.layers:
        if isinstance(layer, Conv2d):
            F, C = layer.weight.shape[:2]
            conv = torch.nn.Conv2d(C, F, 3, padding=1)
            conv.weight.data = torch.from_numpy(layer.weight.data.copy())
            conv.bias.data = torch.from_numpy(layer.bias.data.copy())
            layers.append(conv)
        elif type(layer).__name__ == "ReLU":
            layers.append(torch.nn.ReLU())
        else:
            layers.append(torch.nn.MaxPool2d(2))
    return torch.nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", action="store_true", help="profile our backward by parts")
    args = parser.parse_args()
    print(limit_blas_threads(args.threads))
    torch = torch_with_threads(args.threads)

    rng = np.random.default_rng(0)
    N, size = 8, 128
    x = rng.random((N, 3, size, size), dtype=np.float32)
    net = make_backbone((16, 32, 64), seed=0)

    def rate(flop, t):
        return f"{flop / t[0] / 1e9:6.1f} ({flop / t[1] / 1e9:5.1f})"

    print(f"\nconv forward, GFLOP/s median (best)   batch {N}, float32")
    head = f"{'layer':22s} {'GFLOP':>6s} {'ours':>14s} {'matmul':>14s} {'share':>11s}"
    print(head + (f" {'torch':>14s}" if torch else ""))
    h = x
    for layer in net.layers:
        if isinstance(layer, Conv2d):
            F, C, kh, kw = layer.weight.shape
            Ho, Wo = h.shape[2:]
            flop = 2.0 * N * Ho * Wo * F * C * kh * kw
            w, b = layer.weight.data, layer.bias.data
            ours = timings(lambda h=h, w=w, b=b: conv2d_forward(h, w, b, 1, 1), args.repeats)
            a = rng.random((F, C * kh * kw), dtype=np.float32)
            cols = rng.random((C * kh * kw, N * Ho * Wo), dtype=np.float32)
            gemm = timings(lambda a=a, cols=cols: a @ cols, args.repeats)
            share = f"{gemm[0] / ours[0]:4.0%} ({gemm[1] / ours[1]:4.0%})"
            line = f"{C:>3d}->{F:<3d} {Ho:>3d}x{Wo:<3d}      {flop / 1e9:6.3f} "
            line += f"{rate(flop, ours)} {rate(flop, gemm)} {share}"
            if torch is not None:
                th, tw, tb = (torch.from_numpy(v) for v in (h, w, b))
                with torch.no_grad():
                    theirs = timings(
                        lambda th=th, tw=tw, tb=tb: torch.nn.functional.conv2d(th, tw, tb, 1, 1),
                        args.repeats,
                    )
                line += f" {rate(flop, theirs)}"
            print(line)
        h = layer(h)

    def ours_fwd_bwd():
        out = net(x)
        net.backward(np.ones_like(out))

    t_fwd = timings(lambda: net(x), args.repeats)
    t_both = timings(ours_fwd_bwd, args.repeats)

    def ms(t):
        return f"{t[0] * 1e3:6.1f} ({t[1] * 1e3:5.1f}) ms"

    print(f"\nbackbone, batch {N}, {size}x{size}, median (best)")
    print(f"{'':12s} {'forward':>18s} {'forward+backward':>20s}")
    print(f"{'ours':12s} {ms(t_fwd):>18s} {ms(t_both):>20s}")
    faults = {"ours": page_faults(ours_fwd_bwd, args.repeats)}
    if torch is None:
        print_faults(faults)
        return
    tnet = torch_backbone(torch, net)
    tx = torch.from_numpy(x)  # like ours: no gradient for the image
    with torch.no_grad():
        np.testing.assert_allclose(tnet(tx).numpy(), net(x), rtol=1e-3, atol=1e-3)

    def torch_fwd():
        with torch.no_grad():
            tnet(tx)

    def torch_fwd_bwd():
        tnet.zero_grad()
        out = tnet(tx)
        out.backward(torch.ones_like(out))

    p_fwd = timings(torch_fwd, args.repeats)
    p_both = timings(torch_fwd_bwd, args.repeats)
    print(f"{'PyTorch':12s} {ms(p_fwd):>18s} {ms(p_both):>20s}")
    ratio = f"{t_fwd[0] / p_fwd[0]:.2f} ({t_fwd[1] / p_fwd[1]:.2f})"
    ratio_both = f"{t_both[0] / p_both[0]:.2f} ({t_both[1] / p_both[1]:.2f})"
    print(f"{'ours/PyTorch':12s} {ratio:>18s} {ratio_both:>20s}")
    faults["PyTorch"] = page_faults(torch_fwd_bwd, args.repeats)
    print_faults(faults)
    if args.parts:
        print(f"PyTorch's backward alone (forward+backward - forward): "
              f"{(p_both[0] - p_fwd[0]) * 1e3:.1f} ms")  # fmt: skip
        backward_parts(net, x, args.repeats)


def backward_parts(net, x, repeats: int) -> None:
    """Our backward, layer by layer, with each convolution's GEMMs timed bare beside it."""
    rng = np.random.default_rng(1)
    out = net(x)
    caches = [layer._cache for layer in net.layers]  # the forward's, kept for repeated backwards
    douts = [None] * len(net.layers)
    d = np.ones_like(out)
    for i in reversed(range(len(net.layers))):
        douts[i] = d
        d = net.layers[i]._backward(d, caches[i]) if i else None

    def ms(t):
        return f"{t[0] * 1e3:6.2f} ({t[1] * 1e3:5.2f})"

    print("\nour backward by parts, ms median (best)")
    print(f"{'layer':28s} {'part':14s} {'ours':>15s} {'GEMMs alone':>15s} {'rest':>8s}")
    total = 0.0
    for i in reversed(range(len(net.layers))):
        layer, cache, dout = net.layers[i], caches[i], douts[i]
        name = f"{i} {type(layer).__name__}"
        if not isinstance(layer, Conv2d):
            t = timings(lambda layer=layer, dout=dout, cache=cache: layer._backward(dout, cache),
                        repeats)  # fmt: skip
            total += t[0]
            print(f"{name:28s} {'':14s} {ms(t):>15s}")
            continue
        F, C, kh, kw = layer.weight.shape
        N, _, Ho, Wo = dout.shape
        name += f" {C}->{F} {Ho}x{Wo}"
        t_w = timings(lambda dout=dout, cache=cache: conv2d_backward(dout, cache, False), repeats)
        cols = rng.random((N, C * kh * kw, Ho * Wo), dtype=np.float32)
        dt = rng.random((N, Ho * Wo, F), dtype=np.float32)
        g_w = timings(lambda cols=cols, dt=dt: np.matmul(cols, dt), repeats)
        total += t_w[0]
        print(f"{name:28s} {'weight, bias':14s} {ms(t_w):>15s} {ms(g_w):>15s} "
              f"{(t_w[0] - g_w[0]) * 1e3:8.2f}")  # fmt: skip
        if layer.input_grad:
            t_both = timings(lambda dout=dout, cache=cache: conv2d_backward(dout, cache), repeats)
            w_t = rng.random((kh * kw * C, F), dtype=np.float32)
            frames = rng.random((F, N * (Ho + 2) * (Wo + 2)), dtype=np.float32)
            g_x = timings(lambda w_t=w_t, frames=frames: w_t @ frames, repeats)
            total += t_both[0] - t_w[0]
            t_x = (t_both[0] - t_w[0], t_both[1] - t_w[1])
            print(f"{'':28s} {'input':14s} {ms(t_x):>15s} {ms(g_x):>15s} "
                  f"{(t_x[0] - g_x[0]) * 1e3:8.2f}")  # fmt: skip
    print(f"{'sum of the parts':28s} {'':14s} {total * 1e3:6.2f}")


def print_faults(faults: dict) -> None:
    if None in faults.values():
        return
    each = ", ".join(f"{name} {n:,.0f} ({n * 4096 / 1e6:.1f} MB)" for name, n in faults.items())
    print(f"\nminor page faults per forward+backward: {each}")


if __name__ == "__main__":
    main()
