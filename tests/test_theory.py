"""lecture_utils.theory: closed forms of the recurrences, quadrature against Monte Carlo, fixed points, the
backward factor, the tailored slope and the spread of log-norms."""

import math

import numpy as np
import pytest
import torch

from lecture_utils import theory


# ---- the recurrences in closed form ------------------------------------------------------------------------
def test_relu_recurrence_is_the_power_law():
    r = theory.recurrence(50, 100, 0.1)  # D sigma^2 / 2 = 5
    k = np.arange(1, 51)
    assert r.depth == 50
    np.testing.assert_allclose(r.post, 5.0**k, rtol=1e-12)  # E[h_k^2] = (D sigma^2 / 2)^k
    np.testing.assert_allclose(r.pre, 2 * 5.0**k, rtol=1e-12)
    np.testing.assert_allclose(r.grad, 5.0 ** (50 - k), rtol=1e-12)  # anchored at the top
    np.testing.assert_allclose(theory.recurrence(50, 100, 0.02).post, 1.0, rtol=1e-12)  # He: constant
    np.testing.assert_allclose(theory.recurrence(50, 100, 0.02).grad, 1.0, rtol=1e-12)


def test_linear_recurrence_with_bias_and_input():
    r = theory.recurrence(3, 10, 0.2, "linear", in_features=5, in_mean_square=3.0, bias_var=0.5)
    assert r.pre[0] == pytest.approx(5 * 0.2 * 3.0 + 0.5)
    assert r.pre[1] == pytest.approx(10 * 0.2 * r.pre[0] + 0.5)
    assert r.pre[2] == pytest.approx(10 * 0.2 * r.pre[1] + 0.5)
    np.testing.assert_allclose(r.post, r.pre)
    np.testing.assert_allclose(r.grad, [4.0, 2.0, 1.0])  # D sigma^2 = 2 per layer, going down
    r = theory.recurrence(4, 10, 0.3, "linear", top_grad=7.0)
    np.testing.assert_allclose(r.post, 3.0 ** np.arange(1, 5), rtol=1e-12)
    assert r.grad[-1] == 7.0 and r.grad[0] == pytest.approx(7.0 * 27)


@pytest.mark.parametrize("a", [0.01, 0.2, 0.5])
def test_leaky_relu_recurrence(a):
    factor = 100 * 0.03 * (1 + a * a) / 2
    r = theory.recurrence(20, 100, 0.03, "leaky_relu", slope=a)
    k = np.arange(1, 21)
    np.testing.assert_allclose(r.post, factor**k, rtol=1e-12)
    np.testing.assert_allclose(r.grad, factor ** (20 - k), rtol=1e-12)
    assert theory.relu_growth(100, 0.03) == pytest.approx(1.5)


def test_overflow_is_inf_not_an_error():
    r = theory.recurrence(1000, 100, 1.0)  # 50^1000 is beyond float64
    assert math.isinf(r.post[-1]) and np.isfinite(r.post[:100]).all()
    assert theory.relu_growth(100, 0.02) == pytest.approx(1.0)


# ---- Gaussian expectations ---------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "relu", "leaky_relu", "linear"])
@pytest.mark.parametrize("var", [0.01, 1.0, 30.0])
def test_quadrature_matches_monte_carlo(activation, var):
    """E[f(z)^2] and E[f'(z)^2] within 1% of 1e6 samples (the Monte Carlo error is ~0.2%)."""
    z = torch.randn(1_000_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * math.sqrt(var)
    z.requires_grad_(True)
    f = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda t: t * 1.0,
         "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01)}[activation]  # fmt: skip
    y = f(z)
    (d,) = torch.autograd.grad(y.sum(), z)
    assert theory.mean_square(activation, var) == pytest.approx(float((y.detach() ** 2).mean()), rel=1e-2)
    assert theory.derivative_mean_square(activation, var) == pytest.approx(float((d**2).mean()), rel=1e-2)


def test_gaussian_expectation_against_known_moments():
    assert theory.gaussian_expectation(lambda z: z**2, 2.5) == pytest.approx(2.5, rel=1e-6)
    assert theory.gaussian_expectation(lambda z: z**4, 2.0) == pytest.approx(3 * 4.0, rel=1e-6)
    assert theory.gaussian_expectation(np.cos, 1.0) == pytest.approx(math.exp(-0.5), rel=1e-6)
    assert theory.gaussian_expectation(np.abs, 1e4) == pytest.approx(100 * math.sqrt(2 / math.pi), rel=1e-4)  # a kink
    assert theory.gaussian_expectation(lambda z: z + 3.0, 0.0) == 3.0  # a point mass at 0


def _quadrature_errors(variances):
    """Relative error of the default quadrature against one on a 20x finer grid, tanh and sigmoid moments."""
    fns = [lambda z: np.tanh(z) ** 2, lambda z: (1 - np.tanh(z) ** 2) ** 2, lambda z: theory._sigmoid(z) ** 2,
           lambda z: (theory._sigmoid(z) * (1 - theory._sigmoid(z))) ** 2]  # fmt: skip
    return np.array([[abs(theory.gaussian_expectation(f, v) / theory.gaussian_expectation(f, v, points=40001) - 1)
                      for f in fns] for v in variances])  # fmt: skip


def test_quadrature_meets_its_documented_accuracy_over_eight_decades_of_variance():
    assert _quadrature_errors([0.01, 1.0, 30.0, 1e4, 1e6]).max() < 1e-5  # the docstring's promise


def test_tanh_limits():
    assert theory.mean_square("tanh", 1e-6) == pytest.approx(1e-6, rel=1e-4)  # tanh z ~ z near 0
    assert theory.derivative_mean_square("tanh", 1e-6) == pytest.approx(1.0, rel=1e-4)
    assert theory.mean_square("tanh", 1e6) == pytest.approx(1.0, rel=2e-3)  # saturated: tanh^2 -> 1
    # a narrow bump: E[(1 - tanh^2)^2] ~ (4/3) / sqrt(2 pi var) for large var
    assert theory.derivative_mean_square("tanh", 1e6) == pytest.approx(4 / 3 / math.sqrt(2 * math.pi * 1e6), rel=1e-3)


# ---- fixed points and the backward factor ------------------------------------------------------------------
def test_fixed_points():
    q = theory.fixed_point("tanh", 5 / 3)
    assert q == pytest.approx(1.18, abs=0.005)
    assert q == pytest.approx((5 / 3) ** 2 * theory.mean_square("tanh", q), rel=1e-9)  # it is a fixed point
    s = theory.fixed_point("sigmoid", 1.0)
    assert s == pytest.approx(0.26, abs=0.005)
    assert s == pytest.approx(theory.mean_square("sigmoid", s), rel=1e-9)
    assert theory.fixed_point("tanh", 0.9) < 1e-40  # g < 1: the signal dies (tanh'(0) = 1)
    # ReLU-like maps are linear: q0 is kept at the critical gain, else 0 or inf
    assert theory.fixed_point("relu", math.sqrt(2), q0=3.0) == pytest.approx(3.0)
    assert theory.fixed_point("relu", 1.0) == 0.0
    assert theory.fixed_point("relu", 2.0) == math.inf
    assert theory.fixed_point("leaky_relu", math.sqrt(2 / 1.04), q0=2.0, slope=0.2) == pytest.approx(2.0)


def test_backward_factor():
    assert theory.backward_factor("tanh", 5 / 3) == pytest.approx(1.21, abs=0.005)
    assert theory.backward_factor("tanh", 5 / 3) ** 50 > 1e4  # x 1e4 over 50 layers
    assert theory.backward_factor("sigmoid", 1.0) == pytest.approx(0.056, abs=0.001)
    assert theory.backward_factor("relu", math.sqrt(2)) == pytest.approx(1.0, rel=1e-12)
    assert theory.backward_factor("linear", 1.0) == 1.0
    assert theory.backward_factor("tanh", 1.0, q=0.0) == pytest.approx(1.0)  # at q = 0: tanh'(0)^2 = 1
    # sigmoid' <= 1/4, so g^2 E[sigmoid'^2] < g^2 / 16 < 1 for every g < 4
    for g in np.linspace(0.05, 3.99, 80):
        assert theory.backward_factor("sigmoid", float(g)) < 1.0


def test_tailored_slope():
    assert theory.tailored_slope(1000, 32) == pytest.approx(0.90, abs=0.005)
    for depth, width, c in [(1000, 32, 1.0), (100, 64, 0.5), (5000, 128, 2.0)]:
        a = theory.tailored_slope(depth, width, c)
        rho = (1 - a * a) / (1 + a * a)
        assert 3 * depth * rho**2 / width == pytest.approx(c)  # the spread it was asked for
        assert theory.log_norm_spread(depth, width, a, "orthogonal") == pytest.approx(c)
    assert theory.tailored_slope(10, 64) == 0.0  # shallow and wide: plain ReLU is fine
    assert theory.tailored_slope(10_000, 32) > theory.tailored_slope(1000, 32)
    with pytest.raises(ValueError, match="depth >= 1"):
        theory.tailored_slope(0, 32)


def test_log_norm_spread():
    assert theory.log_norm_spread(100, 50) == pytest.approx(5 * 100 / 50)  # ReLU, Gaussian (He): 5 L / n
    assert theory.log_norm_spread(100, 50, weights="orthogonal") == pytest.approx(3 * 100 / 50)  # 3 L / n
    assert theory.log_norm_spread(100, 50, slope=1.0, weights="orthogonal") == 0.0  # linear + orthogonal: isometry
    assert theory.log_norm_spread(100, 50, slope=1.0) == pytest.approx(2 * 100 / 50)  # the Gaussian's own 2/n
    with pytest.raises(ValueError, match="'gaussian' or 'orthogonal'"):
        theory.log_norm_spread(10, 10, weights="uniform")


# ---- errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"activation": "gelu"}, "choose one of linear, relu"),
        ({"sigma2": -0.1}, "sigma2 must be a finite variance >= 0"),
        ({"sigma2": math.nan}, "sigma2 must be a finite variance >= 0"),
        ({"depth": 0}, r"depth must be a positive integer \(>= 1\)"),
        ({"width": 2.5}, "width must be a positive integer"),
        ({"bias_var": -1.0}, "bias_var"),
        ({"in_features": 0}, "in_features"),
        ({"top_grad": math.inf}, "top_grad"),
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
    with pytest.raises(ValueError, match="sigma2"):
        theory.relu_growth(10, -1.0)
