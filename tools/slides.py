"""Static reveal.js decks, one per notebook, built with the course website (``make site``; tools/site.py calls
:func:`build_decks` after Sphinx).

    python -m tools.slides --out build/site [--notebooks DIR]     the decks alone, into an already built site

Each deck is nbconvert's reveal.js export of the notebook as the website stages it (tools/site.py: no Colab set-up
cell, no widget), laid out by the cells' ``slideshow`` metadata (the conventions: tools/marking.py), with the
template in site/deck/.  Everything it loads is served by the site:

* reveal.js 5 from the ``sphinx-revealjs`` package (pinned in the [site] extra), which ships reveal.js's built
  files (``dist/``, ``plugin/``); this is the maintained pip package that vendors reveal.js, so the website needs
  no Node.js.  Only its files are used (copied to ``_static/revealjs/``), not its Sphinx builder: our slides come
  from the notebooks' cell metadata, which RISE reads too.
* MathJax 3 from ``_static/mathjax/`` (sphinx-mathjax-offline), with assistive MathML for screen readers;
* the figures from ``_images/``, named by the SHA-256 of their bytes as MyST-NB names them (the deck and the page
  share one file), each with its cell's alt text.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert import SlidesExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from traitlets.config import Config

from tools import marking

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "site" / "deck"
#: Where the decks go in the built site, and where reveal.js goes.
DECKS, REVEAL = "slides", "_static/revealjs"
#: reveal.js's files a deck needs (its Sass sources and the plugins we do not load are left out).
REVEAL_PARTS = ("LICENSE", "dist", "plugin/notes")
#: The code's colours: the website's (pydata-sphinx-theme's default, from accessible-pygments), whose every colour
#: has a contrast of at least 4.5:1 (nbconvert's default style gives keywords 4.25:1 on the cell's grey).
PYGMENTS_STYLE = "a11y-high-contrast-light"


def reveal_source() -> Path:
    """reveal.js's built files as the ``sphinx-revealjs`` package ships them."""
    try:
        import sphinx_revealjs
    except ImportError as err:
        raise SystemExit("the decks need reveal.js from sphinx-revealjs: pip install -e '.[site]' (make site does)") from err
    src = Path(sphinx_revealjs.__file__).parent / "_static" / "revealjs"
    if not (src / "dist" / "reveal.js").is_file():
        raise SystemExit(f"{src} holds no dist/reveal.js: reinstall sphinx-revealjs (pip install -e '.[site]')")
    return src


def copy_reveal(site: Path) -> Path:
    """Copy reveal.js into ``site/_static/revealjs`` and return that folder."""
    src, dest = reveal_source(), site / REVEAL
    if dest.exists():
        shutil.rmtree(dest)
    for part in REVEAL_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dest / part)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dest / part)
    return dest


def _share_images(nb, images: Path, prefix: str) -> None:
    """Write every PNG/JPEG output to ``images/<sha256>.<ext>`` (MyST-NB's name for the same bytes, so the deck
    and the page share the file) and point the output at it (nbconvert's ``filenames`` metadata)."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            for mime, ext in (("image/png", ".png"), ("image/jpeg", ".jpeg")):
                if mime not in output.get("data", {}):
                    continue
                data = base64.b64decode(output["data"][mime])
                name = hashlib.sha256(data).hexdigest() + ext
                if not (images / name).is_file():
                    images.mkdir(parents=True, exist_ok=True)
                    (images / name).write_bytes(data)
                output.setdefault("metadata", {}).setdefault("filenames", {})[mime] = f"{prefix}/{name}"


def deck_html(staged, title: str, page_url: str, static: str = "../_static", images: Path | None = None) -> str:
    """The HTML of the deck of a staged notebook (tools/site.py's ``stage_notebook``).  Paths are relative to the
    deck's folder: ``static`` is the site's ``_static``, ``page_url`` the notebook's page."""
    nb = copy.deepcopy(staged)
    if images is not None:
        _share_images(nb, images, f"{static.rsplit('/', 1)[0]}/_images")
    nb.metadata["title"] = title
    remove = TagRemovePreprocessor(
        remove_cell_tags=marking.REMOVE_CELL_TAGS, remove_input_tags=marking.REMOVE_INPUT_TAGS,
        remove_all_outputs_tags=marking.REMOVE_OUTPUT_TAGS,
    )  # fmt: skip
    exporter = SlidesExporter(
        config=Config({"CSSHTMLHeaderPreprocessor": {"style": PYGMENTS_STYLE}}),
        extra_template_basedirs=[str(TEMPLATE.parent)], template_name=TEMPLATE.name,
        exclude_input_prompt=True, exclude_output_prompt=True, reveal_url_prefix=f"{static}/revealjs",
        reveal_theme="white", reveal_transition="none",
    )  # fmt: skip
    exporter.register_preprocessor(remove, enabled=True)
    resources = {"deck": {"mathjax_url": f"{static}/mathjax/tex-chtml.js", "css_url": f"{static}/deck.css",
                          "page_url": page_url}}  # fmt: skip
    html, _ = exporter.from_notebook_node(nb, resources=resources)
    return html


def build_decks(staged: list[tuple[str, str, nbformat.NotebookNode]], site: Path) -> list[Path]:
    """Write ``site/slides/<name>.html`` for each (name, title, staged notebook) and reveal.js into the site."""
    copy_reveal(site)
    shutil.copy2(ROOT / "site" / "_static" / "deck.css", site / "_static" / "deck.css")
    out = []
    for name, title, nb in staged:
        path = site / DECKS / f"{name}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(deck_html(nb, title, f"../{name}.html", images=site / "_images"), encoding="utf-8")
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    from tools import site

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="folder of NN_*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site", help="the built website")
    args = parser.parse_args(argv)
    if not (args.out / "_static" / "mathjax" / "tex-chtml.js").is_file():
        raise SystemExit(f"{args.out} is not a built website (no _static/mathjax): run make site first")
    decks = build_decks(site.staged_notebooks(args.notebooks.resolve()), args.out.resolve())
    print(f"{len(decks)} decks in {args.out / DECKS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
