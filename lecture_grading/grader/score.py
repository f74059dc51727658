"""Judging and scoring: each test's outcome judged in the grader's process, each question scored by one rule.

A test ends in one of the ``Outcome`` kinds; a question collects ``Reason``s, each with a named ``Why``.  The
rule (``QuestionResult.score``):

* a question whose cells (or any cell before its tests) break the assignment's rules (``Why.RULES``), one of
  whose cells was stopped by the grader (``Why.CELL_STOPPED``: a deadline, the memory total, the process
  ending) or ran into a limit inside its process (``Why.CELL_LIMIT``) scores **0**: resource abuse and
  forbidden code cost the question, whatever its tests say;
* otherwise it scores ``points * passed / total`` over its tests (public and hidden alike).

``Why.CELL_ERROR`` (a cell of the question raised an ordinary error) costs nothing by itself; it is shown when
the question lost points, since it usually says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from lecture_grading import checks, wire
from lecture_grading.checks import TestSpec
from lecture_grading.grader.text import clean


class Why(Enum):
    RULES = "breaks the assignment's rules"
    CELL_STOPPED = "a cell was stopped by the grader"
    CELL_LIMIT = "a cell ran into a limit"
    CELL_ERROR = "a cell raised an error"


VOIDS = frozenset({Why.RULES, Why.CELL_STOPPED, Why.CELL_LIMIT})


@dataclass(frozen=True)
class Reason:
    why: Why
    text: str  # what the report shows (already clean)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Outcome:
    """How one test ended: ``passed``, ``failed`` (its check said no), ``error`` (the call raised),
    ``stopped`` (the grader stopped it) or ``void`` (not run: a stopped cell of its question voids it)."""

    kind: str
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.kind == "passed"


@dataclass
class QuestionResult:
    name: str
    points: float
    tests: list[tuple[TestSpec, Outcome]] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)  # why points were lost (students may see these)

    @property
    def total(self) -> int:
        return len(self.tests)

    @property
    def passed(self) -> int:
        return sum(o.passed for _, o in self.tests)

    @property
    def voided(self) -> bool:
        return any(r.why in VOIDS for r in self.reasons)

    @property
    def score(self) -> float:
        """0 if a reason voids the question, else ``points * passed / total`` (see the module's rule)."""
        if self.voided or not self.total:
            return 0.0
        return round(self.points * self.passed / self.total, 6)

    def share(self, hidden: bool) -> tuple[float, float]:
        """``(score, max score)`` of its public (``hidden=False``) or hidden tests: the question's points split
        equally between its tests; nothing when voided."""
        mine = [o for t, o in self.tests if t.hidden == hidden]
        if not self.total:
            return 0.0, 0.0
        each = self.points / self.total
        got = 0.0 if self.voided else each * sum(o.passed for o in mine)
        return round(got, 6), round(each * len(mine), 6)

    @property
    def failures(self) -> list[tuple[str, bool, str]]:
        """``(test id, hidden, message)`` of each failed test (none when a stopped cell says why)."""
        return [(t.id, t.hidden, o.message) for t, o in self.tests if o.kind not in ("passed", "void")]


def judge(spec: TestSpec, message, blob: bytes) -> Outcome:
    """Judge a test's result (the runner's ``result`` message and its tensor bytes) in this process."""
    try:
        value = wire.loads(message, blob)
    except ValueError as e:
        return Outcome("failed", f"its result could not be read ({e})")
    why = checks.run_check(spec, value)
    return Outcome("passed") if why is None else Outcome("failed", clean(why))


def error(text: str, limit: str | None = None) -> str:
    """The words for an error raised by the student's code (``limit``: the limit it shows was hit)."""
    return clean(text) + (f" (the {limit} limit)" if limit else "")
