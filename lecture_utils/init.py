"""Fans, gains and the Xavier/Glorot and He/Kaiming initializations.

Forward pass, layer with fan_in inputs, weights w ~ (0, sigma^2), activation f with gain g:
    Var[h_out] = fan_in * sigma^2 * E[f(z)^2]          keep it constant  =>  sigma^2 = g^2 / fan_in
Backward pass, the same product read in reverse:
    Var[dL/dh_in] = fan_out * sigma^2 * Var[dL/dh_out] keep it constant  =>  sigma^2 = g^2 / fan_out
Glorot & Bengio (2010), eq. 12, take the compromise  sigma^2 = 2 / (fan_in + fan_out)   (times g^2);
He et al. (2015), eq. 10, keep one pass exactly with ReLU (g^2 = 2):  sigma^2 = 2 / fan_in.
A uniform U[-a, a] has variance a^2 / 3, so the bound is a = sqrt(3) * sigma
(Xavier: a = g * sqrt(6 / (fan_in + fan_out)); the slip "3 * sigma" is wrong by a factor sqrt(3)).
See also Prince, Understanding Deep Learning, section 7.5.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Non-linearities with a recommended gain (torch.nn.init.calculate_gain knows the same names).
NONLINEARITIES = ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")

#: Initialization schemes understood by :func:`init_tensor_` and :func:`init_module_`.
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


def fans(weight: torch.Tensor | nn.Module) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in/groups, *kernel).

    Linear (out, in): fan_in = in, fan_out = out.  ConvNd (C_out, C_in, k, k): fan_in = C_in k^2,
    fan_out = C_out k^2 (the same convention as torch.nn.init).
    """
    if isinstance(weight, nn.Module):
        if not hasattr(weight, "weight") or weight.weight is None:
            raise ValueError(f"{type(weight).__name__} has no weight: pass an nn.Linear or nn.ConvNd.")
        weight = weight.weight
    if weight.dim() < 2:
        raise ValueError(
            f"fans need a weight with at least 2 dimensions (out, in, *kernel); got shape {tuple(weight.shape)}."
        )
    receptive = math.prod(weight.shape[2:]) if weight.dim() > 2 else 1
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def gain(nonlinearity: str = "relu", param: float | None = None) -> float:
    """The recommended gain g (Var[w] = g^2 / fan): relu sqrt(2), tanh 5/3, leaky_relu sqrt(2/(1+a^2)),
    linear and sigmoid 1, selu 3/4.  The same values as torch.nn.init.calculate_gain."""
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}: choose one of {', '.join(NONLINEARITIES)}.")
    if nonlinearity == "identity":
        nonlinearity = "linear"
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    return float(torch.nn.init.calculate_gain(nonlinearity, param))


def _check_fans(*values: int) -> None:
    for v in values:
        if not isinstance(v, int | float) or v <= 0:
            raise ValueError(f"fans must be positive numbers of units, got {v!r}.")


def xavier_std(fan_in: int, fan_out: int, g: float = 1.0) -> float:
    """Glorot & Bengio (2010) eq. 12: std = g * sqrt(2 / (fan_in + fan_out))."""
    _check_fans(fan_in, fan_out)
    return g * math.sqrt(2.0 / (fan_in + fan_out))


def xavier_bound(fan_in: int, fan_out: int, g: float = 1.0) -> float:
    """Uniform bound a = sqrt(3) * std = g * sqrt(6 / (fan_in + fan_out))."""
    return math.sqrt(3.0) * xavier_std(fan_in, fan_out, g)


def he_std(fan: int, g: float = math.sqrt(2.0)) -> float:
    """He et al. (2015) eq. 10: std = g / sqrt(fan); with ReLU (g = sqrt 2), Var[w] = 2 / fan_in."""
    _check_fans(fan)
    return g / math.sqrt(fan)


def he_bound(fan: int, g: float = math.sqrt(2.0)) -> float:
    """Uniform bound a = sqrt(3) * std = g * sqrt(3 / fan)."""
    return math.sqrt(3.0) * he_std(fan, g)


def scheme_std(
    weight: torch.Tensor, scheme: str, nonlinearity: str = "relu", mode: str = "fan_in", std: float | None = None
) -> float:
    """The standard deviation a scheme gives this weight (for 'default' and 'orthogonal' it is not fixed:
    raises ValueError)."""
    _check_scheme(scheme)
    fan_in, fan_out = fans(weight)
    if scheme in ("normal", "uniform"):
        if std is None or not std >= 0:
            raise ValueError(f"scheme {scheme!r} needs std >= 0, got {std!r}.")
        return float(std)
    if scheme == "glorot_standard":
        return 1.0 / math.sqrt(3.0 * fan_in)
    if scheme.startswith("xavier"):
        return xavier_std(fan_in, fan_out, gain(nonlinearity))
    if scheme.startswith("he"):
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}.")
        return he_std(fan_in if mode == "fan_in" else fan_out, gain(nonlinearity))
    raise ValueError(f"scheme {scheme!r} has no single std (its variance depends on the layer's code or shape).")


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}: choose one of {', '.join(SCHEMES)}.")


@torch.no_grad()
def init_tensor_(
    weight: torch.Tensor,
    scheme: str,
    nonlinearity: str = "relu",
    mode: str = "fan_in",
    std: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fill ``weight`` in place with ``scheme``; normal schemes draw N(0, std^2), uniform ones
    U[-sqrt(3) std, sqrt(3) std].  'orthogonal' uses torch.nn.init.orthogonal_ scaled by the gain."""
    _check_scheme(scheme)
    if scheme == "default":
        raise ValueError("scheme 'default' applies to a whole layer: use init_module_(layer, 'default').")
    if scheme == "orthogonal":
        return nn.init.orthogonal_(weight, gain=gain(nonlinearity), generator=generator)
    s = scheme_std(weight, scheme, nonlinearity, mode, std)
    if scheme.endswith("uniform") or scheme == "glorot_standard":
        a = math.sqrt(3.0) * s
        return weight.uniform_(-a, a, generator=generator)
    return weight.normal_(0.0, s, generator=generator)


#: Layers whose weights init_module_ sets.
WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


@torch.no_grad()
def init_module_(
    module: nn.Module,
    scheme: str,
    nonlinearity: str = "relu",
    mode: str = "fan_in",
    std: float | None = None,
    bias: float | None = 0.0,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Initialize every Linear/ConvNd weight in ``module`` with ``scheme`` and set biases to ``bias``
    (``bias=None`` leaves them as they are).  Returns the module, for chaining."""
    _check_scheme(scheme)
    for layer in module.modules():
        if not isinstance(layer, WEIGHTED):
            continue
        if scheme == "default":
            layer.reset_parameters()
            continue
        init_tensor_(layer.weight, scheme, nonlinearity, mode, std, generator)
        if layer.bias is not None and bias is not None:
            layer.bias.fill_(bias)
    return module
