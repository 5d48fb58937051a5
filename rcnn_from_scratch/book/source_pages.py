"""The book's module pages, and which modules a notebook imports.

``package_modules()`` lists every module of the package by dotted name; ``imported_modules(nb)``
reads a notebook's code cells with ``ast`` and returns the modules that define what it imports
(``from rcnn_from_scratch.roi import roi_align`` points at ``rcnn_from_scratch.roi.roi_align``,
``rfs.maskrcnn_resnet50_fpn`` after ``import rcnn_from_scratch as rfs`` at the module defining it);
``module_page(name, ...)`` is one HTML page: the module's docstring, its public functions and
classes with the first paragraph of each docstring, and its whole source highlighted by Pygments,
each line an anchor (``#L-12``).
"""

from __future__ import annotations

import ast
import html
import importlib
from pathlib import Path

__all__ = ["PACKAGE", "imported_modules", "module_page", "module_path", "package_modules"]

PACKAGE = "rcnn_from_scratch"
ROOT = Path(__file__).resolve().parents[1]  # the package folder


def package_modules() -> list[str]:
    """Dotted names of every module in the package (packages by their ``__init__``), sorted."""
    names = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join((PACKAGE, *parts)))
    return sorted(names)


def module_path(name: str) -> Path:
    """The source file of the module ``name`` (a dotted name from ``package_modules``)."""
    parts = name.split(".")[1:]
    path = ROOT.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _defining_module(module: str, attribute: str | None, known: set[str]) -> str | None:
    """The package module that defines ``module.attribute`` (or ``module`` itself)."""
    if attribute and f"{module}.{attribute}" in known:
        return f"{module}.{attribute}"  # a submodule
    if attribute:
        try:
            value = getattr(importlib.import_module(module), attribute)
            defined = getattr(value, "__module__", None)
            if defined in known:
                return defined
        except (ImportError, AttributeError):
            pass
    return module if module in known else None


def _code(cell_source: str) -> str:
    # IPython magics and shell escapes are not Python: blank them, keep line numbers
    return "\n".join("" if line.lstrip()[:1] in "%!" else line for line in cell_source.split("\n"))


def imported_modules(nb) -> list[str]:
    """Dotted names of the package modules whose code ``nb``'s code cells import, sorted."""
    known = set(package_modules())
    found: set[str] = set()
    aliases: dict[str, str] = {}  # local name -> package module it stands for
    trees = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            trees.append(ast.parse(_code(cell.source)))
        except SyntaxError:
            continue
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
                for alias in node.names:
                    target = _defining_module(node.module, alias.name, known)
                    if target:
                        found.add(target)
                        if target == f"{node.module}.{alias.name}":
                            aliases[alias.asname or alias.name] = target
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == PACKAGE and alias.name in known:
                        found.add(alias.name)
                        aliases[alias.asname or alias.name] = alias.name
    for tree in trees:  # rfs.maskrcnn_resnet50_fpn: the module that defines it
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                module = aliases.get(node.value.id)
                if module:
                    target = _defining_module(module, node.attr, known)
                    if target:
                        found.add(target)
    return sorted(found)


def _summary(node) -> str:
    doc = ast.get_docstring(node) or ""
    return doc.split("\n\n")[0].strip()


def _signature(node, source: str) -> str:
    text = ast.get_source_segment(source, node) or ""
    head = text.split(":\n")[0] if isinstance(node, ast.FunctionDef | ast.ClassDef) else text
    return " ".join(head.split())


def module_page(name: str, *, static: str, index: str, notebooks: dict[str, str]) -> str:
    """The HTML page of the module ``name``.

    ``static`` is the relative URL of the book's static folder, ``index`` that of the contents page,
    ``notebooks`` maps each notebook that imports this module to its page's relative URL.
    """
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    source = module_path(name).read_text()
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or "(no module docstring)"
    items = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.ClassDef) or node.name.startswith("_"):
            continue
        items.append(
            f'<li><a href="#L-{node.lineno}"><code>{html.escape(_signature(node, source))}</code>'
            f"</a><br>{html.escape(_summary(node))}</li>"
        )
    formatter = HtmlFormatter(linenos="inline", lineanchors="L", anchorlinenos=True, cssclass="src")
    listing = highlight(source, PythonLexer(), formatter)
    used_by = ", ".join(
        f'<a href="{url}">{html.escape(title)}</a>' for title, url in sorted(notebooks.items())
    )
    rel = module_path(name).relative_to(ROOT.parent).as_posix()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{name}</title>
<link rel="stylesheet" href="{static}/book.css"><link rel="stylesheet" href="{static}/pygments.css">
</head><body>
<nav class="book-nav"><a href="{index}">Contents</a></nav>
<main class="module">
<h1><code>{name}</code></h1>
<p class="path">{rel}{" &middot; used in " + used_by if used_by else ""}</p>
<pre class="docstring">{html.escape(doc)}</pre>
<h2>Public functions and classes</h2>
<ul class="api">{"".join(items) or "<li>none at the top level</li>"}</ul>
<h2>Source</h2>
{listing}
</main></body></html>
"""


def pygments_css() -> str:
    """The stylesheet of the highlighted listings."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(cssclass="src").get_style_defs(".src")
