"""Training R-CNN, in the paper's three separate stages (the complexity Fast R-CNN later removes):

1. **fine-tune the CNN** as a ``K + 1``-way classifier on warped proposals: IoU >= 0.5 with an object
   is that object's class, everything else background; mini-batches a quarter foreground;
2. **one linear SVM per class** on the features of the CNN's last hidden layer: positives are the
   ground-truth boxes only, negatives the proposals with IoU < 0.3 with every object of the class,
   hard negatives mined;
3. **ridge box regression** per class from the same features, on proposals with IoU > 0.6.

Proposals are computed once per training image (selective search) and kept in memory as crops.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..boxes import box_iou
from ..datasets.shapes import ShapesDataset
from ..evaluation import EvaluationResult, evaluate_detections
from ..heads.svm import SVMHead, train_svm_with_hard_negatives
from ..models.rcnn import RCNN, RCNNConfig
from ..nn import Adam, softmax_cross_entropy
from .loop import run_training

__all__ = ["RegionSet", "collect_regions", "train_rcnn", "evaluate_model"]


@dataclass
class RegionSet:
    """Every training region (proposals and ground truth) of every training image; ``R`` regions."""

    crops: np.ndarray  # (R, 3, S, S) float32 network inputs
    boxes: np.ndarray  # (R, 4) the region's box
    labels: np.ndarray  # (R,) fine-tuning class: best object's class if IoU >= 0.5, else 0
    is_gt: np.ndarray  # (R,) bool: the region is a ground-truth box
    iou_per_class: np.ndarray  # (R, K) best IoU with an object of each class
    best_gt_box: np.ndarray  # (R, 4) the object the region overlaps most
    best_iou: np.ndarray  # (R,)
    best_label: np.ndarray  # (R,) that object's class


def collect_regions(model: RCNN, dataset: ShapesDataset, num_images: int) -> RegionSet:
    """Run selective search once per image and warp every proposal and ground-truth box."""
    K = model.config.num_classes
    parts: dict[str, list] = {f: [] for f in RegionSet.__dataclass_fields__}
    for i in range(num_images):
        image, target = dataset[i]
        gt, gt_labels = target["boxes"], target["labels"]
        proposals = model.propose(image)
        boxes = np.concatenate([proposals, gt]).astype(np.float32)
        iou = box_iou(boxes, gt) if len(gt) else np.zeros((len(boxes), 0), np.float32)  # (R, G)
        best = iou.argmax(axis=1) if len(gt) else np.zeros(len(boxes), np.int64)
        best_iou = iou.max(axis=1) if len(gt) else np.zeros(len(boxes), np.float32)
        best_label = gt_labels[best] if len(gt) else np.zeros(len(boxes), np.int64)
        per_class = np.zeros((len(boxes), K), np.float32)
        for c in range(1, K + 1):
            if np.any(gt_labels == c):
                per_class[:, c - 1] = iou[:, gt_labels == c].max(axis=1)
        parts["crops"].append(model.warp(image, boxes))
        parts["boxes"].append(boxes)
        parts["labels"].append(np.where(best_iou >= 0.5, best_label, 0))
        parts["is_gt"].append(np.arange(len(boxes)) >= len(proposals))
        parts["iou_per_class"].append(per_class)
        parts["best_gt_box"].append(gt[best] if len(gt) else boxes)
        parts["best_iou"].append(best_iou)
        parts["best_label"].append(best_label)
    return RegionSet(**{k: np.concatenate(v) for k, v in parts.items()})


def finetune(model: RCNN, regions: RegionSet, steps: int, rng: np.random.Generator, batch: int = 128,
             lr: float = 2e-3, progress: bool = True) -> list[dict[str, float]]:  # fmt: skip
    """Stage 1: train the CNN as a classifier on warped regions, a quarter foreground per batch."""
    fg = np.flatnonzero(regions.labels > 0)
    bg = np.flatnonzero(regions.labels == 0)
    n_fg = min(len(fg), batch // 4)
    n_bg = min(len(bg), batch - n_fg)  # few images may have fewer background regions than that
    opt = Adam(model.network.parameters(), lr=lr)

    def step(_):
        idx = np.concatenate(
            [rng.choice(fg, n_fg, replace=False), rng.choice(bg, n_bg, replace=False)]
        )
        opt.zero_grad()
        logits = model.network(regions.crops[idx])
        loss, dlogits = softmax_cross_entropy(logits, regions.labels[idx])
        model.network.backward(dlogits)
        opt.step()
        return {"loss": loss}

    return run_training(step, steps, description="R-CNN fine-tuning", progress=progress)


def train_svms(
    model: RCNN, features: np.ndarray, regions: RegionSet, rng: np.random.Generator
) -> list:
    """Stage 2: per class, ground truth against proposals with IoU < 0.3, hard negatives mined."""
    svms, caches = [], []
    for c in range(1, model.config.num_classes + 1):
        positive = regions.is_gt & (regions.best_label == c) & (regions.best_iou >= 0.999)
        negative = ~regions.is_gt & (regions.iou_per_class[:, c - 1] < 0.3)
        svm, sizes = train_svm_with_hard_negatives(
            features[positive], features[negative], rng, c=model.config.svm_c
        )
        svms.append(svm)
        caches.append(sizes)
    model.svm = SVMHead(svms)
    return caches


def train_regressor(
    model: RCNN, features: np.ndarray, regions: RegionSet, lam: float = 10.0
) -> int:
    """Stage 3: ridge regression from features to the deltas of proposals with IoU > 0.6."""
    pairs = ~regions.is_gt & (regions.best_iou > 0.6)
    model.regressor.lam = lam
    model.regressor.fit(
        features[pairs], regions.boxes[pairs], regions.best_gt_box[pairs], regions.best_label[pairs]
    )
    return int(pairs.sum())


def train_rcnn(config: RCNNConfig | None = None, num_images: int = 400, steps: int = 1500, seed: int = 0,
               progress: bool = True) -> tuple[RCNN, dict]:  # fmt: skip
    """All three stages from scratch on ``num_images`` training images; returns the model and a
    report of the times and sizes of each stage."""
    rng = np.random.default_rng(seed)
    model = RCNN(config or RCNNConfig(), rng=rng)
    report: dict = {"seed": seed, "num_images": num_images, "steps": steps}
    t0 = time.perf_counter()
    regions = collect_regions(model, ShapesDataset("train", size=num_images), num_images)
    t1 = time.perf_counter()
    history = finetune(model, regions, steps, rng, progress=progress)
    t2 = time.perf_counter()
    features = model.features(regions.crops)
    caches = train_svms(model, features, regions, rng)
    t3 = time.perf_counter()
    report["regression_pairs"] = train_regressor(model, features, regions)
    t4 = time.perf_counter()
    report.update(
        regions=len(regions.labels),
        foreground=int((regions.labels > 0).sum()),
        final_loss=float(np.mean([h["loss"] for h in history[-50:]])),
        svm_negative_cache=caches,
        seconds={
            "proposals+warping": t1 - t0,
            "fine-tuning": t2 - t1,
            "svms": t3 - t2,
            "regression": t4 - t3,
        },
    )
    return model, report


def evaluate_model(model, num_images: int = 200) -> tuple[EvaluationResult, dict[str, float]]:
    """COCO-style box AP on the evaluation images and the mean time per image of each step."""
    dataset = ShapesDataset("eval", size=num_images)
    predictions, targets, timings = [], [], []
    for i in range(num_images):
        image, target = dataset[i]
        predictions.append(model.predict(image))
        targets.append(target)
        timings.append(model.timings)
    mean_times = {k: float(np.mean([t[k] for t in timings])) for k in timings[0]}
    return evaluate_detections(predictions, targets, iou_type="bbox"), mean_times
