"""The init-time experiments: Prince's figure, the depth ladder, Glorot's histograms (small and seeded)."""

import math

import numpy as np
import pytest
import torch

from lecture_utils import experiments as ex
from lecture_utils import theory
from tests._one_thread import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def test_variance_profile_is_deterministic_and_matches_theory_shape():
    a = ex.variance_profile(depth=6, width=64, sigma2=2 / 64, batch=256, seed=3)
    b = ex.variance_profile(depth=6, width=64, sigma2=2 / 64, batch=256, seed=3)
    assert np.array_equal(a.post_ms, b.post_ms) and np.array_equal(a.grad_var, b.grad_var)
    assert a.pre_var.shape == a.post_ms.shape == a.grad_var.shape == (6,)
    assert a.theory.grad[-1] == pytest.approx(a.grad_var[-1])  # theory anchored at the top
    assert a.pre_var[0] == pytest.approx(2.0, rel=0.05)  # n_in sigma^2 E[x^2] = 64 * 2/64 * 1
    assert a.finite and a.nonfinite is None and a.zero_grad is None


def test_relu_profiles_of_different_sigma_are_parallel():
    """Same seed = same weights scaled by sigma; ReLU is positively homogeneous, so measured / theory is the
    same for every sigma^2 (the lines in Prince's figure are exactly parallel)."""
    r = [ex.variance_profile(depth=8, width=32, sigma2=s, batch=64, seed=0) for s in (0.01, 0.1)]
    assert r[0].forward_ratio() == pytest.approx(r[1].forward_ratio(), rel=1e-4)
    assert r[0].backward_ratio() == pytest.approx(r[1].backward_ratio(), rel=1e-4)


def test_float32_overflow_and_underflow_are_reported_and_float64_rerun():
    res = ex.prince_figure(sigma2s=(0.001, 1.0), depth=50, width=100, batch=32)
    big, small = res.float32[1.0], res.float32[0.001]
    assert big.nonfinite is not None and big.nonfinite[0] == "activation"
    # (D sigma^2/2)^k = 50^k: values ~ sqrt(2 * 50^k) pass float32's 3.4e38 near k = 45
    assert 40 <= big.nonfinite[1] <= 50
    assert small.nonfinite is None and small.zero_grad is not None  # gradients underflow to exact 0
    for s in (0.001, 1.0):
        assert res.plotted[s].dtype == torch.float64 and res.plotted[s].finite
    assert np.isfinite(res.plotted[1.0].post_ms).all()


def test_ladder_rows_keep_inf_nan_and_zero():
    rows = {
        (r.arch, r.init): r for r in ex.depth_ladder(archs=("mlp2", "mlp100"), activations=("relu",), batch=8)
    }
    he = rows[("mlp2", "he")]
    assert 0.3 < he.act_ratio < 3 and 0.3 < he.grad_ratio < 3
    n1 = rows[("mlp2", "N(0,1)")]
    assert n1.act_ratio == pytest.approx(32, rel=0.5)  # width 64: D sigma^2 / 2 = 32 per layer
    assert math.isnan(rows[("mlp100", "N(0,1)")].act_ratio)  # overflow -> inf -> inf - inf = NaN
    assert rows[("mlp100", "N(0,0.01^2)")].act_ratio == 0.0  # underflow to exact 0


def test_ladder_cnn_and_default_init():
    row = ex.ladder_run("cnn4", "default", "tanh", batch=4)
    assert 0 < row.act_ratio < 1  # PyTorch's default Var 1/(3 fan_in) shrinks the signal
    a = ex.ladder_run("mlp2", "default", "relu", batch=4)
    state = torch.random.get_rng_state()
    b = ex.ladder_run("mlp2", "default", "relu", batch=4)
    assert torch.equal(state, torch.random.get_rng_state())  # the global generator is left alone
    assert a == b


def test_format_ratio():
    assert [ex.format_ratio(x) for x in (math.nan, math.inf, 0.0, 123456.0, 0.000123)] == [
        "nan", "inf", "0", "1.23e+05", "0.000123"
    ]  # fmt: skip


def test_glorot_histograms_standard_shrinks_normalized_keeps():
    std = ex.glorot_histograms("standard", width=300, in_features=300, batch=64, sample=1000)
    nor = ex.glorot_histograms("normalized", width=300, in_features=300, batch=64, sample=1000)
    assert len(std.activations) == 5 and std.activations[0].numel() == 1000
    # tanh outputs follow the quadrature recurrence: standard Var[w] = 1/(3n), normalized 2/(n + n) = 1/n
    for run, sigma2 in ((std, 1 / 900), (nor, 1 / 300)):
        expected = theory.recurrence(5, 300, sigma2, "tanh").post
        assert np.allclose(run.act_var, expected, rtol=0.25), (run.scheme, run.act_var, expected)
    assert std.act_var[-1] / std.act_var[0] < 0.05 < 0.2 < nor.act_var[-1] / nor.act_var[0]
    assert std.grad_var[0] / std.grad_var[-1] < nor.grad_var[0] / nor.grad_var[-1]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ex.variance_profile(activation="gelu"), "choose one of linear, relu"),
        (lambda: ex.variance_profile(sigma2=-1.0), "sigma2 must be a finite variance >= 0"),
        (lambda: ex.variance_profile(depth=0), "depth must be a positive integer"),
        (lambda: ex.variance_profile(dtype=torch.float16), "float32 or torch.float64"),
        (lambda: ex.ladder_model("mlp7", "relu"), "choose one of mlp2, cnn4, mlp100, mlp1000"),
        (lambda: ex.ladder_model("mlp2", "sigmoid"), "choose one of relu, tanh"),
        (lambda: ex.apply_init(torch.nn.Linear(2, 2), "lecun"), "choose one of default, N"),
        (lambda: ex.glorot_histograms("fancy"), "choose one of standard, normalized"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
