"""The exercise notebooks: every exercise has one stub and one check cell; the stubs fail their
checks with "not implemented"; the solution editions (stubs replaced by the package's answers) run
end to end with every check passing."""

import ast
import json
from pathlib import Path

import pytest

from rcnn_from_scratch import exercises

ROOT = Path(__file__).resolve().parents[2] / "notebooks"
EDITIONS = sorted((ROOT / "exercises").glob("*.ipynb"))


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _stub_names(path):
    return [c["metadata"]["exercise"] for c in _cells(path) if "exercise" in c["metadata"]]


def test_every_exercise_sits_in_exactly_one_notebook_and_each_edition_has_its_lecture():
    names = [n for p in EDITIONS for n in _stub_names(p)]
    assert sorted(names) == sorted(exercises.NAMES)
    for path in EDITIONS:
        assert (ROOT / path.name).exists(), f"{path.name} has no lecture notebook"


def test_notebooks_are_stored_without_outputs():
    for path in EDITIONS:
        for cell in _cells(path):
            assert not cell.get("outputs") and cell.get("execution_count") is None, path.name


def _run_in_process(path):
    """Execute the code cells in one namespace, as a kernel would; return each check cell's value."""
    namespace, results = {}, {}
    for cell in _cells(path):
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse("".join(cell["source"]))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, path.name, "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), path.name, "eval"), namespace)
            if "check" in cell["metadata"].get("tags", []):
                results[cell["source"][0]] = value
    return results


@pytest.mark.parametrize("path", EDITIONS, ids=[p.name for p in EDITIONS])
def test_the_stubs_fail_their_checks_with_not_implemented(path, capsys):
    results = _run_in_process(path)
    assert len(results) == len(_stub_names(path))
    for result in results.values():
        assert not result and result.failure.kind == "not implemented"
        assert "not implemented" in str(result)


@pytest.mark.parametrize("path", EDITIONS, ids=[p.name for p in EDITIONS])
def test_the_solution_edition_runs_and_every_check_passes(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    solution = exercises.write_solution_edition(path, tmp_path / path.name)
    nb = nbformat.read(solution, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    checks = [c for c in nb.cells if "check" in c.metadata.get("tags", [])]
    assert len(checks) == len(_stub_names(path))
    for cell in nb.cells:
        assert all(o.get("output_type") != "error" for o in cell.get("outputs", []))
    for cell in checks:
        text = "".join(o["data"]["text/plain"] for o in cell.outputs if "data" in o)
        assert "checks passed" in text, text
