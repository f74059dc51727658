"""How long each cell of the lecture takes in full mode: measured by ``make outputs`` / ``make lecture``, read by
the teaching guide (tools/teaching.py).

tools/outputs.py runs every notebook with nbclient's ``record_timing`` and, before it strips those per-cell
timestamps from the notebook it writes, calls :func:`record`, which stores the seconds of every code cell in
``timings.json`` next to the written notebook (``notebooks/timings.json`` for ``make outputs``,
``build/executed/timings.json`` for ``make lecture``).  Each cell is keyed by the SHA-256 of its source, so a cell
that was edited after the run has no time (the guide says so instead of showing a stale number).  Two notebooks
may finish at once (``make outputs`` runs two at a time): writers take a lock on the folder.

Each notebook's entry also says when it ran, on which CPU, the load average when it ended, and the lecture's mode
variables, so that a reader can tell under what conditions the numbers were taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import socket
from datetime import datetime
from importlib import metadata
from pathlib import Path

FILE = "timings.json"


def source_key(source: str) -> str:
    """The key of a cell's timing: SHA-256 of its source (first 16 hex digits)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def cell_seconds(cell) -> float | None:
    """Seconds a cell executed (nbclient's timing metadata: execute_input to execute_reply), or None."""
    when = cell.get("metadata", {}).get("execution", {})
    try:
        return (_parse(when["shell.execute_reply"]) - _parse(when["iopub.execute_input"])).total_seconds()
    except (KeyError, ValueError):
        return None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def entry(nb) -> dict:
    """The timing entry of an executed notebook (cells executed with ``record_timing``)."""
    cells, stamps = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        seconds = cell_seconds(cell)
        if seconds is None:
            continue
        when = cell.metadata["execution"]
        stamps += [when["iopub.execute_input"], when["shell.execute_reply"]]
        cells.append({"index": index, "source": source_key(cell.source), "seconds": round(seconds, 3)})
    if not cells:
        raise ValueError("no cell has nbclient's timing metadata: execute with NotebookClient(record_timing=True)")
    started, ended = min(stamps, key=_parse), max(stamps, key=_parse)
    return {
        "started": started,
        "ended": ended,
        "seconds": round(sum(c["seconds"] for c in cells), 1),
        "cpu": _cpu(),
        "cpus": os.cpu_count(),
        "host": socket.gethostname(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "torch": _version("torch"),
        "env": {k: os.environ.get(k, "") for k in ("LECTURE_QUICK", "LECTURE_SYNTHETIC", "LECTURE_DEVICE")},
        "cells": cells,
    }


@contextlib.contextmanager
def _locked(folder: Path):
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def record(nb, nb_path: Path) -> Path:
    """Store the cell times of the executed ``nb`` (to be written at ``nb_path``) in ``timings.json`` beside it;
    the entries of the other notebooks are kept.  Returns the file's path."""
    folder = Path(nb_path).resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    new = entry(nb)
    with _locked(folder):
        data = load(folder)
        data["notebooks"][Path(nb_path).stem] = new
        data["notebooks"] = dict(sorted(data["notebooks"].items()))
        tmp = folder / f".{FILE}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)
    return path


def load(folder: Path) -> dict:
    """The timings stored in ``folder`` (``{"notebooks": {}}`` when there are none)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return {"about": __doc__.split("\n\n")[0].replace("\n", " "), "notebooks": {}}
    data = json.loads(path.read_text())
    if not isinstance(data.get("notebooks"), dict):
        raise ValueError(f"{path}: not a timings file (no 'notebooks' mapping); delete it and run make outputs")
    return data


def seconds_of(timings: dict, notebook: str, source: str) -> float | None:
    """Measured seconds of the cell of ``notebook`` whose source is ``source``; None if that source was not run."""
    key = source_key(source)
    for cell in timings.get("notebooks", {}).get(notebook, {}).get("cells", []):
        if cell["source"] == key:
            return cell["seconds"]
    return None


def overlapping(timings: dict, notebook: str) -> list[str]:
    """The notebooks whose run overlapped ``notebook``'s (``make outputs`` runs two at a time)."""
    runs = timings.get("notebooks", {})
    me = runs.get(notebook)
    if not me:
        return []
    start, end = _parse(me["started"]), _parse(me["ended"])
    return [name for name, other in runs.items()
            if name != notebook and _parse(other["started"]) < end and _parse(other["ended"]) > start]  # fmt: skip
