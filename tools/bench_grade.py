"""What grading a submission costs, next to what running the notebook costs: ``make bench-grade``.

    python -m tools.bench_grade [--rounds 3]              the ratio, and the profile, per assignment
    python -m tools.bench_grade --many 200 --jobs 2       a folder of N solved copies of assignment 1

For each assignment, ``--rounds`` times, interleaved (so that both sides see the same load):

* **notebook**: the reference solution notebook run top to bottom in a fresh kernel (nbclient), torch on one
  thread, the way a student's "Run all" costs it: kernel start, imports, every cell, its plots;
* **grade**: ``python -m lecture_grading.grader grade`` on the same notebook in a fresh process, as one
  Gradescope submission costs it: the grader's start and imports, the sandbox, every cell up to the last check,
  the tests, the judging.  Its peak memory is the sum of its processes' proportional set sizes (grader and sandbox; a page
  they share counts once), sampled every 0.05 s.

The ratio is median(grade) / median(notebook).  The profile splits one grading (``Grade.profile``, run in this
process) into its phases.  ``--many`` grades N copies of the solved assignment 1 with ``--jobs`` at a time
and reports the wall time, the rate, and the load average before and after (the machine may be shared).
CPU time is the sum over the grader's processes (the sandboxes' too), sampled like the memory.
Benchmarks live here, outside the tests: times are only compared within one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = ("01_initialization", "02_batchnorm")


def run_notebook(path: Path) -> float:
    """Seconds to run the notebook in a fresh kernel (its own folder, one torch thread)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    start = time.monotonic()
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   allow_errors=False).execute()
    return time.monotonic() - start


def grade_cli(path: Path, dist: Path, *extra: str) -> tuple[float, int, str, float]:
    """Seconds, peak memory (bytes, all its processes together), output and CPU seconds (all its processes)
    of one ``grade`` run."""

    from lecture_grading.grader.sandbox.base import descendants, memory_of  # PSS: shared pages count once

    cmd = [sys.executable, "-m", "lecture_grading.grader", "grade", str(path), "--dist", str(dist), *extra]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, ticks = [0], {}

    def sample():
        while proc.poll() is None:
            pids = descendants(proc.pid)
            peak[0] = max(peak[0], memory_of(pids))
            for pid in pids:  # CPU time so far of each process (utime + stime, clock ticks)
                try:
                    with open(f"/proc/{pid}/stat", "rb") as f:
                        fields = f.read().rsplit(b")", 1)[1].split()
                    ticks[pid] = max(ticks.get(pid, 0), int(fields[11]) + int(fields[12]))
                except (OSError, ValueError, IndexError):
                    continue
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    seconds = time.monotonic() - start
    sampler.join()
    cpu = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")  # sampled: the last 0.05 s of each process is missed
    if proc.returncode:
        raise RuntimeError(f"grading failed ({proc.returncode}): {out[-2000:]}")
    return seconds, peak[0], out, cpu


def profile(path: Path, dist: Path) -> dict[str, float]:
    from lecture_grading.grader.grade import grade

    g = grade(path, dist=dist)
    if not g.graded or g.total != g.possible:
        raise RuntimeError(f"the reference solution did not score full marks: {g.status} {g.error}")
    return {**g.profile, "total": g.seconds}


def ratio(rounds: int, work: Path, dist: Path) -> None:
    from lecture_grading.grader.grade import PHASES

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPU cores")
    for name in ASSIGNMENTS:
        folder = work / name
        folder.mkdir()
        nb = folder / f"{name}.ipynb"
        shutil.copy(dist / name / "autograder" / f"{name}.ipynb", nb)
        notebook, grading, peaks, cpus = [], [], [], []
        for _ in range(rounds):
            notebook.append(run_notebook(nb))
            seconds, peak, _, cpu = grade_cli(nb, dist)
            grading.append(seconds)
            peaks.append(peak)
            cpus.append(cpu)
        prof = profile(nb, dist)
        n, g = statistics.median(notebook), statistics.median(grading)
        print(f"\n{name}: notebook alone {n:.1f} s, grading {g:.1f} s (medians of {rounds}, interleaved): "
              f"ratio {g / n:.2f}; peak memory while grading {max(peaks) / 2**20:.0f} MiB (grader + sandbox)")
        print(f"  notebook runs {', '.join(f'{x:.1f}' for x in notebook)} s; gradings "
              f"{', '.join(f'{x:.1f}' for x in grading)} s")
        cpu = statistics.median(cpus)
        print(f"  CPU time of a grading (grader and sandbox): {cpu:.1f} s; on Gradescope's default half a virtual "
              f"CPU that is at least {2 * cpu:.0f} s")
        print(f"  profile of one grading in this process ({prof['total']:.2f} s; grader and sandbox start overlap):")
        for key, what in PHASES.items():
            if key in prof:
                print(f"    {key:<15} {prof[key]:6.2f} s  {what}")
        if name == ASSIGNMENTS[0]:  # what a stopped cell costs: the same notebook with os._exit in question 3
            import nbformat

            stopped = nbformat.read(nb, as_version=4)
            at = next(i for i, c in enumerate(stopped.cells) if "def init_module_(" in c.source)
            stopped.cells.insert(at + 1, nbformat.v4.new_code_cell("import os\nos._exit(0)"))
            path = folder / "stopped" / nb.name
            path.parent.mkdir()
            nbformat.write(stopped, path)
            from lecture_grading.grader.grade import grade

            g = grade(path, dist=dist)
            print(f"  with a cell that ends the process in question 3 ({g.total:g} / {g.possible:g}, "
                  f"{g.sessions} sandboxes, {g.seconds:.2f} s): replays {g.profile.get('replays', 0):.2f} s")
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def many(count: int, jobs: int, work: Path, dist: Path) -> None:
    import csv

    name = ASSIGNMENTS[0]
    folder = work / "submissions"
    for k in range(count):
        (folder / f"student{k:03d}").mkdir(parents=True)
        shutil.copy(dist / name / "autograder" / f"{name}.ipynb", folder / f"student{k:03d}" / f"{name}.ipynb")
    before = os.getloadavg()
    seconds, peak, _, cpu = grade_cli(folder, dist, "--jobs", str(jobs), "--csv", str(work / "scores.csv"),
                                      "--no-progress")
    after = os.getloadavg()
    with open(work / "scores.csv", newline="") as f:
        totals = [row["total"] for row in csv.DictReader(f)]
    assert totals == ["12"] * count, f"not every copy scored 12: {sorted(set(totals))}"
    print(f"{count} copies of the solved {name}, --jobs {jobs}: {seconds / 60:.1f} min "
          f"({seconds / count:.2f} s per submission, {count / seconds * 60:.1f} per minute); all scored 12; "
          f"peak memory {peak / 2**30:.2f} GiB; CPU time {cpu / count:.2f} s per submission")
    print(f"load average (1, 5, 15 min) before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
          f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--many", type=int, help="grade this many copies of the solved assignment 1")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ.update({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})  # the kernel: one thread, like the grader
    from lecture_grading.grader import build

    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        work = Path(tmp)
        dist = work / "dist"
        build.build(ROOT / "assignments", dist)
        if args.many:
            many(args.many, args.jobs, work, dist)
        else:
            ratio(args.rounds, work, dist)
    return 0


if __name__ == "__main__":
    sys.exit(main())
