"""The step protocol between the grader and the runner in the sandbox; both ends import this module.

Grader to runner, on the runner's stdin, one JSON object per line, one at a time:

* ``{"id": 7, "cell": "<source>"}``: run a code cell of the notebook (IPython semantics);
* ``{"id": 8, "test": {...}}``: run a test's *given* and *call* parts (``checks.TestSpec.to_dict()``, the
  check part left out) in a copy of the notebook's namespace;
* ``{"id": 0, "end": true}``: exit (the grader does not send it: once it has its answers it kills the sandbox).

Runner to grader, on its own descriptor (``--fd``), one JSON object per line, followed by ``blob`` raw bytes
when the object says so:

* ``{"ready": true, "exposed": [...]}`` once, when the runner has started (before any of the notebook's code);
  ``exposed`` lists the paths it was asked about (``--private``) and could read: none, or grading fails;
* ``{"id": 7, "ok": true}`` or ``{"id": 7, "ok": false, "error": "NameError: ...", "limit": null}`` for a
  cell, where ``limit`` names a limit the error shows the process ran into (``limit_of``);
* ``{"id": 8, "ok": true, "result": {"data": ..., "tensor_bytes": n}, "blob": n}`` and then the n bytes of the
  result's tensors (``wire.dumps``: safetensors), or ``{"id": 8, "ok": false, "error": ..., "limit": ...}``.

The grader trusts none of it: the runner is the student's process.  ``Reader`` only ever parses data (JSON and
byte counts), skips what is not a well-formed message, and refuses a blob larger than ``MAX_BLOB``.
"""

from __future__ import annotations

import errno
import json

MAX_BLOB = 512 << 20  # bytes of tensors one answer may carry
MAX_BUFFER = 512 << 20  # bytes of unanswered data the grader keeps before it stops the sandbox


def step(sid: int, **payload) -> bytes:
    """One step for the runner, as the line the grader writes."""
    return json.dumps({"id": sid, **payload}).encode() + b"\n"


def answer(message: dict, blob: bytes = b"") -> bytes:
    """One answer of the runner: its JSON line, then ``blob`` (a test's tensors) if any."""
    if blob:
        message = {**message, "blob": len(blob)}
    return json.dumps(message).encode() + b"\n" + blob


def limit_of(exc: BaseException) -> str | None:
    """The limit an exception shows its process ran into: ``"memory"`` (RLIMIT_DATA: MemoryError),
    ``"process"`` (RLIMIT_NPROC: a fork or thread refused with EAGAIN), ``"disk"`` (RLIMIT_FSIZE or a full
    /tmp), or None for an ordinary error.  By type and errno; by the words only of the two RuntimeErrors that
    threading and torch's allocator raise for a refused resource."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, OSError):
        if exc.errno in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
            return "disk"
        if exc.errno == errno.EAGAIN:  # fork(), clone(): RLIMIT_NPROC
            return "process"
    if isinstance(exc, RuntimeError):  # two libraries report a refused resource as a RuntimeError, in set words:
        text = str(exc)
        if text.startswith("can't start new thread"):
            return "process"  # threading, for pthread_create's EAGAIN
        if "DefaultCPUAllocator: can't allocate memory" in text:
            return "memory"  # torch's CPU allocator, for malloc's ENOMEM
    return None


class Reader:
    """Reassembles the runner's messages from the bytes of its descriptor, as they come."""

    def __init__(self):
        self.buffer = bytearray()
        self._pending: tuple[dict, int] | None = None

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk

    @property
    def overflowing(self) -> bool:
        return len(self.buffer) > MAX_BUFFER

    def messages(self):
        """Every complete message so far (a blob's bytes in ``message["blob"]``); junk lines are skipped."""
        while self._pending is not None or b"\n" in self.buffer:
            if self._pending is None:
                end = self.buffer.index(b"\n")
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                try:
                    msg = json.loads(line)
                except (ValueError, RecursionError):
                    continue  # not the runner's: ignore
                if type(msg) is not dict:
                    continue
                size = msg.get("blob", 0)
                if type(size) is not int or not 0 <= size <= MAX_BLOB:
                    continue
                self._pending = (msg, size)
            msg, size = self._pending
            if len(self.buffer) < size:
                return  # its bytes are still coming
            if size:
                msg["blob"] = bytes(self.buffer[:size])
                del self.buffer[:size]
            self._pending = None
            yield msg
