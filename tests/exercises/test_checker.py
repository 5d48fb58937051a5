"""The checker itself: what it reports, and that the package's own functions pass every check."""

import numpy as np
import pytest

import rcnn_from_scratch as rfs
from rcnn_from_scratch import exercises


@pytest.mark.parametrize("name", exercises.NAMES)
def test_the_packages_own_answer_passes_every_check(name):
    result = exercises.check(name, exercises.answer(name))
    assert result and "checks passed" in str(result)


def test_public_functions_pass_unchanged_under_their_own_names():
    for name in ("box_area", "box_iou", "nms", "bilinear_interpolate", "roi_pool", "roi_align"):
        assert exercises.check(name, getattr(rfs, name)), name


def test_every_exercise_has_hand_made_cases_each_with_a_rule_and_a_hint():
    for name in exercises.NAMES:
        ex = exercises.exercise(name)
        cases = ex.cases()
        assert len(cases) >= 3, name
        assert all(c.rule and c.hint for c in cases), name


def test_a_failure_names_the_case_and_shows_inputs_expected_returned_and_hint():
    result = exercises.check(
        "box_area", lambda boxes: (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    )
    text = str(result)
    assert not result and repr(result) == text
    assert "FAILED at check 1" in text and "one box 2 wide and 3 high has area 6" in text
    assert "boxes =" in text and "[[0. 0. 2. 3.]]" in text
    assert "expected:\n    [6.]" in text and "returned:\n    [12.]" in text
    assert "x2 - x1 + 1" in text


def test_a_wrong_shape_is_reported_as_a_shape_not_a_traceback():
    result = exercises.check("box_iou", lambda a, b: np.zeros((len(b), len(a), 1)))
    assert result.failure.kind == "shape" and "has shape (1, 1, 1); expected (1, 1)" in str(result)
    assert "Traceback" not in str(result)


def test_a_wrong_dtype_is_reported_as_a_dtype():
    result = exercises.check(
        "box_area",
        lambda boxes: ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).astype(int),
    )
    assert result.failure.kind == "dtype" and "expected float" in str(result)


def test_a_non_array_result_is_reported_as_its_type():
    result = exercises.check("box_area", lambda boxes: object())
    assert result.failure.kind == "type" and "should be a NumPy array; got object" in str(result)


def student_with_a_bug(boxes1, boxes2):
    return boxes1 @ boxes2  # (N, 4) @ (M, 4): a shape error inside the student's own code


def test_an_exception_shows_the_students_traceback_not_the_checkers():
    result = exercises.check("box_iou", student_with_a_bug)
    text = str(result)
    assert result.failure.kind == "exception" and "ValueError" in text
    assert "in student_with_a_bug" in text and "boxes1 @ boxes2" in text
    assert "exercises/checker.py" not in text and "run_check" not in text


def test_a_stub_is_reported_as_not_implemented_with_its_hint():
    def box_iou(boxes1, boxes2):
        raise NotImplementedError("box_iou: write it. Hint: clamp the sides at 0")

    result = exercises.check("box_iou", box_iou)
    assert not result and result.failure.kind == "not implemented"
    assert "not implemented" in str(result) and "clamp the sides at 0" in str(result)


def test_a_student_who_modifies_the_inputs_does_not_change_the_expected_values():
    def destructive_area(boxes):
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes[:] = 0
        return area

    assert exercises.check("box_area", destructive_area)


def test_a_random_case_catches_what_the_hand_made_ones_miss():
    def area_wrong_for_many_boxes(boxes):
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return area if len(boxes) <= 3 else area[::-1]

    result = exercises.check("box_area", area_wrong_for_many_boxes)
    assert not result and not result.failure.hand_made and "random case" in result.hint


def test_show_prints_the_signature_contract_and_hint(capsys):
    exercises.show("roi_align")
    out = capsys.readouterr().out
    assert out.startswith(
        "roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1"
    )
    assert "Hint:" in out and "bilinear" in out


def test_unknown_names_and_non_functions_are_a_clear_value_error():
    with pytest.raises(ValueError, match="exercises.NAMES"):
        exercises.check("box_ious", rfs.box_iou)
    with pytest.raises(ValueError, match="fn must be a function"):
        exercises.check("box_iou", 3)


def test_the_solution_edition_replaces_only_the_stub_cells(tmp_path):
    import json
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "notebooks" / "exercises" / "01_rcnn.ipynb"
    out = exercises.write_solution_edition(source, tmp_path / "solution.ipynb")
    before, after = (json.loads(p.read_text())["cells"] for p in (source, out))
    assert len(before) == len(after)
    for b, a in zip(before, after, strict=True):
        if "exercise" in b["metadata"]:
            name = b["metadata"]["exercise"]
            assert f"{name} = exercises.answer({name!r})" in "".join(a["source"])
        else:
            assert a == b
