"""The lecture's one vocabulary of activations and initializations (notebooks 03-05; used by all).

Activations (:data:`ACTIVATIONS`): ``linear``, ``relu``, ``leaky_relu`` (slope ``a``), ``tanh``, ``sigmoid``,
as an elementwise function (:func:`activation_fn`) or a module (:func:`activation_module`), with the gain
``torch.nn.init.calculate_gain`` recommends (:func:`gain`).

Forward pass, layer with fan_in inputs, weights w ~ (0, sigma^2), activation f with gain g:
    Var[z_out] = fan_in * sigma^2 * E[f(z)^2]          keep it constant  =>  sigma^2 = g^2 / fan_in
Backward pass, the same product read in reverse:
    Var[dL/dh_in] = fan_out * sigma^2 * Var[dL/dz_out] keep it constant  =>  sigma^2 = g^2 / fan_out
Glorot & Bengio (2010), eq. 12, take the compromise  sigma^2 = 2 / (fan_in + fan_out)   (times g^2);
He et al. (2015), eq. 10, keep one pass exactly with ReLU (g^2 = 2):  sigma^2 = 2 / fan_in.
A uniform U[-a, a] has variance a^2 / 3, so the bound is a = sqrt(3) * sigma.
N(0, sigma^2) takes a VARIANCE; ``torch.normal(0, std)`` and ``nn.init.normal_(w, std=...)`` take a
STANDARD DEVIATION: pass ``std = sqrt(sigma^2)``.  Prince, Understanding Deep Learning (2023), section 7.5.

Named initializations (:data:`INITS`, :func:`apply_init`), the same words in every notebook:
    'default'      PyTorch's reset_parameters(): U[+-1/sqrt(fan_in)], Var[w] = 1 / (3 fan_in), biases uniform too
    'N(0,1)'       N(0, 1), biases 0                     (a fixed scale: too large)
    'N(0,0.01^2)'  N(0, 0.01^2) = std 0.01, biases 0     (a fixed scale: too small)
    'xavier'       N(0, 2 / (fan_in + fan_out)), gain 1 as in Glorot & Bengio's paper, biases 0
    'he'           N(0, 2 / fan_in) as in He et al.'s paper (whatever the activation), biases 0
    'orthogonal'   a random orthogonal matrix times the activation's gain (Saxe et al. 2014), biases 0
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

#: The activations every module of the lecture knows.
ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "sigmoid")
#: torch's default negative slope of a leaky ReLU.
DEFAULT_SLOPE = 0.01


def check_activation(name: str) -> None:
    """Raise a ValueError naming the valid activations unless ``name`` is one of :data:`ACTIVATIONS`."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}.")


def _slope(slope: float | None) -> float:
    return DEFAULT_SLOPE if slope is None else float(slope)


def activation_fn(name: str, slope: float | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The elementwise function ``name``; ``slope`` is the leaky ReLU's negative slope (default 0.01)."""
    check_activation(name)
    if name == "leaky_relu":
        a = _slope(slope)
        return lambda z: F.leaky_relu(z, a)
    return {"linear": lambda z: z, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[name]


def activation_module(name: str, slope: float | None = None) -> nn.Module:
    """The module ``name`` (``nn.Identity`` for 'linear'); ``slope`` as in :func:`activation_fn`."""
    check_activation(name)
    if name == "leaky_relu":
        return nn.LeakyReLU(_slope(slope))
    return {"linear": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[name]()


def gain(name: str = "relu", slope: float | None = None) -> float:
    """The recommended gain g (Var[w] = g^2 / fan): relu sqrt(2), leaky_relu sqrt(2 / (1 + a^2)),
    tanh 5/3, linear and sigmoid 1: torch.nn.init.calculate_gain's values.  For ReLU, leaky ReLU and linear
    they are exact; tanh's and sigmoid's are forward-pass conventions (notebook 03 measures both passes)."""
    check_activation(name)
    if name == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + _slope(slope) ** 2))
    return float(nn.init.calculate_gain(name))


def fans(weight: torch.Tensor | nn.Module) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in/groups, *kernel).

    Linear (out, in): fan_in = in, fan_out = out.  ConvNd (C_out, C_in, k, k): fan_in = C_in k^2,
    fan_out = C_out k^2 (the same convention as torch.nn.init)."""
    if isinstance(weight, nn.Module):
        if getattr(weight, "weight", None) is None:
            raise ValueError(f"{type(weight).__name__} has no weight: pass an nn.Linear or nn.ConvNd.")
        weight = weight.weight
    if weight.dim() < 2:
        raise ValueError(
            f"fans need a weight with at least 2 dimensions (out, in, *kernel); got shape {tuple(weight.shape)}."
        )
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def _check_fans(*values: int) -> None:
    for v in values:
        if not isinstance(v, int | float) or isinstance(v, bool) or v <= 0:
            raise ValueError(f"fans must be positive numbers of units, got {v!r}.")


def xavier_std(fan_in: int, fan_out: int, g: float = 1.0) -> float:
    """Glorot & Bengio (2010) eq. 12: std = g * sqrt(2 / (fan_in + fan_out))."""
    _check_fans(fan_in, fan_out)
    return g * math.sqrt(2.0 / (fan_in + fan_out))


def xavier_bound(fan_in: int, fan_out: int, g: float = 1.0) -> float:
    """Uniform bound a = sqrt(3) * std = g * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio eq. 16)."""
    return math.sqrt(3.0) * xavier_std(fan_in, fan_out, g)


def he_std(fan: int, g: float = math.sqrt(2.0)) -> float:
    """He et al. (2015) eq. 10: std = g / sqrt(fan); with ReLU (g = sqrt 2), Var[w] = 2 / fan_in."""
    _check_fans(fan)
    return g / math.sqrt(fan)


def he_bound(fan: int, g: float = math.sqrt(2.0)) -> float:
    """Uniform bound a = sqrt(3) * std = g * sqrt(3 / fan)."""
    return math.sqrt(3.0) * he_std(fan, g)


#: Schemes understood by :func:`init_tensor_` and :func:`init_module_` (the building blocks of :data:`INITS`).
SCHEMES = (
    "default",  # whatever the layer's reset_parameters() does (PyTorch's default)
    "normal",  # N(0, std^2) with the std you give
    "uniform",  # U[-sqrt(3) std, sqrt(3) std] with the std you give
    "glorot_standard",  # Glorot & Bengio's "standard" U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
    "orthogonal",
)


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}: choose one of {', '.join(SCHEMES)}.")


def scheme_std(weight: torch.Tensor, scheme: str, nonlinearity: str = "relu", mode: str = "fan_in",
               std: float | None = None, slope: float | None = None, g: float | None = None) -> float:  # fmt: skip
    """The standard deviation ``scheme`` gives this weight ('default' and 'orthogonal' have none: ValueError).
    ``g`` overrides the gain of ``nonlinearity`` for the xavier and he schemes."""
    _check_scheme(scheme)
    fan_in, fan_out = fans(weight)
    g = gain(nonlinearity, slope) if g is None else g
    if scheme in ("normal", "uniform"):
        if std is None or not std >= 0 or not math.isfinite(std):
            raise ValueError(f"scheme {scheme!r} needs a finite std >= 0, got {std!r}.")
        return float(std)
    if scheme == "glorot_standard":
        return 1.0 / math.sqrt(3.0 * fan_in)
    if scheme.startswith("xavier"):
        return xavier_std(fan_in, fan_out, g)
    if scheme.startswith("he"):
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}.")
        return he_std(fan_in if mode == "fan_in" else fan_out, g)
    raise ValueError(f"scheme {scheme!r} has no single std (its variance depends on the layer's code or shape).")


@torch.no_grad()
def init_tensor_(weight: torch.Tensor, scheme: str, nonlinearity: str = "relu", mode: str = "fan_in",
                 std: float | None = None, slope: float | None = None, g: float | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """Fill ``weight`` in place with ``scheme``: normal schemes draw N(0, std^2), uniform ones
    U[-sqrt(3) std, sqrt(3) std]; 'orthogonal' is torch.nn.init.orthogonal_ times the gain (``g``, default
    the gain of ``nonlinearity``)."""
    _check_scheme(scheme)
    if scheme == "default":
        raise ValueError("scheme 'default' applies to a whole layer: use init_module_(layer, 'default').")
    if scheme == "orthogonal":
        return nn.init.orthogonal_(weight, gain=gain(nonlinearity, slope) if g is None else g, generator=generator)
    s = scheme_std(weight, scheme, nonlinearity, mode, std, slope, g)
    if scheme.endswith("uniform") or scheme == "glorot_standard":
        a = math.sqrt(3.0) * s
        return weight.uniform_(-a, a, generator=generator)
    return weight.normal_(0.0, s, generator=generator)


#: Layers whose weights the init functions set.
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def weighted_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every Linear/ConvNd in ``module``, in registration (= forward, for a Sequential) order."""
    return [(n, m) for n, m in module.named_modules() if isinstance(m, WEIGHTED)]


@torch.no_grad()
def init_module_(module: nn.Module, scheme: str, nonlinearity: str = "relu", mode: str = "fan_in",
                 std: float | None = None, bias: float | None = 0.0, slope: float | None = None,
                 g: float | None = None, generator: torch.Generator | None = None,
                 skip_last: bool = False) -> nn.Module:  # fmt: skip
    """Initialize every Linear/ConvNd weight in ``module`` with ``scheme`` and set biases to ``bias``
    (``bias=None`` leaves them).  ``skip_last`` leaves the last weighted layer (a classifier head) alone.
    Returns the module, for chaining."""
    _check_scheme(scheme)
    layers = [m for _, m in weighted_layers(module)]
    for layer in layers[:-1] if skip_last else layers:
        if scheme == "default":
            layer.reset_parameters()
            continue
        init_tensor_(layer.weight, scheme, nonlinearity, mode, std, slope, g, generator)
        if layer.bias is not None and bias is not None:
            layer.bias.fill_(bias)
    return module


#: The named initializations of the lecture: name -> (scheme, std, gain taken from the activation?).
INITS: dict[str, tuple[str, float | None, bool]] = {
    "default": ("default", None, False),
    "N(0,1)": ("normal", 1.0, False),
    "N(0,0.01^2)": ("normal", 0.01, False),
    "xavier": ("xavier_normal", None, False),  # gain 1, as in the paper
    "he": ("he_normal", None, False),  # Var = 2 / fan_in, as in the paper
    "orthogonal": ("orthogonal", None, True),  # times the activation's gain
}


def apply_init(module: nn.Module, name: str, activation: str = "relu", slope: float | None = None,
               g: float | None = None, generator: torch.Generator | None = None,
               skip_last: bool = False) -> nn.Module:  # fmt: skip
    """Initialize ``module`` with the named initialization ``name`` (one of :data:`INITS`, see the module
    docstring).  'default' calls every layer's ``reset_parameters()`` (PyTorch's own init, drawn from the global
    RNG).  ``g`` overrides the gain of 'orthogonal' (e.g. tanh at the edge of chaos: g = 1).  Returns the module."""
    if name not in INITS:
        raise ValueError(f"unknown initialization {name!r}: choose one of {', '.join(INITS)}.")
    check_activation(activation)
    scheme, std, uses_activation = INITS[name]
    if scheme == "default":
        return init_module_(module, "default", skip_last=skip_last)
    if scheme == "xavier_normal":
        nonlinearity = "linear"
    elif scheme == "he_normal":
        nonlinearity = "relu"
    else:
        nonlinearity = activation if uses_activation else "relu"
    return init_module_(module, scheme, nonlinearity=nonlinearity, std=std, bias=0.0, slope=slope,
                        g=g if uses_activation else None, generator=generator, skip_last=skip_last)  # fmt: skip
