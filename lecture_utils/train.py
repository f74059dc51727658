"""The training loop of the lecture's BatchNorm run, with the safety equipment a real run needs.

    history = train(model, train_loader, val_loader, epochs=5, lr=1e-3, momentum=0.9,
                    log_dir="runs/bn", checkpoint="checkpoints/bn.pt", resume=True, clip_norm=None)

* SGD with momentum (v <- mu v + g, w <- w - lr v) and ``ReduceLROnPlateau`` on the validation loss
  (lr <- 0.1 lr when the validation loss has not improved for ``patience`` epochs).
* Validation in ``model.eval()`` under ``torch.no_grad()`` (BatchNorm then uses its running statistics).
* TensorBoard (``SummaryWriter``): train/validation loss and accuracy, learning rate, and per-layer
  weight, activation and gradient histograms once per epoch.
* Checkpoints (model, optimizer, scheduler, epoch, RNG states, history) written atomically (temporary
  file in the same folder, then ``os.replace``) and read with ``torch.load(weights_only=True)``;
  resuming from epoch k gives bit-identical weights to an uninterrupted run.
* Gradient clipping by value (Prince's "if |g| > max then g = +-max", ``clip_value``) and by norm
  (g <- g * max / ||g|| when ||g|| > max, ``clip_norm``; Pascanu et al. 2013).
* Divergence: a non-finite loss or gradient stops training with :class:`DivergenceError`, naming the
  step and the first layer whose activation or gradient went non-finite (found with a Probe).
* Progress: a ``tqdm.auto`` bar per epoch with the running loss in the postfix.
See Ioffe & Szegedy (2015) for BatchNorm and Prince, Understanding Deep Learning, section 11.4.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import probes
from .init import WEIGHTED, init_tensor_
from .probes import Probe

CHECKPOINT_FORMAT = "lecture-checkpoint-v1"
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


class _OneLineError(RuntimeError):
    def _render_traceback_(self) -> list[str]:  # IPython shows the message, not a traceback
        return [f"{type(self).__name__}: {self}"]


class CheckpointError(_OneLineError):
    """A checkpoint cannot be used (missing, corrupt, or written for a different model); nothing was changed."""


class DivergenceError(_OneLineError, FloatingPointError):
    """Training produced a non-finite loss or gradient.  Attributes: ``step`` (1-based, counted over the
    whole run), ``epoch``, ``kind`` ('activation', 'gradient' or 'loss'), ``layer`` (module name) and
    ``history`` (the run so far, up to and including the failing step's loss)."""

    def __init__(self, message: str, step: int, epoch: int, kind: str, layer: str | None, history=None):
        super().__init__(message)
        self.step, self.epoch, self.kind, self.layer, self.history = step, epoch, kind, layer, history


# ---------------------------------------------------------------------------------------------------
# Small pieces
# ---------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn: Callable | None = None, device=None) -> tuple[float, float]:
    """(average loss per example, accuracy) over ``loader`` in ``model.eval()`` under ``no_grad``.
    The model is left in eval mode (the training loop switches back with ``model.train()``)."""
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    device = _device_of(model) if device is None else device
    model.eval()
    total = correct = 0
    loss_sum = 0.0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        out = model(xb)
        loss_sum += float(loss_fn(out, yb)) * len(yb)
        correct += int((out.argmax(dim=1) == yb).sum())
        total += len(yb)
    if total == 0:
        raise ValueError("evaluate needs a loader with at least one example.")
    return loss_sum / total, correct / total


def test_report(model: nn.Module, loader, loss_fn: Callable | None = None) -> str:
    """The PyTorch tutorial's test line: ``Test Error: \\n Accuracy: 47.8%, Avg loss: 1.482345``."""
    loss, acc = evaluate(model, loader, loss_fn)
    return f"Test Error: \n Accuracy: {100 * acc:.1f}%, Avg loss: {loss:.6f}"


test_report.__test__ = False  # not a pytest test, whatever its name


def clip_gradients_(parameters, clip_value: float | None = None, clip_norm: float | None = None) -> float:
    """Clip gradients in place; return the total L2 norm ||g|| = sqrt(sum_i g_i^2) before clipping.

    by value:  g_i <- max(-c, min(c, g_i))      (each component; the direction changes)
    by norm:   g <- g * m / ||g||  if ||g|| > m  (the whole vector; the direction is kept)
    """
    params = [p for p in parameters if p.grad is not None]
    if clip_value is not None:
        if not clip_value > 0:
            raise ValueError(f"clip_value must be a positive number, got {clip_value!r}.")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be a positive number, got {clip_norm!r}.")
    if not params:
        return 0.0
    norms = [torch.linalg.vector_norm(p.grad.detach(), dtype=torch.float64) for p in params]  # no overflow
    norm = torch.linalg.vector_norm(torch.stack(norms))
    if clip_value is not None:
        nn.utils.clip_grad_value_(params, clip_value)
    if clip_norm is not None:
        nn.utils.clip_grad_norm_(params, clip_norm)
    return float(norm)


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def rng_state(loader=None) -> dict:
    """Every random number generator a run uses, as tensors and plain values (``weights_only``-safe):
    torch CPU (and CUDA), NumPy, Python's ``random`` and the loader's own generator if it has one."""
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},  # fmt: skip
        "python": {"version": py_version, "state": torch.tensor(py_state, dtype=torch.int64), "gauss": py_gauss},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    gen = getattr(loader, "generator", None)
    if isinstance(gen, torch.Generator):
        state["loader"] = gen.get_state()
    return state


def set_rng_state(state: dict, loader=None) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    gen = getattr(loader, "generator", None)
    if "loader" in state and isinstance(gen, torch.Generator):
        gen.set_state(state["loader"])


# ---------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------
def save_checkpoint(path, model, optimizer=None, scheduler=None, epoch: int = 0, history: dict | None = None,
                    loader=None) -> Path:  # fmt: skip
    """Write a checkpoint atomically: ``torch.save`` to a temporary file in the same folder, flush it to
    disk, then ``os.replace`` it over ``path`` (atomic on POSIX and Windows).  A crash mid-write leaves
    the previous checkpoint untouched.  Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_class": type(model).__name__,
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": rng_state(loader),
        "history": history or {},
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def read_checkpoint(path) -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)`` (no arbitrary code runs), on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train without resume to start a new run.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a torch file, unsafe content...
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:200]}). "
            "Delete it, or resume from another file."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} was not written by lecture_utils.train.save_checkpoint.")
    return ckpt


def _check_compatible(ckpt: dict, model: nn.Module, path) -> None:
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ckpt["model"].items()}
    problems = [f"missing {k}" for k in want if k not in got]
    problems += [f"unexpected {k}" for k in got if k not in want]
    problems += [f"{k}: {got[k]} in the file, {want[k]} in the model" for k in want if k in got and got[k] != want[k]]
    if problems:
        raise CheckpointError(
            f"{path} holds a different model ({ckpt.get('model_class')}) than the one given "
            f"({type(model).__name__}): {'; '.join(problems[:5])}{' ...' if len(problems) > 5 else ''}. "
            "Nothing was loaded."
        )


def load_checkpoint(path, model, optimizer=None, scheduler=None, loader=None, restore_rng: bool = True) -> dict:
    """Restore model, optimizer, scheduler (and RNG states) from ``path``; return the checkpoint dict.

    Everything is checked before anything is changed: a missing or corrupt file, or one written for a
    different model, raises :class:`CheckpointError` and leaves model and optimizer as they were."""
    ckpt = read_checkpoint(path)
    _check_compatible(ckpt, model, path)
    if optimizer is not None and ckpt["optimizer"] is not None:
        saved = ckpt["optimizer"]["param_groups"]
        ours = optimizer.state_dict()["param_groups"]
        if [len(g["params"]) for g in saved] != [len(g["params"]) for g in ours]:
            raise CheckpointError(f"{path}: the optimizer's parameter groups differ from the saved ones.")
    model.load_state_dict(ckpt["model"])
    if optimizer is not None and ckpt["optimizer"] is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt["scheduler"] is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    if restore_rng:
        set_rng_state(ckpt["rng"], loader)
    return ckpt


# ---------------------------------------------------------------------------------------------------
# Divergence diagnosis
# ---------------------------------------------------------------------------------------------------
def _leaf(name: str, module: nn.Module) -> bool:
    return next(module.children(), None) is None


def _diagnose(model, xb, yb, loss_fn) -> tuple[str, str | None]:
    """Re-run the failing batch (weights not yet updated) under a Probe on every leaf module."""
    found = probes.locate_nonfinite(model, xb, yb, loss_fn, select=_leaf)
    return found if found is not None else ("loss", None)


def _divergence(model, xb, yb, loss_fn, step, epoch, batch, n_batches, loss, grad_norm, history) -> DivergenceError:
    kind, layer = _diagnose(model, xb, yb, loss_fn)
    if layer is None:
        where = "every layer's activation and gradient is finite; the loss itself is not"
    else:
        module = dict(model.named_modules())[layer]
        where = f"first non-finite {kind}: layer '{layer}' ({type(module).__name__})"
    what = f"loss = {loss:.4g}" + (f", gradient norm = {grad_norm:.4g}" if grad_norm is not None else "")
    return DivergenceError(
        f"training diverged at step {step} (epoch {epoch}, batch {batch}/{n_batches}): {what}; {where}. "
        "Try a smaller learning rate, gradient clipping (clip_norm= or clip_value=), "
        "a better-scaled initialization, or BatchNorm.",
        step, epoch, kind, layer, history,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# TensorBoard
# ---------------------------------------------------------------------------------------------------
def _log_histograms(writer, model, batch, epoch: int) -> None:
    for name, p in model.named_parameters():
        writer.add_histogram(f"weights/{name}", p.detach().cpu(), epoch)
        if p.grad is not None:
            writer.add_histogram(f"gradients/{name}", p.grad.detach().cpu(), epoch)
    if batch is None:
        return
    was_training = model.training
    model.eval()
    with torch.no_grad(), Probe(model, select=_leaf, sample=20_000, backward=False) as probe:
        model(batch)
    model.train(was_training)
    for name, stats in probe.forward.items():
        if stats.sample is not None and stats.sample.numel():
            writer.add_histogram(f"activations/{name}_{type(dict(model.named_modules())[name]).__name__}",
                                 stats.sample, epoch)  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------
def new_history() -> dict:
    """Per-epoch lists (``epoch, train_loss, train_acc, val_loss, val_acc, lr``) and per-step lists
    (``step_loss``, ``grad_norm`` before clipping)."""
    return {k: [] for k in (*HISTORY_KEYS, "step_loss", "grad_norm")}


def train(
    model: nn.Module,
    train_loader,
    val_loader=None,
    epochs: int = 5,
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    loss_fn: Callable | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    patience: int = 1,
    factor: float = 0.1,
    clip_value: float | None = None,
    clip_norm: float | None = None,
    log_dir: str | Path | None = None,
    histograms: bool = True,
    checkpoint: str | Path | None = None,
    resume: bool | str | Path = False,
    progress: bool = True,
    on_step: Callable[[int, nn.Module], None] | None = None,
    desc: str = "",
    device=None,
) -> dict:
    """Train ``model`` for ``epochs`` epochs; return the history (see :func:`new_history`).

    Optimizer: SGD(lr, momentum, weight_decay) unless ``optimizer`` is given.  Scheduler:
    ReduceLROnPlateau(factor, patience) on the validation loss (needs ``val_loader``).  ``clip_value`` /
    ``clip_norm``: gradient clipping (see :func:`clip_gradients_`).  ``log_dir``: TensorBoard logs.
    ``checkpoint``: a file written after every epoch; ``resume=True`` continues from it (or from the
    path given as ``resume``), restoring model, optimizer, scheduler, epoch and every RNG, so that the
    result is bit-identical to an uninterrupted run.  ``on_step(step, model)`` is called after every
    optimizer step.  Raises :class:`DivergenceError` on a non-finite loss or gradient.
    """
    from tqdm.auto import tqdm

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    for name, v in (("clip_value", clip_value), ("clip_norm", clip_norm)):
        if v is not None and not v > 0:
            raise ValueError(f"{name} must be a positive number or None, got {v!r}.")
    device = torch.device(device) if device is not None else _device_of(model)
    model.to(device)
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = (
        torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=factor, patience=patience)
        if val_loader is not None
        else None
    )
    history, start = new_history(), 0
    if resume:
        source = checkpoint if resume is True else resume
        if source is None:
            raise ValueError("resume=True needs checkpoint= (or pass the file to resume from as resume=).")
        ckpt = load_checkpoint(source, model, optimizer, scheduler, loader=train_loader)
        start, history = ckpt["epoch"], {**history, **ckpt["history"]}
    if start >= epochs:
        return history

    writer = None
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(log_dir), purge_step=start + 1 if resume else None)
    step = len(history["step_loss"])
    n_batches = len(train_loader)
    try:
        for epoch in range(start + 1, epochs + 1):
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            bar = tqdm(train_loader, desc=f"{desc}epoch {epoch}/{epochs}", disable=not progress, leave=False)
            for batch, (xb, yb) in enumerate(bar, start=1):
                step += 1
                xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
                out = model(xb)
                loss = loss_fn(out, yb)
                loss_value = loss.item()
                if not math.isfinite(loss_value):
                    history["step_loss"].append(loss_value)
                    raise _divergence(model, xb, yb, loss_fn, step, epoch, batch, n_batches, loss_value, None,
                                      history)  # fmt: skip
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = clip_gradients_(model.parameters(), clip_value, clip_norm)
                if not math.isfinite(grad_norm):
                    raise _divergence(model, xb, yb, loss_fn, step, epoch, batch, n_batches, loss_value, grad_norm,
                                      history)  # fmt: skip
                optimizer.step()
                history["step_loss"].append(loss_value)
                history["grad_norm"].append(grad_norm)
                loss_sum += loss_value * len(yb)
                correct += int((out.argmax(dim=1) == yb).sum())
                seen += len(yb)
                if writer is not None:
                    writer.add_scalar("loss/train_step", loss_value, step)
                if progress and (batch % 20 == 0 or batch == n_batches):
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
                if on_step is not None:
                    on_step(step, model)
            bar.close()
            train_loss, train_acc = loss_sum / max(seen, 1), correct / max(seen, 1)
            val_loss = val_acc = math.nan
            if val_loader is not None:
                val_loss, val_acc = evaluate(model, val_loader, loss_fn, device)
                scheduler.step(val_loss)
            lr_now = optimizer.param_groups[0]["lr"]
            for key, value in zip(HISTORY_KEYS, (epoch, train_loss, train_acc, val_loss, val_acc, lr_now),
                                  strict=True):  # fmt: skip
                history[key].append(value)
            if writer is not None:
                writer.add_scalars("loss", {"train": train_loss, "validation": val_loss}, epoch)
                writer.add_scalars("accuracy", {"train": train_acc, "validation": val_acc}, epoch)
                writer.add_scalar("lr", lr_now, epoch)
                if histograms:
                    first = next(iter(val_loader))[0].to(device) if val_loader is not None else None
                    _log_histograms(writer, model, first, epoch)
                writer.flush()
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, scheduler, epoch, history, loader=train_loader)
    finally:
        if writer is not None:
            writer.close()
    return history


# ---------------------------------------------------------------------------------------------------
# Experiments of the lecture
# ---------------------------------------------------------------------------------------------------
@torch.no_grad()
def input_percentiles(model: nn.Module, module: nn.Module, x: torch.Tensor, unit: int = 0,
                      q=(15, 50, 85)) -> list[float]:  # fmt: skip
    """Percentiles ``q`` of the input of ``module`` (e.g. the non-linearity after BatchNorm) at hidden
    ``unit`` over the batch ``x``, computed as in training (BatchNorm normalizes with the batch's own
    statistics); BatchNorm's running averages and the model's mode are restored afterwards.
    Ioffe & Szegedy (2015), Figure 1(b, c): the {15, 50, 85}th percentiles of a sigmoid's input over training."""
    seen = {}
    handle = module.register_forward_hook(lambda m, inputs, out: seen.setdefault("x", inputs[0].detach()))
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    was_training = model.training
    try:
        model.train()
        model(x)
    finally:
        handle.remove()
        model.train(was_training)
        for name, b in model.named_buffers():
            b.copy_(buffers[name])
    values = seen["x"].reshape(len(x), -1)[:, unit].to(torch.float64)
    return torch.quantile(values, torch.tensor(q, dtype=torch.float64, device=values.device) / 100).tolist()


class PercentileRecorder:
    """An ``on_step`` callback recording :func:`input_percentiles` every ``every`` steps:
    ``steps`` and ``values`` (one [p15, p50, p85] list per record)."""

    def __init__(self, module: nn.Module, x: torch.Tensor, unit: int = 0, every: int = 10, q=(15, 50, 85)):
        self.module, self.x, self.unit, self.every, self.q = module, x, unit, every, q
        self.steps: list[int] = []
        self.values: list[list[float]] = []

    def __call__(self, step: int, model: nn.Module) -> None:
        if step == 1 or step % self.every == 0:
            self.steps.append(step)
            self.values.append(input_percentiles(model, self.module, self.x, self.unit, self.q))


def init_normal_(model: nn.Module, var: float, head: bool = False) -> nn.Module:
    """Set every Linear/Conv weight to N(0, var) (biases 0), except the last Linear (the classifier head)
    unless ``head``; the lecture's "bad initializations" sigma^2 = 1e-4 and 1e2."""
    if not var > 0:
        raise ValueError(f"var must be a positive variance, got {var!r}.")
    layers = [m for m in model.modules() if isinstance(m, WEIGHTED)]
    if not head:
        layers = layers[:-1]
    for m in layers:
        init_tensor_(m.weight, "normal", std=math.sqrt(var))
        if m.bias is not None:
            with torch.no_grad():
                m.bias.zero_()
    return model

