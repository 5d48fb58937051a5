"""Imports point one way, from a higher floor of the package to a lower one, never back.

Floors (LAYOUT.md): 0 geometry, 1 the NumPy engine, 2 pipeline slots, 3 the lecture's models,
4 what surrounds the models. A module may import from its own floor or any floor below it.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rcnn_from_scratch"

FLOORS = {
    "conventions": 0, "boxes": 0, "box_coder": 0, "bilinear": 0,
    "nn": 1, "checkpoints": 1,
    "backbones": 2,
    "proposals": 2, "roi": 2, "heads": 2, "targets": 2, "postprocess": 2,
    "transform": 2,
    "models": 3,
    "datasets": 4, "evaluation": 4, "viz": 4, "training": 4, "cli": 4, "__main__": 4, "__init__": 4,
    "exercises": 4,
}  # fmt: skip


def floor_of(parts: tuple[str, ...]) -> int:
    """Floor of a module given its dotted path inside the package; unknown modules sit on top."""
    return FLOORS.get(parts[0].removesuffix(".py"), 4) if parts else 4


def imported_modules(source: str, here: tuple[str, ...]):
    """Dotted paths, relative to the package, of every package module that ``source`` imports;
    ``here`` is the importing module's own path inside the package, e.g. ``("roi", "roi_align")``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: climb from the module's own package
                base = here[: len(here) - node.level]
                target = base + tuple((node.module or "").split(".")) if node.module else base
                yield tuple(p for p in target if p), node.lineno
            elif node.module and node.module.startswith("rcnn_from_scratch"):
                yield tuple(node.module.split(".")[1:]), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rcnn_from_scratch."):
                    yield tuple(alias.name.split(".")[1:]), node.lineno


def test_no_module_imports_from_a_higher_floor():
    offences = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        own = floor_of(parts if parts[0] != "__init__.py" else ("__init__",))
        here = path.relative_to(PACKAGE).with_suffix("").parts
        for target, line in imported_modules(path.read_text(), here):
            if target and floor_of(target) > own:
                offences.append(f"{path.relative_to(PACKAGE)}:{line} imports {'.'.join(target)}")
    assert not offences, "imports that point upwards:\n" + "\n".join(offences)


def test_the_checker_sees_relative_and_absolute_upward_imports():
    # a checker that could not fail would prove nothing: feed it upward imports of both kinds
    source = "from ..models.mask_rcnn import MaskRCNN\nimport rcnn_from_scratch.viz.boxes\n"
    targets = [t for t, _ in imported_modules(source, ("roi", "roi_align"))]
    assert targets == [("models", "mask_rcnn"), ("viz", "boxes")]
    assert all(floor_of(t) > floor_of(("roi",)) for t in targets)
