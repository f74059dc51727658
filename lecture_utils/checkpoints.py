"""Checkpoints that survive a crash and refuse what does not fit (notebook 07).

    save("ckpt.pt", model=model, optimizer=opt, scheduler=sched, epoch=3, loaders=[train_loader, val_loader])
    state = load("ckpt.pt", model, opt, sched, loaders=[train_loader, val_loader])   # -> state["epoch"] == 3

* Written atomically (:mod:`lecture_utils.atomic`): to ``.<name>.<pid>.tmp`` in the same folder, flushed to disk,
  then ``os.replace``d over the old file, so a crash (even SIGKILL) mid-write leaves the previous checkpoint
  intact.  A temporary file left by a killed writer is removed by the next :func:`save` to the same path.
* Read with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
* Checked before anything is changed: a missing, empty, truncated or foreign file, a checkpoint of another
  architecture, optimizer or scheduler class raises :class:`CheckpointError` and leaves the model, the
  optimizer and the scheduler exactly as they were.
* Every random state is saved (Python, NumPy, torch, CUDA) and the generator of every loader passed in
  (training *and* validation), so resuming gives bit-identical weights and losses.
"""

from __future__ import annotations

import copy
import random
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import atomic

FORMAT = "lecture-checkpoint-v2"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or used; nothing was changed.  Shown as its message in a notebook."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def architecture(model: nn.Module) -> list[list[str]]:
    """[name, class] of every module of ``model``: what a checkpoint must match besides tensor shapes."""
    return [[n, type(m).__qualname__] for n, m in model.named_modules()]


def _generators(loaders) -> list[torch.Generator | None]:
    return [getattr(loader, "generator", None) for loader in loaders]


def rng_state(loaders=()) -> dict:
    """Every random state a run depends on: Python, NumPy, torch (CPU and CUDA) and each loader's generator."""
    return {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loaders": [g.get_state() if g is not None else None for g in _generators(loaders)],
    }


def set_rng_state(state: dict, loaders=()) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate(_as_python_state(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for g, s in zip(_generators(loaders), state["loaders"], strict=True):
        if g is not None and s is not None:
            g.set_state(s)


def _numpy_state() -> list:
    # plain types and a tensor, so that torch.load(weights_only=True) can read it back
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]


def _as_python_state(s):
    # weights_only loading turns the state tuple into lists; random.setstate wants tuples
    return (s[0], tuple(s[1]), s[2])


def check_writable(path: Path | str) -> Path:
    """Raise :class:`CheckpointError` now (not after an epoch) if ``path``'s folder cannot be written."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = atomic.temporary(path)
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise CheckpointError(f"cannot write a checkpoint to {path} ({type(err).__name__}: {err.strerror or err}): "
                              "choose a folder you can write to.") from None  # fmt: skip
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder: give a file name such as {path / 'model.pt'}.")
    return path


def save(path: Path | str, *, model: nn.Module, optimizer=None, scheduler=None, epoch: int = 0, step: int = 0,
         history: dict | None = None, loaders=()) -> Path:  # fmt: skip
    """Write model, optimizer, scheduler, counters, ``history`` and every random state to ``path``, atomically."""
    path = check_writable(path)
    state = {
        "format": FORMAT,
        "model_class": type(model).__qualname__,
        "architecture": architecture(model),
        "model": model.state_dict(),
        "optimizer_class": type(optimizer).__qualname__ if optimizer is not None else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_class": type(scheduler).__qualname__ if scheduler is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": int(epoch),
        "step": int(step),
        "history": history or {},
        "rng": rng_state(loaders),
    }
    try:
        with atomic.replace(path) as tmp:
            torch.save(state, tmp)
    except OSError as err:
        raise CheckpointError(f"writing {path} failed ({type(err).__name__}: {err.strerror or err}); the previous "
                              "checkpoint, if any, is intact.") from None  # fmt: skip
    return path


def read(path: Path | str) -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)`` on the CPU and check its format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train without resuming to start a new run.")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (a crash while it was first written?): delete it and start again.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, unsafe content...
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(err).strip().splitlines()[0])[:160] if str(err).strip() else ""
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(err).__name__}: {first}). Delete it, "
                              "or resume from another file.") from None  # fmt: skip
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} was not written by lecture_utils.checkpoints.save (format "
                              f"{state.get('format') if isinstance(state, dict) else type(state).__name__!r}).")  # fmt: skip
    return state


def _check(state: dict, path, model, optimizer, scheduler, loaders) -> None:
    problems = []
    if state["model_class"] != type(model).__qualname__ or state["architecture"] != architecture(model):
        ours = {n: c for n, c in architecture(model)}
        theirs = {n: c for n, c in state["architecture"]}
        diff = [f"{n}: {theirs.get(n, '-')} in the file, {ours.get(n, '-')} in the model"
                for n in dict.fromkeys([*theirs, *ours]) if theirs.get(n) != ours.get(n)]  # fmt: skip
        problems.append(f"another architecture ({'; '.join(diff[:4]) or state['model_class']})")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state["model"].items()}
    if want != got:
        bad = [k for k in dict.fromkeys([*want, *got]) if want.get(k) != got.get(k)]
        problems.append(f"other tensors ({', '.join(f'{k}: {got.get(k)} vs {want.get(k)}' for k in bad[:4])})")
    for what, obj, key in (("optimizer", optimizer, "optimizer"), ("scheduler", scheduler, "scheduler")):
        if obj is None:
            continue
        if state[key] is None:
            problems.append(f"no {what} state in the file")
        elif state[f"{key}_class"] != type(obj).__qualname__:
            problems.append(f"a {state[f'{key}_class']} {what} in the file, a {type(obj).__qualname__} given")
    if optimizer is not None and state["optimizer"] is not None and not problems:
        saved = [len(g["params"]) for g in state["optimizer"]["param_groups"]]
        ours = [len(g["params"]) for g in optimizer.param_groups]
        if saved != ours:
            problems.append(f"optimizer parameter groups of sizes {saved} in the file, {ours} given")
    if len(state["rng"]["loaders"]) != len(list(loaders)):
        problems.append(f"{len(state['rng']['loaders'])} loaders' random states in the file, {len(list(loaders))} given")
    if problems:
        raise CheckpointError(f"{path} does not fit: {'; '.join(problems)}. Nothing was loaded.")


def load(path: Path | str, model: nn.Module, optimizer=None, scheduler=None, loaders=(),
         restore_rng: bool = True) -> dict:  # fmt: skip
    """Restore model, optimizer, scheduler, every random state and the loaders' generators from ``path``;
    return the checkpoint (``epoch``, ``step``, ``history`` ...).  Everything is checked first; if anything
    does not fit, :class:`CheckpointError` is raised and nothing has changed."""
    loaders = list(loaders)
    state = read(path)
    _check(state, path, model, optimizer, scheduler, loaders)
    backup = (copy.deepcopy(model.state_dict()),
              copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None,
              copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None)  # fmt: skip
    try:
        model.load_state_dict(state["model"])
        if optimizer is not None:
            optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        if restore_rng:
            set_rng_state(state["rng"], loaders)
    except Exception as err:
        model.load_state_dict(backup[0])
        if optimizer is not None:
            optimizer.load_state_dict(backup[1])
        if scheduler is not None:
            scheduler.load_state_dict(backup[2])
        raise CheckpointError(f"{path} could not be applied ({type(err).__name__}: {err}); nothing was changed.") from None
    return state
