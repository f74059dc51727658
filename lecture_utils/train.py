"""ONE training loop and ONE evaluation, with the safety equipment a real run needs (notebooks 07-10).

    run = fit(model, train_loader, val_loader, epochs=6, lr=0.05,
              callbacks=[Scheduler(plateau(patience=0)), Checkpoint("ckpt.pt"), TensorBoard("runs/bn")])
    run = fit(model, train_loader, val_loader, steps=300, lr=0.01, callbacks=[DivergenceGuard(stop=True)])
    loss, acc = evaluate(model, val_loader)

:func:`fit` is the loop notebook 07 writes by hand: forward, loss, backward, step (SGD with momentum,
v <- mu v + g, w <- w - lr v, unless you pass an optimizer), with *events* between its lines:

    before_fit
        before_epoch                                        then model.train()
            before_step      forward, loss, zero_grad, backward
            after_backward   (the raw gradients)             then the optimizer's step
            after_step
            after_eval       (sent by Evaluate, after each evaluation)
        after_epoch
    after_fit                (always, also after an error)

Everything else is a *callback*: an object with methods named after events, each called with the :class:`Fit`
state (fast.ai's idea; their course's miniai ``Learner`` runs callbacks by ``Callback.order``).  At every event
the callbacks run in increasing ``order``, so the order of the list you pass does not matter (an object without
``order`` runs at 0; equal orders keep the list's order, the defaults first):

    order  callback                      its job
    -30    Recorder          (always)    run.step_loss, run.grad_norm (before clipping), run.seconds
    -20    DivergenceGuard   (default)   a non-finite loss or gradient: stop before the update, name step and layer
    -10    Scheduler                     ReduceLROnPlateau after each evaluation, any other scheduler after each step
      0    yours                         e.g. probes.PercentileRecorder, probes.UpdateRatio; after_backward sees the
                                         raw gradients
     10    Clip                          clip the gradients by value or by norm, after all that read them raw
     20    Evaluate          (default)   evaluate(model, val_loader) after each epoch, or every so many steps
     30    Checkpoint                    restores before anything reads the counters; saves after the evaluation
     40    TensorBoard, PrintEvals       report what the others recorded (TensorBoard knows a resumed run)

:func:`fit` adds the defaults unless you pass one of that class: ``DivergenceGuard(stop=True)`` returns a diverged
run instead of raising, ``Evaluate(every=50)`` evaluates every 50 steps.  A callback ends the run after the current
step with ``fit.stop = True``, or at once by raising :class:`StopFit`.  Bad input fails before anything is trained:
a learning rate that is not a positive finite number, an empty loader, a callback method named after no event, a
checkpoint folder that cannot be written.  See Ioffe & Szegedy (2015); Prince, Understanding Deep Learning (2023),
sections 6.3 (momentum) and 11.4; Pascanu et al. (2013) for clipping.

Several networks of one shape train as one model (notebook 8's ladder, :class:`lecture_utils.models.StackedMLP`)
with the same loop: :class:`Members` gives :func:`fit` the loss sum_m L_m (each member gets its own gradient) and
three callbacks that take the defaults' places and orders, :class:`RecordMembers` (-30), :class:`GuardMembers`
(-20: a diverged member is stopped, named and frozen, the others go on) and :class:`EvaluateMembers` (20), keeping
one :class:`Run` per member; :func:`fit_members` does that and returns those runs.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from . import checkpoints, probes
from .init import WEIGHTED

#: What one evaluation record holds (:attr:`Run.evals`).
EVAL_KEYS = ("step", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
#: The events of :func:`fit`, in the order they come (``after_eval`` is sent by :class:`Evaluate`).
EVENTS = ("before_fit", "before_epoch", "before_step", "after_backward", "after_step", "after_eval", "after_epoch",
          "after_fit")  # fmt: skip


@dataclass(frozen=True)
class NonFinite:
    """Where a run went non-finite (:attr:`Run.nonfinite`): at ``step``, of ``kind`` 'input' (the batch itself holds
    NaN or inf), 'activation' or 'gradient' (the first layer whose output, or the gradient reaching it, is not
    finite: ``layer`` is its name, ``index`` its position among the ``of`` weighted layers in forward order), or
    'loss' (every layer's output and gradient finite, the loss not)."""

    step: int
    kind: Literal["input", "activation", "gradient", "loss"]
    layer: str = ""
    index: int = 0
    of: int = 0

    def __str__(self) -> str:
        if self.kind in ("input", "loss"):
            return f"{self.kind} non-finite at step {self.step}"
        return f"{self.kind} non-finite at step {self.step}, layer {self.index}/{self.of} ({self.layer})"


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or gradient.  ``run`` is the run so far (its ``nonfinite`` names the
    step, the kind and the layer).  Shown as its message in a notebook."""

    def __init__(self, message: str, run: Run):
        super().__init__(message)
        self.run = run

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class StopFit(Exception):
    """Raised by a callback to end :func:`fit` at once (no further event but ``after_fit``); fit returns the run."""


@dataclass
class Run:
    """What :func:`fit` records.

    ``step_loss[t]``, ``grad_norm[t]``: training loss and gradient norm (before clipping) at step t + 1.
    ``evals``: one dict per evaluation with :data:`EVAL_KEYS` (train_* averaged since the previous one).
    ``nonfinite``: None, or the :class:`NonFinite` step that stopped the run.
    """

    name: str = ""
    step_loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    nonfinite: NonFinite | None = None
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
        return "ok" if self.nonfinite is None else str(self.nonfinite)

    def state(self) -> dict:
        """The run as plain data (for a checkpoint)."""
        return {"name": self.name, "step_loss": self.step_loss, "grad_norm": self.grad_norm, "evals": self.evals}

    @classmethod
    def from_state(cls, state: dict) -> Run:
        return cls(state.get("name", ""), list(state["step_loss"]), list(state["grad_norm"]), list(state["evals"]))


@dataclass(eq=False)
class Fit:
    """The training state every callback sees, and may change.

    ``step`` and ``epoch``: the numbers of the current ones (1-based; 0 before the first); ``xb, yb``: the batch,
    ``out``: the model's output, ``loss``: the loss (a tensor) of the current step; ``grad_norm``: the norm of its
    gradient before clipping (:class:`Recorder`); ``scheduler``: the one a :class:`Scheduler` built, or None;
    ``resumed``: whether a :class:`Checkpoint` restored a saved run; ``stop = True`` ends training after this step."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable
    train_loader: Iterable
    val_loader: Iterable | None
    epochs: int | None
    steps: int | None
    callbacks: list
    run: Run
    device: torch.device
    step: int = 0
    epoch: int = 0
    xb: torch.Tensor | None = None
    yb: torch.Tensor | None = None
    out: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    grad_norm: float = math.nan
    scheduler: object = None
    resumed: bool = False
    stop: bool = False

    @property
    def loaders(self) -> list:
        return [self.train_loader] + ([self.val_loader] if self.val_loader is not None else [])

    def emit(self, event: str) -> None:
        """Call each callback's method for ``event`` (the callbacks are sorted by their ``order``)."""
        for cb in self.callbacks:
            method = getattr(cb, event, None)
            if method is not None:
                method(self)

    def finished(self) -> bool:
        """Whether training is over: a callback said stop, or the step or epoch budget is spent."""
        return (self.stop or (self.steps is not None and self.step >= self.steps)
                or (self.epochs is not None and self.epoch >= self.epochs))  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------------
def fit(model: nn.Module, train_loader, val_loader=None, *, epochs: int | None = None, steps: int | None = None,
        lr: float = 0.01, momentum: float = 0.9, optimizer: torch.optim.Optimizer | None = None,
        callbacks: Iterable = (), loss_fn: Callable = nn.functional.cross_entropy, name: str = "") -> Run:  # fmt: skip
    """Train ``model`` for ``epochs`` passes over ``train_loader`` or for ``steps`` optimizer steps (give one) and
    return the :class:`Run`.  SGD(lr, momentum) unless you pass an ``optimizer``.  By default a non-finite step
    raises :class:`DivergenceError` and ``val_loader`` is evaluated after every epoch (with ``steps``: at step 0,
    every tenth of the budget and at the end); ``callbacks`` add or replace what happens at the events (see the
    module docstring)."""
    f = _prepare(model, train_loader, val_loader, epochs, steps, lr, momentum, optimizer, callbacks, loss_fn, name)
    try:
        f.emit("before_fit")
        while not f.finished():
            f.epoch += 1
            f.emit("before_epoch")
            model.train()
            for xb, yb in train_loader:
                f.step += 1
                f.xb, f.yb = xb.to(f.device, non_blocking=True), yb.to(f.device, non_blocking=True)
                f.emit("before_step")
                f.out = model(f.xb)  # forward
                f.loss = f.loss_fn(f.out, f.yb)  # loss
                f.optimizer.zero_grad()
                f.loss.backward()  # backward
                f.emit("after_backward")  # record; the guard stops a non-finite step here; clip
                f.optimizer.step()  # step
                f.emit("after_step")  # schedule, evaluate, checkpoint, log
                if f.stop or f.step == f.steps:  # a callback said stop, or the step budget is spent
                    break
            f.emit("after_epoch")
    except StopFit:
        pass
    finally:
        f.emit("after_fit")
    return f.run


def _prepare(model, train_loader, val_loader, epochs, steps, lr, momentum, optimizer, callbacks, loss_fn,
             name) -> Fit:  # fmt: skip
    """Check every argument (nothing is trained yet), add the default callbacks, sort all by ``order``."""
    if (epochs is None) == (steps is None):
        raise ValueError("give either epochs= (passes over the data) or steps= (a step budget), not both.")
    budget = epochs if epochs is not None else steps
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
        raise ValueError(f"{'epochs' if epochs is not None else 'steps'} must be a positive integer, got {budget!r}.")
    if optimizer is None and not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}.")
    if hasattr(train_loader, "__len__") and len(train_loader) == 0:
        raise ValueError("train_loader yields no batches (fewer examples than one batch with drop_last?): "
                         "nothing to train on.")  # fmt: skip
    callbacks = list(callbacks)
    for cb in callbacks:
        unknown = [n for n in dir(cb) if n.startswith(("before_", "after_")) and n not in EVENTS]
        if unknown:
            raise ValueError(f"{type(cb).__name__}.{unknown[0]} is named after no event of fit: name callback "
                             f"methods after one of {', '.join(EVENTS)}.")  # fmt: skip
    defaults = [cb for cb in (Recorder(), DivergenceGuard(), Evaluate())
                if not any(isinstance(c, type(cb)) for c in callbacks)]  # fmt: skip
    opt = optimizer if optimizer is not None else torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                                                  foreach=True)  # one call for all tensors  # fmt: skip
    return Fit(model, opt, loss_fn, train_loader, val_loader, epochs, steps,
               sorted([*defaults, *callbacks], key=lambda cb: getattr(cb, "order", 0)), Run(name=name),
               device_of(model))  # fmt: skip


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


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number or None, got {value!r}.")


def grad_norm(parameters) -> float:
    """||g|| = sqrt(sum_i g_i^2) over the gradients of ``parameters``, computed in float64 (so that it does not
    itself overflow); 0.0 when no parameter has a gradient."""
    grads = [p.grad.detach() for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    # one norm of all gradients laid end to end: 2 operations instead of 2 per tensor (a 100-block network has 300)
    return float(torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads]), dtype=torch.float64))


def clip_gradients_(parameters, clip_value: float | None = None, clip_norm: float | None = None) -> float:
    """Clip gradients in place; return the total L2 norm :func:`grad_norm` before clipping.

    by value:  g_i <- max(-c, min(c, g_i))      (each component; the direction changes)
    by norm:   g <- g * m / ||g||  if ||g|| > m  (the whole vector; the direction is kept)"""
    _check_positive("clip_value", clip_value)
    _check_positive("clip_norm", clip_norm)
    params = [p for p in parameters if p.grad is not None]
    norm = grad_norm(params)
    if clip_value is not None and params:
        nn.utils.clip_grad_value_(params, clip_value)
    if clip_norm is not None and params:
        nn.utils.clip_grad_norm_(params, clip_norm)
    return norm


def plateau(factor: float = 0.1, patience: int = 1, threshold: float = 1e-4) -> Callable:
    """A scheduler factory for :class:`Scheduler`: ``ReduceLROnPlateau`` on the validation loss (lr <- factor * lr
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


def _what(loss: float, norm: float) -> str:
    """What went non-finite: 'loss = nan', or 'loss = 2.3, gradient norm = inf'."""
    return f"loss = {loss:.4g}" + (f", gradient norm = {norm:.4g}" if math.isfinite(loss) else "")


def _diverged(fit: Fit, what: str) -> DivergenceError:
    """Name where step ``fit.step`` went non-finite (in ``fit.run.nonfinite``); the error that says so."""
    found = probes.locate_nonfinite(fit.model, fit.xb, fit.yb, fit.loss_fn, select=probes.leaves)
    kind, layer = found if found is not None else ("loss", "")
    index, of = _weighted_index(fit.model, layer) if layer else (0, 0)
    fit.run.nonfinite = NonFinite(fit.step, kind, layer, index, of)
    if kind == "input":
        where, advice = "the input batch itself holds NaN or inf", "Check the data (a corrupt image, a division by 0)."
    elif kind == "loss":
        where = "every layer's output and gradient is finite; the loss itself is not"
        advice = "Check the loss function and the labels."
    else:
        module = dict(fit.model.named_modules())[layer]
        where = f"first non-finite {kind}: layer '{layer}' ({type(module).__name__}, weighted layer {index} of {of})"
        advice = ("Try a smaller learning rate, gradient clipping (callbacks=[train.Clip(norm=...)]), a better-scaled "
                  "initialization, or BatchNorm.")  # fmt: skip
    return DivergenceError(f"training diverged at step {fit.step} (epoch {fit.epoch}): {what}; {where}. {advice}",
                           fit.run)  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Callbacks, in their order
# ---------------------------------------------------------------------------------------------------
class Recorder:
    """(Always there.)  Records the run: the loss of every step in ``run.step_loss`` (the diverged one included),
    the gradient norm of every step taken, before clipping, in ``run.grad_norm`` (and ``fit.grad_norm``; see
    :func:`grad_norm`), and the seconds spent in ``run.seconds``.  Refuses a loader that yields no batches."""

    order = -30

    def before_fit(self, fit: Fit) -> None:
        self.start = time.perf_counter()

    def before_epoch(self, fit: Fit) -> None:
        self.first_step = fit.step

    def after_backward(self, fit: Fit) -> None:
        fit.run.step_loss.append(fit.loss.item())
        fit.grad_norm = grad_norm(fit.model.parameters())

    def after_step(self, fit: Fit) -> None:
        fit.run.grad_norm.append(fit.grad_norm)

    def after_epoch(self, fit: Fit) -> None:
        if fit.step == self.first_step:
            raise ValueError("train_loader yielded no batches: nothing to train on.")

    def after_fit(self, fit: Fit) -> None:
        fit.run.seconds += time.perf_counter() - self.start


class DivergenceGuard:
    """(Default.)  A step whose loss or gradient is not finite stops *before* its update: the weights, the
    optimizer's state and BatchNorm's running averages stay as they were before the step.  The batch is run again
    under a :class:`~lecture_utils.probes.Probe` to name the first non-finite layer, or to find that the batch itself
    holds NaN or inf (a :class:`NonFinite` in ``run.nonfinite``).  Then :class:`DivergenceError` is raised, or, with
    ``stop=True``, the run ends and :func:`fit` returns it."""

    order = -20

    def __init__(self, stop: bool = False):
        if not isinstance(stop, bool):
            raise ValueError(f"stop must be True (return the run) or False (raise DivergenceError), got {stop!r}.")
        self.stop = stop

    def before_step(self, fit: Fit) -> None:
        self.buffers = probes.BufferSnapshot(fit.model)  # the forward pass will update BatchNorm's averages

    def after_backward(self, fit: Fit) -> None:
        loss = fit.run.step_loss[-1]
        if math.isfinite(loss) and math.isfinite(fit.grad_norm):
            return
        self.buffers.restore()
        error = _diverged(fit, _what(loss, fit.grad_norm))
        if self.stop:
            raise StopFit
        raise error


class Scheduler:
    """Steps the learning-rate scheduler that ``make(optimizer)`` builds before training (``fit.scheduler``, which
    a :class:`Checkpoint` saves and restores): ``ReduceLROnPlateau`` on the validation loss after each evaluation
    (that evaluation's ``lr`` is then the new one), any other after each step.  ``Scheduler(plateau(patience=0))``."""

    order = -10

    def __init__(self, make: Callable):
        if not callable(make):
            raise ValueError(f"Scheduler needs a function optimizer -> scheduler (such as plateau()), got {make!r}.")
        self.make = make

    def before_fit(self, fit: Fit) -> None:
        fit.scheduler = self.make(fit.optimizer)

    def _on_plateau(self, fit: Fit) -> bool:
        return isinstance(fit.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def after_step(self, fit: Fit) -> None:
        if not self._on_plateau(fit):
            fit.scheduler.step()

    def after_eval(self, fit: Fit) -> None:
        if self._on_plateau(fit) and fit.val_loader is not None:
            record = fit.run.evals[-1]
            fit.scheduler.step(record["val_loss"])
            record["lr"] = fit.optimizer.param_groups[0]["lr"]


class Clip:
    """Clip the gradients between the backward pass and the update, after every callback that reads them raw:
    by ``value`` (Prince's "if |g_i| > c then g_i = +-c") and/or by ``norm`` (g <- g m / ||g|| when ||g|| > m;
    Pascanu et al. 2013); see :func:`clip_gradients_`.  ``run.grad_norm`` keeps the norm before clipping."""

    order = 10

    def __init__(self, value: float | None = None, norm: float | None = None):
        _check_positive("Clip's value", value)
        _check_positive("Clip's norm", norm)
        if value is None and norm is None:
            raise ValueError("Clip needs value= (clip each component) or norm= (clip the gradient's length).")
        self.value, self.norm = value, norm

    def after_backward(self, fit: Fit) -> None:
        clip_gradients_(fit.model.parameters(), self.value, self.norm)


class Evaluate:
    """(Default.)  :func:`evaluate` on the validation loader (``model.eval()``, ``no_grad``: BatchNorm uses its
    running averages) after every epoch, or every ``every`` steps; with a step budget (``fit(steps=...)``) by
    default every tenth of it, and at step 0 (the model as initialized).  The last step is always evaluated.
    Each evaluation appends a record of :data:`EVAL_KEYS` to ``run.evals`` (train_loss and train_acc: over the steps
    since the previous record) and sends the event ``after_eval``."""

    order = 20

    def __init__(self, every: int | None = None):
        if every is not None and (not isinstance(every, int) or isinstance(every, bool) or every < 1):
            raise ValueError(f"every must be a positive number of steps or None, got {every!r}.")
        self.every = every

    def before_fit(self, fit: Fit) -> None:
        self.period = self.every if self.every is not None or fit.steps is None else max(1, fit.steps // 10)
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0

    def before_epoch(self, fit: Fit) -> None:
        if fit.steps is not None and fit.step == 0:  # a new run on a step budget: before the first update
            self.evaluate(fit, epoch=0)

    def after_step(self, fit: Fit) -> None:
        self.accumulate(fit)
        if self.period is not None and fit.step % self.period == 0:
            self.evaluate(fit)

    def accumulate(self, fit: Fit) -> None:
        """Add this step's training loss and correct predictions to those of the next record."""
        self.loss_sum += fit.run.step_loss[-1] * len(fit.yb)
        self.correct += int((fit.out.argmax(dim=1) == fit.yb).sum())
        self.seen += len(fit.yb)

    def after_epoch(self, fit: Fit) -> None:
        evaluated = bool(fit.run.evals) and fit.run.evals[-1]["step"] == fit.step
        if self.period is None or (fit.finished() and not evaluated):
            self.evaluate(fit)

    def evaluate(self, fit: Fit, epoch: int | None = None) -> None:
        val = evaluate(fit.model, fit.val_loader, fit.loss_fn) if fit.val_loader is not None else (math.nan,) * 2
        fit.run.evals.append(_record(fit, epoch, self.loss_sum, self.correct, self.seen, val))
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0
        fit.emit("after_eval")


def _record(fit: Fit, epoch: int | None, loss_sum: float, correct: int, seen: int, val: tuple[float, float]) -> dict:
    """One record of :data:`EVAL_KEYS` at the current step (train_*: the sums since the previous record over the
    ``seen`` examples; ``val``: (loss, accuracy))."""
    return {"step": fit.step, "epoch": fit.epoch if epoch is None else epoch,
            "train_loss": loss_sum / seen if seen else math.nan, "train_acc": correct / seen if seen else math.nan,
            "val_loss": val[0], "val_acc": val[1], "lr": fit.optimizer.param_groups[0]["lr"]}  # fmt: skip


class Checkpoint:
    """Save model, optimizer, scheduler, counters, the run so far and every random state (the loaders' generators
    too) to ``path`` after every epoch (or every ``every`` steps), atomically, after the evaluation of that step.
    With ``resume=True`` and an existing file, everything is first restored (before any other callback reads the
    counters; ``fit.resumed`` says so) and training continues where the checkpoint left off: the result is
    bit-identical to an uninterrupted run (:mod:`lecture_utils.checkpoints`)."""

    order = 30

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
            fit.resumed, self.resumed_from = True, fit.epoch

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
    ``histograms`` the weights and gradients of every layer at each evaluation.  A new run first empties
    ``log_dir``, so that running a notebook twice does not draw every curve twice; a run that a
    :class:`Checkpoint` resumed (it comes first: ``fit.resumed``) continues the log from its step."""

    order = 40

    def __init__(self, log_dir: Path | str, histograms: bool = True):
        self.log_dir, self.histograms = Path(log_dir), histograms
        self.writer = None

    def before_fit(self, fit: Fit) -> None:
        from torch.utils.tensorboard import SummaryWriter

        if not fit.resumed and self.log_dir.is_dir():
            stray = [p for p in self.log_dir.rglob("*") if p.is_file() and "tfevents" not in p.name]
            if stray:
                raise ValueError(f"{self.log_dir} holds files that are not TensorBoard logs ({stray[0].name}, ...): "
                                 "choose an empty or new log_dir.")  # fmt: skip
            shutil.rmtree(self.log_dir)
        self.writer = SummaryWriter(str(self.log_dir), purge_step=fit.step + 1 if fit.resumed else None)

    def after_step(self, fit: Fit) -> None:
        self.writer.add_scalar("loss/train_step", fit.run.step_loss[-1], fit.step)

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


class PrintEvals:
    """Print one line per evaluation: ``bn: step   1000 (epoch 3): train loss 1.2345, val loss 1.3456, val acc
    0.512, lr 5e-02``."""

    order = 40

    def after_eval(self, fit: Fit) -> None:
        e, name = fit.run.evals[-1], fit.run.name
        print(f"{name + ': ' if name else ''}step {e['step']:>6} (epoch {e['epoch']}): train loss "
              f"{e['train_loss']:.4f}, val loss {e['val_loss']:.4f}, val acc {e['val_acc']:.3f}, lr {e['lr']:.0e}")  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Several networks of one shape at once (notebook 8's ladder): fit on a stacked model, per-member callbacks
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


class Members:
    """The M members of a stacked model (output (M, B, classes): :class:`lecture_utils.models.StackedMLP`) trained
    by :func:`fit` as M separate networks.  :meth:`loss` is the loss to give fit,

        L = sum_m loss_fn(out[m], y)   over the members still training,   so that   dL/dW^(m) = dL_m/dW^(m):

    the members share no weight, so one backward pass gives each member exactly its own gradient, and SGD, acting
    elementwise, updates each as if it were alone.  :meth:`callbacks` record, guard and evaluate each member (they
    replace the defaults :class:`Recorder`, :class:`DivergenceGuard` and :class:`Evaluate`); ``runs`` holds one
    :class:`Run` per member, what ``fit(net, ..., callbacks=[DivergenceGuard(stop=True)])`` returns for that net:

        members = Members(stack, names=["xavier", "he"])
        fit(stack, loader, val_loader, steps=150, loss_fn=members.loss, callbacks=members.callbacks(every=50))
        members.runs

    fit's own run is the stacked model's: L and the norm of its gradient (non-finite at a step where a member
    diverges).  ``losses`` and ``norms``: the current step's loss and gradient norm of each member (the callbacks'
    hand-over)."""

    def __init__(self, stack: nn.Module, names: list[str] | None = None, loss_fn: Callable | None = None):
        names = [f"member {m + 1}" for m in range(len(stack))] if names is None else list(names)
        if len(names) != len(stack):
            raise ValueError(f"{len(names)} names for {len(stack)} members.")
        self.runs = [Run(name=n) for n in names]
        self.loss_fn = nn.functional.cross_entropy if loss_fn is None else loss_fn
        self.losses: torch.Tensor | None = None
        self.norms: list[float] = []

    def loss(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """L = sum_m loss_fn(out[m], y) over the members still training; keeps the M losses in ``losses``."""
        losses = torch.stack([self.loss_fn(o, y) for o in out])
        self.losses = losses.detach()
        return losses[self.active].sum()

    @property
    def active(self) -> list[int]:
        """The members still training (not stopped by :class:`GuardMembers`)."""
        return [m for m, run in enumerate(self.runs) if not run.diverged]

    def callbacks(self, every: int | None = None) -> list:
        """[RecordMembers, GuardMembers, EvaluateMembers(every)] for this stack."""
        return [RecordMembers(self), GuardMembers(self), EvaluateMembers(self, every)]

    def check(self, fit: Fit) -> None:
        """Refuse, before anything is trained, what would not train the members as separate runs."""
        if not hasattr(fit.model, "member") or len(fit.model) != len(self.runs):
            raise ValueError(f"Members has {len(self.runs)} runs: train a stacked model of as many members "
                             "(models.StackedMLP) with it.")  # fmt: skip
        if fit.loss_fn != self.loss:
            raise ValueError("fit on a stacked model needs loss_fn=members.loss (the sum of the members' losses).")
        for cb in fit.callbacks:
            if isinstance(cb, Clip) and cb.norm is not None:
                raise ValueError("Clip(norm=...) would clip the stack's gradient as one vector, coupling the "
                                 "members: clip by value, or train the networks separately.")  # fmt: skip
            if isinstance(cb, Checkpoint):
                raise ValueError("a Checkpoint saves the stack's run, not the members' runs: train the networks "
                                 "separately to checkpoint them.")  # fmt: skip
        if any(group.get("weight_decay", 0) for group in fit.optimizer.param_groups):
            raise ValueError("weight decay would still move a stopped member: use an optimizer without it.")


def _member_grad_norms(params: list[torch.Tensor], M: int) -> torch.Tensor:
    """||g_m||^2 for each member m (float64, shape (M,)): every parameter's first dimension is the member's."""
    squares = torch.zeros(M, dtype=torch.float64)
    for p in params:
        if p.grad is not None:
            squares += torch.linalg.vector_norm(p.grad.flatten(1), dim=1, dtype=torch.float64) ** 2
    return squares


class RecordMembers(Recorder):
    """(Replaces :class:`Recorder`.)  Records each member's run as Recorder records a run: the loss of every step in
    ``runs[m].step_loss`` (the one it stopped at included), the norm of its own gradient, before clipping, at every
    step it takes in ``runs[m].grad_norm``, and its share (1/M) of the seconds; and the stack's run: the loss L,
    the gradient norm sqrt(sum_m ||g_m||^2) over the same members.  Checks the set-up first (:meth:`Members.check`)."""

    order = -30

    def __init__(self, members: Members):
        self.members = members

    def before_fit(self, fit: Fit) -> None:
        super().before_fit(fit)
        self.members.check(fit)
        self.params = list(fit.model.parameters())  # once: a deep stack's module tree is long to walk every step

    def after_backward(self, fit: Fit) -> None:
        members, active = self.members, self.members.active
        fit.run.step_loss.append(fit.loss.item())
        squares = _member_grad_norms(self.params, len(members.runs))
        fit.grad_norm, members.norms = float(squares[active].sum().sqrt()), squares.sqrt().tolist()
        losses = members.losses.tolist()
        for m in active:
            members.runs[m].step_loss.append(losses[m])

    def after_step(self, fit: Fit) -> None:
        super().after_step(fit)
        for m in self.members.active:
            self.members.runs[m].grad_norm.append(self.members.norms[m])

    def after_fit(self, fit: Fit) -> None:
        before = fit.run.seconds
        super().after_fit(fit)
        for run in self.members.runs:
            run.seconds += (fit.run.seconds - before) / len(self.members.runs)


class GuardMembers(DivergenceGuard):
    """(Replaces :class:`DivergenceGuard`.)  A member whose loss or gradient is not finite stops at that step, before
    its update: named as DivergenceGuard names a run's step (its own network, ``stack.member(m)``, probed on the
    batch: a :class:`NonFinite` in ``runs[m].nonfinite``), then frozen: its optimizer state (the momentum) is zeroed
    now and its gradient at this and every later step, so that no update moves it, while the others go on.  When
    no member is left, the fit ends (:class:`StopFit`)."""

    order = -20

    def __init__(self, members: Members):
        super().__init__(stop=True)
        self.members = members

    def before_fit(self, fit: Fit) -> None:
        self.params = list(fit.model.parameters())

    def before_step(self, fit: Fit) -> None:
        pass  # no running averages to keep (a StackedMLP has no BatchNorm): nothing to snapshot

    def after_backward(self, fit: Fit) -> None:
        members = self.members
        for m in members.active:
            loss, norm = members.runs[m].step_loss[-1], members.norms[m]
            if not (math.isfinite(loss) and math.isfinite(norm)):
                member = replace(fit, model=fit.model.member(m), loss_fn=members.loss_fn, run=members.runs[m])
                _diverged(member, _what(loss, norm))  # names the step, the kind and the layer in runs[m]
                for p in self.params:
                    for state in fit.optimizer.state.get(p, {}).values():
                        if torch.is_tensor(state) and state.shape == p.shape:
                            state[m] = 0
        if not members.active:
            raise StopFit
        stopped = [m for m, run in enumerate(members.runs) if run.diverged]
        if stopped:
            for p in self.params:
                if p.grad is not None:
                    p.grad[stopped] = 0


class EvaluateMembers(Evaluate):
    """(Replaces :class:`Evaluate`, on its schedule.)  Evaluates the members still training in one pass of the stack
    (:func:`evaluate_members`) and appends to each one's ``runs[m].evals`` what Evaluate appends to a run of its own.
    The stack's record in ``fit.run.evals``: the sum of their losses (as L) and the mean of their accuracies.
    A ReduceLROnPlateau :class:`Scheduler` is refused (it would lower one learning rate for all members)."""

    order = 20

    def __init__(self, members: Members, every: int | None = None):
        super().__init__(every)
        self.members = members

    def before_fit(self, fit: Fit) -> None:
        if isinstance(fit.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            raise ValueError("Scheduler(plateau()) would lower the learning rate of all members when their "
                             "summed validation loss stalls: use a schedule by steps, or train the networks "
                             "separately.")  # fmt: skip
        super().before_fit(fit)
        self.since = [(0.0, 0, 0)] * len(self.members.runs)  # (loss sum, correct, seen) of each member

    def accumulate(self, fit: Fit) -> None:
        hits = (fit.out.detach().argmax(dim=2) == fit.yb).sum(dim=1).tolist()
        for m in self.members.active:
            loss_sum, correct, seen = self.since[m]
            self.since[m] = (loss_sum + self.members.runs[m].step_loss[-1] * len(fit.yb), correct + hits[m],
                             seen + len(fit.yb))  # fmt: skip

    def evaluate(self, fit: Fit, epoch: int | None = None) -> None:
        members = self.members
        val = (evaluate_members(fit.model, fit.val_loader, members.loss_fn) if fit.val_loader is not None
               else [(math.nan, math.nan)] * len(members.runs))  # fmt: skip
        records = []
        for m in members.active:
            records.append(_record(fit, epoch, *self.since[m], val[m]))
            members.runs[m].evals.append(records[-1])
            self.since[m] = (0.0, 0, 0)
        stack = {k: sum(r[k] for r in records) for k in ("train_loss", "val_loss")}
        stack.update({k: sum(r[k] for r in records) / len(records) for k in ("train_acc", "val_acc")})
        fit.run.evals.append({**records[0], **stack})
        fit.emit("after_eval")


def fit_members(stack: nn.Module, train_loader, val_loader=None, *, steps: int, lr: float = 0.01,
                momentum: float = 0.9, eval_every: int | None = None, names: list[str] | None = None,
                loss_fn: Callable | None = None, callbacks: Iterable = ()) -> list[Run]:  # fmt: skip
    """Train the M members of a :class:`lecture_utils.models.StackedMLP` together, as :func:`fit` trains each alone
    with ``steps=``, ``Evaluate(every=eval_every)`` and ``DivergenceGuard(stop=True)``: the same batches, the same
    updates, the same records; return one :class:`Run` per member, in order.  It is :func:`fit` on the stack with
    :class:`Members`' loss and callbacks (a member that diverges is stopped, named and frozen while the others go
    on); ``callbacks`` adds yours."""
    members = Members(stack, names, loss_fn)
    fit(stack, train_loader, val_loader, steps=steps, lr=lr, momentum=momentum, loss_fn=members.loss,
        callbacks=[*members.callbacks(eval_every), *callbacks])  # fmt: skip
    return members.runs
