"""Build an assignment from its master: the student notebook, the answered notebook and the tests.

    build(masters_dir, dist)  ->  dist/NN_name/student/NN_name.ipynb      what students get: no solution, no
                                                                         hidden test; check("qN") runs the
                                                                         public tests in the notebook itself
                                  dist/NN_name/autograder/NN_name.ipynb   the student notebook answered with the
                                                                         reference solutions (private)
                                  dist/NN_name/autograder/tests.json      every test, hidden ones included
                                                                         (private; ``master.Assignment``)

Each master is read once (``master.load``).  A build that would leak a solution or a hidden test into the
student notebook is refused, and a folder is replaced only when its new contents are complete.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import threading
from pathlib import Path

from lecture_grading.grader import master as masters
from lecture_grading.grader.master import CHECKS_TITLE, Assignment, Master

MASTER_ONLY = re.compile(r"\s*#\s*MASTER ONLY\b.*$")
ANSWER_TEXT = "_Type your answer here, replacing this text._"


def find(masters_dir: Path) -> list[Path]:
    """Every master notebook in ``masters_dir``: NN_*.ipynb."""
    return sorted(Path(masters_dir).glob("[0-9]*.ipynb"))


def strip_solution(source: str) -> str:
    """A solution cell as students get it: ``# BEGIN/END SOLUTION`` blocks and ``# SOLUTION`` lines become
    ``...`` (an assignment keeps its target: ``x = f()  # SOLUTION`` becomes ``x = ...``)."""
    out, skipping = [], False
    for line in source.splitlines():
        s = line.strip()
        if skipping:
            skipping = s != "# END SOLUTION"
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if s == "# BEGIN SOLUTION":
            out.append(indent + "...")
            skipping = True
            continue
        m = re.match(r"^(\s*)(.*?)\s*#\s*SOLUTION\s*$", line)
        if m:
            target = re.match(r"^([A-Za-z_][\w.\[\], ]*?)\s*=(?!=)", m.group(2))
            out.append(f"{indent}{target.group(1)} = ..." if target else f"{indent}...")
            continue
        out.append(line)
    return "\n".join(out)


def _solution_only(source: str) -> str:
    """A solution cell answered: the solution markers removed, the code kept."""
    out = []
    for line in source.splitlines():
        if line.strip() in ("# BEGIN SOLUTION", "# END SOLUTION"):
            continue
        out.append(re.sub(r"\s*#\s*SOLUTION\s*$", "", line))
    return "\n".join(out)


def _without_master_only(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not MASTER_ONLY.search(line))


def _literal(text: str) -> str:
    """A Python literal for ``text``, triple-quoted when that reads better."""
    if "\n" in text and '"""' not in text and "\\" not in text and not text.endswith('"'):
        return '"""\\\n' + text + '"""'
    return repr(text)


def checks_cell_source(assignment: Assignment) -> str:
    """The student notebook's cell that defines ``check``: the public tests themselves, so that it works
    wherever the notebook runs (Colab keeps no file next to it)."""
    lines = [
        CHECKS_TITLE,
        "# Made by `make assignments` from the assignment's public tests. check(\"qN\") runs Question N's public",
        "# tests on your code, here. Grading runs them and hidden tests on other cases, in a separate process.",
        "from lecture_grading import Checks",
        "",
        f"check = Checks({assignment.name!r}, {{",
    ]
    for q in assignment.auto:
        lines.append(f"    {q.name!r}: [")
        for t in q.tests:
            if t.hidden:
                continue
            lines.append(f"        dict(question={t.question!r}, number={t.number}, exports={t.exports!r},")
            for part in ("given", "call", "check"):
                lines.append(f"             {part}={_literal(getattr(t, part))},")
            lines.append("        ),")
        lines.append("    ],")
    lines.append("})")
    return "\n".join(lines)


def student_notebook(m: Master, solutions: bool = False):
    """The notebook students get (an ``nbformat`` notebook): prompts and scaffolding, no solution, no test;
    ``check("qN")`` after each auto-graded question and, after the imports, the cell that defines ``check``.
    With ``solutions``: the same notebook answered with the reference solutions (it must score full marks)."""
    import nbformat

    new = nbformat.v4
    assignment, cells = m.assignment, m.cells
    nb = new.new_notebook()
    nb.metadata = {k: v for k, v in m.metadata.items() if k in ("kernelspec", "language_info")}
    nb.metadata["assignment"] = {"name": assignment.name}
    locked = {"deletable": False, "editable": False}
    setup_seen, checks_added = False, False
    for k, cell in enumerate(cells):
        q = cell.question
        if cell.role == "test" or cell.type == "raw":
            continue
        source = cell.source
        if cell.role == "solution":
            if cell.type == "markdown":
                out = new.new_markdown_cell(source if solutions else ANSWER_TEXT)
            else:
                out = new.new_code_cell(_solution_only(source) if solutions else strip_solution(source))
            out.metadata["tags"] = ["answer"]
        elif cell.type == "markdown":
            if cell.role == "prompt" and _last_prompt(cells, k):
                source = source.rstrip() + f"\n\n_Points:_ {q.points:g}" + (" (graded by hand)" if q.manual else "")
            out = new.new_markdown_cell(source)
            if cell.role == "prompt":
                out.metadata.update(locked)
        else:
            out = new.new_code_cell(_without_master_only(strip_solution(source)))
        nb.cells.append(out)
        if out.cell_type == "code" and out.source.startswith(masters.SETUP_MARKER):
            setup_seen = True
        elif out.cell_type == "code" and setup_seen and not checks_added:
            checks = new.new_code_cell(checks_cell_source(assignment))
            checks.metadata.update({"cellView": "form", "jupyter": {"source_hidden": True}, **locked})
            nb.cells.append(checks)
            checks_added = True
        if q is not None and not q.manual and _question_ends(cells, k):
            nb.cells.append(new.new_code_cell(f'check("{q.name}")', metadata=dict(locked)))
    if not checks_added:
        raise ValueError(f"{m.path.name}: needs an imports cell after the Colab set-up cell")
    for q in assignment.auto:  # a question whose last cells are its tests
        if not any(c.cell_type == "code" and c.source == f'check("{q.name}")' for c in nb.cells):
            raise ValueError(f"{m.path.name}: question {q.name} has no cell outside its tests")
    return nb


def _last_prompt(cells, k: int) -> bool:
    q = cells[k].question
    return not any(c.role == "prompt" and c.type == "markdown" and c.question is q for c in cells[k + 1 :])


def _question_ends(cells, k: int) -> bool:
    """True if cells[k] is the last cell of its question that students see (tests are not seen)."""
    q = cells[k].question
    return not any(c.question is q and c.role != "test" and c.type != "raw" for c in cells[k + 1 :])


def leaks(nb, assignment: Assignment | None = None) -> list[str]:
    """Solution markers or hidden tests found in a student notebook (``nbformat`` notebook; empty when clean)."""
    found = []
    for cell in nb.cells:
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "# SOLUTION", "BEGIN TESTS", "# HIDDEN", "MASTER ONLY"):
            if marker in cell.source:
                found.append(f"{marker!r} in a {cell.cell_type} cell")
    text = "\n".join(c.source for c in nb.cells) + json.dumps(nb.metadata)
    for q in assignment.auto if assignment else []:
        public = [t for t in q.tests if not t.hidden]
        for t in q.tests:
            shared = any(t.call in p.call for p in public)  # a hidden test may call what a public one calls
            if t.hidden and (t.check in text or (t.call in text and not shared)):
                found.append(f"hidden test {t.id}")
    return found


def build_one(path: Path, dist: Path) -> Path:
    """Build one master into ``dist/<name>/``; returns that folder.  Raises ValueError for a malformed master
    and RuntimeError if the student notebook would leak a solution or a hidden test."""
    import nbformat

    m = masters.load(path)
    errs = masters.problems(m)
    if errs:
        raise ValueError("\n".join(errs))
    name = m.name
    dist = Path(dist)
    dist.mkdir(parents=True, exist_ok=True)
    out = dist / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=dist))
    try:
        (tmp / "student").mkdir()
        (tmp / "autograder").mkdir()
        student = student_notebook(m)
        problems = leaks(student, m.assignment)
        if problems:
            raise RuntimeError(f"{name}: the student notebook leaks: {problems}")
        nbformat.write(student, tmp / "student" / f"{name}.ipynb")
        nbformat.write(student_notebook(m, solutions=True), tmp / "autograder" / f"{name}.ipynb")
        (tmp / "autograder" / "tests.json").write_text(m.assignment.to_json())
        for attempt in range(3):  # another build may put its folder there meanwhile: the last one wins
            if out.exists():
                shutil.rmtree(out, ignore_errors=True)
            try:
                tmp.rename(out)
                break
            except OSError:
                if attempt == 2:
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def build(masters_dir: Path, dist: Path, names: list[str] | None = None) -> list[Path]:
    """Build the named masters of ``masters_dir`` (all by default) into ``dist``; returns their folders."""
    chosen = find(masters_dir)
    if names:
        unknown = sorted(set(names) - {m.stem for m in chosen})
        if unknown:
            raise ValueError(f"unknown assignment(s) {unknown}: choose from {[m.stem for m in chosen]}")
        chosen = [m for m in chosen if m.stem in names]
    return [build_one(m, dist) for m in chosen]


_building = threading.Lock()


def load_assignment(name: str, dist: Path, masters_dir: Path | None = None) -> Assignment:
    """The built tests of assignment ``name`` in ``dist`` (built first from ``masters_dir`` when missing or
    older than the master; one build at a time, so that submissions graded side by side build it once)."""
    path = Path(dist) / name / "autograder" / "tests.json"
    master = Path(masters_dir) / f"{name}.ipynb" if masters_dir else None
    with _building:
        if master is not None and master.is_file() and (
                not path.is_file() or master.stat().st_mtime > path.stat().st_mtime or not _current(path)):
            build_one(master, dist)
    if not path.is_file():
        raise FileNotFoundError(f"no tests for {name} in {dist} (build the assignment first)")
    return Assignment.from_json(path.read_text())


def _current(tests: Path) -> bool:
    try:
        return json.loads(tests.read_text()).get("format") == masters.FORMAT
    except (OSError, ValueError):
        return False
