"""Gradescope: the autograder zip of an assignment, and what its ``run_autograder`` runs.

Gradescope's "Autograder" assignments take a zip holding ``setup.sh`` (run once, as root, when Gradescope
builds the grading image) and ``run_autograder`` (run as root for each submission, in a fresh container, in
``/autograder``), and read ``/autograder/results/results.json`` when it ends.  The student's files are in
``/autograder/submission``, the zip's in ``/autograder/source`` (Autograder Specifications,
https://gradescope-autograders.readthedocs.io/en/latest/specs/).

``build_zip`` writes ``dist/gradescope/NN_name-autograder.zip``::

    setup.sh                                  installs Python >= 3.11 if the image lacks it, a virtual environment
                                              at /opt/lecture-grader, torch (CPU wheels) and the package below
    run_autograder                            runs ``python -m lecture_grading.grader run-autograder``
    grader.json                               the assignment's name, the hidden tests' visibility, the limits
    dist/NN_name/autograder/tests.json        every test, hidden ones included
    wheels/init_lecture-*.whl                 this package, built from the instructor's own copy (a private
                                              fork works: nothing is fetched from a repository)

and never the reference solutions.  ``run`` is ``run_autograder``'s work: it makes the grader's files readable
by root only, grades the one notebook of the submission with bubblewrap if the container allows it, else
with the container backend, and writes results.json only for a submission it could grade (after every
process of the sandbox has been killed).  A grading failure writes nothing and exits 1: Gradescope shows
"The autograder failed to execute correctly", the instructor sees why in the run's output, and "Regrade"
grades it again once the cause is fixed.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from lecture_grading.grader import exports, plan, reports
from lecture_grading.grader.grade import FAILED, UNREADABLE, Grade, grade
from lecture_grading.grader.master import Assignment
from lecture_grading.grader.text import clean
from lecture_grading.limits import GiB, Limits
from lecture_utils import atomic

ROOT_ENV = "AUTOGRADER_ROOT"  # run_autograder reads the root from it (tests move it; Gradescope: /autograder)
#: Limits for Gradescope, where the defaults do not fit: its container has 768 MB of memory and 10 minutes by
#: default (Troubleshooting, https://gradescope-autograders.readthedocs.io/en/latest/troubleshooting/).  The
#: sandbox's 1 GiB and the grader's own ~0.4 GiB need the container's memory raised to 1.5 GB or more
#: (assignments/README.md); the total leaves time to write the results before Gradescope's own timeout.
GRADESCOPE_LIMITS = {"total_timeout": 480.0, "memory": 1 * GiB}

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Autograder Specifications:
# https://gradescope-autograders.readthedocs.io/en/latest/specs/).  Target: Gradescope's default base image,
# Ubuntu 22.04 (https://gradescope-autograders.readthedocs.io/en/latest/base_images/), whose python3 is 3.10;
# this package needs Python >= 3.11, so Ubuntu's python3.11 is installed unless a Python >= 3.11 is there
# (Ubuntu 24.04's python3 is 3.12).  Everything the grader runs is installed from this zip's wheel, nothing
# from a repository.  LECTURE_GRADER_DRY_RUN=1 prints the commands instead of running them (tests).
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"          # /autograder/source
PREFIX="${LECTURE_GRADER_PREFIX:-/opt/lecture-grader}"             # the grader's virtual environment
TORCH_INDEX="${LECTURE_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"  # no GPU there: CPU wheels
run() { if [ -n "${LECTURE_GRADER_DRY_RUN:-}" ]; then echo "+ $*"; else "$@"; fi; }

has_311() { "$1" -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }
python=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && has_311 "$candidate"; then python="$(command -v "$candidate")"; break; fi
done
export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null 2>&1; then
  run apt-get update -q
  if [ -z "$python" ]; then
    run apt-get install -y -q python3.11 python3.11-venv
    python=python3.11
  fi
  # bubblewrap is used when the container lets it create namespaces (checked at every run), else the
  # container backend (a user id of its own): both are the package's.
  run apt-get install -y -q bubblewrap || echo "setup.sh: no bubblewrap; the container backend will be used"
elif [ -z "$python" ]; then
  echo "setup.sh: needs Python >= 3.11 and apt-get to install it; neither was found" >&2
  exit 1
fi
wheels=("$SOURCE"/wheels/*.whl)
run "$python" -m venv "$PREFIX"
run "$PREFIX/bin/python" -m pip install -q --upgrade pip
run "$PREFIX/bin/python" -m pip install -q --index-url "$TORCH_INDEX" "__TORCH__"
run "$PREFIX/bin/python" -m pip install -q "${wheels[0]}[grading]"
run chmod -R go-w,go+rX "$PREFIX"
run "$PREFIX/bin/python" -I -m lecture_grading.grader check-install
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this as root for each submission, in /autograder (see setup.sh).
exec "${LECTURE_GRADER_PYTHON:-/opt/lecture-grader/bin/python}" -I -m lecture_grading.grader run-autograder \
    --root "${AUTOGRADER_ROOT:-/autograder}"
"""


def torch_requirement(wheel: Path) -> str:
    """The wheel's own torch requirement (``torch>=2.2``), read from its metadata."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for line in z.read(meta).decode().splitlines():
            if line.startswith("Requires-Dist: torch") and "extra ==" not in line:
                return line.removeprefix("Requires-Dist: ").split(";")[0].replace(" ", "")
    return "torch"


def build_wheel(project: Path, out: Path) -> Path:
    """This package's wheel, built offline from ``project`` (the instructor's checkout) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(out), str(project)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"could not build the package's wheel from {project}: {done.stderr.strip()[-800:]}")
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        raise RuntimeError(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


def _add(z: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))  # the same bytes for the same inputs
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    z.writestr(info, data)


def build_zip(tests: Path, wheel: Path, out_dir: Path, hidden_visibility: str = "after_published",
              limits: dict | None = None) -> Path:
    """The autograder zip of the assignment whose built ``tests.json`` is ``tests``; returns its path."""
    assignment = Assignment.from_json(Path(tests).read_text())
    settings = {**GRADESCOPE_LIMITS, **(limits or {})}
    Limits.from_config(assignment.config, **settings)  # refuse nonsense now, not on Gradescope
    if hidden_visibility not in exports.VISIBILITY:
        raise ValueError(f"visibility must be one of {exports.VISIBILITY}, got {hidden_visibility!r}")
    config = {"assignment": assignment.name, "hidden_visibility": hidden_visibility, "limits": settings}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{assignment.name}-autograder.zip"
    with atomic.replace(path) as tmp, zipfile.ZipFile(tmp, "w") as z:
        _add(z, "setup.sh", SETUP_SH.replace("__TORCH__", torch_requirement(wheel)).encode(), 0o755)
        _add(z, "run_autograder", RUN_AUTOGRADER.encode(), 0o755)
        _add(z, "grader.json", (json.dumps(config, indent=1) + "\n").encode())
        _add(z, f"dist/{assignment.name}/autograder/tests.json", Path(tests).read_bytes())
        _add(z, f"wheels/{wheel.name}", wheel.read_bytes())
    return path


# -- run_autograder ------------------------------------------------------------------------------------------------
def _lock_down(root: Path) -> list[Path]:
    """Make the grader's folders and files readable by root only; returns them (the sandbox checks them)."""
    private = [root, root / "source", root / "submission", root / "results", root / "submission_metadata.json"]
    (root / "results").mkdir(parents=True, exist_ok=True)
    for p in private:
        if p.is_dir():
            os.chmod(p, 0o700)
        elif p.exists():
            os.chmod(p, 0o600)
    return private


def pick_submission(folder: Path, assignment: str) -> tuple[Path | None, str]:
    """The notebook to grade in the submission folder, and a note for the student when it is not obvious."""
    found = sorted(p for p in folder.rglob("*.ipynb") if p.is_file() and not p.is_symlink()
                   and ".ipynb_checkpoints" not in p.parts)
    if not found:
        return None, "no .ipynb file in your submission"
    if len(found) == 1:
        return found[0], ""
    mine = []
    for p in found:
        try:
            if plan.assignment_of(plan.read(p)) == assignment:
                mine.append(p)
        except plan.Unreadable:
            continue
    chosen = (mine or found)[0]
    return chosen, f"your submission has {len(found)} notebooks; graded {clean(chosen.relative_to(folder), 120)}"


def run(root: Path, stream=None) -> int:
    """What ``run_autograder`` does (see the module's docstring).  Returns the exit status."""
    from lecture_grading.grader import sandbox
    from lecture_grading.grader.sandbox import base

    stream = stream or sys.stdout
    root = Path(root)
    private = _lock_down(root)
    source = root / "source"
    config = json.loads((source / "grader.json").read_text())
    name = config["assignment"]
    notebook, note = pick_submission(root / "submission", name)
    if notebook is None:
        g = Grade(root / "submission", name, status=UNREADABLE, error=note)
    else:
        backend = sandbox.choose("auto")
        print(f"grading {notebook.relative_to(root)} with the {backend.backend} sandbox", file=stream)
        g = grade(notebook, dist=source / "dist", backend=backend,
                  options=sandbox.Options(private=tuple(private)), **config.get("limits", {}))
        if g.status == UNREADABLE and note:
            g.error += f" ({note})"
    print(reports.report(g, verbose=True), file=stream)
    if g.profile:
        print("profile (s): " + ", ".join(f"{k} {v:.2f}" for k, v in g.profile.items()), file=stream)
    if g.status == FAILED:
        print(reports.summary([g]), file=stream)
        return 1
    left = [pid for pid, _, uid, state in base.processes()
            if base.SANDBOX_UID <= uid < base.SANDBOX_UID + 64 and state != b"Z"]
    if left:  # Session.close killed them all; a survivor means the sandbox failed: no results
        print(f"GRADING FAILED: processes of the sandbox survive: {left[:10]}; no results written", file=stream)
        return 1
    results = exports.gradescope_results(g, config.get("hidden_visibility", "after_published"))
    if note and g.status != UNREADABLE:
        results["output"] += f" Note: {note}."
    atomic.write_text(root / "results" / "results.json", json.dumps(results, indent=1) + "\n")
    print(f"wrote {root / 'results' / 'results.json'}: {g.total:g} / {g.possible:g}", file=stream)
    return 0

