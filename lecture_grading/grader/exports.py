"""Exports: the CSV of a folder of grades, and Gradescope's results.json for one.

The CSV (``csv_text``) has one row per submission: ``submission, assignment, status, q1 ... qN, total,
possible, notes``.  A submission that was not graded (``status`` ``failed`` or ``unreadable``) has empty score
cells: never a zero it did not earn.  Text cells that a spreadsheet would read as a formula start with ``'``.

``gradescope_results`` follows Gradescope's autograder specification,
https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format", "Controlling Test Case
Visibility", "Output String Formatting"); ``RESULTS_SCHEMA`` is that format as a JSON Schema (draft 2020-12),
written from the same page, and the tests validate every results.json against it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from lecture_grading.grader import reports
from lecture_grading.grader.grade import FAILED, GRADED, Grade
from lecture_grading.grader.text import csv_cell
from lecture_utils import atomic

VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")
FORMATS = ("text", "html", "simple_format", "md", "ansi")


# -- CSV ----------------------------------------------------------------------------------------------------------
FIXED_COLUMNS = ("submission", "assignment", "status", "total", "possible", "notes")


def csv_text(grades: list[Grade], kept: list[dict] = ()) -> str:
    """One row per submission, sorted by name (see the module's docstring); ``kept``: rows of an earlier CSV
    (``read_csv``) written again as they were."""
    qs: list[str] = []
    for keys in [[*g.results, *g.manual] for g in grades] + [[k for k in row if k not in FIXED_COLUMNS]
                                                               for row in kept]:
        for q in keys:
            if q not in qs:
                qs.append(q)
    rows = []
    for g in grades:
        graded = g.status == GRADED
        cells = [f"{g.results[q].score:g}" if graded and q in g.results else "" for q in qs]
        rows.append([csv_cell(g.name), csv_cell(g.assignment), g.status, *cells,
                     f"{g.total:g}" if graded else "", f"{g.possible:g}" if graded else "",
                     csv_cell(reports.notes(g))])
    for row in kept:
        rows.append([row.get(k) or "" for k in ("submission", "assignment", "status")] + [row.get(q) or "" for q in qs]
                    + [row.get(k) or "" for k in ("total", "possible", "notes")])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["submission", "assignment", "status", *qs, "total", "possible", "notes"])
    w.writerows(sorted(rows, key=lambda r: r[0].removeprefix("'")))
    return buf.getvalue()


def write_csv(grades: list[Grade], path: Path, kept: list[dict] = ()) -> None:
    atomic.write_text(path, csv_text(grades, kept))


def read_csv(path: Path) -> dict[str, dict]:
    """The rows of a CSV this module wrote, by submission name (an empty dict if there is none)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return {row["submission"].removeprefix("'"): row for row in csv.DictReader(f)}
    except FileNotFoundError:
        return {}


# -- Gradescope ---------------------------------------------------------------------------------------------------
_FORMAT = {"type": "string", "enum": list(FORMATS)}
_VISIBILITY = {"type": "string", "enum": list(VISIBILITY)}
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "gradescope-autograder-results",
    "title": "Gradescope autograder results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/)",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": _FORMAT,
        "test_output_format": _FORMAT,
        "test_name_format": _FORMAT,
        "visibility": _VISIBILITY,
        "stdout_visibility": _VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": {"$ref": "#/$defs/test"}},
        "leaderboard": {"type": "array", "items": {
            "type": "object", "required": ["name", "value"], "additionalProperties": False,
            "properties": {"name": {"type": "string"}, "value": {"type": ["number", "string"]},
                           "order": {"type": "string", "enum": ["asc", "desc"]}}}},
    },
    # "score: optional, but required if not on each test case"; "tests: optional, but required if no top-level
    # score".
    "anyOf": [{"required": ["score"]},
              {"required": ["tests"], "properties": {"tests": {"items": {"required": ["score"]}}}}],
    "$defs": {"test": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "score": {"type": "number"},
            "max_score": {"type": "number"},
            "status": {"type": "string", "enum": ["passed", "failed"]},
            "name": {"type": "string"},
            "name_format": _FORMAT,
            "number": {"type": "string"},
            "output": {"type": "string"},
            "output_format": _FORMAT,
            "tags": {"type": "array", "items": {"type": "string"}},
            "visibility": _VISIBILITY,
            "extra_data": {"type": "object"},
        },
    }},
}


def gradescope_results(g: Grade, hidden_visibility: str = "after_published") -> dict:
    """Gradescope's results.json for a graded or unreadable submission (never for a failed one: a failure
    writes no results, so Gradescope shows the run as failed and it can be regraded).

    Per auto-graded question two test entries: its public tests (visible at once) and its hidden tests
    (``hidden_visibility``, "after_published" by default), each worth its share of the question's points and
    with the report's reasons as its output.  Written questions are left for manual grading: they are not in
    the results (add them to the assignment's outline on Gradescope)."""
    if g.status == FAILED:
        raise ValueError("a submission that could not be graded has no results")
    if hidden_visibility not in VISIBILITY:
        raise ValueError(f"visibility must be one of {VISIBILITY}, got {hidden_visibility!r}")
    out = {"score": g.total if g.status == GRADED else 0.0, "execution_time": round(g.seconds, 1),
           "output_format": "text", "test_output_format": "text", "test_name_format": "text",
           "stdout_visibility": "hidden", "tests": [],
           "extra_data": {"assignment": g.assignment, "status": g.status, "backend": g.backend,
                          "sandboxes": g.sessions}}
    if g.status != GRADED:
        out["output"] = (f"Your submission could not be graded: {g.error}. Upload the assignment's notebook "
                         "(.ipynb) that you worked in, and submit again.")
        return out
    lines = [f"Auto-graded questions: {g.total:g} / {g.possible:g} points."]
    if g.manual:
        lines.append(f"Written answers ({', '.join(g.manual)}) are graded by hand.")
    lines.append(f"Hidden tests' results are shown {hidden_visibility.replace('_', ' ')}.")
    out["output"] = " ".join(lines)
    number = 0
    for q, r in g.results.items():
        number += 1
        for hidden in (False, True):
            tests = [(t, o) for t, o in r.tests if t.hidden == hidden]
            if not tests:
                continue
            got, most = r.share(hidden)
            passed = sum(o.passed for _, o in tests)
            kind = "hidden" if hidden else "public"
            text = [f"{passed} of {len(tests)} {kind} test{'s' if len(tests) > 1 else ''} passed."]
            text += [str(x) for x in r.reasons]
            for t, o in tests:
                if not o.passed and o.kind != "void":
                    text.append(f"hidden test {t.id} failed" if hidden else f"public test {t.id}: {o.message}")
            out["tests"].append({
                "name": f"{q} {'hidden' if hidden else 'public'} tests", "number": f"{number}.{2 if hidden else 1}",
                "score": got, "max_score": most, "output": "\n".join(text), "output_format": "text",
                "name_format": "text", "visibility": hidden_visibility if hidden else "visible",
                "tags": [q, "hidden" if hidden else "public"]})
    return out


def write_gradescope(g: Grade, path: Path, hidden_visibility: str = "after_published") -> None:
    atomic.write_text(path, json.dumps(gradescope_results(g, hidden_visibility), indent=1) + "\n")
