"""Count kernel hangs: execute notebooks many times, as `make lecture` and `make test` do, and count the executions
in which a kernel stopped answering (issue 15, part 1).

    python -m tools.hangs --repeat 5 --jobs 2                          # every notebook 5x in quick mode, 2 at a time
    python -m tools.hangs --mode full --data DIR --repeat 2 notebooks/05_initialization_at_depth.ipynb
    python -m tools.hangs --executor nbval --repeat 3 notebooks/05_*.ipynb    # through nbval, as `make test` does
    python -m tools.hangs --stock --repeat 3 notebooks/05_*.ipynb      # nbclient's own client: shows the bug

Each execution runs in its own process and a fresh kernel, ``--jobs`` at a time.  With ``--executor nbclient``
(``make lecture``'s client, :class:`tools.outputs.LectureClient`) the watchdog names every hang: a kernel that
finished a cell whose reply was never read, or a kernel silent and idle for ``--silence`` seconds; ``--stock`` swaps
in nbclient's own shell channel (the one that misses replies) so that the count shows what the fix changed.  With
``--executor nbval`` (``pytest --nbval-lax``, ``make test``'s executor) a hang is a cell that runs into
``--cell-timeout``.  Quick mode is ``LECTURE_QUICK=1 LECTURE_SYNTHETIC=1`` (data generated into a temporary folder);
full mode needs ``--data`` (real CIFAR-10).  One JSON line per execution goes to ``--log``; the summary counts
executions, hangs and other failures per mode and notebook.  Exit status 1 when any execution hung.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tools import outputs


def _execute_nbclient(nb_path: Path, env: dict, stock: bool, silence: float, timeout: int) -> dict:
    import nbformat
    from jupyter_client.asynchronous import AsyncKernelClient
    from nbclient.exceptions import CellExecutionError

    os.environ.clear()
    os.environ.update(env)
    nb = nbformat.read(nb_path, as_version=4)
    client = outputs.LectureClient(nb, timeout=timeout, kernel_name="python3", silence=silence,
                                   resources={"metadata": {"path": str(nb_path.parent)}})  # fmt: skip
    if stock:  # nbclient's own kernel client, whose shell channel sends behind pyzmq's back
        client.create_kernel_manager = lambda: _with_client(outputs.NotebookClient.create_kernel_manager(client),
                                                            AsyncKernelClient)  # fmt: skip
    try:
        client.execute()
    except outputs.KernelHangError as err:
        return {"outcome": "hang", "why": str(err)}
    except CellExecutionError as err:
        lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
        return {"outcome": "error", "why": lines[-1][:300] if lines else type(err).__name__}
    except Exception as err:  # a timeout, a dead kernel: not a hang the watchdog saw, but a failure all the same
        return {"outcome": "error", "why": f"{type(err).__name__}: {str(err).strip()[:300]}"}
    return {"outcome": "ok", "why": ""}


def _with_client(km, client_class):
    km.client_factory = client_class
    return km


def _execute_nbval(nb_path: Path, env: dict, cell_timeout: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         f"--nbval-cell-timeout={cell_timeout}", "-o", "addopts=", str(nb_path)],
        cwd=outputs.ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    tail = done.stdout[-3000:]
    if done.returncode == 0:
        return {"outcome": "ok", "why": ""}
    if "Timeout of" in done.stdout and "exceeded executing cell" in done.stdout:
        return {"outcome": "hang", "why": "a cell ran into --cell-timeout under nbval"}
    return {"outcome": "error", "why": tail.strip().splitlines()[-1][:300] if tail.strip() else f"exit {done.returncode}"}


def run_one(job: dict) -> dict:
    """Execute one notebook once in a fresh kernel; returns ``job`` with outcome, why and seconds."""
    start = time.perf_counter()
    nb_path = Path(job["notebook"])
    if job["executor"] == "nbval":
        result = _execute_nbval(nb_path, job["env"], job["cell_timeout"])
    else:
        result = _execute_nbclient(nb_path, job["env"], job["stock"], job["silence"], job["cell_timeout"])
    public = {k: v for k, v in job.items() if k != "env"}
    return {**public, **result, "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute notebooks many times and count kernel hangs.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    parser.add_argument("--repeat", type=int, default=1, help="executions of each notebook in each mode")
    parser.add_argument("--jobs", type=int, default=2, help="executions at the same time (make lecture: 2)")
    parser.add_argument("--mode", choices=["quick", "full", "both"], default="quick")
    parser.add_argument("--data", type=Path, default=os.environ.get("LECTURE_DATA_DIR") or None,
                        help="full mode: folder holding cifar-10-batches-py/ (real CIFAR-10)")  # fmt: skip
    parser.add_argument("--executor", choices=["nbclient", "nbval"], default="nbclient")
    parser.add_argument("--stock", action="store_true", help="nbclient's own kernel client (without the fix)")
    parser.add_argument("--silence", type=float, default=10.0, help="watchdog: seconds of a silent, idle kernel")
    parser.add_argument("--cell-timeout", type=int, default=600, help="seconds allowed per cell")
    parser.add_argument("--log", type=Path, default=Path("build/hangs.jsonl"), help="one JSON line per execution")
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or outputs.NOTEBOOKS
    modes = ["quick", "full"] if args.mode == "both" else [args.mode]
    if "full" in modes and (args.data is None or not (args.data / "cifar-10-batches-py").is_dir()):
        print("tools.hangs: full mode needs --data DIR holding cifar-10-batches-py/ (real CIFAR-10)", file=sys.stderr)
        return 2

    scratch = Path(tempfile.mkdtemp(prefix="hangs-"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("LECTURE_")}
    envs = {
        "quick": {**base, "LECTURE_QUICK": "1", "LECTURE_SYNTHETIC": "1", "LECTURE_DATA_DIR": str(scratch / "data")},
        "full": {**base, "LECTURE_DATA_DIR": str(args.data.resolve()) if args.data else "", "LECTURE_VERIFY_DATA": "0"},
    }
    if "quick" in modes:  # generate the synthetic data once, not in two kernels at the same time
        subprocess.run([sys.executable, "-c", "from lecture_utils import synthetic; synthetic.ensure_synthetic()"],
                       env=envs["quick"], check=True, cwd=outputs.ROOT)  # fmt: skip
    order = outputs.schedule(notebooks)
    jobs = [{"notebook": str(nb), "mode": mode, "round": r, "executor": args.executor, "stock": args.stock,
             "silence": args.silence, "cell_timeout": args.cell_timeout, "jobs": args.jobs, "env": envs[mode]}
            for r in range(args.repeat) for mode in modes for nb in order]  # fmt: skip

    args.log.parent.mkdir(parents=True, exist_ok=True)
    client = f"{args.executor}{' (stock client)' if args.stock else ''}"
    print(f"{len(jobs)} executions ({', '.join(modes)} mode, {args.jobs} at a time, {client}); log: {args.log}",
          flush=True)  # fmt: skip
    start = time.perf_counter()
    results = []
    with open(args.log, "a") as log, ProcessPoolExecutor(
        max_workers=max(1, args.jobs), mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        for res in pool.map(run_one, jobs):
            results.append(res)
            log.write(json.dumps({**res, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
            log.flush()
            mark = {"ok": "  ok ", "hang": " HANG", "error": "ERROR"}[res["outcome"]]
            print(f"{mark} {res['seconds']:7.1f} s  {res['mode']:5}  {Path(res['notebook']).name}  {res['why']}",
                  flush=True)  # fmt: skip

    count = Counter(r["outcome"] for r in results)
    per_nb = Counter((Path(r["notebook"]).name[:2], r["outcome"]) for r in results)
    print(f"\n{len(results)} executions in {time.perf_counter() - start:.0f} s wall ({client}, {', '.join(modes)} mode, "
          f"{args.jobs} at a time): {count['hang']} hangs, {count['error']} other failures, {count['ok']} ok")  # fmt: skip
    for name in sorted({k[0] for k in per_nb}):
        print(f"  {name}: " + ", ".join(f"{o} {per_nb[name, o]}" for o in ("ok", "hang", "error") if per_nb[name, o]))
    return 1 if count["hang"] else 0


if __name__ == "__main__":
    sys.exit(main())
