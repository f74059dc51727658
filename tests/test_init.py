"""lecture_utils.init against torch.nn.init: fans, gains, and the distributions the init functions draw."""

import math

import pytest
import torch
from torch import nn

from lecture_utils import init as li

LAYERS = [
    nn.Linear(300, 200),
    nn.Conv1d(16, 32, 5),
    nn.Conv2d(3, 64, 3),
    nn.Conv2d(32, 16, (3, 5)),
    nn.Conv3d(4, 8, 3),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda m: type(m).__name__)
def test_fans_match_torch(layer):
    expected = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert li.fans(layer) == expected
    assert li.fans(layer.weight) == expected


def test_conv2d_fans_are_channels_times_kernel_area():
    assert li.fans(nn.Conv2d(3, 64, 3)) == (3 * 9, 64 * 9)


@pytest.mark.parametrize(
    "name, param", [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None), ("leaky_relu", 0.2),
                    ("leaky_relu", None), ("selu", None), ("conv2d", None)]
)  # fmt: skip
def test_gains_match_calculate_gain(name, param):
    assert li.gain(name, param) == pytest.approx(nn.init.calculate_gain(name, param), rel=1e-12)


def test_closed_forms():
    assert li.xavier_std(100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert li.xavier_bound(100, 300) == pytest.approx(math.sqrt(6 / 400))  # sqrt(3) x std, not 3 x std
    assert li.he_std(50) == pytest.approx(math.sqrt(2 / 50))
    assert li.he_bound(50) == pytest.approx(math.sqrt(6 / 50))


# (our scheme, our kwargs, torch's function, torch's kwargs)
PAIRS = [
    ("xavier_normal", {"nonlinearity": "linear"}, nn.init.xavier_normal_, {}),
    ("xavier_uniform", {"nonlinearity": "linear"}, nn.init.xavier_uniform_, {}),
    ("xavier_uniform", {"nonlinearity": "tanh"}, nn.init.xavier_uniform_, {"gain": 5 / 3}),
    ("he_normal", {}, nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
    ("he_uniform", {}, nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
    ("he_normal", {"mode": "fan_out"}, nn.init.kaiming_normal_, {"nonlinearity": "relu", "mode": "fan_out"}),
]


@pytest.mark.parametrize("shape", [(1000, 1000), (512, 256, 3, 3)], ids=["linear", "conv2d"])
@pytest.mark.parametrize(
    "scheme, kw, torch_fn, torch_kw", PAIRS, ids=lambda x: x if isinstance(x, str) else ""
)
def test_our_init_matches_torch_in_distribution(shape, scheme, kw, torch_fn, torch_kw):
    """On >= 1e6 values, std within 1%, and for uniform schemes the largest |value| within 1% of the bound."""
    ours = li.init_tensor_(torch.empty(shape), scheme, generator=torch.Generator().manual_seed(0), **kw)
    theirs = torch_fn(torch.empty(shape), generator=torch.Generator().manual_seed(1), **torch_kw)
    expected_std = li.scheme_std(ours, scheme, **kw)
    assert float(ours.std()) == pytest.approx(expected_std, rel=0.01)
    assert float(theirs.std()) == pytest.approx(expected_std, rel=0.01)
    assert float(ours.mean()) == pytest.approx(0.0, abs=0.01 * expected_std)
    if scheme.endswith("uniform"):
        bound = math.sqrt(3) * expected_std
        assert float(ours.abs().max()) <= bound and float(ours.abs().max()) == pytest.approx(bound, rel=0.01)
        assert float(theirs.abs().max()) == pytest.approx(bound, rel=0.01)


def test_glorot_standard_is_pytorch_default_variance():
    """Glorot's "standard" U[-1/sqrt(n), 1/sqrt(n)] has Var 1/(3n), like PyTorch's default Linear init."""
    w = li.init_tensor_(
        torch.empty(1000, 1000), "glorot_standard", generator=torch.Generator().manual_seed(0)
    )
    assert float(w.abs().max()) == pytest.approx(1 / math.sqrt(1000), rel=0.01)
    layer = nn.Linear(1000, 1000)
    assert float(layer.weight.detach().var()) == pytest.approx(1 / 3000, rel=0.02)
    assert float(w.var()) == pytest.approx(1 / 3000, rel=0.02)


def test_normal_and_uniform_with_given_std():
    g = torch.Generator().manual_seed(0)
    w = li.init_tensor_(torch.empty(1000, 1000), "normal", std=0.05, generator=g)
    assert float(w.std()) == pytest.approx(0.05, rel=0.01)
    u = li.init_tensor_(torch.empty(1000, 1000), "uniform", std=0.05, generator=g)
    assert float(u.std()) == pytest.approx(0.05, rel=0.01)
    assert float(u.abs().max()) == pytest.approx(0.05 * math.sqrt(3), rel=0.01)


def test_generator_makes_it_reproducible():
    a = li.init_tensor_(torch.empty(50, 50), "he_normal", generator=torch.Generator().manual_seed(3))
    b = li.init_tensor_(torch.empty(50, 50), "he_normal", generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_init_module_sets_every_weight_and_bias():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4))
    li.init_module_(model, "he_normal", bias=0.5, generator=torch.Generator().manual_seed(0))
    assert all(
        float(m.bias.detach().min()) == 0.5 == float(m.bias.detach().max()) for m in (model[0], model[3])
    )
    before = model[3].weight.clone()
    li.init_module_(model, "default")  # reset_parameters(): PyTorch's own init
    assert not torch.equal(before, model[3].weight)


def test_orthogonal_has_orthogonal_rows():
    w = li.init_tensor_(torch.empty(64, 64), "orthogonal", nonlinearity="linear")
    assert torch.allclose(w @ w.T, torch.eye(64), atol=1e-5)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: li.gain("swish"), "unknown nonlinearity 'swish': choose one of linear"),
        (
            lambda: li.init_tensor_(torch.empty(3, 3), "lecun"),
            "unknown init scheme 'lecun': choose one of default",
        ),
        (lambda: li.init_tensor_(torch.empty(3, 3), "normal"), "needs std >= 0"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "normal", std=-1.0), "needs std >= 0"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "he_normal", mode="fan_avg"), "'fan_in' or 'fan_out'"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "default"), "init_module_"),
        (lambda: li.fans(torch.empty(5)), "at least 2 dimensions"),
        (lambda: li.fans(nn.ReLU()), "has no weight"),
        (lambda: li.xavier_std(0, 10), "fans must be positive"),
        (lambda: li.he_std(-3), "fans must be positive"),
    ],
)
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
