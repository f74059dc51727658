"""The grading sandbox itself (lecture_grading.grader.sandbox), driven step by step with small cells (no torch: fast).

What a submission's code can see and do from inside, what the limits do to it, and that nothing of it is
left when a session ends.  The assignments' attacks, graded end to end, are in test_grading_attacks.py.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lecture_grading import TestSpec, wire
from lecture_grading.grader import cli, sandbox
from lecture_grading.grader.sandbox import bubblewrap
from lecture_grading.limits import GiB, Limits

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = [ROOT / "assignments", ROOT / "dist", ROOT / "tools"]

pytestmark = pytest.mark.skipif(bubblewrap.problem() is not None, reason=str(bubblewrap.problem()))


def limits(**kw) -> Limits:
    base = dict(cell_timeout=20, test_timeout=20, startup_timeout=120, total_timeout=300)
    base.update(kw)
    return Limits(**base)


def Session(lim: Limits, forbidden, **kw) -> sandbox.Session:
    """A bubblewrap session that imports no torch (fast), with ``forbidden`` as its private paths."""
    return sandbox.Bubblewrap(lim, sandbox.Options(preload="", private=tuple(forbidden)), **kw)


def export(session: sandbox.Session, names: str):
    """Run a test step that only exports ``names`` (comma separated) and decode what comes back."""
    spec = TestSpec("q", 1, "", f"{names} = {names}", "pass", [n.strip() for n in names.split(",")])
    reply, why = session.step({"test": spec.for_runner()}, 30)
    assert why is None and reply["ok"], (why, reply)
    return wire.loads(reply["result"], reply.get("blob", b""))


def sandbox_uid_processes(slot: int = 0) -> list[str]:
    """Processes still running as the sandbox's user id (root) or carrying the test's marker."""
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        uid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))
        if (os.geteuid() == 0 and uid == sandbox.SANDBOX_UID + slot) or "marker-3141" in cmd:
            left.append(cmd)
    return left


def test_what_the_sandbox_sees(tmp_path):
    secret = tmp_path / "classmate.ipynb"
    secret.write_text("{}")
    code = f"""
import os, socket
seen_root = sorted(os.listdir("/"))
seen_repo = sorted(os.listdir({str(ROOT)!r})) if os.path.isdir({str(ROOT)!r}) else []
seen_classmate = os.path.exists({str(secret)!r})
seen_pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
seen_env = sorted(os.environ)
uid = os.getuid()
try:
    open({str(ROOT / "lecture_grading" / "x.txt")!r}, "w")
    wrote_package = True
except OSError:
    wrote_package = False
open("/tmp/scratch.txt", "w").write("fine")
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    network = "connected"
except OSError as e:
    network = type(e).__name__
"""
    with Session(limits(), FORBIDDEN) as s:
        assert s.start() is None
        reply, why = s.step({"cell": code}, 30)
        assert why is None and reply == {"id": 1, "ok": True}
        seen = export(s, "seen_root, seen_repo, seen_classmate, seen_pids, seen_env, uid, wrote_package, network")
    assert "work" in seen["seen_root"] or str(ROOT).split("/")[1] in seen["seen_root"]
    # The repository appears only as the packages the notebook imports: no masters, no dist, no tools.
    assert set(seen["seen_repo"]) <= {".venv", "lecture_utils", "lecture_grading"}, seen["seen_repo"]
    assert seen["seen_classmate"] is False
    assert len(seen["seen_pids"]) <= 3 and os.getpid() not in seen["seen_pids"]  # its own processes only
    assert "HOME" in seen["seen_env"] and not {"USER", "PIP_FIND_LINKS", "PYTEST_CURRENT_TEST", "PATH_TO_DIST"} & set(
        seen["seen_env"])
    assert seen["uid"] != 0 and seen["wrote_package"] is False
    assert seen["network"] in ("OSError", "ConnectionRefusedError", "TimeoutError") or "Error" in seen["network"]
    assert seen["network"] != "connected"


def test_an_endless_loop_that_ignores_signals_is_stopped_at_its_deadline():
    code = """
import signal
for sig in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
"""
    with Session(limits(), FORBIDDEN) as s:
        assert s.start() is None
        t = time.monotonic()
        reply, why = s.step({"cell": code}, 3)
        took = time.monotonic() - t
    assert (reply, str(why)) == (None, "timeout")
    assert 3 <= took < 30
    assert sandbox_uid_processes() == []


def test_detached_processes_holding_the_pipes_die_with_the_session():
    code = """
import os, sys, time
if os.fork() == 0:            # a daemon: new session, second fork, keeps stdout and the answer pipe open
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(1000)", "marker-3141"])
    os._exit(0)
time.sleep(0.5)
"""
    with Session(limits(), FORBIDDEN) as s:
        assert s.start() is None
        reply, why = s.step({"cell": code}, 30)
        assert why is None and reply["ok"], reply
        assert any("marker-3141" in p for p in sandbox_uid_processes())
        t = time.monotonic()
    assert time.monotonic() - t < 15  # closing did not wait for the daemon
    assert sandbox_uid_processes() == []


def test_os_exit_ends_the_session_with_a_reason():
    with Session(limits(), FORBIDDEN) as s:
        assert s.start() is None
        reply, why = s.step({"cell": "import os\nos._exit(3)"}, 30)
    assert reply is None and str(why) == "died: its process ended (exit status 3)"


def test_memory_per_process_and_in_total():
    gib = GiB
    with Session(limits(memory=gib), FORBIDDEN) as s:
        assert s.start() is None
        reply, why = s.step({"cell": "x = bytearray(2 * 1024 ** 3)"}, 30)
        assert why is None and reply["ok"] is False and reply["error"].startswith("MemoryError")
        # Each child stays under the per-process limit; together they go over: the grader stops them all.
        code = """
import os, time
for _ in range(4):
    if os.fork() == 0:
        block = bytearray(400 * 1024 ** 2)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1000)
time.sleep(1000)
"""
        reply, why = s.step({"cell": code}, 60)
    assert (reply, str(why)) == (None, "memory")
    assert sandbox_uid_processes() == []


def test_a_fork_bomb_hits_the_process_limit():
    code = """
import os, time
children, error = 0, None
try:
    for _ in range(10_000):
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
        children += 1
except OSError as e:
    error = type(e).__name__
"""
    with Session(limits(processes=32), FORBIDDEN) as s:
        assert s.start() is None
        reply, why = s.step({"cell": code}, 60)
        assert why is None and reply["ok"], reply
        seen = export(s, "children, error")
    assert seen["error"] == "BlockingIOError" and 0 < seen["children"] < 32
    assert sandbox_uid_processes() == []


def test_flooded_output_and_junk_on_the_answer_pipe_are_ignored():
    code = """
import os
print("x" * 20_000_000)
import sys
_ = os.write(int(sys.argv[sys.argv.index("--fd") + 1]), b"not json\\n{\\"id\\": 99, \\"ok\\": true}\\n[1, 2]\\n")
"""
    with Session(limits(), FORBIDDEN) as s:
        assert s.start() is None
        reply, why = s.step({"cell": code}, 60)
        assert why is None and reply == {"id": 1, "ok": True}
        assert len(s.output_tail) <= 8192 and s.output_tail.endswith(b"x" * 100 + b"\n")
        assert isinstance(export(s, "os")["os"], wire.Foreign)  # the next step still gets its own answer


def test_nothing_is_left_in_tmp(tmp_path, monkeypatch):
    before = set(os.listdir("/tmp"))
    with Session(limits(), FORBIDDEN) as s:
        assert s.start() is None
        reply, why = s.step({"cell": "open('/tmp/left-behind-3141', 'w').write('x' * 1000)"}, 30)
        assert reply["ok"]
    assert not Path("/tmp/left-behind-3141").exists()
    assert not {n for n in set(os.listdir("/tmp")) - before if "grade" in n or "3141" in n}


def test_without_bubblewrap_grading_refuses_with_the_package_name(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bubblewrap, "_probe_result", {})
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    problem = bubblewrap.problem()
    assert problem.startswith("bubblewrap (bwrap) is not installed") and "apt-get install bubblewrap" in problem
    nb = tmp_path / "x.ipynb"
    nb.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert cli.main(["grade", str(nb)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cannot grade: bubblewrap (bwrap) is not installed") and err.count("\n") == 1


def test_unsafe_mode_says_what_it_gives_up_and_cleans_its_folder():
    assert "WITHOUT a sandbox" in sandbox.UNSAFE_WARNING and "hidden tests" in sandbox.UNSAFE_WARNING
    with sandbox.Unsafe(limits(), sandbox.Options(preload="")) as s:
        assert s.start() is None
        reply, why = s.step({"cell": f"import os\nhome = os.environ['HOME']\nsees_repo = os.path.isdir({str(ROOT / 'assignments')!r})"}, 30)
        assert reply["ok"], reply
        seen = export(s, "home, sees_repo")
    assert seen["sees_repo"] is True  # no sandbox: the hidden tests are in reach
    assert not Path(seen["home"]).exists()


def test_the_install_script_is_quiet_when_bubblewrap_is_there():
    res = subprocess.run(["bash", str(ROOT / "tools" / "ensure-bubblewrap.sh")], capture_output=True, text=True)
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")


def test_python_paths_never_include_the_repository():
    paths = bubblewrap.python_paths(FORBIDDEN)
    assert ROOT not in paths and all(ROOT not in p.parents or p.name in (".venv", "lecture_utils", "lecture_grading")
                                     for p in paths)
    with pytest.raises(sandbox.SandboxUnavailable, match="refusing to sandbox"):
        bubblewrap.python_paths([Path(sys.prefix) / "lib"])


def test_the_user_namespace_mode_a_normal_user_gets():
    """As a normal user bwrap puts the runner in a user namespace (here forced while root: same command)."""
    with Session(limits(), FORBIDDEN, userns=True) as s:
        assert s.start() is None
        reply, why = s.step({"cell": "import os\nuid = os.getuid()\nseen = sorted(os.listdir('/'))"}, 30)
        assert why is None and reply["ok"], reply
        seen = export(s, "uid, seen")
        reply, why = s.step({"cell": "while True:\n    pass"}, 2)
    assert str(why) == "timeout"
    assert {"proc", "tmp", "usr"} <= set(seen["seen"]) and "assignments" not in seen["seen"]
    assert seen["uid"] == os.geteuid()  # bwrap maps the caller's own id (no --uid)


def test_pythons_folders_are_bound_after_the_private_tmp():
    """An installation under /tmp (a clone there, as CI may make) must be bound over the sandbox's empty /tmp,
    not hidden by it (it was: 'bwrap: execvp /tmp/.../.venv/bin/python: No such file or directory')."""
    cmd, _ = Session(limits(), FORBIDDEN).command(3)
    tmpfs = max(i for i, a in enumerate(cmd) if a == "/tmp" and cmd[i - 1] == "--tmpfs")
    python = {str(p) for p in bubblewrap.python_paths(FORBIDDEN)}
    binds = [i for i, a in enumerate(cmd[:-1]) if a == "--ro-bind" and cmd[i + 1] in python]
    assert binds and min(binds) > tmpfs
