"""How a lecture notebook is marked for the classroom, and the checks that keep it marked (tests/test_site.py).

Marking lives in standard cell metadata, written on the cell's ``# %%`` line of the Jupytext ``.py`` (the source
you edit; ``make sync`` carries it into the ``.ipynb``)::

    # %% [markdown] slideshow={"slide_type": "slide"}
    # ## 3. Prince's figure ...

    # %% slideshow={"slide_type": "subslide"} tags=["slides-output-only"] mystnb={"image": {"alt": "Two panels ..."}}
    fig, axes = plt.subplots(...)

    # %% [markdown] slideshow={"slide_type": "subslide"} anchor="prince-predict"
    # > **Predict, then run.** ...

* ``slideshow.slide_type`` (what RISE in JupyterLab and nbconvert's reveal.js exporter read): ``slide`` starts a
  new slide, ``subslide`` a new slide below the current one (reveal's vertical stack), ``fragment`` appears on the
  next click within the current slide, ``-`` (or nothing) continues the current slide or fragment, ``skip`` is
  left out of the slides, ``notes`` becomes speaker notes (press ``s`` in a deck).
* ``tags``: ``slides-output-only`` shows a code cell's output without its code in the static deck (the website and
  RISE still show the code); the website's own tags (``remove-cell``, ``remove-input``, ``remove-output``,
  ``hide-input``, ``hide-output``) apply to the deck too, which cannot fold, so ``hide-*`` removes there.
* ``mystnb.image.alt`` (read by MyST-NB; the deck and the handout use it too): the alt text of the cell's figure,
  a sentence or two that say what the figure shows *and what it shows about the lecture's claim*.
* ``anchor``: a name (lower case, digits, hyphens) that the teaching guide uses to point at the cell
  (``[[cell:NAME]]`` in site/teaching.md); the website puts an HTML anchor ``cell-NAME`` before the cell.

:func:`problems` lists what breaks the rules below (each message names the notebook, the cell and the fix).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from tools import colab

SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")
#: Slide types that put a cell in the deck (``-`` continues the current slide).
SHOWN = {"slide", "subslide", "fragment", "-"}
STARTS = {"slide", "subslide"}
OUTPUT_ONLY_TAG = "slides-output-only"
#: MyST-NB tags that take something off the website; the deck removes the same (and what the website folds).
REMOVE_CELL_TAGS = {"remove-cell"}
REMOVE_INPUT_TAGS = {"remove-input", "hide-input", OUTPUT_ONLY_TAG}
REMOVE_OUTPUT_TAGS = {"remove-output", "hide-output"}
PREDICT = re.compile(r"\*\*Predict, then run\b", re.IGNORECASE)
HEADING = re.compile(r"^#{1,2} \S")
ANCHOR = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
FIGURE_MIMES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")
#: The fewest words an alt text may have: what is drawn, and what it shows.
MIN_ALT_WORDS = 12
#: Alt text that says nothing (a file name, a placeholder): checked case-insensitively.
EMPTY_ALT = re.compile(r"^(?:figure|image|plot|graph|chart|todo|tbd|alt|png|\S+\.(?:png|jpe?g|svg|gif))\b", re.I)


def slide_type(cell) -> str:
    """The cell's slide type (``-`` when it has none)."""
    meta = cell.get("metadata", {}).get("slideshow", {})
    return meta.get("slide_type", "-") if isinstance(meta, dict) else "-"


def tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def figure_count(cell) -> int:
    """How many figure outputs (images) the cell has."""
    return sum(1 for o in cell.get("outputs", []) if any(m in o.get("data", {}) for m in FIGURE_MIMES))


def alt_text(cell) -> str:
    """The cell's figure alt text (``mystnb.image.alt``), '' where none."""
    image = cell.get("metadata", {}).get("mystnb", {}).get("image", {})
    alt = image.get("alt", "") if isinstance(image, dict) else ""
    return alt.strip() if isinstance(alt, str) else ""


def anchor(cell) -> str:
    value = cell.get("metadata", {}).get("anchor", "")
    return value if isinstance(value, str) else ""


def is_setup(cell) -> bool:
    return cell.cell_type == "code" and colab.SETUP_MARKER in cell.source


def in_deck(cell) -> bool:
    """Whether the static deck shows anything of this cell."""
    return slide_type(cell) in SHOWN and not tags(cell) & REMOVE_CELL_TAGS


def expected_slides(nb) -> int:
    """How many slides (reveal.js counts each vertical sub-slide) the deck of ``nb`` has: the first cell in the deck
    starts one, and each later cell of type ``slide`` or ``subslide`` that is in the deck starts another."""
    shown = [c for c in nb.cells if in_deck(c)]
    return (1 + sum(1 for c in shown[1:] if slide_type(c) in STARTS)) if shown else 0


def _where(name: str, index: int, cell) -> str:
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    return f"{name} cell {index} ({cell.cell_type}: {first[:60]!r})"


def problems(nb, name: str) -> list[str]:
    """What breaks the marking rules in notebook ``nb`` (file name ``name``); [] when it is marked."""
    out = []
    cells = nb.cells
    for i, cell in enumerate(cells):
        where = _where(name, i, cell)
        kind = slide_type(cell)
        if kind not in SLIDE_TYPES:
            out.append(f"{where}: slide_type {kind!r} is not one of {', '.join(SLIDE_TYPES)}")
            continue
        if i == 0 and kind != "slide":
            out.append(f"{where}: the title cell starts the deck: mark it slideshow={{\"slide_type\": \"slide\"}}")
        if is_setup(cell) and kind != "skip":
            out.append(f"{where}: the Colab set-up cell is no slide: mark it slideshow={{\"slide_type\": \"skip\"}}")
        if "solution" in tags(cell) and kind != "skip":
            out.append(f"{where}: a solution cell would give the answer away on a slide: mark it \"skip\"")
        if cell.cell_type == "markdown" and i > 0 and kind not in STARTS:
            text = cell.source.lstrip()
            if HEADING.match(text):
                out.append(f"{where}: a section heading starts a slide: mark it \"slide\" (or \"subslide\")")
            elif PREDICT.search(text):
                out.append(f"{where}: a 'Predict, then run' question gets a slide of its own: mark it \"subslide\"")
        figures = figure_count(cell)
        if figures:
            if not in_deck(cell) or tags(cell) & REMOVE_OUTPUT_TAGS:
                out.append(f"{where}: its figure is not in the deck (slide_type {kind!r}): mark it \"subslide\" "
                           "(with tags=[\"slides-output-only\"] to leave its code out of the deck)")  # fmt: skip
            alt = alt_text(cell)
            if not alt:
                out.append(f"{where}: its figure has no alt text: add mystnb={{\"image\": {{\"alt\": \"...\"}}}} saying "
                           "what it shows and what that shows")  # fmt: skip
            elif len(alt.split()) < MIN_ALT_WORDS or EMPTY_ALT.match(alt):
                out.append(f"{where}: alt text {alt!r} is too thin: say what the figure shows and its conclusion "
                           f"(at least {MIN_ALT_WORDS} words)")  # fmt: skip
            if figures > 1:
                out.append(f"{where}: {figures} figures share one alt text: draw one figure per cell")
        elif alt_text(cell) and cell.cell_type == "code" and cell.get("outputs"):
            out.append(f"{where}: alt text on a cell that has no figure output (a figure moved?)")
        name_ = anchor(cell)
        if "anchor" in cell.metadata and not ANCHOR.match(name_):
            out.append(f"{where}: anchor {name_!r}: use lower-case letters, digits and hyphens")
    return out


def lecture_problems(paths: list[Path]) -> list[str]:
    """:func:`problems` of every notebook, and what must hold across them: anchors and alt texts are unique."""
    out, anchors, alts = [], {}, {}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        out += problems(nb, path.name)
        for i, cell in enumerate(nb.cells):
            if name := anchor(cell):
                if name in anchors:
                    out.append(f"anchor {name!r} is on {anchors[name]} and on {path.name} cell {i}: names are unique")
                anchors[name] = f"{path.name} cell {i}"
            if alt := alt_text(cell):
                if alt in alts:
                    out.append(f"{path.name} cell {i} has the same alt text as {alts[alt]}: describe each figure")
                alts[alt] = f"{path.name} cell {i}"
    return out


def anchors(paths: list[Path]) -> dict[str, tuple[Path, int]]:
    """Every anchor of the lecture: name -> (notebook, cell index)."""
    found = {}
    for path in paths:
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if name := anchor(cell):
                found[name] = (path, i)
    return found
