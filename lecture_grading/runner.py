"""The process that runs a submission inside the grader's sandbox: ``python -m lecture_grading.runner``.

It speaks the step protocol of ``protocol`` (steps on stdin, answers on ``--fd``), runs cells with IPython's
semantics (magics, display) and a test's given and call parts in a copy of the notebook's namespace, and
answers with plain data (``wire``).  Before the first step it lowers its resource limits (``limits``) and,
when started as root (the container backend, or bubblewrap run by root), installs a seccomp filter if asked
(``--no-network``) and becomes ``--uid`` with no capabilities; then it reports which of the ``--private``
paths it can read (the grader refuses to go on if any), imports what the protocol needs (so that a broken
installation fails the start, which is the grader's failure, never a step's) and says it is ready.

The grader trusts none of it: everything here runs in the student's process, which can rewrite this module,
write to the answer descriptor or exit at any time.  The grader only ever reads data from it, with its own
deadline for every step, and judges that data in its own process.  Nothing secret is ever sent here: a
test's call part (its inputs) only when its turn comes, never its check part or expected values.
"""

from __future__ import annotations

import json
import os
import sys


def _drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` with no supplementary groups and no capabilities (when started as root)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    with open("/proc/self/status") as f:
        status = f.read()
    caps = [line.split()[1] for line in status.splitlines() if line.startswith(("CapEff", "CapPrm"))]
    if os.getuid() != uid or os.getgid() != gid or any(int(c, 16) for c in caps):
        raise SystemExit(97)


def _readable(path: str) -> bool:
    """True if this process can read ``path``: open it, or for a folder list it or pass through it (then
    whatever is inside with a known name may be readable)."""
    try:
        if os.path.isdir(path):
            return os.access(path, os.R_OK) or os.access(path, os.X_OK)
        with open(path, "rb"):
            pass
        return True
    except OSError:
        return False


def _reap() -> None:
    """Kill whatever the notebook's code left running (daemons, a fork bomb's children) so that it does not
    weigh on the next cells.  kill(-1) reaches every process this one may signal but itself: inside the
    sandbox's PID namespace, only the sandbox's; under a user id of its own, only that user's."""
    import signal

    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lecture_grading.runner")
    parser.add_argument("--fd", type=int, default=3, help="file descriptor for the answers")
    parser.add_argument("--rlimits", default="{}", help="JSON: data, nproc, fsize (bytes), cpu (seconds)")
    parser.add_argument("--uid", type=int, help="user id to run as (when started as root)")
    parser.add_argument("--no-network", action="store_true", help="refuse every socket but AF_UNIX (seccomp)")
    parser.add_argument("--private", action="append", default=[], help="a path this process must not read")
    parser.add_argument("--preload", default="", help="modules to import before the first step (torch)")
    parser.add_argument("--reap", action="store_true",
                        help="after each step, kill every other process it can (only in a PID namespace or "
                             "under a user id of its own!)")
    args = parser.parse_args(argv)
    import time

    started = time.monotonic()  # the clock the grader reads too (CLOCK_MONOTONIC): for its profile

    from lecture_grading import limits, protocol

    limits.apply_rlimits(json.loads(args.rlimits))
    if args.no_network:
        from lecture_grading import seccomp

        seccomp.install(seccomp.no_network())
    if args.uid is not None:
        _drop_privileges(args.uid, args.uid)
    out = os.fdopen(args.fd, "wb", buffering=0)
    exposed = [p for p in args.private if _readable(p)]
    steps = sys.stdin.buffer

    # Everything the protocol needs, imported now: a broken installation fails the start, not a step.
    import safetensors  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from lecture_grading import checks, wire

    config = Config()
    config.HistoryManager.enabled = False  # no history database (nothing to write, nothing to wait for)
    shell = InteractiveShell.instance(config=config)
    try:
        shell.colors = "nocolor"
    except Exception:  # older IPython spells it NoColor
        shell.colors = "NoColor"
    shell_ready = time.monotonic()
    for name in filter(None, args.preload.split(",")):  # slow imports count against start-up, not a cell
        __import__(name)
    if "torch" in sys.modules:
        import safetensors.torch  # noqa: F401  (what a test's tensors travel with)

    def send(message: dict, blob: bytes = b"") -> None:
        sys.stdout.flush()
        out.write(protocol.answer(message, blob))

    def failure(sid: int, exc: BaseException) -> dict:
        return {"id": sid, "ok": False, "error": checks.last_line(exc), "limit": protocol.limit_of(exc)}

    send({"ready": True, "exposed": exposed, "clock": [started, shell_ready, time.monotonic()]})
    for line in steps:
        try:
            step = json.loads(line)
            sid = step["id"]
        except Exception:
            return 2
        if step.get("end"):
            break
        if args.reap:
            _reap()
        if "cell" in step:
            result = shell.run_cell(step["cell"], store_history=True)
            err = result.error_before_exec or result.error_in_exec
            send(failure(sid, err) if err is not None else {"id": sid, "ok": True})
        elif "test" in step:
            spec = checks.TestSpec.from_dict(step["test"])
            try:
                value = checks.run_call(spec, shell.user_ns)
                result, blob = wire.dumps(value)
            except Exception as e:
                send(failure(sid, e))
            else:
                send({"id": sid, "ok": True, "result": result}, blob)
    return 0


if __name__ == "__main__":
    sys.exit(main())
