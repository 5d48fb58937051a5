"""Training Fast R-CNN end to end: one loss, one backward through the head, RoI pooling and backbone.

Selective-search proposals do not change during training, so they are computed once per training
image and cached on disk under ``data/cache/`` (ignored by git, recomputed when missing).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..datasets.shapes import ShapesDataset
from ..evaluation import EvaluationResult, evaluate_detections
from ..models.fast_rcnn import FastRCNN, FastRCNNConfig
from ..nn import Adam
from ..nn.weights import WeightsError, load_weights, save_weights
from ..proposals.selective_search import selective_search
from .loop import run_training

__all__ = ["CACHE_DIR", "cached_proposals", "train_fast_rcnn", "evaluate_fast_rcnn"]

CACHE_DIR = Path(__file__).resolve().parents[2] / "data" / "cache"


def cached_proposals(
    dataset: ShapesDataset, mode: str = "fast", cache_dir: Path = CACHE_DIR
) -> list:
    """Selective-search boxes of every image of ``dataset``, from the cache or computed once.

    The cache file is named after the split, the number of images and the mode; a corrupt file is
    recomputed.
    """
    path = Path(cache_dir) / f"selective_search_{mode}_{dataset.split}_{len(dataset)}.npz"
    try:
        state, _ = load_weights(path)
        counts = state["counts"].astype(np.int64)
        return np.split(state["boxes"], np.cumsum(counts)[:-1])
    except WeightsError:
        pass
    boxes = [selective_search(image, mode=mode) for image, _ in dataset]
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = np.array([len(b) for b in boxes], np.int64)
    save_weights(path, {"boxes": np.concatenate(boxes), "counts": counts}, {"mode": mode})
    return boxes


def train_fast_rcnn(config: FastRCNNConfig | None = None, num_images: int = 400, steps: int = 2000,
                    images_per_step: int = 2, lr: float = 1e-3, seed: int = 0,
                    progress: bool = True) -> tuple[FastRCNN, dict]:  # fmt: skip
    """Train from scratch; ``images_per_step`` images (the paper: 2) per step, Adam. The report holds
    the times, the final losses and the loss ``history`` of every step."""
    rng = np.random.default_rng(seed)
    model = FastRCNN(config or FastRCNNConfig(), seed=rng)
    dataset = ShapesDataset("train", size=num_images)
    t0 = time.perf_counter()
    proposals = cached_proposals(dataset, model.config.proposal_mode)
    samples = [dataset[i] for i in range(num_images)]
    t1 = time.perf_counter()
    opt = Adam(model.parameters(), lr=lr)

    def step(_):
        pick = rng.choice(num_images, images_per_step, replace=False)
        opt.zero_grad()
        losses = model.loss([samples[i][0] for i in pick], [samples[i][1] for i in pick],
                            [proposals[i] for i in pick], rng)  # fmt: skip
        model.backward()
        opt.step()
        return losses

    history = run_training(step, steps, description="Fast R-CNN", progress=progress)
    t2 = time.perf_counter()
    last = history[-100:]
    report = {
        "seed": seed, "num_images": num_images, "steps": steps,
        "seconds": {"proposals (cached)": t1 - t0, "training": t2 - t1},
        "final_loss": {k: float(np.mean([h[k] for h in last])) for k in history[0]},
        "history": history,
    }  # fmt: skip
    return model, report


def evaluate_fast_rcnn(model: FastRCNN, num_images: int = 200) -> tuple[EvaluationResult, dict]:
    """Box AP on the evaluation images (proposals cached too), and the mean time per image of each
    stage with proposals timed on the first images."""
    dataset = ShapesDataset("eval", size=num_images)
    proposals = cached_proposals(dataset, model.config.proposal_mode)
    predictions, targets, timings = [], [], []
    for (image, target), props in zip(dataset, proposals, strict=True):
        predictions.append(model.detect(image, props))
        targets.append(target)
        timings.append(dict(model.timings))
    start = time.perf_counter()
    for image, _ in list(dataset)[:20]:
        model.propose(image)
    mean = {"proposals": (time.perf_counter() - start) / min(20, num_images)}
    mean.update({k: float(np.mean([t[k] for t in timings])) for k in timings[0]})
    return evaluate_detections(predictions, targets, iou_type="bbox"), mean
