"""Submissions that try to game the grader, graded end to end as an instructor would: a folder, two at a time.

Each attack is a built notebook, either the student's (answers left as ``...``) or the reference solutions,
with an attacker's cells added.  Every one must be scored exactly as an honest grader would score it: 0 for
what it did not solve, full marks for what it did, its honest classmates untouched, nothing of it left
running or on disk, and the same CSV when the folder is graded again.

``make test`` runs the attacks marked FAST; ``make grade-tests`` (GRADE_TESTS=full) runs them all.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from lecture_grading.grader import build, cli, master
from lecture_grading.grader.sandbox import SANDBOX_UID, bubblewrap

ROOT = Path(__file__).resolve().parent.parent
MASTERS = ROOT / "assignments"
A1, A2 = "01_initialization", "02_batchnorm"
FULL = os.environ.get("GRADE_TESTS") == "full"
# A loop costs a cell's limit: A1's default (60 s) in the full run; 20 s in make test's run, which has only
# A1 submissions (their honest cells take a second or two). A2 allows 120 s per cell: it trains networks.
CELL_TIMEOUT = 60 if FULL else 20
MEMORY_GIB = 2
pytestmark = pytest.mark.skipif(bubblewrap.problem() is not None, reason=str(bubblewrap.problem()))

# -- the attackers' cells ------------------------------------------------------------------------------------
PATCH_RUNNER = """
# Make every check pass, in this process: otter's doctest runner, this grader's comparisons and runner.
import doctest
doctest.DocTestRunner.summarize = lambda self, *args, **kwargs: doctest.TestResults(0, 0)
import lecture_grading.checks as _checks
import lecture_grading.expect as _expect
import lecture_grading.wire as _wire
_ok = lambda *args, **kwargs: None
_expect.equal = _expect.close = _expect.all_close = _expect.tensor_close = _expect.raises = _ok
_expect.tensor = lambda got, *args, **kwargs: got
_checks.run_check = _ok
_wire.roundtrip = lambda value: value
"""

FS_VANDAL = """
# Find every notebook, test file, CSV and report in reach; append to each (a classmate's, the grader's...).
import os
found, written = [], []
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr", "lib", "lib64", "bin", "sbin", "etc",
                                            "include", "share", "site-packages", ".venv")]
    for f in files:
        if f.endswith((".ipynb", ".csv", ".json", ".txt")):
            path = os.path.join(top, f)
            found.append(path)
            try:
                with open(path, "a") as fh:
                    fh.write("vandal")
                written.append(path)
            except OSError:
                pass


def fans(layer):  # what it found and wrote (its own /tmp aside), for the grader's report to show
    return (len([p for p in found if not p.startswith("/tmp/")]), len([p for p in written if not p.startswith("/tmp/")]))
"""

PRINT_HIDDEN = """
# Look for the hidden tests on disk, and at grading time print whatever the grader's process holds.
import os
import sys
leaked = []
for top, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev", "usr", "site-packages")]
    for f in files:
        if f == "tests.json" or f.endswith(".ipynb") or "autograder" in top:
            try:
                leaked.append(open(os.path.join(top, f)).read()[:500])
            except OSError:
                pass
print(leaked)


def fans(layer):
    frames, frame = [], sys._getframe(1)
    while frame is not None:
        frames.append(repr(frame.f_locals)[:2000])
        frame = frame.f_back
    raise RuntimeError(" | ".join(frames))
"""

PROC_AUTOGRADER = """
# Find the autograder through /proc (the grader's command lines) and run the reference solutions next to it.
import json
import os
cmdlines = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            cmdlines.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode())
        except OSError:
            pass
found = []
for word in {w for c in cmdlines for w in c.split()}:
    if word.endswith("-autograder.zip"):  # dist/assignments/NN/autograder/NN-autograder.zip
        folder = os.path.dirname(word)
        found += [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".ipynb")]


def fans(layer):
    return (len(found), len(cmdlines))


for path in found:
    for cell in json.load(open(path))["cells"]:
        if cell["cell_type"] == "code" and "def " in "".join(cell["source"]):
            get_ipython().run_cell("".join(cell["source"]))
"""

DETACHED_WRITER = """
# A daemon that lets go of every pipe, outlives the notebook and keeps rewriting results/results.json with full
# marks in the working folder of every process above it (where otter writes it, and reads it back).
import json
import os
import time
full = {"tests": [{"name": q, "score": p, "max_score": p} for q, p in (("q1", 2), ("q2", 3), ("q3", 3), ("q4", 2),
                                                                      ("q5", 2))]}
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 4096)
        for _ in range(2400):
            pid = os.getpid()
            while pid > 1:
                try:
                    folder = os.path.join(os.readlink(f"/proc/{pid}/cwd"), "results")
                    os.makedirs(folder, exist_ok=True)
                    with open(os.path.join(folder, "results.json"), "w") as fh:
                        json.dump(full, fh)
                except OSError:
                    pass
                try:
                    pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    break
            time.sleep(0.25)
        os._exit(0)
    os._exit(0)
"""

LOOP_IGNORING_SIGALRM = """
import signal
signal.signal(signal.SIGALRM, signal.SIG_IGN)
while True:
    pass
"""

LOOP_CATCHING_TIMEOUT = """
import time
while True:
    try:
        while True:
            time.sleep(0.01)
    except BaseException:  # TimeoutError, KeyboardInterrupt, SystemExit: keep going
        pass
"""

FORKED_MEMORY_HOG = """
# Each child stays under the limit of one process; together they go over.
import os
import time
for _ in range(6):
    if os.fork() == 0:
        block = bytearray(600 * 1024 ** 2)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(600)
time.sleep(600)
"""

MEMORY_HOG = "hog = torch.empty(4 * 1024 ** 3)  # 16 GB"

FORK_BOMB = """
import os
import time
while True:
    if os.fork() == 0:
        while True:
            time.sleep(1)
"""

ORPHANS_HOLDING_PIPES = """
# A daemon that keeps every pipe of the grading process open, and a thread that never ends.
import os
import threading
import time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(3600)
    os._exit(0)
threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()
"""

OS_EXIT = "import os\nos._exit(0)"

KILL_EVERYTHING = """
import os
import signal
try:
    os.kill(-1, signal.SIGKILL)  # every process it may signal but itself (outside a sandbox: all of yours)
except ProcessLookupError:
    pass
os.killpg(0, signal.SIGKILL)
"""

EQ_Q1 = """
class Anything(tuple):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __hash__ = tuple.__hash__


def fans(layer):
    return Anything((0, 0))
"""

EQ_Q2 = """
class CloseToEverything(float):
    def __eq__(self, other):
        return True

    def __sub__(self, other):
        return 0.0

    __rsub__ = __sub__
    __hash__ = float.__hash__


def xavier_std(fan_in, fan_out, gain=1.0):
    return CloseToEverything(0.0)


def he_std(fan_in, gain=2 ** 0.5):
    return CloseToEverything(0.0)


def uniform_bound(std):
    return CloseToEverything(0.0)
"""

EQ_Q4 = """
class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __len__(self):
        return 3

    def __iter__(self):
        return iter([2.0, 2.0, 2.0])


def variance_recurrence(*args, **kwargs):
    return AlwaysEqual()
"""

IDENTITY_WEIGHTS = """with torch.no_grad():
    for m in net:
        if isinstance(m, nn.Linear):
            m.weight.copy_(torch.eye(256))
            m.bias.zero_()"""

FORGED_ANSWER = """
# Answer the grader's pipe directly, with the public test's expected value, before the runner does.
import json
import os
import sys
_fd = int(sys.argv[sys.argv.index("--fd") + 1])


def fans(layer):
    frame = sys._getframe(1)
    while frame is not None and "sid" not in frame.f_locals:
        frame = frame.f_back
    forged = {"id": frame.f_locals["sid"], "ok": True,
              "result": {"data": {"__dict__": {"got": {"__tuple__": [3, 5]}}}, "tensor_bytes": 0}}
    os.write(_fd, (json.dumps(forged) + "\\n").encode())
"""

SHOW_CMDLINES = """
def variance_recurrence(*args, **kwargs):  # what it saw of the processes, for the report to show
    return " ".join(cmdlines)
"""

STEAL_CHECKS = """
# Keep every check part the grader sends while a test runs (the runner's step), to show it later in an error.
import sys
stolen = []


def fans(layer):
    frame = sys._getframe(1)
    while frame is not None:
        step = frame.f_locals.get("step")
        if isinstance(step, dict) and isinstance(step.get("test"), dict) and step["test"].get("check"):
            stolen.append(step["test"]["check"])
        frame = frame.f_back
    return (0, 0)
"""

SHOW_STOLEN = 'raise RuntimeError(f"stolen: {len(stolen)} checks: {stolen}")'

HARDCODED_PUBLIC = """
def fans(layer):
    return (3, 5)
"""


@dataclass
class Attack:
    name: str  # also the submission's folder
    assignment: str
    base: str  # "student" (answers left as ...) or "solution"
    edits: list[tuple[str, str, str]]  # ("after" | "replace" | "append", anchor, code)
    scores: dict[str, float]  # expected score per auto-graded question
    reasons: dict[str, str] = field(default_factory=dict)  # a phrase each question's report must show
    fast: bool = False  # part of `make test`
    issue: str = ""  # how issue 11 describes it (for the table in the README)


def zeros() -> dict[str, float]:
    return {f"q{k}": 0.0 for k in range(1, 6)}


FULL_MARKS = {"q1": 2.0, "q2": 3.0, "q3": 3.0, "q4": 2.0, "q5": 2.0}
FULL_MARKS_A2 = {"q1": 3.0, "q2": 2.0, "q3": 2.0, "q4": 3.0, "q5": 2.0}
IMPORTS = "config.seed_everything(0)"
FANS = "def fans("

ATTACKS = [
    Attack("alice", A1, "solution", [], FULL_MARKS, fast=True, issue="an honest classmate"),
    Attack("dave", A2, "solution", [], FULL_MARKS_A2, issue="an honest classmate (assignment 2)"),
    Attack("patch-runner", A1, "student", [("after", IMPORTS, PATCH_RUNNER)], zeros(),
           issue="patch the test runner (doctest.DocTestRunner.summarize)"),
    Attack("fs-vandal", A1, "student", [("after", FANS, FS_VANDAL)], zeros(),
           {"q1": "got (0, 0)"}, fast=True,
           issue="rewrite the test files; read and rewrite a classmate's file; change the CSV"),
    Attack("print-hidden", A1, "student", [("after", FANS, PRINT_HIDDEN)], zeros(),
           issue="print the hidden tests"),
    Attack("proc-autograder", A1, "student", [("after", FANS, PROC_AUTOGRADER),
                                              ("after", "def variance_recurrence(", SHOW_CMDLINES)], zeros(),
           {"q1": "got (0, 2)", "q2": "breaks the assignment's rules", "q4": "got 'bwrap"},
           issue="find the autograder through /proc and run the reference solutions"),
    Attack("detached-writer", A1, "student", [("after", IMPORTS, DETACHED_WRITER)], zeros(),
           issue="a detached process rewrites the results after grading"),
    Attack("sigalrm-loop", A1, "solution", [("replace", "net = deep_relu_net()",
                                             "net = deep_relu_net()\n" + LOOP_IGNORING_SIGALRM)],
           {**FULL_MARKS, "q5": 0.0}, {"q5": f"ran longer than {CELL_TIMEOUT} s"}, fast=True,
           issue="an endless loop that ignores SIGALRM"),
    Attack("catch-timeout", A1, "solution", [("after", "def init_module_(", LOOP_CATCHING_TIMEOUT)],
           {**FULL_MARKS, "q3": 0.0}, {"q3": f"ran longer than {CELL_TIMEOUT} s"},
           issue="an endless loop that catches TimeoutError"),
    Attack("memory-hogs", A1, "solution", [("after", "def xavier_std(", FORKED_MEMORY_HOG),
                                           ("after", "def variance_recurrence(", MEMORY_HOG)],
           {**FULL_MARKS, "q2": 0.0, "q4": 0.0},
           {"q2": f"used more than {MEMORY_GIB:g} GiB of memory", "q4": "hit the memory limit"},
           issue="memory unbounded (2.4 GB)"),
    Attack("fork-bomb", A1, "solution", [("after", "def variance_recurrence(", FORK_BOMB)],
           {**FULL_MARKS, "q4": 0.0}, {"q4": "hit the process limit"}, issue="(a fork bomb)"),
    Attack("orphans", A1, "solution", [("after", IMPORTS, ORPHANS_HOLDING_PIPES)], FULL_MARKS,
           issue="student processes outlive grading; a process holds the grader's pipe"),
    Attack("os-exit-after-answers", A1, "solution", [("append", "", OS_EXIT)], FULL_MARKS,
           issue="os._exit after correct answers"),
    Attack("os-exit-mid", A1, "solution", [("after", "def init_module_(", OS_EXIT)],
           {**FULL_MARKS, "q3": 0.0}, {"q3": "ended the notebook's process"}, fast=True,
           issue="(os._exit in one question)"),
    Attack("kill-everything", A1, "solution", [("after", "def xavier_std(", KILL_EVERYTHING)],
           {**FULL_MARKS, "q2": 0.0}, {"q2": "was killed (SIGKILL)"}, issue="(kill -1)"),
    Attack("eq-always-true", A1, "student", [("after", FANS, EQ_Q1), ("after", "def xavier_std(", EQ_Q2),
                                             ("after", "def variance_recurrence(", EQ_Q4)], zeros(),
           {"q1": "got an object of type", "q2": "got an object of type", "q4": "got an object of type"},
           issue="an answer whose __eq__ always returns True"),
    Attack("identity-weights", A1, "solution", [("replace", 'init_module_(net, "he", "normal")', IDENTITY_WEIGHTS)],
           {**FULL_MARKS, "q5": 0.0}, fast=True, issue="identity weights for A1 q5"),
    Attack("untrained-plain", A2, "solution", [("replace", "plain_losses = train(plain_net, x_train, y_train)",
                                                "plain_losses = []")],
           {**FULL_MARKS_A2, "q5": 1.0}, issue="an untrained plain net for A2 q5 (its BatchNorm half is solved)"),
    Attack("forged-answer", A1, "student", [("after", FANS, FORGED_ANSWER)], {**zeros(), "q1": 0.4},
           issue="(answer the grader's pipe with the public value: scores what hard-coding it scores)"),
    Attack("hardcoded-public", A1, "student", [("after", FANS, HARDCODED_PUBLIC)], {**zeros(), "q1": 0.4},
           issue="(hard-code the public test's answer, for comparison)"),
    Attack("steal-checks", A1, "student", [("after", FANS, STEAL_CHECKS), ("after", "def xavier_std(", SHOW_STOLEN)],
           zeros(), {"q2": "stolen: 0 checks"}, fast=True,
           issue="(keep the check parts sent to the sandbox, show them in a later cell's error)"),
]
CHOSEN = [a for a in ATTACKS if FULL or a.fast]


def make_submission(built: Path, attack: Attack) -> nbformat.NotebookNode:
    """The attack's notebook: the built student or solution notebook with the attacker's edits."""
    kind = "student" if attack.base == "student" else "autograder"
    nb = nbformat.read(built / attack.assignment / kind / f"{attack.assignment}.ipynb", as_version=4)
    for op, anchor, code in attack.edits:
        if op == "append":
            nb.cells.append(nbformat.v4.new_code_cell(code.strip("\n")))
            continue
        hits = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and anchor in c.source]
        assert len(hits) == 1, f"{attack.name}: {anchor!r} is in {len(hits)} code cells"
        if op == "after":
            nb.cells.insert(hits[0] + 1, nbformat.v4.new_code_cell(code.strip("\n")))
        else:
            nb.cells[hits[0]].source = nb.cells[hits[0]].source.replace(anchor, code)
    return nb


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def sandbox_processes() -> list[int]:
    """Processes still running as a sandbox user (when the grader runs as root, each sandbox has its own)."""
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                uid = int(next(line.split()[1] for line in (entry / "status").read_text().splitlines()
                               if line.startswith("Uid:")))
            except (OSError, StopIteration):
                continue
            if SANDBOX_UID <= uid < SANDBOX_UID + 16:
                left.append(int(entry.name))
    return left


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    build.build(MASTERS, dist)
    return dist


@pytest.fixture(scope="module")
def graded(built, tmp_path_factory):
    """Grade the folder of attacks with the command an instructor uses, two at a time."""
    folder = tmp_path_factory.mktemp("submissions")
    for attack in CHOSEN:
        (folder / attack.name).mkdir()
        nbformat.write(make_submission(built, attack), folder / attack.name / f"{attack.assignment}.ipynb")
    os.chmod(folder, 0o555)  # the originals are read-only to the grader: it must not even try to write there
    before, tests_before = digest(folder), digest(built)
    out = tmp_path_factory.mktemp("out")
    started = time.monotonic()
    code = cli.main(["grade", str(folder), "--csv", str(out / "scores.csv"), "--reports", str(out / "reports"),
                     "--jobs", "2", "--dist", str(built), "--masters", str(MASTERS), "--memory", str(MEMORY_GIB),
                     *([] if FULL else ["--cell-timeout", str(CELL_TIMEOUT)])])
    seconds = time.monotonic() - started
    time.sleep(2)  # a detached writer would strike now
    return {"code": code, "folder": folder, "out": out, "before": before, "tests_before": tests_before,
            "csv": (out / "scores.csv").read_text(), "seconds": seconds}


@pytest.fixture(scope="module")
def rows(graded) -> dict[str, dict]:
    return {r["submission"].split("/")[0]: r for r in csv.DictReader(graded["csv"].splitlines())}


@pytest.mark.parametrize("attack", CHOSEN, ids=lambda a: a.name)
def test_attack_is_scored_as_an_honest_grader_would(graded, rows, attack):
    row = rows[attack.name]
    got = {q: float(row[q]) for q in attack.scores}
    report = (graded["out"] / "reports" / f"{attack.name}__{attack.assignment}.txt").read_text()
    assert got == attack.scores, report
    assert float(row["total"]) == pytest.approx(sum(attack.scores.values()))
    for q, phrase in attack.reasons.items():
        section = re.search(rf"^  {q} .*?(?=^  q\d|^  total)", report, re.S | re.M).group(0)
        assert phrase in section, (q, phrase, report)


def test_the_folder_was_graded_in_full_and_only_read(graded, rows, built):
    assert graded["code"] == 0  # no submission failed to be graded
    assert set(rows) == {a.name for a in CHOSEN}
    assert digest(graded["folder"]) == graded["before"], "the submissions were changed"
    assert digest(built) == graded["tests_before"], "the tests were changed"
    assert sorted(p.name for p in graded["out"].iterdir()) == ["reports", "scores.csv"]  # no temporary file left


def test_nothing_keeps_running_after_grading(graded):
    assert sandbox_processes() == []


def test_csv_and_reports_hold_no_hidden_test(graded, built):
    tests = master.Assignment.from_json((built / A1 / "autograder" / "tests.json").read_text())
    hidden = [t.check.splitlines()[0] for q in tests.auto for t in q.tests if t.hidden]
    texts = [graded["csv"], *(p.read_text() for p in (graded["out"] / "reports").iterdir())]
    assert hidden and not [h for h in hidden for text in texts if h in text]


def test_the_grader_does_not_wait_for_what_submissions_leave_behind(graded, rows):
    # Two loops of CELL_TIMEOUT run side by side at most; everything else is quick. Generous: busy machines.
    assert graded["seconds"] < len(CHOSEN) * 120


def test_a_second_run_gives_the_same_csv(built, tmp_path):
    """Graded twice, the same folder gives the same bytes; here with two attacks that make test's folder lacks."""
    folder = tmp_path / "again"
    chosen = [a for a in ATTACKS if a.name in ("patch-runner", "eq-always-true")]
    for attack in chosen:
        (folder / attack.name).mkdir(parents=True)
        nbformat.write(make_submission(built, attack), folder / attack.name / f"{attack.assignment}.ipynb")
    texts = []
    for k in range(2):
        out = tmp_path / f"scores{k}.csv"
        assert cli.main(["grade", str(folder), "--csv", str(out), "--jobs", "2", "--dist", str(built),
                         "--masters", str(MASTERS)]) == 0
        texts.append(out.read_bytes())
    assert texts[0] == texts[1]
    rows = {r["submission"].split("/")[0]: r for r in csv.DictReader(texts[0].decode().splitlines())}
    for attack in chosen:
        assert {q: float(rows[attack.name][q]) for q in attack.scores} == attack.scores
    assert "got an object of type __main__.Anything" in rows["eq-always-true"]["notes"]
