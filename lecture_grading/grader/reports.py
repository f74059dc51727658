"""What people read: the per-student report, the one-line notes, the run's summary and its progress bar.

Every piece of student text in a ``Grade`` was made safe when it was recorded (``text.clean``); what is
written here is plain printable text.
"""

from __future__ import annotations

import sys
import time

from lecture_grading.grader.grade import FAILED, UNREADABLE, Grade


def notes(g: Grade) -> str:
    """One line: why it is not graded, or for each question that lost points, why (for the CSV)."""
    if not g.graded:
        return g.error
    parts = []
    for q, r in g.results.items():
        if r.score < r.points:
            public = [f" (test {tid}: {msg})" for tid, hidden, msg in r.failures if not hidden][:1]
            why = [str(x) for x in r.reasons[:1]] or [f"{r.total - r.passed} of {r.total} tests failed" + "".join(public)]
            parts.append(f"{q}: {why[0]}")
    return "; ".join(parts)


def report(g: Grade, verbose: bool = False) -> str:
    """The per-student report; ``verbose`` adds the hidden tests' messages (not for students)."""
    lines = [f"{g.name} (assignment {g.assignment or '?'})"]
    if g.status == FAILED:
        return "\n".join([*lines, f"  NOT GRADED: grading failed, not the submission: {g.error}",
                          "  (no score was recorded; it will be graded again once the cause is fixed)"])
    if g.status == UNREADABLE:
        return "\n".join([*lines, f"  not graded: {g.error}"])
    for q, r in g.results.items():
        lines.append(f"  {q:<8} {r.score:6.2f} / {r.points:g}"
                     + (f"   ({r.passed} of {r.total} tests passed)" if r.total else ""))
        for why in r.reasons:
            lines.append(f"      {why}")
        for tid, hidden, msg in r.failures:
            if hidden and not verbose:
                lines.append(f"      hidden test {tid} failed")
            else:
                lines.append(f"      {'hidden' if hidden else 'public'} test {tid}: {msg}")
    for q, p in g.manual.items():
        lines.append(f"  {q:<8} {'manual':>6} / {p:g}   (written answer: graded by hand)")
    lines.append(f"  {'total':<8} {g.total:6.2f} / {g.possible:g}   (auto-graded questions)")
    return "\n".join(lines)


def summary(grades: list[Grade]) -> str:
    """The end of a run: how many were graded, and loudly, which could not be and what to do."""
    failed = [g for g in grades if g.status == FAILED]
    unreadable = [g for g in grades if g.status == UNREADABLE]
    graded = len(grades) - len(failed) - len(unreadable)
    lines = [f"graded {graded} of {len(grades)} submission{'s' if len(grades) != 1 else ''}"]
    if unreadable:
        lines.append(f"{len(unreadable)} could not be read (no score recorded; see their notes):")
        lines += [f"  {g.name}: {g.error}" for g in unreadable[:20]]
    if failed:
        bar = "!" * 100
        lines += [bar, f"GRADING FAILED for {len(failed)} submission{'s' if len(failed) != 1 else ''}: no score "
                  "was recorded for them (their rows are empty). This is the grader's failure, not the students'.",
                  *[f"  {g.name}: {g.error}" for g in failed[:20]],
                  *([f"  ... and {len(failed) - 20} more"] if len(failed) > 20 else []),
                  "Fix the cause, then grade them again: the same command with --retry-failed.", bar]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """A progress line for folder runs: count, rate and time left.  On a terminal it is redrawn in place;
    elsewhere (a log, CI) a line is printed at most every ``every`` seconds and at the end."""

    def __init__(self, total: int, stream=None, every: float = 30.0, clock=time.monotonic):
        self.total, self.done, self.failed = total, 0, 0
        self.stream = stream if stream is not None else sys.stderr
        self.clock, self.every = clock, every
        self.started = clock()
        self.last_line = -1e9
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed * 60
        text = f"graded {self.done}/{self.total}"
        if self.failed:
            text += f" ({self.failed} not graded)"
        if self.done:
            left = (self.total - self.done) * elapsed / self.done
            text += f" | {rate:.1f}/min | {_duration(elapsed)} elapsed"
            text += f" | about {_duration(left)} left" if self.done < self.total else ""
        return text

    def update(self, g: Grade) -> None:
        self.done += 1
        self.failed += not g.graded
        now = self.clock()
        if self.tty:
            end = "\n" if self.done == self.total else ""
            self.stream.write("\r\x1b[2K" + self.line() + end)
        elif now - self.last_line >= self.every or self.done == self.total:
            self.stream.write(self.line() + "\n")
            self.last_line = now
        self.stream.flush()
