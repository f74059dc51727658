"""The printable handout: the whole lecture as one PDF (``make handout``; ``make site`` puts it on the website).

    python -m tools.handout [--notebooks DIR] [--out build/handout/lecture-handout.pdf]

How: Sphinx's ``singlehtml`` builder writes the ten notebooks, staged as the website stages them (no Colab set-up
cell, no widget; tools/site.py), as ONE page with the website's configuration; headless Chromium opens it, waits
until MathJax has typeset every formula, and prints it with the DevTools ``Page.printToPDF`` command (A4, page
numbers in the footer, a tagged PDF with an outline of the headings, for screen readers and for navigation).

Why Chromium: the handout then shows exactly what the website shows (the same MathJax, fonts, figures and output
blocks), it runs offline, and Chromium is already what the website's tests run in (tools/browser_deps.sh installs
it).  LaTeX (nbconvert's PDF export, or Sphinx's latexpdf) would need a TeX installation of several GB and renders
the notebooks' HTML outputs and Unicode differently from the website; WeasyPrint cannot run MathJax.  The print
layout is site/_static/print.css (also used when a reader prints a page of the website).
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat

from lecture_utils import atomic
from tools import browser

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "site"
FILE = "lecture-handout.pdf"
INDEX = """# {title}

**The lecture's notebooks, printed.** {intro}

Each chapter is one notebook as it runs in full mode on the real CIFAR-10: its text, math, code, printed outputs and
figures. What only runs live is left out (the cell that installs the package in Colab, the slider explorer): run a notebook in Colab or
JupyterLab to use them (links under each chapter's title).

```{{toctree}}
:maxdepth: 1

{toctree}
```
"""


def stage(notebooks_dir: Path, src: Path) -> list[str]:
    """The handout's Sphinx source in ``src``: the staged notebooks (no live-only notes) and an index page."""
    from tools import site  # site imports this module

    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    names = []
    for name, _title, nb in site.staged_notebooks(notebooks_dir):
        for cell in nb.cells:  # a static page cannot run a widget; on paper the note about it is noise
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if o.get("data") != {"text/markdown": site.LIVE_ONLY_NOTE}]
        nbformat.write(nb, src / f"{name}.ipynb")
        names.append(name)
    template = (SITE / "index.md").read_text()
    title = template.splitlines()[0].lstrip("# ").strip()
    intro = template.split("\n\n")[1].replace("\n", " ").strip()
    (src / "index.md").write_text(INDEX.format(title=title, intro=intro, toctree="\n".join(names)))
    return names


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(folder: Path):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def chromium():
    """A headless Chromium for printing (one clear message when it or its driver is missing)."""
    try:
        return browser.chromium(timeout=300)
    except FileNotFoundError as err:
        raise SystemExit(f"the handout is printed by headless Chromium: {err}") from None


#: Page.printToPDF's options: A4, 1.5 cm margins, page numbers in the footer, a tagged PDF with an outline.
PRINT = {
    "paperWidth": 8.27, "paperHeight": 11.69, "marginTop": 0.6, "marginBottom": 0.7, "marginLeft": 0.6,
    "marginRight": 0.6, "printBackground": True, "preferCSSPageSize": False, "displayHeaderFooter": True,
    "headerTemplate": "<span></span>",
    "footerTemplate": '<div style="font-size:8px;width:100%;text-align:center;color:#444">'
                      '<span class="pageNumber"></span> / <span class="totalPages"></span></div>',
    "generateTaggedPDF": True, "generateDocumentOutline": True,
}  # fmt: skip


def print_pdf(page: Path, pdf: Path) -> Path:
    """Print the HTML file ``page`` (served from its folder) to ``pdf`` once MathJax has typeset it."""
    httpd = _serve(page.parent)
    driver = chromium()
    try:
        driver.get(f"http://127.0.0.1:{httpd.server_address[1]}/{page.name}")
        state = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) { done('no MathJax'); return; }"
            "MathJax.startup.promise.then(() => document.fonts.ready).then(() => done("
            "  document.querySelectorAll('mjx-merror').length ? 'MathJax errors' : 'ok'), e => done(String(e)));"
        )
        if state != "ok":
            raise SystemExit(f"the handout's math did not render ({state}): see {page}")
        data = driver.execute_cdp_cmd("Page.printToPDF", PRINT)["data"]
    finally:
        driver.quit()
        httpd.shutdown()
        httpd.server_close()
    with atomic.replace(pdf) as tmp:
        tmp.write_bytes(base64.b64decode(data))
    return pdf


def build(notebooks_dir: Path, pdf: Path, src: Path) -> Path:
    """Stage, build the single page with Sphinx, print it to ``pdf``."""
    stage(notebooks_dir, src)
    html = src.with_name(src.name + "-html")
    cmd = [sys.executable, "-m", "sphinx", "-b", "singlehtml", "-q", "-c", str(SITE), str(src), str(html)]
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"sphinx could not build the handout's page (exit status {done.returncode})")
    return print_pdf(html / "index.html", pdf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="folder of NN_*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "handout" / FILE)
    parser.add_argument("--src", type=Path, default=ROOT / "build" / "handout-src", help="staging folder")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    pdf = build(args.notebooks.resolve(), args.out.resolve(), args.src.resolve())
    print(f"{time.perf_counter() - start:6.1f} s  handout: {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
