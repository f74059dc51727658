"""The lecture's one vocabulary of activations and initializations, resolved in one place (notebooks 03-05; every
model of :mod:`lecture_utils.models` takes its weights from here, by name).

Naming convention, in every module of the lecture:
    sigma2   a VARIANCE sigma^2 (of the weights: w ~ N(0, sigma^2)); other variances are ``var`` or ``*_var``
    std      a STANDARD DEVIATION, sqrt(sigma^2): what ``torch.normal(0, std)`` and ``nn.init.normal_(w, std=...)`` take
    g        a gain: Var[w] = g^2 / fan
    slope    the leaky ReLU's negative slope (``a`` in the formulas; torch calls it ``negative_slope``); None means
             torch's default 0.01 (:data:`DEFAULT_SLOPE`)
Nothing is called ``sigma``: N(0, sigma^2) takes a variance, and a bare sigma would not say which one is meant.

Activations (:data:`ACTIVATIONS`): ``linear``, ``relu``, ``leaky_relu`` (slope a), ``tanh``, ``sigmoid``,
as an elementwise function (:func:`activation_fn`) or a module (:func:`activation_module`), with the gain
``torch.nn.init.calculate_gain`` recommends (:func:`gain`).

Forward pass, layer with fan_in inputs, weights w ~ (0, sigma^2), activation f with gain g:
    Var[z_out] = fan_in * sigma^2 * E[f(z)^2]          keep it constant  =>  sigma^2 = g^2 / fan_in
Backward pass, the same product read in reverse:
    Var[dL/dh_in] = fan_out * sigma^2 * Var[dL/dz_out] keep it constant  =>  sigma^2 = g^2 / fan_out
LeCun et al. (1998) take g = 1 (sigma^2 = 1 / fan_in: a linear layer, or tanh near 0);
Glorot & Bengio (2010), eq. 12, take the compromise  sigma^2 = 2 / (fan_in + fan_out)   (times g^2);
He et al. (2015), eq. 10, keep one pass exactly with ReLU (g^2 = 2):  sigma^2 = 2 / fan_in.
A uniform U[-b, b] has variance b^2 / 3, so the bound is b = sqrt(3) * std.  Prince, Understanding Deep Learning
(2023), section 7.5.

Named initializations (:data:`INITS`): the only words a model or a notebook uses for them.  :func:`resolve` turns
a name into a scheme, a std and a gain, once; :func:`apply_init` applies it to every layer of a module,
:func:`init_weight_` to one weight tensor.
    'default'      PyTorch's reset_parameters(): U[+-1/sqrt(fan_in)], Var[w] = 1 / (3 fan_in), biases uniform too
    'N(0,1)'       N(0, 1), biases 0                     (a fixed scale: too large)
    'N(0,0.01^2)'  N(0, 0.01^2) = std 0.01, biases 0     (a fixed scale: too small)
    'lecun'        N(0, 1 / fan_in), biases 0            (LeCun et al. 1998: gain 1, a linear layer)
    'xavier'       N(0, 2 / (fan_in + fan_out)), gain 1 as in Glorot & Bengio's paper, biases 0
    'he'           N(0, 2 / fan_in) as in He et al.'s paper (whatever the activation), biases 0
    'he_uniform'   U[+-sqrt(6 / fan_in)]: the same variance 2 / fan_in, uniform (torch's kaiming_uniform_), biases 0
    'orthogonal'   a random orthogonal matrix times the activation's gain (Saxe et al. 2014), biases 0
The schemes below them (:data:`SCHEMES`: normal or uniform, with which formula for the std) are the building
blocks that notebook 04 checks against ``torch.nn.init``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

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


def lecun_std(fan_in: int) -> float:
    """LeCun et al. (1998): std = 1 / sqrt(fan_in), He's formula with gain 1 (Var[w] = 1 / fan_in)."""
    return he_std(fan_in, 1.0)


#: Schemes understood by :func:`init_tensor_` and :func:`init_module_` (the building blocks of :data:`INITS`).
SCHEMES = (
    "default",  # whatever the layer's reset_parameters() does (PyTorch's default)
    "normal",  # N(0, std^2) with the std you give
    "uniform",  # U[-sqrt(3) std, sqrt(3) std] with the std you give
    "glorot_standard",  # Glorot & Bengio's "standard" U[-1/sqrt(fan_in), 1/sqrt(fan_in)]
    "lecun_normal",  # N(0, 1 / fan_in)
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
    if scheme == "lecun_normal":
        return lecun_std(fan_in)
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


@dataclass(frozen=True)
class Init:
    """A named initialization: a ``scheme`` of :data:`SCHEMES`, the fixed ``std`` of the N(0, std^2) ones, and whose
    gain it takes: ``gain_of`` an activation ('linear': 1, 'relu': sqrt 2) or 'activation' (the layer's own)."""

    scheme: str
    std: float | None = None
    gain_of: str = "linear"


#: THE named initializations of the lecture (see the module docstring).
INITS: dict[str, Init] = {
    "default": Init("default"),
    "N(0,1)": Init("normal", std=1.0),
    "N(0,0.01^2)": Init("normal", std=0.01),
    "lecun": Init("lecun_normal"),
    "xavier": Init("xavier_normal"),  # gain 1, as in the paper
    "he": Init("he_normal", gain_of="relu"),  # Var = 2 / fan_in, as in the paper
    "he_uniform": Init("he_uniform", gain_of="relu"),
    "orthogonal": Init("orthogonal", gain_of="activation"),  # times the activation's gain
}


def resolve(name: str, activation: str = "relu", slope: float | None = None, g: float | None = None) -> dict:
    """What the named initialization ``name`` means for a layer followed by ``activation``: the arguments of
    :func:`init_tensor_` (scheme, nonlinearity whose gain it takes, std, slope, g).  The one place where a name
    becomes numbers.  ``g`` overrides the gain of the initializations that take the activation's ('orthogonal':
    e.g. tanh at the edge of chaos, g = 1); for the others the gain is part of their definition."""
    if name not in INITS:
        raise ValueError(f"unknown initialization {name!r}: choose one of {', '.join(INITS)}.")
    check_activation(activation)
    init = INITS[name]
    own = init.gain_of == "activation"
    return {"scheme": init.scheme, "nonlinearity": activation if own else init.gain_of, "std": init.std,
            "slope": slope, "g": g if own else None}  # fmt: skip


def init_weight_(weight: torch.Tensor, name: str, activation: str = "relu", slope: float | None = None,
                 g: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """Fill one weight tensor (out, in, *kernel) in place with the named initialization ``name`` (:data:`INITS`),
    for a layer followed by ``activation``.  'default' draws what ``nn.Linear.reset_parameters()`` draws for a
    weight, U[+-1/sqrt(fan_in)] (here from ``generator``)."""
    args = resolve(name, activation, slope, g)
    if args["scheme"] == "default":
        args["scheme"] = "glorot_standard"  # kaiming_uniform_(a=sqrt 5): the same bound 1/sqrt(fan_in)
    return init_tensor_(weight, generator=generator, **args)


def apply_init(module: nn.Module, name: str, activation: str = "relu", slope: float | None = None,
               g: float | None = None, generator: torch.Generator | None = None,
               skip_last: bool = False) -> nn.Module:  # fmt: skip
    """Initialize every Linear/ConvNd of ``module`` (or the module itself, if it is one) with the named
    initialization ``name`` (:data:`INITS`), biases 0.  'default' calls every layer's ``reset_parameters()``
    (PyTorch's own init, drawn from the global RNG, biases included).  ``skip_last`` leaves the classifier head
    alone.  Returns the module."""
    args = resolve(name, activation, slope, g)
    if args["scheme"] == "default":
        return init_module_(module, "default", skip_last=skip_last)
    return init_module_(module, bias=0.0, generator=generator, skip_last=skip_last, **args)
