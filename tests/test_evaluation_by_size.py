"""AP by object size and the RPN's recall by size: cases worked by hand, and parity with
pycocotools' COCOeval (area ranges on the ground truth's mask area; useCats=0 for proposals)."""

import numpy as np
import pytest

from rcnn_from_scratch.datasets.shapes import make_shapes_sample
from rcnn_from_scratch.evaluation import (
    AREA_RANGES,
    evaluate_by_size,
    evaluate_detections,
    match_detections,
    match_detections_with_ignore,
    proposal_recall,
)


def square(x, y, side, size=256):
    m = np.zeros((size, size), bool)
    m[y : y + side, x : x + side] = True
    return m


def scene():
    """One small (10 x 10) and one large (100 x 100) ground truth of class 1, on 256 x 256."""
    masks = np.stack([square(5, 5, 10), square(100, 100, 100)])
    boxes = np.array([[5, 5, 15, 15], [100, 100, 200, 200]], np.float32)
    return {"boxes": boxes, "labels": np.array([1, 1]), "masks": masks}


def test_cocos_area_ranges():
    assert AREA_RANGES["small"] == (0, 1024) and AREA_RANGES["medium"] == (1024, 9216)
    assert AREA_RANGES["large"] == (9216, 1e10) and AREA_RANGES["all"] == (0, 1e10)


def test_a_missed_small_object_costs_ap_small_only():
    t = scene()
    pred = {"boxes": t["boxes"][1:], "labels": np.array([1]), "scores": np.array([0.9])}
    by_size = evaluate_by_size([pred], [t])
    assert by_size["large"].map == pytest.approx(1.0)
    assert by_size["small"].map == 0.0
    assert np.isnan(by_size["medium"].map)  # no medium ground truth: no AP
    # over all sizes: recall reaches 0.5 at precision 1, so 51 of 101 recall points
    assert by_size["all"].map == pytest.approx(51 / 101)


def test_a_detection_of_an_object_of_another_size_is_neither_true_nor_false():
    t = scene()
    # the large object found first, then the small: for "small", the large hit is ignored
    pred = {"boxes": t["boxes"][::-1], "labels": np.array([1, 1]), "scores": np.array([0.9, 0.8])}
    assert evaluate_by_size([pred], [t])["small"].map == pytest.approx(1.0)
    # an unmatched large false positive outside "small" is ignored there, but counts for "large"
    fp = np.array([[0, 150, 120, 250]], np.float32)
    pred = {"boxes": np.vstack([fp, t["boxes"]]), "labels": np.array([1, 1, 1]),
            "scores": np.array([0.95, 0.9, 0.8])}  # fmt: skip
    by_size = evaluate_by_size([pred], [t])
    assert by_size["small"].map == pytest.approx(1.0)
    assert by_size["large"].ap50[0] == pytest.approx(0.5)  # precision 1/2 at its only recall


def test_sizes_use_the_mask_area_not_the_box_area():
    # a thin diagonal object: box 60 x 60 (3600 px, medium) but mask 60 px (small)
    mask = np.zeros((256, 256), bool)
    mask[np.arange(60) + 10, np.arange(60) + 10] = True
    t = {
        "boxes": np.array([[10, 10, 70, 70]], np.float32),
        "labels": np.array([1]),
        "masks": mask[None],
    }
    pred = {"boxes": t["boxes"], "labels": np.array([1]), "scores": np.array([1.0])}
    by_size = evaluate_by_size([pred], [t])
    assert by_size["small"].map == pytest.approx(1.0) and np.isnan(by_size["medium"].map)


def test_a_detection_prefers_a_kept_ground_truth_over_a_better_ignored_one():
    iou = np.array([[0.6, 0.9]])  # ground truth 1 is ignored
    m, ign = match_detections_with_ignore(iou, [False, True], [0.5, 0.7])
    assert m.tolist() == [[0], [1]] and ign.tolist() == [[False], [True]]
    rng = np.random.default_rng(0)
    for _ in range(20):  # nothing ignored: the plain matching
        iou = rng.random((6, 4)) * (rng.random((6, 4)) < 0.7)
        m, ign = match_detections_with_ignore(iou, np.zeros(4, bool))
        assert np.array_equal(m, match_detections(iou)) and not ign.any()


def test_area_range_all_is_the_plain_evaluation():
    t = scene()
    pred = {"boxes": t["boxes"] + 1, "labels": np.array([1, 1]), "scores": np.array([0.3, 0.8])}
    a = evaluate_detections([pred], [t], area_range="all")
    b = evaluate_detections([pred], [t])
    np.testing.assert_array_equal(a.precision, b.precision)
    with pytest.raises(ValueError, match="area_range"):
        evaluate_detections([pred], [t], area_range="tiny")


def test_proposal_recall_by_size_worked_by_hand():
    t = scene()
    near_small = [4, 5, 15, 15]  # IoU 10 / 11 = 0.91 with the small one
    loose_large = [100, 100, 200, 160]  # IoU 0.6 with the large one
    props = np.array([loose_large, near_small] + [[0, 0, 1, 1]] * 10, np.float32)
    r = proposal_recall([props], [t], top_n=(1, 2, 12), iou_thresholds=(0.5, 0.7))
    assert r["large"][1] == {0.5: 1.0, 0.7: 0.0}
    assert r["small"][1] == {0.5: 0.0, 0.7: 0.0} and r["small"][2] == {0.5: 1.0, 0.7: 1.0}
    assert r["all"][12] == {0.5: 1.0, 0.7: 0.5}
    assert all(np.isnan(v) for v in r["medium"][12].values())
    with pytest.raises(ValueError, match="top_n"):
        proposal_recall([props], [t], top_n=(0,))
    with pytest.raises(ValueError, match="one entry per image"):
        proposal_recall([props], [t, t])


# ---- parity with pycocotools ------------------------------------------------------------------


def noisy_predictions(rng, num_images, with_masks):
    preds, targets = [], []
    for _ in range(num_images):
        _, t = make_shapes_sample(int(rng.integers(10**9, 2 * 10**9)), variant="multiscale")
        boxes, labels, masks = [], [], []
        for g in range(len(t["labels"])):
            for _ in range(int(rng.integers(0, 3))):
                boxes.append(np.clip(t["boxes"][g] + rng.normal(0, 1.5, 4), 0, 256))
                labels.append(
                    int(rng.integers(1, 4)) if rng.random() < 0.15 else int(t["labels"][g])
                )
                dy, dx = rng.integers(-2, 3, 2)
                masks.append(np.roll(t["masks"][g], (dy, dx), axis=(0, 1)))
        for _ in range(int(rng.integers(0, 4))):  # false positives of every size
            x1, y1 = rng.uniform(0, 150, 2)
            side = float(np.exp(rng.uniform(np.log(4), np.log(100))))
            boxes.append(np.array([x1, y1, x1 + side, y1 + side]))
            labels.append(int(rng.integers(1, 4)))
            b = boxes[-1].astype(int)
            masks.append(square(b[0], b[1], max(int(side), 1)))
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)
        p = {
            "boxes": boxes,
            "labels": np.asarray(labels, np.int64),
            "scores": rng.random(len(boxes)),
        }
        if with_masks:
            p["masks"] = np.asarray(masks, bool).reshape(-1, 256, 256)
        preds.append(p)
        targets.append(t)
    return preds, targets


def cocoeval(preds, targets, iou_type, use_cats=True, max_dets=100):
    """COCOeval on the same data; ground-truth areas are mask areas (as in COCO's files)."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def rle(m):
        r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        r["counts"] = r["counts"].decode("ascii")
        return r

    images, gts, dts = [], [], []
    for n, (p, t) in enumerate(zip(preds, targets, strict=True)):
        images.append({"id": n + 1, "height": 256, "width": 256})
        for k in range(len(t["labels"])):
            x1, y1, x2, y2 = (float(v) for v in t["boxes"][k])
            gts.append({"id": len(gts) + 1, "image_id": n + 1, "category_id": int(t["labels"][k]),
                        "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": 0,
                        "area": float(t["masks"][k].sum()), "segmentation": rle(t["masks"][k])})  # fmt: skip
        for k in range(len(p["scores"])):
            d = {
                "image_id": n + 1,
                "category_id": int(p["labels"][k]),
                "score": float(p["scores"][k]),
            }
            if iou_type == "segm":
                d["segmentation"] = rle(p["masks"][k])
            else:
                x1, y1, x2, y2 = (float(v) for v in p["boxes"][k])
                d["bbox"] = [x1, y1, x2 - x1, y2 - y1]
            dts.append(d)
    gt = COCO()
    gt.dataset = {"images": images, "annotations": gts,
                  "categories": [{"id": k, "name": str(k)} for k in (1, 2, 3)]}  # fmt: skip
    gt.createIndex()
    ev = COCOeval(gt, gt.loadRes(dts), iou_type)
    ev.params.maxDets = [max_dets]
    ev.params.useCats = int(use_cats)
    ev.evaluate()
    ev.accumulate()
    return (
        ev.eval
    )  # precision (T, R, K, A, M), recall (T, K, A, M); areas all, small, medium, large


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_ap_by_size_matches_pycocotools(iou_type):
    pytest.importorskip("pycocotools")
    preds, targets = noisy_predictions(np.random.default_rng(1), 20, iou_type == "segm")
    theirs = cocoeval(preds, targets, iou_type)["precision"]
    ours = evaluate_by_size(preds, targets, iou_type)
    for a, name in enumerate(("all", "small", "medium", "large")):
        np.testing.assert_allclose(
            ours[name].precision, theirs[:, :, :, a, 0], atol=1e-9, err_msg=name
        )


def test_proposal_recall_matches_pycocotools_without_categories():
    pytest.importorskip("pycocotools")
    rng = np.random.default_rng(2)
    _, targets = noisy_predictions(rng, 15, False)
    proposals = []
    for t in targets:
        near = np.repeat(t["boxes"], 3, 0) + rng.normal(0, 4, (3 * len(t["boxes"]), 4))
        xy = rng.uniform(0, 200, (40, 2))
        rand = np.hstack([xy, xy + rng.uniform(4, 80, (40, 2))])
        p = rng.permutation(np.vstack([near, rand]))
        p[:, 2:] = np.maximum(p[:, 2:], p[:, :2] + 0.5)
        proposals.append(p.astype(np.float32))
    ours = proposal_recall(proposals, targets, top_n=(5, 20), iou_thresholds=(0.5, 0.7))
    for n in (5, 20):
        preds = [{"boxes": p[:n], "labels": np.ones(len(p[:n]), np.int64),
                  "scores": np.linspace(1, 0.5, len(p[:n]))} for p in proposals]  # fmt: skip
        ev = cocoeval(preds, targets, "bbox", use_cats=False, max_dets=n)
        for a, name in enumerate(("all", "small", "medium", "large")):
            for t in (0.5, 0.7):
                k = int(np.flatnonzero(np.isclose(np.linspace(0.5, 0.95, 10), t))[0])
                assert ours[name][n][t] == pytest.approx(ev["recall"][k, 0, a, 0]), (name, n, t)
