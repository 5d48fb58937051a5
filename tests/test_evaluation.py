"""COCO-style AP: cases worked by hand, properties, and parity with pycocotools' COCOeval."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rcnn_from_scratch.boxes import box_iou
from rcnn_from_scratch.datasets.shapes import make_shapes_sample
from rcnn_from_scratch.evaluation import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    evaluate_detections,
    format_results,
    mask_iou,
    match_detections,
    match_detections_reference,
)

GT_BOX = [0.0, 0.0, 10.0, 10.0]
MISS = [50.0, 50.0, 60.0, 60.0]  # overlaps nothing


def target(boxes, labels):
    return {"boxes": np.array(boxes, np.float32).reshape(-1, 4), "labels": np.array(labels)}


def pred(boxes, labels, scores):
    out = target(boxes, labels)
    out["scores"] = np.array(scores, np.float32)
    return out


@pytest.fixture(scope="module")
def shapes():
    return [make_shapes_sample(10**9 + s) for s in range(12)]


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_perfect_predictions_give_ap_one(shapes, iou_type):
    targets = [t for _, t in shapes]
    preds = [dict(t, scores=np.linspace(1, 0.5, len(t["labels"]))) for t in targets]
    r = evaluate_detections(preds, targets, iou_type=iou_type)
    assert np.allclose(r.ap, 1) and r.map == r.map50 == r.map75 == 1.0


def test_a_false_positive_ranked_above_the_only_true_positive_halves_ap():
    # ranks: FP (precision 0, recall 0), TP (1/2, 1); the envelope makes both 1/2, so AP = 1/2
    r = evaluate_detections([pred([MISS, GT_BOX], [1, 1], [0.9, 0.8])], [target([GT_BOX], [1])])
    assert r.ap[0] == pytest.approx(0.5) and r.map50 == pytest.approx(0.5)


def test_interleaved_false_positives_give_the_envelope_worked_by_hand():
    # 3 gts; ranked TP FP TP FP TP: recall 1/3 1/3 2/3 2/3 1, precision 1 1/2 2/3 1/2 3/5,
    # envelope 1 2/3 2/3 3/5 3/5. Recall points 0..0.33 (34) read 1, 0.34..0.66 (33) read 2/3,
    # 0.67..1 (34) read 3/5.
    gts = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]
    boxes = [gts[0], MISS, gts[1], [70, 70, 80, 80], gts[2]]
    r = evaluate_detections([pred(boxes, [2] * 5, [5, 4, 3, 2, 1])], [target(gts, [2] * 3)])
    expected = (34 * 1 + 33 * 2 / 3 + 34 * 3 / 5) / 101
    assert r.ap50[1] == pytest.approx(expected, abs=1e-12)
    assert np.isnan(r.ap50[0]) and r.map50 == pytest.approx(expected)


def test_a_box_of_iou_072_counts_at_five_of_ten_thresholds():
    r = evaluate_detections([pred([[0, 0, 10, 7.2]], [3], [1.0])], [target([GT_BOX], [3])])
    assert (r.ap50[2], r.ap75[2], r.ap[2]) == pytest.approx((1.0, 0.0, 0.5))


def test_no_predictions_give_zero_and_no_images_give_nan():
    empty = pred(np.zeros((0, 4)), [], [])
    r = evaluate_detections([empty, empty], [target([GT_BOX], [1]), target([], [])])
    assert r.ap[0] == 0 and np.isnan(r.ap[1:]).all() and r.map == 0
    assert np.isnan(evaluate_detections([], []).map)


def test_a_class_absent_from_the_ground_truth_is_left_out_of_the_mean():
    preds = [pred([GT_BOX, GT_BOX, MISS], [1, 3, 3], [0.9, 0.8, 0.7])]
    r = evaluate_detections(preds, [target([GT_BOX, MISS], [1, 2])])
    assert r.ap[0] == 1 and r.ap[1] == 0 and np.isnan(r.ap[2])
    assert r.map == pytest.approx(0.5)  # (1 + 0) / 2, not / 3
    assert (r.precision[..., 2] == -1).all()  # COCOeval's marker


def test_a_ground_truth_is_matched_once_and_to_the_best_free_iou():
    iou = np.array([[0.6, 0.8], [0.55, 0.9], [0.0, 0.97]])
    m = match_detections(iou, [0.5, 0.6, 0.95])
    # det 0 takes gt 1 (best); det 1 must fall back to gt 0 (0.55), possible only at 0.5;
    # det 2 would like gt 1, which is taken, and gt 0 is too far
    assert m.tolist() == [[1, 0, -1], [1, -1, -1], [-1, -1, 1]]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 7), st.integers(0, 5))
def test_vectorised_matching_equals_the_three_loops_of_cocoeval(seed, d, g):
    rng = np.random.default_rng(seed)
    iou = np.round(rng.uniform(0, 1, (d, g)), 1)  # coarse values: ties and exact thresholds occur
    got = match_detections(iou, IOU_THRESHOLDS)
    assert np.array_equal(got, match_detections_reference(iou, IOU_THRESHOLDS))


def test_only_the_best_max_dets_per_image_and_class_count():
    boxes = [MISS] * 3 + [GT_BOX]
    preds = [pred(boxes, [1] * 4, [0.9, 0.8, 0.7, 0.1])]
    targets = [target([GT_BOX], [1])]
    assert evaluate_detections(preds, targets, max_dets=3).ap[0] == 0
    assert evaluate_detections(preds, targets, max_dets=4).ap[0] == pytest.approx(0.25)


def test_mask_iou_of_filled_rectangles_equals_box_iou():
    rng = np.random.default_rng(0)
    corners = np.sort(rng.integers(0, 30, (2, 7, 2, 2)), axis=-1)  # (2 sets, 7, x or y, lo hi)
    sets = []
    for c in corners:
        boxes = np.stack([c[:, 0, 0], c[:, 1, 0], c[:, 0, 1] + 1, c[:, 1, 1] + 1], 1)
        yy, xx = np.mgrid[:30, :30]
        m = (xx >= boxes[:, 0, None, None]) & (xx < boxes[:, 2, None, None])
        m &= (yy >= boxes[:, 1, None, None]) & (yy < boxes[:, 3, None, None])
        sets.append((boxes.astype(np.float64), m))
    got = mask_iou(sets[0][1], sets[1][1])
    np.testing.assert_allclose(got, box_iou(sets[0][0], sets[1][0]), rtol=1e-12)
    assert mask_iou(np.zeros((2, 4, 4), bool), np.zeros((0, 4, 4), bool)).shape == (2, 0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_ap_ignores_image_order_and_monotone_rescoring(seed):
    preds, targets = random_detections(np.random.default_rng(seed), num_images=5, with_masks=False)
    r = evaluate_detections(preds, targets)
    assert ((r.precision >= 0) & (r.precision <= 1) | (r.precision == -1)).all()
    order = np.random.default_rng(seed + 1).permutation(len(preds))
    shuffled = evaluate_detections([preds[i] for i in order], [targets[i] for i in order])
    rescored = [dict(p, scores=np.exp(3 * p["scores"])) for p in preds]
    np.testing.assert_allclose(shuffled.precision, r.precision)
    np.testing.assert_allclose(evaluate_detections(rescored, targets).precision, r.precision)


def test_the_table_names_every_class_and_the_mean(shapes):
    targets = [t for _, t in shapes]
    preds = [dict(t, scores=np.ones(len(t["labels"]))) for t in targets]
    text = format_results(evaluate_detections(preds, targets), evaluate_detections(preds, targets))
    for word in ("box AP", "circle", "square", "triangle", "mean", "1.000"):
        assert word in text
    assert evaluate_detections(preds, targets).as_dict()["AP/circle"] == 1.0


def test_bad_input_raises_value_error_naming_the_argument():
    t = target([GT_BOX], [1])
    with pytest.raises(ValueError, match="one entry per image"):
        evaluate_detections([], [t])
    with pytest.raises(ValueError, match="labels"):
        evaluate_detections([pred([GT_BOX], [4], [1.0])], [t])
    with pytest.raises(ValueError, match="masks"):
        evaluate_detections([pred([GT_BOX], [1], [1.0])], [t], iou_type="segm")
    with pytest.raises(ValueError, match="scores"):
        evaluate_detections([target([GT_BOX], [1])], [t])
    with pytest.raises(ValueError, match="iou_type"):
        evaluate_detections([], [], iou_type="keypoints")
    with pytest.raises(ValueError, match="bool"):
        mask_iou(np.zeros((1, 3, 3)), np.zeros((1, 3, 3), bool))


def test_recall_and_iou_thresholds_are_cocos():
    assert len(RECALL_THRESHOLDS) == 101 and len(IOU_THRESHOLDS) == 10
    assert IOU_THRESHOLDS[0] == 0.5 and abs(IOU_THRESHOLDS[5] - 0.75) < 1e-12


# ---- parity with pycocotools ------------------------------------------------------------------


def random_detections(rng, num_images, with_masks, size=128):
    """Ground truth from shapes images (or random boxes), detections perturbed from it plus noise."""
    preds, targets = [], []
    for _ in range(num_images):
        if with_masks:
            _, t = make_shapes_sample(int(rng.integers(10**9, 2 * 10**9)))
        else:
            xy = rng.uniform(0, size - 30, (int(rng.integers(0, 6)), 2))
            wh = rng.uniform(4, 30, xy.shape)
            t = {"boxes": np.hstack([xy, xy + wh]), "labels": rng.integers(1, 4, len(xy))}
        boxes, labels, masks = [], [], []
        for g in range(len(t["labels"])):
            for _ in range(int(rng.integers(0, 4))):  # 0 to 3 guesses per object
                shift = rng.normal(0, 1.5, 4)
                boxes.append(np.clip(t["boxes"][g] + shift, 0, size))
                wrong = rng.random() < 0.15
                labels.append(int(rng.integers(1, 4)) if wrong else int(t["labels"][g]))
                if with_masks:
                    dy, dx = rng.integers(-2, 3, 2)
                    m = np.roll(t["masks"][g], (dy, dx), axis=(0, 1))
                    masks.append(m ^ (rng.random(m.shape) < 0.002))
        for _ in range(int(rng.integers(0, 4))):  # pure false positives
            x1, y1 = rng.uniform(0, size - 20, 2)
            boxes.append(np.array([x1, y1, x1 + rng.uniform(2, 20), y1 + rng.uniform(2, 20)]))
            labels.append(int(rng.integers(1, 4)))
            if with_masks:
                yy, xx = np.mgrid[:size, :size]
                b = boxes[-1]
                masks.append((xx >= b[0]) & (xx < b[2]) & (yy >= b[1]) & (yy < b[3]))
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
        p = {
            "boxes": boxes,
            "labels": np.asarray(labels, np.int64),
            "scores": rng.random(len(boxes)),
        }
        if with_masks:
            p["masks"] = np.asarray(masks, bool).reshape(-1, size, size)
        preds.append(p)
        targets.append(t)
    return preds, targets


def cocoeval_per_class(preds, targets, iou_type, max_dets=100, size=128):
    """Per-class (T, R, K) precision from pycocotools' COCOeval on the same data."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def ann(box, label, mask):
        x1, y1, x2, y2 = (float(v) for v in box)
        a = {"bbox": [x1, y1, x2 - x1, y2 - y1], "category_id": int(label), "iscrowd": 0}
        a["area"] = (x2 - x1) * (y2 - y1)
        if mask is not None:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle["counts"] = rle["counts"].decode("ascii")
            a["segmentation"], a["area"] = rle, float(mask.sum())
        return a

    images, gts, dts = [], [], []
    for n, (p, t) in enumerate(zip(preds, targets, strict=True)):
        images.append({"id": n + 1, "height": size, "width": size})
        for k in range(len(t["labels"])):
            m = t["masks"][k] if iou_type == "segm" else None
            gts.append(
                ann(t["boxes"][k], t["labels"][k], m) | {"id": len(gts) + 1, "image_id": n + 1}
            )
        for k in range(len(p["labels"])):
            m = p["masks"][k] if iou_type == "segm" else None
            a = ann(p["boxes"][k], p["labels"][k], m) | {"image_id": n + 1}
            if m is not None:
                del a["bbox"]  # else loadRes takes its bbox branch and recomputes the area
            dts.append(a | {"score": float(p["scores"][k])})
    gt = COCO()
    gt.dataset = {
        "images": images,
        "annotations": gts,
        "categories": [{"id": k, "name": str(k)} for k in (1, 2, 3)],
    }
    gt.createIndex()
    dt = gt.loadRes(dts) if dts else COCO()
    ev = COCOeval(gt, dt, iou_type)
    ev.params.maxDets = [max_dets]
    ev.evaluate()
    ev.accumulate()
    precision = ev.eval["precision"][:, :, :, 0, -1]  # (T, R, K), area "all", our maxDets
    return precision


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("seed", [0, 1])
def test_precision_and_ap_match_pycocotools(iou_type, seed):
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(seed)
    preds, targets = random_detections(rng, num_images=25, with_masks=iou_type == "segm")
    ours = evaluate_detections(preds, targets, iou_type=iou_type)
    theirs = cocoeval_per_class(preds, targets, iou_type)
    np.testing.assert_allclose(ours.precision, theirs, atol=1e-9)  # seen: <= 2.2e-16
    for k in range(3):  # per-class AP as COCOeval.summarize computes it
        s = theirs[:, :, k]
        expected = s[s > -1].mean() if (s > -1).any() else np.nan
        np.testing.assert_allclose(ours.ap[k], expected, atol=1e-3)
    s = theirs[0]
    assert ours.map50 == pytest.approx(s[s > -1].mean(), abs=1e-3)
    assert ours.map == pytest.approx(theirs[theirs > -1].mean(), abs=1e-3)


def test_max_dets_matches_pycocotools():
    pytest.importorskip("pycocotools")
    preds, targets = random_detections(np.random.default_rng(5), num_images=10, with_masks=False)
    ours = evaluate_detections(preds, targets, max_dets=2)
    np.testing.assert_allclose(
        ours.precision, cocoeval_per_class(preds, targets, "bbox", 2), atol=1e-3
    )
