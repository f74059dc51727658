"""Time the lecture as `make lecture` runs it, several times, and print the per-notebook table the README quotes
(issue 15, part 2: min / median / max over the runs, the wall clock of each run, and the budget).

    python -m tools.lecture_times --data DIR --runs 3            # DIR holds cifar-10-batches-py (real CIFAR-10)

Each run is ``python -m tools.outputs --data DIR --out build/times/run-K`` in its own process: every notebook in full
mode in a fresh kernel, two at a time on a machine with two or more cores, the schedule of `make lecture`.  The
committed notebooks are not touched.  The table is printed as Markdown; ``--json`` also writes the raw seconds.
Exit status 1 when a run failed or broke the budget (600 s wall, 240 s for any notebook).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tools import outputs

ROOT = outputs.ROOT
#: The budget of issue 15: the whole lecture, and any one notebook, in seconds of wall clock.
BUDGET_WALL, BUDGET_NOTEBOOK = 600.0, 240.0
LINE = re.compile(r"^\s*(\d+\.\d)\s+(\d\d_\S+\.ipynb)")
WALL = re.compile(r"seconds of notebooks, (\d+\.\d) s wall clock")


def parse(stdout: str) -> tuple[dict[str, float], float | None]:
    """({notebook stem: seconds}, wall seconds) from the output of ``tools.outputs``."""
    times = {m[2][: -len(".ipynb")]: float(m[1]) for m in map(LINE.match, stdout.splitlines()) if m}
    wall = WALL.search(stdout)
    return times, float(wall[1]) if wall else None


def table(runs: list[tuple[dict[str, float], float]]) -> str:
    """The Markdown table: one row per notebook (min / median / max seconds), then the wall clock."""
    names = sorted({n for times, _ in runs for n in times})
    k = len(runs)
    lines = [f"| notebook | min | median | max (s, {k} runs) |", "|---|---|---|---|"]
    for n in names:
        xs = [times[n] for times, _ in runs if n in times]
        lines.append(f"| {n} | {min(xs):.0f} | {statistics.median(xs):.0f} | {max(xs):.0f} |")
    walls = [w for _, w in runs]
    lines.append(f"| **wall clock, all ten (2 at a time)** | **{min(walls):.0f}** | **{statistics.median(walls):.0f}** "
                 f"| **{max(walls):.0f}** |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=os.environ.get("LECTURE_DATA_DIR") or None,
                        help="folder holding cifar-10-batches-py/ (default: LECTURE_DATA_DIR)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "times")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw seconds here")
    args = parser.parse_args(argv)
    if args.data is None:
        parser.error("give --data DIR (or LECTURE_DATA_DIR): the lecture is timed on real CIFAR-10")
    runs, ok = [], True
    for k in range(1, args.runs + 1):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "tools.outputs", "--data", str(args.data), "--out",
                               str(args.out / f"run-{k}")], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
        times, wall = parse(done.stdout)
        wall = wall if wall is not None else time.perf_counter() - start
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"run {k}: {wall:.0f} s wall, {len(times)} notebooks, exit {done.returncode}, load {load:.1f} after",
              flush=True)  # fmt: skip
        if done.returncode != 0 or len(times) < len(outputs.NOTEBOOKS):
            ok = False
            print(done.stdout[-2000:] + done.stderr[-2000:], file=sys.stderr)
        runs.append((times, wall))
    print(table(runs))
    worst = max((s for times, _ in runs for s in times.values()), default=0.0)
    over = max(w for _, w in runs) > BUDGET_WALL or worst > BUDGET_NOTEBOOK
    print(f"budget: {BUDGET_WALL:.0f} s wall, {BUDGET_NOTEBOOK:.0f} s per notebook: "
          f"{'BROKEN' if over else 'kept'} (longest notebook {worst:.0f} s)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps([{"wall": w, "notebooks": t} for t, w in runs], indent=1) + "\n")
    return 0 if ok and not over else 1


if __name__ == "__main__":
    sys.exit(main())
