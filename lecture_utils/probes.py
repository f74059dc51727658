"""Every hook of the lecture: per-layer statistics of activations and gradients (notebooks 05-10).

    with Probe(model, select=["fc1", "fc50"]) as probe:   # module names, types, or a predicate
        loss_fn(model(x), y).backward()
    probe.forward["fc50"].var      # Var of fc50's output over all its elements
    probe.backward["fc50"].var     # Var of dLoss/d(output of fc50)

Hooks live only inside the ``with`` block: they are removed when it ends, even if it raises (fast.ai's
``Hooks`` are context managers for the same reason).  Statistics are computed in float64 on a detached
copy, so probing never changes the model's computation.  A forward call replaces the previous record.

Training-time probes are callbacks of :func:`lecture_utils.train.fit` (methods named after its events):
:class:`PercentileRecorder` (Ioffe & Szegedy's Figure 1), :class:`UpdateRatio` (Karpathy's update-to-data ratio)
and :class:`LayerHistograms` (Karpathy's per-layer activation and gradient histograms, during training; notebook 08).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .init import WEIGHTED, weighted_layers

#: |x| above this counts as saturated for tanh (Karpathy, makemore part 3).
SATURATION = 0.97


@dataclass
class Stats:
    """Statistics of one tensor over all its elements: mean, (biased) variance, second moment, the fraction
    of exact zeros (dead ReLU outputs) and of saturated values (|x| > 0.97, for tanh)."""

    mean: float
    var: float
    mean_sq: float
    numel: int
    finite: bool
    frac_zero: float = math.nan
    frac_saturated: float = math.nan
    sample: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    @torch.no_grad()
    def of(cls, t: torch.Tensor, sample: int = 0) -> Stats:
        x = t.detach().to(torch.float64).flatten()
        n = x.numel()
        if n == 0:
            return cls(math.nan, math.nan, math.nan, 0, True)
        kept = x[:sample].to(torch.float32).cpu().clone() if sample else None
        return cls(float(x.mean()), float(x.var(unbiased=False)), float((x * x).mean()), n,
                   bool(torch.isfinite(x).all()), float((x == 0).double().mean()),
                   float((x.abs() > SATURATION).double().mean()), kept)  # fmt: skip


Selector = tuple[type, ...] | Callable[[str, nn.Module], bool] | Iterable[str]


def _selected(model: nn.Module, select: Selector | None) -> list[tuple[str, nn.Module]]:
    named = [(n, m) for n, m in model.named_modules() if n]
    if select is None:
        select = WEIGHTED
    if isinstance(select, tuple) and all(isinstance(s, type) for s in select):
        chosen = [(n, m) for n, m in named if isinstance(m, select)]
    elif callable(select):
        chosen = [(n, m) for n, m in named if select(n, m)]
    else:
        wanted = list(select)
        modules = dict(named)
        missing = [w for w in wanted if w not in modules]
        if missing:
            raise ValueError(f"no modules named {missing}; the model has: {', '.join(list(modules)[:20])} ...")
        chosen = [(w, modules[w]) for w in wanted]
    if not chosen:
        raise ValueError("the selection matched no module: pass module types, names, or a predicate that matches.")
    return chosen


def leaves(name: str, module: nn.Module) -> bool:
    """A selector for :class:`Probe`: every module without children (each layer of a Sequential)."""
    return next(module.children(), None) is None


class Probe:
    """Record per-layer output and output-gradient statistics of ``model`` while the ``with`` block runs.

    ``select``: module types (default Linear and ConvNd), module names, or a predicate ``f(name, module)``.
    ``sample``: keep the first ``sample`` values of each tensor (for histograms); 0 keeps none.
    ``backward``: also record dLoss/d(output) of each selected module.
    """

    def __init__(self, model: nn.Module, select: Selector | None = None, sample: int = 0, backward: bool = True):
        if not isinstance(sample, int) or sample < 0:
            raise ValueError(f"sample must be a number of values >= 0, got {sample!r}.")
        self.model = model
        self.modules = _selected(model, select)
        self.names = [n for n, _ in self.modules]
        self.sample = sample
        self.record_backward = backward
        self.forward: dict[str, Stats] = {}
        self.backward: dict[str, Stats] = {}
        self._handles: list = []

    def __enter__(self) -> Probe:
        for name, module in self.modules:
            self._handles.append(module.register_forward_hook(self._forward_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook (called on leaving the ``with`` block)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _forward_hook(self, name: str):
        def hook(module, inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            self.forward[name] = Stats.of(output, self.sample)
            if self.record_backward and output.requires_grad:

                def grad_hook(grad):
                    self.backward[name] = Stats.of(grad, self.sample)

                output.register_hook(grad_hook)

        return hook

    def values(self, which: str = "forward", stat: str = "var") -> np.ndarray:
        """One statistic (``var``, ``mean_sq``, ``frac_zero`` ...) per selected layer, in layer order; NaN where
        nothing was recorded.  ``which``: 'forward' or 'backward'."""
        if which not in ("forward", "backward"):
            raise ValueError(f"which must be 'forward' or 'backward', got {which!r}.")
        record = self.forward if which == "forward" else self.backward
        return np.array([getattr(record[n], stat) if n in record else math.nan for n in self.names])

    def first_nonfinite(self) -> tuple[str, str] | None:
        """('activation', name) of the first layer, in forward order, whose output is not finite; else
        ('gradient', name) of the first layer, in backward order (last layer first), whose gradient is
        not finite; None when everything recorded is finite."""
        for n in self.names:
            if n in self.forward and not self.forward[n].finite:
                return ("activation", n)
        for n in reversed(self.names):
            if n in self.backward and not self.backward[n].finite:
                return ("gradient", n)
        return None


class BufferSnapshot:
    """A copy of ``model``'s buffers (BatchNorm's running mean and variance, its count of batches) that
    :meth:`restore` puts back; as a context manager it puts them back when the block ends, even if it raises.

    A forward pass in ``train()`` mode updates those running averages: a probe, or a training step that is thrown
    away (a diverged one, :class:`lecture_utils.train.Guard`), must leave no trace in them (notebooks 07, 09)."""

    def __init__(self, model: nn.Module):
        self.saved = [(b, b.clone()) for b in model.buffers()]

    @torch.no_grad()
    def restore(self) -> None:
        for buffer, copy in self.saved:
            buffer.copy_(copy)

    def __enter__(self) -> BufferSnapshot:
        return self

    def __exit__(self, *exc) -> None:
        self.restore()


def locate_nonfinite(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable,
                     select: Selector | None = None) -> tuple[str, str] | None:  # fmt: skip
    """Re-run one forward/backward pass of ``loss_fn(model(x), y)`` under a :class:`Probe` and name the first
    non-finite tensor: ('input', '') when the batch itself holds inf/NaN (the data, not the network); else
    :meth:`Probe.first_nonfinite`; else ('gradient', name) of the last selected layer (in backward order,
    the first reached) whose weight gradient is not finite.  None when everything is finite.  The model's
    gradients are cleared before and after, and its buffers (BatchNorm's running averages) restored, so a diverged
    step is diagnosed before (instead of) its update and leaves no trace."""
    if not bool(torch.isfinite(x).all()):
        return ("input", "")
    model.zero_grad(set_to_none=True)
    with BufferSnapshot(model), Probe(model, select=select) as probe:  # BatchNorm's running averages kept
        loss = loss_fn(model(x), y)
        if loss.requires_grad:
            loss.backward()
    found = probe.first_nonfinite()
    if found is None:
        for name, layer in reversed(probe.modules):
            g = getattr(getattr(layer, "weight", None), "grad", None)
            if g is not None and not bool(torch.isfinite(g).all()):
                found = ("gradient", name)
                break
    model.zero_grad(set_to_none=True)
    return found


def weight_grad_variances(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                          loss_fn: Callable = nn.functional.cross_entropy) -> np.ndarray:  # fmt: skip
    """Var[dL/dW] of every Linear/ConvNd weight (forward order) for one batch, before any update: how much
    gradient reaches each layer at step 0 (notebooks 08-09).  inf/NaN are kept as float32 produced them.
    The model's gradients are cleared afterwards."""
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    if loss.requires_grad and math.isfinite(loss.item()):
        loss.backward()
    out = [float(m.weight.grad.double().var(unbiased=False)) if m.weight.grad is not None else math.nan
           for _, m in weighted_layers(model)]  # fmt: skip
    model.zero_grad(set_to_none=True)
    return np.array(out)


@torch.no_grad()
def stream_variances(model: nn.Module, x: torch.Tensor, blocks: list[str], train: bool = True) -> np.ndarray:
    """Var[h_k] of a residual stream, k = 0 (``x``, the first block's input) .. K (the last block's output),
    over all elements, in float64 (Prince's Figure 11.6, notebook 10).  ``train=True`` runs BatchNorm on batch
    statistics, as at the first training step."""
    was = model.training
    model.train(train)
    try:
        with Probe(model, select=blocks, backward=False) as probe:
            model(x)
    finally:
        model.train(was)
    return np.concatenate([[float(x.double().var(unbiased=False))], probe.values("forward", "var")])


@torch.no_grad()
def input_percentiles(model: nn.Module, module: nn.Module, x: torch.Tensor, unit: int = 0,
                      q=(15, 50, 85)) -> list[float]:  # fmt: skip
    """Percentiles ``q`` of the input of ``module`` (e.g. a sigmoid) at hidden ``unit`` over the batch ``x``,
    computed as in training (BatchNorm normalizes with the batch's own statistics); BatchNorm's running
    averages and the model's mode are restored afterwards.  Ioffe & Szegedy (2015), Figure 1(b, c)."""
    seen = {}
    handle = module.register_forward_hook(lambda m, inputs, out: seen.setdefault("x", inputs[0].detach()))
    was = model.training
    try:
        with BufferSnapshot(model):
            model.train()
            model(x)
    finally:
        handle.remove()
        model.train(was)
    values = seen["x"].reshape(len(x), -1)[:, unit].to(torch.float64)
    return torch.quantile(values, torch.tensor(q, dtype=torch.float64, device=values.device) / 100).tolist()


class PercentileRecorder:
    """A :func:`lecture_utils.train.fit` callback recording :func:`input_percentiles` at step 1 and every
    ``every`` steps: ``steps`` and ``values`` (one [p15, p50, p85] list per record) (notebook 07)."""

    def __init__(self, module: nn.Module, x: torch.Tensor, unit: int = 0, every: int = 10, q=(15, 50, 85)):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every!r}.")
        self.module, self.x, self.unit, self.every, self.q = module, x, unit, every, tuple(q)
        self.steps: list[int] = []
        self.values: list[list[float]] = []

    def after_step(self, fit) -> None:
        if fit.step == 1 or fit.step % self.every == 0:
            self.steps.append(fit.step)
            self.values.append(input_percentiles(fit.model, self.module, self.x, self.unit, self.q))

    def median_drift(self) -> float:
        """How far the median moved over training: max - min of the recorded 50th percentiles."""
        med = [v[len(v) // 2] for v in self.values]
        return max(med) - min(med) if med else math.nan


class UpdateRatio:
    """A :func:`lecture_utils.train.fit` callback: every ``every`` steps, log10(std(Delta W) / std(W)) of each
    weight matrix for that step's update (Karpathy, makemore part 3: about -3 is healthy; much lower, the
    layer barely learns; much higher, it thrashes).  ``steps`` and ``ratios`` (one array per record)."""

    def __init__(self, every: int = 10):
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive number of steps, got {every!r}.")
        self.every = every
        self.steps: list[int] = []
        self.ratios: list[np.ndarray] = []
        self._before: list[torch.Tensor] | None = None

    def before_step(self, fit) -> None:
        if fit.step % self.every == 0:
            self._before = [m.weight.detach().clone() for _, m in weighted_layers(fit.model)]

    def after_step(self, fit) -> None:
        if self._before is None:
            return
        now = [m.weight.detach() for _, m in weighted_layers(fit.model)]
        ratios = [float(((w - b).double().std() / b.double().std()).log10()) for w, b in zip(now, self._before, strict=True)]
        self.steps.append(fit.step)
        self.ratios.append(np.array(ratios))
        self._before = None


@torch.no_grad()
def signal_propagation(weights: list[torch.Tensor], slope: float, x: torch.Tensor) -> dict[str, np.ndarray]:
    """How a plain leaky-ReLU MLP (layers ``weights[0]``, leaky ReLU, ``weights[1]``, ..., no biases) treats its inputs
    at initialization, exactly and in float64, without overflow or underflow at any depth (notebook 9).

    A ReLU-type network without biases is positively homogeneous, so the hidden vector is renormalized after every
    layer and its log-norm kept apart.  Returns ``log10_gain`` (n_inputs,): log10 |h_last| / |h_first| for each
    input; ``cosine`` (n, n): cosine similarity of the inputs' last hidden vectors (1 everywhere: the network has
    collapsed every input onto one direction); ``log10_jacobian_sv`` (width,): the log10 singular values of the
    Jacobian d h_last / d h_first at the first input, sorted (all near 0: dynamical isometry; spread over
    thousands of decades: the gradient reaching the first layer is a rank-one sliver)."""
    Ws = [w.detach().double() for w in weights]
    h = x.reshape(len(x), -1).double() @ Ws[0].T
    log_gain = torch.zeros(len(x), dtype=torch.float64)
    norm = h.norm(dim=1, keepdim=True)
    h = h / norm
    q = torch.eye(h.shape[1], dtype=torch.float64)
    sv = torch.zeros(h.shape[1], dtype=torch.float64)
    for w in Ws[1:-1]:
        d = torch.where(h[0] > 0, 1.0, slope).double()  # the activation's derivative at input 0
        q, r = torch.linalg.qr(w @ (d[:, None] * q))  # accumulate J = W_k D_k ... W_2 D_1 as Q R
        diag = torch.diagonal(r)
        sv += diag.abs().log()
        q = q * torch.sign(diag)
        h = nn.functional.leaky_relu(h, slope) @ w.T
        norm = h.norm(dim=1, keepdim=True)
        log_gain += norm[:, 0].log()
        h = h / norm
    cosine = (h @ h.T).numpy()
    ln10 = math.log(10)
    return {"log10_gain": (log_gain / ln10).numpy(), "cosine": cosine,
            "log10_jacobian_sv": np.sort((sv / ln10).numpy())[::-1].copy()}  # fmt: skip


class LayerHistograms:
    """A :func:`lecture_utils.train.fit` callback: at the training steps ``steps`` (1-based; step 1's forward pass
    sees the weights as initialized), the values of every selected layer's output (default: the Linear and ConvNd
    layers, i.e. the pre-activations) and of the gradient dLoss/d(that output), taken from that training step's
    own forward and backward pass: nothing is computed twice, so recording costs a few hooks at a few steps.
    ``forward[step][layer]`` and ``backward[step][layer]`` are :class:`Stats` keeping the first ``sample`` values
    (for histograms).  Karpathy's per-layer activation and gradient histograms (makemore part 3), over training.

    ``order = -25``: after :class:`lecture_utils.train.Recorder` (-30), before the divergence guard (-20), whose
    ``StopFit`` would otherwise skip the step that removes the hooks (``after_fit`` removes them too)."""

    order = -25

    def __init__(self, steps: Iterable[int], select: Selector | None = None, sample: int = 4096):
        steps = sorted(set(steps))
        if not steps or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in steps):
            raise ValueError(f"steps must be training steps >= 1 (step 1 sees the initial weights), got {steps!r}.")
        if not isinstance(sample, int) or sample < 1:
            raise ValueError(f"sample must be a positive number of values per layer, got {sample!r}.")
        self.steps, self.select, self.sample = steps, select, sample
        self.forward: dict[int, dict[str, Stats]] = {}
        self.backward: dict[int, dict[str, Stats]] = {}
        self.names: list[str] = []
        self._probe: Probe | None = None

    def before_step(self, fit) -> None:
        if fit.step in self.steps:
            self._probe = Probe(fit.model, self.select, sample=self.sample).__enter__()
            self.names = self._probe.names

    def after_backward(self, fit) -> None:
        if self._probe is not None:
            self._probe.remove()
            self.forward[fit.step], self.backward[fit.step] = dict(self._probe.forward), dict(self._probe.backward)
            self._probe = None

    def after_fit(self, fit) -> None:
        if self._probe is not None:  # the run ended inside a recorded step
            self._probe.remove()
            self._probe = None
