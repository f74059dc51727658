"""Unit tests of lecture_utils.numerics: float limits, products that leave them, predicted layers."""

import math

import pytest
import torch

from lecture_utils import numerics as N
from lecture_utils import theory


def test_float32_and_float64_limits():
    f32, f64 = N.float_limits("float32"), N.float_limits(torch.float64)
    assert f32.max == pytest.approx(3.4028e38, rel=1e-4)
    assert f32.smallest_normal == pytest.approx(1.1755e-38, rel=1e-4)
    assert f32.smallest_subnormal == pytest.approx(1.4013e-45, rel=1e-4)
    assert f32.smallest_subnormal == 2.0**-149
    assert f64.max == pytest.approx(1.7976e308, rel=1e-4)  # (1.7977e308 itself is inf)
    assert f64.smallest_subnormal == 2.0**-1074
    # The subnormal really is representable, and half of it rounds to zero.
    tiny = torch.tensor(f32.smallest_subnormal, dtype=torch.float32)
    assert tiny.item() > 0 and (tiny / 2).item() == 0.0
    assert 83 < f32.decades < 84
    table = N.limits_table()
    assert "3.4e+38" in table and "1.8e+308" in table and "1.4e-45" in table


def test_unknown_dtype_raises_with_choices():
    with pytest.raises(ValueError, match="float32"):
        N.float_limits("float8")
    with pytest.raises(ValueError, match="float64"):
        N.float_limits(torch.int32)


def test_predicted_layers_by_hand():
    # 10^38 < 3.4e38 < 10^39
    assert N.predicted_layer(1.0, 10.0, "overflow", "float32") == 39
    # 10^308 < 1.8e308 < 10^309
    assert N.predicted_layer(1.0, 10.0, "overflow", "float64") == 309
    # 2^127 < 3.4e38 = (2 - 2^-23) 2^127 < 2^128
    assert N.predicted_layer(1.0, 2.0, "overflow", "float32") == 128
    # starting at 1e30 leaves 8 decades
    assert N.predicted_layer(1e30, 10.0, "overflow", "float32") == 9
    # 10^-38 < 1.18e-38: subnormal from layer 38; 10^-46 < 0.7e-45: zero from layer 46
    assert N.predicted_layer(1.0, 0.1, "subnormal", "float32") == 38
    assert N.predicted_layer(1.0, 0.1, "zero", "float32") == 46
    # float64: 10^-308 < 2.2e-308; 10^-324 < 2.5e-324 (half the smallest subnormal, itself 0 in float64)
    assert N.predicted_layer(1.0, 0.1, "subnormal", "float64") == 308
    assert N.predicted_layer(1.0, 0.1, "zero", "float64") == 324
    # float16: max 65504 -> 10^5 overflows
    assert N.predicted_layer(1.0, 10.0, "overflow", "float16") == 5


def test_predicted_layer_bad_arguments():
    with pytest.raises(ValueError, match="overflow, subnormal, zero"):
        N.predicted_layer(1.0, 10.0, "explode")
    with pytest.raises(ValueError, match="never overflows"):
        N.predicted_layer(1.0, 0.5, "overflow")
    with pytest.raises(ValueError, match="never underflows"):
        N.predicted_layer(1.0, 2.0, "zero")
    with pytest.raises(ValueError):
        N.predicted_layer(1.0, 1.0, "overflow")


def test_diag_powers_measured_match_prediction():
    x = torch.ones(2)
    up = N.power_trajectory(torch.diag(torch.tensor([10.0, 10.0])), x, 100)
    assert up.shape == (101, 2)
    assert N.first_layer(up, "overflow") == 39 == N.predicted_layer(1.0, 10.0, "overflow")
    # the zero off-diagonal entries then give 0 * inf = NaN one layer later
    assert N.first_layer(up, "nan") == 40
    down = N.power_trajectory(torch.diag(torch.tensor([0.1, 0.1])), x, 100)
    assert N.first_layer(down, "subnormal") == 38
    assert N.first_layer(down, "zero") == 46 == N.predicted_layer(1.0, 0.1, "zero")
    assert down[45, 0].item() == N.float_limits("float32").smallest_subnormal
    # float64 holds 10^+-100 easily
    up64 = N.power_trajectory(torch.diag(torch.tensor([10.0, 10.0], dtype=torch.float64)), x, 100)
    assert N.first_layer(up64, "overflow") is None
    assert up64[100, 0].item() == pytest.approx(1e100, rel=1e-12)


def test_first_layer_events_and_errors():
    v = torch.tensor([[1.0, 2.0], [1e-39, 0.0], [0.0, 0.0], [float("inf"), 1.0], [float("nan"), 0.0]])
    assert N.first_layer(v, "subnormal") == 1
    assert N.first_layer(v, "zero") == 2
    assert N.first_layer(v, "overflow") == 3
    assert N.first_layer(v, "nan") == 4
    assert N.first_layer(v[:1], "zero") is None
    with pytest.raises(ValueError, match="overflow, nan, subnormal, zero"):
        N.first_layer(v, "big")


def test_growth_factor_values_and_errors():
    # sigma2 is a variance (lecture_utils.init's naming convention): sigma = 0.5 is sigma2 = 0.25
    assert N.growth_factor(100, 0.25, "linear") == pytest.approx(5.0)
    assert N.growth_factor(100, 0.25, "relu") == pytest.approx(5.0 / math.sqrt(2))
    assert N.growth_factor(100, 2 / 100, "relu") == pytest.approx(1.0)  # He init
    assert N.growth_factor(100, 2 / 100, "relu") ** 2 == pytest.approx(theory.relu_growth(100, 2 / 100))
    assert N.growth_factor(100, 0.25, "leaky_relu") == pytest.approx(5.0 * math.sqrt((1 + 0.01**2) / 2))
    assert N.growth_factor(100, 0.25, "leaky_relu", slope=0.5) == pytest.approx(5.0 * math.sqrt(1.25 / 2))
    assert N.growth_factor(100, 0.25, "leaky_relu", slope=1.0) == pytest.approx(N.growth_factor(100, 0.25))
    for saturating in ("tanh", "sigmoid"):
        with pytest.raises(ValueError, match=f"{saturating} does not grow by one constant factor.*theory.recurrence"):
            N.growth_factor(100, 0.25, saturating)
    with pytest.raises(ValueError, match="choose one of linear, relu"):
        N.growth_factor(100, 0.25, "gelu")
    with pytest.raises(ValueError, match="width >= 1"):
        N.growth_factor(0, 0.25)
    with pytest.raises(ValueError, match="sigma2 > 0"):
        N.growth_factor(10, 0.0)


@pytest.mark.parametrize(
    "activation, sigma, event", [("linear", 0.5, "overflow"), ("relu", 0.5, "overflow"), ("linear", 0.02, "zero")]
)
def test_random_stack_event_layer_near_prediction(activation, sigma, event):
    g = torch.Generator().manual_seed(0)
    w = N.random_weights(100, 100, sigma, torch.float32, g)
    x = torch.randn(100, generator=g)
    run = N.stack_trajectory(w, x, activation)
    predicted = N.predicted_layer(1.0, N.growth_factor(100, sigma**2, activation), event)
    measured = N.first_layer(run.outputs, event)
    assert measured is not None and abs(measured - predicted) <= 3


def test_stack_float64_slope_matches_growth_forward_and_backward():
    """Over 50 layers of width 200 the measured log-growth per layer, forward and backward, is within 0.05 of
    log(growth_factor): a product of 50 random matrices follows sqrt(D sigma^2 [/ 2]) per layer."""
    g = torch.Generator().manual_seed(1)
    for activation, sigma in (("linear", 0.3), ("relu", 0.3), ("relu", 0.1), ("leaky_relu", 0.1)):
        w = N.random_weights(60, 200, sigma, torch.float64, g)
        run = N.stack_trajectory(w, torch.randn(200, generator=g, dtype=torch.float64), activation)
        fwd = (run.forward[60].log() - run.forward[10].log()).item() / 50
        bwd = (run.backward[0].log() - run.backward[50].log()).item() / 50
        predicted = math.log(N.growth_factor(200, sigma**2, activation))
        assert fwd == pytest.approx(predicted, abs=0.05)
        assert bwd == pytest.approx(predicted, abs=0.05)
        assert run.backward[60].item() == pytest.approx(1.0)  # dL/dh_out = ones


def test_linear_backward_is_the_transposed_product():
    g = torch.Generator().manual_seed(2)
    w = N.random_weights(3, 4, 1.0, torch.float64, g)
    run = N.stack_trajectory(w, torch.randn(4, generator=g, dtype=torch.float64), "linear")
    expected = w[0].T @ w[1].T @ w[2].T @ torch.ones(4, dtype=torch.float64)
    assert torch.allclose(run.grads[0], expected)


def test_stack_forward_only_and_relu_backward_by_hand():
    g = torch.Generator().manual_seed(3)
    w = N.random_weights(2, 5, 1.0, torch.float64, g)
    x = torch.randn(5, generator=g, dtype=torch.float64)
    run = N.stack_trajectory(w, x, "relu", backward=False)
    h1 = w[0] @ x  # f is not applied to the input
    torch.testing.assert_close(run.outputs[2], w[1] @ torch.relu(h1))
    assert torch.isnan(run.grads).all() and torch.isnan(run.backward).all()
    run = N.stack_trajectory(w, x, "relu")
    torch.testing.assert_close(run.grads[1], (w[1].T @ torch.ones(5, dtype=torch.float64)) * (h1 > 0))
    torch.testing.assert_close(run.forward, N.rms(run.outputs))
    assert run.outputs.shape == run.grads.shape == (3, 5)


def test_random_weights_have_the_requested_std():
    w = N.random_weights(4, 500, 0.05, "float32", torch.Generator().manual_seed(0))
    assert w.shape == (4, 500, 500) and w.dtype == torch.float32
    assert float(w.double().std()) == pytest.approx(0.05, rel=0.01)  # 1e6 values


def test_rms_does_not_overflow_in_float32():
    big = torch.full((1, 4), 1e30, dtype=torch.float32)
    assert N.rms(big).item() == pytest.approx(1e30, rel=1e-6)


def test_bad_stack_arguments():
    with pytest.raises(ValueError, match="linear, relu"):
        N.stack_trajectory(torch.eye(2)[None], torch.ones(2), "gelu")
    with pytest.raises(ValueError, match="depth >= 1"):
        N.random_weights(0, 10, 1.0)
    with pytest.raises(ValueError, match="std must be >= 0"):
        N.random_weights(2, 10, -1.0)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        N.power_trajectory(torch.eye(2), torch.ones(2), -1)
    with pytest.raises(ValueError, match="square"):
        N.power_trajectory(torch.ones(2, 3), torch.ones(3), 2)
