"""The course website (`make site`): staging, the offline build, and the pages in a real browser.

The site is built once per session from the committed notebooks into a temporary folder.  The browser test
opens it in headless Chromium (tools/browser_deps.sh installs Chromium and chromedriver) through a local HTTP
server, as a reader would, and saves screenshots under build/screenshots/ for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest
from filelock import FileLock

from tools import colab, site

ROOT = colab.ROOT
#: SITE_NOTEBOOKS=folder runs these tests on other notebooks (e.g. a branch's, or a full run in build/executed).
NOTEBOOKS_DIR = Path(os.environ.get("SITE_NOTEBOOKS", ROOT / "notebooks")).resolve()
NOTEBOOKS = site.lecture_notebooks(NOTEBOOKS_DIR)
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
#: The notebook page the browser test reads: math, figures, the explorer.
MATH_PAGE = "04_xavier_and_he"


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
            (tmp / "built").touch()
    return out


ASSET = re.compile(r"""<(?:script|img|link|iframe|source)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.I)


def test_pages_load_no_asset_from_another_host(built_site: Path):
    pages = sorted(built_site.glob("*.html"))
    assert {p.stem for p in pages} >= {"index", "assignments", *(nb.stem for nb in NOTEBOOKS)}
    for page in pages:
        for url in ASSET.findall(page.read_text(encoding="utf-8")):
            assert not urllib.parse.urlsplit(url).netloc and not url.startswith("//"), f"{page.name} loads {url}"
    assert (built_site / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_every_notebook_page_has_its_title_and_colab_link(built_site: Path):
    for nb in NOTEBOOKS:
        html = (built_site / f"{nb.stem}.html").read_text(encoding="utf-8")
        title, _ = site.title_and_intro(nbformat.read(nb, as_version=4))
        assert f"<title>{title}" in html.replace("&#39;", "'"), nb.name
        assert colab.colab_url(Path("notebooks") / nb.name) in html
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
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(f"{' and '.join(missing)} missing: run `bash tools/browser_deps.sh` (make test does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,1400",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
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
    assert {f"{nb.stem}.html" for nb in NOTEBOOKS} | {"assignments.html"} <= pages, pages
    for url in sorted(set(links)):
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
    links = browser.execute_script("return Array.from(document.querySelectorAll('p.colab-link a')).map(a => a.href)")
    assert links == [colab.colab_url(f"notebooks/{MATH_PAGE}.ipynb")]
    browser.execute_script("document.querySelectorAll('.cell_output img')[0].scrollIntoView()")
    browser.save_screenshot(str(SCREENSHOTS / "notebook-figure.png"))
    browser.execute_script(
        "const n = Array.from(document.querySelectorAll('.cell_output em'))"
        ".find(e => e.innerText.startsWith('Interactive widget')); if (n) n.scrollIntoView();"
    )
    browser.save_screenshot(str(SCREENSHOTS / "notebook-explorer.png"))
    assert _foreign_requests(browser, server) == []
