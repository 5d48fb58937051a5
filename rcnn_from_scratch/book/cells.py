"""What the book does to a notebook's cells before nbconvert renders them.

Three steps, each on a copy of an executed notebook (``nbformat.NotebookNode``):

* ``hide_assert_cells``: the cells tagged ``"assert"`` (the checks behind the prose's claims) leave
  the page and the deck; the notebook tests still run them.
* ``math_to_mathml``: ``$...$`` and ``$$...$$`` in Markdown cells become MathML, which the browser
  draws itself, so the pages need no MathJax from the network.
* ``assign_slide_types``: ``cell.metadata.slideshow.slide_type`` for the deck, where a notebook does
  not set it itself: every Markdown cell that opens with a heading starts a slide, the prose under
  it and each code cell come in as fragments (one point at a time), and a code cell whose output is
  a figure gets a sub-slide of its own (room for the figure).
"""

from __future__ import annotations

import re

__all__ = ["ASSERT_TAG", "assign_slide_types", "hide_assert_cells", "math_to_mathml"]

ASSERT_TAG = "assert"
SLIDE_TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")

_CODE_SPAN = re.compile(r"(`+)(?:.+?)\1", re.DOTALL)  # `code` and ``code``: no math inside
_DISPLAY = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE = re.compile(r"(?<![\\$])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\d)")


def hide_assert_cells(nb):
    """``nb`` without its cells tagged ``"assert"`` (a new notebook; ``nb`` is left as it is)."""
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = _copy(nb)
    remover = TagRemovePreprocessor(remove_cell_tags={ASSERT_TAG}, enabled=True)
    nb, _ = remover.preprocess(nb, {})
    return nb


def _latex_to_mathml(latex: str, display: str) -> str:
    from latex2mathml.converter import convert

    return convert(latex.strip(), display=display)


def _convert_math(text: str) -> str:
    text = _DISPLAY.sub(lambda m: "\n\n" + _latex_to_mathml(m[1], "block") + "\n\n", text)
    return _INLINE.sub(lambda m: _latex_to_mathml(m[1], "inline"), text)


def math_to_mathml(nb):
    """``nb`` with the TeX math of its Markdown cells written as MathML (a new notebook).

    ``$$...$$`` becomes a block ``<math display="block">``, ``$...$`` an inline one; dollars inside
    code spans are left alone. Raises ``ValueError`` naming the cell when a formula does not parse.
    """
    nb = _copy(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or "$" not in cell.source:
            continue
        pieces, last = [], 0
        for span in _CODE_SPAN.finditer(cell.source):
            pieces += [_convert_safely(cell.source[last : span.start()], index), span[0]]
            last = span.end()
        pieces.append(_convert_safely(cell.source[last:], index))
        cell.source = "".join(pieces)
    return nb


def _convert_safely(text: str, index: int) -> str:
    try:
        return _convert_math(text)
    except Exception as err:  # latex2mathml raises its own exception types
        raise ValueError(f"cell {index}: math that latex2mathml cannot read: {err}") from err


def _has_figure(cell) -> bool:
    return any(
        "image/png" in out.get("data", {}) or "image/svg+xml" in out.get("data", {})
        for out in cell.get("outputs", [])
    )


def assign_slide_types(nb):
    """``nb`` with a ``slideshow.slide_type`` on every cell (a new notebook).

    A type the notebook already sets in ``cell.metadata.slideshow.slide_type`` is kept (it must be
    one of ``SLIDE_TYPES``, else ``ValueError``). Otherwise: the first cell and every Markdown cell
    whose first line is a heading (``#``) start a ``"slide"``; a code cell with a figure in its
    outputs starts a ``"subslide"``; every other cell is a ``"fragment"``. Empty cells are skipped.
    """
    nb = _copy(nb)
    for index, cell in enumerate(nb.cells):
        given = cell.metadata.get("slideshow", {}).get("slide_type")
        if given is not None:
            if given not in SLIDE_TYPES:
                raise ValueError(
                    f"cell {index}: slideshow.slide_type must be one of {SLIDE_TYPES}; got {given!r}"
                )
            continue
        source = cell.source.strip()
        if not source:
            kind = "skip"
        elif index == 0 or (cell.cell_type == "markdown" and source.startswith("#")):
            kind = "slide"
        elif cell.cell_type == "code" and _has_figure(cell):
            kind = "subslide"
        else:
            kind = "fragment"
        cell.metadata["slideshow"] = {"slide_type": kind}
    return nb


def _copy(nb):
    import copy

    return copy.deepcopy(nb)
