"""The graded assignments: building, the student notebooks, and grading (otter-grader, no Docker).

The masters are built once per session into a temporary folder (not dist/), then every grading run and
every notebook execution happens at the same time in a few threads, so the file takes about a minute.
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

pytest.importorskip("otter")

from tools import assignments, colab  # noqa: E402

MASTERS = {m.stem: m for m in assignments.masters()}
A1, A2 = "01_initialization", "02_batchnorm"
# Seconds per cell when grading here (generous: the machine may be busy), and for the submission that loops.
CELL_TIMEOUT = 120
LOOP_TIMEOUT = 20


def test_there_are_two_masters_and_they_are_well_formed():
    assert set(MASTERS) >= {A1, A2}
    for master in MASTERS.values():
        assert assignments.check_master(master) == []
        qs = assignments.questions(master)
        assert all(q.get("points") for q in qs), "every question has points"
        assert [q["name"] for q in qs if q.get("manual")] == ["q6"], "one written question, graded by hand"


@pytest.mark.parametrize("name", sorted(MASTERS))
def test_otter_raw_cells_survive_the_jupytext_round_trip(name):
    import jupytext

    def raw(nb):
        return [c.source for c in nb.cells if c.cell_type == "raw"]

    from_py = jupytext.read(MASTERS[name].with_suffix(".py"))
    from_ipynb = nbformat.read(MASTERS[name], as_version=4)
    assert raw(from_py) == raw(from_ipynb)
    assert raw(from_py)[0].startswith("# ASSIGNMENT CONFIG\nname: " + name)
    assert sum(r.startswith("# BEGIN QUESTION") for r in raw(from_py)) == 6


def test_masters_use_the_lecture_colab_cell_with_otter():
    src = assignments.setup_source()
    assert src.startswith(colab.SETUP_MARKER)
    assert f"git+{colab.repository_url()}" in src and "[grading]" in src
    assert 'if "google.colab" in sys.modules:' in src


def _with_source(nb: nbformat.NotebookNode, old: str, new: str) -> nbformat.NotebookNode:
    hits = [c for c in nb.cells if c.cell_type == "code" and old in c.source]
    assert len(hits) == 1, f"{old!r} should appear in exactly one code cell"
    hits[0].source = hits[0].source.replace(old, new)
    return nb


def _execute(nb_path: Path) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh kernel, in its own folder (not the repository)."""
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(nb_path.parent)}},
                   allow_errors=False).execute()
    return nb


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Build every master, as `make assignments` does, in a copy of the tracked files alone (a clean checkout:
    no dist/, no earlier build, not even lecture_utils)."""
    checkout = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(["git", "ls-files", "assignments", "tools", "pyproject.toml"], cwd=assignments.ROOT,
                            capture_output=True, text=True)
    tracked = listed.stdout.split() if listed.returncode == 0 else []
    if not tracked:  # not a git checkout (e.g. an unpacked archive): the same folders
        tracked = [str(p.relative_to(assignments.ROOT)) for d in ("assignments", "tools")
                   for p in (assignments.ROOT / d).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        tracked.append("pyproject.toml")
    for rel in tracked:
        if (assignments.ROOT / rel).is_file():
            (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(assignments.ROOT / rel, checkout / rel)
    dist = checkout / "dist" / "assignments"
    res = subprocess.run([sys.executable, "-m", "tools.assignments", "build"], cwd=checkout,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(p.name for p in dist.iterdir()) == sorted(MASTERS)
    return dist


@pytest.fixture(scope="module")
def results(built, tmp_path_factory) -> dict:
    """Grade the submissions and execute the student notebooks, all at once."""
    tmp = tmp_path_factory.mktemp("submissions")
    sol = {n: built / n / "autograder" / f"{n}.ipynb" for n in MASTERS}
    student = {n: built / n / "student" / f"{n}.ipynb" for n in MASTERS}

    # One wrong function (the ReLU factor forgotten) and a scratch cell that raises.
    wrong = _with_source(nbformat.read(sol[A1], as_version=4), "return variances", "return [2 * v for v in variances]")
    after = next(i for i, c in enumerate(wrong.cells) if "def xavier_std" in c.source)
    wrong.cells.insert(after + 1, nbformat.v4.new_code_cell('raise RuntimeError("a scratch cell that fails")'))
    (tmp / "wrong").mkdir()
    nbformat.write(wrong, tmp / "wrong" / f"{A1}.ipynb")
    # A cell that never ends, in the answer to q5.
    loop = _with_source(nbformat.read(sol[A1], as_version=4), 'init_module_(net, "he", "normal")',
                        "import time\nwhile True:\n    time.sleep(0.01)")
    (tmp / "loop").mkdir()
    nbformat.write(loop, tmp / "loop" / f"{A1}.ipynb")
    # Students' copies, executed where they stand alone (as in a fresh Colab/Jupyter session).
    runs = {}
    for n, path in student.items():
        (tmp / "run" / n).mkdir(parents=True)
        runs[n] = tmp / "run" / n / path.name
        shutil.copy(path, runs[n])

    jobs = {
        "sol1": (assignments.grade, sol[A1]),
        "sol2": (assignments.grade, sol[A2]),
        "student1": (assignments.grade, student[A1]),
        "student2": (assignments.grade, student[A2]),
        "wrong": (assignments.grade, tmp / "wrong" / f"{A1}.ipynb"),
        "loop": (assignments.grade, tmp / "loop" / f"{A1}.ipynb"),
        "run1": (_execute, runs[A1]),
        "run2": (_execute, runs[A2]),
    }

    def run(job):
        fn, path = job
        if fn is assignments.grade:
            limit = LOOP_TIMEOUT if path.parent.name == "loop" else CELL_TIMEOUT
            return fn(path, dist=built, cell_timeout=limit, total_timeout=600)
        return fn(path)

    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {k: pool.submit(run, job) for k, job in jobs.items()}
        return {k: f.result() for k, f in futures.items()}


def test_build_writes_student_notebook_and_autograder(built):
    for n in MASTERS:
        assert (built / n / "student" / f"{n}.ipynb").is_file()
        assert (built / n / "autograder" / f"{n}-autograder.zip").is_file()
        assert (built / n / "autograder" / f"{n}.ipynb").is_file()


@pytest.mark.parametrize(
    ("name", "solution_lines", "hidden_lines"),
    [
        (A1, ["math.sqrt(3.0) * std", "c_in * k_h * k_w", 'init_module_(net, "he", "normal")',
              "doubles the weights' variance"],
         ["nn.Conv2d(4, 8, kernel_size=(3, 5))", "xavier_std(10, 30, gain=5 / 3)", "keep the 50 ReLUs"]),
        (A2, ["x.var(dim=0, unbiased=False)", "register_buffer(", "make_mlp(20, batchnorm=True)", "invariant"],
         ["eps=1e-3", "do not modify the arguments in place", "the plain 20-layer net should not learn"]),
    ],
)
def test_student_notebook_has_no_solution_and_no_hidden_test(built, name, solution_lines, hidden_lines):
    nb = nbformat.read(built / name / "student" / f"{name}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells) + json.dumps(nb.metadata, ensure_ascii=False)
    master = MASTERS[name].with_suffix(".py").read_text()
    for line in solution_lines + hidden_lines:
        assert line in master, f"the test is stale: {line!r} is not in the master"
        assert line not in text, f"{line!r} leaks into the student notebook"
    assert assignments.leaks(built / name / "student" / f"{name}.ipynb") == []
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source.strip() == assignments.setup_source(), "the Colab set-up cell comes first"
    assert "jupytext" not in nb.metadata
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check(")]
    assert len(checks) == 5, "one check cell per auto-graded question"
    assert "graded by hand" in text


@pytest.mark.parametrize("key", ["sol1", "sol2"])
def test_reference_solutions_score_full_marks(results, key):
    g = results[key]
    assert g.error == ""
    assert g.possible == 12 and g.total == 12, g.report(verbose=True)
    assert g.manual == {"q6": 2.0}


@pytest.mark.parametrize("key", ["student1", "student2"])
def test_untouched_student_notebook_scores_zero_everywhere(results, key):
    g = results[key]
    assert g.error == ""
    assert len(g.scores) == 5 and all(s == 0 and m > 0 for s, m in g.scores.values()), g.report()


def test_one_wrong_function_loses_exactly_its_question(results):
    g, full = results["wrong"], results["sol1"]
    assert g.error == ""
    lost = {q: full.scores[q][0] - s for q, (s, _) in g.scores.items() if s != full.scores[q][0]}
    assert lost == {"q4": 2.0}, g.report(verbose=True)


def test_infinite_loop_is_interrupted_and_graded(results):
    g = results["loop"]
    assert g.error == ""
    assert g.scores["q5"] == (0.0, 2.0)
    assert all(g.scores[q][0] == g.scores[q][1] for q in ("q1", "q2", "q3", "q4")), g.report()
    assert g.seconds < 300


@pytest.mark.parametrize(("key", "name"), [("run1", A1), ("run2", A2)])
def test_student_notebook_runs_and_public_tests_explain_what_is_missing(results, key, name):
    nb = results[key]
    checks = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("grader.check(")]
    assert len(checks) == 5
    for cell in checks:
        shown = "".join(
            str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs
        )
        assert "failed" in shown.lower(), shown
        # The failure is one of our assertions, whose message says what is expected (not a bare TypeError).
        assert "AssertionError: " in shown, shown


def test_report_and_csv(results, tmp_path):
    grades = [results["sol1"], results["wrong"], results["sol2"]]
    text = grades[1].report()
    assert "q4         0.00 / 2" in text and "total     10.00 / 12" in text and "graded by hand" in text
    out = tmp_path / "scores.csv"
    assignments.write_csv(grades, out)
    rows = list(csv.DictReader(out.open()))
    assert [r["total"] for r in rows] == ["12", "10", "12"]
    assert rows[1]["q4"] == "0" and rows[1]["q6"] == "" and rows[1]["assignment"] == A1


def test_grade_rejects_unknown_notebooks(tmp_path):
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, tmp_path / "x.ipynb")
    g = assignments.grade(tmp_path / "x.ipynb", dist=tmp_path)
    assert "unknown assignment" in g.error and g.total == 0
    with pytest.raises(ValueError, match="not a notebook"):
        assignments._submissions(tmp_path / "missing.txt")
