"""Run a submission's code in a bubblewrap sandbox, one step at a time, with the grader's own deadlines.

``Session`` starts ``python -m lecture_grading.runner`` under ``bwrap`` (Debian/Ubuntu package
``bubblewrap``) and drives it through the step protocol described in ``lecture_grading/runner.py``.

What the sandbox sees: the operating system's programs and libraries (``/usr``), this Python installation
and its packages (read-only), ``lecture_utils`` and ``lecture_grading``, a private ``/tmp`` (in memory, size
limited) and nothing else: not the repository, not ``dist/``, not the masters or the other submissions, not
the grader's environment variables.  It has no network (only its own loopback), its own process tree (it
cannot see or signal the grader or other sandboxes), no capabilities, and, when the grader runs as root, a
user id of its own.  Limits: a deadline per step (the grader kills the whole sandbox when it passes), a CPU
time limit, a memory limit per process (RLIMIT_DATA) and for all its processes together (the grader adds up
their memory (proportional set size) four times a second), a number of processes, a file size and the size of ``/tmp``.
When a session ends, every process in the sandbox is killed (PID namespace, ``--die-with-parent``): nothing
it started keeps running, and nothing it wrote remains.

``--unsafe`` (``Limits.unsafe``) runs the same runner without bubblewrap; see ``UNSAFE_WARNING``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

GiB = 1 << 30
MiB = 1 << 20

UNSAFE_WARNING = (
    "--unsafe: grading WITHOUT a sandbox. Each submission's code runs as you, with your files, your network "
    "and your other processes in reach: it can read the hidden tests and other submissions, change them, or "
    "leave processes behind. Only its time, CPU and memory are still limited. Grade only code you trust."
)
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"


@dataclass
class Limits:
    """Limits of one submission's sandbox (seconds, bytes, counts)."""

    cell_timeout: float = 60.0  # one code cell of the notebook
    test_timeout: float = 60.0  # one test's call part
    startup_timeout: float = 120.0  # Python, IPython and the sandbox starting (a busy machine is slow)
    total_timeout: float = 900.0  # everything for one submission, replays included
    memory: int = 3 * GiB  # resident memory of all its processes together; also each process's data size
    processes: int = 64  # processes and threads
    file_size: int = 64 * MiB  # largest file it may write
    tmp_size: int = 256 * MiB  # its /tmp
    threads: int = 1  # CPU threads of PyTorch/OpenMP
    preload: str = "torch"  # imported before the first step (its time counts as start-up, not as a cell's)
    unsafe: bool = False  # run without bubblewrap (see UNSAFE_WARNING)


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


_probe_lock = threading.Lock()
_probe_result: dict[str, str | None] = {}


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox here (one line naming what to install or change), or None if it can."""
    with _probe_lock:
        if "problem" not in _probe_result:
            _probe_result["problem"] = _probe_bwrap()
        return _probe_result["problem"]


def _probe_bwrap() -> str | None:
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}, or grade with --unsafe"
    cmd = [exe, *_os_binds(), "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--", "true"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        return (f"bubblewrap cannot create a sandbox here ({res.stderr.strip()[:200]}): unprivileged user "
                "namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04 "
                "kernel.apparmor_restrict_unprivileged_userns=0), or run the grader as root")
    return None


def _bwrap_supports(option: str) -> bool:
    key = f"supports {option}"
    if key not in _probe_result:
        out = subprocess.run(["bwrap", "--help"], capture_output=True, text=True).stdout
        _probe_result[key] = "yes" if option in out else None
    return _probe_result[key] is not None


def _os_binds() -> list[str]:
    """The system's programs and libraries, read-only (merged-/usr symlinks kept as symlinks)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for d in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(d)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            args += ["--ro-bind", d, d]
    for f in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/fonts", "/etc/localtime",
              "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/alternatives"):
        args += ["--ro-bind-try", f, f]
    return args


def python_paths(forbidden: list[Path]) -> list[Path]:
    """The folders this Python and its packages live in: what the sandbox binds read-only.

    ``forbidden`` (the repository's masters, dist/...) must not be inside any of them: the packages of an
    editable install (``lecture_utils``, ``lecture_grading``) are bound one by one, never the repository."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
             Path(os.path.realpath(sys.executable)).parent.parent}
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        paths.add(Path(sysconfig.get_paths()[key]))
    for entry in sys.path:
        if entry and ("site-packages" in entry or "dist-packages" in entry):
            paths.add(Path(entry))
    for pkg in ("lecture_utils", "lecture_grading"):
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise SandboxUnavailable(f"the package {pkg} is not installed: pip install -e .")
        paths.add(Path(list(spec.submodule_search_locations)[0]))
    out = sorted({p.resolve() for p in paths if p.exists()})
    for p in out:
        for f in forbidden:
            f = f.resolve()
            if f == p or p in f.parents:
                raise SandboxUnavailable(f"refusing to sandbox: {p} (needed for Python) contains {f}")
    # Drop folders inside others already bound.
    return [p for p in out if not any(q != p and q in p.parents for q in out)]


def _env(limits: Limits) -> dict[str, str]:
    n = str(limits.threads)
    return {"HOME": "/tmp", "TMPDIR": "/tmp", "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n,
            "LECTURE_DEVICE": "cpu", "TQDM_DISABLE": "1"}


def _start_time(pid: int) -> bytes | None:
    """The start time of process ``pid`` (field 22 of /proc/pid/stat), which tells it from a later one."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return stat[stat.rindex(b")") + 2 :].split()[19]
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, start: bytes) -> bool:
    """True while process ``pid`` (started at ``start``) exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    rest = stat[stat.rindex(b")") + 2 :].split()
    return rest[19] == start and rest[0] != b"Z"


#: When the grader runs as root, sandbox number k runs as this user id + k (so that the process limit of one
#: submission does not count another's processes).
SANDBOX_UID = 61000


class Session:
    """One sandboxed runner: ``start()``, then ``step(...)`` for each cell or test, then ``close()``.

    ``step`` returns ``(reply, None)`` or ``(None, reason)`` where reason says why the sandbox was stopped
    (``timeout``, ``memory``, ``died: ...``, ``output``); after a reason the session is over."""

    def __init__(self, limits: Limits, forbidden: list[Path], slot: int = 0, deadline: float | None = None,
                 userns: bool | None = None):
        self.limits = limits
        self.userns = os.geteuid() != 0 if userns is None else userns  # as a normal user: a user namespace
        self.forbidden = forbidden
        self.slot = slot
        self.deadline = deadline if deadline is not None else time.monotonic() + limits.total_timeout
        self.proc: subprocess.Popen | None = None
        self.output_tail = b""
        self._buf = bytearray()
        self._pending: tuple[dict, int] | None = None
        self._tmp: str | None = None
        self.next_id = 0

    # -- starting ---------------------------------------------------------------------------------------
    def _command(self, proto_fd: int) -> tuple[list[str], dict]:
        lim = self.limits
        runner = [sys.executable, "-I", "-m", "lecture_grading.runner", "--fd", str(proto_fd), "--preload", lim.preload,
                  "--limits", json.dumps({"data": lim.memory, "nproc": lim.processes, "fsize": lim.file_size,
                                          "cpu": int(lim.total_timeout) + 1})]
        if lim.unsafe:  # (no --reap: without a PID namespace, kill(-1) would reach all of your processes)
            self._tmp = tempfile.mkdtemp(prefix="grade-unsafe-")
            env = {**_env(lim), "HOME": self._tmp, "TMPDIR": self._tmp, "MPLCONFIGDIR": self._tmp}
            # -I drops the current folder from sys.path; the packages come from the installation.
            return runner, {"env": env, "cwd": self._tmp}
        problem = bwrap_problem()
        if problem:
            raise SandboxUnavailable(problem)
        runner.append("--reap")
        root = not self.userns
        # As root, no user namespace (the runner switches to a user id of its own); otherwise one, as bwrap needs.
        unshare = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
                   if root else ["--unshare-all"])
        cmd = ["bwrap", *unshare, "--die-with-parent", "--new-session", "--hostname", "sandbox", *_os_binds()]
        # The private /proc, /dev and /tmp first, then Python's folders: an installation under /tmp (a clone there)
        # is bound on top of the empty /tmp instead of being hidden by it.
        cmd += ["--proc", "/proc", "--dev", "/dev"]
        if _bwrap_supports("--size"):
            cmd += ["--perms", "1777", "--size", str(lim.tmp_size), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
                    "--perms", "1777", "--size", str(lim.tmp_size), "--tmpfs", "/tmp"]
        else:
            cmd += ["--perms", "1777", "--tmpfs", "/tmp"]
        binds = python_paths(self.forbidden)
        made = {Path("/"), Path("/usr"), Path("/tmp"), Path("/dev"), Path("/proc")}
        for p in binds:  # bwrap would create their parents readable by root only
            for parent in reversed(p.parents):
                if parent not in made:
                    made.add(parent)
                    cmd += ["--perms", "0755", "--dir", str(parent)]
        for p in binds:
            cmd += ["--ro-bind", str(p), str(p)]
        cmd += ["--chdir", "/tmp", "--clearenv"]
        for k, v in _env(lim).items():
            cmd += ["--setenv", k, v]
        if root:
            uid = SANDBOX_UID + self.slot
            cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", *runner,
                    "--uid", str(uid)]
        else:
            cmd += ["--unshare-user", "--cap-drop", "ALL"]
            if _bwrap_supports("--disable-userns"):
                cmd += ["--disable-userns"]
            cmd += ["--", *runner]
        return cmd, {"env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "cwd": "/"}

    def start(self) -> str | None:
        """Start the sandbox and wait until the runner is ready; None, or why it did not start."""
        r, w = os.pipe()
        try:
            cmd, kw = self._command(w)
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, pass_fds=(w,), start_new_session=True, **kw)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        self.proto = r
        self.out = self.proc.stdout.fileno()
        os.set_blocking(self.proto, False)
        os.set_blocking(self.out, False)
        deadline = min(self.deadline, time.monotonic() + self.limits.startup_timeout)
        reply, why = self._read(None, deadline)
        if why:
            return why
        return None

    # -- steps ------------------------------------------------------------------------------------------
    def step(self, payload: dict, timeout: float) -> tuple[dict | None, str | None]:
        """Send one step and wait for its answer, at most ``timeout`` seconds (and the total deadline)."""
        self.next_id += 1
        sid = self.next_id
        line = json.dumps({"id": sid, **payload}).encode() + b"\n"
        try:
            self._write(line, time.monotonic() + 10)
        except (BrokenPipeError, OSError, TimeoutError):
            return None, self._death("it stopped reading")
        deadline = min(self.deadline, time.monotonic() + timeout)
        reply, why = self._read(sid, deadline)
        if why == "timeout" and self.deadline <= deadline:
            why = "total"
        return reply, why

    def _write(self, data: bytes, deadline: float) -> None:
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            _, w, _ = select.select([], [fd], [], min(left, 0.25))
            if w:
                n = os.write(fd, view)
                view = view[n:]

    MAX_LINE = 512 * MiB
    POLL = 0.25

    def _read(self, sid: int | None, deadline: float) -> tuple[dict | None, str | None]:
        """Messages on the protocol pipe until the one for ``sid`` (or ``ready``); else why it stopped."""
        last_mem = 0.0
        while True:
            while self._pending is not None or b"\n" in self._buf:
                if self._pending is None:
                    end = self._buf.index(b"\n")
                    line = bytes(self._buf[:end])
                    del self._buf[: end + 1]
                    try:
                        msg = json.loads(line)
                    except (ValueError, RecursionError):
                        continue  # not the runner's: ignore
                    if type(msg) is not dict:
                        continue
                    size = msg.get("blob", 0)
                    if type(size) is not int or not 0 <= size <= self.MAX_LINE:
                        continue
                    self._pending = (msg, size)
                msg, size = self._pending
                if len(self._buf) < size:
                    break  # its bytes are still coming
                if size:
                    msg["blob"] = bytes(self._buf[:size])
                    del self._buf[:size]
                self._pending = None
                if sid is None and msg.get("ready") is True:
                    return msg, None
                if sid is not None and msg.get("id") == sid:
                    return msg, None
            if len(self._buf) > self.MAX_LINE:
                return None, self._kill("output")
            now = time.monotonic()
            if now >= deadline:
                return None, self._kill("timeout")
            ready, _, _ = select.select([self.proto, self.out], [], [], min(self.POLL, deadline - now))
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
                    self._buf += chunk
            if time.monotonic() - last_mem >= self.POLL:
                last_mem = time.monotonic()
                if self.rss() > self.limits.memory:
                    return None, self._kill("memory")
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

    # -- memory -----------------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """The sandbox's processes: the bwrap process and all its descendants."""
        if self.proc is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as f:
                    stat = f.read()
                ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
            except (OSError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += children.get(pid, [])
        return out

    def rss(self) -> int:
        """Memory of all the sandbox's processes, in bytes: their proportional set size (a page shared by n
        processes counts 1/n in each, so forked children are not counted twice), else their resident size."""
        total = 0
        for pid in self.pids():
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

    # -- ending -----------------------------------------------------------------------------------------
    def _death(self, what: str) -> str:
        code = None
        if self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self._kill("")
        if code is not None and code > 128:
            try:
                return f"died: killed by {signal.Signals(code - 128).name}"
            except ValueError:
                pass
        if code is not None:
            return f"died: {what} (exit status {code})"
        return f"died: {what}"

    def _kill(self, why: str) -> str:
        """Kill everything in the sandbox and wait until it is gone: its process group, then every process
        found below it (the PID namespace would take them too, but not at once)."""
        if self.proc is None:
            return why
        found = self._snapshot()
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid, start in found.items():
            if _start_time(pid) == start:  # the same process, not a new one with its number
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        end = time.monotonic() + 10
        while time.monotonic() < end and any(_alive(pid, start) for pid, start in found.items()):
            time.sleep(0.02)
        return why

    def _snapshot(self) -> dict[int, bytes]:
        out = {}
        for pid in self.pids():
            start = _start_time(pid)
            if start is not None:
                out[pid] = start
        return out

    def close(self) -> None:
        """End the session: ask the runner to exit, then kill whatever is left; close pipes, remove temp."""
        if self.proc is not None:
            if self.proc.poll() is None:
                try:  # it may exit by itself; whatever is still there then is killed
                    self._write(json.dumps({"id": 0, "end": True}).encode() + b"\n", time.monotonic() + 1)
                    self.proc.wait(timeout=0.2)
                except (OSError, TimeoutError, subprocess.TimeoutExpired):
                    pass
            self._kill("")
            if self.limits.unsafe:  # no PID namespace: the process group is all we can reach
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
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
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
