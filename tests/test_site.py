"""The course website (`make site`): staging, the offline build, and the pages in a real browser.

The site is built once per session from the committed notebooks into a temporary folder, with its reveal.js decks
and its PDF handout.  The browser tests open it in headless Chromium (tools/browser_deps.sh installs Chromium,
chromedriver and axe-core) through a local HTTP server, as a reader would, and save screenshots under
build/screenshots/ for a person to look at.  Accessibility: axe-core checks every page and the decks against WCAG
2.1 A and AA, and a page made to fail shows that the check can fail.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest
from filelock import FileLock

from tools import browser as chromium_tools
from tools import colab, handout, marking, site, slides, teaching

ROOT = colab.ROOT
#: SITE_NOTEBOOKS=folder runs these tests on other notebooks (e.g. a branch's, or a full run in build/executed).
NOTEBOOKS_DIR = Path(os.environ.get("SITE_NOTEBOOKS", ROOT / "notebooks")).resolve()
NOTEBOOKS = site.lecture_notebooks(NOTEBOOKS_DIR)
SCREENSHOTS = ROOT / "build" / "screenshots"
#: The notebook page the browser test reads: math, figures, the explorer.
MATH_PAGE = "04_xavier_and_he"
#: axe-core, installed from the npm registry by tools/browser_deps.sh (package-lock.json pins it).
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: The rules axe runs: WCAG 2.0 and 2.1, levels A and AA.
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


# --- staging (no build) --------------------------------------------------------------------------------------

def _staged(name: str) -> nbformat.NotebookNode:
    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    return site.stage_notebook(nbformat.read(path, as_version=4), Path("notebooks") / path.name)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_staging_hides_the_setup_cell_and_keeps_no_widget(nb: Path):
    staged = _staged(nb.stem)
    setup = [c for c in staged.cells if c.cell_type == "code" and colab.SETUP_MARKER in c.source]
    assert len(setup) == 1 and "remove-cell" in setup[0].metadata["tags"]
    outputs = [o for c in staged.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if site.WIDGET_VIEW in o.get("data", {})]
    assert "widgets" not in staged.metadata, "widget state would make MyST-NB load widget JavaScript"
    first = staged.cells[0].source
    assert "colab-badge.svg" not in first and colab.colab_url(Path("notebooks") / nb.name) in first
    assert "slides-link" not in first  # the deck and the handout have no link to a deck
    # The original is untouched.
    assert nbformat.read(nb, as_version=4).cells[0].source.startswith("[![Open In Colab]")


def test_progress_bars_leave_nothing_and_the_explorer_leaves_one_note():
    nb = nbformat.v4.new_notebook()
    bar = nbformat.v4.new_output(
        "display_data",
        data={site.WIDGET_VIEW: {"model_id": "a", "version_major": 2}, "text/plain": "epoch 1/5:   0%|   | 0/157"},
    )
    explorer = nbformat.v4.new_output(
        "display_data", data={site.WIDGET_VIEW: {"model_id": "b"}, "text/plain": "VBox(children=(HBox(..."}
    )
    printed = nbformat.v4.new_output("stream", name="stdout", text="relu, depth 50\n")
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Title"),
        nbformat.v4.new_code_cell("train()", outputs=[bar, printed]),
        nbformat.v4.new_code_cell("display(explorer.widget)", outputs=[explorer, printed]),
    ]
    staged = site.stage_notebook(nb, Path("notebooks/01_x.ipynb"))
    assert staged.cells[1].outputs == [printed]
    assert staged.cells[2].outputs[0].data == {"text/markdown": site.LIVE_ONLY_NOTE}
    assert staged.cells[2].outputs[1] == printed


def test_the_website_copy_links_its_deck_and_anchors_the_guides_cells():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    staged = site.add_targets(site.stage_notebook(nb, Path("notebooks") / NOTEBOOKS[0].name, slides_url="slides/x.html"))
    assert '<a class="slides-link" href="slides/x.html">Slides</a>' in staged.cells[0].source
    names = [marking.anchor(c) for c in nb.cells if marking.anchor(c)]
    targets = [c.source for c in staged.cells if c.source.startswith("(cell-")]
    assert targets == [f"({site.target(n)})=" for n in names] and len(staged.cells) == len(nb.cells) + len(names)
    for i, cell in enumerate(staged.cells[:-1]):
        if cell.source.startswith("(cell-"):
            assert marking.anchor(staged.cells[i + 1]) == cell.source[6:-2]  # just before its cell


def test_titles_come_from_the_notebooks():
    titles = [site.title_and_intro(nbformat.read(nb, as_version=4))[0] for nb in NOTEBOOKS]
    assert all(titles) and len(set(titles)) == len(titles), titles


def test_assignments_page_has_no_solutions_or_tests(tmp_path):
    page = site.assignments_page(tmp_path)
    masters = sorted((ROOT / "assignments").glob("[0-9]*.ipynb"))
    assert page.count("\n## ") >= len(masters)
    for marker in ("BEGIN SOLUTION", "BEGIN TESTS", "BEGIN QUESTION", "ASSIGNMENT CONFIG", "END TESTS"):
        assert marker not in page


# --- the build ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The website, built once per session: under pytest-xdist the first worker that needs it builds it (under a
    file lock, in the folder the workers share) and the others read it."""
    tmp = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        tmp = tmp.parent  # .../pytest-N/, shared by this session's workers
    tmp = tmp / "site"
    out = tmp / "html"
    tmp.mkdir(parents=True, exist_ok=True)
    with FileLock(str(tmp) + ".lock"):
        if not (tmp / "built").is_file():
            done = subprocess.run(
                [sys.executable, "-m", "tools.site", "build", "--notebooks", str(NOTEBOOKS_DIR), "--out", str(out),
                 "--src", str(tmp / "src")],
                cwd=ROOT, capture_output=True, text=True, timeout=900,
            )
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            for word in ("ERROR", "WARNING", "invalid"):  # Sphinx, nbformat and nbconvert report problems without failing
                assert word not in done.stdout + done.stderr, (done.stdout + done.stderr)[-3000:]
            (tmp / "built").touch()
    return out


ASSET = re.compile(r"""<(?:script|img|link|iframe|source)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)


def test_pages_load_no_asset_from_another_host(built_site: Path):
    pages = sorted(built_site.glob("*.html"))
    assert {p.stem for p in pages} >= {"index", "assignments", "teaching", *(nb.stem for nb in NOTEBOOKS)}
    decks = sorted((built_site / slides.DECKS).glob("*.html"))
    assert [d.stem for d in decks] == [nb.stem for nb in NOTEBOOKS]
    for page in pages + decks:
        for url in ASSET.findall(page.read_text(encoding="utf-8")):
            assert not urllib.parse.urlsplit(url).netloc and not url.startswith("//"), f"{page.name} loads {url}"
            if page in decks:  # a deck's relative URLs resolve to files of the site
                assert (page.parent / url.split("?")[0]).resolve().is_file(), f"{page.name}: {url} is not in the site"
    assert (built_site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (built_site / slides.REVEAL / "dist" / "reveal.js").is_file()
    for theme in (built_site / slides.REVEAL / "dist" / "theme").glob("white.css"):
        assert "@import url(http" not in theme.read_text()  # the deck's theme fetches no web font


def test_every_figure_on_a_page_has_its_cells_alt_text(built_site: Path):
    for nb in NOTEBOOKS:
        alts = [marking.alt_text(c) for c in nbformat.read(nb, as_version=4).cells for _ in range(marking.figure_count(c))]
        html = (built_site / f"{nb.stem}.html").read_text(encoding="utf-8")
        shown = [a.replace("&#39;", "'").replace("&quot;", '"').replace("&amp;", "&")
                 for a in re.findall(r'<img alt="([^"]*)" src="_images/', html)]  # fmt: skip
        assert shown == alts, f"{nb.name}: the page's figures have alt texts {shown}"
        deck = (built_site / slides.DECKS / f"{nb.stem}.html").read_text(encoding="utf-8")
        tags = re.findall(r"<img [^>]*>", deck)
        assert len(tags) == len(alts) and all(re.search(r'src="\.\./_images/[0-9a-f]{64}\.png"', t) for t in tags)
        assert all(len(re.search(r'alt="([^"]*)"', t).group(1)) >= 40 for t in tags), tags


def test_guide_page_links_to_cells_that_exist(built_site: Path):
    html = (built_site / "teaching.html").read_text(encoding="utf-8")
    links = set(re.findall(r'href="([0-9]{2}_[a-z0-9_]+)\.html#(cell-[a-z0-9-]+)"', html))
    assert {f"cell-{a}" for a in teaching.references((ROOT / "site" / "teaching.md").read_text())} == {t for _, t in links}
    for page, target in links:
        assert f'id="{target}"' in (built_site / f"{page}.html").read_text(encoding="utf-8"), (page, target)
    assert "[[" not in html and "not measured" not in html
    assert 'href="lecture-handout.pdf"' in html and "assignments/README.md" in html


def test_every_notebook_page_has_its_title_and_colab_and_slides_links(built_site: Path):
    for nb in NOTEBOOKS:
        html = (built_site / f"{nb.stem}.html").read_text(encoding="utf-8")
        title, _ = site.title_and_intro(nbformat.read(nb, as_version=4))
        assert f"<title>{title}" in html.replace("&#39;", "'"), nb.name
        assert colab.colab_url(Path("notebooks") / nb.name) in html
        assert f'<a class="slides-link" href="slides/{nb.stem}.html">Slides</a>' in html
        assert colab.SETUP_MARKER.lstrip("# ") not in html, f"{nb.name}: the Colab set-up cell is shown"
        assert "In&nbsp;[" not in html and "In [" not in html
        # No blank gap where a progress bar was, no widget left over.
        assert not re.findall(r'<div class="cell_output docutils container">\s*</div>', html), nb.name
        assert "it/s]" not in html and "jupyter-widgets" not in html, nb.name


# --- in a browser ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(built_site: Path):
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium; a missing binary fails the test with the one line that says what to install."""
    driver = chromium_tools.chromium(window_size="1280,1400", profile=tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def _open(driver, url: str) -> None:
    driver.get(url)
    # MathJax typesets after the load event: wait for it where the page loads it.
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (window.MathJax && MathJax.startup && MathJax.startup.promise) {"
        "  MathJax.startup.promise.then(() => done(true), () => done(false)); } else { done(null); }"
    )


def _prose_text(driver) -> str:
    """The visible text of the page's article without code and outputs (code may hold '$' legitimately)."""
    return driver.execute_script(
        "const a = document.querySelector('article') || document.body;"
        "const c = a.cloneNode(true);"
        "c.querySelectorAll('pre, code, .cell_input, .cell_output, mjx-container').forEach(e => e.remove());"
        "return c.innerText;"
    )


def _foreign_requests(driver, origin: str) -> list[str]:
    urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [u for u in urls if not u.startswith(origin)]


def test_landing_page_lists_every_notebook_and_its_links_resolve(browser, server):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _open(browser, f"{server}/index.html")
    browser.save_screenshot(str(SCREENSHOTS / "landing.png"))
    assert "Parameter initialization" in browser.title
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('nav a.reference.internal, article a.reference.internal'))"
        ".map(a => a.href)"
    )
    pages = {urllib.parse.urlsplit(u).path.lstrip("/").split("#")[0] for u in links}
    assert {f"{nb.stem}.html" for nb in NOTEBOOKS} | {"assignments.html", "teaching.html"} <= pages, pages
    others = browser.execute_script("return Array.from(document.querySelectorAll('article a[href]')).map(a => a.href)")
    assert f"{server}/lecture-handout.pdf" in others and f"{server}/slides/{NOTEBOOKS[0].stem}.html" in others
    for url in sorted(set(links) | {u for u in others if u.startswith(server)}):
        with urllib.request.urlopen(url.split("#")[0], timeout=30) as resp:
            assert resp.status == 200, url
    assert _foreign_requests(browser, server) == []


def test_notebook_page_has_rendered_math_figures_and_no_setup_cell(browser, server):
    _open(browser, f"{server}/{MATH_PAGE}.html")
    browser.save_screenshot(str(SCREENSHOTS / "notebook-top.png"))
    text = _prose_text(browser)
    assert "$" not in text, text[max(0, text.find("$") - 200) : text.find("$") + 200]
    assert browser.execute_script("return document.querySelectorAll('mjx-container').length") > 10
    assert "merror" not in browser.page_source.lower() or not browser.execute_script(
        "return document.querySelectorAll('mjx-merror').length"
    )
    images = browser.execute_script(
        "return Array.from(document.querySelectorAll('.cell_output img')).map(i => [i.naturalWidth, i.src])"
    )
    assert images and all(width > 100 for width, _ in images), images
    page_text = browser.find_element("tag name", "article").text
    assert "Colab set-up" not in page_text and "google.colab" not in page_text
    assert "VBox(children" not in page_text
    staged = _staged(MATH_PAGE)
    if any(o.get("data") == {"text/markdown": site.LIVE_ONLY_NOTE} for c in staged.cells for o in c.get("outputs", [])):
        assert site.LIVE_ONLY_NOTE.strip("*")[:40] in page_text
    links = browser.execute_script("return Array.from(document.querySelectorAll('p.page-links a')).map(a => a.href)")
    assert links == [colab.colab_url(f"notebooks/{MATH_PAGE}.ipynb"), f"{server}/slides/{MATH_PAGE}.html"]
    browser.execute_script("document.querySelectorAll('.cell_output img')[0].scrollIntoView()")
    browser.save_screenshot(str(SCREENSHOTS / "notebook-figure.png"))
    browser.execute_script(
        "const n = Array.from(document.querySelectorAll('.cell_output em'))"
        ".find(e => e.innerText.startsWith('Interactive widget')); if (n) n.scrollIntoView();"
    )
    browser.save_screenshot(str(SCREENSHOTS / "notebook-explorer.png"))
    assert _foreign_requests(browser, server) == []



def test_math_is_readable_by_screen_readers(browser, server):
    """MathJax's assistive MathML: every formula carries a MathML copy for screen readers, and the drawn glyphs are
    hidden from them (read once, as math)."""
    _open(browser, f"{server}/{MATH_PAGE}.html")
    counts = browser.execute_script(
        "const c = Array.from(document.querySelectorAll('mjx-container'));"
        "return [c.length,"
        " c.filter(e => e.querySelector(':scope > mjx-assistive-mml > math') && e.querySelector(':scope > mjx-assistive-mml > math').textContent.trim()).length,"
        " c.filter(e => e.querySelector(':scope > mjx-math[aria-hidden=\"true\"]')).length]"
    )
    assert counts[0] > 10 and counts == [counts[0]] * 3, counts
    first = browser.execute_script("return document.querySelector('mjx-assistive-mml math').outerHTML")
    assert first.startswith('<math xmlns="http://www.w3.org/1998/Math/MathML"'), first


# --- the decks ----------------------------------------------------------------------------------------------------

def _open_deck(driver, url: str) -> dict:
    driver.get(url)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const t0 = Date.now();"
        "(function wait() { if (window.Reveal && Reveal.isReady && Reveal.isReady() && window.MathJax"
        "    && MathJax.startup && MathJax.startup.promise) { MathJax.startup.promise.then(() => done(true)); }"
        "  else if (Date.now() - t0 > 60000) { done(false); } else { setTimeout(wait, 100); } })();"
    )
    return driver.execute_script(
        "return {ready: window.Reveal && Reveal.isReady(), slides: Reveal.getTotalSlides(),"
        " math: document.querySelectorAll('.reveal mjx-container').length,"
        " mml: document.querySelectorAll('.reveal mjx-container > mjx-assistive-mml > math').length,"
        " errors: document.querySelectorAll('mjx-merror').length,"
        " images: Array.from(document.querySelectorAll('.reveal img')).map(i => [i.naturalWidth, i.alt.length]),"
        " text: Array.from(document.querySelectorAll('.reveal .jp-RenderedMarkdown')).map(e => {"
        "   const c = e.cloneNode(true); c.querySelectorAll('code, pre, mjx-container').forEach(x => x.remove());"
        "   return c.textContent; }).join(' ')}"
    )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_opens_with_its_math_rendered_and_the_slides_its_cells_mark(browser, server, nb: Path):
    notebook = nbformat.read(nb, as_version=4)
    deck = _open_deck(browser, f"{server}/{slides.DECKS}/{nb.stem}.html")
    assert deck["ready"], "reveal.js did not start"
    assert deck["slides"] == marking.expected_slides(notebook) > 1
    shown = [c for c in notebook.cells if marking.in_deck(c) and c.cell_type == "markdown"]
    if any("$" in c.source for c in shown):
        assert deck["math"] > 0 and deck["mml"] == deck["math"], deck["math"]
    assert deck["errors"] == 0 and "$" not in deck["text"], deck["text"][:300]
    figures = sum(marking.figure_count(c) for c in notebook.cells if marking.in_deck(c))
    assert len(deck["images"]) == figures and all(w > 100 and n >= 40 for w, n in deck["images"]), deck["images"]
    assert _foreign_requests(browser, server) == []
    if nb.stem == MATH_PAGE:
        browser.save_screenshot(str(SCREENSHOTS / "deck-title.png"))
        browser.execute_script("const i = Reveal.getIndices(document.querySelector('.reveal img').closest('section'));"
                               "Reveal.slide(i.h, i.v)")  # the first figure
        time.sleep(0.5)
        browser.save_screenshot(str(SCREENSHOTS / "deck-figure.png"))


# --- accessibility: axe-core, WCAG 2.1 A and AA -------------------------------------------------------------------

def _axe(driver) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations on the page open in ``driver``: [{id, impact, help, nodes}]."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} missing: run `bash tools/browser_deps.sh` (make test does; it installs axe-core from npm)")
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        "   nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + (n.failureSummary || '').slice(0, 160))}))),"
        "  e => done([{id: 'axe-error', help: String(e), nodes: []}]));",
        WCAG,
    )


def _dark(driver) -> None:
    """The theme's dark mode (its toggle stores the choice in data-theme on <html>)."""
    driver.execute_script("document.documentElement.dataset.theme = 'dark'; document.documentElement.dataset.mode = 'dark';")
    time.sleep(0.3)


PAGES = ["index", "assignments", "teaching", *(nb.stem for nb in NOTEBOOKS)]


@pytest.mark.parametrize("page", PAGES)
def test_page_has_no_wcag_violation(browser, server, page):
    _open(browser, f"{server}/{page}.html")
    assert _axe(browser) == []
    if page in ("index", "teaching", MATH_PAGE):
        _dark(browser)
        assert _axe(browser) == [], "dark mode"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_deck_has_no_wcag_violation(browser, server, nb: Path):
    """The title slide of every deck, and every slide of one (reveal hides the slides that are not shown)."""
    _open_deck(browser, f"{server}/{slides.DECKS}/{nb.stem}.html")
    assert _axe(browser) == []
    if nb.stem == MATH_PAGE:
        for index in range(1, browser.execute_script("return Reveal.getTotalSlides()")):
            browser.execute_script("Reveal.next()")
            time.sleep(0.1)
            assert _axe(browser) == [], f"slide {index + 1}: {browser.execute_script('return location.hash')}"


FAULTY_PAGE = """<!DOCTYPE html><html lang="en"><head><title>A page with violations</title></head><body><main>
<h1>Made to fail</h1>
<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=">
<p style="color:#aaa;background:#fff">grey on white, 2.3:1</p>
<button></button>
</main></body></html>"""


def test_axe_finds_the_violations_of_a_page_made_to_fail(browser, tmp_path):
    """The accessibility check can fail: a figure without alt text, text of too little contrast, a nameless button."""
    (tmp_path / "faulty.html").write_text(FAULTY_PAGE)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(tmp_path)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{httpd.server_address[1]}/faulty.html")
        found = {v["id"] for v in _axe(browser)}
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert {"image-alt", "color-contrast", "button-name"} <= found, found


# --- the handout --------------------------------------------------------------------------------------------------

def test_handout_is_the_whole_lecture_with_rendered_math_and_no_live_parts(built_site: Path):
    from pypdf import PdfReader

    pdf = built_site / handout.FILE
    reader = PdfReader(pdf)
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    flat = " ".join(text.split())
    titles = [site.title_and_intro(nbformat.read(nb, as_version=4))[0] for nb in NOTEBOOKS]
    assert len(reader.pages) >= 3 * len(NOTEBOOKS)
    for title in titles:
        assert " ".join(title.split()) in flat, title
    def flat_outline(items):
        for item in items:
            yield from flat_outline(item) if isinstance(item, list) else ["".join(item.title.split())]

    outline = list(flat_outline(reader.outline))  # Chromium joins a heading's wrapped lines without a space
    assert all(any("".join(t.split()) in o for o in outline) for t in titles), outline  # a bookmark per notebook
    for absent in ("Colab set-up", "google.colab", "Interactive widget", "VBox(children"):
        assert absent not in text, f"the handout shows {absent!r}"
    # Math is typeset: no formula of the markdown shows up as its TeX source (unless code prints the same text).
    cells = [c for nb in NOTEBOOKS for c in nbformat.read(nb, as_version=4).cells]
    code = " ".join(c.source + str(c.get("outputs", "")) for c in cells if c.cell_type == "code")
    formulas = {m[1:-1].strip() for c in cells if c.cell_type == "markdown" for m in re.findall(r"\$[^$\n]+\$", c.source)}
    tex = [f for f in formulas if "\\" in f and f not in code]
    assert len(tex) > 50 and not [f for f in tex if " ".join(f.split()) in flat], [f for f in tex if f in flat][:5]
    figures = sum(marking.figure_count(c) for nb in NOTEBOOKS for c in nbformat.read(nb, as_version=4).cells)
    images = sum(len(page.images) for page in reader.pages)
    assert images >= figures, (images, figures)
    assert "/StructTreeRoot" in reader.trailer["/Root"], "not a tagged PDF"
