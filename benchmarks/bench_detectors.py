"""Time a training step and a test image of our Faster and Mask R-CNN against torchvision's.

    ../parity/bin/python benchmarks/bench_detectors.py [--steps 20] [--warmup 3] [--profile]
                                                       [--threads 2] [--trained]

What is measured, in one run, for the same architecture on both sides (default configs, 128 x 128
shapes images, random initialisation, seed 0):

- **training step**: zero the gradients, forward + the four (five with masks) losses, backward, one
  Adam step (lr 1e-3), on a batch of 2 images. Ours: ``opt.zero_grad(); model.loss(images, targets,
  rng); model.backward(); opt.step()``; torchvision: ``opt.zero_grad(); sum(model(images,
  targets).values()).backward(); opt.step()``. Every step gets a new pair of images, the same pairs on
  both sides.
- **test time per image**: ``model.predict(image)`` against ``model.eval(); with torch.no_grad():
  model([image])``, one image at a time, including the post-processing (and mask pasting).

Each figure is the median of ``--steps`` calls after ``--warmup`` untimed ones. torch runs on 2
threads (``torch.set_num_threads(2)``) and NumPy's BLAS on 2 as well (``OPENBLAS_NUM_THREADS`` /
``OMP_NUM_THREADS`` set before NumPy is imported, unless already set, and threadpoolctl when
installed); the machine has 2 cores. ``--threads 1`` runs both sides on one thread: on a machine
that something else keeps busy, spinning thread pools (OpenBLAS, OpenMP) slow both sides down many
times at 2 threads, torch's the most, and the script warns when the load average is high. Ratios
are ours / torchvision's (below 1: we are faster).

The torchvision models are ``torchvision.models.detection.FasterRCNN`` and ``MaskRCNN`` assembled
from parts so that every layer, sampler and threshold is ours (a table prints the values each model
actually holds), and they start from **our initial weights** (seed 0, copied tensor by tensor), so
both sides compute the same function and do the same work (the numbers of RoIs, mask RoIs and
detections are printed, and the test outputs compared). Two choices to know about:

- Faster R-CNN pools with RoIPool (our default ``pooler="roi_pool"``). torchvision's detector only
  takes a ``MultiScaleRoIAlign`` (a ``TypeError`` otherwise), so its ``box_roi_pool`` here is a
  small subclass whose ``forward`` calls ``torchvision.ops.roi_pool``: both sides run the same
  operator.
- Mask R-CNN pools with RoIAlign, sampling ratio 2; ours uses ``aligned=True``, torchvision's
  ``MultiScaleRoIAlign`` always ``aligned=False`` (a half-cell shift, same cost). torchvision's mask
  predictor has a 4th (background) channel that no loss reads.

torchvision's numbers include its ``GeneralizedRCNNTransform`` (normalisation, a resize by a factor 1,
batching) and its post-processing, which are part of calling its model, as ours include the image
conversion and post-processing of :meth:`predict`. The test uses fresh models with the initial
weights: untrained, they keep the full 100 detections per image (each with a mask), the worst case
of the post-processing and of the mask branch. With ``--trained`` both sides start from the shipped
weights instead (``data/``): the work of a real training step (many positive RoIs for the mask head)
and of a real test image (a handful of detections).

``--profile`` adds where our training step spends its time: per-stage times (``time.perf_counter``
around every module's forward and backward, recorded during the timed steps themselves) and the 15
functions with the most own time under cProfile.

torch is not a dependency of the package: the package is NumPy-only by design (it is the point of a
from-scratch implementation), and torch is only the reference of the parity environment. Without
torch the script says so and times our models only, e.g. with ``.venv/bin/python``.
"""

from __future__ import annotations

import argparse
import cProfile
import inspect
import io
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict


def _threads_from_argv(argv, default: int = 2) -> int:
    for i, arg in enumerate(argv):
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
    return default


# OpenBLAS and OpenMP size their thread pools when loaded, so the count goes into the environment
# before NumPy (and later torch) are imported; threadpoolctl and torch.set_num_threads follow.
THREADS = _threads_from_argv(sys.argv)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, str(THREADS))

import numpy as np  # noqa: E402

from rcnn_from_scratch.datasets.shapes import ShapesDataset  # noqa: E402
from rcnn_from_scratch.models.faster_rcnn import FasterRCNN, FasterRCNNConfig  # noqa: E402
from rcnn_from_scratch.models.mask_rcnn import MaskRCNN, MaskRCNNConfig  # noqa: E402
from rcnn_from_scratch.nn import Adam  # noqa: E402
from rcnn_from_scratch.proposals.proposal_layer import ProposalConfig  # noqa: E402
from rcnn_from_scratch.targets.roi_targets import sample_roi_targets  # noqa: E402
from rcnn_from_scratch.targets.rpn_targets import assign_rpn_targets  # noqa: E402

BATCH = 2
LR = 1e-3
MODELS = {"Faster R-CNN": (FasterRCNN, FasterRCNNConfig), "Mask R-CNN": (MaskRCNN, MaskRCNNConfig)}


def limit_blas_threads(threads: int) -> str:
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        value = os.environ.get("OPENBLAS_NUM_THREADS")
        return f"NumPy BLAS: OPENBLAS_NUM_THREADS={value} (threadpoolctl not installed to confirm)"
    threadpool_limits(threads)
    blas = [f"{i['internal_api']} {i['version']}, {i['num_threads']} threads"
            for i in threadpool_info() if i["user_api"] == "blas"]  # fmt: skip
    return "NumPy BLAS: " + "; ".join(blas)


def load_avg() -> str:
    try:
        return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def median_ms(times) -> float:
    return statistics.median(times) * 1e3


# ---------------------------------------------------------------------------------------- ours


class Stopwatch:
    """Seconds and input rows per stage, summed over one step, kept step by step."""

    def __init__(self):
        self.current: dict[str, float] = defaultdict(float)
        self.rows: dict[str, int] = defaultdict(int)
        self.steps: list[dict[str, float]] = []
        self.step_rows: list[dict[str, int]] = []

    def add(self, name: str, seconds: float) -> None:
        self.current[name] += seconds

    def end_step(self) -> None:
        self.steps.append(dict(self.current))
        self.step_rows.append(dict(self.rows))
        self.current.clear()
        self.rows.clear()

    def reset(self) -> None:
        self.__init__()


class Timed:
    """A transparent proxy of one of our modules that times its ``forward`` and ``backward`` and
    counts the rows of its first input (RoIs for the poolers). Attribute reads and writes go to the
    module (``predict`` clears ``_cache`` through the model's attribute). Cost: two
    ``perf_counter`` calls per call, microseconds per step."""

    def __init__(self, module, name: str, watch: Stopwatch, count_arg: int | None = None):
        object.__setattr__(self, "_timed", (module, name, watch, count_arg))

    def __call__(self, *inputs):
        module, name, watch, count_arg = self._timed
        if count_arg is not None:
            watch.rows[name] += len(inputs[count_arg])
        start = time.perf_counter()
        out = module(*inputs)
        watch.add(f"{name} forward", time.perf_counter() - start)
        return out

    forward = __call__

    def backward(self, dout):
        module, name, watch, _ = self._timed
        start = time.perf_counter()
        out = module.backward(dout)
        watch.add(f"{name} backward", time.perf_counter() - start)
        return out

    def __getattr__(self, attr):
        return getattr(self._timed[0], attr)

    def __setattr__(self, attr, value):
        setattr(self._timed[0], attr, value)


TRAINED = False  # --trained: start both sides from the shipped weights instead


def fresh_ours(kind: str):
    """Our model with the default config and its seed-0 initialisation (or the shipped weights)."""
    Model, Config = MODELS[kind]
    return Model.pretrained() if TRAINED else Model(Config(), seed=0)


def build_ours(kind: str, watch: Stopwatch):
    model = fresh_ours(kind)
    stages = [("backbone", "backbone", None), ("rpn", "RPN head", None),
              ("pooler", "box pooler", 1), ("box_head", "box head", None)]  # fmt: skip
    if kind == "Mask R-CNN":
        stages += [("mask_pooler", "mask pooler", 1), ("mask_head", "mask head", None)]
    for attr, name, count_arg in stages:
        setattr(model, attr, Timed(getattr(model, attr), name, watch, count_arg))
    return model


def ours_train_step(model, opt, images, targets, rng, watch: Stopwatch) -> None:
    t0 = time.perf_counter()
    opt.zero_grad()
    t1 = time.perf_counter()
    model.loss(images, targets, rng)
    t2 = time.perf_counter()
    model.backward()
    t3 = time.perf_counter()
    opt.step()
    t4 = time.perf_counter()
    for name, seconds in (("zero_grad", t1 - t0), ("loss()", t2 - t1), ("backward()", t3 - t2),
                          ("Adam step", t4 - t3)):  # fmt: skip
        watch.add(name, seconds)


def time_ours(kind, train_batches, test_images, warmup):
    """Training-step and test times (seconds) of our model, its stopwatch, RoI and detection counts."""
    watch = Stopwatch()
    model = build_ours(kind, watch)
    opt = Adam(model.parameters(), lr=LR)
    rng = np.random.default_rng(0)
    train = []
    for i, (images, targets) in enumerate(train_batches):
        start = time.perf_counter()
        ours_train_step(model, opt, images, targets, rng, watch)
        seconds = time.perf_counter() - start
        if i == warmup - 1:
            watch.reset()
        elif i >= warmup:
            train.append(seconds)
            watch.end_step()
    model = fresh_ours(kind)  # the test: initial weights, the same as torchvision's
    test, outputs = [], []
    for i, image in enumerate(test_images):
        start = time.perf_counter()
        outputs.append(model.predict(image))
        if i >= warmup:
            test.append(time.perf_counter() - start)
    rows = {k: statistics.mean(r.get(k, 0) for r in watch.step_rows) for k in watch.step_rows[0]}
    return train, test, watch, rows, outputs


def print_stage_breakdown(kind: str, watch: Stopwatch) -> None:
    """Mean time per training step of each stage; the rest of ``loss()`` and ``backward()`` are
    what no module accounts for (anchors, proposal layer, RPN/RoI/mask targets, loss functions)."""
    mean = {k: statistics.mean(s.get(k, 0.0) for s in watch.steps) for k in watch.steps[0]}
    total = sum(mean[k] for k in ("zero_grad", "loss()", "backward()", "Adam step"))
    fwd = [k for k in mean if k.endswith(" forward")]
    bwd = [k for k in mean if k.endswith(" backward")]
    rows = [(k, mean[k]) for k in fwd]
    rows.append(("rest of loss(): anchors, proposals, targets, losses",
                 mean["loss()"] - sum(mean[k] for k in fwd)))  # fmt: skip
    rows += [(k, mean[k]) for k in bwd]
    rows.append(
        ("rest of backward(): gradient sums", mean["backward()"] - sum(mean[k] for k in bwd))
    )
    rows += [("Adam step", mean["Adam step"]), ("zero_grad", mean["zero_grad"])]
    print(f"\n{kind}, our training step by stage (mean of {len(watch.steps)} steps, "
          f"{total * 1e3:.1f} ms):\n")  # fmt: skip
    print("| stage | ms | share |\n|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e3:.2f} | {seconds / total:.0%} |")


def cprofile_ours(kind, train_batches, warmup, top: int = 15) -> None:
    """cProfile of our training steps on a fresh model: the ``top`` functions by own time."""
    watch = Stopwatch()
    model = build_ours(kind, watch)
    opt = Adam(model.parameters(), lr=LR)
    rng = np.random.default_rng(0)
    for images, targets in train_batches[:warmup]:
        ours_train_step(model, opt, images, targets, rng, watch)
    profiler = cProfile.Profile()
    steps = train_batches[warmup:]
    profiler.enable()
    for images, targets in steps:
        ours_train_step(model, opt, images, targets, rng, watch)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime")
    stats.print_stats(top)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    print(f"\n{kind}, cProfile of {len(steps)} training steps, top {top} functions by own time "
          f"(tottime, cumtime in seconds over all steps; profiling slows the step down):\n")  # fmt: skip
    print("\n".join(line for line in lines[start:] if line.strip()))


# --------------------------------------------------------------------------------- torchvision


def build_torchvision(torch, kind: str, config):
    """torchvision's detector with our architecture and numbers (``config`` is ours)."""
    import torchvision.ops as tvops
    from torch import nn
    from torchvision.models.detection import FasterRCNN as TVFasterRCNN
    from torchvision.models.detection import MaskRCNN as TVMaskRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

    class RoIPoolLevel0(tvops.MultiScaleRoIAlign):
        """``torchvision.ops.roi_pool`` on the one feature map ``"0"`` (stride 8), so torchvision's
        detector pools as ours does. ``FasterRCNN`` insists on a ``MultiScaleRoIAlign`` (a
        ``TypeError`` otherwise), hence the subclass; only ``forward`` is used."""

        def __init__(self, output_size: int, spatial_scale: float):
            super().__init__(["0"], output_size, sampling_ratio=0)
            self.output_size, self.spatial_scale = output_size, spatial_scale

        def forward(self, features, proposals, image_shapes):
            return tvops.roi_pool(features["0"], proposals, self.output_size, self.spatial_scale)

        def extra_repr(self) -> str:
            return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"

    torch.manual_seed(0)
    layers, c_in = [], 3
    for c_out in config.channels:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c_out
    backbone = nn.Sequential(*layers)
    backbone.out_channels = c_in
    stride = 2 ** len(config.channels)
    P = config.pooled_size
    if config.pooler == "roi_pool":
        box_pool = RoIPoolLevel0(P, 1.0 / stride)
    else:
        box_pool = tvops.MultiScaleRoIAlign(["0"], P, 2)
    kwargs = dict(
        num_classes=None,  # given by the predictor
        min_size=128,
        max_size=128,
        image_mean=[0.5] * 3,
        image_std=[1.0] * 3,
        rpn_anchor_generator=AnchorGenerator(
            (tuple(config.anchor_sizes),), (tuple(config.aspect_ratios),)
        ),
        rpn_pre_nms_top_n_train=config.rpn_pre_nms_train,
        rpn_post_nms_top_n_train=config.rpn_post_nms_train,
        rpn_pre_nms_top_n_test=config.rpn_pre_nms_test,
        rpn_post_nms_top_n_test=config.rpn_post_nms_test,
        rpn_nms_thresh=config.rpn_nms_thresh,
        rpn_batch_size_per_image=config.rpn_batch_size,
        rpn_positive_fraction=config.rpn_positive_fraction,
        box_roi_pool=box_pool,
        box_head=TwoMLPHead(c_in * P * P, config.hidden),
        box_predictor=FastRCNNPredictor(config.hidden, config.num_classes + 1),
        box_score_thresh=config.score_thresh,
        box_nms_thresh=config.nms_thresh,
        box_detections_per_img=config.detections_per_img,
        box_batch_size_per_image=config.rois_per_image,
        box_positive_fraction=config.positive_fraction,
        bbox_reg_weights=(10.0, 10.0, 5.0, 5.0),
    )
    if kind == "Faster R-CNN":
        return TVFasterRCNN(backbone, **kwargs)
    S = config.mask_pooled_size
    width = config.mask_layers[-1]
    return TVMaskRCNN(
        backbone,
        mask_roi_pool=tvops.MultiScaleRoIAlign(["0"], S, 2),
        mask_head=MaskRCNNHeads(c_in, list(config.mask_layers), 1),
        mask_predictor=MaskRCNNPredictor(width, width, config.num_classes + 1),
        **kwargs,
    )


def copy_weights(torch, ours, tv) -> None:
    """Our parameters into torchvision's model: same order and shapes, except the mask logits,
    where torchvision has an extra background channel 0 (never read by a loss) that keeps its own
    initialisation."""
    pairs = list(zip(ours.named_parameters(), tv.named_parameters(), strict=True))
    with torch.no_grad():
        for (name, p), (tv_name, q) in pairs:
            a = torch.from_numpy(np.ascontiguousarray(p.data, np.float32))
            if a.shape == q.shape:
                q.copy_(a)
            elif a.shape[1:] == q.shape[1:] and len(q) == len(a) + 1:
                q[1:].copy_(a)
            else:
                raise ValueError(f"{name} {tuple(a.shape)} does not fit {tv_name} {tuple(q.shape)}")


def check_config(kind: str, ours, tv) -> None:
    """The numbers torchvision's model holds beside ours (read from both models, not from our
    arguments), and a warning for each that differs."""
    c = ours.config
    rpn_t = inspect.signature(assign_rpn_targets).parameters
    roi_t = inspect.signature(sample_roi_targets).parameters
    prop = ProposalConfig()
    rpn, heads, tr = tv.rpn, tv.roi_heads, tv.transform
    n_ours = sum(p.data.size for p in ours.parameters())
    n_tv = sum(p.numel() for p in tv.parameters())
    rows = [
        ("input size min / max", (128, 128), (tr.min_size[0], tr.max_size)),
        ("normalisation", "x - 0.5", f"(x - {tr.image_mean[0]}) / {tr.image_std[0]}"),
        ("anchor sizes", tuple(c.anchor_sizes), tuple(rpn.anchor_generator.sizes[0])),
        ("aspect ratios", tuple(c.aspect_ratios), tuple(rpn.anchor_generator.aspect_ratios[0])),
        ("RPN pre / post NMS, train", (c.rpn_pre_nms_train, c.rpn_post_nms_train),
         (rpn._pre_nms_top_n["training"], rpn._post_nms_top_n["training"])),
        ("RPN pre / post NMS, test", (c.rpn_pre_nms_test, c.rpn_post_nms_test),
         (rpn._pre_nms_top_n["testing"], rpn._post_nms_top_n["testing"])),
        ("RPN NMS / min size / score", (c.rpn_nms_thresh, prop.min_size, prop.score_thresh),
         (rpn.nms_thresh, rpn.min_size, rpn.score_thresh)),
        ("RPN fg / bg IoU", (rpn_t["fg_iou_thresh"].default, rpn_t["bg_iou_thresh"].default),
         (rpn.proposal_matcher.high_threshold, rpn.proposal_matcher.low_threshold)),
        ("RPN anchors per image / positive fraction", (c.rpn_batch_size, c.rpn_positive_fraction),
         (rpn.fg_bg_sampler.batch_size_per_image, rpn.fg_bg_sampler.positive_fraction)),
        ("RPN box coder weights", tuple(ours.rpn_coder.weights), tuple(rpn.box_coder.weights)),
        ("RoIs per image / positive fraction", (c.rois_per_image, c.positive_fraction),
         (heads.fg_bg_sampler.batch_size_per_image, heads.fg_bg_sampler.positive_fraction)),
        ("RoI fg / bg IoU", (roi_t["fg_iou_thresh"].default, roi_t["fg_iou_thresh"].default),
         (heads.proposal_matcher.high_threshold, heads.proposal_matcher.low_threshold)),
        ("box coder weights", tuple(ours.box_coder.weights), tuple(heads.box_coder.weights)),
        ("score / NMS / detections per image", (c.score_thresh, c.nms_thresh, c.detections_per_img),
         (heads.score_thresh, heads.nms_thresh, heads.detections_per_img)),
        ("box pooler", repr(ours.pooler), repr(heads.box_roi_pool).replace("\n", " ")),
    ]  # fmt: skip
    if heads.has_mask():
        rows.append(("mask pooler", repr(ours.mask_pooler), repr(heads.mask_roi_pool)))
    rows.append(("parameters", n_ours, n_tv))
    print(f"\n{kind}: the values each model uses\n")
    print("| setting | ours | torchvision |\n|---|---|---|")
    for name, a, b in rows:
        same = isinstance(a, str) or np.allclose(np.asarray(a, float), np.asarray(b, float))
        print(f"| {name} | {a} | {b}{'' if same else ' **(differs)**'} |")


def tv_inputs(torch, image, target):
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
    t = {"boxes": torch.from_numpy(target["boxes"]).float(),
         "labels": torch.from_numpy(target["labels"]).long(),
         "masks": torch.from_numpy(target["masks"].astype(np.uint8))}  # fmt: skip
    return x, t


def fresh_torchvision(torch, kind: str):
    """torchvision's detector with the initial weights of ours (:func:`fresh_ours`)."""
    model = build_torchvision(torch, kind, MODELS[kind][1]())
    copy_weights(torch, fresh_ours(kind), model)
    return model


def time_torchvision(torch, kind, train_batches, test_images, warmup):
    model = fresh_torchvision(torch, kind)
    rows = defaultdict(int)
    heads = model.roi_heads
    hooks = [heads.box_head.register_forward_pre_hook(
        lambda m, a: rows.__setitem__("box pooler", rows["box pooler"] + len(a[0])))]  # fmt: skip
    if heads.has_mask():
        hooks.append(heads.mask_head.register_forward_pre_hook(
            lambda m, a: rows.__setitem__("mask pooler", rows["mask pooler"] + len(a[0]))))  # fmt: skip
    batches = [[tv_inputs(torch, im, t) for im, t in zip(*b, strict=True)] for b in train_batches]
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    model.train()
    train, counts = [], []
    for i, batch in enumerate(batches):
        images = [x for x, _ in batch]
        targets = [t for _, t in batch]
        rows.clear()
        start = time.perf_counter()
        opt.zero_grad()
        loss_dict = model(images, targets)
        sum(loss_dict.values()).backward()
        opt.step()
        if i >= warmup:
            train.append(time.perf_counter() - start)
            counts.append(dict(rows))
    for h in hooks:
        h.remove()
    model = fresh_torchvision(torch, kind).eval()  # the test: the same weights as ours
    test, outputs = [], []
    with torch.no_grad():
        for i, image in enumerate(test_images):
            x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float() / 255.0
            start = time.perf_counter()
            out = model([x])[0]
            if i >= warmup:
                test.append(time.perf_counter() - start)
            outputs.append({k: v.numpy() for k, v in out.items()})
    mean_rows = {k: statistics.mean(r.get(k, 0) for r in counts) for k in counts[0]}
    return train, test, model, mean_rows, outputs


def compare_outputs(ours: list[dict], theirs: list[dict]) -> str:
    """How far the two test outputs are apart (same weights; near-ties may be ordered differently,
    so each of our detections is matched to the nearest of torchvision's with the same label)."""
    same, gaps, score_gaps = 0, [], []
    for a, b in zip(ours, theirs, strict=True):
        if len(a["boxes"]) != len(b["boxes"]):
            continue
        same += 1
        if len(a["boxes"]):
            d = np.abs(a["boxes"][:, None] - b["boxes"][None]).max(axis=2)
            d[a["labels"][:, None] != b["labels"][None]] = np.inf
            gaps.append(d.min(axis=1).max())
            score_gaps.append(np.abs(np.sort(a["scores"]) - np.sort(b["scores"])).max())
    text = f"same number of detections on {same} of {len(ours)} test images"
    if gaps:
        text += (f"; there, each box within {max(gaps):.2g} px of one of the other side's, sorted "
                 f"scores within {max(score_gaps):.2g}")  # fmt: skip
    return text


# ---------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed calls per figure")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before them")
    parser.add_argument("--profile", action="store_true", help="where our training step goes")
    parser.add_argument("--threads", type=int, default=THREADS, help="per library (default 2)")
    parser.add_argument("--trained", action="store_true",
                        help="both sides start from the shipped weights (realistic RoI and "
                             "detection counts) instead of the seed-0 initialisation")  # fmt: skip
    args = parser.parse_args()
    global TRAINED
    TRAINED = args.trained
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be >= 1")
    print(limit_blas_threads(args.threads))
    try:
        import torch
        import torchvision

        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, "
              f"torch.set_num_threads({args.threads}): {torch.get_num_threads()} threads")  # fmt: skip
    except ImportError:
        torch = None
        print("torch / torchvision not installed: timing our models only (run with the parity "
              "environment, ../parity/bin/python, for the comparison)")  # fmt: skip
    print(f"NumPy {np.__version__}; {os.cpu_count()} CPUs; {load_avg()} at start")
    if os.getloadavg()[0] > 0.5:
        print("WARNING: the machine is busy (load above). Thread pools that spin while they wait "
              "(OpenBLAS, OpenMP) lose badly when other processes hold the cores: expect slow, "
              "noisy figures at 2 threads, torch's most; --threads 1 gives the one-core cost.")  # fmt: skip
    n = args.warmup + args.steps
    train_data = ShapesDataset("train", size=BATCH * n)
    pairs = [[train_data[BATCH * i + j] for j in range(BATCH)] for i in range(n)]
    train_batches = [([im for im, _ in p], [t for _, t in p]) for p in pairs]
    eval_data = ShapesDataset("eval", size=n)
    test_images = [eval_data[i][0] for i in range(n)]
    print(f"{args.steps} timed calls after {args.warmup} warm-up calls; training batches of "
          f"{BATCH} images 128 x 128 (train samples 0..{BATCH * n - 1}), test images: eval "
          f"samples 0..{n - 1}")  # fmt: skip

    results, watches = [], {}
    for kind in MODELS:
        train, test, watch, rows, outs = time_ours(kind, train_batches, test_images, args.warmup)
        watches[kind] = watch
        counts = [f"ours: {rows['box pooler'] / BATCH:.0f} box RoIs"]
        if "mask pooler" in rows:
            counts[0] += f", {rows['mask pooler'] / BATCH:.1f} mask RoIs"
        dets = statistics.mean(len(o["boxes"]) for o in outs)
        counts[0] += f" per image per training step; {dets:.1f} detections per test image"
        tv_train = tv_test = None
        if torch is not None:
            tv_train, tv_test, tv, tv_rows, tv_outs = time_torchvision(
                torch, kind, train_batches, test_images, args.warmup
            )
            check_config(kind, fresh_ours(kind), tv)
            tv_dets = statistics.mean(len(o["boxes"]) for o in tv_outs)
            line = f"torchvision: {tv_rows['box pooler'] / BATCH:.0f} box RoIs"
            if "mask pooler" in tv_rows:
                line += f", {tv_rows['mask pooler'] / BATCH:.1f} mask RoIs"
            counts.append(line + f" per image per training step; {tv_dets:.1f} detections per "
                          "test image")  # fmt: skip
        state = "shipped weights" if TRAINED else "untrained models"
        print(f"\n{kind}, mean work per call ({state}):")
        if torch is not None:
            counts.append("test outputs: " + compare_outputs(outs, tv_outs))
        print("\n".join("  " + c for c in counts))
        results.append((f"{kind} training step (2 images)", train, tv_train))
        results.append((f"{kind} test, per image", test, tv_test))

    print(f"\n{load_avg()} at the end\n")
    print(f"Median of {args.steps} calls, {args.threads} thread(s) each side; ratio below 1: we "
          "are faster.\n")  # fmt: skip
    print("| measurement | ours ms | torchvision ms | ours / torchvision |\n|---|---|---|---|")
    for name, ours, theirs in results:
        if theirs is None:
            print(f"| {name} | {median_ms(ours):.1f} | - | - |")
        else:
            ratio = median_ms(ours) / median_ms(theirs)
            print(f"| {name} | {median_ms(ours):.1f} | {median_ms(theirs):.1f} | {ratio:.2f} |")

    if args.profile:
        for kind, watch in watches.items():
            print_stage_breakdown(kind, watch)
        for kind in MODELS:
            cprofile_ours(kind, train_batches, args.warmup)


if __name__ == "__main__":
    main()
