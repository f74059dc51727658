"""Every notebook is a Jupytext pair whose .py and .ipynb hold the same cells.

A stale .ipynb is what Colab users open, so a pair out of sync fails the build.  Fix: `make sync`.
"""

from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAIRED = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "assignments").glob("*.ipynb"))
SOURCES = sorted((ROOT / "notebooks").glob("[0-9]*.py")) + sorted((ROOT / "assignments").glob("[0-9]*.py"))


def test_there_are_notebooks():
    assert len(list((ROOT / "notebooks").glob("[0-9]*.ipynb"))) >= 4


@pytest.mark.parametrize("nb", PAIRED, ids=lambda p: p.name)
def test_ipynb_matches_its_py(nb: Path):
    src = nb.with_suffix(".py")
    assert src.is_file(), f"{nb.name} has no paired {src.name}: run `jupytext --set-formats ipynb,py:percent {nb}`"
    from_ipynb = jupytext.writes(jupytext.read(nb), fmt="py:percent")
    assert from_ipynb == src.read_text(), f"{nb.name} and {src.name} differ: edit the .py, then run `make sync`"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.name)
def test_every_py_has_its_ipynb(src: Path):
    assert src.with_suffix(".ipynb").is_file(), f"{src.name} has no .ipynb: run `make sync`"
