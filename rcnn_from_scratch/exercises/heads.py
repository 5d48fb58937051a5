"""Exercise on the box head's training: Fast R-CNN's multi-task loss."""

from __future__ import annotations

import math

import numpy as np

from ..heads.box_head import fast_rcnn_loss
from .checker import Case, Exercise

__all__ = ["EXERCISES"]


def _two_losses(result):
    """Compare the two loss terms: the package's :class:`FastRCNNLoss` (or any tuple) gives its
    first two fields, ``(classification, box_regression)``."""
    if isinstance(result, (tuple, list)) and len(result) >= 2:
        return (result[0], result[1])
    return result


def _loss_cases():
    beta = 1.0 / 9
    smooth = (
        "smooth L1 with beta: 0.5 x^2 / beta where |x| < beta, |x| - 0.5 beta beyond (beta is "
        "1/9 here, as in torchvision)"
    )
    column = (
        "use the 4 deltas predicted for the RoI's TRUE class u: columns 4u .. 4u + 3 of "
        "bbox_pred (block 0 is the background's)"
    )
    bg = np.array([[0.0, 0.0]]), np.ones((1, 8)), np.array([0]), np.full((1, 4), 0.5)
    fg = (
        np.array([[0.0, 2.0]]),
        np.array([[9, 9, 9, 9, 0.05, 0, 0, 0]]),
        np.array([1]),
        np.zeros((1, 4)),
    )
    far = fg[0], np.array([[0, 0, 0, 0, 2.0, 0, 0, 0]]), fg[2], fg[3]
    three = (
        np.array([[0.0, 1.0, 2.0]]),
        np.array([[7, 7, 7, 7, 3, 3, 3, 3, 0.1, 0, 0, 0]]),
        np.array([2]),
        np.zeros((1, 4)),
    )
    k4 = (
        np.zeros((4, 2)),
        np.tile([0, 0, 0, 0, 0.1, 0.1, 0, 0], (4, 1)),
        np.array([1, 0, 0, 0]),
        np.zeros((4, 4)),
    )
    x = 0.1
    fg_cls = math.log(1 + math.exp(-2.0))  # -log softmax([0, 2])[1]
    per_fg = 2 * 0.5 * x * x / beta
    return [
        Case("one background RoI: log 2 for the class, no box term", bg,
             hint="[u >= 1]: a background RoI (label 0) has no box term, whatever bbox_pred "
                  "holds; the class-0 column block is never used"),
        Case("one foreground RoI with a small box error (|x| < beta)", fg, hint=smooth,
             also=(((fg_cls, 4 * (9 - 0.5 * beta)), column),
                   ((fg_cls, 0.5 * 0.05**2 / beta / 4),
                    "sum over the 4 coordinates, then divide by K; you took the mean over the "
                    "coordinates too"))),
        Case("a large box error (|x| >= beta) costs |x| - 0.5 beta", far, hint=smooth),
        Case("three classes, label 2: the deltas of class 2 are used", three, hint=column),
        Case("the classification loss is the mean over the K RoIs",
             (np.array([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]]), np.zeros((3, 8)), np.array([1, 0, 1]),
              np.zeros((3, 4))),
             hint="cross-entropy -log softmax(z)[u], averaged over the K RoIs (not summed)"),
        Case("the box loss is summed over the coordinates and divided by K (all RoIs)", k4,
             hint="sum the smooth L1 over the 4 coordinates of the foreground RoIs and divide by "
                  "K, the number of sampled RoIs (background included), as torchvision does",
             also=(((math.log(2), per_fg), "divide the box loss by K (all sampled RoIs), not by "
                                           "the number of foreground RoIs"),
                   ((math.log(2), per_fg / 16), "sum over the 4 coordinates, then divide by K; "
                                                "you took the mean over the coordinates too"))),
        Case("huge logits: no overflow", (np.array([[1000.0, 0.0]]), np.zeros((1, 8)),
                                          np.array([0]), np.zeros((1, 4))),
             hint="subtract each row's maximum logit before exp (log-sum-exp): exp(1000) "
                  "overflows"),
        Case("the beta argument is used", fg, {"beta": 1.0},
             hint="use the beta you are given (1.0 here, the paper's), not a fixed 1/9"),
        Case("no RoIs: both losses 0, not NaN", (np.zeros((0, 2)), np.zeros((0, 8)),
                                                 np.zeros(0, np.int64), np.zeros((0, 4))),
             hint="with K = 0 return 0.0 for both terms: the mean of nothing is NaN", shape_rule=True),
    ]  # fmt: skip


def _loss_random(rng):
    K, classes = int(rng.integers(1, 7)), int(rng.integers(2, 5))
    return Case(
        "random RoIs",
        (rng.normal(0, 2, (K, classes)), rng.normal(0, 0.3, (K, 4 * classes)),
         rng.integers(0, classes, K), rng.normal(0, 0.3, (K, 4))),
        {"beta": float(rng.choice([1.0 / 9, 1.0, 0.5]))},
        hint="mean cross-entropy + (sum of smooth L1 over the foreground's true-class deltas) / K",
    )  # fmt: skip


EXERCISES = [
    Exercise(
        "fast_rcnn_loss",
        "fast_rcnn_loss(cls_score, bbox_pred, labels, box_targets, beta=1/9) -> "
        "(classification, box_regression)",
        "Fast R-CNN's multi-task loss over K sampled RoIs, L = L_cls(p, u) + [u >= 1] L_loc(t^u, v)"
        ": cls_score (K, C + 1) logits (background first), bbox_pred (K, 4 (C + 1)) deltas, "
        "labels (K,) with 0 for background, box_targets (K, 4). classification = mean over the "
        "RoIs of -log softmax(cls_score)[u]; box_regression = sum over the foreground RoIs and "
        "their 4 coordinates of smooth_l1(bbox_pred[k, 4u:4u + 4] - box_targets[k]), divided by "
        "K. Return the two floats (the package's version also returns the gradients).",
        "log_p = z - z.max(1, keepdims=True); log_p -= log(exp(log_p).sum(1, keepdims=True)); "
        "pred = bbox_pred.reshape(K, -1, 4)[fg, labels[fg]]",
        fast_rcnn_loss, _loss_cases, _loss_random, prepare=_two_losses, atol=1e-6,
        parameters=("cls_score", "bbox_pred", "labels", "box_targets", "beta"),
    ),
]  # fmt: skip
