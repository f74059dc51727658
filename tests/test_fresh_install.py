"""A fresh, non-editable install runs every notebook from an empty folder outside the repository.

This is what a Colab or pip user has: the package installed from a wheel (built from a copy of the tracked
files, as a clean clone would build it), the notebooks downloaded on their own, no repository around them,
so ``lecture_utils.config.REPO_ROOT`` is None and data goes where ``LECTURE_DATA_DIR`` says.

Fast and offline: the wheel is built with this venv's setuptools (no build isolation, no index) and installed
with ``--no-deps`` into a new venv that sees this venv's site-packages through a ``.pth`` line (not its
editable install: ``.pth`` files of an added path are not processed).  Every notebook runs under nbval in
quick synthetic mode (``LECTURE_QUICK=1 LECTURE_SYNTHETIC=1``), which is how `make test` executes the
notebooks at all.

The install is made once per test session: under pytest-xdist (``make test`` runs two workers) the first worker
that needs it builds it, under a file lock, in the folder the workers share, and the other one reuses it.  Each
notebook runs in an empty folder of its own (notebook 07 writes checkpoints/ and runs/ next to itself), and the
synthetic data they all read is generated once, before any of them runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _tracked_copy(dest: Path) -> Path:
    """The files a clean clone has (git's tracked files, as they are in the work tree)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        files = [f for f in listed.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs a git checkout to know which files a clean clone has")
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _shared_folder(tmp_path_factory, name: str) -> Path:
    """A folder all the workers of this session see (pytest-xdist), or this session's own without xdist."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # .../pytest-N/ holds popen-gw0/, popen-gw1/: one per session
    return base / name


@pytest.fixture(scope="session")
def fresh(tmp_path_factory) -> dict:
    """The fresh install, made once per session (the first worker builds it; see the module's docstring)."""
    tmp = _shared_folder(tmp_path_factory, "fresh-install")
    tmp.mkdir(parents=True, exist_ok=True)
    with FileLock(str(tmp) + ".lock"):
        if not (tmp / "ready.json").is_file():
            _install(tmp)
            (tmp / "ready.json").write_text(json.dumps({"python": str(tmp / "venv" / "bin" / "python")}))
    return _fresh_environment(tmp)


def _install(tmp: Path) -> None:
    src = _tracked_copy(tmp / "clone")
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(wheels), str(src)],
        check=True, timeout=300,
    )
    (wheel,) = wheels.glob("init_lecture-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    # The dependencies (torch, ipykernel, nbclient, ...) come from this test venv's site-packages.
    (purelib / "_test_venv_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         str(wheel)],
        check=True, timeout=300,
    )
    (tmp / "work").mkdir()
    # The synthetic data every notebook reads, generated now: not by two notebooks at once in two workers.
    subprocess.run([python, "-c", "from lecture_utils import synthetic; synthetic.ensure_synthetic()"],
                   cwd=tmp / "work", env=_fresh_environment(tmp)["env"], check=True, timeout=600)  # fmt: skip


def _fresh_environment(tmp: Path) -> dict:
    python = tmp / "venv" / "bin" / "python"
    purelib = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())  # fmt: skip
    env = {
        **os.environ,
        "LECTURE_QUICK": "1",
        "LECTURE_SYNTHETIC": "1",
        "LECTURE_DATA_DIR": str(tmp / "data"),
        "PYTHONPATH": "",
        # One torch thread per kernel: the notebooks ask for it themselves, the assignments do not, and with two
        # test workers on two cores a second thread per process makes small layers crawl (assignment 02's
        # 200 training steps: 1.2 s on one thread, 51-69 s on two, measured under load 8).
        "OMP_NUM_THREADS": "1",
    }
    for name in ("MPLBACKEND", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        env.pop(name, None)
    return {"python": python, "purelib": purelib, "env": env, "tmp": tmp}


def _empty_folder(fresh: dict, name: str) -> Path:
    """A new empty folder for one test's notebook (notebook 07 writes checkpoints/ and runs/ next to itself)."""
    work = fresh["tmp"] / "work" / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    return work


def test_the_package_is_the_installed_wheel_not_the_repository(fresh):
    probe = "import lecture_utils, lecture_utils.config as c; print(lecture_utils.__file__); print(c.REPO_ROOT)"
    out = subprocess.run([fresh["python"], "-c", probe], cwd=_empty_folder(fresh, "probe"), env=fresh["env"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert Path(out[0]).is_relative_to(fresh["purelib"]), out
    assert out[1] == "None", "an installed package has no repository root"


#: Inserted at the top of each copied notebook: the kernel imports the wheel, not the repository.
CHECK_CELL = "import sys, lecture_utils\nassert lecture_utils.__file__.startswith(sys.prefix), lecture_utils.__file__"
PYTEST_INI = "[pytest]\naddopts = -p no:cacheprovider\n"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_from_an_empty_folder_with_nbval(fresh, nb: Path):
    """nbval in the fresh venv: every cell runs, and ``# NBVAL_CHECK_OUTPUT`` cells print their committed output.

    This is the suite's one execution of each notebook (pyproject's testpaths leave notebooks/ out), so CI
    checks the notebooks as students run them, for no extra time.
    """
    import nbformat

    work = _empty_folder(fresh, nb.stem)
    copy = nbformat.read(nb, as_version=4)
    copy.cells.insert(0, nbformat.v4.new_code_cell(CHECK_CELL))
    nbformat.write(copy, work / nb.name)
    ini = work.parent / f"{nb.stem}.ini"
    ini.write_text(PYTEST_INI)
    done = subprocess.run(
        [fresh["python"], "-m", "pytest", "-q", "-c", str(ini), "--rootdir", str(work), "--nbval-lax",
         "--nbval-current-env", "--nbval-cell-timeout=600", nb.name],
        cwd=work, env=fresh["env"], capture_output=True, text=True, timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-2000:]


#: Runs in the fresh venv: executes one notebook in a kernel of that venv, prints each check("qN") report.
RUN_CHECKS = """
import json, sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True).execute()
reports, errors = [], []
for cell in nb.cells:
    if cell.cell_type != "code":
        continue
    for out in cell.get("outputs", []):
        text = "".join(out.get("data", {}).get("text/plain", "")) if "data" in out else ""
        if text.startswith("q") and "public test" in text:
            reports.append(text)
        if out.get("output_type") == "error":
            errors.append(out["ename"] + ": " + out["evalue"][:200])
print(json.dumps({"reports": reports, "errors": errors}))
"""


def run_assignment_checks(fresh: dict, notebook: Path) -> dict:
    """Execute ``notebook`` from the empty folder with the fresh install; its check("qN") reports and errors."""
    import json

    work = _empty_folder(fresh, f"{notebook.parent.name}-{notebook.stem}")
    target = work / notebook.name
    shutil.copy2(notebook, target)
    done = subprocess.run([fresh["python"], "-c", RUN_CHECKS, target.name], cwd=work, env=fresh["env"],
                          capture_output=True, text=True, timeout=1200)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def built_assignments(tmp_path_factory) -> Path:
    from lecture_grading.grader import build

    dist = tmp_path_factory.mktemp("dist")
    build.build(ROOT / "assignments", dist)
    return dist


@pytest.mark.parametrize("name", ["01_initialization", "02_batchnorm"])
def test_assignment_checks_run_from_the_fresh_install(fresh, built_assignments, name):
    """The student notebook's check("qN") works with nothing but the installed package (as in Colab): on the
    untouched notebook every auto-graded question reports failed public tests; answered with the reference
    solutions, every one passes, and no cell raises."""
    student = run_assignment_checks(fresh, built_assignments / name / "student" / f"{name}.ipynb")
    answered = run_assignment_checks(fresh, built_assignments / name / "autograder" / f"{name}.ipynb")
    assert answered["errors"] == [], answered["errors"]
    assert len(answered["reports"]) >= 5 and all("passed" in r and "failed" not in r for r in answered["reports"])
    assert len(student["reports"]) == len(answered["reports"])
    assert all("failed" in r for r in student["reports"]), student["reports"]
