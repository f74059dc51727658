"""Build and grade the assignments in ``assignments/``: every submission in a sandbox, judged outside it.

    python -m tools.assignments build [NAME ...]            student notebooks and test files in dist/assignments/
    python -m tools.assignments grade SUBMISSION.ipynb      score per question, and why points were lost
    python -m tools.assignments grade FOLDER --csv scores.csv --reports reports/ [--jobs 2]
    python -m tools.assignments sync                        refresh the masters' Colab set-up cell, re-pair them

Each master ``assignments/NN_name.ipynb`` (Jupytext-paired with ``NN_name.py``, the file you edit) holds the
questions, reference solutions and public and hidden tests (format: ``assignments/README.md``).  ``build``
writes

    dist/assignments/NN_name/student/NN_name.ipynb       what students get: no solution, no hidden test; its
                                                         check("qN") runs the public tests in the notebook
    dist/assignments/NN_name/autograder/NN_name.ipynb    the student notebook answered with the reference
                                                         solutions: grading it gives full marks (private)
    dist/assignments/NN_name/autograder/tests.json       every test, hidden ones included (keep private)

``grade`` runs each submission's code cells in a bubblewrap sandbox (``tools/sandbox.py``), one step at a
time; where the notebook has ``check("qN")`` it runs the *call* part of every test of question N there
instead, and judges the plain data that comes back in this process.  A step that runs past its time, is
killed for memory or ends the process costs its question (a cell) or its test; grading then starts a fresh
sandbox and goes on from the next step.  Results are written only here, after the sandbox has ended.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import queue
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from lecture_grading import checks, rules, wire
from lecture_grading.checks import TestSpec
from lecture_utils import atomic
from tools import colab, sandbox

ROOT = colab.ROOT
MASTERS_DIR = ROOT / "assignments"
DIST = ROOT / "dist" / "assignments"

#: The first line of the student notebook's cell that defines ``check`` (``# @title`` folds it in Colab).
CHECKS_TITLE = "# @title Public checks: run this cell once, then check(\"qN\") after each answer"
CHECK_CALL = re.compile(r"""^\s*check\(\s*["'](\w+)["']\s*\)\s*;?\s*$""")
MASTER_ONLY = re.compile(r"\s*#\s*MASTER ONLY\b.*$")
ANSWER_TEXT = "_Type your answer here, replacing this text._"


def masters() -> list[Path]:
    """Every master notebook, assignments/NN_*.ipynb."""
    return sorted(MASTERS_DIR.glob("[0-9]*.ipynb"))


def setup_source() -> str:
    """The Colab set-up cell: the lecture's own (students' checks need only the package)."""
    return colab.setup_source()


# -- masters ----------------------------------------------------------------------------------------------
@dataclass
class Question:
    name: str
    points: float
    manual: bool = False
    tests: list[TestSpec] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "points": self.points, "manual": self.manual,
                "tests": [t.to_dict() for t in self.tests]}

    @classmethod
    def from_dict(cls, d: dict) -> Question:
        return cls(d["name"], float(d["points"]), bool(d.get("manual")), [TestSpec.from_dict(t) for t in d["tests"]])


@dataclass
class Assignment:
    """What grading needs of a master: its name, settings, rules and questions with all their tests."""

    name: str
    config: dict
    questions: list[Question]

    @property
    def auto(self) -> list[Question]:
        return [q for q in self.questions if not q.manual]

    @property
    def rules(self) -> dict:
        return self.config.get("rules") or {}

    def limits(self, **overrides) -> sandbox.Limits:
        keys = {"cell_timeout", "test_timeout", "total_timeout", "memory", "processes"}
        settings = {k: v for k, v in self.config.items() if k in keys}
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return sandbox.Limits(**settings)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "config": self.config,
                           "questions": [q.to_dict() for q in self.questions]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Assignment:
        d = json.loads(text)
        return cls(d["name"], d["config"], [Question.from_dict(q) for q in d["questions"]])


def _directive(cell) -> tuple[str, dict] | None:
    """``("BEGIN QUESTION", {...})`` for a raw directive cell, else None."""
    if cell.cell_type != "raw":
        return None
    lines = cell.source.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        return None
    head = lines[0][2:].strip().upper()
    return head, (yaml.safe_load("\n".join(lines[1:])) or {}) if len(lines) > 1 else {}


def parse_master(master: Path) -> tuple[Assignment, list[tuple[str, object, object]]]:
    """The assignment, and the master's cells tagged with their role: ``(role, cell, question)`` with role
    one of ``text``, ``prompt``, ``solution``, ``test``.  Raises ValueError on a malformed master."""
    nb = nbformat.read(master, as_version=4)
    config, questions, tagged = None, [], []
    q, zone = None, None
    for i, cell in enumerate(nb.cells, 1):
        d = _directive(cell)
        if d:
            head, body = d
            if head == "ASSIGNMENT CONFIG":
                config = body
            elif head == "BEGIN QUESTION":
                if q is not None:
                    raise ValueError(f"{master.name} cell {i}: BEGIN QUESTION inside question {q.name}")
                if not body.get("name") or not body.get("points"):
                    raise ValueError(f"{master.name} cell {i}: a question needs a name and points")
                q = Question(str(body["name"]), float(body["points"]), bool(body.get("manual")))
                questions.append(q)
            elif head in ("BEGIN SOLUTION", "BEGIN TESTS"):
                if q is None or zone is not None:
                    raise ValueError(f"{master.name} cell {i}: {head} outside a question or inside another block")
                zone = head.split()[1].lower()
            elif head in ("END SOLUTION", "END TESTS"):
                if zone != head.split()[1].lower():
                    raise ValueError(f"{master.name} cell {i}: {head} without its BEGIN")
                zone = None
            elif head == "END QUESTION":
                if q is None or zone is not None:
                    raise ValueError(f"{master.name} cell {i}: END QUESTION without a question, or inside a block")
                if not q.manual and not q.tests:
                    raise ValueError(f"{master.name}: question {q.name} has no test")
                q = None
            continue
        if zone == "tests":
            if cell.cell_type != "code":
                raise ValueError(f"{master.name} cell {i}: only code cells between BEGIN and END TESTS")
            try:
                spec = TestSpec.from_cell(cell.source, q.name, len(q.tests) + 1)
            except (ValueError, SyntaxError) as e:
                raise ValueError(f"{master.name} cell {i}: {e}") from None
            q.tests.append(spec)
            tagged.append(("test", cell, q))
        elif zone == "solution":
            tagged.append(("solution", cell, q))
        elif q is not None:
            tagged.append(("prompt", cell, q))
        else:
            tagged.append(("text", cell, None))
    if q is not None or zone is not None:
        raise ValueError(f"{master.name}: a question or block is not closed")
    if not config or config.get("name") != master.stem:
        raise ValueError(f"{master.name}: needs one '# ASSIGNMENT CONFIG' raw cell with name: {master.stem}")
    names = [q.name for q in questions]
    if len(set(names)) != len(names):
        raise ValueError(f"{master.name}: question names repeat: {names}")
    return Assignment(master.stem, config, questions), tagged


def questions(master: Path) -> list[dict]:
    """The question configs of a master (name, points, manual), in order."""
    return [{"name": q.name, "points": q.points, "manual": q.manual} for q in parse_master(master)[0].questions]


def _setup_cell_index(cells) -> int | None:
    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and colab.SETUP_MARKER in cell.source:
            return i
    return None


def check_master(master: Path) -> list[str]:
    """Problems with a master's layout (empty when fine)."""
    nb = nbformat.read(master, as_version=4)
    errs = []
    try:
        assignment, _ = parse_master(master)
    except ValueError as e:
        return [str(e)]
    i = _setup_cell_index(nb.cells)
    if i is None:
        errs.append(f"{master.name}: has no Colab set-up cell (run `python -m tools.assignments sync`)")
    elif nb.cells[i].source.strip() != setup_source():
        errs.append(f"{master.name}: Colab set-up cell is stale (run `python -m tools.assignments sync`)")
    elif any(c.cell_type == "code" for c in nb.cells[:i]):
        errs.append(f"{master.name}: the Colab set-up cell must be the first code cell")
    if not assignment.questions:
        errs.append(f"{master.name}: has no '# BEGIN QUESTION' cell")
    for q in assignment.auto:
        for t in q.tests:
            errs += [f"{master.name}: {p}" for p in t.problems()]
        if all(t.hidden for t in q.tests):
            errs.append(f"{master.name}: question {q.name} has no public test (students get no feedback)")
    return errs


def sync() -> int:
    """Rewrite the Colab set-up cell of every master .py from tools.colab, then re-pair its .ipynb."""
    import jupytext

    for src in sorted(MASTERS_DIR.glob("[0-9]*.py")):
        text = src.read_text()
        nb = jupytext.reads(text, fmt="py:percent")
        i = _setup_cell_index(nb.cells)
        if i is None:
            first_code = next(j for j, c in enumerate(nb.cells) if c.cell_type == "code")
            nb.cells.insert(first_code, nbformat.v4.new_code_cell(setup_source()))
        else:
            nb.cells[i].source = setup_source()
        new = jupytext.writes(nb, fmt="py:percent")
        if new != text:
            src.write_text(new)
            print(f"updated {src.relative_to(ROOT)}")
        subprocess.run([sys.executable, "-m", "jupytext", "--sync", "--quiet", str(src)], check=True, cwd=ROOT)
    return 0


# -- building ---------------------------------------------------------------------------------------------
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


def student_notebook(master: Path, solutions: bool = False) -> nbformat.NotebookNode:
    """The notebook students get: prompts and scaffolding, no solution, no test; ``check("qN")`` after
    each auto-graded question and, after the imports, the cell that defines ``check``.  With ``solutions``:
    the same notebook answered with the reference solutions (a submission that must score full marks)."""
    assignment, tagged = parse_master(master)
    src = nbformat.read(master, as_version=4)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {k: v for k, v in src.metadata.items() if k in ("kernelspec", "language_info")}
    nb.metadata["assignment"] = {"name": assignment.name}
    new = nbformat.v4
    locked = {"deletable": False, "editable": False}
    setup_seen, checks_added = False, False
    for k, (role, cell, q) in enumerate(tagged):
        if role == "test" or cell.cell_type == "raw":
            continue
        source = cell.source
        if role == "solution":
            if cell.cell_type == "markdown":
                out = new.new_markdown_cell(source if solutions else ANSWER_TEXT)
            else:
                out = new.new_code_cell(_solution_only(source) if solutions else strip_solution(source))
            out.metadata["tags"] = ["answer"]
        elif cell.cell_type == "markdown":
            if role == "prompt" and _last_prompt(tagged, k):
                source = source.rstrip() + f"\n\n_Points:_ {q.points:g}" + (" (graded by hand)" if q.manual else "")
            out = new.new_markdown_cell(source)
            if role == "prompt":
                out.metadata.update(locked)
        else:
            out = new.new_code_cell(_without_master_only(strip_solution(source)))
        nb.cells.append(out)
        if out.cell_type == "code" and colab.SETUP_MARKER in out.source:
            setup_seen = True
        elif out.cell_type == "code" and setup_seen and not checks_added:
            cell = new.new_code_cell(checks_cell_source(assignment))
            cell.metadata.update({"cellView": "form", "jupyter": {"source_hidden": True}, **locked})
            nb.cells.append(cell)
            checks_added = True
        if q is not None and not q.manual and _question_ends(tagged, k):
            nb.cells.append(new.new_code_cell(f'check("{q.name}")', metadata=dict(locked)))
    if not checks_added:
        raise ValueError(f"{master.name}: needs an imports cell after the Colab set-up cell")
    for q in assignment.auto:  # a question whose last cells are its tests
        if not any(c.cell_type == "code" and c.source == f'check("{q.name}")' for c in nb.cells):
            raise ValueError(f"{master.name}: question {q.name} has no cell outside its tests")
    return nb


def _last_prompt(tagged, k: int) -> bool:
    q = tagged[k][2]
    return not any(r == "prompt" and c.cell_type == "markdown" and qq is q for r, c, qq in tagged[k + 1 :])


def _question_ends(tagged, k: int) -> bool:
    """True if tagged[k] is the last cell of its question that students see (tests are not seen)."""
    q = tagged[k][2]
    return not any(qq is q and r != "test" and c.cell_type != "raw" for r, c, qq in tagged[k + 1 :])


def leaks(student_nb: Path, assignment: Assignment | None = None) -> list[str]:
    """Solution markers or hidden tests found in a built student notebook (empty when clean)."""
    nb = nbformat.read(student_nb, as_version=4)
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


def build_one(master: Path, dist: Path = DIST) -> Path:
    """Build one master into ``dist/<name>/``; returns that folder.  Raises ValueError for a malformed master
    and RuntimeError if the student notebook would leak a solution or a hidden test."""
    errs = check_master(master)
    if errs:
        raise ValueError("\n".join(errs))
    assignment, _ = parse_master(master)
    out = dist / assignment.name
    with atomic.replace(out) as tmp:
        (tmp / "student").mkdir(parents=True)
        (tmp / "autograder").mkdir()
        nbformat.write(student_notebook(master), tmp / "student" / master.name)
        nbformat.write(student_notebook(master, solutions=True), tmp / "autograder" / master.name)
        (tmp / "autograder" / "tests.json").write_text(assignment.to_json())
        problems = leaks(tmp / "student" / master.name, assignment)
        if problems:
            raise RuntimeError(f"{assignment.name}: the student notebook leaks: {problems}")
    return out


def build(names: list[str] | None = None, dist: Path = DIST) -> list[Path]:
    """Build the named masters (all by default); returns their output folders."""
    chosen = masters()
    if names:
        unknown = sorted(set(names) - {m.stem for m in chosen})
        if unknown:
            raise ValueError(f"unknown assignment(s) {unknown}: choose from {[m.stem for m in chosen]}")
        chosen = [m for m in chosen if m.stem in names]
    outs = [build_one(m, dist) for m in chosen]
    for m, out in zip(chosen, outs, strict=True):
        print(f"built {m.name}: {out / 'student' / m.name}")
    return outs


def load_assignment(name: str, dist: Path = DIST) -> Assignment:
    """The built tests of assignment ``name`` (built first if missing or older than its master)."""
    path = dist / name / "autograder" / "tests.json"
    master = MASTERS_DIR / f"{name}.ipynb"
    if not path.is_file() or (master.is_file() and master.stat().st_mtime > path.stat().st_mtime):
        if not master.is_file():
            raise FileNotFoundError(f"no tests for {name} in {dist} and no master to build them from")
        build_one(master, dist)
    return Assignment.from_json(path.read_text())


# -- grading ----------------------------------------------------------------------------------------------
@dataclass
class Step:
    kind: str  # "cell" or "test"
    question: str  # the question it belongs to (a cell: the question whose tests come next)
    cell: int = 0  # position of the cell in the notebook (1-based), for "cell"
    source: str = ""
    test: TestSpec | None = None


def plan(nb: nbformat.NotebookNode, assignment: Assignment) -> tuple[list[Step], dict[str, list[int]]]:
    """The steps grading runs, and for each question the cells that run before its tests.

    Code cells run in order, except the cell that defines ``check`` and the ``check(...)`` calls; at the
    first ``check("qN")`` of each auto-graded question its tests run instead.  A question without such a
    cell has its tests after the last cell.  Cells after the last tests are not run."""
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

    for no, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        src = cell.source
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


@dataclass
class QuestionResult:
    name: str
    points: float
    score: float = 0.0
    passed: int = 0
    total: int = 0
    reasons: list[str] = field(default_factory=list)  # why points were lost (students may see these)
    failures: list[tuple[str, bool, str]] = field(default_factory=list)  # (test id, hidden, message)


@dataclass
class Grade:
    """The grade of one submission: auto-graded questions, the manual questions' points, and why."""

    submission: Path
    assignment: str
    results: dict[str, QuestionResult] = field(default_factory=dict)
    manual: dict[str, float] = field(default_factory=dict)  # question -> points, graded by hand
    error: str = ""  # the whole submission could not be graded
    seconds: float = 0.0
    sessions: int = 0  # sandboxes started (more than one when a step had to be stopped)
    label: str = ""  # how the submission is named in reports: its path relative to the graded folder

    @property
    def name(self) -> str:
        return self.label or self.submission.name

    @property
    def scores(self) -> dict[str, tuple[float, float]]:
        return {q: (r.score, r.points) for q, r in self.results.items()}

    @property
    def total(self) -> float:
        return round(sum(r.score for r in self.results.values()), 6)

    @property
    def possible(self) -> float:
        return sum(r.points for r in self.results.values())

    def notes(self) -> str:
        """One line: for each question that lost points, why (for the CSV)."""
        parts = []
        for q, r in self.results.items():
            if r.score < r.points:
                public = [f" (test {tid}: {msg})" for tid, hidden, msg in r.failures if not hidden][:1]
                why = r.reasons[:1] or [f"{r.total - r.passed} of {r.total} tests failed" + "".join(public)]
                parts.append(f"{q}: {why[0]}")
        return "; ".join(([self.error] if self.error else []) + parts)

    def report(self, verbose: bool = False) -> str:
        """The per-student report; ``verbose`` adds the hidden tests' messages (not for students)."""
        lines = [f"{self.name} (assignment {self.assignment or '?'})"]
        for q, r in self.results.items():
            lines.append(f"  {q:<8} {r.score:6.2f} / {r.points:g}"
                         + (f"   ({r.passed} of {r.total} tests passed)" if r.total else ""))
            for why in r.reasons:
                lines.append(f"      {why}")
            for tid, hidden, msg in r.failures:
                if hidden and not verbose:
                    lines.append(f"      hidden test {tid} failed")
                else:
                    lines.append(f"      {'hidden' if hidden else 'public'} test {tid}: {msg}")
        for q, p in self.manual.items():
            lines.append(f"  {q:<8} {'manual':>6} / {p:g}   (written answer: graded by hand)")
        lines.append(f"  {'total':<8} {self.total:6.2f} / {self.possible:g}   (auto-graded questions)")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


def _clean(text: str) -> str:
    """One line, no memory addresses (so that grading twice gives the same words)."""
    return _ADDRESS.sub("0x…", " ".join(str(text).split()))[:300]


def _why(reason: str, limits: sandbox.Limits, kind: str) -> str:
    """A stopped step's reason, for a student."""
    limit = limits.cell_timeout if kind == "cell" else limits.test_timeout
    if reason == "timeout":
        return f"ran longer than {limit:g} s and was stopped (an endless loop?)"
    if reason == "total":
        return f"was stopped: the submission used up its {limits.total_timeout:g} s"
    if reason == "memory":
        return f"used more than {limits.memory / sandbox.GiB:g} GiB of memory and was stopped"
    if reason == "output":
        return "wrote too much to the grader's channel and was stopped"
    if reason.startswith("died: killed by SIGXCPU"):
        return f"used up its {limits.total_timeout:g} s of CPU time and was killed"
    if reason.startswith("died: killed by"):
        return f"was killed ({reason.removeprefix('died: killed by ')})"
    if reason.startswith("died:"):
        return f"ended the notebook's process ({reason.removeprefix('died: ')}: os._exit, a crash?)"
    return reason


def _limit_hit(error: str) -> str:
    """Which of the sandbox's limits a cell's error says it ran into ("" for an ordinary error)."""
    if "MemoryError" in error or "can't allocate memory" in error or "Cannot allocate memory" in error:
        return "memory"
    if "Resource temporarily unavailable" in error or "can't start new thread" in error:
        return "process"
    if "File too large" in error or "No space left on device" in error:
        return "disk"
    return ""


def _error_hint(error: str) -> str:
    kind = _limit_hit(error)
    return f" (the {kind} limit)" if kind else ""


def _read_submission(submission: Path) -> nbformat.NotebookNode:
    with open(submission, encoding="utf-8") as f:  # read-only: nothing is ever written next to it
        return nbformat.read(f, as_version=4)


def assignment_of(nb: nbformat.NotebookNode) -> str:
    """The assignment a submission answers: its metadata, else the name in its ``check`` cell."""
    name = nb.metadata.get("assignment", {}).get("name") if isinstance(nb.metadata.get("assignment"), dict) else None
    if name:
        return str(name)
    for cell in nb.cells:
        src = cell.source if isinstance(cell.source, str) else ""
        m = re.search(r"check = Checks\('(\w+)'", src)
        if cell.cell_type == "code" and src.startswith(CHECKS_TITLE.split(":")[0]) and m:
            return m.group(1)
    return ""


def _forbidden_paths(dist: Path, submission: Path) -> list[Path]:
    """What the sandbox's Python folders must not contain."""
    return [MASTERS_DIR, dist, ROOT / "tools", submission.parent]


def grade(submission: Path, dist: Path = DIST, limits: sandbox.Limits | None = None, slot: int = 0,
          **overrides) -> Grade:
    """Grade one submitted notebook.  Never raises for a bad submission: problems are in the result.
    (Sets this process's torch to one thread: the checks are small, and jobs share the cores.)"""
    submission = Path(submission)
    start = time.monotonic()
    from lecture_utils.config import one_thread  # imports torch: only when grading

    one_thread()  # the checks are small, and submissions graded side by side share the cores
    try:
        nb = _read_submission(submission)
    except Exception as e:  # not a notebook at all
        return Grade(submission, "", error=f"cannot read the notebook: {_clean(checks.last_line(e))}")
    name = assignment_of(nb)
    known = {m.stem for m in masters()} | ({p.name for p in dist.iterdir() if p.is_dir()} if dist.is_dir() else set())
    if name not in known:
        return Grade(submission, name, error=f"unknown assignment {name!r}: expected one of {sorted(known)}")
    assignment = load_assignment(name, dist)
    limits = limits or assignment.limits(**overrides)
    result = Grade(submission, name)
    result.manual = {q.name: q.points for q in assignment.questions if q.manual}
    result.results = {q.name: QuestionResult(q.name, q.points, total=len(q.tests)) for q in assignment.auto}
    steps, before = plan(nb, assignment)

    # Rules, read from the code (outside the sandbox): a question whose cells, or any cell before them,
    # break them scores 0.
    setup = setup_source()
    broken: dict[int, str] = {}
    for no, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code" and cell.source.strip() != setup:
            found = rules.violations(cell.source, assignment.rules)
            if found:
                broken[no] = f"cell {no}, {found[0]}"
    for q, cells in before.items():
        hits = [broken[c] for c in cells if c in broken]
        if hits:
            result.results[q].reasons.append(f"breaks the assignment's rules: {hits[0]}")

    outcomes, cell_errors, faults = _run(steps, limits, _forbidden_paths(dist, submission), slot, result)
    for q in assignment.auto:
        r = result.results[q.name]
        voided = faults.get(q.name)
        if voided:
            r.reasons.insert(0, voided)
        own = [st.cell for st in steps if st.kind == "cell" and st.question == q.name]
        errors = [f"cell {c} raised {_clean(cell_errors[c])}{_error_hint(cell_errors[c])}"
                  for c in own if c in cell_errors]
        for t in q.tests:
            kind, payload = outcomes.get(t.id, ("missing", "not run"))
            if kind == "ok":
                why = _judge(t, payload)
            elif kind == "error":
                why = f"running your code raised {_clean(payload)}{_error_hint(payload)}"
            elif kind == "fault":
                why = f"it {payload}"
            else:
                why = voided or "not run"
            if why is None:
                r.passed += 1
            elif not voided:  # a stopped cell already says why all of them failed
                r.failures.append((t.id, t.hidden, why))
        if r.reasons and (voided or any(x.startswith("breaks") for x in r.reasons)):
            r.score = 0.0
        else:
            r.score = round(r.points * r.passed / r.total, 6) if r.total else 0.0
        if r.score < r.points and errors:
            r.reasons += errors[:2]
    result.seconds = time.monotonic() - start
    return result


def _judge(spec: TestSpec, message) -> str | None:
    """Judge a test's result (the runner's message and tensor bytes) in this process; None if it passed."""
    try:
        value = wire.loads(*message)
    except ValueError as e:
        return f"its result could not be read ({e})"
    return checks.run_check(spec, value)


def _run(steps: list[Step], limits: sandbox.Limits, forbidden: list[Path], slot: int, result: Grade):
    """Run the steps in sandboxes; after a stopped step, a fresh sandbox goes on from the next one.

    Returns ``(outcomes, cell_errors, faults)``: per test id ``("ok", message) | ("error", last line) |
    ("fault", why)``; per cell number the error it raised; per question why its cells were stopped."""
    outcomes: dict[str, tuple[str, object]] = {}
    cell_errors: dict[int, str] = {}
    faults: dict[str, str] = {}
    skip: set[int] = set()
    deadline = time.monotonic() + limits.total_timeout
    while True:
        todo = [i for i, st in enumerate(steps)
                if (st.kind == "cell" and i not in skip)
                or (st.kind == "test" and st.test.id not in outcomes and st.question not in faults)]
        tests_left = [i for i in todo if steps[i].kind == "test"]
        if not tests_left:
            break
        todo = [i for i in todo if i <= tests_left[-1]]
        if time.monotonic() >= deadline:
            for i in tests_left:
                outcomes[steps[i].test.id] = ("fault", _why("total", limits, "test"))
            break
        result.sessions += 1
        with sandbox.Session(limits, forbidden, slot=slot, deadline=deadline) as session:
            why = session.start()
            if why:
                reason = _why(why, limits, "cell") if why in ("total", "memory") else (
                    f"the sandbox did not start ({why}; {session.output_tail.decode(errors='replace')[-300:]})")
                for i in tests_left:
                    outcomes[steps[i].test.id] = ("fault", reason)
                if why not in ("total", "memory"):
                    result.error = _clean(reason)
                break
            for i in todo:
                st = steps[i]
                if st.kind == "cell":
                    reply, why = session.step({"cell": st.source}, limits.cell_timeout)
                else:
                    reply, why = session.step({"test": st.test.to_dict()}, limits.test_timeout)
                if why:
                    if st.kind == "cell":
                        skip.add(i)
                        faults.setdefault(st.question, f"cell {st.cell} {_why(why, limits, 'cell')}")
                    else:
                        outcomes[st.test.id] = ("fault", _why(why, limits, "test"))
                    break
                if st.kind == "cell":
                    if reply.get("ok") is not True:
                        error = str(reply.get("error", "an error"))
                        cell_errors[st.cell] = error
                        if _limit_hit(error):  # resource abuse, not an ordinary bug: it costs the question
                            faults.setdefault(st.question, f"cell {st.cell} hit the {_limit_hit(error)} limit: "
                                                           f"{_clean(error)}")
                    else:
                        cell_errors.pop(st.cell, None)
                elif reply.get("ok") is True:
                    outcomes[st.test.id] = ("ok", (reply.get("result"), reply.get("blob", b"")))
                else:
                    outcomes[st.test.id] = ("error", str(reply.get("error", "an error")))
            else:
                break
    return outcomes, cell_errors, faults


def grade_many(paths: list[Path], jobs: int = 1, on_done=None, **kwargs) -> list[Grade]:
    """Grade several submissions, ``jobs`` at a time (each in its own sandbox); results in ``paths`` order.
    ``on_done(grade)`` is called as each one finishes (after its sandbox has ended)."""
    slots: queue.Queue[int] = queue.Queue()
    for k in range(max(1, jobs)):
        slots.put(k)

    def one(p: Path) -> Grade:
        slot = slots.get()
        try:
            g = grade(p, slot=slot, **kwargs)
        finally:
            slots.put(slot)
        if on_done:
            on_done(g)
        return g

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, paths))


# -- results ----------------------------------------------------------------------------------------------
def csv_text(grades: list[Grade]) -> str:
    """One row per submission: name, assignment, each question's score (manual ones empty), total, notes."""
    qs: list[str] = []
    for g in grades:
        for q in [*g.results, *g.manual]:
            if q not in qs:
                qs.append(q)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["submission", "assignment", *qs, "total", "possible", "notes"])
    for g in sorted(grades, key=lambda g: g.name):
        cells = [f"{g.results[q].score:g}" if q in g.results else "" for q in qs]
        w.writerow([g.name, g.assignment, *cells, f"{g.total:g}", f"{g.possible:g}", _clean(g.notes())])
    return buf.getvalue()


def write_csv(grades: list[Grade], path: Path) -> None:
    """The CSV of ``grades``, written atomically."""
    atomic.write_text(path, csv_text(grades))


def report_path(folder: Path, grade_: Grade) -> Path:
    return Path(folder) / (re.sub(r"[^\w.-]+", "__", grade_.name.removesuffix(".ipynb")) + ".txt")


def _submissions(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and p.is_file()
                       and not p.is_symlink())
        if not found:
            raise ValueError(f"no .ipynb submissions under {path}")
        return found
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"{path} is not a notebook (.ipynb) or a folder of notebooks")
    return [path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build student notebooks and test files")
    b.add_argument("names", nargs="*", help="assignments to build (default: all), e.g. 01_initialization")
    b.add_argument("--dist", type=Path, default=DIST)
    g = sub.add_parser("grade", help="grade a submission (.ipynb) or a folder of them, each in a sandbox")
    g.add_argument("path", type=Path)
    g.add_argument("--csv", type=Path, help="write one row per submission to this CSV file (atomically)")
    g.add_argument("--reports", type=Path, help="write one report per submission into this folder")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time")
    g.add_argument("--cell-timeout", type=float, help="seconds per code cell (default: the assignment's, 60)")
    g.add_argument("--test-timeout", type=float, help="seconds per test (default: the assignment's, 60)")
    g.add_argument("--total-timeout", type=float, help="seconds per submission (default 900)")
    g.add_argument("--memory", type=float, help="GiB of memory per submission (default 3)")
    g.add_argument("--threads", type=int, default=1, help="CPU threads of each sandbox")
    g.add_argument("--unsafe", action="store_true", help="grade WITHOUT a sandbox (see the README)")
    g.add_argument("--dist", type=Path, default=DIST)
    g.add_argument("-v", "--verbose", action="store_true", help="show hidden tests' messages (not for students)")
    sub.add_parser("sync", help="refresh the masters' Colab set-up cell and re-pair them")
    args = parser.parse_args(argv)

    if args.command == "sync":
        return sync()
    if args.command == "build":
        build(args.names, args.dist)
        return 0
    if args.unsafe:
        print(sandbox.UNSAFE_WARNING, file=sys.stderr)
    else:
        problem = sandbox.bwrap_problem()
        if problem:
            print(f"cannot grade: {problem}", file=sys.stderr)
            return 2
    try:
        paths = _submissions(args.path)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    done: list[Grade] = []

    def label(gr: Grade) -> None:
        if args.path.is_dir():  # students' files often share a name: tell them apart by their folder
            gr.label = gr.submission.relative_to(args.path).as_posix()

    def finished(gr: Grade) -> None:  # after its sandbox has ended: only now is anything written
        label(gr)
        done.append(gr)
        if args.reports:
            atomic.write_text(report_path(args.reports, gr), gr.report() + "\n")
        if args.csv:
            write_csv(list(done), args.csv)

    overrides = {"cell_timeout": args.cell_timeout, "test_timeout": args.test_timeout,
                 "total_timeout": args.total_timeout, "threads": args.threads, "unsafe": args.unsafe or None,
                 "memory": int(args.memory * sandbox.GiB) if args.memory else None}
    grades = grade_many(paths, args.jobs, on_done=finished, dist=args.dist, **overrides)
    for gr in grades:
        label(gr)
        print(gr.report(args.verbose))
    if args.csv:
        write_csv(grades, args.csv)
        print(f"wrote {args.csv}")
    return 1 if any(gr.error for gr in grades) else 0


if __name__ == "__main__":
    sys.exit(main())
