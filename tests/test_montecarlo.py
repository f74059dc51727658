"""lecture_utils.montecarlo: the variance identities over 1e6 samples, ReLU's moments, measured gains against the
quadrature, and deep random stacks against the fixed point and the backward factor of lecture_utils.theory."""

import math

import numpy as np
import pytest
import torch

from lecture_utils import init, theory
from lecture_utils import montecarlo as M
from tests._one_thread import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

N = 10**6


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="module")
def z():
    """1e6 samples of N(0, 1), shared by the gain tests."""
    return M.normal(N, torch.Generator().manual_seed(1))


def test_check_and_table():
    c = M.mc_check("E[x]", torch.tensor(1.02), 1.0)
    measured, theory_value, err = c
    assert (measured, theory_value) == (pytest.approx(1.02), 1.0) and err == pytest.approx(0.02)
    assert M.mc_check("zero", lambda: 0.01, 0.0).rel_err == pytest.approx(0.01)  # absolute when theory is 0
    table = M.check_table([c, M.mc_check("Var[x]", 2.0, 2.0)]).splitlines()
    assert table[0].split() == ["identity", "measured", "theory", "rel.", "error"]
    assert table[1].split() == ["E[x]", "1.02", "1", "0.02"] and table[2].split() == ["Var[x]", "2", "2", "0"]
    assert M.check_table([M.mc_check("x", 1 / 3, 0.3)], digits=2).splitlines()[1].split() == ["x", "0.33", "0.3", "0.11"]


def test_normal_draws_the_requested_distribution(gen):
    x = M.normal(N, gen, mean=1.0, std=2.0)
    assert x.dtype == torch.float64 and x.shape == (N,)
    assert float(x.mean()) == pytest.approx(1.0, abs=0.01) and float(x.std()) == pytest.approx(2.0, rel=0.01)
    assert torch.equal(M.normal(10, torch.Generator().manual_seed(5)), M.normal(10, torch.Generator().manual_seed(5)))


def test_sum_and_product_identities(gen):
    x = M.normal(N, gen, mean=1.0, std=2.0)
    y = M.normal(N, gen, mean=-3.0, std=0.5)
    # independent: Cov = 0, E[xy] = E[x]E[y], the general product variance
    assert M.mc_check("", (x + y).var(), 4.0 + 0.25).rel_err < 0.01
    assert M.mc_check("", (x * y).mean(), -3.0).rel_err < 0.01
    general = 4.0 * 0.25 + 4.0 * 9.0 + 0.25 * 1.0
    assert M.mc_check("", (x * y).var(), general).rel_err < 0.01
    # zero mean: Var[xy] = Var x Var y
    u, v = M.normal(N, gen, std=2.0), M.normal(N, gen, std=3.0)
    assert M.mc_check("", (u * v).var(), 36.0).rel_err < 0.01
    # dependence breaks both: y = x gives Var[x + x] = 4 Var x and Var[x^2] = 2 sigma^4, not sigma^4
    assert M.mc_check("", (u + u).var(), 16.0).rel_err < 0.01
    assert M.mc_check("", (u * u).var(), 2 * 16.0).rel_err < 0.02
    # Var[x + y] = Var x + Var y + 2 Cov(x, y) with y = x / 2 + noise: Cov = Var x / 2
    w = 0.5 * u + v
    assert M.mc_check("", (u + w).var(), 4.0 + (1.0 + 9.0) + 2 * 2.0).rel_err < 0.01


def test_sum_of_products_is_the_layer_recurrence(gen):
    s = M.sum_of_products(200_000, 10, 0.5, torch.relu, gen, chunk=30_000)
    assert s.shape == (200_000,) and s.dtype == torch.float64
    # Var[s] = m sigma_w^2 E[h^2], with E[relu(z)^2] = 1/2 (the second moment, not the variance 0.34)
    assert float(s.var()) == pytest.approx(10 * 0.25 * 0.5, rel=0.02)
    t = M.sum_of_products(200_000, 50, 0.1, lambda z: z + 1.0, gen)  # E[h^2] = 1 + 1 = 2 (mean matters)
    assert float(t.var()) == pytest.approx(50 * 0.01 * 2.0, rel=0.02)
    assert torch.equal(M.sum_of_products(7, 3, 1.0, torch.tanh, torch.Generator().manual_seed(2), chunk=2),
                       M.sum_of_products(7, 3, 1.0, torch.tanh, torch.Generator().manual_seed(2), chunk=2))


@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_relu_moments_measured(gen, sigma):
    r = torch.relu(M.normal(N, gen, std=sigma))
    moments = M.relu_moments(sigma)
    assert float(r.mean()) == pytest.approx(moments["mean"], rel=0.01)
    assert float(r.pow(2).mean()) == pytest.approx(moments["second"], rel=0.01)
    assert float(r.var()) == pytest.approx(moments["var"], rel=0.01)


def test_relu_moments_closed_form():
    m = M.relu_moments(2.0)
    assert m == pytest.approx({"mean": 2 / math.sqrt(2 * math.pi), "second": 2.0, "var": 2.0 * (1 - 1 / math.pi)})
    assert m["var"] == pytest.approx(m["second"] - m["mean"] ** 2)


@pytest.mark.parametrize("name, slope", [("linear", None), ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2)])
def test_measured_gain_is_exact_for_homogeneous_activations(z, name, slope):
    assert M.measured_gain(name, z, slope) == pytest.approx(init.gain(name, slope), rel=0.01)


@pytest.mark.parametrize("name, value", [("tanh", 1.5925), ("sigmoid", 1.8462)])
def test_measured_gain_of_saturating_activations_is_the_quadrature_not_torchs_convention(z, name, value):
    quadrature = 1 / math.sqrt(theory.mean_square(name, 1.0))
    assert quadrature == pytest.approx(value, abs=1e-4)
    assert M.measured_gain(name, z) == pytest.approx(quadrature, rel=0.01)
    assert abs(M.measured_gain(name, z) - init.gain(name)) > 0.05  # torch's 5/3 and 1 are conventions
    assert M.measured_gain(torch.tanh if name == "tanh" else torch.sigmoid, z) == M.measured_gain(name, z)
    assert M.second_moment(name, z) == pytest.approx(theory.mean_square(name, 1.0), rel=0.01)


def test_deep_stack_tanh_settles_at_the_fixed_point_and_gradients_grow_by_chi(gen):
    """tanh, g = 5/3, width 256: E[z_k^2] settles at q* = 1.18 and, going down 49 layers, E[(dL/dz)^2] grows by
    chi^49 = 1.21^49 ~ 1.1e4 (within a factor 2: one network of finite width)."""
    forward, backward = M.deep_stack("tanh", 5 / 3, 50, 256, 256, gen)
    assert forward.shape == backward.shape == (51,) and forward.dtype == torch.float64
    assert float(forward[0]) == pytest.approx(1.0, rel=0.02)  # z_0 ~ N(0, 1)
    assert float(forward[20:].mean()) == pytest.approx(theory.fixed_point("tanh", 5 / 3), rel=0.05)
    assert float(backward[50]) == pytest.approx(1.0, rel=0.02)  # r ~ N(0, 1)
    chi49 = theory.backward_factor("tanh", 5 / 3) ** 49
    assert chi49 > 1e4
    assert 0.5 < float(backward[1] / backward[50]) / chi49 < 2.0


def test_deep_stack_with_the_measured_gain_keeps_the_variance(gen, z):
    """g = 1 / sqrt(E[tanh(z)^2]) makes q = 1 the fixed point: 30 layers of width 256 stay at E[z_k^2] ~ 1."""
    g = M.measured_gain("tanh", z)
    assert theory.fixed_point("tanh", g) == pytest.approx(1.0, rel=0.01)
    forward, _ = M.deep_stack("tanh", g, 30, 256, 256, gen)
    assert float(forward[-1]) == pytest.approx(1.0, rel=0.1)
    assert float(forward[10:].mean()) == pytest.approx(1.0, rel=0.05)


def test_deep_stack_sigmoid_gradient_vanishes_at_chi_per_layer(gen):
    forward, backward = M.deep_stack("sigmoid", 1.0, 50, 256, 256, gen)
    assert float(forward[20:].mean()) == pytest.approx(theory.fixed_point("sigmoid", 1.0), rel=0.05)
    ratio = float(backward[1] / backward[50])
    assert 0 < ratio < 1e-50  # float64: measured, not flushed to 0
    per_layer = math.log(ratio) / 49
    assert per_layer == pytest.approx(math.log(theory.backward_factor("sigmoid", 1.0)), abs=0.05)


def test_deep_stack_relu_with_gain_one_halves_per_layer(gen):
    forward, backward = M.deep_stack("relu", 1.0, 30, 256, 256, gen)
    # E[z_30^2] = (1/2)^30 E[relu(z_0)^2] / (1/2) ...; in log2: -30 within the finite-width spread (sd ~ 1.1)
    assert math.log2(float(forward[-1])) == pytest.approx(-30, abs=3.5)
    assert math.log2(float(backward[0] / backward[-1])) == pytest.approx(-30, abs=3.5)


def test_deep_stack_follows_the_quadrature_recurrence_for_tanh(gen):
    """Width 500, tanh, g = 1.2: every layer's E[z_k^2] within 10% of theory.recurrence (input E[f(z_0)^2])."""
    depth, width, g = 10, 500, 1.2
    forward, _ = M.deep_stack("tanh", g, depth, width, 500, gen)
    pred = theory.recurrence(depth, width, g * g / width, "tanh", in_mean_square=theory.mean_square("tanh", 1.0))
    np.testing.assert_allclose(forward[1:].numpy(), pred.pre, rtol=0.10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="choose one of linear, relu"):
        M.second_moment("swish", torch.zeros(3))
    with pytest.raises(ValueError, match="n >= 1"):
        M.normal(0, torch.Generator())
    with pytest.raises(ValueError, match="std must be >= 0"):
        M.normal(5, torch.Generator(), std=-1.0)
    with pytest.raises(ValueError, match="std must be >= 0"):
        M.relu_moments(-1.0)
    with pytest.raises(ValueError, match="depth, width and batch >= 1"):
        M.deep_stack("relu", 1.0, 0, 10, 10, torch.Generator())
    with pytest.raises(ValueError, match="n, m and chunk >= 1"):
        M.sum_of_products(10, 0, 1.0, torch.relu, torch.Generator())
