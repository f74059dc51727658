"""Unit tests of lecture_utils.stats: Monte Carlo identities and activation moments, over 1e6 samples."""

import math

import pytest
import torch

from lecture_utils import init
from lecture_utils import stats as S

N = 10**6


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


def test_check_and_table():
    c = S.mc_check("E[x]", torch.tensor(1.02), 1.0)
    measured, theory, err = c
    assert (measured, theory) == (pytest.approx(1.02), 1.0) and err == pytest.approx(0.02)
    assert S.mc_check("zero", lambda: 0.01, 0.0).rel_err == pytest.approx(0.01)  # absolute when theory is 0
    table = S.check_table([c, S.mc_check("Var[x]", 2.0, 2.0)])
    assert "E[x]" in table and "rel. error" in table and "1.02" in table


def test_sum_and_product_identities(gen):
    x = S.normal(N, gen, mean=1.0, std=2.0)
    y = S.normal(N, gen, mean=-3.0, std=0.5)
    # independent: Cov = 0, E[xy] = E[x]E[y], general product variance
    assert S.mc_check("", (x + y).var(), 4.0 + 0.25).rel_err < 0.01
    assert S.mc_check("", (x * y).mean(), -3.0).rel_err < 0.01
    general = 4.0 * 0.25 + 4.0 * 9.0 + 0.25 * 1.0
    assert S.mc_check("", (x * y).var(), general).rel_err < 0.01
    # zero mean: Var[xy] = Var x Var y
    u, v = S.normal(N, gen, std=2.0), S.normal(N, gen, std=3.0)
    assert S.mc_check("", (u * v).var(), 36.0).rel_err < 0.02
    # dependence breaks it: y = x gives Var[x^2] = 2 sigma^4, not sigma^4
    assert (u * u).var().item() == pytest.approx(2 * 16.0, rel=0.02)


def test_sum_of_products_is_the_layer_recurrence(gen):
    m, sw, sh = 100, 0.1, 2.0
    w = torch.randn(10**4, m, generator=gen, dtype=torch.float64) * sw
    h = torch.randn(10**4, m, generator=gen, dtype=torch.float64) * sh
    assert (w * h).sum(dim=1).var().item() == pytest.approx(m * sw**2 * sh**2, rel=0.05)
    s = S.sum_of_products(200_000, 10, 0.5, torch.relu, gen, chunk=30_000)
    assert s.shape == (200_000,)
    assert s.var().item() == pytest.approx(10 * 0.25 * 0.5, rel=0.02)  # E[relu(z)^2] = 1/2, not Var


def test_relu_moments_measured(gen):
    for sigma in (1.0, 3.0):
        z = S.normal(N, gen, std=sigma)
        r = torch.relu(z)
        theory = S.relu_moments(sigma)
        assert r.mean().item() == pytest.approx(theory["mean"], rel=0.01)
        assert r.pow(2).mean().item() == pytest.approx(theory["second"], rel=0.01)
        assert r.var().item() == pytest.approx(theory["var"], rel=0.01)
    assert S.relu_moments(1.0)["var"] == pytest.approx(0.5 - 0.5 / math.pi)


def test_measured_gains_against_torch(gen):
    z = S.normal(N, gen)
    for name in ("linear", "relu", "leaky_relu"):  # exact: measured == torch's
        assert S.measured_gain(name, z) == pytest.approx(init.gain(name), rel=0.01)
    assert S.measured_gain("leaky_relu", z, 0.2) == pytest.approx(init.gain("leaky_relu", 0.2), rel=0.01)
    # conventions, not fixed points: tanh 1.59 (torch 5/3), sigmoid 1.85 (torch 1), selu 1 (torch 3/4)
    assert S.measured_gain("tanh", z) == pytest.approx(1.594, abs=0.01)
    assert S.measured_gain("sigmoid", z) == pytest.approx(1.847, abs=0.01)
    assert S.measured_gain("selu", z) == pytest.approx(1.0, abs=0.01)


def test_deep_stack_keeps_variance_with_measured_gain(gen):
    z = S.normal(N, gen)
    g = S.measured_gain("tanh", z)
    flat = S.deep_stack_variance("tanh", g, 30, 256, 256, gen)
    assert flat.shape == (31,)
    assert flat[-1].item() == pytest.approx(1.0, rel=0.1)
    relu = S.deep_stack_variance("relu", math.sqrt(2), 30, 256, 256, gen)
    assert relu[-1].item() == pytest.approx(1.0, rel=0.25)
    shrink = S.deep_stack_variance("relu", 1.0, 30, 256, 256, gen)
    assert math.log2(shrink[-1].item()) == pytest.approx(-30, abs=2.5)  # halves per layer


def test_bad_arguments():
    with pytest.raises(ValueError, match="relu, leaky_relu, tanh"):
        S.activation_fn("swish")
    with pytest.raises(ValueError):
        S.normal(0, torch.Generator())
    with pytest.raises(ValueError):
        S.relu_moments(-1.0)
    with pytest.raises(ValueError):
        S.deep_stack_variance("relu", 1.0, 0, 10, 10, torch.Generator())
