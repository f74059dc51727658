"""Variance recurrences of a deep fully connected network at initialization (mean-field theory).

Network: z_1 = W_1 x (+ b_1),  h_k = f(z_k),  z_{k+1} = W_{k+1} h_k (+ b_{k+1}),  W_k[i, j] ~ (0, sigma^2)
i.i.d. and independent of everything else, biases ~ (0, sigma_b^2).  Then (Prince, Understanding Deep
Learning, section 7.5; Glorot & Bengio 2010, section 4.2.1; He et al. 2015, section 2.2):

forward  (fan_in n_{k-1}):   Var[z_k] = n_{k-1} sigma^2 E[h_{k-1}^2] + sigma_b^2,
                             E[h_k^2] = E[f(z)^2] with z ~ N(0, Var z_k)
backward (fan_out n_{k+1}):  Var[dL/dz_k] = E[f'(z_k)^2] n_{k+1} sigma^2 Var[dL/dz_{k+1}]

(the backward line also assumes the weights used in the backward pass are independent of the forward
activations: the usual mean-field approximation).  For ReLU, E[f(z)^2] = Var[z] / 2 and E[f'(z)^2] = 1/2,
so with width D both passes multiply by D sigma^2 / 2 per layer: E[h_k^2] = (D sigma^2 / 2)^k E[x^2]
when the input also has D features.  For tanh and sigmoid the expectations have no closed form and are
computed by a deterministic quadrature (no Monte Carlo), see :func:`gaussian_expectation`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Activations the recurrences know.
ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "sigmoid")


def _check_activation(activation: str) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}.")


def _check_variance(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite variance >= 0, got {value!r}.")


def _check_positive_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}.")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free form of 1 / (1 + exp(-z))


def gaussian_expectation(g: Callable[[np.ndarray], np.ndarray], var: float, points: int = 2001) -> float:
    """E[g(z)] for z ~ N(0, var), by the trapezoid rule on a grid that resolves both the scale of z
    (+-12 std) and the unit scale of the activation (+-20), so that a narrow bump such as
    tanh'(z)^2 = (1 - tanh^2 z)^2 is integrated accurately even when std(z) >> 1.  Relative accuracy
    better than 1e-6 for the activations here; deterministic (no sampling)."""
    _check_variance("var", var)
    if var == 0:
        return float(g(np.zeros(1))[0])
    s = math.sqrt(var)
    grid = np.union1d(np.linspace(-12 * s, 12 * s, points), np.linspace(-20.0, 20.0, points))
    grid = grid[np.abs(grid) <= 12 * s]
    density = np.exp(-0.5 * grid**2 / var) / math.sqrt(2 * math.pi * var)
    return float(np.trapezoid(g(grid) * density, grid))


def mean_square(activation: str, var: float, negative_slope: float = 0.01) -> float:
    """E[f(z)^2] for z ~ N(0, var): linear var, ReLU var/2, leaky ReLU (1 + a^2) var / 2,
    tanh and sigmoid by quadrature."""
    _check_activation(activation)
    _check_variance("var", var)
    if activation == "linear":
        return float(var)
    if activation == "relu":
        return var / 2.0
    if activation == "leaky_relu":
        return (1.0 + negative_slope**2) * var / 2.0
    if activation == "tanh":
        return gaussian_expectation(lambda z: np.tanh(z) ** 2, var)
    return gaussian_expectation(lambda z: _sigmoid(z) ** 2, var)


def derivative_mean_square(activation: str, var: float, negative_slope: float = 0.01) -> float:
    """E[f'(z)^2] for z ~ N(0, var): linear 1, ReLU 1/2, leaky ReLU (1 + a^2)/2, tanh E[(1 - tanh^2 z)^2]
    and sigmoid E[(s(1 - s))^2] by quadrature."""
    _check_activation(activation)
    _check_variance("var", var)
    if activation == "linear":
        return 1.0
    if activation == "relu":
        return 0.5
    if activation == "leaky_relu":
        return (1.0 + negative_slope**2) / 2.0
    if activation == "tanh":
        return gaussian_expectation(lambda z: (1.0 - np.tanh(z) ** 2) ** 2, var)
    return gaussian_expectation(lambda z: (_sigmoid(z) * (1.0 - _sigmoid(z))) ** 2, var)


def relu_growth(width: int, sigma2: float) -> float:
    """Per-layer factor D sigma^2 / 2 of a ReLU layer of width D (forward and backward alike)."""
    _check_positive_int("width", width)
    _check_variance("sigma2", sigma2)
    return width * sigma2 / 2.0


@dataclass(frozen=True)
class Recurrence:
    """The predicted per-layer profile of a depth-L network; index k-1 holds layer k (k = 1..L).

    ``pre``: Var[z_k] (pre-activations, the outputs of the Linear layers);
    ``post``: E[h_k^2] = E[f(z_k)^2] (mean square of the activations);
    ``grad``: Var[dL/dz_k], scaled so that ``grad[-1]`` equals the ``top_grad`` you gave.
    """

    pre: np.ndarray
    post: np.ndarray
    grad: np.ndarray

    @property
    def depth(self) -> int:
        return len(self.pre)


def recurrence(
    depth: int,
    width: int,
    sigma2: float,
    activation: str = "relu",
    *,
    in_features: int | None = None,
    in_mean_square: float = 1.0,
    bias_var: float = 0.0,
    top_grad: float = 1.0,
    negative_slope: float = 0.01,
) -> Recurrence:
    """Run the forward and backward recurrences (see the module docstring) in float64.

    ``depth`` hidden layers of ``width`` units, weights of variance ``sigma2``, biases of variance
    ``bias_var``; the input has ``in_features`` (default ``width``) features of mean square
    ``in_mean_square``.  The backward recurrence is anchored at the last hidden layer:
    ``grad[-1] = top_grad`` and ``grad[k-1] = E[f'(z_k)^2] width sigma^2 grad[k]``.
    Example, ReLU: ``recurrence(50, 100, 0.02).post`` is all ones (He's sigma^2 = 2 / D).
    """
    _check_positive_int("depth", depth)
    _check_positive_int("width", width)
    in_features = width if in_features is None else in_features
    _check_positive_int("in_features", in_features)
    _check_activation(activation)
    for name, value in (("sigma2", sigma2), ("bias_var", bias_var), ("in_mean_square", in_mean_square)):
        _check_variance(name, value)
    _check_variance("top_grad", top_grad)
    pre = np.empty(depth)
    post = np.empty(depth)
    grad = np.empty(depth)
    with np.errstate(over="ignore"):  # beyond float64 the values become inf, not an error
        q, fan = float(in_mean_square), in_features
        for k in range(depth):
            pre[k] = fan * sigma2 * q + bias_var
            if not math.isfinite(pre[k]):  # beyond float64 (sigma^2 D / 2 > 1 for thousands of layers)
                pre[k:] = post[k:] = math.inf
                break
            post[k] = q = mean_square(activation, pre[k], negative_slope)
            fan = width
        grad[-1] = top_grad
        for k in range(depth - 2, -1, -1):
            d = derivative_mean_square(activation, pre[k], negative_slope) if math.isfinite(pre[k]) else 0.5
            grad[k] = d * width * sigma2 * grad[k + 1]
    return Recurrence(pre, post, grad)
