"""The stage comparison: every stage sees the same images, the table shows each part's time."""

import numpy as np

from rcnn_from_scratch.comparison import StageResult, compare_detectors, comparison_table
from rcnn_from_scratch.evaluation import evaluate_detections


def test_table_rows_and_speedups_come_from_the_results():
    target = {"boxes": np.array([[0, 0, 10, 10]], np.float32), "labels": np.array([1])}
    pred = {**target, "scores": np.array([0.9], np.float32)}
    box = evaluate_detections([pred], [target], iou_type="bbox")
    slow = StageResult("A", box, 60.0, {"proposals": 0.06, "features": 0.03, "heads": 0.01})
    fast = StageResult("B", box, None, {"proposals": 0.001, "features": 0.003, "heads": 0.001})
    lines = comparison_table([slow, fast]).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| A | 1.000")
    assert "1.0 min" in lines[2] and "100.0 ms" in lines[2]
    assert lines[3].endswith("| 5.0 ms | 20.0x | 10.0x |")


def test_stages_run_on_the_same_images_with_their_shipped_weights():
    results = compare_detectors(num_images=3, stages=("Fast R-CNN", "Faster R-CNN"))
    assert [r.name for r in results] == ["Fast R-CNN", "Faster R-CNN"]
    for r in results:
        assert set(r.test_seconds) == {"proposals", "features", "heads"}
        assert all(v > 0 for v in r.test_seconds.values())
        assert r.train_seconds is not None and r.train_seconds > 0
        assert r.box.num_gt.sum() == results[0].box.num_gt.sum()


def test_timing_on_unlabelled_images_reports_every_part_and_the_regions():
    from rcnn_from_scratch.comparison import time_detectors, timing_table
    from rcnn_from_scratch.datasets.shapes import make_shapes_sample

    times = time_detectors([make_shapes_sample(7)[0]], stages=("Fast R-CNN", "Faster R-CNN"))
    assert list(times) == ["Fast R-CNN", "Faster R-CNN"]
    assert times["Fast R-CNN"]["regions"] > 0
    assert times["Fast R-CNN"]["proposals"] > times["Faster R-CNN"]["proposals"] > 0
    lines = timing_table(times).splitlines()
    assert len(lines) == 4 and lines[3].startswith("| Faster R-CNN |") and lines[3].endswith("x |")


def test_timing_on_given_boxes_uses_them_and_their_proposal_time():
    import pytest

    from rcnn_from_scratch.comparison import time_on_boxes
    from rcnn_from_scratch.datasets.shapes import make_shapes_sample

    image = make_shapes_sample(7)[0]
    boxes = np.array([[10, 10, 60, 60], [30, 40, 100, 90]], np.float32)
    times = time_on_boxes(image, boxes, 1.5)
    assert list(times) == ["R-CNN", "Fast R-CNN", "Faster R-CNN"]
    assert times["R-CNN"]["proposals"] == times["Fast R-CNN"]["proposals"] == 1.5
    assert 0 < times["Faster R-CNN"]["proposals"] < 1.5  # the RPN's own time, not the given one
    assert all(v > 0 for t in times.values() for k, v in t.items() if k != "proposals")
    with pytest.raises(ValueError, match="boxes"):
        time_on_boxes(image, boxes[:, :3], 1.5)
    with pytest.raises(ValueError, match="proposal_seconds"):
        time_on_boxes(image, boxes, -1.0)
