"""Build and grade the otter-grader assignments in ``assignments/`` (no Docker needed).

    python -m tools.assignments build [NAME ...]          student notebooks + autograder zips in dist/assignments/
    python -m tools.assignments grade SUBMISSION.ipynb    score per question and total
    python -m tools.assignments grade FOLDER --csv scores.csv [--jobs 2]
    python -m tools.assignments sync                      refresh the masters' Colab set-up cell, re-pair them

Each master ``assignments/NN_name.ipynb`` (Jupytext-paired with ``NN_name.py``, the file you edit) holds the
questions, reference solutions and public and hidden tests (otter-grader's master-notebook format).
``build`` runs ``otter assign`` on a clean copy (outputs stripped, Colab set-up cell regenerated) and writes

    dist/assignments/NN_name/student/NN_name.ipynb             what students get (no solutions, no hidden tests)
    dist/assignments/NN_name/autograder/NN_name.ipynb          the reference solutions
    dist/assignments/NN_name/autograder/NN_name-autograder.zip what ``grade`` (``otter run``) uses

``grade`` runs ``otter run`` on a copy of the submission with a per-cell time limit (a cell, or a test, that
runs longer raises ``TimeoutError`` and grading goes on), inside a subprocess with an overall limit, so a
submission that raises or loops forever gets a score instead of stopping the grader.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from tools import colab

ROOT = colab.ROOT
MASTERS_DIR = ROOT / "assignments"
DIST = ROOT / "dist" / "assignments"
#: Extras the assignments' Colab set-up cell installs (otter-grader for ``grader.check``).
EXTRAS = ("grading",)
#: Seconds one cell (or one question's checks) may run when grading before it is interrupted.
CELL_TIMEOUT = 60
#: Seconds a whole submission may take before it is given up (scored 0, with the reason).
TOTAL_TIMEOUT = 900

# Inserted at the top of a copy of the submission before grading: every cell, including the check cells
# otter adds, gets a repeating alarm that raises TimeoutError, so an infinite loop fails its own test only.
GUARD_SOURCE = '''\
# Added by tools.assignments grade: limits every cell to {limit} s.
import signal as _sig


def _cell_timeout(signum, frame):
    raise TimeoutError("this cell ran longer than {limit} s (an infinite loop?) and was interrupted")


if hasattr(_sig, "SIGALRM"):  # POSIX; on Windows only the overall limit applies
    _sig.signal(_sig.SIGALRM, _cell_timeout)
    get_ipython().events.register("pre_run_cell", lambda *_: _sig.setitimer(_sig.ITIMER_REAL, {limit}, {limit}))
    get_ipython().events.register("post_run_cell", lambda *_: _sig.setitimer(_sig.ITIMER_REAL, 0))
'''


def masters() -> list[Path]:
    """Every master notebook, assignments/NN_*.ipynb."""
    return sorted(MASTERS_DIR.glob("[0-9]*.ipynb"))


def setup_source() -> str:
    """The assignments' Colab set-up cell: the lecture's, also installing otter-grader."""
    return colab.setup_source(EXTRAS)


def _raw_configs(nb: nbformat.NotebookNode, header: str) -> list[dict]:
    out = []
    for cell in nb.cells:
        lines = cell.source.strip().splitlines()
        if cell.cell_type == "raw" and lines and lines[0].strip().upper() == header:
            out.append(yaml.safe_load("\n".join(lines[1:])) or {})
    return out


def questions(master: Path) -> list[dict]:
    """The question configs of a master (name, points, manual), in order."""
    return _raw_configs(nbformat.read(master, as_version=4), "# BEGIN QUESTION")


def assignment_name(master: Path) -> str:
    """The ``name`` of the master's ASSIGNMENT CONFIG cell (it must equal the file's stem)."""
    configs = _raw_configs(nbformat.read(master, as_version=4), "# ASSIGNMENT CONFIG")
    if len(configs) != 1 or configs[0].get("name") != master.stem:
        raise ValueError(f"{master.name}: needs one '# ASSIGNMENT CONFIG' raw cell with name: {master.stem}")
    return master.stem


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
        assignment_name(master)
    except ValueError as e:
        errs.append(str(e))
    i = _setup_cell_index(nb.cells)
    if i is None:
        errs.append(f"{master.name}: has no Colab set-up cell (run `python -m tools.assignments sync`)")
    elif nb.cells[i].source.strip() != setup_source():
        errs.append(f"{master.name}: Colab set-up cell is stale (run `python -m tools.assignments sync`)")
    elif any(c.cell_type == "code" for c in nb.cells[:i]):
        errs.append(f"{master.name}: the Colab set-up cell must be the first code cell")
    if not questions(master):
        errs.append(f"{master.name}: has no '# BEGIN QUESTION' cell")
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


def _otter(
    *args: str, timeout: float | None = None, cwd: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "otter", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def build_one(master: Path, dist: Path = DIST) -> Path:
    """Build one master into ``dist/<name>/``; returns that folder.  Raises RuntimeError if otter fails or
    if the student notebook still shows a solution or a hidden test."""
    errs = check_master(master)
    if errs:
        raise ValueError("\n".join(errs))
    name = master.stem
    out = dist / name
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        nb = nbformat.read(master, as_version=4)
        for cell in nb.cells:  # OK-format tests take a test cell's output as the expected output: none.
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata.pop("jupytext", None)  # students' copies must not be re-paired with a .py
        nbformat.write(nb, tmp / master.name)
        res = _otter("assign", "--no-run-tests", "--no-pdfs", master.name, "out", cwd=tmp)
        if res.returncode != 0:
            raise RuntimeError(f"otter assign failed on {master.name}:\n{res.stdout}\n{res.stderr}")
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(tmp / "out", out)
    zips = sorted((out / "autograder").glob("*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"expected one autograder zip in {out / 'autograder'}, found {zips}")
    zips[0].rename(out / "autograder" / f"{name}-autograder.zip")
    problems = leaks(out / "student" / master.name)
    if problems:
        raise RuntimeError(f"{name}: the student notebook leaks: {problems}")
    return out


def leaks(student_nb: Path) -> list[str]:
    """Solution markers or hidden tests found in a built student notebook (empty when clean)."""
    nb = nbformat.read(student_nb, as_version=4)
    found = []
    for cell in nb.cells:
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "# SOLUTION", "BEGIN TESTS", "# HIDDEN"):
            if marker in cell.source:
                found.append(f"{marker!r} in a {cell.cell_type} cell")
    for q, spec in nb.metadata.get("otter", {}).get("tests", {}).items():
        for suite in spec.get("suites", []):
            if any(case.get("hidden") for case in suite.get("cases", [])):
                found.append(f"hidden test of {q} in the metadata")
    return found


def build(names: list[str] | None = None, dist: Path = DIST) -> list[Path]:
    """Build the named masters (all by default); returns their output folders."""
    chosen = masters()
    if names:
        unknown = sorted(set(names) - {m.stem for m in chosen})
        if unknown:
            raise ValueError(f"unknown assignment(s) {unknown}: choose from {[m.stem for m in chosen]}")
        chosen = [m for m in chosen if m.stem in names]
    with ThreadPoolExecutor(max_workers=max(1, len(chosen))) as pool:  # each build is an `otter assign` process
        outs = list(pool.map(lambda m: build_one(m, dist), chosen))
    for m, out in zip(chosen, outs, strict=True):
        print(f"built {m.name}: {out / 'student' / m.name}")
    return outs


@dataclass
class Grade:
    """The grade of one submission: auto-graded scores per question, and the manual questions' points."""

    submission: Path
    assignment: str
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)  # question -> (score, max)
    manual: dict[str, float] = field(default_factory=dict)  # question -> points, graded by hand
    error: str = ""
    seconds: float = 0.0
    details: dict[str, str] = field(default_factory=dict)  # question -> otter's test output
    label: str = ""  # how the submission is named in reports: its path relative to the graded folder

    @property
    def name(self) -> str:
        return self.label or self.submission.name

    @property
    def total(self) -> float:
        return sum(s for s, _ in self.scores.values())

    @property
    def possible(self) -> float:
        return sum(m for _, m in self.scores.values())

    def report(self, verbose: bool = False) -> str:
        lines = [f"{self.name} (assignment {self.assignment or '?'})"]
        for q, (s, m) in self.scores.items():
            lines.append(f"  {q:<8} {s:6.2f} / {m:g}")
            if verbose and s < m and self.details.get(q):
                lines.append("      " + self.details[q].replace("\n", "\n      "))
        for q, p in self.manual.items():
            lines.append(f"  {q:<8} {'manual':>6} / {p:g}   (written answer: graded by hand)")
        lines.append(f"  {'total':<8} {self.total:6.2f} / {self.possible:g}   (auto-graded questions)")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


def _submission_assignment(nb: nbformat.NotebookNode) -> str:
    return nb.metadata.get("otter", {}).get("assignment_name", "")


def grade(
    submission: Path,
    dist: Path = DIST,
    cell_timeout: float = CELL_TIMEOUT,
    total_timeout: float = TOTAL_TIMEOUT,
    threads: int = 1,
) -> Grade:
    """Grade one submitted notebook with ``otter run`` (no Docker).  Never raises for a bad submission:
    problems land in ``Grade.error`` with a score of 0 for the questions that could not be graded.

    The kernel runs with ``threads`` CPU threads (OMP_NUM_THREADS): small networks train fastest on one, and
    submissions graded side by side do not fight over the cores."""
    submission = Path(submission)
    start = time.monotonic()
    try:
        nb = nbformat.read(submission, as_version=4)
    except Exception as e:  # not a notebook at all
        return Grade(submission, "", error=f"cannot read the notebook: {e}")
    name = _submission_assignment(nb)
    known = {m.stem: m for m in masters()}
    if name not in known:
        return Grade(submission, name, error=f"unknown assignment {name!r}: expected one of {sorted(known)}")
    master = known[name]
    result = Grade(submission, name)
    for q in questions(master):
        if q.get("manual"):
            result.manual[q["name"]] = float(q.get("points", 1))
    autograder = dist / name / "autograder" / f"{name}-autograder.zip"
    if not autograder.is_file():
        build_one(master, dist)
    auto = [q for q in questions(master) if not q.get("manual")]
    result.scores = {q["name"]: (0.0, float(q.get("points", 1))) for q in auto}
    nb.cells.insert(0, nbformat.v4.new_code_cell(GUARD_SOURCE.format(limit=cell_timeout)))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        copy = tmp / f"{name}.ipynb"
        nbformat.write(nb, copy)
        (tmp / "results").mkdir()
        try:
            env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
            res = _otter("run", "--no-logo", "-a", str(autograder), "-o", "results", copy.name,
                         timeout=total_timeout, cwd=tmp, env=env)
        except subprocess.TimeoutExpired:
            result.error = f"grading took longer than {total_timeout:g} s and was stopped"
            result.seconds = time.monotonic() - start
            return result
        results = tmp / "results" / "results.json"
        if not results.is_file():
            result.error = f"otter run failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        else:
            for test in json.loads(results.read_text()).get("tests", []):
                if "score" in test and test.get("name") in result.scores:
                    result.scores[test["name"]] = (float(test["score"]), float(test["max_score"]))
                    result.details[test["name"]] = test.get("output", "")
    result.seconds = time.monotonic() - start
    return result


def grade_many(paths: list[Path], jobs: int = 1, **kwargs) -> list[Grade]:
    """Grade several submissions, ``jobs`` at a time; results in the order of ``paths``."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda p: grade(p, **kwargs), paths))


def write_csv(grades: list[Grade], path: Path) -> None:
    """One row per submission: file, assignment, each question's score (manual ones left empty), total."""
    qs: list[str] = []
    for g in grades:
        for q in [*g.scores, *g.manual]:
            if q not in qs:
                qs.append(q)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["submission", "assignment", *qs, "total", "possible", "error"])
        for g in grades:
            cells = [f"{g.scores[q][0]:g}" if q in g.scores else "" for q in qs]
            w.writerow([g.name, g.assignment, *cells, f"{g.total:g}", f"{g.possible:g}",
                        g.error.replace("\n", " ")[:300]])


def _submissions(path: Path) -> list[Path]:
    if path.is_dir():
        found = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        if not found:
            raise ValueError(f"no .ipynb submissions under {path}")
        return found
    if path.suffix != ".ipynb" or not path.is_file():
        raise ValueError(f"{path} is not a notebook (.ipynb) or a folder of notebooks")
    return [path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build student notebooks and autograder zips")
    b.add_argument("names", nargs="*", help="assignments to build (default: all), e.g. 01_initialization")
    b.add_argument("--dist", type=Path, default=DIST)
    g = sub.add_parser("grade", help="grade a submission (.ipynb) or a folder of them")
    g.add_argument("path", type=Path)
    g.add_argument("--csv", type=Path, help="write one row per submission to this CSV file")
    g.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time")
    g.add_argument("--cell-timeout", type=float, default=CELL_TIMEOUT, help="seconds per cell")
    g.add_argument("--total-timeout", type=float, default=TOTAL_TIMEOUT, help="seconds per submission")
    g.add_argument("--threads", type=int, default=1, help="CPU threads of each grading kernel")
    g.add_argument("--dist", type=Path, default=DIST)
    g.add_argument("-v", "--verbose", action="store_true", help="show the failing tests' output")
    sub.add_parser("sync", help="refresh the masters' Colab set-up cell and re-pair them")
    args = parser.parse_args(argv)

    if args.command == "sync":
        return sync()
    if args.command == "build":
        build(args.names, args.dist)
        return 0
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    grades = grade_many(_submissions(args.path), args.jobs, dist=args.dist,
                        cell_timeout=args.cell_timeout, total_timeout=args.total_timeout, threads=args.threads)
    for gr in grades:
        if args.path.is_dir():  # students' files often share a name: tell them apart by their folder
            gr.label = gr.submission.relative_to(args.path).as_posix()
        print(gr.report(args.verbose))
    if args.csv:
        write_csv(grades, args.csv)
        print(f"wrote {args.csv}")
    return 1 if any(gr.error for gr in grades) else 0


if __name__ == "__main__":
    sys.exit(main())
