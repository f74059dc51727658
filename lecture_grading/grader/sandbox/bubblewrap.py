"""The bubblewrap backend: the runner in new namespaces, seeing only the system and this Python.

What the sandbox sees: the operating system's programs and libraries (``/usr``), this Python installation
and its packages (read-only), ``lecture_utils`` and ``lecture_grading``, a private ``/tmp`` (in memory, size
limited) and nothing else: not the repository, not ``dist/``, not the masters or the other submissions, not
the grader's environment variables.  It has no network (only its own loopback), its own process tree (it
cannot see or signal the grader or other sandboxes), no capabilities, and, when the grader runs as root, a
user id of its own.  When a session ends, every process in it is killed (PID namespace,
``--die-with-parent``): nothing it started keeps running, and nothing it wrote remains.

Needs bubblewrap (Debian/Ubuntu package ``bubblewrap``) and, as a normal user, unprivileged user namespaces.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

from lecture_grading.grader.sandbox.base import (
    SANDBOX_UID,
    SandboxUnavailable,
    Session,
    alive,
    descendants,
    environment,
    runner_command,
    start_time,
)

INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"

_probe_lock = threading.Lock()
_probe_result: dict[str, str | None] = {}


def problem() -> str | None:
    """Why bubblewrap cannot sandbox here (one line naming what to install or change), or None if it can."""
    with _probe_lock:
        if "problem" not in _probe_result:
            _probe_result["problem"] = _probe()
        return _probe_result["problem"]


def _probe() -> str | None:
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    cmd = [exe, *os_binds(), "--unshare-all", "--die-with-parent", "--cap-drop", "ALL", "--", "true"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        return (f"bubblewrap cannot create a sandbox here ({res.stderr.strip()[:200]}): unprivileged user "
                "namespaces may be disabled (sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu 24.04 "
                "kernel.apparmor_restrict_unprivileged_userns=0), or this is a container that refuses new "
                "namespaces (use the container backend, as root)")
    return None


def supports(option: str) -> bool:
    key = f"supports {option}"
    with _probe_lock:
        if key not in _probe_result:
            out = subprocess.run(["bwrap", "--help"], capture_output=True, text=True).stdout
            _probe_result[key] = "yes" if option in out else None
        return _probe_result[key] is not None


def os_binds() -> list[str]:
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


def python_paths(forbidden: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """The folders this Python and its packages live in: what the sandbox binds read-only.

    ``forbidden`` (the masters, the tests, the submissions...) must not be inside any of them: the packages of
    an editable install (``lecture_utils``, ``lecture_grading``) are bound one by one, never the repository."""
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
            f = Path(f).resolve()
            if f == p or p in f.parents:
                raise SandboxUnavailable(f"refusing to sandbox: {p} (needed for Python) contains {f}")
    # Drop folders inside others already bound.
    return [p for p in out if not any(q != p and q in p.parents for q in out)]


def readonly_binds(paths: list[Path], made: set[str]) -> list[str]:
    """bwrap arguments binding ``paths`` read-only, their parents first made readable by everyone (bwrap would
    make them readable by root only); ``made``: folders that exist already."""
    args, seen = [], {Path("/"), *map(Path, made)}
    for p in paths:
        for parent in reversed(p.parents):
            if parent not in seen:
                seen.add(parent)
                args += ["--perms", "0755", "--dir", str(parent)]
    for p in paths:
        args += ["--ro-bind", str(p), str(p)]
    return args


class Bubblewrap(Session):
    backend = "bubblewrap"

    def __init__(self, *args, userns: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.userns = os.geteuid() != 0 if userns is None else userns  # as a normal user: a user namespace

    def command(self, fd: int) -> tuple[list[str], dict]:
        why = problem()
        if why:
            raise SandboxUnavailable(why)
        lim, root = self.limits, not self.userns
        runner = [*runner_command(lim, self.options, fd), "--reap"]
        # As root, no user namespace (the runner switches to a user id of its own); otherwise one, as bwrap needs.
        unshare = (["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
                   if root else ["--unshare-all"])
        cmd = ["bwrap", *unshare, "--die-with-parent", "--new-session", "--hostname", "sandbox", *os_binds()]
        # The private /proc, /dev and /tmp first, then Python's folders: an installation under /tmp (a clone there)
        # is bound on top of the empty /tmp instead of being hidden by it.
        cmd += ["--proc", "/proc", "--dev", "/dev"]
        if supports("--size"):
            cmd += ["--perms", "1777", "--size", str(lim.tmp_size), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
                    "--perms", "1777", "--size", str(lim.tmp_size), "--tmpfs", "/tmp"]
        else:
            cmd += ["--perms", "1777", "--tmpfs", "/tmp"]
        cmd += readonly_binds(python_paths(self.options.private), {"/usr", "/tmp", "/dev", "/proc"})
        cmd += ["--chdir", "/tmp", "--clearenv"]
        for k, v in environment(self.options).items():
            cmd += ["--setenv", k, v]
        if root:
            cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--", *runner,
                    "--uid", str(SANDBOX_UID + self.slot)]
        else:
            cmd += ["--unshare-user", "--cap-drop", "ALL"]
            if supports("--disable-userns"):
                cmd += ["--disable-userns"]
            cmd += ["--", *runner]
        return cmd, {"env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, "cwd": "/"}

    def pids(self) -> list[int]:
        """The bwrap process and all its descendants (the PID namespace keeps them there)."""
        return descendants(self.proc.pid) if self.proc is not None else []

    def kill_all(self) -> None:
        """Its process group, then every process found below it (the PID namespace would take them too, but
        not at once), and wait until they are gone."""
        found = {pid: s for pid in self.pids() if (s := start_time(pid)) is not None}
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid, start in found.items():
            if start_time(pid) == start:  # the same process, not a new one with its number
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        end = time.monotonic() + 10
        while time.monotonic() < end and any(alive(pid, start) for pid, start in found.items()):
            time.sleep(0.02)
