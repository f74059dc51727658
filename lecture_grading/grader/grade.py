"""Grade a submission: plan its steps, run them in a sandbox, judge the results here, score each question.

``grade`` never raises.  It returns a ``Grade`` whose ``status`` says what it is:

* ``graded``: every question has a score (``score.QuestionResult``);
* ``unreadable``: the submission is not a notebook of a known assignment (the student's problem, shown as
  such; no score is invented);
* ``failed``: grading itself failed (the sandbox did not start, a private file was readable from inside,
  a bug of the grader).  No score, ever: the caller reports it loudly, exits non-zero, and the submission is
  graded again once the cause is fixed (``grade --retry-failed``, Gradescope's "Regrade").

Each step has a deadline; a step that runs past it, is killed for memory or ends the process is charged to
its question (a cell) or its test; a fresh sandbox then goes on from the next step.  Results are judged and
written only after the sandbox that produced them has ended.
"""

from __future__ import annotations

import queue
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lecture_grading.grader import build, plan, rules, sandbox, score
from lecture_grading.grader.score import Outcome, QuestionResult, Reason, Why
from lecture_grading.grader.text import clean
from lecture_grading.limits import Limits, stopped

GRADED, UNREADABLE, FAILED = "graded", "unreadable", "failed"


@dataclass
class Grade:
    """The grade of one submission: auto-graded questions, the manual questions' points, and why."""

    submission: Path
    assignment: str
    results: dict[str, QuestionResult] = field(default_factory=dict)
    manual: dict[str, float] = field(default_factory=dict)  # question -> points, graded by hand
    status: str = GRADED
    error: str = ""  # why it is not graded (unreadable or failed)
    seconds: float = 0.0
    sessions: int = 0  # sandboxes started (more than one when a step had to be stopped)
    label: str = ""  # how the submission is named in reports: its path relative to the graded folder
    backend: str = ""
    profile: dict[str, float] = field(default_factory=dict)  # seconds by phase (see ``PHASES``)

    @property
    def name(self) -> str:
        return clean(self.label or self.submission.name)

    @property
    def graded(self) -> bool:
        return self.status == GRADED

    @property
    def scores(self) -> dict[str, tuple[float, float]]:
        return {q: (r.score, r.points) for q, r in self.results.items()}

    @property
    def total(self) -> float:
        return round(sum(r.score for r in self.results.values()), 6)

    @property
    def possible(self) -> float:
        return sum(r.points for r in self.results.values())


#: The phases of ``Grade.profile``: where a submission's grading time goes.
PHASES = {
    "read": "read the notebook, plan its steps, check its code against the rules",
    "grader_imports": "import torch in the grader (overlaps the sandbox's start)",
    "sandbox_setup": "from launching the sandbox to its Python running the runner (bwrap, interpreter start)",
    "runner_imports": "IPython and the protocol's modules, in the sandbox",
    "torch_import": "the preloaded torch, in the sandbox",
    "cells": "the notebook's code cells (the student's computation)",
    "tests": "the tests' call parts (the student's functions on the tests' inputs)",
    "replays": "sandboxes started again after a stopped step, and the cells they re-ran",
    "judge": "the tests' check parts, in the grader",
    "close": "ending the sandbox (killing and waiting for its processes)",
}


def grade(submission: Path, dist: Path, masters_dir: Path | None = None, limits: Limits | None = None,
          slot: int = 0, backend: type[sandbox.Session] | None = None, options: sandbox.Options | None = None,
          **overrides) -> Grade:
    """Grade one submitted notebook (see the module's docstring); ``overrides`` are limits."""
    submission = Path(submission)
    start = time.monotonic()
    result = Grade(submission, "")
    prof = result.profile
    try:
        try:
            nb = plan.read(submission)
        except plan.Unreadable as e:
            result.status, result.error = UNREADABLE, f"cannot read the notebook: {clean(e)}"
            return result
        name = plan.assignment_of(nb)
        try:
            assignment = build.load_assignment(name, dist, masters_dir) if name else None
        except FileNotFoundError:
            assignment = None
        if assignment is None:
            known = sorted(p.name for p in Path(dist).iterdir() if (p / "autograder" / "tests.json").is_file()) \
                if Path(dist).is_dir() else []
            result.status = UNREADABLE
            result.error = f"unknown assignment {clean(name, 80)!r}: expected one of {known}"
            result.assignment = clean(name, 80)
            return result
        result.assignment = name
        limits = limits or assignment.limits(**overrides)
        backend = backend or sandbox.choose("bubblewrap")
        result.backend = backend.backend
        options = options or sandbox.Options()
        result.manual = {q.name: q.points for q in assignment.manual}
        result.results = {q.name: QuestionResult(q.name, q.points) for q in assignment.auto}
        steps, before = plan.plan(nb, assignment)
        deadline = time.monotonic() + limits.total_timeout
        prof["read"] = time.monotonic() - start
        first = backend(limits, options, slot=slot, deadline=deadline)
        try:
            first.launch()  # it starts while the grader reads the code and imports torch
            t = time.monotonic()
            _check_rules(nb, assignment, before, result)
            prof["read"] += time.monotonic() - t
            t = time.monotonic()
            from lecture_utils.config import one_thread  # imports torch: only once the sandbox has started

            one_thread()  # the checks are small, and submissions graded side by side share the cores
            prof["grader_imports"] = time.monotonic() - t
            run = _Run(steps, limits, options, backend, slot, deadline, result)
            run.go(first)
        finally:
            first.close()
        t = time.monotonic()
        _score(assignment, steps, run, result)
        prof["judge"] = prof.get("judge", 0.0) + time.monotonic() - t
    except (sandbox.SandboxFailed, sandbox.SandboxUnavailable) as e:
        _failed(result, clean(e, 500))
    except Exception as e:  # a bug of the grader: never a student's score
        _failed(result, f"the grader failed: {clean(f'{type(e).__name__}: {e}', 500)}")
    finally:
        result.seconds = time.monotonic() - start
    return result


def _failed(result: Grade, why: str) -> None:
    result.status, result.error = FAILED, why
    result.results, result.manual = {}, {}  # nothing of a half-done grading may look like a score


def _check_rules(nb: plan.Notebook, assignment, before: dict[str, list[int]], result: Grade) -> None:
    """Rules, read from the code (outside the sandbox): a question whose cells, or any cell before them, break
    them scores 0."""
    broken: dict[int, str] = {}
    for no, (kind, src) in enumerate(nb.cells, 1):
        if kind == "code" and src.strip() != assignment.setup:
            found = rules.violations(src, assignment.rules)
            if found:
                broken[no] = f"cell {no}, {clean(found[0])}"
    for q, cells in before.items():
        hits = [broken[c] for c in cells if c in broken]
        if hits:
            result.results[q].reasons.append(Reason(Why.RULES, f"{Why.RULES.value}: {hits[0]}"))


class _Run:
    """The steps in sandboxes; after a stopped step, a fresh sandbox goes on from the next one.

    ``outcomes``: per test id ``("ok", (message, blob)) | ("error", text, limit) | ("stopped", why)``;
    ``cell_errors``: per cell number ``(error, limit)``; ``stopped``: per question why its cells were stopped."""

    def __init__(self, steps, limits, options, backend, slot, deadline, result: Grade):
        self.steps, self.limits, self.options, self.backend = steps, limits, options, backend
        self.slot, self.deadline, self.result = slot, deadline, result
        self.outcomes: dict[str, tuple] = {}
        self.cell_errors: dict[int, tuple[str, str | None]] = {}
        self.stopped: dict[str, Reason] = {}
        self.skip: set[int] = set()

    def go(self, first: sandbox.Session) -> None:
        prof, session = self.result.profile, first
        while True:
            todo = [i for i, st in enumerate(self.steps)
                    if (st.kind == "cell" and i not in self.skip)
                    or (st.kind == "test" and st.test.id not in self.outcomes and st.question not in self.stopped)]
            tests_left = [i for i in todo if self.steps[i].kind == "test"]
            if not tests_left:
                return
            todo = [i for i in todo if i <= tests_left[-1]]
            if time.monotonic() >= self.deadline:
                for i in tests_left:
                    self.outcomes[self.steps[i].test.id] = ("stopped", stopped("total", self.limits, "test"))
                return
            replay = self.result.sessions > 0
            self.result.sessions += 1
            if session is None:
                session = self.backend(self.limits, self.options, slot=self.slot, deadline=self.deadline)
                session.launch()
            try:
                stop = session.wait_ready()
                self._profile_start(session, replay)
                if stop is not None:  # the submission's time ran out before the sandbox was ready
                    for i in tests_left:
                        self.outcomes[self.steps[i].test.id] = ("stopped", stopped("total", self.limits, "test"))
                    return
                if self._steps(session, todo, replay):
                    return
            finally:
                t = time.monotonic()
                session.close()
                prof["close"] = prof.get("close", 0.0) + time.monotonic() - t
                session = None

    def _profile_start(self, session: sandbox.Session, replay: bool) -> None:
        prof = self.result.profile
        if replay:
            prof["replays"] = prof.get("replays", 0.0) + session.ready_at - session.launched_at
            return
        clock = session.ready.get("clock")
        if type(clock) is list and len(clock) == 3 and all(type(c) is float for c in clock):
            prof["sandbox_setup"] = max(0.0, clock[0] - session.launched_at)
            prof["runner_imports"] = max(0.0, clock[1] - clock[0])
            prof["torch_import"] = max(0.0, clock[2] - clock[1])
        else:
            prof["sandbox_setup"] = session.ready_at - session.launched_at

    def _steps(self, session: sandbox.Session, todo: list[int], replay: bool) -> bool:
        """Run ``todo`` in ``session``; True when all ran, False when a step was stopped (go on in a new one)."""
        prof = self.result.profile
        for i in todo:
            st = self.steps[i]
            t = time.monotonic()
            if st.kind == "cell":
                reply, stop = session.step({"cell": st.source}, self.limits.cell_timeout)
            else:
                reply, stop = session.step({"test": st.test.for_runner()}, self.limits.test_timeout)
            key = "replays" if replay else ("cells" if st.kind == "cell" else "tests")
            prof[key] = prof.get(key, 0.0) + time.monotonic() - t
            if stop is not None:
                if st.kind == "cell":
                    self.skip.add(i)
                    self.stopped.setdefault(st.question, Reason(
                        Why.CELL_STOPPED, f"cell {st.cell} {stopped(stop.kind, self.limits, 'cell', stop.detail)}"))
                else:
                    self.outcomes[st.test.id] = ("stopped", stopped(stop.kind, self.limits, "test", stop.detail))
                return False
            limit = reply.get("limit") if reply.get("limit") in ("memory", "process", "disk") else None
            error = str(reply.get("error", "an error"))
            if st.kind == "cell":
                if reply.get("ok") is not True:
                    self.cell_errors[st.cell] = (error, limit)
                    if limit:  # resource abuse, not an ordinary bug: it costs the question
                        self.stopped.setdefault(st.question, Reason(
                            Why.CELL_LIMIT, f"cell {st.cell} hit the {limit} limit: {clean(error)}"))
                else:
                    self.cell_errors.pop(st.cell, None)
            elif reply.get("ok") is True:
                self.outcomes[st.test.id] = ("ok", (reply.get("result"), reply.get("blob", b"")))
            else:
                self.outcomes[st.test.id] = ("error", error, limit)
        return True


def _score(assignment, steps, run: _Run, result: Grade) -> None:
    for q in assignment.auto:
        r = result.results[q.name]
        void = run.stopped.get(q.name)
        if void:
            r.reasons.insert(0, void)
        own = [st.cell for st in steps if st.kind == "cell" and st.question == q.name]
        for t in q.tests:
            got = run.outcomes.get(t.id)
            if got is None:
                outcome = Outcome("void" if void else "failed", void.text if void else "not run")
            elif got[0] == "ok":
                outcome = score.judge(t, *got[1])
            elif got[0] == "error":
                outcome = Outcome("error", f"running your code raised {score.error(got[1], got[2])}")
            else:
                outcome = Outcome("stopped", f"it {got[1]}")
            if void and not outcome.passed:
                outcome = Outcome("void", outcome.message)  # a stopped cell already says why they failed
            r.tests.append((t, outcome))
        if r.score < r.points:
            errors = [f"cell {c} raised {score.error(*run.cell_errors[c])}" for c in own if c in run.cell_errors]
            r.reasons += [Reason(Why.CELL_ERROR, e) for e in errors[:2]]


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
