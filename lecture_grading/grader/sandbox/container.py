"""The container backend: for a grader running as root inside a per-submission container (Gradescope's) where
bubblewrap cannot create namespaces (Docker's default seccomp profile refuses them without CAP_SYS_ADMIN).

The runner starts as root and, before any of the notebook's code, lowers its resource limits (the same
``limits`` as bubblewrap's), installs a seccomp filter that refuses every socket but ``AF_UNIX`` (and
``io_uring``), sets ``no_new_privs`` (setuid programs give nothing) and becomes a user id of its own
(``SANDBOX_UID + slot``) with no groups and no capabilities.  Its home is a fresh folder only it can
enter; its environment is the runner's own, nothing of the grader's.

What this gives, and what bubblewrap gives that it does not:

* The grader's files are out of reach only by their permissions: ``run_autograder`` makes
  ``/autograder/{source,submission,results}`` and the metadata readable by root alone, and every session
  checks from inside that the paths it was told are private (``Options.private``) cannot be read; a
  readable one fails the grading (the grader's failure, not a score).  Everything else that is
  world-readable in the container (the system, Python, the package's own code) the submission can read.
* Its processes are found by their user id, so a daemon that left its parent is still found: the step's
  memory total counts them, ``kill_all`` kills every one (``kill(-1)`` sent *as that user*, which reaches
  all of that user's processes at once and nothing else) and waits until none is left, before any
  result is written.  Files it left in world-writable folders (``/tmp``, ``/var/tmp``, ``/dev/shm``) are
  removed with its home.
* It shares the container's process list (``/proc``: it can see the grader's command line, not its
  memory or files, and cannot signal or trace it), its hostname and its network namespace (the seccomp
  filter, not a namespace, keeps it off the network; a kernel without seccomp filters fails the start).
* There is no size limit on what it writes to the world-writable folders beyond the file size limit: a
  submission that fills the disk makes its own grading fail (no score; the instructor sees why).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from lecture_grading.grader.sandbox.base import (
    SANDBOX_UID,
    SandboxUnavailable,
    Session,
    environment,
    processes,
    runner_command,
)

#: World-writable folders a submission may leave files in; cleaned after each session.
SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")

KILL_AS_USER = "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass"


def problem() -> str | None:
    """Why the container backend cannot run here, or None."""
    if os.geteuid() != 0:
        return "the container backend runs as root (it gives each submission a user id of its own)"
    from lecture_grading.grader.sandbox.bubblewrap import python_paths

    for p in python_paths():
        hidden = next((q for q in (p, *p.parents) if os.stat(q).st_mode & 0o005 != 0o005), None)
        if hidden is not None:
            return (f"the container backend runs the notebook as another user, who cannot read this Python's "
                    f"{p} ({hidden} is not readable by other users): install Python where everyone can read it "
                    "(/usr, /opt)")
    return None


class Container(Session):
    backend = "container"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.uid = SANDBOX_UID + self.slot
        self.home: str | None = None

    def command(self, fd: int) -> tuple[list[str], dict]:
        why = problem()
        if why:
            raise SandboxUnavailable(why)
        self.kill_all()  # nothing of an earlier session of this user id may remain
        self.home = tempfile.mkdtemp(prefix=f"grade-{self.uid}-")
        os.chown(self.home, self.uid, self.uid)
        os.chmod(self.home, 0o700)
        cmd = runner_command(self.limits, self.options, fd, "--reap", "--no-network", "--uid", str(self.uid))
        return cmd, {"env": environment(self.options, home=self.home), "cwd": self.home}

    def pids(self) -> list[int]:
        """Every live process of the sandbox's user id, and the runner while it is still root."""
        found = [pid for pid, _, uid, state in processes() if uid == self.uid and state != b"Z"]
        if self.proc is not None and self.proc.poll() is None and self.proc.pid not in found:
            found.append(self.proc.pid)
        return found

    def _left(self) -> list[int]:
        return [pid for pid, _, uid, state in processes() if uid == self.uid and state != b"Z"]

    def kill_all(self) -> None:
        """kill(-1, SIGKILL) as the sandbox's user (every process of that user at once, nothing else), until
        none is left; the runner too, if it has not dropped its privileges yet."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
        end = time.monotonic() + 20
        while True:
            left = self._left()
            if not left:
                return
            if time.monotonic() > end:
                raise RuntimeError(f"processes of user {self.uid} survive SIGKILL: {left[:10]}")
            subprocess.run([sys.executable, "-I", "-S", "-c", KILL_AS_USER], user=self.uid, group=self.uid,
                           extra_groups=[], env={}, cwd="/", stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=30)
            time.sleep(0.01)

    def cleanup(self) -> None:
        """Remove its home and whatever its user id left in the world-writable folders."""
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None
        for top in SHARED_TMP:
            try:
                entries = list(os.scandir(top))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.stat(follow_symlinks=False).st_uid != self.uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)
                except OSError:
                    continue

