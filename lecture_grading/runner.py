"""The process that runs a submission inside the grader's sandbox: ``python -m lecture_grading.runner``.

It reads steps from stdin, one JSON object per line, and answers each on file descriptor 3, one JSON object
per line, only after the grader sent it:

* ``{"id": 7, "cell": "<source>"}``: run a code cell of the notebook (IPython semantics: magics, display);
  answer ``{"id": 7, "ok": true}`` or ``{"id": 7, "ok": false, "error": "NameError: ..."}``.
* ``{"id": 8, "test": {...}}``: run a test's given and call parts (``checks.TestSpec``) in a copy of the
  notebook's namespace; answer with the exported values as plain data (``wire.dumps``; its tensors follow
  the JSON line as ``"blob"`` raw bytes of safetensors) or the error.
* ``{"id": 9, "end": true}``: exit.

The grader trusts none of it: everything here runs in the student's process, which can rewrite this module,
write to descriptor 3 or exit at any time.  The grader only ever reads data from it, with its own deadline
for every step, and judges that data in its own process.  Nothing secret is ever sent here: a test's call
part (its inputs) only when its turn comes, never its check part or expected values.
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
    status = open("/proc/self/status").read()
    caps = [line.split()[1] for line in status.splitlines() if line.startswith(("CapEff", "CapPrm"))]
    if os.getuid() != uid or os.getgid() != gid or any(int(c, 16) for c in caps):
        raise SystemExit(97)


def _reap() -> None:
    """Kill whatever the notebook's code left running (daemons, a fork bomb's children) so that it does not
    weigh on the next cells.  kill(-1) reaches every process this one may signal but itself: inside the
    sandbox's PID namespace, only the sandbox's."""
    import signal

    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _send(out, message: dict, blob: bytes = b"") -> None:
    """One answer: a JSON line, then ``message["blob"]`` raw bytes (a test's tensors) if any."""
    if blob:
        message = {**message, "blob": len(blob)}
    out.write(json.dumps(message).encode() + b"\n" + blob)
    out.flush()


def _set_limits(limits: dict) -> None:
    """Lower this process's limits (its children inherit them; without privileges they cannot be raised)."""
    import resource

    for key, res in (("data", resource.RLIMIT_DATA), ("nproc", resource.RLIMIT_NPROC),
                     ("fsize", resource.RLIMIT_FSIZE), ("cpu", resource.RLIMIT_CPU)):
        if key in limits:
            soft = int(limits[key])
            hard = soft + 5 if key == "cpu" else soft  # SIGXCPU first, SIGKILL 5 s later
            resource.setrlimit(res, (soft, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lecture_grading.runner")
    parser.add_argument("--fd", type=int, default=3, help="file descriptor for the answers")
    parser.add_argument("--limits", default="{}", help="JSON: data, nproc, fsize (bytes), cpu (seconds)")
    parser.add_argument("--uid", type=int, help="user id to run as (when started as root)")
    parser.add_argument("--preload", default="", help="modules to import before the first step (torch)")
    parser.add_argument("--reap", action="store_true",
                        help="after each step, kill every other process it can (only inside a PID namespace!)")
    args = parser.parse_args(argv)
    _set_limits(json.loads(args.limits))
    if args.uid is not None:
        _drop_privileges(args.uid, args.uid)
    out = os.fdopen(args.fd, "wb", buffering=0)
    steps = sys.stdin.buffer

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
    for name in filter(None, args.preload.split(",")):  # slow imports count against start-up, not a cell
        __import__(name)
    _send(out, {"ready": True})
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
            sys.stdout.flush()
            _send(out, {"id": sid, "ok": err is None, **({"error": checks.last_line(err)} if err else {})})
        elif "test" in step:
            spec = checks.TestSpec.from_dict(step["test"])
            blob = b""
            try:
                value = checks.run_call(spec, shell.user_ns)
                result, blob = wire.dumps(value)
                message = {"id": sid, "ok": True, "result": result}
            except Exception as e:
                message = {"id": sid, "ok": False, "error": checks.last_line(e)}
            sys.stdout.flush()
            _send(out, message, blob)
    return 0


if __name__ == "__main__":
    sys.exit(main())
