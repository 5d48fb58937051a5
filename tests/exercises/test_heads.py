"""The Fast R-CNN loss exercise's check catches the typical mistakes, each with its hint."""

import numpy as np
import pytest

from rcnn_from_scratch import exercises


def loss(cls_score, bbox_pred, labels, box_targets, beta=1.0 / 9, mistake=None):
    z = np.asarray(cls_score, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    K = len(labels)
    if K == 0 and mistake != "nan when empty":
        return 0.0, 0.0
    if mistake == "naive softmax":
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        ce = -np.log(p[np.arange(K), labels])
    else:
        m = z.max(1, keepdims=True)
        log_p = z - m - np.log(np.exp(z - m).sum(1, keepdims=True))
        ce = -log_p[np.arange(K), labels]
    cls = ce.sum() if mistake == "summed classes" else ce.mean()
    pred = np.asarray(bbox_pred, dtype=np.float64).reshape(K, -1, 4)
    fg = np.arange(K) if mistake == "background boxes" else np.flatnonzero(labels > 0)
    column = {"class minus one": labels[fg] - 1, "first block": 0 * labels[fg]}.get(
        mistake, labels[fg]
    )
    x = pred[fg, column] - np.asarray(box_targets, dtype=np.float64)[fg]
    b = 1.0 / 9 if mistake == "fixed beta" else beta
    ax = np.abs(x)
    terms = {
        "l2": 0.5 * x * x,
        "l1": ax,
        "quadratic everywhere": 0.5 * x * x / b,
    }.get(mistake, np.where(ax < b, 0.5 * x * x / b, ax - 0.5 * b))
    box = terms.sum() / {"per foreground": max(len(fg), 1), "mean over coordinates": 4 * K}.get(
        mistake, K
    )
    return float(cls), float(box)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the mistakes overflow and divide by 0
@pytest.mark.parametrize(
    "mistake, hint",
    [
        ("background boxes", "the class-0 column block is never used"),
        ("l2", "0.5 x^2 / beta"),
        ("l1", "0.5 x^2 / beta"),
        ("quadratic everywhere", "|x| - 0.5 beta beyond"),
        ("class minus one", "TRUE class u"),
        ("first block", "TRUE class u"),
        ("summed classes", "averaged over the K RoIs"),
        ("per foreground", "not by the number of foreground RoIs"),
        ("mean over coordinates", "you took the mean over the coordinates too"),
        ("naive softmax", "log-sum-exp"),
        ("fixed beta", "use the beta you are given"),
        ("nan when empty", "the mean of nothing is NaN"),
    ],
)
def test_fast_rcnn_loss_mistakes_fail_with_their_hint(mistake, hint):
    with np.errstate(all="ignore"):
        result = exercises.check("fast_rcnn_loss", lambda *a, **k: loss(*a, **k, mistake=mistake))
    assert not result and hint in result.hint, str(result)


def test_a_correct_student_version_passes():
    assert exercises.check("fast_rcnn_loss", loss)


def test_the_packages_loss_with_its_gradients_passes_unchanged():
    from rcnn_from_scratch.heads.box_head import fast_rcnn_loss

    assert exercises.check("fast_rcnn_loss", fast_rcnn_loss)


def test_a_single_number_is_reported_as_the_wrong_type():
    result = exercises.check("fast_rcnn_loss", lambda *a, **k: sum(loss(*a, **k)))
    assert not result and result.failure.kind == "shape"
    assert "must return (classification, box_regression)" in result.hint
