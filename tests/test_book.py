"""The book: its cell rules, its CLI errors and, in a real headless Chromium, the site it builds.

The browser test builds the book from a subset of the real notebooks (executed here, figures and
all), then walks every page reachable from the contents page: each loads with an empty console,
each image has a non-zero rendered size, each internal link (and its #anchor) resolves; a deck is
stepped from its first slide to its last. It needs Debian's ``chromium`` and ``chromium-driver``
(``.ci/run`` installs them) and selenium (the ``test`` extra); without them it is skipped.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbconvert")
pytest.importorskip("latex2mathml")

from rcnn_from_scratch.book import build_book, find_notebooks  # noqa: E402
from rcnn_from_scratch.book.cells import (  # noqa: E402
    assign_slide_types,
    hide_assert_cells,
    math_to_mathml,
)
from rcnn_from_scratch.book.source_pages import imported_modules, package_modules  # noqa: E402
from rcnn_from_scratch.cli import main  # noqa: E402

# the lecture's first notebook (figures) and the full-scale one (math, cells tagged "assert")
BOOK_NOTEBOOKS = ["00_bilinear_interpolation", "05_mask_rcnn_at_full_scale"]


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _figure_cell(source="plot()"):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    return cell


def test_slide_types_headings_start_slides_figures_subslides_the_rest_fragments():
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    nb = _notebook(md("# Title\ntext"), md("prose"), code("x = 1"), _figure_cell(),
                   md("## Next\nmore"), code("   "))  # fmt: skip
    kinds = [c.metadata.slideshow.slide_type for c in assign_slide_types(nb).cells]
    assert kinds == ["slide", "fragment", "fragment", "subslide", "slide", "skip"]
    assert "slideshow" not in nb.cells[0].metadata  # the input is left as it was


def test_slide_types_given_in_the_metadata_are_kept_and_checked():
    cell = nbformat.v4.new_markdown_cell("# heading")
    cell.metadata["slideshow"] = {"slide_type": "notes"}
    assert assign_slide_types(_notebook(cell)).cells[0].metadata.slideshow.slide_type == "notes"
    cell.metadata["slideshow"] = {"slide_type": "page"}
    with pytest.raises(ValueError, match="slide_type"):
        assign_slide_types(_notebook(cell))


def test_assert_cells_are_removed_and_others_kept():
    kept = nbformat.v4.new_code_cell("y = 2")
    check = nbformat.v4.new_code_cell("assert y == 2")
    check.metadata["tags"] = ["assert"]
    assert [c.source for c in hide_assert_cells(_notebook(kept, check)).cells] == ["y = 2"]


def test_math_becomes_mathml_and_code_spans_keep_their_dollars():
    cell = nbformat.v4.new_markdown_cell(
        "Area $wh$ and\n$$k = \\left\\lfloor 4 + \\log_2 \\frac{\\sqrt{wh}}{224} \\right\\rfloor$$\n"
        "costs `$5` or $3, not $4"
    )
    source = math_to_mathml(_notebook(cell)).cells[0].source
    assert source.count("<math") == 2 and 'display="block"' in source
    assert "<mfrac>" in source and "<msqrt>" in source
    assert "`$5`" in source and "$3, not $4" in source  # code and prices are not math


def test_imported_modules_are_the_modules_that_define_the_names():
    code = nbformat.v4.new_code_cell(
        "%matplotlib inline\nimport rcnn_from_scratch as rfs\n"
        "from rcnn_from_scratch import box_iou\nfrom rcnn_from_scratch.roi import roi_align\n"
        "m = rfs.maskrcnn_resnet50_fpn"
    )
    found = imported_modules(_notebook(code))
    assert "rcnn_from_scratch.boxes" in found  # box_iou is defined there, exported at the top
    assert "rcnn_from_scratch.roi.roi_align" in found
    assert "rcnn_from_scratch.models.resnet_fpn" in found
    assert set(found) <= set(package_modules())


def test_unknown_notebook_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="--notebooks 9z"):
        find_notebooks(["9z"])


def test_cli_book_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    assert main(["book", "--notebooks", "9z", "--out", str(tmp_path / "b")]) == 2
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main(["book", "--out", str(a_file)]) == 2
    assert main(["book", "--out", str(tmp_path / "missing" / "b")]) == 2
    lines = capsys.readouterr().err.strip().split("\n")
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert not (tmp_path / "b").exists()  # nothing written before the checks


# ---------------------------------------------------------------- the site in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install -e '.[test]'")
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("no browser: apt-get install chromium chromium-driver (Debian's packages)")
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    report = build_book(out, BOOK_NOTEBOOKS, progress=lambda line: None)
    return out, report


def _errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


PAGE_FACTS = """
const images = [...document.images].map(im => {
  const r = im.getBoundingClientRect();
  return [im.src.slice(0, 60), im.complete && im.naturalWidth > 0, r.width, r.height];
});
const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
const ids = [...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.name);
return {images, links, ids, title: document.title, text: document.body.innerText.length};
"""


def test_every_page_loads_with_no_console_error_images_drawn_links_resolve(browser, book):
    out, report = book
    root = out.resolve()
    start = (root / "index.html").as_uri()
    queue, seen, facts = [start], set(), {}
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        browser.get(url)
        assert not _errors(browser), f"{url}: console errors {_errors(browser)}"
        page = browser.execute_script(PAGE_FACTS)
        assert page["title"] and page["text"] > 0, f"{url}: empty page"
        for src, loaded, width, height in page["images"]:
            if "/slides/" not in url:  # in a deck only the current slide is laid out
                assert loaded and width > 0 and height > 0, f"{url}: image {src} not drawn"
        facts[url] = page
        for link in page["links"]:
            parsed = urlparse(link)
            if parsed.scheme != "file":
                continue  # the book links nowhere else, and the assertion below says so
            target = Path(unquote(parsed.path))
            assert target.is_file(), f"{url}: broken link {link}"
            assert root in target.parents, f"{url}: link {link} leaves the book"
            page_url = target.as_uri()
            if target.suffix == ".html" and page_url not in seen:
                queue.append(page_url)
    links = [link for page in facts.values() for link in page["links"]]
    assert all(urlparse(link).scheme == "file" for link in links), "a link leaves the book"
    for page in facts.values():  # every #anchor exists on its page
        for link in page["links"]:
            parsed = urlparse(link)
            if parsed.fragment and not parsed.path.endswith(".slides.html"):
                ids = facts[Path(unquote(parsed.path)).as_uri()]["ids"]
                # the HTML spec's lookup: the fragment as written, then percent-decoded
                found = parsed.fragment in ids or unquote(parsed.fragment) in ids
                assert found, f"no anchor for {link}"
    # every page the build wrote was reached from the contents and loaded in the browser
    assert {(root / p).as_uri() for p in report.pages} <= seen


def test_notebook_pages_hide_assert_cells_show_figures_and_mathml(browser, book):
    out, _ = book
    source = nbformat.read(
        Path(__file__).resolve().parents[1] / "notebooks" / f"{BOOK_NOTEBOOKS[1]}.ipynb", 4
    )
    asserts = [c.source for c in source.cells if "assert" in c.metadata.get("tags", [])]
    assert asserts, "notebook 05 has cells tagged 'assert'"
    browser.get((out / "notebooks" / f"{BOOK_NOTEBOOKS[1]}.html").resolve().as_uri())
    code = browser.execute_script(
        "return [...document.querySelectorAll('.jp-InputArea-editor')].map(e => e.innerText)"
    )
    assert code and not any(a.strip().split("\n")[0] in "\n".join(code) for a in asserts)
    box = browser.execute_script(
        "const m = document.querySelector('math[display=block]');"
        "if (!m) return null; const r = m.getBoundingClientRect(); return [r.width, r.height];"
    )
    assert box and box[0] > 50 and box[1] > 10  # the level rule drawn as MathML
    browser.get((out / "notebooks" / f"{BOOK_NOTEBOOKS[0]}.html").resolve().as_uri())
    sizes = browser.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output img')]"
        ".map(im => [im.naturalWidth, im.getBoundingClientRect().width])"
    )
    assert len(sizes) >= 3 and all(w > 100 and r > 100 for w, r in sizes)  # real figures


def test_a_deck_steps_from_its_first_slide_to_its_last(browser, book):
    out, _ = book
    browser.get((out / "slides" / f"{BOOK_NOTEBOOKS[0]}.slides.html").resolve().as_uri())
    assert not _errors(browser)
    ready = browser.execute_script("return typeof Reveal !== 'undefined' && Reveal.isReady()")
    assert ready, "reveal.js did not start"
    total = browser.execute_script("Reveal.slide(0, 0, 0); return Reveal.getTotalSlides()")
    assert total >= 5
    steps, fragments, visited = 0, 0, set()
    while steps < 2000:
        state = browser.execute_script(
            "const s = Reveal.getCurrentSlide(), r = s.getBoundingClientRect();"
            "const imgs = [...s.querySelectorAll('img')].map(i => i.getBoundingClientRect().width);"
            "return {h: Reveal.getIndices().h, v: Reveal.getIndices().v, f: Reveal.getIndices().f,"
            " last: Reveal.isLastSlide() && !Reveal.availableFragments().next,"
            " w: r.width, imgs: imgs};"
        )
        visited.add((state["h"], state["v"]))
        assert state["w"] > 0 and all(w > 0 for w in state["imgs"])
        fragments += state["f"] is not None and state["f"] >= 0
        if state["last"]:
            break
        browser.execute_script("Reveal.next()")
        steps += 1
    assert state["last"], "the deck never reached its last slide"
    assert len(visited) == total  # every slide and sub-slide shown on the way
    assert fragments > 0  # points come in one at a time
    assert browser.execute_script("return Reveal.getProgress()") == 1
    assert not _errors(browser)
