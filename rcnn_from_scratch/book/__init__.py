"""The lecture as a web book and as slides: ``python -m rcnn_from_scratch book [--out DIR]``.

``build_book`` executes every notebook and writes a static site (nbconvert's HTML and reveal.js
exporters, reveal.js vendored in ``static/``); ``cells`` holds what is done to the cells first
(assert cells hidden, math as MathML, slide types); ``source_pages`` writes a page per module.
Needs the ``book`` extra: ``pip install -e ".[book]"``.
"""

from .build import BookReport, build_book, find_notebooks, lecture_notebooks

__all__ = ["BookReport", "build_book", "find_notebooks", "lecture_notebooks"]
