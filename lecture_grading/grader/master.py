"""A master notebook, read and parsed once: its settings, its questions with all their tests, its cells by role.

A master ``assignments/NN_name.ipynb`` (Jupytext-paired with ``NN_name.py``, the file instructors edit) is a
notebook whose raw cells are directives (``# ASSIGNMENT CONFIG``, ``# BEGIN QUESTION`` ... ``# END QUESTION``,
``# BEGIN SOLUTION``/``# END SOLUTION``, ``# BEGIN TESTS``/``# END TESTS``; format in assignments/README.md).
``load`` reads it (plain JSON: a master is the instructor's own file) and returns a ``Master``: the
``Assignment`` grading needs (also what ``tests.json`` holds) and every other cell tagged with its role
(``text``, ``prompt``, ``solution`` or ``test``), from which ``build`` makes the student notebook.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lecture_grading.checks import TestSpec
from lecture_grading.limits import Limits

#: The first line of the lecture's Colab set-up cell starts with this (tools/colab.py writes that cell).
SETUP_MARKER = "# Colab set-up:"
#: The first line of the student notebook's cell that defines ``check`` (``# @title`` folds it in Colab).
CHECKS_TITLE = "# @title Public checks: run this cell once, then check(\"qN\") after each answer"
#: A cell that is only a ``check("qN")`` call.
CHECK_CALL = re.compile(r"""^\s*check\(\s*["'](\w+)["']\s*\)\s*;?\s*$""")
FORMAT = 2  # of tests.json: bumped when what it holds changes (a stale build is then rebuilt or refused)
DIRECTIVES = ("ASSIGNMENT CONFIG", "BEGIN QUESTION", "END QUESTION", "BEGIN SOLUTION", "END SOLUTION",
              "BEGIN TESTS", "END TESTS")


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
    """What grading needs of a master: its name, settings, rules, set-up cell and questions with all tests."""

    name: str
    config: dict
    questions: list[Question]
    setup: str = ""  # the Colab set-up cell's source (left out of the rule check: it uses subprocess)

    @property
    def auto(self) -> list[Question]:
        return [q for q in self.questions if not q.manual]

    @property
    def manual(self) -> list[Question]:
        return [q for q in self.questions if q.manual]

    @property
    def rules(self) -> dict:
        return self.config.get("rules") or {}

    @property
    def points(self) -> float:
        return sum(q.points for q in self.auto)

    def limits(self, **overrides) -> Limits:
        """The assignment's limits (its config over the defaults), then ``overrides``."""
        return Limits.from_config(self.config, **overrides)

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "name": self.name, "config": self.config, "setup": self.setup,
                           "questions": [q.to_dict() for q in self.questions]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Assignment:
        """The assignment of a tests.json (ValueError if an older grader built it: build it again)."""
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"tests of {d.get('name', '?')} were built by another version of the grader "
                             f"(format {d.get('format')}): build the assignment again (make assignments)")
        return cls(d["name"], d["config"], [Question.from_dict(q) for q in d["questions"]], d["setup"])


@dataclass
class Cell:
    """A cell of a master: its type, source, role and question (None outside questions)."""

    type: str  # "markdown", "code", "raw"
    source: str
    role: str  # "text", "prompt", "solution", "test"
    question: Question | None = None


@dataclass
class Master:
    path: Path
    assignment: Assignment
    cells: list[Cell]  # every cell but the directives, in order
    metadata: dict

    @property
    def name(self) -> str:
        return self.assignment.name


def source_of(cell: dict) -> str:
    """A notebook cell's source as one string (nbformat stores a string or a list of lines)."""
    src = cell.get("source", "")
    if isinstance(src, list):
        return "".join(s for s in src if isinstance(s, str))
    return src if isinstance(src, str) else ""


def _directive(cell_type: str, source: str) -> tuple[str, dict] | None:
    """``("BEGIN QUESTION", {...})`` for a raw directive cell, else None."""
    if cell_type != "raw":
        return None
    lines = source.strip().splitlines()
    if not lines or not lines[0].startswith("# "):
        return None
    head = lines[0][2:].strip().upper()
    if head not in DIRECTIVES:
        return None
    import yaml

    body = yaml.safe_load("\n".join(lines[1:])) if len(lines) > 1 else None
    return head, body or {}


def load(path: Path) -> Master:
    """Read and parse a master (ValueError, naming the cell, if it is malformed)."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path.name}: cannot read the master ({e})") from None
    config, questions, cells = None, [], []
    setup = ""
    q, zone = None, None
    for i, raw in enumerate(nb.get("cells", []), 1):
        kind, source = raw.get("cell_type", ""), source_of(raw)
        d = _directive(kind, source)
        if d:
            head, body = d
            if head == "ASSIGNMENT CONFIG":
                config = body
            elif head == "BEGIN QUESTION":
                if q is not None:
                    raise ValueError(f"{path.name} cell {i}: BEGIN QUESTION inside question {q.name}")
                if not body.get("name") or not body.get("points"):
                    raise ValueError(f"{path.name} cell {i}: a question needs a name and points")
                q = Question(str(body["name"]), float(body["points"]), bool(body.get("manual")))
                questions.append(q)
            elif head in ("BEGIN SOLUTION", "BEGIN TESTS"):
                if q is None or zone is not None:
                    raise ValueError(f"{path.name} cell {i}: {head} outside a question or inside another block")
                zone = head.split()[1].lower()
            elif head in ("END SOLUTION", "END TESTS"):
                if zone != head.split()[1].lower():
                    raise ValueError(f"{path.name} cell {i}: {head} without its BEGIN")
                zone = None
            elif head == "END QUESTION":
                if q is None or zone is not None:
                    raise ValueError(f"{path.name} cell {i}: END QUESTION without a question, or inside a block")
                if not q.manual and not q.tests:
                    raise ValueError(f"{path.name}: question {q.name} has no test")
                q = None
            continue
        if zone == "tests":
            if kind != "code":
                raise ValueError(f"{path.name} cell {i}: only code cells between BEGIN and END TESTS")
            try:
                spec = TestSpec.from_cell(source, q.name, len(q.tests) + 1)
            except (ValueError, SyntaxError) as e:
                raise ValueError(f"{path.name} cell {i}: {e}") from None
            q.tests.append(spec)
            cells.append(Cell(kind, source, "test", q))
        elif zone == "solution":
            cells.append(Cell(kind, source, "solution", q))
        elif q is not None:
            cells.append(Cell(kind, source, "prompt", q))
        else:
            cells.append(Cell(kind, source, "text"))
            if kind == "code" and source.startswith(SETUP_MARKER) and not setup:
                setup = source.strip()
    if q is not None or zone is not None:
        raise ValueError(f"{path.name}: a question or block is not closed")
    if not config or config.get("name") != path.stem:
        raise ValueError(f"{path.name}: needs one '# ASSIGNMENT CONFIG' raw cell with name: {path.stem}")
    names = [q.name for q in questions]
    if len(set(names)) != len(names):
        raise ValueError(f"{path.name}: question names repeat: {names}")
    try:
        Limits.from_config(config)
    except ValueError as e:
        raise ValueError(f"{path.name}: ASSIGNMENT CONFIG: {e}") from None
    metadata = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    return Master(path, Assignment(path.stem, config, questions, setup), cells, metadata)


def problems(master: Master) -> list[str]:
    """What is wrong with a parsed master's layout beyond its syntax (empty when fine)."""
    name, errs = master.path.name, []
    code = [c for c in master.cells if c.type == "code"]
    if not code or not code[0].source.startswith(SETUP_MARKER):
        errs.append(f"{name}: the first code cell must be the Colab set-up cell (python -m tools.assignments sync)")
    if not master.assignment.questions:
        errs.append(f"{name}: has no '# BEGIN QUESTION' cell")
    for q in master.assignment.auto:
        for t in q.tests:
            errs += [f"{name}: {p}" for p in t.problems()]
        if all(t.hidden for t in q.tests):
            errs.append(f"{name}: question {q.name} has no public test (students get no feedback)")
    return errs
