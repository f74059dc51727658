"""What every sandbox backend shares: a session that drives one runner through the step protocol.

A ``Session`` starts ``python -m lecture_grading.runner`` the way its backend says (``command``), waits for
its ``ready`` message, then sends one step at a time and waits for its answer, at most the step's deadline
and the submission's total deadline.  Four times a second it adds up the memory of the sandbox's processes
(``pids``, which the backend knows how to find) and stops the sandbox beyond the limit.  A step that ends
without its answer ends the session with a ``Stop`` saying why; ``close`` kills every process of the sandbox
(``kill_all``) and waits until they are gone, then removes what the backend made (``cleanup``).

Failures of the sandbox itself (it cannot start, it is not ready in time, a private path is readable from
inside) raise ``SandboxFailed``: they are the grader's, and never a student's result.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lecture_grading import protocol
from lecture_grading.limits import Limits

#: When the grader runs as root, sandbox number k runs as this user id + k (so that one submission's process
#: limit does not count another's processes, and the container backend can find each one's processes).
SANDBOX_UID = 61000
POLL = 0.25


class SandboxUnavailable(RuntimeError):
    """This backend cannot run here (bubblewrap missing, not root...): the message says what to do."""


class SandboxFailed(RuntimeError):
    """The sandbox did not start or broke its own guarantees: grading failed, through no fault of the student."""


@dataclass(frozen=True)
class Stop:
    """Why a step ended without its answer: ``kind`` is one of ``limits.STOPS``."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:  # the words the reports and the tests use
        if self.kind == "killed":
            return f"died: killed by {self.detail}"
        if self.kind == "cpu":
            return "died: killed by SIGXCPU"
        if self.kind == "ended":
            return f"died: {self.detail}"
        return self.kind


@dataclass(frozen=True)
class Options:
    """How a sandbox runs (not limits): CPU threads, modules imported at start, paths it must not read."""

    threads: int = 1
    preload: str = "torch"
    private: tuple[Path, ...] = ()


def environment(options: Options, home: str = "/tmp") -> dict[str, str]:
    """The runner's whole environment (nothing of the grader's)."""
    n = str(options.threads)
    return {"HOME": home, "TMPDIR": home, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": f"{home}/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "LECTURE_DEVICE": "cpu", "TQDM_DISABLE": "1"}


def runner_command(limits: Limits, options: Options, fd: int, *extra: str) -> list[str]:
    """``python -I -m lecture_grading.runner ...`` with this interpreter (``-I``: no environment, no folder)."""
    cmd = [sys.executable, "-I", "-m", "lecture_grading.runner", "--fd", str(fd), "--preload", options.preload,
           "--rlimits", json.dumps(limits.rlimits())]
    for p in options.private:
        cmd += ["--private", str(p)]
    return [*cmd, *extra]


def start_time(pid: int) -> bytes | None:
    """The start time of process ``pid`` (field 22 of /proc/pid/stat), which tells it from a later one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int, start: bytes) -> bool:
    """True while process ``pid`` (started at ``start``) exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    rest = stat[stat.rindex(b")") + 2 :].split()
    return rest[19] == start and rest[0] != b"Z"


def processes() -> list[tuple[int, int, int, bytes]]:
    """Every process: ``(pid, parent pid, real user id, state)``."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry.name}/status", "rb") as f:
                uid = int(next(line.split()[1] for line in f if line.startswith(b"Uid:")))
            rest = stat[stat.rindex(b")") + 2 :].split()
            out.append((int(entry.name), int(rest[1]), uid, rest[0]))
        except (OSError, ValueError, StopIteration, IndexError):
            continue
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for child, parent, _, _ in processes():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def memory_of(pids: list[int]) -> int:
    """Memory of processes, in bytes: their proportional set size (a page shared by n processes counts 1/n
    in each, so forked children are not counted twice), else their resident size."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith(b"Pss:")) * 1024
            continue
        except (OSError, StopIteration, ValueError, IndexError):
            pass
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total


class Session:
    """One sandboxed runner: ``start()`` (or ``launch()`` then ``wait_ready()``), ``step(...)`` for each cell
    or test, then ``close()``.  ``step`` returns ``(reply, None)`` or ``(None, Stop)``; after a Stop the
    session is over."""

    backend = "?"

    def __init__(self, limits: Limits, options: Options | None = None, slot: int = 0, deadline: float | None = None):
        self.limits = limits
        self.options = options or Options()
        self.slot = slot
        self.deadline = deadline if deadline is not None else time.monotonic() + limits.total_timeout
        self.proc: subprocess.Popen | None = None
        self.output_tail = b""
        self.reader = protocol.Reader()
        self.next_id = 0
        self.ready: dict = {}
        self.launched_at = 0.0
        self.ready_at = 0.0

    # -- what a backend provides ------------------------------------------------------------------------------
    def command(self, fd: int) -> tuple[list[str], dict]:
        """The command that starts the runner (answers on ``fd``) and Popen's keyword arguments."""
        raise NotImplementedError

    def pids(self) -> list[int]:
        """Every live process of this sandbox."""
        raise NotImplementedError

    def kill_all(self) -> None:
        """Kill every process of this sandbox and wait until they are gone."""
        raise NotImplementedError

    def cleanup(self) -> None:
        """Remove what the backend made for this session (after ``kill_all``)."""

    # -- starting -----------------------------------------------------------------------------------------------
    def launch(self) -> None:
        """Start the sandbox without waiting for it (``wait_ready`` waits)."""
        r, w = os.pipe()
        try:
            cmd, kw = self.command(w)
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, pass_fds=(w,), start_new_session=True, **kw)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        self.launched_at = time.monotonic()
        self.proto = r
        self.out = self.proc.stdout.fileno()
        os.set_blocking(self.proto, False)
        os.set_blocking(self.out, False)

    def wait_ready(self) -> Stop | None:
        """Wait until the runner is ready.  None when it is; ``Stop("total")`` when the submission's time ran
        out meanwhile (after earlier steps used it); raises SandboxFailed for anything else."""
        deadline = min(self.deadline, self.launched_at + self.limits.startup_timeout)
        reply, stop = self._read(None, deadline)
        self.ready_at = time.monotonic()
        if stop is None:
            self.ready = reply
            exposed = reply.get("exposed")
            if exposed:
                self._kill(None)
                raise SandboxFailed(f"the {self.backend} sandbox can read what it must not: "
                                    f"{', '.join(map(str, exposed))[:300]} (make them readable by root only)")
            return None
        if stop.kind == "total" or (stop.kind == "timeout" and self.deadline <= deadline):
            return Stop("total")
        tail = self.output_tail.decode(errors="replace").strip()[-500:]
        if stop.kind == "timeout":
            why = f"not ready after {self.limits.startup_timeout:g} s"
        elif stop.kind == "memory":
            why = f"used more than the memory limit ({self.limits.memory / (1 << 30):g} GiB) while starting"
        else:
            why = str(stop)
        raise SandboxFailed(f"the {self.backend} sandbox did not start ({why}){': ' + tail if tail else ''}")

    def start(self) -> Stop | None:
        self.launch()
        return self.wait_ready()

    # -- steps ----------------------------------------------------------------------------------------------------
    def step(self, payload: dict, timeout: float) -> tuple[dict | None, Stop | None]:
        """Send one step and wait for its answer, at most ``timeout`` seconds (and the total deadline)."""
        self.next_id += 1
        sid = self.next_id
        try:
            self._write(protocol.step(sid, **payload), time.monotonic() + 10)
        except (BrokenPipeError, OSError, TimeoutError):
            return None, self._death("it stopped reading")
        deadline = min(self.deadline, time.monotonic() + timeout)
        reply, stop = self._read(sid, deadline)
        if stop is not None and stop.kind == "timeout" and self.deadline <= deadline:
            stop = Stop("total")
        return reply, stop

    def _write(self, data: bytes, deadline: float) -> None:
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            _, w, _ = select.select([], [fd], [], min(left, POLL))
            if w:
                n = os.write(fd, view)
                view = view[n:]

    def _read(self, sid: int | None, deadline: float) -> tuple[dict | None, Stop | None]:
        """Messages from the runner until the one for ``sid`` (or ``ready``); else why it stopped."""
        last_mem = 0.0
        while True:
            for msg in self.reader.messages():
                if sid is None and msg.get("ready") is True:
                    return msg, None
                if sid is not None and msg.get("id") == sid:
                    return msg, None
            if self.reader.overflowing:
                return None, self._kill(Stop("output"))
            now = time.monotonic()
            if now >= deadline:
                return None, self._kill(Stop("timeout"))
            ready, _, _ = select.select([self.proto, self.out], [], [], min(POLL, deadline - now))
            if self.out in ready:
                self._drain_output()
            if self.proto in ready:
                try:
                    chunk = os.read(self.proto, 1 << 20)
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    return None, self._death("its process ended")
                if chunk:
                    self.reader.feed(chunk)
            if time.monotonic() - last_mem >= POLL:
                last_mem = time.monotonic()
                if memory_of(self.pids()) > self.limits.memory:
                    return None, self._kill(Stop("memory"))
                if self.proc.poll() is not None and not ready:
                    return None, self._death("its process ended")

    def _drain_output(self) -> None:
        try:
            while True:
                chunk = os.read(self.out, 1 << 16)
                if not chunk:
                    return
                self.output_tail = (self.output_tail + chunk)[-8192:]
        except BlockingIOError:
            return

    # -- ending ---------------------------------------------------------------------------------------------------
    def _death(self, what: str) -> Stop:
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self._kill(None)
        if code is not None:
            # A signal: Popen gives -N for the runner itself, bwrap exits with 128 + N for its child.
            signo = -code if code < 0 else code - 128 if code > 128 else 0
            if signo:
                try:
                    name = signal.Signals(signo).name
                except ValueError:
                    name = f"signal {signo}"
                return Stop("cpu") if name == "SIGXCPU" else Stop("killed", name)
            return Stop("ended", f"{what} (exit status {code})")
        return Stop("ended", what)

    def _kill(self, stop: Stop | None) -> Stop | None:
        if self.proc is not None:
            self.kill_all()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return stop

    def close(self) -> None:
        """End the session: kill every process of the sandbox (nothing of its state is needed any more: its
        answers are in), close pipes, clean up."""
        if self.proc is not None:
            self._kill(None)
            self._drain_output()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            try:
                os.close(self.proto)
            except OSError:
                pass
            self.proc = None
        self.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
