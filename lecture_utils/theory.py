"""Variance recurrences of a deep fully connected network at initialization (notebooks 03-05, 09).

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

from .init import DEFAULT_SLOPE, check_activation


def check_variance(name: str, value: float) -> None:
    """Raise a ValueError unless ``value`` is a finite number >= 0 (a variance)."""
    if not (isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 and math.isfinite(value)):
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
    better than 1e-5 for the activations here (var up to 1e4); deterministic (no sampling)."""
    check_variance("var", var)
    if var == 0:
        return float(g(np.zeros(1))[0])
    s = math.sqrt(var)
    grid = np.union1d(np.linspace(-12 * s, 12 * s, points), np.linspace(-20.0, 20.0, points))
    grid = grid[np.abs(grid) <= 12 * s]
    density = np.exp(-0.5 * grid**2 / var) / math.sqrt(2 * math.pi * var)
    return float(np.trapezoid(g(grid) * density, grid))


def mean_square(activation: str, var: float, slope: float = DEFAULT_SLOPE) -> float:
    """E[f(z)^2] for z ~ N(0, var): linear var, ReLU var/2, leaky ReLU (1 + a^2) var / 2,
    tanh and sigmoid by quadrature."""
    check_activation(activation)
    check_variance("var", var)
    if activation == "linear":
        return float(var)
    if activation == "relu":
        return var / 2.0
    if activation == "leaky_relu":
        return (1.0 + slope**2) * var / 2.0
    if activation == "tanh":
        return gaussian_expectation(lambda z: np.tanh(z) ** 2, var)
    return gaussian_expectation(lambda z: _sigmoid(z) ** 2, var)


def derivative_mean_square(activation: str, var: float, slope: float = DEFAULT_SLOPE) -> float:
    """E[f'(z)^2] for z ~ N(0, var): linear 1, ReLU 1/2, leaky ReLU (1 + a^2)/2, tanh E[(1 - tanh^2 z)^2]
    and sigmoid E[(s(1 - s))^2] by quadrature."""
    check_activation(activation)
    check_variance("var", var)
    if activation == "linear":
        return 1.0
    if activation == "relu":
        return 0.5
    if activation == "leaky_relu":
        return (1.0 + slope**2) / 2.0
    if activation == "tanh":
        return gaussian_expectation(lambda z: (1.0 - np.tanh(z) ** 2) ** 2, var)
    return gaussian_expectation(lambda z: (_sigmoid(z) * (1.0 - _sigmoid(z))) ** 2, var)


def relu_growth(width: int, sigma2: float) -> float:
    """Per-layer factor D sigma^2 / 2 of a ReLU layer of width D (forward and backward alike)."""
    _check_positive_int("width", width)
    check_variance("sigma2", sigma2)
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
    slope: float = DEFAULT_SLOPE,
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
    check_activation(activation)
    for name, value in (("sigma2", sigma2), ("bias_var", bias_var), ("in_mean_square", in_mean_square)):
        check_variance(name, value)
    check_variance("top_grad", top_grad)
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
            post[k] = q = mean_square(activation, pre[k], slope)
            fan = width
        grad[-1] = top_grad
        for k in range(depth - 2, -1, -1):
            d = derivative_mean_square(activation, pre[k], slope) if math.isfinite(pre[k]) else 0.5
            grad[k] = d * width * sigma2 * grad[k + 1]
    return Recurrence(pre, post, grad)


def fixed_point(activation: str, g: float, q0: float = 1.0, slope: float = DEFAULT_SLOPE, iters: int = 500) -> float:
    """The variance q* = Var[z] that a deep stack with Var[w] = g^2 / fan_in settles at (infinite width,
    zero biases): iterate q <- g^2 E[f(z)^2], z ~ N(0, q), from ``q0``.  For ReLU-like activations the map is
    linear, q <- g^2 (1 + a^2) q / 2, so q* is q0 when that factor is 1, else 0 or inf (returned as such).
    tanh with g = 5/3: q* = 1.18; sigmoid with g = 1: q* = 0.26 (Poole et al. 2016; notebook 03)."""
    check_activation(activation)
    check_variance("q0", q0)
    if activation in ("linear", "relu", "leaky_relu"):  # q <- factor * q: no fixed point but 0, q0 or inf
        factor = g * g * mean_square(activation, 1.0, slope)
        return float(q0) if abs(factor - 1.0) < 1e-9 else (0.0 if factor < 1.0 else math.inf)
    q = float(q0)
    for _ in range(iters):
        new = g * g * mean_square(activation, q, slope)
        if not math.isfinite(new) or new > 1e300:
            return math.inf
        if new < 1e-300:
            return 0.0
        if abs(new - q) <= 1e-12 * max(q, 1e-300):
            return new
        q = new
    return q


def backward_factor(activation: str, g: float, q: float | None = None, slope: float = DEFAULT_SLOPE) -> float:
    """chi = g^2 E[f'(z)^2], z ~ N(0, q): the factor by which Var[dL/dz] grows per layer going *down* a deep
    stack with Var[w] = g^2 / fan (equal widths).  ``q`` defaults to the forward fixed point
    :func:`fixed_point`.  chi > 1: gradients explode with depth; chi < 1: they vanish; ReLU with g = sqrt 2: 1.
    tanh, g = 5/3: chi = 1.21 (x 1e4 over 50 layers); sigmoid, g = 1: chi = 0.056 (sigma' <= 1/4, so chi < 1
    for every g < 4).  The forward gain conventions of torch do not make the backward pass stable."""
    if q is None:
        q = fixed_point(activation, g, slope=slope)
    return g * g * derivative_mean_square(activation, q, slope)


def tailored_slope(depth: int, width: int, c: float = 1.0) -> float:
    """A leaky-ReLU slope a that keeps a ``depth``-layer, ``width``-wide orthogonal network close to
    isometric (notebook 09).

    One layer h' = g D W h (W orthogonal, D = diag(1 or a) by the sign of Wh, g^2 = 2 / (1 + a^2)) scales
    the squared norm by r = 1 + rho * (1/n) sum_i s_i u_i, with rho = (1 - a^2) / (1 + a^2), s_i = +-1 and
    u_i = n (Wh)_i^2 / |h|^2, so Var[log r] ~ 3 rho^2 / n.  Over L layers Var[log |h_L|^2] ~ 3 L rho^2 / n:
    for ReLU (a = 0, rho = 1) it grows like L / n (Hanin 2018; the reason He init alone fails when
    depth >> width).  Asking 3 L rho^2 / n = c gives rho = sqrt(c n / (3 L)) and a = sqrt((1 - rho)/(1 + rho)).
    """
    if not (isinstance(depth, int) and depth >= 1 and isinstance(width, int) and width >= 1 and c > 0):
        raise ValueError(f"need integers depth >= 1, width >= 1 and c > 0; got {depth!r}, {width!r}, {c!r}.")
    rho = min(1.0, math.sqrt(c * width / (3.0 * depth)))
    return math.sqrt((1.0 - rho) / (1.0 + rho))


def log_norm_spread(depth: int, width: int, slope: float = 0.0, weights: str = "gaussian") -> float:
    """Var[log |h_L|^2] of one random network at initialization, to first order in 1/width (Hanin 2018):
    per layer 3 rho^2 / n for orthogonal weights and (2 + 3 rho^2) / n for Gaussian ones (the Gaussian
    matrix adds 2/n of its own), rho = (1 - a^2) / (1 + a^2).  ReLU, Gaussian (He): 5 L / n; orthogonal: 3 L / n.
    The *typical* network drifts by minus half of it: E[log |h_L|^2] ~ -Var / 2 (notebooks 05, 09)."""
    if weights not in ("gaussian", "orthogonal"):
        raise ValueError(f"weights must be 'gaussian' or 'orthogonal', got {weights!r}.")
    rho = (1.0 - slope**2) / (1.0 + slope**2)
    per_layer = 3.0 * rho**2 + (2.0 if weights == "gaussian" else 0.0)
    return per_layer * depth / width
