"""The Gradescope autograder, tested without Gradescope: its zips, its setup.sh, and run_autograder run as
Gradescope runs it, in a stand-in for its container (tests/_container.py: root with Docker's capabilities and
its seccomp answer to namespaces, so that bubblewrap cannot start and the container backend grades).

For each submission a fresh ``/autograder`` (``source`` unzipped from the zip, ``submission``, ``results``)
is made under a temporary folder and ``/autograder/run_autograder`` is run in a fresh container, with the
package installed from the zip's own wheel.  results.json must validate against the JSON Schema written from
Gradescope's specification, and each submission must score what it scores with bubblewrap: the reference
solutions 12 / 12 (the written question left for manual grading), the untouched notebook 0, and the attack
suite's core (patch the checker, read the tests, forge results.json from a daemon, leave a daemon holding the
pipes, walk the disk writing everywhere, kill every process it can) exactly what tests/test_grading_attacks.py
expects of them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import nbformat
import pytest

from lecture_grading.grader import build, cli, exports, gradescope, master
from lecture_grading.grader.sandbox import bubblewrap
from tests import _container
from tests.test_grading_attacks import ATTACKS, Attack, make_submission

ROOT = Path(__file__).resolve().parent.parent
MASTERS = ROOT / "assignments"
A1, A2 = "01_initialization", "02_batchnorm"
CORE = ["patch-runner", "print-hidden", "detached-writer", "orphans", "fs-vandal", "kill-everything"]
needs_bwrap = pytest.mark.skipif(bubblewrap.problem() is not None, reason=str(bubblewrap.problem()))
# The stand-in container is made with bubblewrap, as root (it keeps Docker's capabilities of root).
needs_container = pytest.mark.skipif(bubblewrap.problem() is not None or os.geteuid() != 0,
                                     reason="the stand-in container needs bubblewrap and root")


def validate(results: dict) -> None:
    jsonschema.validate(results, exports.RESULTS_SCHEMA, cls=jsonschema.Draft202012Validator)


# -- the schema ------------------------------------------------------------------------------------------------
def test_the_schema_takes_the_specifications_example_and_refuses_what_it_forbids():
    example = {  # the example of https://gradescope-autograders.readthedocs.io/en/latest/specs/, comments removed
        "score": 44.0, "execution_time": 136, "output": "Text relevant to the entire submission",
        "output_format": "simple_format", "test_output_format": "text", "test_name_format": "text",
        "visibility": "after_due_date", "stdout_visibility": "visible", "extra_data": {},
        "tests": [{"score": 2.0, "max_score": 2.0, "status": "passed", "name": "Your name here", "name_format": "text",
                   "number": "1.1", "output": "Giant multiline string", "output_format": "text",
                   "tags": ["tag1", "tag2", "tag3"], "visibility": "visible", "extra_data": {}}],
        "leaderboard": [{"name": "Accuracy", "value": 0.926}, {"name": "Time", "value": 15.1, "order": "asc"},
                        {"name": "Stars", "value": "*****"}],
    }
    validate(example)
    validate({"tests": [{"score": 1.0, "max_score": 1.0}]})  # no top-level score: every test has one
    for bad in [{"tests": [{"max_score": 1.0}]},  # no score anywhere
                {"score": 1, "visibility": "later"},  # not a visibility
                {"score": 1, "tests": [{"score": 1, "output_format": "pdf"}]},
                {"score": "12"},  # a string
                {"score": 1, "scroe": 2}]:  # a misspelt field
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)


# -- building the zips -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zips(tmp_path_factory) -> dict:
    """`make gradescope` on a clean copy of the repository: both zips, from the checkout's own wheel."""
    tmp = tmp_path_factory.mktemp("gradescope")
    clone = _container.tracked_copy(ROOT, tmp / "clone")
    code = cli.main(["gradescope", "--project", str(clone), "--masters", str(clone / "assignments"),
                     "--dist", str(tmp / "dist"), "--out", str(tmp / "zips")])
    assert code == 0
    found = {p.name.removesuffix("-autograder.zip"): p for p in (tmp / "zips").glob("*.zip")}
    assert set(found) == {A1, A2}
    return {"zips": found, "dist": tmp / "dist", "tmp": tmp}


@pytest.mark.parametrize("name", [A1, A2])
def test_each_zip_holds_what_gradescope_needs_and_no_solution(zips, name):
    z = zipfile.ZipFile(zips["zips"][name])
    names = z.namelist()
    wheel = [n for n in names if n.startswith("wheels/")]
    assert set(names) == {"setup.sh", "run_autograder", "grader.json", f"dist/{name}/autograder/tests.json", *wheel}
    assert len(wheel) == 1 and wheel[0].endswith("-py3-none-any.whl")
    for script in ("setup.sh", "run_autograder"):  # executable, at the root of the archive (the specification)
        assert stat.S_IMODE(z.getinfo(script).external_attr >> 16) == 0o755
    config = json.loads(z.read("grader.json"))
    assert config["assignment"] == name and config["hidden_visibility"] == "after_published"
    # Never the reference solutions: neither the answered notebook nor any solution line, anywhere in the zip.
    solution = [line.strip() for line in (MASTERS / f"{name}.py").read_text().splitlines()
                if line.strip().endswith("# SOLUTION") and len(line.strip()) > 30]
    assert solution
    texts = [z.read(n).decode() for n in names if not n.endswith(".whl")]
    with zipfile.ZipFile(z.open(wheel[0])) as w:
        assert not [n for n in w.namelist() if "assignments" in n or n.endswith(".ipynb")]
        texts += [w.read(n).decode(errors="replace") for n in w.namelist()]
    for line in solution:
        code = line.removesuffix("# SOLUTION").strip()
        assert not [t for t in texts if code in t], f"{code!r} is in the zip"
    assert "git+" not in z.read("setup.sh").decode() and "github" not in z.read("setup.sh").decode()


def _dry_setup(tmp: Path, zip_path: Path, pythons: dict[str, str]) -> list[str]:
    """Run the zip's setup.sh with LECTURE_GRADER_DRY_RUN=1 and fake interpreters on PATH; its commands."""
    source = tmp / "source"
    zipfile.ZipFile(zip_path).extractall(source)
    bin_ = tmp / "bin"
    bin_.mkdir()
    for name, version in pythons.items():  # a fake interpreter: its version check passes or fails
        ok = tuple(int(v) for v in version.split(".")) >= (3, 11)
        (bin_ / name).write_text(f"#!/bin/sh\nexit {0 if ok else 1}\n")
        (bin_ / name).chmod(0o755)
    (bin_ / "apt-get").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "apt-get").chmod(0o755)
    (bin_ / "dirname").symlink_to(shutil.which("dirname"))
    env = {"PATH": str(bin_), "LECTURE_GRADER_DRY_RUN": "1", "HOME": str(tmp)}  # nothing but the fakes
    done = subprocess.run([shutil.which("bash"), str(source / "setup.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [line[2:] for line in done.stdout.splitlines() if line.startswith("+ ")]


def test_setup_installs_python_311_on_ubuntu_2204_and_the_package_from_the_zip(zips, tmp_path):
    (tmp_path / "jammy").mkdir()
    commands = _dry_setup(tmp_path / "jammy", zips["zips"][A1], {"python3": "3.10"})
    assert "apt-get install -y -q python3.11 python3.11-venv" in commands
    assert "python3.11 -m venv /opt/lecture-grader" in commands
    torch = next(c for c in commands if "--index-url" in c)
    assert torch.endswith('https://download.pytorch.org/whl/cpu torch>=2.2')  # CPU wheels, pyproject's bound
    wheel = next(c for c in commands if c.endswith(".whl[grading]"))
    assert wheel.startswith("/opt/lecture-grader/bin/python -m pip install -q ")
    assert Path(wheel.split()[-1].removesuffix("[grading]")).is_file()  # the zip's own wheel, no URL
    assert commands[-1] == "/opt/lecture-grader/bin/python -I -m lecture_grading.grader check-install"
    (tmp_path / "noble").mkdir()  # Ubuntu 24.04: python3 is 3.12, nothing to install
    commands = _dry_setup(tmp_path / "noble", zips["zips"][A1], {"python3": "3.12"})
    assert not [c for c in commands if "python3.11" in c]
    assert any(c.endswith("/bin/python3 -m venv /opt/lecture-grader") for c in commands)


# -- run_autograder in the stand-in container --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def venv(zips) -> Path:
    """The package installed from the A1 zip's wheel, in a fresh virtual environment."""
    z = zipfile.ZipFile(zips["zips"][A1])
    wheel_name = next(n for n in z.namelist() if n.startswith("wheels/"))
    z.extract(wheel_name, zips["tmp"] / "from-zip")
    return _container.venv_with(zips["tmp"] / "from-zip" / wheel_name, zips["tmp"] / "venv")


def run_autograder(zip_path: Path, submission: nbformat.NotebookNode | None, folder: Path, python: Path,
                   config: dict | None = None) -> dict:
    """Lay out /autograder as Gradescope does, run its run_autograder in a fresh container; what came out."""
    root = folder / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    zipfile.ZipFile(zip_path).extractall(root / "source")
    if config:
        path = root / "source" / "grader.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission_metadata.json").write_text('{"users": [{"email": "student@example.com"}]}')
    if submission is not None:
        nbformat.write(submission, root / "submission" / "notebook.ipynb")
    # After run_autograder: wait (a daemon would strike now), then list every process of a sandbox user.
    script = ("/autograder/run_autograder; echo \"exit=$?\"; sleep 2; "
              "for s in /proc/[0-9]*/status; do awk '/^Uid:/ && $2 >= 61000 {print FILENAME}' $s; done 2>/dev/null")
    done = _container.run(["bash", "-c", script], root, python, env={"LECTURE_GRADER_PYTHON": str(python)})
    results = root / "results" / "results.json"
    out = {"stdout": done.stdout, "stderr": done.stderr, "root": root,
           "exit": int(done.stdout.split("exit=")[1].split()[0]) if "exit=" in done.stdout else None,
           "left": done.stdout.split("exit=")[1].split("\n", 1)[1].split() if "exit=" in done.stdout else None,
           "results": json.loads(results.read_text()) if results.is_file() else None}
    return out


def question_scores(results: dict) -> dict[str, float]:
    scores: dict[str, float] = {}
    for t in results["tests"]:
        scores[t["tags"][0]] = round(scores.get(t["tags"][0], 0.0) + t["score"], 6)
    return scores


CASES = [Attack("reference", A1, "solution", [], {}), Attack("untouched", A1, "student", [], {}),
         *[a for a in ATTACKS if a.name in CORE]]


@pytest.fixture(scope="module")
def graded(zips, venv, tmp_path_factory) -> dict:
    """Every case through run_autograder, two containers at a time."""
    tmp = tmp_path_factory.mktemp("runs")

    def one(case: Attack):
        nb = make_submission(zips["dist"], case)
        return case.name, run_autograder(zips["zips"][case.assignment], nb, tmp / case.name, venv)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, CASES))


FULL = {"q1": 2.0, "q2": 3.0, "q3": 3.0, "q4": 2.0, "q5": 2.0}


@pytest.mark.parametrize("case", CASES, ids=lambda a: a.name)
@needs_container
def test_run_autograder_scores_as_bubblewrap_does(graded, case):
    run = graded[case.name]
    assert run["exit"] == 0, run["stdout"][-3000:] + run["stderr"][-2000:]
    assert "with the container sandbox" in run["stdout"]  # bubblewrap could not start: the container backend graded
    results = run["results"]
    validate(results)
    expected = {"reference": FULL, "untouched": dict.fromkeys(FULL, 0.0)}.get(case.name, case.scores)
    assert question_scores(results) == expected, run["stdout"][-3000:]
    assert results["score"] == pytest.approx(sum(expected.values()))
    for q, phrase in case.reasons.items():
        outputs = " ".join(t["output"] for t in results["tests"] if t["tags"][0] == q)
        assert phrase in outputs, (q, phrase, outputs)
    assert run["left"] == [], "processes of the sandbox's user outlived run_autograder"
    assert json.loads((run["root"] / "results" / "results.json").read_text()) == results  # no daemon rewrote it


@needs_container
def test_the_reference_solution_leaves_the_written_question_to_the_instructor(graded):
    results = graded["reference"]["results"]
    assert results["score"] == 12 and "q6" not in question_scores(results)
    assert "Written answers (q6) are graded by hand" in results["output"]
    hidden = [t for t in results["tests"] if "hidden" in t["tags"]]
    public = [t for t in results["tests"] if "public" in t["tags"]]
    assert len(hidden) == len(public) == 5
    assert {t["visibility"] for t in hidden} == {"after_published"} and {t["visibility"] for t in public} == {"visible"}
    assert {t.get("output_format") for t in results["tests"]} == {"text"} and results["output_format"] == "text"


@needs_container
def test_hidden_tests_messages_stay_hidden_in_results(graded, zips):
    tests = master.Assignment.from_json((zips["dist"] / A1 / "autograder" / "tests.json").read_text())
    hidden = [t.check.splitlines()[0] for q in tests.auto for t in q.tests if t.hidden]
    for run in graded.values():
        text = json.dumps(run["results"])
        assert not [h for h in hidden if h in text]


@needs_container
def test_the_grader_files_are_root_only_during_the_run(graded):
    root = graded["reference"]["root"]
    for p in (root, root / "source", root / "submission", root / "results"):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o700, p
    assert stat.S_IMODE(os.stat(root / "submission_metadata.json").st_mode) == 0o600


@needs_container
def test_a_submission_without_a_notebook_gets_a_message_and_no_invented_score(zips, venv, tmp_path):
    run = run_autograder(zips["zips"][A1], None, tmp_path, venv)
    assert run["exit"] == 0
    validate(run["results"])
    assert run["results"]["score"] == 0 and "no .ipynb file in your submission" in run["results"]["output"]


@needs_container
def test_a_broken_sandbox_writes_no_results(zips, venv, tmp_path):
    """The sandbox cannot start in time (a real failure, caused on purpose): run_autograder writes no
    results.json and exits 1, so Gradescope shows the run as failed, never a score of 0."""
    nb = make_submission(zips["dist"], Attack("reference", A1, "solution", [], {}))
    run = run_autograder(zips["zips"][A1], nb, tmp_path, venv, config={"limits": {"startup_timeout": 0.05}})
    assert run["exit"] == 1
    assert run["results"] is None and not (run["root"] / "results" / "results.json").exists()
    assert "GRADING FAILED" in run["stdout"] and "did not start (not ready after 0.05 s)" in run["stdout"]
    assert run["left"] == []


@needs_bwrap
def test_bubblewrap_is_used_where_the_container_allows_it(zips, venv, tmp_path):
    """Outside the stand-in container (namespaces allowed) the same run_autograder uses bubblewrap."""
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    zipfile.ZipFile(zips["zips"][A1]).extractall(root / "source")
    nbformat.write(make_submission(zips["dist"], Attack("reference", A1, "solution", [], {})),
                   root / "submission" / "n.ipynb")
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True,
                          env={**os.environ, "LECTURE_GRADER_PYTHON": str(venv), "AUTOGRADER_ROOT": str(root)},
                          timeout=600, cwd=root)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "with the bubblewrap sandbox" in done.stdout
    results = json.loads((root / "results" / "results.json").read_text())
    validate(results)
    assert results["score"] == 12


def test_build_refuses_bad_settings(tmp_path):
    dist = tmp_path / "dist"
    build.build(MASTERS, dist, [A1])
    wheel = tmp_path / "x.whl"
    with zipfile.ZipFile(wheel, "w") as w:
        w.writestr("x.dist-info/METADATA", "Requires-Dist: torch>=2.2\n")
    tests = dist / A1 / "autograder" / "tests.json"
    with pytest.raises(ValueError, match="visibility"):
        gradescope.build_zip(tests, wheel, tmp_path / "z", hidden_visibility="later")
    with pytest.raises(ValueError, match="memory must be a positive number"):
        gradescope.build_zip(tests, wheel, tmp_path / "z", limits={"memory": -1})
    assert gradescope.build_zip(tests, wheel, tmp_path / "z").is_file()


CONTAINER_PROBE = r'''
import json, os, sys, time
from lecture_grading import TestSpec, wire
from lecture_grading.grader import sandbox
from lecture_grading.grader.sandbox import base
from lecture_grading.limits import Limits

os.makedirs("/autograder/source", exist_ok=True)
os.chmod("/autograder", 0o700)
open("/autograder/source/tests.json", "w").write("{}")
lim = Limits(cell_timeout=30, test_timeout=30, total_timeout=120)
options = sandbox.Options(preload="", private=("/autograder", "/autograder/source/tests.json"))
cell = """
import errno, os, socket, sys, time
uid = os.getuid()
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    network = "connected"
except OSError as e:
    network = errno.errorcode.get(e.errno, str(e.errno))
def readable(p):
    try:
        open(p, "rb").read(1)
        return True
    except OSError:
        return False
secrets = [readable("/autograder/source/tests.json"), readable("/proc/1/environ"), readable("/etc/shadow")]
open("/tmp/left-behind", "w").write("x")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(1000)
    os._exit(0)
time.sleep(0.3)
"""
seen = {}
with sandbox.Container(lim, options, slot=2) as s:
    assert s.start() is None
    reply, why = s.step({"cell": cell}, 30)
    assert why is None and reply["ok"], (why, reply)
    spec = TestSpec("q", 1, "", "r = (uid, network, secrets)", "pass", ["r"])
    reply, why = s.step({"test": spec.for_runner()}, 30)
    seen["inside"] = wire.loads(reply["result"], reply.get("blob", b""))["r"]
    seen["daemon_alive_before_close"] = len([p for p in base.processes() if p[2] == base.SANDBOX_UID + 2]) >= 2
seen["left_after_close"] = [p[0] for p in base.processes() if p[2] == base.SANDBOX_UID + 2 and p[3] != b"Z"]
seen["tmp_after_close"] = os.path.exists("/tmp/left-behind")
os.chmod("/autograder", 0o755)
os.chmod("/autograder/source/tests.json", 0o644)
try:
    with sandbox.Container(lim, options, slot=2) as s:
        s.start()
    seen["exposed"] = "started"
except sandbox.SandboxFailed as e:
    seen["exposed"] = str(e)
print(json.dumps(seen))
'''


@needs_container
def test_the_container_backend_isolates_as_it_says(venv, tmp_path):
    """Inside the stand-in container: its own user id, no network (seccomp: EACCES), the grader's root-only files
    and other users' secrets unreadable, a detached daemon killed and a file it left in /tmp removed when the
    session ends; and a private path left readable fails the start (the grader's failure, not a score)."""
    (tmp_path / "autograder").mkdir()
    done = _container.run([str(venv), "-c", CONTAINER_PROBE], tmp_path / "autograder", venv)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["inside"] == [61002, "EACCES", [False, False, False]]
    assert seen["daemon_alive_before_close"] is True
    assert seen["left_after_close"] == [] and seen["tmp_after_close"] is False
    assert seen["exposed"].startswith("the container sandbox can read what it must not: /autograder")
