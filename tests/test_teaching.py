"""Teaching it in class, without a browser: the notebooks are marked for slides and alt text (tools/marking.py), the
per-cell timings of the full run (tools/timings.py), and the teaching guide rendered from both (tools/teaching.py).

The browser half (the decks, the guide's page, the handout, axe-core) is tests/test_site.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from tools import colab, marking, teaching, timings

ROOT = colab.ROOT
NOTEBOOKS_DIR = Path(os.environ.get("SITE_NOTEBOOKS", ROOT / "notebooks")).resolve()
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9]*.ipynb"))
GUIDE = ROOT / "site" / "teaching.md"


# --- marking ------------------------------------------------------------------------------------------------------

def test_every_notebook_is_marked_for_slides_and_every_figure_has_alt_text():
    assert NOTEBOOKS
    assert marking.lecture_problems(NOTEBOOKS) == []


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_every_committed_figure_output_has_alt_text(nb: Path):
    """The check the website relies on, stated directly: no image output without its cell's alt text."""
    for i, cell in enumerate(nbformat.read(nb, as_version=4).cells):
        if marking.figure_count(cell):
            alt = marking.alt_text(cell)
            assert len(alt.split()) >= marking.MIN_ALT_WORDS, f"{nb.name} cell {i}: alt text {alt!r}"


def _nb(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _md(source, kind=None, **meta):
    meta = {**({"slideshow": {"slide_type": kind}} if kind else {}), **meta}
    return nbformat.v4.new_markdown_cell(source, metadata=meta)


def _code(source, kind=None, outputs=(), **meta):
    meta = {**({"slideshow": {"slide_type": kind}} if kind else {}), **meta}
    return nbformat.v4.new_code_cell(source, metadata=meta, outputs=list(outputs))


FIGURE = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
ALT = "Variance per layer of a 50-layer ReLU network on a log scale: the He curve stays level, so He's variance works."


def test_a_well_marked_notebook_passes_and_counts_its_slides():
    nb = _nb(
        _md("# Title", "slide"),
        _code(f"{colab.SETUP_MARKER}\nimport sys", "skip"),
        _md("## 1. Section", "slide"),
        _code("x = 1", "fragment"),
        _md("> **Predict, then run.** What is x?", "subslide"),
        _code("plot()", "subslide", [FIGURE], mystnb={"image": {"alt": ALT}}, tags=[marking.OUTPUT_ONLY_TAG]),
        _md("Some words"),  # continues the slide
        _code("answer = 1", "skip", tags=["solution"]),
        _md("notes for me", "notes"),
    )
    assert marking.problems(nb, "01_x.ipynb") == []
    assert marking.expected_slides(nb) == 4  # title, section, predict, figure


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([_md("# Title")], "the title cell starts the deck"),
        ([_md("# T", "slide"), _code(f"{colab.SETUP_MARKER}\n", "-")], "Colab set-up cell is no slide"),
        ([_md("# T", "slide"), _code("a = 1", "fragment", tags=["solution"])], "give the answer away"),
        ([_md("# T", "slide"), _md("## 2. Next section")], "a section heading starts a slide"),
        ([_md("# T", "slide"), _md("> **Predict, then run.** Which?", "fragment")], "gets a slide of its own"),
        ([_md("# T", "slide"), _code("plot()", "skip", [FIGURE], mystnb={"image": {"alt": ALT}})], "not in the deck"),
        ([_md("# T", "slide"), _code("plot()", "subslide", [FIGURE])], "has no alt text"),
        ([_md("# T", "slide"), _code("plot()", "subslide", [FIGURE], mystnb={"image": {"alt": "figure.png"}})], "too thin"),
        ([_md("# T", "slide"), _code("plot()", "subslide", [FIGURE, FIGURE], mystnb={"image": {"alt": ALT}})],
         "share one alt text"),
        ([_md("# T", "slide"), _code("x", "subslide", [nbformat.v4.new_output("stream", text="1\n")],
                                     mystnb={"image": {"alt": ALT}})], "no figure output"),
        ([_md("# T", "sideslide")], "is not one of"),
        ([_md("# T", "slide", anchor="Bad Name")], "lower-case letters"),
    ],
)
def test_marking_rules_reject_what_breaks_them(cells, message):
    found = marking.problems(_nb(*cells), "01_x.ipynb")
    assert any(message in p for p in found), found


def test_anchors_and_alt_texts_are_unique_across_the_lecture(tmp_path):
    for name in ("01_a", "02_b"):
        nb = _nb(_md("# T", "slide", anchor="same"),
                 _code("plot()", "subslide", [FIGURE], mystnb={"image": {"alt": ALT}}))  # fmt: skip
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    found = marking.lecture_problems(sorted(tmp_path.glob("*.ipynb")))
    assert any("names are unique" in p for p in found) and any("same alt text" in p for p in found), found


# --- timings ------------------------------------------------------------------------------------------------------

def _timed(*sources_and_seconds, start="2026-01-01T10:00:00"):
    """A notebook whose code cells carry nbclient's timing metadata (as record_timing writes it)."""
    from datetime import datetime, timedelta

    t = datetime.fromisoformat(start)
    cells = [nbformat.v4.new_markdown_cell("# T")]
    for source, seconds in sources_and_seconds:
        end = t + timedelta(seconds=seconds)
        meta = {"execution": {"iopub.execute_input": t.isoformat() + "Z", "shell.execute_reply": end.isoformat() + "Z"}}
        cells.append(nbformat.v4.new_code_cell(source, metadata=meta))
        t = end
    return _nb(*cells)


def test_timings_record_every_code_cell_by_its_source(tmp_path):
    path = timings.record(_timed(("a = 1", 0.5), ("train()", 12.25)), tmp_path / "01_x.ipynb")
    data = json.loads(path.read_text())
    entry = data["notebooks"]["01_x"]
    assert [c["seconds"] for c in entry["cells"]] == [0.5, 12.25] and entry["seconds"] == 12.8
    assert timings.seconds_of(data, "01_x", "train()") == 12.25
    assert timings.seconds_of(data, "01_x", "train(steps=10)") is None  # edited since: no stale number
    assert entry["cpus"] == os.cpu_count() and len(entry["load_average_at_end"]) == 3
    with pytest.raises(ValueError, match="record_timing"):
        timings.record(_nb(nbformat.v4.new_code_cell("x")), tmp_path / "02_y.ipynb")


def test_timings_of_notebooks_finishing_at_once_are_all_kept(tmp_path):
    """make outputs runs two notebooks at a time, in two processes: neither write may lose the other's entry."""
    names = [f"{i:02d}_n" for i in range(1, 9)]
    threads = [threading.Thread(target=timings.record, args=(_timed(("x", 1.0)), tmp_path / f"{n}.ipynb"))
               for n in names]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path; import nbformat;"
            "from tools import timings; nb = nbformat.reads(sys.argv[2], as_version=4);"
            "timings.record(nb, Path(sys.argv[3]))")  # fmt: skip
    doc = nbformat.writes(_timed(("y", 2.0)))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(ROOT), doc, str(tmp_path / f"{i}_p.ipynb")])
             for i in range(20, 24)]  # fmt: skip
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert set(timings.load(tmp_path)["notebooks"]) == set(names) | {f"{i}_p" for i in range(20, 24)}


def test_overlapping_runs_are_found(tmp_path):
    timings.record(_timed(("x", 10.0), start="2026-01-01T10:00:00"), tmp_path / "01_a.ipynb")
    timings.record(_timed(("x", 10.0), start="2026-01-01T10:00:05"), tmp_path / "02_b.ipynb")
    timings.record(_timed(("x", 10.0), start="2026-01-01T11:00:00"), tmp_path / "03_c.ipynb")
    data = timings.load(tmp_path)
    assert timings.overlapping(data, "01_a") == ["02_b"] and timings.overlapping(data, "03_c") == []


def test_outputs_stores_the_timings_before_it_strips_them():
    """tools/outputs.py calls timings.record between executing a notebook and removing nbclient's timestamps."""
    source = (ROOT / "tools" / "outputs.py").read_text()
    assert source.index("timings.record(nb, out_path)") < source.index('cell.metadata.pop("execution", None)')


# --- the guide ----------------------------------------------------------------------------------------------------

def test_guide_refers_only_to_marked_cells_and_every_time_is_measured_for_these_notebooks():
    template = GUIDE.read_text()
    lecture = teaching.Lecture(NOTEBOOKS_DIR)
    names = teaching.references(template)
    assert names and names <= set(lecture.anchors), names - set(lecture.anchors)
    stale = [a for a in names if lecture.seconds(a) is None]
    assert not stale, (f"{stale}: no time measured for these cells' current source; run `make outputs` (full mode, "
                       "real CIFAR-10), which writes notebooks/timings.json")  # fmt: skip
    assert all(lecture.notebook_seconds(n) is not None for n in lecture.nbs), "a notebook changed since make outputs"
    page = teaching.render(template, NOTEBOOKS_DIR)
    assert "[[" not in page and "not measured" not in page
    for minutes in (50, 90):
        assert f"| **{minutes}** |" in page  # each plan adds up


def _copy_lecture(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for nb in NOTEBOOKS:
        shutil.copy2(nb, folder / nb.name)
    if (NOTEBOOKS_DIR / timings.FILE).is_file():
        shutil.copy2(NOTEBOOKS_DIR / timings.FILE, folder / timings.FILE)
    return folder


def test_guide_breaks_loudly_when_a_cell_it_names_disappears(tmp_path):
    folder = _copy_lecture(tmp_path)
    name, index = teaching.Lecture(folder).anchors["bn-covariate-shift"]
    nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    del nb.cells[index]
    nbformat.write(nb, folder / f"{name}.ipynb")
    with pytest.raises(SystemExit, match="bn-covariate-shift.*no notebook marks"):
        teaching.render(GUIDE.read_text(), folder)


def test_guide_shows_no_stale_time_for_an_edited_cell(tmp_path):
    folder = _copy_lecture(tmp_path)
    name, index = teaching.Lecture(folder).anchors["prince-figure"]
    nb = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    nb.cells[index].source += "\n# edited after the run"
    nbformat.write(nb, folder / f"{name}.ipynb")
    page = teaching.render("[[run:prince-figure]] / [[notebook-time:04]]", folder)
    assert page.count("not measured since the cell changed") == 2, page


def test_guide_plans_must_add_up_and_name_real_notebooks():
    with pytest.raises(SystemExit, match="adds up to 45 minutes"):
        teaching.render("```plan 50\n45 | 01 | talk | -\n```\n", NOTEBOOKS_DIR)
    with pytest.raises(SystemExit, match="no notebook number '42'"):
        teaching.render("```plan 5\n5 | 42 | talk | -\n```\n", NOTEBOOKS_DIR)
    with pytest.raises(SystemExit, match="no file no/such.md"):
        teaching.render("[[repo:no/such.md]]", NOTEBOOKS_DIR)
    ok = teaching.render("```plan 5\n3 | 01 | talk | diag-power\n2 | - | questions | -\n```\n", NOTEBOOKS_DIR)
    assert "| **5** |" in ok and "cell-diag-power" in ok
