"""Files that hold the old version or the new one, never half of one (checkpoints, the synthetic data set, executed
notebooks, grade reports; taught nowhere, notebook 07 relies on it).

    with atomic.replace("ckpt.pt") as tmp:      # a temporary path next to the target, named for this process
        torch.save(state, tmp)                  # write it: a file, or a folder (tmp.mkdir() first)
    # here the file was flushed to disk (fsync) and renamed over ckpt.pt in one step (os.replace)

    atomic.write_text("scores.csv", text)       # the same for a text

* The temporary is ``.<name>.<pid>.tmp`` in the target's folder (``os.replace`` is atomic only within one file
  system); a thread other than the main one adds its id, ``.<name>.<pid>-<thread>.tmp``, so that threads of one
  process (a grader writing its CSV as each submission finishes) never share a temporary.
* If the block raises, the temporary is removed and the target is left as it was.
* If the process is killed (SIGKILL, a power cut), nothing can clean up: the temporary stays behind.  The next
  writer of the same target removes every temporary whose pid no longer runs (:func:`remove_dead_temporaries`).
* A folder replaces a folder in two steps (the old one is removed first): a crash between them leaves no folder,
  never a half-written one.

This module imports nothing heavy (no torch), so repository tools can use it too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path


def temporary(path: Path | str, pid: int | None = None) -> Path:
    """Where process ``pid`` (default: this one, and this thread if it is not the main one) writes ``path`` before
    renaming it: ``.<name>.<pid>.tmp`` (or ``.<name>.<pid>-<thread>.tmp``) next to it."""
    path = Path(path)
    if pid is None:
        pid = os.getpid()
        if threading.current_thread() is not threading.main_thread():
            pid = f"{pid}-{threading.get_ident()}"
    return path.parent / f".{path.name}.{pid}.tmp"


def writer_alive(pid: str) -> bool:
    """Whether the process ``pid`` (a string, from a temporary's name) still runs; not a number: not alive."""
    if not pid.isdigit() or int(pid) == os.getpid():
        return pid.isdigit()
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_dead_temporaries(path: Path | str) -> None:
    """Remove the temporaries of ``path`` that writers killed before they could rename them left behind (their pid,
    in the name, no longer runs).  A live writer's temporary, and this process's own, are kept."""
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")].split("-")[0]  # without the thread
        if pid != str(os.getpid()) and not writer_alive(pid):
            _remove(tmp)


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


@contextlib.contextmanager
def replace(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block ends without an error, flush the file to disk and
    rename it over ``path`` (a folder: remove the old folder, then rename).  On an error the temporary is removed
    and ``path`` is untouched.  The target's folder is created if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temporaries(path)
    tmp = temporary(path)
    _remove(tmp)  # a leftover of this very pid (an earlier write that was interrupted in this process)
    try:
        yield tmp
        _fsync(tmp)
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)  # os.replace cannot replace a folder that is not empty
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def write_text(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically: readers see the old file or the new one."""
    with replace(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            f.write(text)
    return Path(path)
