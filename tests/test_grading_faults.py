"""Faults found while grading as an instructor would, each reproduced for real.

* From a clone under ``/tmp`` every submission scored 0: each sandbox died with ``No module named
  'lecture_grading'`` (its private /tmp hid the editable install's source).  Here a copy of the repository is
  installed (editable) under pytest's temporary folder, which is under /tmp, and grades.
* That failure was written to the CSV as a score of 0 for every student.  Here the sandbox is made unable to
  start (a start-up deadline it cannot meet): no score is written, the summary says so loudly, the exit status
  is 1, and ``--retry-failed`` grades exactly those submissions once the cause is gone.
* Student-controlled text (an exception's message, a folder's name) carrying terminal escape sequences,
  bidirectional controls, a spreadsheet formula and HTML reaches the terminal, the CSV, the reports and
  results.json only as inert text.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from lecture_grading.grader import build, cli, exports, grade, reports, text
from lecture_grading.grader.sandbox import bubblewrap
from tests import _container

ROOT = Path(__file__).resolve().parent.parent
MASTERS = ROOT / "assignments"
A1 = "01_initialization"
pytestmark = pytest.mark.skipif(bubblewrap.problem() is not None, reason=str(bubblewrap.problem()))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    build.build(MASTERS, dist, [A1])
    return dist


def _notebook(built: Path, kind: str) -> nbformat.NotebookNode:
    return nbformat.read(built / A1 / kind / f"{A1}.ipynb", as_version=4)


def _rows(path: Path) -> dict[str, dict]:
    return {r["submission"].split("/")[0]: r for r in csv.DictReader(io.StringIO(path.read_text()))}


# -- a clone under /tmp ---------------------------------------------------------------------------------------------
def test_a_clone_under_tmp_grades(built, tmp_path):
    assert str(tmp_path).startswith("/tmp/")
    clone = _container.tracked_copy(ROOT, tmp_path / "clone")
    venv = tmp_path / "clone" / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    import sysconfig

    (Path(purelib) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "-e", str(clone)], check=True, timeout=300)
    where = subprocess.run([python, "-c", "import lecture_grading; print(lecture_grading.__file__)"], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert where == str(clone / "lecture_grading" / "__init__.py")  # the clone's source, under /tmp
    folder = tmp_path / "submissions"
    for name, kind in (("reference", "autograder"), ("blank", "student")):
        (folder / name).mkdir(parents=True)
        nbformat.write(_notebook(built, kind), folder / name / f"{A1}.ipynb")
    done = subprocess.run([python, "-m", "lecture_grading.grader", "grade", str(folder), "--csv",
                           str(tmp_path / "scores.csv"), "--jobs", "2"], cwd=clone, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = _rows(tmp_path / "scores.csv")
    assert (rows["reference"]["total"], rows["blank"]["total"]) == ("12", "0")
    assert {r["status"] for r in rows.values()} == {"graded"}


def test_a_fresh_checkout_builds_each_assignment_once_when_grading_two_at_a_time(built, tmp_path, monkeypatch):
    """From a clean clone (no dist/), two submissions graded side by side both found the assignment unbuilt and
    built it at once; the second build's rename failed ("Directory not empty") and failed its grading.  A build
    takes seconds in a fresh process (nbformat's first import); here it is made that slow on purpose."""
    builds = []
    real = build.build_one

    def slow(path, dist):
        builds.append(path)
        time.sleep(1.0)
        return real(path, dist)

    monkeypatch.setattr(build, "build_one", slow)
    folder = tmp_path / "submissions"
    for name, kind in (("reference", "autograder"), ("blank", "student")):
        (folder / name).mkdir(parents=True)
        nbformat.write(_notebook(built, kind), folder / name / f"{A1}.ipynb")
    code = cli.main(["grade", str(folder), "--csv", str(tmp_path / "scores.csv"), "--dist", str(tmp_path / "dist"),
                     "--masters", str(MASTERS), "--jobs", "2"])
    rows = _rows(tmp_path / "scores.csv")
    assert code == 0 and (rows["reference"]["total"], rows["blank"]["total"]) == ("12", "0"), rows
    assert len(builds) == 1


# -- a grader failure is never a score ---------------------------------------------------------------------------------
def test_a_broken_sandbox_writes_no_score_and_retry_grades_it(built, tmp_path, capsys):
    folder = tmp_path / "submissions"
    for name, kind in (("reference", "autograder"), ("blank", "student")):
        (folder / name).mkdir(parents=True)
        nbformat.write(_notebook(built, kind), folder / name / f"{A1}.ipynb")
    scores, out = tmp_path / "scores.csv", tmp_path / "reports"
    args = ["grade", str(folder), "--csv", str(scores), "--reports", str(out), "--dist", str(built),
            "--masters", str(MASTERS), "--jobs", "2"]
    code = cli.main([*args, "--startup-timeout", "0.05"])  # no sandbox starts in 50 ms: grading fails
    err = capsys.readouterr().err
    assert code == 1
    rows = _rows(scores)
    for row in rows.values():
        assert row["status"] == "failed" and "did not start (not ready after 0.05 s)" in row["notes"]
        assert [row[q] for q in ("total", "possible")] == ["", ""]  # no score, not even a zero
        assert not [k for k in row if k.startswith("q")], "no question column: nothing was scored"
    assert "GRADING FAILED for 2 submissions" in err and "--retry-failed" in err
    assert "NOT GRADED" in (out / "reference__01_initialization.txt").read_text()

    code = cli.main([*args, "--retry-failed"])  # the cause is gone: the same command grades them
    assert code == 0
    rows = _rows(scores)
    assert (rows["reference"]["total"], rows["blank"]["total"]) == ("12", "0")
    before = scores.read_bytes()
    assert cli.main([*args, "--retry-failed"]) == 0  # nothing left to grade: the rows stay as they are
    assert "2 submissions keep their rows, 0 are graded again" in capsys.readouterr().out
    assert scores.read_bytes() == before


def test_a_grader_bug_is_a_failure_not_a_score(built, tmp_path, monkeypatch):
    """An exception of the grader's own (here: judging breaks) fails the grading; nothing is scored."""
    path = tmp_path / "n.ipynb"
    nbformat.write(_notebook(built, "autograder"), path)

    def broken(*args, **kwargs):
        raise KeyError("the judge is broken")

    monkeypatch.setattr(grade.score, "judge", broken)
    g = grade.grade(path, dist=built, masters_dir=MASTERS)
    assert g.status == "failed" and "KeyError" in g.error and g.results == {}
    assert exports.csv_text([g]).splitlines()[1].startswith("n.ipynb,01_initialization,failed,,,")
    with pytest.raises(ValueError, match="no results"):
        exports.gradescope_results(g)


# -- hostile text --------------------------------------------------------------------------------------------------
PAYLOAD = ("\x1b[2J\x1b]8;;http://evil.example\x07click\x1b]8;;\x07 \u202eevil\u202c \r=1+1 @SUM(A1) "
           "<script>alert(1)</script>")


def test_text_is_made_inert():
    line = text.clean(PAYLOAD)
    assert "\x1b" not in line and "\u202e" not in line and "\r" not in line and "\x07" not in line
    assert "\\x1b[2J" in line and "\\u202e" in line  # shown, not obeyed
    assert text.clean("x" * 500, 50) == "x" * 49 + "…"
    assert text.clean("at 0x7f3a2b1c4d5e in memory") == "at 0x… in memory"
    for cell in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\uff1d1"):
        assert text.csv_cell(cell) == "'" + cell
    assert text.csv_cell("q1: 2 of 3 tests failed") == "q1: 2 of 3 tests failed"
    assert text.html("<script>&") == "&lt;script&gt;&amp;"


def test_student_text_reaches_terminal_csv_reports_and_results_inert(built, tmp_path, capsys):
    nb = _notebook(built, "student")
    at = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "def fans(" in c.source)
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(f"raise RuntimeError({PAYLOAD!r})"))
    folder = tmp_path / "submissions"
    hostile = folder / "=HYPERLINK(\"http:__evil\")\x1b[31m"
    hostile.mkdir(parents=True)
    nbformat.write(nb, hostile / f"{A1}.ipynb")
    scores, out = tmp_path / "scores.csv", tmp_path / "reports"
    code = cli.main(["grade", str(folder), "--csv", str(scores), "--reports", str(out), "--dist", str(built),
                     "--masters", str(MASTERS)])
    assert code == 0
    shown = capsys.readouterr()
    written = [shown.out, shown.err, scores.read_text(), *(p.read_text() for p in out.iterdir())]
    for t in written:
        assert not set(t) & {"\x1b", "\x07", "\u202e", "\r"}, t[:500]
    assert "RuntimeError: \\x1b[2J" in shown.out  # the message is there, as visible escapes
    row = next(csv.DictReader(io.StringIO(scores.read_text())))
    assert row["submission"].startswith("'=HYPERLINK(") and row["notes"].startswith("q1: ")
    assert all(not v.startswith(text.FORMULA_START) for v in row.values())
    g = grade.grade(hostile / f"{A1}.ipynb", dist=built, masters_dir=MASTERS)
    results = exports.gradescope_results(g)
    assert "<script>alert(1)</script>" in json.dumps(results)  # as text, which Gradescope does not render
    assert results["output_format"] == "text" and {t["output_format"] for t in results["tests"]} == {"text"}
    assert "\x1b" not in reports.report(g) and "\u202e" not in reports.notes(g)


def test_the_progress_line_counts_rates_and_estimates():
    now = [0.0]
    stream = io.StringIO()
    p = reports.Progress(200, stream=stream, every=0, clock=lambda: now[0])
    g = grade.Grade(Path("x.ipynb"), A1)
    for _ in range(50):
        now[0] += 3.0
        p.update(g)
    line = stream.getvalue().splitlines()[-1]
    assert line == "graded 50/200 | 20.0/min | 2 min 30 s elapsed | about 7 min 30 s left"
    failed = grade.Grade(Path("y.ipynb"), A1, status="failed")
    p.update(failed)
    assert "(1 not graded)" in stream.getvalue().splitlines()[-1]
