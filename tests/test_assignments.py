"""The graded assignments: the masters, building, the student notebooks and their checks, and grading.

The masters are built once per session into a temporary folder (not dist/); the gradings (each in its own
sandbox) and the student notebooks' runs then happen a few at a time.  The attacks are in
test_grading_attacks.py.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from lecture_grading.grader import build, cli, exports, grade, master, reports
from lecture_grading.grader.sandbox import bubblewrap
from tools import assignments, colab

ROOT = Path(__file__).resolve().parent.parent
MASTERS = {m.stem: m for m in build.find(ROOT / "assignments")}
A1, A2 = "01_initialization", "02_batchnorm"
needs_bwrap = pytest.mark.skipif(bubblewrap.problem() is not None, reason=str(bubblewrap.problem()))


def check_master(path: Path) -> list[str]:
    """What is wrong with a master (empty when fine), as the build sees it."""
    try:
        return master.problems(master.load(path))
    except ValueError as e:
        return [str(e)]


def test_there_are_two_masters_and_they_are_well_formed():
    assert set(MASTERS) >= {A1, A2}
    for path in MASTERS.values():
        assert check_master(path) == []
        qs = master.load(path).assignment.questions
        assert all(q.points for q in qs), "every question has points"
        assert [q.name for q in qs if q.manual] == ["q6"], "one written question, graded by hand"
        assert sum(q.points for q in qs if not q.manual) == 12


@pytest.mark.parametrize("name", sorted(MASTERS))
def test_raw_cells_survive_the_jupytext_round_trip(name):
    import jupytext

    def raw(nb):
        return [c.source for c in nb.cells if c.cell_type == "raw"]

    from_py = jupytext.read(MASTERS[name].with_suffix(".py"))
    from_ipynb = nbformat.read(MASTERS[name], as_version=4)
    assert raw(from_py) == raw(from_ipynb)
    assert raw(from_py)[0].startswith("# ASSIGNMENT CONFIG\nname: " + name)
    assert sum(r.startswith("# BEGIN QUESTION") for r in raw(from_py)) == 6


@pytest.mark.parametrize("name", sorted(MASTERS))
def test_every_question_has_public_and_hidden_tests_and_rules(name):
    a = master.load(MASTERS[name]).assignment
    for q in a.auto:
        assert any(not t.hidden for t in q.tests) and any(t.hidden for t in q.tests), q.name
    assert "lecture_utils" in a.rules["forbid"] and a.rules["allow"] == ["lecture_utils.config"]
    assert ("torch.nn.init" in a.rules["forbid"]) == (name == A1)


def test_masters_use_the_lecture_colab_cell():
    assert assignments.check() == []  # students need only the package
    assert colab.SETUP_MARKER.startswith(master.SETUP_MARKER)  # the grader finds the cell tools/colab.py writes


@pytest.mark.parametrize(("line", "student"), [
    ("    return gain / math.sqrt(fan_in)  # SOLUTION", "    ..."),
    ("plain_net = make_mlp(20, batchnorm=False)  # SOLUTION", "plain_net = ..."),
    ("    # BEGIN SOLUTION\n    x = 1\n    y = 2\n    # END SOLUTION\n    return x", "    ...\n    return x"),
])
def test_solutions_become_ellipses(line, student):
    assert build.strip_solution(line) == student


def test_malformed_masters_are_refused(tmp_path):
    import jupytext

    text = MASTERS[A1].with_suffix(".py").read_text()
    for old, new, message in [
        ("# CALL\ngot = fans(nn.Linear(3, 5))", "got = fans(nn.Linear(3, 5))", "needs one '# CALL' line"),
        ('expect.equal(got, (3, 5), "fans(nn.Linear(3, 5)), that is (fan_in, fan_out),")',
         "assert got == fans(nn.Linear(3, 5))", "uses fans, which only the student's process has"),
        ("name: 01_initialization", "name: other", "needs one '# ASSIGNMENT CONFIG'"),
    ]:
        assert text.count(old) == 1, old
        path = tmp_path / f"{A1}.ipynb"
        nbformat.write(jupytext.reads(text.replace(old, new), fmt="py:percent"), path)
        errors = check_master(path)
        assert errors and message in errors[0], errors


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Build every master, as `make assignments` does, in a copy of the tracked files alone (a clean checkout:
    no dist/, no earlier build, not even lecture_utils)."""
    checkout = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(["git", "ls-files", "assignments", "tools", "pyproject.toml"], cwd=ROOT,
                            capture_output=True, text=True)
    tracked = listed.stdout.split() if listed.returncode == 0 else []
    tracked = [t for t in tracked if (ROOT / t).is_file()]
    for rel in {*tracked, *(str(p.relative_to(ROOT)) for d in ("assignments", "tools")
                             for p in (ROOT / d).glob("*") if p.is_file()), "pyproject.toml"}:
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, checkout / rel)
    dist = checkout / "dist" / "assignments"
    res = subprocess.run([sys.executable, "-m", "lecture_grading.grader", "build"], cwd=checkout,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in dist.iterdir()) == sorted(MASTERS)
    return dist


def _with_source(nb: nbformat.NotebookNode, old: str, new: str) -> nbformat.NotebookNode:
    hits = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
    assert len(hits) == 1, f"{old!r} should appear in exactly one code cell"
    hits[0].source = hits[0].source.replace(old, new)
    return nb


def _execute(nb_path: Path) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel, in a folder of its own (nothing next to it)."""
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}},
                   allow_errors=False).execute()
    return nb


@pytest.fixture(scope="module")
def results(built, tmp_path_factory) -> dict:
    """Grade the submissions and execute the student notebooks, a few at a time."""
    tmp = tmp_path_factory.mktemp("submissions")
    sol = {n: built / n / "autograder" / f"{n}.ipynb" for n in MASTERS}
    student = {n: built / n / "student" / f"{n}.ipynb" for n in MASTERS}

    # One wrong function (the ReLU factor forgotten) and a scratch cell that raises.
    wrong = _with_source(nbformat.read(sol[A1], as_version=4), "return variances", "return [2 * v for v in variances]")
    after = next(i for i, c in enumerate(wrong.cells) if "def xavier_std" in c.source)
    wrong.cells.insert(after + 1, nbformat.v4.new_code_cell('raise RuntimeError("a scratch cell that fails")'))
    (tmp / "wrong").mkdir()
    nbformat.write(wrong, tmp / "wrong" / f"{A1}.ipynb")
    # Students' copies, executed where they stand alone (as in a fresh Colab or Jupyter session).
    runs = {}
    for n, path in student.items():
        (tmp / "run" / n).mkdir(parents=True)
        runs[n] = tmp / "run" / n / path.name
        shutil.copy(path, runs[n])

    jobs = {
        "sol1": sol[A1], "sol2": sol[A2], "student1": student[A1], "student2": student[A2],
        "wrong": tmp / "wrong" / f"{A1}.ipynb", "run1": runs[A1], "run2": runs[A2],
    }

    def run(item):
        key, path = item
        if key.startswith("run"):
            return _execute(path)
        return grade.grade(path, dist=built, slot=list(jobs).index(key))

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(jobs, pool.map(run, jobs.items()), strict=True))


def test_build_writes_student_notebook_reference_and_tests(built):
    for n in MASTERS:
        assert (built / n / "student" / f"{n}.ipynb").is_file()
        assert (built / n / "autograder" / f"{n}.ipynb").is_file()
        tests = master.Assignment.from_json((built / n / "autograder" / "tests.json").read_text())
        assert [q.name for q in tests.questions] == ["q1", "q2", "q3", "q4", "q5", "q6"]
        assert sum(t.hidden for q in tests.auto for t in q.tests) >= 7


@pytest.mark.parametrize(
    ("name", "solution_lines", "hidden_lines"),
    [
        (A1, ["math.sqrt(3.0) * std", "c_in * k_h * k_w", 'init_module_(net, "he", "normal")',
              "doubles the weights' variance"],
         ["nn.Conv2d(4, 8, kernel_size=(3, 5))", "xavier_std(10, 30, gain=5 / 3)", "each layer draws its own weights"]),
        (A2, ["x.var(dim=0, unbiased=False)", "register_buffer(", "make_mlp(20, batchnorm=True)", "invariant"],
         ["eps=1e-3", "do not modify the arguments in place", "the plain 20-layer net should not learn"]),
    ],
)
def test_student_notebook_has_no_solution_and_no_hidden_test(built, name, solution_lines, hidden_lines):
    nb = nbformat.read(built / name / "student" / f"{name}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells) + json.dumps(nb.metadata, ensure_ascii=False)
    source = MASTERS[name].with_suffix(".py").read_text()
    for line in solution_lines + hidden_lines:
        assert line in source, f"the test is stale: {line!r} is not in the master"
        assert line not in text, f"{line!r} leaks into the student notebook"
    a = master.load(MASTERS[name]).assignment
    assert build.leaks(nb, a) == []
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].source.strip() == a.setup, "the Colab set-up cell comes first"
    assert code[2].source.startswith(master.CHECKS_TITLE), "check is defined right after the imports"
    assert code[2].metadata["cellView"] == "form" and code[2].metadata["jupyter"]["source_hidden"] is True
    assert "MASTER ONLY" not in text and "from lecture_grading import expect" not in text
    assert nb.metadata["assignment"] == {"name": name} and "jupytext" not in nb.metadata
    checks = [c.source for c in code if c.source.startswith("check(")]
    assert checks == [f'check("q{k}")' for k in range(1, 6)], "one check cell per auto-graded question"
    assert "graded by hand" in text
    # The public tests are in the notebook itself (Colab has no file next to it), and only they.
    public = {t.call for q in a.auto for t in q.tests if not t.hidden}
    assert all(call in code[2].source for call in public)


@needs_bwrap
@pytest.mark.parametrize("key", ["sol1", "sol2"])
def test_reference_solutions_score_full_marks(results, key):
    g = results[key]
    assert g.error == "" and g.sessions == 1
    assert g.possible == 12 and g.total == 12, reports.report(g, verbose=True)
    assert g.manual == {"q6": 2.0}


@needs_bwrap
@pytest.mark.parametrize("key", ["student1", "student2"])
def test_untouched_student_notebook_scores_zero_everywhere(results, key):
    g = results[key]
    assert g.error == ""
    assert len(g.results) == 5 and all(r.score == 0 and r.points > 0 and r.passed == 0 for r in g.results.values())
    # Every failure says what was expected, not a bare TypeError.
    public = [msg for r in g.results.values() for _, hidden, msg in r.failures if not hidden]
    assert len(public) >= 5 and all("should" in m or "raised" in m for m in public), public


@needs_bwrap
def test_one_wrong_function_loses_exactly_its_question(results):
    g, full = results["wrong"], results["sol1"]
    assert g.error == ""
    lost = {q: full.results[q].score - r.score for q, r in g.results.items() if r.score != full.results[q].score}
    assert lost == {"q4": 2.0}, reports.report(g, verbose=True)
    report = reports.report(g)
    assert "q4         0.00 / 2   (0 of 3 tests passed)" in report
    assert "public test q4.1: He init in a ReLU net" in report and "should be 2 at element 0, got 4" in report
    assert "hidden test q4.2 failed" in report and "ReLU with gain 1" not in report  # hidden messages stay hidden
    assert "ReLU with gain 1" in reports.report(g, verbose=True)


@pytest.mark.parametrize(("key", "name"), [("run1", A1), ("run2", A2)])
def test_student_notebook_runs_alone_and_its_checks_explain_what_is_missing(results, key, name):
    nb = results[key]
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("check(")]
    assert len(checks) == 5
    for cell in checks:
        shown = "".join(str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", "")) for o in cell.outputs)
        assert "public test" in shown and "failed" in shown, shown
        assert "should" in shown, shown  # what is expected, not a bare TypeError
        assert "Traceback" not in shown
    q1 = "".join(o.get("data", {}).get("text/plain", "") for o in checks[0].outputs)
    if name == A1:
        assert q1 == ("q1: 1 of 1 public test failed.\n  test 1: fans(nn.Linear(3, 5)), that is (fan_in, fan_out), "
                      "should be (3, 5) (a tuple of int), got None")


def test_public_checks_pass_on_the_reference_solutions(built, tmp_path):
    """The same check("qN") cells, run on the answered notebook in a kernel, all pass."""
    path = tmp_path / f"{A1}.ipynb"
    shutil.copy(built / A1 / "autograder" / f"{A1}.ipynb", path)
    nb = _execute(path)
    shown = ["".join(o.get("data", {}).get("text/plain", "") for o in c.outputs)
             for c in nb.cells if c.cell_type == "code" and c.source.startswith("check(")]
    assert len(shown) == 5 and all("public test" in s and "passed" in s and "failed" not in s for s in shown), shown


@needs_bwrap
def test_report_and_csv(results, tmp_path):
    grades = [results["sol1"], results["wrong"], results["sol2"]]
    grades[1].label = "wrong/01_initialization.ipynb"
    out = tmp_path / "scores.csv"
    exports.write_csv(grades, out)
    rows = list(csv.DictReader(out.open()))
    assert [r["total"] for r in rows] == ["12", "12", "10"]  # sorted by submission name
    wrong = rows[2]
    assert wrong["submission"] == "wrong/01_initialization.ipynb" and wrong["q4"] == "0" and wrong["q6"] == ""
    assert wrong["notes"] == ("q4: 3 of 3 tests failed (test q4.1: He init in a ReLU net, Var z_l = 100 * (2/100) * 1 "
                              "for every layer, should be 2 at element 0, got 4)"), wrong["notes"]
    assert list(tmp_path.iterdir()) == [out]  # written in place, no temporary file left


def test_grade_rejects_unknown_and_unreadable_notebooks(tmp_path):
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, tmp_path / "x.ipynb")
    g = grade.grade(tmp_path / "x.ipynb", dist=tmp_path)
    assert "unknown assignment" in g.error and g.total == 0
    (tmp_path / "broken.ipynb").write_text("{not json")
    g = grade.grade(tmp_path / "broken.ipynb", dist=tmp_path)
    assert g.error.startswith("cannot read the notebook")
    with pytest.raises(ValueError, match="not a notebook"):
        cli.submissions(tmp_path / "missing.txt")
