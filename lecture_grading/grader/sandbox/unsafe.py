"""The unsafe backend (``--unsafe``): the same runner and protocol in a plain process, with no isolation."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile

from lecture_grading.grader.sandbox.base import Session, environment, runner_command

WARNING = (
    "--unsafe: grading WITHOUT a sandbox. Each submission's code runs as you, with your files, your network "
    "and your other processes in reach: it can read the hidden tests and other submissions, change them, or "
    "leave processes behind. Only its time, CPU and memory are still limited. Grade only code you trust."
)


class Unsafe(Session):
    backend = "unsafe"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.home: str | None = None

    def command(self, fd: int) -> tuple[list[str], dict]:
        # No --reap: without a PID namespace or a user id of its own, kill(-1) would reach all of your processes.
        self.home = tempfile.mkdtemp(prefix="grade-unsafe-")
        return runner_command(self.limits, self.options, fd), {"env": environment(self.options, self.home),
                                                                "cwd": self.home}

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def kill_all(self) -> None:
        """Its process group: all it can reach (a process that left the group survives)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def cleanup(self) -> None:
        if self.home:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None
