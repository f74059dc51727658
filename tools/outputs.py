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

Notebooks run in :class:`LectureClient`, nbclient's client with two changes (see its docstring): its shell channel
sends through the asyncio socket, so that a reply cannot be missed (the cause of a 600 s hang in notebook 05), and a
watchdog fails a cell loudly, within seconds, when the kernel has gone silent (a second line of defence).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from traitlets import Type

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


# --- the notebook client ----------------------------------------------------------------------------------------


class _ThroughAsyncSocket:
    """What :meth:`jupyter_client.session.Session.send` writes to instead of a raw copy of the socket: it hands the
    frames to the zmq.asyncio socket's own ``send_multipart``, which after sending looks for replies that arrived
    meanwhile and wakes whoever awaits them."""

    def __init__(self, socket: zmq.asyncio.Socket):
        self.socket = socket

    def send_multipart(self, frames, copy: bool = True, **_kwargs) -> None:
        sent = self.socket.send_multipart(frames, copy=copy)
        sent.add_done_callback(lambda f: f.cancelled() or f.exception() is None or
                               print(f"could not send to the kernel: {f.exception()!r}", file=sys.stderr))  # fmt: skip


class SafeChannel(AsyncZMQSocketChannel):
    """An asyncio channel whose sends cannot hide a reply from a pending ``get_msg``.

    jupyter_client's ``Session.send`` sends on a zmq.asyncio socket through a plain ``zmq.Socket.shadow`` of it
    (jupyter_client 8.10, session.py), behind pyzmq's back.  A send makes libzmq process the socket's pending
    commands, among them "a message arrived", which is what makes the socket's file descriptor readable; the
    asyncio poll that nbclient is awaiting on the same socket then never wakes, although the reply sits in the
    socket (zmq.EVENTS says POLLIN), until its timeout (600 s) runs out.  nbclient sends on the shell channel while
    it waits for a reply when a cell displays into an ``ipywidgets.Output`` (its Output mimic syncs the widget's
    outputs back to the kernel: nbclient/output_widget.py), as notebook 05's explorer does.  Sending through
    pyzmq's asyncio socket instead lets pyzmq look at zmq.EVENTS after the send and wake the poll.
    Upstream: jupyter/nbclient#312 and jupyter/jupyter_client#1059, both open (no release has a fix).
    """

    def send(self, msg: dict) -> None:
        self.session.send(_ThroughAsyncSocket(self.socket), msg)


class SafeKernelClient(AsyncKernelClient):
    """nbclient's asyncio kernel client with :class:`SafeChannel` for every channel it sends on."""

    shell_channel_class = Type(SafeChannel)
    control_channel_class = Type(SafeChannel)
    stdin_channel_class = Type(SafeChannel)


class KernelHangError(RuntimeError):
    """A kernel that stopped answering (a failure of ours, never a result of the notebook's)."""


def process_tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by process ``pid`` and all its descendants, those still running
    and those that ended (DataLoader workers compute in children); None where /proc cannot tell (not Linux, no
    such process)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        cpu[int(entry)] = sum(int(f) for f in fields[11:15]) / tick  # utime, stime, and of reaped children
    if pid not in cpu:
        return None
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += cpu.get(p, 0.0)
        todo += children.get(p, [])
    return total


class LectureClient(NotebookClient):
    """nbclient's ``NotebookClient`` with :class:`SafeKernelClient` (the fix of the 600 s hang) and a watchdog.

    The watchdog raises :class:`KernelHangError` when the cell's kernel has gone quiet:

    * it published ``idle`` for the cell (so it sent its ``execute_reply`` before) ``grace`` seconds ago and the
      reply has still not been read; or
    * nothing came from the kernel for the cell for ``silence`` seconds while the kernel and its child processes
      used under 2% of a CPU (where /proc tells; a cell that computes is never silent in this sense).

    The error names the cell and whether a reply was waiting unread in the client's shell socket.
    """

    def __init__(self, nb, *, silence: float = 10.0, grace: float = 5.0, **kw):
        super().__init__(nb, **kw)
        self.silence, self.grace = silence, grace
        self._last_msg = self._idle_at = 0.0

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.client_factory = SafeKernelClient
        return km

    def process_message(self, msg, cell, cell_index):
        self._last_msg = time.monotonic()
        if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
            self._idle_at = self._last_msg
        return super().process_message(msg, cell, cell_index)

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        self._last_msg, self._idle_at = time.monotonic(), 0.0
        before = asyncio.all_tasks()
        run = asyncio.ensure_future(super().async_execute_cell(cell, cell_index, execution_count, store_history))
        watch = asyncio.ensure_future(self._watch(cell, cell_index))
        done: set = set()
        try:
            done, _ = await asyncio.wait({run, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # a cancelled run raises nbclient's "Kernel died" (ours is the true reason); its polling tasks go too
            left = asyncio.all_tasks() - before - {asyncio.current_task()} if run not in done else set()
            for task in [run, watch, *left]:
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
        if run in done:
            return run.result()
        raise watch.result()

    async def _watch(self, cell, cell_index: int) -> KernelHangError:
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        samples: list[tuple[float, float]] = []  # (time, CPU seconds of the kernel's processes)
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            why = None
            if self._idle_at and now - self._idle_at > self.grace:
                why = f"the kernel finished the cell (status idle) {now - self._idle_at:.0f} s ago, but its reply was not read"
            cpu = process_tree_cpu_seconds(pid) if pid else None
            if cpu is not None:
                samples = [s for s in samples if now - s[0] <= self.silence + 2] + [(now, cpu)]
                then = [s for s in samples if now - s[0] >= self.silence]  # samples at least `silence` old
                quiet = now - self._last_msg
                if why is None and quiet >= self.silence and then:
                    used, span = cpu - then[-1][1], now - then[-1][0]
                    if used < 0.02 * span:
                        why = (f"no message from the kernel for {quiet:.0f} s and its processes used {used:.2f} s of CPU "
                               f"in the last {span:.0f} s")  # fmt: skip
            if why is None:
                continue
            waiting = bool(self.kc.shell_channel.socket.get(zmq.EVENTS) & zmq.POLLIN)
            first = (cell.source.strip().splitlines() or [""])[0][:80]
            return KernelHangError(
                f"KERNEL HANG (watchdog), cell {cell_index} ({first!r}): {why}; "
                + ("a reply WAS waiting unread in the client's shell socket (a missed wake-up)" if waiting
                   else "no reply had arrived in the client's shell socket")  # fmt: skip
            )


#: The watchdog's seconds in `make outputs` / `make lecture` (see LectureClient).
WATCHDOG = {"silence": 10.0, "grace": 5.0}


# --- make outputs -----------------------------------------------------------------------------------------------


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
    client = LectureClient(nb, timeout=timeout, kernel_name="python3", record_timing=True, **WATCHDOG,
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
    notebook's fault) is reported on stderr and gets one more try; a failing cell does not."""
    hung = ""
    for attempt in (1, 2):
        try:
            seconds, slow = execute(nb_path, out_path, timeout)
            return nb_path, seconds, hung + ", ".join(f"cell {i} {t:.0f} s" for i, t in slow)
        except CellExecutionError as err:
            plain = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # the traceback's colours
            lines = [ln for ln in plain.strip().splitlines() if ln.strip()]
            return nb_path, None, lines[-1] if lines else type(err).__name__
        except (CellTimeoutError, DeadKernelError, KernelHangError) as err:
            first = (str(err).strip().splitlines() or [""])[0][:300]
            print(f"  {nb_path.name}, attempt {attempt}: {type(err).__name__}: {first}", file=sys.stderr, flush=True)
            if attempt == 2:
                return nb_path, None, f"{type(err).__name__} twice: {first}"
            hung = f"(attempt 1: {type(err).__name__}, see above) "
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
