"""Seccomp filters (classic BPF) built here, without libseccomp: the few system calls a sandbox refuses.

``no_network()`` is what the container backend's runner installs before it drops its privileges: a socket of
any family but ``AF_UNIX`` fails with EACCES, and ``io_uring_setup`` (whose ring can open sockets without the
``socket`` call) with EPERM.  Gradescope's containers reach the network, and its documentation suggests exactly
this kind of filter ("Restrict OS-Level Features", https://gradescope-autograders.readthedocs.io/en/latest/best_practices/).

``no_namespaces()`` is what Docker's default seccomp profile does to a process without CAP_SYS_ADMIN (new
namespaces refused; ``clone3``, whose flags a filter cannot read, answered ENOSYS so that the C library falls
back to ``clone``); the tests use it to build a container in which bubblewrap cannot start.

A filter is a list of ``Rule``s for x86_64 and aarch64 (other architectures: ``Unsupported``).  A process
of another ABI (i386, x32) is killed or refused, so that no rule can be dodged by a second syscall table.
``install`` sets ``no_new_privs`` (setuid programs then give no privileges) and loads the filter for the
calling thread and everything it starts.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass

# <linux/audit.h>, <linux/seccomp.h>, <linux/filter.h>
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SYSCALLS = {
    "x86_64": {"socket": 41, "clone": 56, "unshare": 272, "setns": 308, "io_uring_setup": 425, "clone3": 435},
    "aarch64": {"socket": 198, "clone": 220, "unshare": 97, "setns": 268, "io_uring_setup": 425, "clone3": 435},
}
X32_BIT = 0x40000000
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data (little-endian: arg 0's low word)
AF_UNIX = 1
CLONE_NEW_ANY = 0x7E020080  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


class Unsupported(RuntimeError):
    """No filter for this machine's architecture."""


@dataclass(frozen=True)
class Rule:
    """``syscall`` answers ``errno``: always (``when`` "always"), when its first argument is not one of
    ``values`` ("arg0 not in"), or when it has any bit of ``values[0]`` ("arg0 has bits")."""

    syscall: str
    errno: int
    when: str = "always"
    values: tuple[int, ...] = ()


def no_network() -> list[Rule]:
    return [Rule("socket", errno.EACCES, "arg0 not in", (AF_UNIX,)), Rule("io_uring_setup", errno.EPERM)]


def no_namespaces() -> list[Rule]:
    return [Rule("unshare", errno.EPERM, "arg0 has bits", (CLONE_NEW_ANY,)),
            Rule("clone", errno.EPERM, "arg0 has bits", (CLONE_NEW_ANY,)),
            Rule("setns", errno.EPERM), Rule("clone3", errno.ENOSYS)]


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(rules: list[Rule], arch: str | None = None) -> bytes:
    """The BPF program (an array of ``struct sock_filter``) for ``rules`` on ``arch`` (default: this one)."""
    arch = arch or platform.machine()
    if arch not in AUDIT_ARCH:
        raise Unsupported(f"no seccomp filter for the {arch} architecture")
    out = [_ins(LD_W_ABS, OFFSET_ARCH), _ins(JEQ_K, AUDIT_ARCH[arch], jt=1), _ins(RET_K, RET_KILL_PROCESS)]
    if arch == "x86_64":  # the x32 ABI's calls carry this bit: refuse them all
        out += [_ins(LD_W_ABS, OFFSET_NR), _ins(JGE_K, X32_BIT, jf=1), _ins(RET_K, RET_ERRNO | errno.ENOSYS)]
    for rule in rules:
        deny = _ins(RET_K, RET_ERRNO | rule.errno)
        if rule.when == "always":
            rest = [deny]
        elif rule.when == "arg0 has bits":
            rest = [_ins(LD_W_ABS, OFFSET_ARG0), _ins(JSET_K, rule.values[0], jf=1), deny]
        elif rule.when == "arg0 not in":
            n = len(rule.values)
            rest = [_ins(LD_W_ABS, OFFSET_ARG0)]
            rest += [_ins(JEQ_K, v, jt=n - i) for i, v in enumerate(rule.values)]  # to the ALLOW after deny
            rest += [deny, _ins(RET_K, RET_ALLOW)]
        else:
            raise ValueError(f"unknown condition {rule.when!r}")
        # Not this call: skip the rule's block (a block that does not return falls through to the next rule).
        out += [_ins(LD_W_ABS, OFFSET_NR), _ins(JEQ_K, SYSCALLS[arch][rule.syscall], jf=len(rest)), *rest]
    out.append(_ins(RET_K, RET_ALLOW))
    return b"".join(out)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(rules: list[Rule]) -> None:
    """Set no_new_privs and load the filter for ``rules`` (OSError if the kernel refuses)."""
    prog = program(rules)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS): " + os.strerror(ctypes.get_errno()))
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = _SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP): " + os.strerror(ctypes.get_errno()))
