"""Sandbox backends behind one interface (``base.Session``): each runs the runner its own way.

=============  ===================================================================================================
``bubblewrap`` new namespaces (mount, PID, network, IPC, UTS; a user namespace as a normal user): the submission
               sees only the system and this Python; the default wherever bubblewrap can create namespaces.
``container``  for a grader running as root in a per-submission container where namespaces are refused
               (Gradescope's): a user id of its own, the same limits, a seccomp filter instead of a network
               namespace, the grader's files protected by their permissions (see ``container``).
``unsafe``     no isolation at all (``--unsafe``): only time, CPU and memory limits.
=============  ===================================================================================================

``grade`` uses bubblewrap unless told otherwise (``--sandbox``); ``run-autograder`` (Gradescope) uses
``choose("auto")``: bubblewrap if it works in the container, else the container backend.
"""

from __future__ import annotations

from lecture_grading.grader.sandbox import bubblewrap, container
from lecture_grading.grader.sandbox.base import (
    SANDBOX_UID,
    Options,
    SandboxFailed,
    SandboxUnavailable,
    Session,
    Stop,
)
from lecture_grading.grader.sandbox.bubblewrap import Bubblewrap
from lecture_grading.grader.sandbox.container import Container
from lecture_grading.grader.sandbox.unsafe import WARNING as UNSAFE_WARNING
from lecture_grading.grader.sandbox.unsafe import Unsafe

BACKENDS: dict[str, type[Session]] = {"bubblewrap": Bubblewrap, "container": Container, "unsafe": Unsafe}

__all__ = ["BACKENDS", "SANDBOX_UID", "UNSAFE_WARNING", "Bubblewrap", "Container", "Options", "SandboxFailed",
           "SandboxUnavailable", "Session", "Stop", "Unsafe", "choose"]


def choose(name: str = "auto") -> type[Session]:
    """The backend class for ``name`` ("auto", "bubblewrap", "container", "unsafe"); SandboxUnavailable, with
    what to do, if it cannot run here."""
    if name == "auto":
        if bubblewrap.problem() is None:
            return Bubblewrap
        if container.problem() is None:
            return Container
        raise SandboxUnavailable(f"cannot grade: {bubblewrap.problem()}, and {container.problem()}")
    if name not in BACKENDS:
        raise ValueError(f"unknown sandbox {name!r}: choose from auto, {', '.join(BACKENDS)}")
    why = {"bubblewrap": bubblewrap.problem, "container": container.problem}.get(name, lambda: None)()
    if why:
        hint = (" (as root inside a per-submission container: --sandbox container; or grade with --unsafe, see "
                "assignments/README.md)") if name == "bubblewrap" else ""
        raise SandboxUnavailable(f"cannot grade: {why}{hint}")
    return BACKENDS[name]
