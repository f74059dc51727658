"""Experiments at initialization: what the variance does, layer by layer, before any training.

* :func:`variance_profile` -- one deep MLP with N(0, sigma^2) weights and zero biases, a least-squares
  loss against target 0 (Prince, Understanding Deep Learning, Figure 7.7): measured forward and backward
  variances per layer next to the theory of :mod:`lecture_utils.theory`.
* :func:`prince_figure` -- the five sigma^2 of Prince's figure, each in float32 and, where float32 overflows
  or underflows, again in float64.
* :func:`depth_ladder` -- 2-layer MLP, 4-layer CNN, 100- and 1000-layer MLPs under PyTorch's default init,
  N(0, 1), N(0, 0.01^2), Xavier and He, with ReLU and tanh: last layer against first.
* :func:`glorot_histograms` -- per-layer activation and gradient samples of a 5-hidden-layer tanh network
  under Glorot's "standard" and "normalized" initializations (Glorot & Bengio 2010, Figures 6 and 7).

Every experiment draws its weights and inputs from its own seeded ``torch.Generator``: the numbers do
not depend on what ran before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import theory
from .init import WEIGHTED, init_module_
from .models import deep_cnn, deep_mlp
from .probes import Probe

#: sigma^2 values of Prince's Figure 7.7 (D = 100, so He's 2 / D is 0.02).
PRINCE_SIGMA2 = (0.001, 0.01, 0.02, 0.1, 1.0)

#: Initializations compared in the depth ladder: name -> (scheme, std, nonlinearity for the gain).
#: Xavier is Glorot's 2 / (n_in + n_out) (gain 1) and He is 2 / fan_in, whatever the activation,
#: as in the papers.
LADDER_INITS: dict[str, tuple[str, float | None, str]] = {
    "default": ("default", None, "relu"),
    "N(0,1)": ("normal", 1.0, "relu"),
    "N(0,0.01^2)": ("normal", 0.01, "relu"),
    "xavier": ("xavier_normal", None, "linear"),
    "he": ("he_normal", None, "relu"),
}

#: Architectures of the depth ladder.
LADDER_ARCHS = ("mlp2", "cnn4", "mlp100", "mlp1000")


def _check_choice(name: str, value: str, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}: choose one of {', '.join(valid)}.")


def _check_dtype(dtype: torch.dtype) -> None:
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}.")


@dataclass
class Profile:
    """Measured per-layer statistics of one network (index k-1 holds hidden layer k) and the theory.

    ``pre_var``: Var[z_k] of the Linear outputs; ``post_ms``: E[h_k^2] of the activation outputs;
    ``grad_var``: Var[dL/dz_k].  ``theory.grad`` is anchored at the measured ``grad_var[-1]``.
    ``nonfinite``: ('activation' | 'gradient', layer k) of the first inf/NaN (probe order), else None.
    ``zero_grad``: the highest layer k whose gradient is exactly zero everywhere (underflow), else None.
    """

    depth: int
    width: int
    sigma2: float
    activation: str
    dtype: torch.dtype
    pre_var: np.ndarray
    post_ms: np.ndarray
    grad_var: np.ndarray
    theory: theory.Recurrence
    nonfinite: tuple[str, int] | None
    zero_grad: int | None

    @property
    def finite(self) -> bool:
        """True when neither float overflow (inf/NaN) nor a gradient underflowing to exact 0 happened."""
        return self.nonfinite is None and self.zero_grad is None

    def forward_ratio(self) -> float:
        """Measured / predicted E[h_L^2] at the last hidden layer."""
        return float(self.post_ms[-1] / self.theory.post[-1])

    def backward_ratio(self) -> float:
        """Measured / predicted gradient growth from the last hidden layer down to the first:
        (Var[dL/dz_1] / Var[dL/dz_L]) / theory's ratio."""
        measured = self.grad_var[0] / self.grad_var[-1]
        return float(measured / (self.theory.grad[0] / self.theory.grad[-1]))


def variance_profile(
    depth: int = 50,
    width: int = 100,
    sigma2: float = 0.02,
    activation: str = "relu",
    batch: int = 1000,
    in_features: int | None = None,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> Profile:
    """Prince's experiment (UDL Figure 7.7) for one sigma^2.

    ``depth`` hidden layers Linear(width) -> activation, a Linear(width, 1) output, weights N(0, sigma2),
    zero biases, input x ~ N(0, I) with ``in_features`` (default ``width``) features, target 0 and the
    least-squares loss L = sum_i (f(x_i) - 0)^2 summed over the batch (so each row of a gradient is one
    example's gradient).  Records the forward and backward statistics with a :class:`Probe`.
    """
    _check_choice("activation", activation, theory.ACTIVATIONS)
    theory._check_variance("sigma2", sigma2)
    _check_dtype(dtype)
    in_features = width if in_features is None else in_features
    model = deep_mlp(
        depth, width, in_features=in_features, out_features=1, activation_name=activation, init="default"
    )
    gen = torch.Generator().manual_seed(seed)
    init_module_(model, "normal", std=math.sqrt(sigma2), bias=0.0, generator=gen)
    model = model.to(dtype)
    x = torch.randn(batch, in_features, generator=gen, dtype=torch.float64).to(dtype)
    linear = [str(2 * k) for k in range(depth)]
    acts = [str(2 * k + 1) for k in range(depth)]
    with Probe(model, select=linear + acts) as probe, np.errstate(all="ignore"):
        loss = (model(x) ** 2).sum()
        loss.backward()
    pre = np.array([probe.forward[n].var for n in linear])
    post = np.array([probe.forward[n].mean_sq for n in acts])
    grad = np.array([probe.backward[n].var if n in probe.backward else math.nan for n in linear])
    bad = probe.first_nonfinite()
    nonfinite = None
    if bad is not None:
        kind, name = bad
        nonfinite = (kind, int(name) // 2 + 1)
    zero = [k + 1 for k, n in enumerate(linear) if n in probe.backward and probe.backward[n].mean_sq == 0]
    top = float(grad[-1]) if math.isfinite(grad[-1]) and grad[-1] > 0 else 1.0
    pred = theory.recurrence(depth, width, sigma2, activation, in_features=in_features, top_grad=top)
    return Profile(
        depth, width, sigma2, activation, dtype, pre, post, grad, pred, nonfinite, max(zero) if zero else None
    )


@dataclass
class PrinceResult:
    """The runs of :func:`prince_figure`: ``float32[s]`` for every sigma^2 ``s``; ``plotted[s]`` is the
    float32 run when it stayed finite and non-zero, else the float64 rerun (``plotted[s].dtype`` says)."""

    float32: dict[float, Profile] = field(default_factory=dict)
    plotted: dict[float, Profile] = field(default_factory=dict)


def prince_figure(
    sigma2s=PRINCE_SIGMA2, depth: int = 50, width: int = 100, batch: int = 1000, seed: int = 0
) -> PrinceResult:
    """Run :func:`variance_profile` for each sigma^2 in float32; rerun in float64 the ones whose float32
    run overflowed (inf/NaN) or whose gradients underflowed to 0, so that every curve can be drawn."""
    result = PrinceResult()
    for s in sigma2s:
        run = variance_profile(depth, width, s, "relu", batch, dtype=torch.float32, seed=seed)
        result.float32[s] = run
        result.plotted[s] = (
            run
            if run.finite
            else variance_profile(depth, width, s, "relu", batch, dtype=torch.float64, seed=seed)
        )
    return result


# ---- the depth ladder ----------------------------------------------------------------------------


def ladder_model(arch: str, activation: str, width: int = 64, channels: int = 16) -> nn.Sequential:
    """The ladder's networks (PyTorch's default init; :func:`apply_init` then sets the scheme):
    'mlp2', 'mlp100', 'mlp1000': that many hidden Linear(width) -> activation layers on a 3x32x32 image
    (flattened), then Linear(width, 10); 'cnn4': 4 Conv2d(3x3, ``channels``) -> activation layers, global
    average pooling and Linear(channels, 10)."""
    _check_choice("architecture", arch, LADDER_ARCHS)
    _check_choice("activation", activation, ("relu", "tanh"))
    if arch == "cnn4":
        return deep_cnn(4, channels, activation_name=activation, init="default")
    depth = int(arch[3:])
    return deep_mlp(depth, width, 3 * 32 * 32, 10, activation_name=activation, init="default", flatten=True)


def apply_init(model: nn.Module, init: str, generator: torch.Generator | None = None) -> nn.Module:
    """Set ``model``'s weights with one of :data:`LADDER_INITS` ('default' leaves PyTorch's own init,
    Var[w] = 1 / (3 fan_in) and non-zero biases; every other scheme zeroes the biases)."""
    _check_choice("init", init, LADDER_INITS)
    scheme, std, nl = LADDER_INITS[init]
    if scheme == "default":
        return model
    return init_module_(model, scheme, nonlinearity=nl, std=std, bias=0.0, generator=generator)


@dataclass
class LadderRow:
    """One cell of the depth ladder.  ``act_*``: Var of the first / last hidden layer's output (Linear
    or Conv, before the activation); ``grad_*``: Var of dL/d(that output).  ``act_ratio`` = last / first
    (growth forward), ``grad_ratio`` = first / last (growth backward).  inf, NaN and 0 are kept as float32
    produced them (NaN: inf - inf or 0 * inf downstream of an overflow, or 0 / 0 in a ratio)."""

    arch: str
    init: str
    activation: str
    act_first: float
    act_last: float
    grad_first: float
    grad_last: float

    @property
    def act_ratio(self) -> float:
        return _ratio(self.act_last, self.act_first)

    @property
    def grad_ratio(self) -> float:
        return _ratio(self.grad_first, self.grad_last)


def _ratio(a: float, b: float) -> float:
    with np.errstate(all="ignore"):
        return float(np.float64(a) / np.float64(b))


def ladder_run(
    arch: str, init: str, activation: str, batch: int = 64, width: int = 64, seed: int = 0
) -> LadderRow:
    """One network of the ladder on ``batch`` N(0, 1) 3x32x32 inputs with random labels and the
    cross-entropy loss, in float32; probes only the first and the last hidden layer (cheap at 1000 layers)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # PyTorch's default init draws from the global generator
        torch.manual_seed(seed)
        model = ladder_model(arch, activation, width)
    apply_init(model, init, gen)
    x = torch.randn(batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    hidden = [n for n, m in model.named_modules() if isinstance(m, WEIGHTED)][:-1]  # not the head
    first, last = hidden[0], hidden[-1]
    with Probe(model, select=[first, last]) as probe:
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
    grad = {n: probe.backward[n].var if n in probe.backward else math.nan for n in (first, last)}
    return LadderRow(
        arch, init, activation, probe.forward[first].var, probe.forward[last].var, grad[first], grad[last]
    )


def depth_ladder(
    archs=LADDER_ARCHS,
    inits=tuple(LADDER_INITS),
    activations=("relu", "tanh"),
    batch: int = 64,
    width: int = 64,
    seed=0,
) -> list[LadderRow]:
    """:func:`ladder_run` for every architecture x init x activation (seeded: the same numbers each time)."""
    return [ladder_run(a, i, f, batch, width, seed) for a in archs for f in activations for i in inits]


def format_ratio(x: float) -> str:
    """'inf', 'nan', '0' or 3 significant digits: how the ladder's table prints a ratio."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    return f"{x:.3g}"


# ---- Glorot & Bengio's histograms ------------------------------------------------------------------

#: Glorot & Bengio's two initializations (section 4.2.1): "standard" U[-1/sqrt(n), 1/sqrt(n)] (eq. 1)
#: and "normalized" U[-sqrt(6/(n_in+n_out)), sqrt(6/(n_in+n_out))] (eq. 16).
GLOROT_SCHEMES = {"standard": "glorot_standard", "normalized": "xavier_uniform"}


@dataclass
class LayerSamples:
    """Per-hidden-layer samples (index k-1: layer k) of tanh outputs and of dL/dz_k."""

    scheme: str
    activations: list[torch.Tensor]
    gradients: list[torch.Tensor]
    act_var: np.ndarray
    grad_var: np.ndarray


def glorot_histograms(
    scheme: str, depth: int = 5, width: int = 1000, in_features: int = 1024, batch: int = 200,
    classes: int = 6, sample: int = 20_000, seed: int = 0,
) -> LayerSamples:  # fmt: skip
    """Glorot & Bengio's set-up (Figures 6 and 7): ``depth`` tanh hidden layers of ``width`` units, a
    softmax output over ``classes``, zero biases, the given ``scheme`` ('standard' or 'normalized');
    inputs N(0, 1) with random labels (instead of their Shapeset images).
    Keeps ``sample`` values per layer."""
    _check_choice("scheme", scheme, GLOROT_SCHEMES)
    gen = torch.Generator().manual_seed(seed)
    model = deep_mlp(depth, width, in_features, classes, activation_name="tanh", init="default")
    init_module_(model, GLOROT_SCHEMES[scheme], nonlinearity="linear", bias=0.0, generator=gen)
    x = torch.randn(batch, in_features, generator=gen)
    y = torch.randint(0, classes, (batch,), generator=gen)
    linear = [str(2 * k) for k in range(depth)]
    acts = [str(2 * k + 1) for k in range(depth)]
    with Probe(model, select=linear + acts, sample=sample) as probe:
        nn.functional.cross_entropy(model(x), y).backward()
    return LayerSamples(
        scheme,
        [probe.forward[n].sample for n in acts],
        [probe.backward[n].sample for n in linear],
        np.array([probe.forward[n].var for n in acts]),
        np.array([probe.backward[n].var for n in linear]),
    )


__all__ = [
    "GLOROT_SCHEMES",
    "LADDER_ARCHS",
    "LADDER_INITS",
    "PRINCE_SIGMA2",
    "LadderRow",
    "LayerSamples",
    "PrinceResult",
    "Profile",
    "apply_init",
    "depth_ladder",
    "format_ratio",
    "glorot_histograms",
    "ladder_model",
    "ladder_run",
    "prince_figure",
    "variance_profile",
]
