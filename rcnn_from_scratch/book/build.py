"""``build_book``: execute the lecture's notebooks and write the book and the slides.

The site written into ``out``, every link relative so that it opens from the file system::

    index.html                   the contents: the README's table (stage, idea, module, notebook)
    notebooks/NAME.html          each notebook executed, its figures inline, its assert cells hidden
    slides/NAME.slides.html      the same notebook as a reveal.js deck (cells.assign_slide_types)
    modules/DOTTED.NAME.html     each module of the package: docstrings and highlighted source
    _static/                     the stylesheets and reveal.js (vendored, no network needed)

Notebooks run in lecture order (``notebooks/*.ipynb`` sorted by name), then the exercise editions
(``notebooks/exercises/*.ipynb``, run as handed out: their stubs' "not implemented" errors are
shown, not fatal), each in a scratch folder, with one progress line each.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cells import assign_slide_types, hide_assert_cells, math_to_mathml
from .source_pages import imported_modules, module_page, package_modules, pygments_css

__all__ = ["BookReport", "build_book", "find_notebooks", "lecture_notebooks"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]  # the checkout: notebooks/ and README.md sit here
TITLE = "rcnn-from-scratch: the R-CNN family in NumPy"


@dataclass
class BookReport:
    """What ``build_book`` wrote: ``pages`` (paths relative to ``out``), seconds per notebook."""

    out: Path
    pages: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def lecture_notebooks(notebooks_dir: Path | None = None) -> list[Path]:
    """The lecture's notebooks in order, then the exercise editions (``exercises/*.ipynb``)."""
    folder = Path(notebooks_dir or REPO / "notebooks")
    return sorted(folder.glob("*.ipynb")) + sorted((folder / "exercises").glob("*.ipynb"))


def _page_name(path: Path) -> str:
    return ("exercise_" if path.parent.name == "exercises" else "") + path.stem


def find_notebooks(only: list[str] | None, notebooks_dir: Path | None = None) -> list[Path]:
    """The notebooks to build: all of them, or those whose name starts with one of ``only``
    (``["00", "03b", "exercise_01"]``). Raises ``ValueError`` naming what matched nothing."""
    everything = lecture_notebooks(notebooks_dir)
    if not everything:
        raise ValueError(f"no notebooks under {notebooks_dir or REPO / 'notebooks'}")
    if not only:
        return everything
    chosen, unknown = [], []
    for prefix in only:
        hits = [p for p in everything if _page_name(p).startswith(prefix)]
        if not hits:
            unknown.append(prefix)
        chosen += [p for p in hits if p not in chosen]
    if unknown:
        names = ", ".join(_page_name(p) for p in everything)
        raise ValueError(f"--notebooks {' '.join(unknown)}: no such notebook (there are {names})")
    return [p for p in everything if p in chosen]  # lecture order


def _execute(path: Path):
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # the kernel inherits it
    try:
        with (
            tempfile.TemporaryDirectory() as scratch
        ):  # files a notebook writes stay out of the repo
            # an exercise edition runs as handed out: its stubs raise NotImplementedError with
            # a hint, and the page shows that, as the student will see it
            client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                             allow_errors=path.parent.name == "exercises",
                                             resources={"metadata": {"path": scratch}})  # fmt: skip
            client.execute()
    finally:
        if backend is None:
            del os.environ["MPLBACKEND"]
        else:
            os.environ["MPLBACKEND"] = backend
    return nb


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def _nav(name: str, modules: list[str], *, slides: bool) -> str:
    links = ['<a href="../index.html">Contents</a>']
    if slides:
        links.append(f'<a href="../slides/{name}.slides.html">Slides</a>')
    mods = " ".join(
        f'<a href="../modules/{m}.html"><code>{m.removeprefix("rcnn_from_scratch.")}</code></a>'
        for m in modules
    )
    imports = f'<span class="imports">Modules it imports: {mods}</span>' if mods else ""
    return f'<nav class="book-nav">{" ".join(links)} {imports}</nav>'


def _render(nb, name: str, modules: list[str], out: Path) -> list[str]:
    from nbconvert import HTMLExporter, SlidesExporter

    templates = [str(HERE / "templates")]
    shown = math_to_mathml(hide_assert_cells(nb))
    page = HTMLExporter(template_name="rfs_book", extra_template_basedirs=templates)
    body, _ = page.from_notebook_node(
        shown, resources={"rfs_nav": _nav(name, modules, slides=True), "rfs_static": "../_static"}
    )
    (out / "notebooks" / f"{name}.html").write_text(body)
    deck = SlidesExporter(template_name="rfs_slides", extra_template_basedirs=templates,
                          reveal_url_prefix="../_static/reveal.js", reveal_theme="white",
                          reveal_number="c/t")  # fmt: skip
    body, _ = deck.from_notebook_node(assign_slide_types(shown))
    (out / "slides" / f"{name}.slides.html").write_text(body)
    return [f"notebooks/{name}.html", f"slides/{name}.slides.html"]


def _readme_table(readme: Path) -> list[list[str]]:
    """Rows (stage, idea, module, notebook) of the README's table under 'The lecture'."""
    lines = readme.read_text().splitlines() if readme.is_file() else []
    rows, inside = [], False
    for line in lines:
        if line.startswith("| stage |"):
            inside = True
            continue
        if inside and not line.startswith("|"):
            break
        if inside and not set(line) <= set("|- "):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _cell(text: str, link) -> str:
    """A README table cell as HTML: backticks as code, each code span linked by ``link``."""
    out, last = [], 0
    for m in re.finditer(r"`([^`]+)`", text):
        out.append(html.escape(text[last : m.start()]))
        code = f"<code>{html.escape(m[1])}</code>"
        url = link(m[1])
        out.append(f'<a href="{url}">{code}</a>' if url else code)
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def _index(built: dict[str, str], titles: dict[str, str], everything: list[Path], modules) -> str:
    known = set(modules)

    def module_link(code: str) -> str | None:
        dotted = "rcnn_from_scratch." + code.removesuffix("/").removesuffix(".py").replace("/", ".")
        return f"modules/{dotted}.html" if dotted in known else None

    def notebook_link(code: str) -> str | None:
        for name in built:
            if name == code or name.startswith(code + "_"):
                return f"notebooks/{name}.html"
        return None

    def notebook_cell(text: str) -> str:  # 00 (demo), `02`, `01_rcnn`: every notebook named
        text = re.sub(r"(?<![`\w])(\d\d[a-z]?)(?![`\w])", r"`\1`", text)
        return _cell(text, notebook_link)

    rows = []
    for stage, idea, module, notebook in _readme_table(REPO / "README.md"):
        rows.append(
            f"<tr><td>{html.escape(stage)}</td><td>{_cell(idea, lambda _: None)}</td>"
            f"<td>{_cell(module, module_link)}</td><td>{notebook_cell(notebook)}</td></tr>"
        )
    table = (
        "<table class='toc'><thead><tr><th>stage</th><th>idea</th><th>module</th>"
        f"<th>notebook</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        if rows
        else ""
    )
    items = []
    for path in everything:
        name = _page_name(path)
        if name in built:
            items.append(
                f'<li><a href="notebooks/{name}.html">{html.escape(titles[name])}</a> '
                f'<span class="file">{name}</span> &middot; '
                f'<a href="slides/{name}.slides.html">slides</a></li>'
            )
        else:
            items.append(f'<li><span class="file">{name}</span> (not in this build)</li>')
    folders: dict[str, list[str]] = {}
    for m in modules:
        short = m.removeprefix("rcnn_from_scratch").lstrip(".") or "rcnn_from_scratch"
        folder = short.split(".")[0] if "." in short else ""
        folders.setdefault(folder, []).append(
            f'<a href="modules/{m}.html"><code>{html.escape(short)}</code></a>'
        )
    module_list = "".join(
        f"<li>{html.escape(folder + '/') if folder else 'top level'}: {' '.join(links)}</li>"
        for folder, links in folders.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{TITLE}</title>
<link rel="stylesheet" href="_static/book.css"></head><body><main class="index">
<h1>{TITLE}</h1>
<p>R-CNN, Fast R-CNN, Faster R-CNN and Mask R-CNN, each piece a short NumPy module with a
hand-written backward. Each notebook below was executed to build this book: its figures are the
ones the code draws. The cells that check the text's claims run in the project's tests and are
hidden here. Each notebook links to the modules it imports; each module page shows its docstrings
and source. The slides are the same notebooks as a deck (arrow keys; S for speaker view).</p>
<h2>The lecture, and where each idea lives</h2>
{table}
<h2>Notebooks, in lecture order, then the exercise editions</h2>
<ol class="notebooks">{"".join(items)}</ol>
<h2>Modules</h2>
<ul class="modules">{module_list}</ul>
<p class="built">Built by <code>python -m rcnn_from_scratch book</code>.</p>
</main></body></html>
"""


def build_book(out, notebooks: list[str] | None = None, *, notebooks_dir=None, progress=print):
    """Execute the notebooks and write the book and the slides into the folder ``out``.

    ``notebooks``: name prefixes to build (``["00", "05"]``), default all, in lecture order; the
    contents page lists the others without a link. ``progress`` gets one line per notebook.
    Returns a ``BookReport``. Raises ``ValueError`` for a bad ``out`` or an unknown notebook, before
    any notebook runs; a notebook that fails raises nbclient's ``CellExecutionError``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out {out} exists and is not a folder")
    chosen = find_notebooks(notebooks, notebooks_dir)
    everything = lecture_notebooks(notebooks_dir)
    for sub in ("notebooks", "slides", "modules", "_static"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    shutil.copytree(HERE / "static", out / "_static", dirs_exist_ok=True)
    (out / "_static" / "pygments.css").write_text(pygments_css())
    report = BookReport(out=out)
    used_by: dict[str, dict[str, str]] = {}
    built: dict[str, str] = {}
    titles: dict[str, str] = {}
    for number, path in enumerate(chosen, 1):
        name = _page_name(path)
        progress(f"[{number}/{len(chosen)}] {name}: executing ...")
        start = time.perf_counter()
        nb = _execute(path)
        modules = imported_modules(nb)
        report.pages += _render(nb, name, modules, out)
        report.seconds[name] = time.perf_counter() - start
        built[name] = f"notebooks/{name}.html"
        titles[name] = _title(nb, name)
        for m in modules:
            used_by.setdefault(m, {})[titles[name]] = f"../notebooks/{name}.html"
        progress(f"[{number}/{len(chosen)}] {name}: done in {report.seconds[name]:.1f} s")
    modules = package_modules()
    for m in modules:
        page = module_page(
            m, static="../_static", index="../index.html", notebooks=used_by.get(m, {})
        )
        (out / "modules" / f"{m}.html").write_text(page)
        report.pages.append(f"modules/{m}.html")
    (out / "index.html").write_text(_index(built, titles, everything, modules))
    report.pages.insert(0, "index.html")
    return report
