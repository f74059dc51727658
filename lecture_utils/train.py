"""ONE training loop and ONE evaluation, with the safety equipment a real run needs (notebooks 07-10).

    run = fit(model, train_loader, val_loader, epochs=5, lr=1e-3, momentum=0.9,
              scheduler=plateau(patience=1), callbacks=[Checkpoint("ckpt.pt"), TensorBoard("runs/bn")])
    run = fit(model, train_loader, val_loader, steps=300, lr=0.01, on_divergence="stop")   # a step budget
    loss, acc = evaluate(model, val_loader)

Notebook 07 writes the loop itself (a dozen lines: forward, loss, backward, step, evaluate, scheduler,
checkpoint); :func:`fit` is that loop plus what you should not have to retype:

* SGD with momentum (v <- mu v + g, w <- w - lr v) unless you pass an optimizer; an optional scheduler:
  ``ReduceLROnPlateau`` steps on the validation loss after each evaluation, any other after each step.
* Evaluation in ``model.eval()`` under ``torch.no_grad()`` (BatchNorm then uses its running averages):
  at the end of every epoch, or every ``eval_every`` steps.
* Gradient clipping by value (Prince's "if |g| > c then g = +-c") and by norm (g <- g m / ||g|| when
  ||g|| > m; Pascanu et al. 2013); the norm before clipping is recorded at every step.
* Divergence: a non-finite loss or gradient stops the run *before* the update and names the step and the
  first layer whose activation or gradient went non-finite (a :class:`~lecture_utils.probes.Probe` re-runs
  the batch), or says that the batch itself holds NaN/inf.  ``on_divergence="raise"`` raises
  :class:`DivergenceError`; ``"stop"`` returns the run with :attr:`Run.nonfinite` set.
* Callbacks (fast.ai's idea, minimal): objects with any of ``before_fit``, ``before_step``, ``after_backward``
  (raw gradients, before clipping), ``after_step``, ``after_eval``, ``after_epoch``, ``after_fit``, each called
  with the :class:`Fit` state.  Here:
  :class:`Checkpoint` (atomic save every epoch, resume bit-identically) and :class:`TensorBoard`; in
  :mod:`lecture_utils.probes`: ``PercentileRecorder`` and ``UpdateRatio``.
* Bad input fails before anything is trained: a learning rate that is not a positive finite number, an
  empty loader, a checkpoint folder that cannot be written.
See Ioffe & Szegedy (2015) and Prince, Understanding Deep Learning, sections 6.3 (momentum) and 11.4.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import checkpoints, probes
from .init import WEIGHTED

#: What one evaluation record holds (:attr:`Run.evals`).
EVAL_KEYS = ("step", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or gradient.  ``run`` is the run so far (its ``nonfinite``
    names the step, the kind and the layer).  Shown as its message in a notebook."""

    def __init__(self, message: str, run: Run):
        super().__init__(message)
        self.run = run

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


@dataclass
class Run:
    """What :func:`fit` records.

    ``step_loss[t]``, ``grad_norm[t]``: training loss and gradient norm (before clipping) at step t + 1.
    ``evals``: one dict per evaluation with :data:`EVAL_KEYS` (train_* averaged since the previous one).
    ``nonfinite``: None, or {step, kind ('input' | 'activation' | 'gradient' | 'loss'), layer, index, of}.
    """

    name: str = ""
    step_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    nonfinite: dict | None = None
    seconds: float = 0.0

    @property
    def steps_done(self) -> int:
        return len(self.grad_norm)

    def column(self, key: str) -> list:
        """One column of :attr:`evals`: ``run.column("val_acc")``."""
        if key not in EVAL_KEYS:
            raise ValueError(f"unknown column {key!r}: choose one of {', '.join(EVAL_KEYS)}.")
        return [e[key] for e in self.evals]

    @property
    def diverged(self) -> bool:
        return self.nonfinite is not None

    @property
    def final_val_acc(self) -> float:
        """Validation accuracy at the last evaluation; NaN when the run diverged or never evaluated."""
        return math.nan if self.diverged or not self.evals else self.evals[-1]["val_acc"]

    def where(self) -> str:
        """'ok' or e.g. 'activation non-finite at step 3, layer 49/1000 (fc49)'."""
        if self.nonfinite is None:
            return "ok"
        d = self.nonfinite
        if d["kind"] in ("input", "loss"):
            return f"{d['kind']} non-finite at step {d['step']}"
        return f"{d['kind']} non-finite at step {d['step']}, layer {d['index']}/{d['of']} ({d['layer']})"

    def state(self) -> dict:
        """The run as plain data (for a checkpoint)."""
        return {"name": self.name, "step_loss": self.step_loss, "grad_norm": self.grad_norm, "evals": self.evals}

    @classmethod
    def from_state(cls, state: dict) -> Run:
        return cls(state.get("name", ""), list(state["step_loss"]), list(state["grad_norm"]), list(state["evals"]))


@dataclass
class Fit:
    """The training state every callback sees.  ``step`` is the 1-based number of the current step,
    ``epoch`` the 1-based current epoch; set ``stop = True`` to end training after this step."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    loss_fn: Callable
    train_loader: Iterable
    val_loader: Iterable | None
    run: Run
    device: torch.device
    step: int = 0
    epoch: int = 0
    loss: float = math.nan
    stop: bool = False

    @property
    def loaders(self) -> list:
        return [self.train_loader] + ([self.val_loader] if self.val_loader is not None else [])


# ---------------------------------------------------------------------------------------------------
# Small pieces
# ---------------------------------------------------------------------------------------------------
def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn: Callable | None = None) -> tuple[float, float]:
    """(mean loss per example, accuracy) over ``loader`` in ``model.eval()`` under ``no_grad``; the model's
    previous mode is restored.  The one evaluation of the lecture: always (loss, accuracy), in that order."""
    loss_fn = nn.functional.cross_entropy if loss_fn is None else loss_fn
    device = device_of(model)
    was = model.training
    model.eval()
    total = correct = 0
    loss_sum = 0.0
    try:
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            loss_sum += float(loss_fn(out, yb)) * len(yb)
            correct += int((out.argmax(dim=1) == yb).sum())
            total += len(yb)
    finally:
        model.train(was)
    if total == 0:
        raise ValueError("evaluate needs a loader with at least one example.")
    return loss_sum / total, correct / total


def test_report(model: nn.Module, loader, loss_fn: Callable | None = None) -> str:
    """The PyTorch tutorial's test line: ``Test Error: \\n Accuracy: 47.8%, Avg loss: 1.482345``."""
    loss, acc = evaluate(model, loader, loss_fn)
    return f"Test Error: \n Accuracy: {100 * acc:.1f}%, Avg loss: {loss:.6f}"


test_report.__test__ = False  # not a pytest test, whatever its name


def clip_gradients_(parameters, clip_value: float | None = None, clip_norm: float | None = None) -> float:
    """Clip gradients in place; return the total L2 norm ||g|| = sqrt(sum_i g_i^2) before clipping
    (computed in float64, so that it does not itself overflow).

    by value:  g_i <- max(-c, min(c, g_i))      (each component; the direction changes)
    by norm:   g <- g * m / ||g||  if ||g|| > m  (the whole vector; the direction is kept)"""
    for name, v in (("clip_value", clip_value), ("clip_norm", clip_norm)):
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive number or None, got {v!r}.")
    params = [p for p in parameters if p.grad is not None]
    if not params:
        return 0.0
    # one norm of all gradients laid end to end: 2 operations instead of 2 per tensor (a 100-block network has 300)
    norm = torch.linalg.vector_norm(torch.cat([p.grad.detach().reshape(-1) for p in params]), dtype=torch.float64)
    if clip_value is not None:
        nn.utils.clip_grad_value_(params, clip_value)
    if clip_norm is not None:
        nn.utils.clip_grad_norm_(params, clip_norm)
    return float(norm)


def plateau(factor: float = 0.1, patience: int = 1, threshold: float = 1e-4) -> Callable:
    """A scheduler factory for :func:`fit`: ``ReduceLROnPlateau`` on the validation loss (lr <- factor * lr
    when the loss has not improved by ``threshold`` (relative) for ``patience`` evaluations)."""
    return lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=factor,
                                                                  patience=patience, threshold=threshold)  # fmt: skip


def _weighted_index(model: nn.Module, layer: str) -> tuple[int, int]:
    """(k, L): ``layer`` is at or after the k-th of the model's L weighted layers (forward order)."""
    k = total = 0
    for n, m in model.named_modules():
        if isinstance(m, WEIGHTED):
            total += 1
        if n == layer:
            k = total
    return k, total


def _diverged(fit: Fit, xb, yb, what: str) -> DivergenceError:
    found = probes.locate_nonfinite(fit.model, xb, yb, fit.loss_fn, select=probes.leaves)
    kind, layer = found if found is not None else ("loss", "")
    index, of = _weighted_index(fit.model, layer) if layer else (0, 0)
    fit.run.nonfinite = {"step": fit.step, "kind": kind, "layer": layer, "index": index, "of": of}
    if kind == "input":
        where, advice = "the input batch itself holds NaN or inf", "Check the data (a corrupt image, a division by 0)."
    elif kind == "loss":
        where = "every layer's output and gradient is finite; the loss itself is not"
        advice = "Check the loss function and the labels."
    else:
        module = dict(fit.model.named_modules())[layer]
        where = f"first non-finite {kind}: layer '{layer}' ({type(module).__name__}, weighted layer {index} of {of})"
        advice = ("Try a smaller learning rate, gradient clipping (clip_norm= or clip_value=), a better-scaled "
                  "initialization, or BatchNorm.")  # fmt: skip
    return DivergenceError(f"training diverged at step {fit.step} (epoch {fit.epoch}): {what}; {where}. {advice}",
                           fit.run)  # fmt: skip


def _restore(buffers: list[torch.Tensor], saved: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for b, s in zip(buffers, saved, strict=True):
            b.copy_(s)


def _call(callbacks, event: str, fit: Fit) -> None:
    for cb in callbacks:
        method = getattr(cb, event, None)
        if method is not None:
            method(fit)


# ---------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------
def fit(model: nn.Module, train_loader, val_loader=None, *, epochs: int | None = None, steps: int | None = None,
        lr: float = 0.01, momentum: float = 0.9, optimizer: torch.optim.Optimizer | None = None,
        scheduler: Callable | None = None, clip_value: float | None = None, clip_norm: float | None = None,
        eval_every: int | None = None, callbacks: Iterable = (), on_divergence: str = "raise",
        loss_fn: Callable | None = None, name: str = "", verbose: bool = False) -> Run:  # fmt: skip
    """Train ``model`` for ``epochs`` passes over ``train_loader`` or for ``steps`` optimizer steps (give one);
    return the :class:`Run`.  See the module docstring for what happens at every step.

    ``scheduler``: a factory ``optimizer -> scheduler`` such as :func:`plateau`.  ``eval_every``: evaluate
    every so many steps (default: at the end of every epoch; with ``steps``, a tenth of the budget, and at
    step 0).  ``verbose``: print one line per evaluation."""
    if (epochs is None) == (steps is None):
        raise ValueError("give either epochs= (passes over the data) or steps= (a step budget), not both.")
    budget = epochs if epochs is not None else steps
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"{'epochs' if epochs is not None else 'steps'} must be a positive integer, got {budget!r}.")
    if optimizer is None and not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}.")
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be 'raise' or 'stop', got {on_divergence!r}.")
    clip_gradients_([], clip_value, clip_norm)  # validates both
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise ValueError(f"eval_every must be a positive number of steps or None, got {eval_every!r}.")
    if hasattr(train_loader, "__len__") and len(train_loader) == 0:
        raise ValueError("train_loader yields no batches (fewer examples than one batch with drop_last?): "
                         "nothing to train on.")  # fmt: skip
    if steps is not None and eval_every is None:
        eval_every = max(1, steps // 10)
    callbacks = list(callbacks)
    opt = optimizer if optimizer is not None else torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                                                  foreach=True)  # one call for all tensors  # fmt: skip
    state = Fit(model, opt, scheduler(opt) if scheduler is not None else None,
                nn.functional.cross_entropy if loss_fn is None else loss_fn, train_loader, val_loader,
                Run(name=name), device_of(model))  # fmt: skip
    start = time.perf_counter()
    _call(callbacks, "before_fit", state)  # a Checkpoint(resume=True) may restore step, epoch and run here
    since = {"loss": 0.0, "correct": 0, "seen": 0}

    def record_eval() -> None:
        val_loss = val_acc = math.nan
        if val_loader is not None:
            val_loss, val_acc = evaluate(model, val_loader, state.loss_fn)
        seen = max(since["seen"], 1)
        state.run.evals.append({"step": state.step, "epoch": state.epoch,
                                "train_loss": since["loss"] / seen if since["seen"] else math.nan,
                                "train_acc": since["correct"] / seen if since["seen"] else math.nan,
                                "val_loss": val_loss, "val_acc": val_acc, "lr": opt.param_groups[0]["lr"]})  # fmt: skip
        since.update(loss=0.0, correct=0, seen=0)
        if isinstance(state.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and val_loader is not None:
            state.scheduler.step(val_loss)
            state.run.evals[-1]["lr"] = opt.param_groups[0]["lr"]
        if verbose:
            e = state.run.evals[-1]
            print(f"{name + ': ' if name else ''}step {e['step']:>6} (epoch {e['epoch']}): train loss "
                  f"{e['train_loss']:.4f}, val loss {e['val_loss']:.4f}, val acc {e['val_acc']:.3f}, lr {e['lr']:.0e}")  # fmt: skip
        _call(callbacks, "after_eval", state)

    def done() -> bool:
        return state.stop or (steps is not None and state.step >= steps)

    buffers = list(model.buffers())
    try:
        if steps is not None and state.step == 0:
            record_eval()
        while not done() and (epochs is None or state.epoch < epochs):
            state.epoch += 1
            model.train()
            batches = 0
            for xb, yb in train_loader:
                batches += 1
                state.step += 1
                xb, yb = xb.to(state.device, non_blocking=True), yb.to(state.device, non_blocking=True)
                _call(callbacks, "before_step", state)
                saved = [b.clone() for b in buffers]  # a diverged step must not leave NaN in BatchNorm's averages
                out = model(xb)
                loss = state.loss_fn(out, yb)
                state.loss = loss.item()
                norm = math.nan
                if math.isfinite(state.loss):
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    _call(callbacks, "after_backward", state)  # the raw gradients, before clipping
                    norm = clip_gradients_(model.parameters(), clip_value, clip_norm)
                if not math.isfinite(norm):  # stop before the update, BatchNorm's averages as they were
                    _restore(buffers, saved)
                    state.run.step_loss.append(state.loss)
                    what = f"loss = {state.loss:.4g}" + (f", gradient norm = {norm:.4g}" if math.isfinite(state.loss) else "")
                    err = _diverged(state, xb, yb, what)
                    if on_divergence == "raise":
                        raise err
                    return state.run
                opt.step()
                if state.scheduler is not None and not isinstance(state.scheduler,
                                                                  torch.optim.lr_scheduler.ReduceLROnPlateau):  # fmt: skip
                    state.scheduler.step()
                state.run.step_loss.append(state.loss)
                state.run.grad_norm.append(norm)
                since["loss"] += state.loss * len(yb)
                since["correct"] += int((out.argmax(dim=1) == yb).sum())
                since["seen"] += len(yb)
                _call(callbacks, "after_step", state)
                if eval_every is not None and state.step % eval_every == 0:
                    record_eval()
                if done():
                    break
            if batches == 0:
                raise ValueError("train_loader yielded no batches: nothing to train on.")
            if eval_every is None:
                record_eval()
            _call(callbacks, "after_epoch", state)
        if eval_every is not None and (not state.run.evals or state.run.evals[-1]["step"] != state.step):
            record_eval()
    finally:
        state.run.seconds += time.perf_counter() - start
        _call(callbacks, "after_fit", state)
    return state.run


# ---------------------------------------------------------------------------------------------------
# Callbacks
# ---------------------------------------------------------------------------------------------------
class Checkpoint:
    """Save model, optimizer, scheduler, counters, the run so far and every random state (the loaders'
    generators too) to ``path`` after every epoch (or every ``every`` steps), atomically.  With
    ``resume=True`` and an existing file, :func:`fit` first restores all of it and continues where the
    checkpoint left off: the result is bit-identical to an uninterrupted run (:mod:`lecture_utils.checkpoints`)."""

    def __init__(self, path: Path | str, resume: bool = False, every: int | None = None):
        if every is not None and (not isinstance(every, int) or every < 1):
            raise ValueError(f"every must be a positive number of steps or None, got {every!r}.")
        self.path, self.resume, self.every = Path(path), resume, every
        self.resumed_from: int | None = None

    def before_fit(self, fit: Fit) -> None:
        checkpoints.check_writable(self.path)  # now, not after the first epoch
        if self.resume and self.path.exists():
            state = checkpoints.load(self.path, fit.model, fit.optimizer, fit.scheduler, fit.loaders)
            fit.step, fit.epoch = state["step"], state["epoch"]
            fit.run = Run.from_state(state["history"])
            self.resumed_from = fit.epoch

    def _save(self, fit: Fit) -> None:
        checkpoints.save(self.path, model=fit.model, optimizer=fit.optimizer, scheduler=fit.scheduler,
                         epoch=fit.epoch, step=fit.step, history=fit.run.state(), loaders=fit.loaders)  # fmt: skip

    def after_step(self, fit: Fit) -> None:
        if self.every is not None and fit.step % self.every == 0:
            self._save(fit)

    def after_epoch(self, fit: Fit) -> None:
        if self.every is None:
            self._save(fit)


class TensorBoard:
    """Log to TensorBoard under ``log_dir`` (one directory per run): per step ``loss/train_step``; per
    evaluation ``loss/train``, ``loss/validation``, ``accuracy/train``, ``accuracy/validation``, ``lr``; with
    ``histograms`` the weights and gradients of every layer at each evaluation.  A new run (not resumed)
    first empties ``log_dir``, so that running a notebook twice does not draw every curve twice."""

    def __init__(self, log_dir: Path | str, histograms: bool = True):
        self.log_dir, self.histograms = Path(log_dir), histograms
        self.writer = None

    def before_fit(self, fit: Fit) -> None:
        from torch.utils.tensorboard import SummaryWriter

        resumed = fit.step > 0
        if not resumed and self.log_dir.is_dir():
            stray = [p for p in self.log_dir.rglob("*") if p.is_file() and "tfevents" not in p.name]
            if stray:
                raise ValueError(f"{self.log_dir} holds files that are not TensorBoard logs ({stray[0].name}, ...): "
                                 "choose an empty or new log_dir.")  # fmt: skip
            shutil.rmtree(self.log_dir)
        self.writer = SummaryWriter(str(self.log_dir), purge_step=fit.step + 1 if resumed else None)

    def after_step(self, fit: Fit) -> None:
        self.writer.add_scalar("loss/train_step", fit.loss, fit.step)

    def after_eval(self, fit: Fit) -> None:
        e = fit.run.evals[-1]
        for tag, key in (("loss/train", "train_loss"), ("loss/validation", "val_loss"),
                         ("accuracy/train", "train_acc"), ("accuracy/validation", "val_acc"), ("lr", "lr")):  # fmt: skip
            if math.isfinite(e[key]):
                self.writer.add_scalar(tag, e[key], e["step"])
        if self.histograms:
            for n, p in fit.model.named_parameters():
                self.writer.add_histogram(f"weights/{n}", p.detach().cpu(), e["step"])
                if p.grad is not None:
                    self.writer.add_histogram(f"gradients/{n}", p.grad.detach().cpu(), e["step"])
        self.writer.flush()

    def after_fit(self, fit: Fit) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# ---------------------------------------------------------------------------------------------------
# Several networks of one shape at once (notebook 8's ladder)
# ---------------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_members(stack: nn.Module, loader, loss_fn: Callable | None = None) -> list[tuple[float, float]]:
    """:func:`evaluate` for each member of a stacked model (output (M, B, classes)): [(loss, accuracy), ...]."""
    loss_fn = nn.functional.cross_entropy if loss_fn is None else loss_fn
    device = device_of(stack)
    was = stack.training
    stack.eval()
    loss_sum = correct = None
    total = 0
    try:
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            out = stack(xb)
            losses = torch.stack([loss_fn(o, yb) for o in out]).double() * len(yb)
            hits = (out.argmax(dim=2) == yb).sum(dim=1)
            loss_sum = losses if loss_sum is None else loss_sum + losses
            correct = hits if correct is None else correct + hits
            total += len(yb)
    finally:
        stack.train(was)
    if total == 0:
        raise ValueError("evaluate_members needs a loader with at least one example.")
    return [(float(s) / total, int(c) / total) for s, c in zip(loss_sum, correct, strict=True)]


def fit_members(stack: nn.Module, train_loader, val_loader=None, *, steps: int, lr: float = 0.01,
                momentum: float = 0.9, eval_every: int | None = None, names: list[str] | None = None,
                loss_fn: Callable | None = None) -> list[Run]:  # fmt: skip
    """Train the M members of a :class:`lecture_utils.models.StackedMLP` together, as :func:`fit` trains each
    alone with ``steps=``, ``on_divergence="stop"`` and SGD with momentum: the same batches, the same updates,
    the same records (one :class:`Run` per member, in order).  Each step sums the members' losses, so that one
    backward pass gives every member its own gradient.  A member whose loss or gradient is not finite stops
    there, diagnosed as :func:`fit` would (step, kind, layer: its network is rebuilt and probed), and is frozen
    while the others go on.  ``Run.seconds`` is each member's share of the wall time."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}.")
    if eval_every is not None and (not isinstance(eval_every, int) or eval_every < 1):
        raise ValueError(f"eval_every must be a positive number of steps or None, got {eval_every!r}.")
    M = len(stack)
    names = [f"member {m + 1}" for m in range(M)] if names is None else list(names)
    if len(names) != M:
        raise ValueError(f"{len(names)} names for {M} members.")
    loss_fn = nn.functional.cross_entropy if loss_fn is None else loss_fn
    eval_every = max(1, steps // 10) if eval_every is None else eval_every
    params = list(stack.parameters())
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, foreach=True)
    runs = [Run(name=n) for n in names]
    active = [True] * M
    device = device_of(stack)
    since = [{"loss": 0.0, "correct": 0, "seen": 0} for _ in range(M)]
    step = epoch = 0
    start = time.perf_counter()

    def record_eval() -> None:
        results = evaluate_members(stack, val_loader, loss_fn) if val_loader is not None else [(math.nan,) * 2] * M
        for m in range(M):
            if not active[m]:
                continue
            seen = since[m]["seen"]
            runs[m].evals.append({"step": step, "epoch": epoch,
                                  "train_loss": since[m]["loss"] / seen if seen else math.nan,
                                  "train_acc": since[m]["correct"] / seen if seen else math.nan,
                                  "val_loss": results[m][0], "val_acc": results[m][1], "lr": lr})  # fmt: skip
            since[m].update(loss=0.0, correct=0, seen=0)

    record_eval()
    stack.train()
    try:
        while step < steps and any(active):
            epoch += 1
            batches = 0
            for xb, yb in train_loader:
                batches += 1
                step += 1
                xb, yb = xb.to(device), yb.to(device)
                out = stack(xb)
                losses = torch.stack([loss_fn(o, yb) for o in out])
                values = losses.tolist()
                opt.zero_grad(set_to_none=True)
                alive = [m for m in range(M) if active[m] and math.isfinite(values[m])]
                if alive:
                    losses[alive].sum().backward()
                norms = torch.zeros(M, dtype=torch.float64)
                for p in params:
                    if p.grad is not None:
                        norms += torch.linalg.vector_norm(p.grad.flatten(1), dim=1, dtype=torch.float64) ** 2
                norms = norms.sqrt().tolist()
                for m in range(M):
                    if active[m] and not (math.isfinite(values[m]) and math.isfinite(norms[m])):
                        active[m] = False  # stop before the update, diagnosed on the member's own network
                        runs[m].step_loss.append(values[m])
                        what = f"loss = {values[m]:.4g}" + (f", gradient norm = {norms[m]:.4g}"
                                                            if math.isfinite(values[m]) else "")  # fmt: skip
                        alone = stack.member(m)
                        state = Fit(alone, opt, None, loss_fn, train_loader, val_loader, runs[m], device, step, epoch)
                        _diverged(state, xb, yb, what)
                frozen = torch.tensor([not a for a in active])
                if frozen.any():
                    with torch.no_grad():
                        for p in params:
                            keep = frozen.view(-1, *([1] * (p.dim() - 1)))
                            if p.grad is not None:
                                p.grad.copy_(torch.where(keep, torch.zeros_like(p.grad), p.grad))
                            buf = opt.state.get(p, {}).get("momentum_buffer")
                            if buf is not None:
                                buf.copy_(torch.where(keep, torch.zeros_like(buf), buf))
                opt.step()
                hits = (out.detach().argmax(dim=2) == yb).sum(dim=1).tolist()
                for m in range(M):
                    if active[m]:
                        runs[m].step_loss.append(values[m])
                        runs[m].grad_norm.append(norms[m])
                        since[m]["loss"] += values[m] * len(yb)
                        since[m]["correct"] += hits[m]
                        since[m]["seen"] += len(yb)
                if step % eval_every == 0:
                    record_eval()
                if step >= steps or not any(active):
                    break
            if batches == 0:
                raise ValueError("train_loader yielded no batches: nothing to train on.")
        if any(active[m] and runs[m].evals[-1]["step"] != step for m in range(M)):
            record_eval()
    finally:
        seconds = time.perf_counter() - start
        for r in runs:
            r.seconds = seconds / M
    return runs
