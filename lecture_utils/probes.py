"""Forward/backward probes: per-layer statistics of activations and back-propagated gradients.

    with Probe(model) as probe:             # hooks every Linear/ConvNd (or the modules you select)
        loss = loss_fn(model(x), y)
        loss.backward()
    probe.forward["3"].var                  # Var of layer 3's output over all its elements
    probe.backward["3"].var                 # Var of dLoss/d(output of layer 3)

The hooks are removed when the ``with`` block ends, even if it raises.  Statistics are computed in
float64 on a detached copy, so probing never changes the model's computation.  Each forward call
replaces the previous record (read the probe after every step to follow a training run).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from .init import WEIGHTED


@dataclass
class Stats:
    """Statistics of one tensor: mean, (biased) variance and second moment over all elements."""

    mean: float
    var: float
    mean_sq: float
    numel: int
    finite: bool
    sample: torch.Tensor | None = field(default=None, repr=False)

    @classmethod
    @torch.no_grad()
    def of(cls, t: torch.Tensor, sample: int = 0) -> Stats:
        x = t.detach().to(torch.float64).flatten()
        finite = bool(torch.isfinite(x).all())
        mean = float(x.mean()) if x.numel() else math.nan
        mean_sq = float((x * x).mean()) if x.numel() else math.nan
        var = float(x.var(unbiased=False)) if x.numel() else math.nan
        kept = x[:sample].to(torch.float32).cpu().clone() if sample else None
        return cls(mean, var, mean_sq, x.numel(), finite, kept)


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
        names = dict(named)
        missing = [w for w in wanted if w not in names]
        if missing:
            raise ValueError(f"no modules named {missing}; the model has: {', '.join(list(names)[:20])} ...")
        chosen = [(w, names[w]) for w in wanted]
    if not chosen:
        raise ValueError("the selection matched no module: pass module types, names, or a predicate that matches.")
    return chosen


class Probe:
    """Record per-layer output and output-gradient statistics of ``model`` while the ``with`` block runs.

    ``select``: module types (default Linear and ConvNd), module names, or a predicate ``f(name, module)``.
    ``sample``: keep the first ``sample`` values of each tensor (for histograms); 0 keeps none.
    ``backward``: also record dLoss/d(output) of each selected module.
    """

    def __init__(self, model: nn.Module, select: Selector | None = None, sample: int = 0, backward: bool = True):
        if sample < 0:
            raise ValueError(f"sample must be >= 0 values, got {sample!r}.")
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

    # ---- reading the record -------------------------------------------------------------------
    def variances(self, which: str = "forward") -> list[float]:
        """Per-layer variances in layer order (``which`` is 'forward' or 'backward')."""
        record = self._record(which)
        return [record[n].var if n in record else math.nan for n in self.names]

    def _record(self, which: str) -> dict[str, Stats]:
        if which not in ("forward", "backward"):
            raise ValueError(f"which must be 'forward' or 'backward', got {which!r}.")
        return self.forward if which == "forward" else self.backward

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

    def table(self) -> list[dict]:
        """One row per selected layer: name, type and the forward/backward variance and finiteness."""
        rows = []
        for n, m in self.modules:
            f, b = self.forward.get(n), self.backward.get(n)
            rows.append(
                {
                    "layer": n,
                    "type": type(m).__name__,
                    "act_var": f.var if f else math.nan,
                    "act_finite": f.finite if f else None,
                    "grad_var": b.var if b else math.nan,
                    "grad_finite": b.finite if b else None,
                }
            )
        return rows


def locate_nonfinite(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    select: Selector | None = None,
    weight_grads: bool = False,
) -> tuple[str, str] | None:
    """Re-run one forward/backward pass of ``loss_fn(model(x), y)`` under a :class:`Probe` and name the
    first non-finite tensor, as :meth:`Probe.first_nonfinite` does; with ``weight_grads``, fall back to
    ('gradient', name) of the last selected layer (in backward order, the first reached) whose weight
    gradient is not finite.  None when everything is finite.  The model's gradients are cleared before
    and after, so a diverged step can be diagnosed before (instead of) its update."""
    model.zero_grad(set_to_none=True)
    with Probe(model, select=select) as probe:
        loss = loss_fn(model(x), y)
        if loss.requires_grad:
            loss.backward()
    found = probe.first_nonfinite()
    if found is None and weight_grads:
        for name, layer in reversed(probe.modules):
            g = getattr(getattr(layer, "weight", None), "grad", None)
            if g is not None and not bool(torch.isfinite(g).all()):
                found = ("gradient", name)
                break
    model.zero_grad(set_to_none=True)
    return found
