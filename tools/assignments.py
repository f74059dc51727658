"""Repository tooling for the assignments' masters (not grading: that is ``python -m lecture_grading.grader``).

    python -m tools.assignments sync     rewrite each master's Colab set-up cell from tools.colab, re-pair it
    python -m tools.assignments check    the masters' set-up cells are the lecture's current one (tests run it)

The masters (``assignments/NN_name.py``, Jupytext-paired with ``.ipynb``) start, like the lecture notebooks,
with the Colab set-up cell that ``tools/colab.py`` generates from pyproject.toml: students' ``check("qN")``
needs only the package it installs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from tools import colab

ROOT = colab.ROOT
MASTERS_DIR = ROOT / "assignments"


def masters() -> list[Path]:
    """Every master notebook, assignments/NN_*.ipynb."""
    return sorted(MASTERS_DIR.glob("[0-9]*.ipynb"))


def _setup_index(cells) -> int | None:
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and colab.SETUP_MARKER in cell.source:
            return i
    return None


def check() -> list[str]:
    """Masters whose Colab set-up cell is missing, stale or not the first code cell (empty when fine)."""
    import nbformat

    errs = []
    for master in masters():
        nb = nbformat.read(master, as_version=4)
        i = _setup_index(nb.cells)
        if i is None:
            errs.append(f"{master.name}: has no Colab set-up cell (run `python -m tools.assignments sync`)")
        elif nb.cells[i].source.strip() != colab.setup_source():
            errs.append(f"{master.name}: Colab set-up cell is stale (run `python -m tools.assignments sync`)")
        elif any(c.cell_type == "code" for c in nb.cells[:i]):
            errs.append(f"{master.name}: the Colab set-up cell must be the first code cell")
    return errs


def sync() -> int:
    """Rewrite the Colab set-up cell of every master .py from tools.colab, then re-pair its .ipynb."""
    import jupytext
    import nbformat

    for src in sorted(MASTERS_DIR.glob("[0-9]*.py")):
        text = src.read_text()
        nb = jupytext.reads(text, fmt="py:percent")
        i = _setup_index(nb.cells)
        if i is None:
            first_code = next(j for j, c in enumerate(nb.cells) if c.cell_type == "code")
            nb.cells.insert(first_code, nbformat.v4.new_code_cell(colab.setup_source()))
        else:
            nb.cells[i].source = colab.setup_source()
        new = jupytext.writes(nb, fmt="py:percent")
        if new != text:
            src.write_text(new)
            print(f"updated {src.relative_to(ROOT)}")
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(src)], check=True, cwd=ROOT)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["sync", "check"])
    args = parser.parse_args(argv)
    if args.command == "sync":
        return sync()
    errs = check()
    for e in errs:
        print(e, file=sys.stderr)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
