"""`make outputs`: run every notebook in full mode on real CIFAR-10 and store its outputs in the .ipynb, so
that a reader on GitHub, in Colab or on the course website sees what a student will get.

    python -m tools.outputs --data /path/to/folder-with-cifar-10-batches-py          # all notebooks, in place
    python -m tools.outputs --data DIR notebooks/07_batchnorm_training.ipynb        # one notebook
    python -m tools.outputs --data DIR --out build/executed                          # executed copies elsewhere

It refuses, before running anything, to store outputs that are not the lecture's: quick mode
(``LECTURE_QUICK``), synthetic data (``LECTURE_SYNTHETIC``), or a data-dependent notebook without real CIFAR-10
files under ``--data``.  Files that are not the official release (e.g. built from ../shared/data) need
``LECTURE_VERIFY_DATA=0``; each notebook's banner then says so.  Every notebook runs in a fresh kernel from its
own folder; the run time of each is printed, and a failing notebook is reported and left unchanged.  The
notebooks compute on one CPU thread each (their layers are small), so ``--jobs 2`` (the default on a machine with
two or more cores) runs two of them at a time, each from its own process, longest first; cells of 10 s or more are
listed after each notebook's time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from lecture_utils import atomic
from tools import timings

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
#: A notebook that reads CIFAR-10 says so with one of these calls.
USES_DATA = re.compile(r"\bdata\.(source_line|load_split_tensors|tensor_data|cifar10|cifar10_dataset)\(")


def uses_data(nb_path: Path) -> bool:
    """True when the notebook reads CIFAR-10 (its outputs then depend on the data)."""
    nb = nbformat.read(nb_path, as_version=4)
    return any(USES_DATA.search(c.source) for c in nb.cells if c.cell_type == "code")


def refusal(data_dir: Path | None, notebooks: list[Path], env: dict) -> str | None:
    """Why these outputs would not be the lecture's, or None when they would."""
    for flag in ("LECTURE_QUICK", "LECTURE_SYNTHETIC"):
        if env.get(flag, "").strip().lower() in {"1", "true", "yes", "on"}:
            return f"{flag} is set: committed outputs must come from a full run on real CIFAR-10. Unset it."
    needing = [nb.name for nb in notebooks if uses_data(nb)]
    if not needing:
        return None
    if data_dir is None:
        return (f"{', '.join(needing)} read CIFAR-10: pass --data DIR (or LECTURE_DATA_DIR=DIR), DIR holding "
                "cifar-10-batches-py/ with the real images (build it from ../shared/data/make_real_cifar10.py).")
    folder = data_dir / "cifar-10-batches-py"
    missing = [n for n in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta") if not (folder / n).is_file()]
    if missing:
        return f"{folder} lacks {', '.join(missing)}: no real CIFAR-10 there, so no outputs for {', '.join(needing)}."
    if (folder / "SYNTHETIC.json").is_file():
        return f"{folder} holds generated synthetic data, not CIFAR-10."
    return None


def cell_seconds(cell) -> float | None:
    """Seconds a cell executed (from nbclient's timing metadata), or None."""
    when = cell.metadata.get("execution", {})
    try:
        start, end = when["iopub.execute_input"], when["shell.execute_reply"]
    except KeyError:
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def execute(nb_path: Path, out_path: Path, timeout: int) -> tuple[float, list[tuple[int, float]]]:
    """Run ``nb_path`` in a fresh kernel (cwd = its folder) and write it with its outputs to ``out_path``;
    return its seconds and (cell number, seconds) of the cells that took 10 s or more."""
    nb = nbformat.read(nb_path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=True,
                            resources={"metadata": {"path": str(nb_path.parent)}})  # fmt: skip
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    slow = [(i, t) for i, c in enumerate(nb.cells) if (t := cell_seconds(c)) is not None and t >= 10]
    timings.record(nb, out_path)  # every cell's seconds, for the teaching guide (tools/timings.py)
    for cell in nb.cells:  # no per-cell timestamps or kernel noise in the committed file
        cell.metadata.pop("execution", None)
    with atomic.replace(out_path) as tmp:
        nbformat.write(nb, tmp)
    return seconds, slow


#: Seconds each notebook takes alone in full mode on 2 CPU cores (measured); used only to order the runs.
EXPECTED_SECONDS = {"01": 10, "02": 10, "03": 12, "04": 17, "05": 33, "06": 47, "07": 170, "08": 180, "09": 125, "10": 130}


def schedule(notebooks: list[Path]) -> list[Path]:
    """The order in which two workers take the notebooks: the longest first, next to the short ones (two training
    notebooks side by side slowed each other down, each up to 2x on the 2-core machine, although each computes on
    one thread), then the rest longest first."""
    if not notebooks:
        return []
    cost = {p: EXPECTED_SECONDS.get(p.name[:2], 60) for p in notebooks}
    first, *rest = sorted(notebooks, key=lambda p: -cost[p])
    return [first] + sorted((p for p in rest if cost[p] < 60), key=cost.get) + [p for p in rest if cost[p] >= 60]


def run_one(nb_path: Path, out_path: Path, timeout: int) -> tuple[Path, float | None, str]:
    """(notebook, seconds or None, its slowest cells or why it failed). A kernel that hangs or dies (not the
    notebook's fault) gets one more try; a failing cell does not."""
    for attempt in (1, 2):
        try:
            seconds, slow = execute(nb_path, out_path, timeout)
            return nb_path, seconds, ", ".join(f"cell {i} {t:.0f} s" for i, t in slow)
        except CellExecutionError as err:
            plain = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # the traceback's colours
            lines = [ln for ln in plain.strip().splitlines() if ln.strip()]
            return nb_path, None, lines[-1] if lines else type(err).__name__
        except (CellTimeoutError, DeadKernelError) as err:
            if attempt == 2:
                return nb_path, None, f"{type(err).__name__} twice: {(str(err).strip().splitlines() or [''])[0][:200]}"
            print(f"  retrying {nb_path.name}: {type(err).__name__}", flush=True)
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Store full-mode, real-data outputs in the lecture notebooks.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--data", type=Path, default=os.environ.get("LECTURE_DATA_DIR") or None,
                        help="folder holding cifar-10-batches-py/ (default: LECTURE_DATA_DIR)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="write executed copies here instead of in place")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (the longest takes ~70 s)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="notebooks run at the same time (each computes on one thread; default min(2, cores))")  # fmt: skip
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or NOTEBOOKS
    data_dir = args.data.expanduser().resolve() if args.data else None
    env = {k: v for k, v in os.environ.items()}
    why = refusal(data_dir, notebooks, env)
    if why:
        print(f"make outputs: refused. {why}", file=sys.stderr)
        return 2
    if data_dir is not None:
        env["LECTURE_DATA_DIR"] = str(data_dir)
    os.environ.update(env)  # every kernel inherits this process's environment
    order = schedule(notebooks)

    start = time.perf_counter()
    print(f"{'seconds':>8}  notebook   ({args.jobs} at a time)", flush=True)
    results = {}
    outs = [(args.out / p.name) if args.out else p for p in order]
    # one process per notebook run: a client that hangs on its kernel holds up nothing but its own notebook
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        for nb_path, seconds, why in pool.map(run_one, order, outs, [args.timeout] * len(order)):
            results[nb_path] = (seconds, why)
            print(f"{seconds:8.1f}  {nb_path.name}  {why}" if seconds is not None
                  else f"  FAILED  {nb_path.name}: {why} (left unchanged)", flush=True)  # fmt: skip
    failed = sum(1 for s_, _ in results.values() if s_ is None)
    total = sum(s_ for s_, _ in results.values() if s_ is not None)
    print(f"{total:8.1f}  seconds of notebooks, {time.perf_counter() - start:.1f} s wall clock; "
          f"{len(notebooks) - failed} written, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
