"""What grading runs of a submission: its code cells in order, each question's tests at its ``check("qN")``.

``read`` reads a submitted notebook as data (JSON, never executed, never written to; no schema library: a
submission is hostile input, and the grader only needs each cell's type and source).  ``plan`` turns it into
steps: code cells in order, except the cell that defines ``check`` and the ``check(...)`` calls; at the first
``check("qN")`` of each auto-graded question, question N's tests instead.  A question without such a cell has
its tests after the last cell; cells after the last tests are not run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lecture_grading.checks import TestSpec
from lecture_grading.grader.master import CHECK_CALL, CHECKS_TITLE, Assignment, source_of

MAX_NOTEBOOK = 64 << 20  # bytes: a submission larger than this is refused unread


class Unreadable(ValueError):
    """The submission is not a notebook the grader can read."""


@dataclass
class Notebook:
    cells: list[tuple[str, str]]  # (cell type, source)
    metadata: dict = field(default_factory=dict)


def read(path: Path) -> Notebook:
    """A submitted notebook's cells and metadata (Unreadable, with the reason, if it is not a notebook)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_NOTEBOOK:
            raise Unreadable(f"larger than {MAX_NOTEBOOK >> 20} MiB")
        with open(path, encoding="utf-8") as f:  # read-only: nothing is ever written next to it
            data = json.load(f)
    except Unreadable:
        raise
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Unreadable(f"{type(e).__name__}: {e}") from None
    if type(data) is not dict or type(data.get("cells")) is not list or data.get("nbformat") != 4:
        raise Unreadable("not a Jupyter notebook in format 4 (a JSON object with a list of cells)")
    cells = []
    for cell in data["cells"]:
        if type(cell) is not dict or cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise Unreadable("a cell without a known cell_type")
        cells.append((cell["cell_type"], source_of(cell)))
    metadata = data.get("metadata") if type(data.get("metadata")) is dict else {}
    return Notebook(cells, metadata)


def assignment_of(nb: Notebook) -> str:
    """The assignment a submission answers: its metadata, else the name in its ``check`` cell."""
    meta = nb.metadata.get("assignment")
    name = meta.get("name") if type(meta) is dict else None
    if type(name) is str and name:
        return name
    for kind, src in nb.cells:
        m = re.search(r"check = Checks\('(\w+)'", src)
        if kind == "code" and src.startswith(CHECKS_TITLE.split(":")[0]) and m:
            return m.group(1)
    return ""


@dataclass
class Step:
    kind: str  # "cell" or "test"
    question: str  # the question it belongs to (a cell: the question whose tests come next)
    cell: int = 0  # position of the cell in the notebook (1-based), for "cell"
    source: str = ""
    test: TestSpec | None = None


def plan(nb: Notebook, assignment: Assignment) -> tuple[list[Step], dict[str, list[int]]]:
    """The steps grading runs, and for each question the cells that run before its tests."""
    auto = [q.name for q in assignment.auto]
    tests = {q.name: q.tests for q in assignment.auto}
    steps, pending, placed = [], [], []
    before: dict[str, list[int]] = {}
    seen: list[int] = []

    def place(q: str) -> None:
        nonlocal pending
        steps.extend(Step("cell", q, c, s) for c, s in pending)
        steps.extend(Step("test", q, test=t) for t in tests[q])
        seen.extend(c for c, _ in pending)
        before[q] = list(seen)
        pending = []

    for no, (kind, src) in enumerate(nb.cells, 1):
        if kind != "code":
            continue
        if src.startswith(CHECKS_TITLE.split(":")[0]):
            continue
        m = CHECK_CALL.match(src)
        if m:
            if m.group(1) in auto and m.group(1) not in placed:
                placed.append(m.group(1))
                place(m.group(1))
            continue
        pending.append((no, src))
    for q in auto:
        if q not in placed:
            place(q)
    return steps, before
