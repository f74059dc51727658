"""Time one training step of the deep plain leaky-ReLU MLP (notebook 9) three ways, on one torch thread:
the compiled loops (lecture_utils.kernels, numba), PyTorch's fused loop (the same model without numba), and the
textbook nn.Sequential; optionally next to a busy neighbour on another core, as `make lecture` runs notebooks.

    python -m tools.bench_deep                          # depths 1000 and 10000, batch 64/128/256
    python -m tools.bench_deep --depth 10000 --batch 128 --neighbour   # with a matmul loop on the other core

A step is forward, cross-entropy, backward and SGD with momentum; each number is the median of --repeats steps
after one warm-up step (wall seconds, and CPU seconds of this process).  The machine's load (os.getloadavg) is
printed with every line: compare the ways within one run, never against fixed numbers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time

import torch
import torch.nn.functional as F


def _neighbour(stop) -> None:  # pragma: no cover - runs in a child process
    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    while not stop.is_set():
        a = torch.tanh(a @ a)


def time_steps(model: torch.nn.Module, batch: int, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of one SGD step of ``model`` on a random CIFAR-shaped batch."""
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-12, momentum=0.9)
    wall, cpu = [], []
    for i in range(repeats + 1):
        t, c = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if i:  # the first step compiles and allocates
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> None:
    from lecture_utils import kernels, models, theory

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depth", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--batch", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--ways", nargs="+", default=["compiled", "pytorch", "sequential"],
                   choices=["compiled", "pytorch", "sequential"])  # fmt: skip
    p.add_argument("--neighbour", action="store_true", help="run a matmul loop on another core meanwhile")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    stop = multiprocessing.Event()
    child = None
    if args.neighbour:
        child = multiprocessing.Process(target=_neighbour, args=(stop,), daemon=True)
        child.start()
    t = time.perf_counter()
    kernels.forward(torch.zeros(2, args.width), torch.zeros(1, args.width, args.width), 0.5)
    print(f"numba: compiled (or loaded from its cache) in {time.perf_counter() - t:.1f} s")
    try:
        for depth in args.depth:
            slope = theory.tailored_slope(depth, args.width, c=0.5)
            for batch in args.batch:
                line = []
                for way in args.ways:
                    if way == "sequential" and depth > 2000:
                        continue  # 10,000 modules: minutes per step
                    net = models.deep_leaky_mlp(depth, args.width, slope, fused=way != "sequential")
                    saved = kernels._numba_module[:]
                    if way == "pytorch":
                        kernels._numba_module[:] = [None]
                    try:
                        wall, cpu = time_steps(net, batch, args.repeats)
                    finally:
                        kernels._numba_module[:] = saved
                    line.append(f"{way} {1000 * wall:7.1f} ms (CPU {1000 * cpu:6.1f})")
                load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
                print(f"depth {depth:>5}, batch {batch:>3}: " + "; ".join(line) + f"   [load {load}]", flush=True)
    finally:
        stop.set()
        if child is not None:
            child.join(5)


if __name__ == "__main__":
    main()
