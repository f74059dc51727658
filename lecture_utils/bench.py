"""Timing (notebooks 06, 09; ``python -m lecture_utils.bench``): two input pipelines, subnormal arithmetic.

``python -m lecture_utils.bench`` runs one epoch of the seed model fed two ways, in one run:

1. The PyTorch way: ``torchvision.datasets.CIFAR10`` + ``Compose([ToTensor(), Normalize])`` +
   ``DataLoader(batch_size=64, shuffle=True, num_workers=W)``: every image is decoded from the uint8
   array into a PIL image, converted and normalized on its own, then collated into a batch.
2. The fast path: the whole split decoded and normalized once (:func:`lecture_utils.data.load_split_tensors`,
   a single vectorised operation), then :class:`lecture_utils.data.TensorLoader` only indexes it.

Both train the same seed model (SGD lr 1e-3, momentum 0.9, batch 64) for one epoch on the 45,000-image
training split of full-size data (synthetic CIFAR-format data with ``LECTURE_SYNTHETIC=1``, as
``make bench`` sets it).  Images per second include the one-off decoding of the fast path.  The last
line printed is a JSON object: ``{"dataloader_img_s": ..., "tensor_img_s": ..., "speedup": ...}``.

``num_workers`` defaults to 2, what a student would pick on a 2-core laptop or Colab (``os.cpu_count()``
workers, capped at 2); ``--workers 0`` shows the single-process pipeline of the PyTorch tutorials.

The figures depend on the machine and on what else it is doing (one side after the other, the two sides see
different moments of a busy machine: :func:`interleaved` is what notebook 06 prints).  On a CPU the ceiling is
the seed model's own matrix products, not the pipeline; on a GPU the tensor path never leaves the device while
the DataLoader stays bound by per-image Python work, so the gap should grow there (not measured here).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import time

import torch
from torch import nn

from . import config, data, models


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)


def _train_steps(model, opt, batches, device, n: int | None = None) -> int:
    """Training steps on the next ``n`` batches of the iterator ``batches`` (all of them when None); returns the
    number of images seen."""
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    seen = 0
    for xb, yb in itertools.islice(batches, n):
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seen += len(yb)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen


def time_dataloader(device, batch_size: int = 64, workers: int = 2, limit: int | None = None) -> float:
    """Images per second of one training epoch fed by torchvision's Dataset + DataLoader."""
    ds = data.cifar10("train")  # ToTensor + Normalize per image
    if limit is not None:
        ds = torch.utils.data.Subset(ds, range(min(limit, len(ds))))
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0),
                                         pin_memory=device.type == "cuda",
                                         persistent_workers=False)  # fmt: skip
    config.seed_everything(0)
    model = models.seed_model().to(device)
    start = time.perf_counter()
    seen = _train_steps(model, _optimizer(model), iter(loader), device)
    return seen / (time.perf_counter() - start)


def time_tensors(device, batch_size: int = 64, limit: int | None = None) -> float:
    """Images per second of one training epoch on the in-memory tensor path (loading included)."""
    config.seed_everything(0)
    model = models.seed_model().to(device)
    start = time.perf_counter()
    x, y = data.load_split_tensors("train", device=device, limit=limit)
    seen = _train_steps(model, _optimizer(model), iter(data.TensorLoader(x, y, batch_size, shuffle=True, seed=0)), device)
    return seen / (time.perf_counter() - start)


def compare(device=None, batch_size: int = 64, workers: int = 2, limit: int | None = None) -> dict:
    """Both pipelines, one after the other; returns the dictionary the command prints last."""
    device = config.device() if device is None else torch.device(device)
    data.normalization()  # generate / read / verify the files once, outside both timings
    data.raw_split(True)
    tensor = time_tensors(device, batch_size, limit)
    loader = time_dataloader(device, batch_size, workers, limit)
    return {"dataloader_img_s": round(loader, 1), "tensor_img_s": round(tensor, 1),
            "speedup": round(tensor / loader, 1)}  # fmt: skip


def interleaved(device=None, batch_size: int = 64, workers: int = 0, limit: int | None = None,
                chunk: int = 10) -> dict:  # fmt: skip
    """Both pipelines of :func:`compare`, measured *interleaved* so that both sides share whatever else the machine
    is doing (another notebook, another user): each trains its own copy of the seed model (the same initial weights,
    SGD lr 1e-3, momentum 0.9) for ``chunk`` batches in turn, and each side's clock runs only during its own chunks,
    until both have seen every image once.  The tensor side's clock includes its one-off decoding of the split
    (:func:`lecture_utils.data.load_split_tensors`).  Returns the number of images, images per second of each side,
    the speedup, the milliseconds per batch of each, and the seconds of that one-off decoding (``tensor_decode_s``,
    part of the tensor side's time: the rest is the model's steps and the indexing of the batches).

    A timing taken with one side after the other compares two different moments of a busy machine, and can differ
    from one run to the next by more than the effect measured; interleaved, both sides see the same load.
    ``workers=0`` (the default) keeps the DataLoader in this process: each side then computes on the same one core,
    and worker processes running during the other side's turn cannot count for or against either."""
    device = config.device() if device is None else torch.device(device)
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive number of batches, got {chunk!r}.")
    data.normalization()  # generate / read / verify the files once, outside both clocks
    data.raw_split(True)
    ds = data.cifar10("train")  # ToTensor + Normalize per image
    if limit is not None:
        ds = torch.utils.data.Subset(ds, range(min(limit, len(ds))))
    slow = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers,
                                       generator=torch.Generator().manual_seed(0),
                                       pin_memory=device.type == "cuda")  # fmt: skip
    sides = {}
    for name in ("dataloader", "tensor"):
        config.seed_everything(0)
        model = models.seed_model().to(device)
        sides[name] = {"model": model, "opt": _optimizer(model), "seen": 0, "seconds": 0.0, "batches": 0}
    start = time.perf_counter()
    x, y = data.load_split_tensors("train", device=device, limit=limit)
    decode = sides["tensor"]["seconds"] = time.perf_counter() - start
    sides["dataloader"]["iter"] = iter(slow)
    sides["tensor"]["iter"] = iter(data.TensorLoader(x, y, batch_size, shuffle=True, seed=0))
    active = ["dataloader", "tensor"]
    while active:
        for name in list(active):
            side = sides[name]
            start = time.perf_counter()
            seen = _train_steps(side["model"], side["opt"], side["iter"], device, chunk)
            side["seconds"] += time.perf_counter() - start
            side["seen"] += seen
            side["batches"] += math.ceil(seen / batch_size)
            if seen < chunk * batch_size:  # the epoch is over (a partial last batch, or none left)
                active.remove(name)
    if sides["dataloader"]["seen"] != sides["tensor"]["seen"]:
        raise RuntimeError(f"the two pipelines saw {sides['dataloader']['seen']} and {sides['tensor']['seen']} images: "
                           "they must train on the same split")  # fmt: skip
    rate = {name: s["seen"] / s["seconds"] for name, s in sides.items()}
    return {"images": sides["tensor"]["seen"], "dataloader_img_s": round(rate["dataloader"], 1), "tensor_img_s": round(rate["tensor"], 1),
            "speedup": round(rate["tensor"] / rate["dataloader"], 2),
            "dataloader_ms_per_batch": round(1000 * sides["dataloader"]["seconds"] / sides["dataloader"]["batches"], 2),
            "tensor_ms_per_batch": round(1000 * sides["tensor"]["seconds"] / sides["tensor"]["batches"], 2),
            "tensor_decode_s": round(decode, 4)}  # fmt: skip


def flushing_denormals() -> bool:
    """True when torch currently flushes subnormal numbers to zero (read by behaviour: torch has no getter)."""
    return torch.tensor([1e-323], dtype=torch.float64).mul(1.0).item() == 0.0


def time_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int = 3,
              flush_denormal: bool = False) -> float:  # fmt: skip
    """Median seconds of one forward + backward pass, with ``torch.set_flush_denormal(flush_denormal)``
    (restored afterwards).  Flushing treats float32 subnormals (below 1.2e-38) as zero: on many x86 CPUs
    arithmetic on subnormals goes through microcode and is many times slower, and an underflowing deep
    network is full of them (notebook 09)."""
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}.")
    previous = flushing_denormals()
    times = []
    try:
        supported = torch.set_flush_denormal(flush_denormal)
        if flush_denormal and not supported:
            raise RuntimeError("this CPU does not support flushing denormals (needs SSE3).")
        for _ in range(repeats):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            nn.functional.cross_entropy(model(x), y).backward()
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_flush_denormal(previous)
        model.zero_grad(set_to_none=True)
    return sorted(times)[len(times) // 2]


def time_elementwise(x: torch.Tensor, repeats: int = 5) -> float:
    """Median seconds of ``x * 0.9 + x`` (one elementwise multiply-add pass), for normal against subnormal ``x``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _ = x * 0.9 + x
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] if times else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One epoch of the seed model: DataLoader vs in-memory tensors.")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="DataLoader num_workers (default: min(2, cpu count))")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="use only this many training images")
    args = parser.parse_args(argv)
    device = config.device()
    print(config.banner())
    print(f"one epoch of the seed model, batch {args.batch_size}, {os.cpu_count()} CPU cores, "
          f"{torch.get_num_threads()} torch threads, device {device}")  # fmt: skip
    try:
        result = compare(device, args.batch_size, args.workers, args.limit)
    except data.DataUnavailableError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"torchvision Dataset + DataLoader (ToTensor + Normalize per image, num_workers={args.workers}): "
          f"{result['dataloader_img_s']:,.0f} images/s")  # fmt: skip
    print(f"in-memory tensors on {device} (TensorLoader):  {result['tensor_img_s']:,.0f} images/s")
    print(f"speedup: {result['speedup']}x")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
