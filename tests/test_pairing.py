"""Every notebook is a Jupytext pair whose .py and .ipynb hold the same cells.

A stale .ipynb is what Colab users open, so a pair out of sync fails the build.  Fix: `make sync`.
"""

from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAIRED = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "assignments").glob("*.ipynb"))
SOURCES = sorted((ROOT / "notebooks").glob("[0-9]*.py")) + sorted((ROOT / "assignments").glob("[0-9]*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", ()))) for c in nb.cells]


def test_there_are_notebooks():
    assert len(list((ROOT / "notebooks").glob("[0-9]*.ipynb"))) >= 4


@pytest.mark.parametrize("nb", PAIRED, ids=lambda p: p.name)
def test_ipynb_matches_its_py(nb: Path):
    src = nb.with_suffix(".py")
    assert src.is_file(), f"{nb.name} has no paired {src.name}: run `jupytext --set-formats ipynb,py:percent {nb}`"
    # Compare what a reader sees (cell types, sources, tags), not the header that names jupytext's version.
    cells_ipynb = _cells(jupytext.read(nb))
    cells_py = _cells(jupytext.read(src))
    assert len(cells_ipynb) == len(cells_py), f"{nb.name} and {src.name} differ in cell count: run `make sync`"
    for i, (a, b) in enumerate(zip(cells_ipynb, cells_py, strict=True)):
        assert a == b, f"cell {i} of {nb.name} differs from {src.name}: edit the .py, then run `make sync`"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_every_py_has_its_ipynb(src: Path):
    assert src.with_suffix(".ipynb").is_file(), f"{src.name} has no .ipynb: run `make sync`"


LECTURE = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


@pytest.mark.parametrize("nb", LECTURE, ids=lambda p: p.name)
def test_committed_outputs_have_figures_and_no_errors(nb: Path):
    """What Colab users and the HTML pages show: every figure drawn, no error output hidden in a cell.

    nbval does not fail on an error raised while a figure is rendered after the cell (it lands in the
    outputs), nor on a figure that was never drawn because the kernel ran with a non-inline backend.
    """
    import nbformat

    cells = nbformat.read(nb, as_version=4).cells
    outputs = [o for c in cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o.get("ename", "") for o in outputs if o.output_type == "error"]
    errors += [o.text[:200] for o in outputs if o.output_type == "stream" and "Traceback" in o.get("text", "")]
    assert not errors, f"{nb.name} was committed with error outputs {errors}: fix the cell, then `make sync`"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{nb.name} has no figure in its outputs: run `make sync` (figures need the inline backend)"
    # A Figure left as a cell's value is drawn twice (as the value and by the inline backend).
    twice = [o for o in images if o.output_type == "execute_result"]
    assert not twice, f"{nb.name} shows {len(twice)} figure(s) twice: assign the returned Figure (fig = ...)"
