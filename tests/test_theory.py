"""The variance recurrences: closed forms, quadrature against Monte Carlo, and measured networks."""

import math

import numpy as np
import pytest
import torch

from lecture_utils import theory
from lecture_utils.experiments import variance_profile
from tests._one_thread import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def test_relu_recurrence_is_the_power_law():
    r = theory.recurrence(50, 100, 0.1)
    k = np.arange(1, 51)
    assert np.allclose(r.post, 5.0**k, rtol=1e-12)  # E[h_k^2] = (D sigma^2 / 2)^k
    assert np.allclose(r.pre, 2 * 5.0**k, rtol=1e-12)
    assert np.allclose(r.grad, 5.0 ** (50 - k), rtol=1e-12)  # anchored at the top
    assert np.allclose(theory.recurrence(50, 100, 0.02).post, 1.0)  # He keeps it constant


def test_linear_and_bias_and_input():
    r = theory.recurrence(3, 10, 0.2, "linear", in_features=5, in_mean_square=3.0, bias_var=0.5)
    assert r.pre[0] == pytest.approx(5 * 0.2 * 3.0 + 0.5)
    assert r.pre[1] == pytest.approx(10 * 0.2 * r.pre[0] + 0.5)
    assert np.allclose(r.post, r.pre)


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "leaky_relu"])
@pytest.mark.parametrize("var", [0.01, 1.0, 30.0])
def test_quadrature_matches_monte_carlo(activation, var):
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * math.sqrt(
        var
    )
    z.requires_grad_(True)
    f = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
         "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01)}[activation]  # fmt: skip
    y = f(z)
    (d,) = torch.autograd.grad(y.sum(), z)
    assert theory.mean_square(activation, var) == pytest.approx(float((y.detach() ** 2).mean()), rel=1e-2)
    assert theory.derivative_mean_square(activation, var) == pytest.approx(float((d**2).mean()), rel=1e-2)


def test_tanh_limits():
    assert theory.mean_square("tanh", 1e-6) == pytest.approx(1e-6, rel=1e-4)  # tanh z ~ z near 0
    assert theory.derivative_mean_square("tanh", 1e-6) == pytest.approx(1.0, rel=1e-4)
    assert theory.mean_square("tanh", 1e6) == pytest.approx(1.0, rel=2e-3)  # saturated: tanh^2 -> 1
    # a narrow bump: E[(1 - tanh^2)^2] ~ (4/3) / sqrt(2 pi var) for large var
    assert theory.derivative_mean_square("tanh", 1e6) == pytest.approx(
        4 / 3 / math.sqrt(2 * math.pi * 1e6), rel=1e-3
    )


def test_relu_growth_and_overflow_is_inf_not_an_error():
    assert theory.relu_growth(100, 0.02) == pytest.approx(1.0)
    r = theory.recurrence(1000, 100, 1.0)  # 50^1000 is beyond float64
    assert math.isinf(r.post[-1]) and np.isfinite(r.post[:100]).all()


@pytest.mark.parametrize("sigma2_times_width, seed", [(1.0, 0), (2.0, 1), (4.0, 2)])
def test_measured_relu_growth_per_layer_matches_theory(sigma2_times_width, seed):
    """Width 500, 10 ReLU layers: the measured growth per layer, forward and backward (geometric mean over
    the 9 steps), is D sigma^2 / 2 within 10% (Xavier-on-ReLU 0.5, He 1, twice He 2), and the first layer's
    Var[z_1] = n_in sigma^2 within 3%.  (One network drifts away from the mean-field prediction by a random
    factor whose log has variance ~ 5 L / D, Hanin & Rolnick 2018: test per-layer rates, not layer 10.)"""
    width, depth = 500, 10
    p = variance_profile(depth=depth, width=width, sigma2=sigma2_times_width / width, batch=500, seed=seed)
    expected = sigma2_times_width / 2
    forward = (p.post_ms[-1] / p.post_ms[0]) ** (1 / (depth - 1))
    backward = (p.grad_var[0] / p.grad_var[-1]) ** (1 / (depth - 1))
    assert forward == pytest.approx(expected, rel=0.10)
    assert backward == pytest.approx(expected, rel=0.10)
    assert p.pre_var[0] == pytest.approx(p.theory.pre[0], rel=0.03)
    assert p.theory.post[-1] == pytest.approx(expected**depth)


def test_measured_tanh_follows_the_quadrature_recurrence():
    p = variance_profile(depth=10, width=500, sigma2=1.5 / 500, activation="tanh", batch=1000, seed=0)
    assert np.allclose(p.pre_var, p.theory.pre, rtol=0.10), (p.pre_var, p.theory.pre)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "gelu"}, "choose one of linear, relu"),
        ({"sigma2": -0.1}, "sigma2 must be a finite variance >= 0"),
        ({"depth": 0}, r"depth must be a positive integer \(>= 1\)"),
        ({"width": 2.5}, "width must be a positive integer"),
        ({"bias_var": -1.0}, "bias_var"),
    ],
)
def test_bad_arguments_name_the_valid_choices(kwargs, match):
    args = {"depth": 3, "width": 4, "sigma2": 0.1} | kwargs
    with pytest.raises(ValueError, match=match):
        theory.recurrence(**args)


def test_bad_variance_in_moments():
    with pytest.raises(ValueError, match="var must be a finite variance >= 0"):
        theory.mean_square("tanh", -1.0)
    with pytest.raises(ValueError, match="choose one of"):
        theory.derivative_mean_square("swish", 1.0)
