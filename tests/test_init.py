"""lecture_utils.init: the activation vocabulary, fans and gains against torch.nn.init, the distributions every
init function draws (over 1e6 values), and the named initializations of the lecture."""

import math

import pytest
import torch
from torch import nn

from lecture_utils import init as li

BIG = (1000, 1000)  # 1e6 values: a std within 1% is a ~14 sigma margin (rel. error of a std ~ 1/sqrt(2n))


# ---- activations --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", li.ACTIVATIONS)
def test_activation_fn_and_module_agree(name):
    z = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    expected = {"linear": z, "relu": z.clamp(min=0), "leaky_relu": torch.where(z > 0, z, 0.01 * z),
                "tanh": torch.tanh(z), "sigmoid": 1 / (1 + torch.exp(-z))}[name]  # fmt: skip
    torch.testing.assert_close(li.activation_fn(name)(z), expected)
    torch.testing.assert_close(li.activation_module(name)(z), expected)


def test_leaky_slope_is_passed_through():
    z = torch.tensor([-2.0, 3.0])
    assert li.activation_fn("leaky_relu", 0.2)(z).tolist() == pytest.approx([-0.4, 3.0])
    assert li.activation_module("leaky_relu", 0.2).negative_slope == 0.2
    assert li.activation_module("leaky_relu").negative_slope == li.DEFAULT_SLOPE == 0.01
    assert isinstance(li.activation_module("linear"), nn.Identity)


@pytest.mark.parametrize("name, slope", [("linear", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                                         ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 0.0)])  # fmt: skip
def test_gain_equals_calculate_gain(name, slope):
    assert li.gain(name, slope) == pytest.approx(nn.init.calculate_gain(name, slope), rel=1e-12)


def test_gain_values():
    assert li.gain("relu") == pytest.approx(math.sqrt(2))
    assert li.gain("tanh") == pytest.approx(5 / 3)
    assert li.gain("leaky_relu", 0.5) == pytest.approx(math.sqrt(2 / 1.25))


# ---- fans and closed forms ----------------------------------------------------------------------------
LAYERS = [nn.Linear(300, 200), nn.Conv1d(16, 32, 5), nn.Conv2d(3, 64, 3), nn.Conv2d(32, 16, (3, 5)),
          nn.Conv3d(4, 8, 3), nn.Conv2d(8, 16, 3, groups=4)]  # fmt: skip


@pytest.mark.parametrize("layer", LAYERS, ids=lambda m: f"{type(m).__name__}{tuple(m.weight.shape)}")
def test_fans_match_torch(layer):
    expected = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert li.fans(layer) == expected
    assert li.fans(layer.weight) == expected


def test_fans_by_hand():
    assert li.fans(nn.Linear(300, 200)) == (300, 200)
    assert li.fans(nn.Conv2d(3, 64, 3)) == (3 * 9, 64 * 9)  # C k^2
    assert li.fans(nn.Conv2d(32, 16, (3, 5))) == (32 * 15, 16 * 15)
    assert li.fans(nn.Conv1d(16, 32, 5)) == (16 * 5, 32 * 5)


def test_closed_forms():
    assert li.xavier_std(100, 300) == pytest.approx(math.sqrt(2 / 400))
    assert li.xavier_std(100, 300, g=5 / 3) == pytest.approx(5 / 3 * math.sqrt(2 / 400))
    assert li.xavier_bound(100, 300) == pytest.approx(math.sqrt(6 / 400))  # sqrt(3) x std, not 3 x std
    assert li.he_std(50) == pytest.approx(math.sqrt(2 / 50))
    assert li.he_std(50, g=1.0) == pytest.approx(math.sqrt(1 / 50))
    assert li.he_bound(50) == pytest.approx(math.sqrt(6 / 50))


# ---- init_tensor_ against torch and against the formula, 1e6 values --------------------------------------
# (our scheme, our kwargs, torch's function, torch's kwargs)
PAIRS = [
    ("xavier_normal", {"nonlinearity": "linear"}, nn.init.xavier_normal_, {}),
    ("xavier_uniform", {"nonlinearity": "linear"}, nn.init.xavier_uniform_, {}),
    ("xavier_uniform", {"nonlinearity": "tanh"}, nn.init.xavier_uniform_, {"gain": 5 / 3}),
    ("he_normal", {}, nn.init.kaiming_normal_, {"nonlinearity": "relu"}),
    ("he_uniform", {}, nn.init.kaiming_uniform_, {"nonlinearity": "relu"}),
    ("he_normal", {"mode": "fan_out"}, nn.init.kaiming_normal_, {"nonlinearity": "relu", "mode": "fan_out"}),
    ("he_uniform", {"nonlinearity": "leaky_relu", "slope": 0.2}, nn.init.kaiming_uniform_,
     {"nonlinearity": "leaky_relu", "a": 0.2}),
]  # fmt: skip


@pytest.mark.parametrize("shape", [BIG, (512, 256, 3, 3)], ids=["linear", "conv2d"])
@pytest.mark.parametrize("scheme, kw, torch_fn, torch_kw", PAIRS, ids=lambda x: x if isinstance(x, str) else "")
def test_init_tensor_matches_formula_and_torch(shape, scheme, kw, torch_fn, torch_kw):
    """On >= 1e6 values: std within 1% of the formula (and torch's own draw too), mean ~ 0, and for uniform
    schemes the largest |value| within 1% of the bound sqrt(3) std (and never above it)."""
    fan_in, fan_out = li.fans(torch.empty(shape))
    ours = li.init_tensor_(torch.empty(shape), scheme, generator=torch.Generator().manual_seed(0), **kw)
    theirs = torch_fn(torch.empty(shape), generator=torch.Generator().manual_seed(1), **torch_kw)
    g = li.gain(kw.get("nonlinearity", "relu"), kw.get("slope"))
    fan = fan_out if kw.get("mode") == "fan_out" else fan_in
    formula = g * math.sqrt(2 / (fan_in + fan_out)) if scheme.startswith("xavier") else g / math.sqrt(fan)
    assert li.scheme_std(ours, scheme, **kw) == pytest.approx(formula, rel=1e-12)
    assert float(ours.std()) == pytest.approx(formula, rel=0.01)
    assert float(theirs.std()) == pytest.approx(formula, rel=0.01)
    assert abs(float(ours.mean())) < 0.01 * formula
    if scheme.endswith("uniform"):
        bound = math.sqrt(3) * formula
        assert float(ours.abs().max()) <= bound
        assert float(ours.abs().max()) == pytest.approx(bound, rel=0.01)
        assert float(theirs.abs().max()) == pytest.approx(bound, rel=0.01)


def test_glorot_standard_is_pytorch_default_variance():
    """Glorot's "standard" U[-1/sqrt(n), 1/sqrt(n)] has Var 1/(3n), like PyTorch's default Linear init."""
    w = li.init_tensor_(torch.empty(BIG), "glorot_standard", generator=torch.Generator().manual_seed(0))
    assert float(w.abs().max()) == pytest.approx(1 / math.sqrt(1000), rel=0.01)
    assert float(w.var()) == pytest.approx(1 / 3000, rel=0.02)
    torch.manual_seed(0)
    assert float(nn.Linear(1000, 1000).weight.detach().var()) == pytest.approx(1 / 3000, rel=0.02)


def test_normal_and_uniform_with_given_std():
    g = torch.Generator().manual_seed(0)
    w = li.init_tensor_(torch.empty(BIG), "normal", std=0.05, generator=g)
    assert float(w.std()) == pytest.approx(0.05, rel=0.01)
    u = li.init_tensor_(torch.empty(BIG), "uniform", std=0.05, generator=g)
    assert float(u.std()) == pytest.approx(0.05, rel=0.01)
    assert float(u.abs().max()) == pytest.approx(0.05 * math.sqrt(3), rel=0.01)
    z = li.init_tensor_(torch.ones(10, 10), "normal", std=0.0)
    assert float(z.abs().max()) == 0.0


def test_generator_makes_it_reproducible():
    a = li.init_tensor_(torch.empty(50, 50), "he_normal", generator=torch.Generator().manual_seed(3))
    b = li.init_tensor_(torch.empty(50, 50), "he_normal", generator=torch.Generator().manual_seed(3))
    c = li.init_tensor_(torch.empty(50, 50), "he_normal", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("nonlinearity, g", [("linear", 1.0), ("relu", math.sqrt(2)), ("tanh", 5 / 3)])
def test_orthogonal_is_gain_times_an_orthogonal_matrix(nonlinearity, g):
    w = li.init_tensor_(torch.empty(64, 64), "orthogonal", nonlinearity=nonlinearity,
                        generator=torch.Generator().manual_seed(0))  # fmt: skip
    torch.testing.assert_close(w @ w.T, g**2 * torch.eye(64), atol=1e-5, rtol=0)
    wide = li.init_tensor_(torch.empty(32, 128), "orthogonal", g=0.5)  # rows orthonormal, times g
    torch.testing.assert_close(wide @ wide.T, 0.25 * torch.eye(32), atol=1e-5, rtol=0)


# ---- init_module_ --------------------------------------------------------------------------------------
def test_init_module_sets_every_weight_and_bias():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 4))
    li.init_module_(model, "he_normal", bias=0.5, generator=torch.Generator().manual_seed(0))
    assert all(float(m.bias.detach().min()) == 0.5 == float(m.bias.detach().max()) for m in (model[0], model[3]))
    before = model[3].bias.clone()
    li.init_module_(model, "he_normal", bias=None)  # biases left alone
    assert torch.equal(model[3].bias, before)
    w = model[3].weight.clone()
    li.init_module_(model, "default")  # reset_parameters(): PyTorch's own init, biases too
    assert not torch.equal(w, model[3].weight) and not torch.equal(before, model[3].bias)


def test_init_module_skip_last_leaves_the_head_untouched():
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 30), nn.ReLU(), nn.Linear(30, 5))
    head = {k: v.clone() for k, v in model[4].state_dict().items()}
    li.init_module_(model, "normal", std=1.0, skip_last=True, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(model[4].state_dict()[k], v) for k, v in head.items())
    assert float(model[0].weight.detach().std()) == pytest.approx(1.0, rel=0.15)  # the others were set
    assert float(model[2].bias.detach().abs().max()) == 0.0
    li.init_module_(model, "normal", std=1.0)  # without skip_last the head changes too
    assert not torch.equal(model[4].weight, head["weight"])


def test_weighted_layers_in_forward_order():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 2), nn.BatchNorm1d(2))
    assert [n for n, _ in li.weighted_layers(model)] == ["0", "3"]


# ---- the named initializations ---------------------------------------------------------------------------
def _two_layers(fan_in=1000, fan_out=1000):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(fan_in, fan_out), nn.ReLU(), nn.Linear(fan_out, fan_out))


@pytest.mark.parametrize(
    "name, variance",
    [("default", lambda i, o: 1 / (3 * i)), ("xavier", lambda i, o: 2 / (i + o)), ("he", lambda i, o: 2 / i),
     ("N(0,1)", lambda i, o: 1.0), ("N(0,0.01^2)", lambda i, o: 1e-4), ("orthogonal", lambda i, o: 2 / i),
     ("lecun", lambda i, o: 1 / i), ("he_uniform", lambda i, o: 2 / i)],
)  # fmt: skip
def test_apply_init_variance_of_every_named_init(name, variance):
    """Var[w] over 1e6 values (orthogonal: exact up to its mean) within 2% of the lecture's formula; biases 0
    except for 'default'."""
    assert name in li.INITS
    fan_in, fan_out = (300, 300) if name == "orthogonal" else (1000, 1000)  # a QR of 1000 x 1000 is slow
    model = li.apply_init(_two_layers(fan_in, fan_out), name, "relu", generator=torch.Generator().manual_seed(1))
    w, b = model[0].weight.detach(), model[0].bias.detach()
    assert float(w.var()) == pytest.approx(variance(fan_in, fan_out), rel=0.02)
    if name == "default":
        bound = 1 / math.sqrt(fan_in)
        assert float(b.abs().max()) <= bound and float(b.abs().max()) > 0.9 * bound  # uniform, not zero
    else:
        assert float(b.abs().max()) == 0.0


def test_apply_init_xavier_uses_fan_in_plus_fan_out_and_gain_one_for_every_activation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(500, 1500))
    li.apply_init(model, "xavier", "tanh", generator=torch.Generator().manual_seed(0))  # gain 1, as in the paper
    assert float(model[0].weight.detach().var()) == pytest.approx(2 / 2000, rel=0.02)
    li.apply_init(model, "he", "tanh", generator=torch.Generator().manual_seed(0))  # 2 / fan_in, whatever f
    assert float(model[0].weight.detach().var()) == pytest.approx(2 / 500, rel=0.02)


def test_apply_init_default_redraws_pytorch_init_from_the_global_rng():
    model = _two_layers(10, 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(7)
    assert li.apply_init(model, "default") is model
    first = {k: v.clone() for k, v in model.state_dict().items()}
    assert not any(torch.equal(first[k], v) for k, v in before.items())  # new draws, biases included
    torch.manual_seed(7)
    li.apply_init(model, "default")  # the same global seed gives the same draws
    assert all(torch.equal(model.state_dict()[k], v) for k, v in first.items())
    head = model[2].weight.clone()
    li.apply_init(model, "default", skip_last=True)
    assert torch.equal(model[2].weight, head) and not torch.equal(model[0].weight, first["0.weight"])


@pytest.mark.parametrize("activation, g", [("tanh", 5 / 3), ("linear", 1.0), ("relu", math.sqrt(2))])
def test_orthogonal_takes_the_activation_gain_and_the_g_override(activation, g):
    model = nn.Sequential(nn.Linear(64, 64))
    li.apply_init(model, "orthogonal", activation)
    w = model[0].weight.detach()
    torch.testing.assert_close(w @ w.T, g**2 * torch.eye(64), atol=1e-4, rtol=0)
    li.apply_init(model, "orthogonal", activation, g=1.0)  # tanh at the edge of chaos
    w = model[0].weight.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(64), atol=1e-5, rtol=0)


def test_apply_init_skip_last_and_leaky_slope():
    model = _two_layers(200, 200)
    head = model[2].weight.clone()
    li.apply_init(model, "orthogonal", "leaky_relu", slope=0.5, skip_last=True)
    assert torch.equal(model[2].weight, head)
    w = model[0].weight.detach()
    torch.testing.assert_close(w @ w.T, (2 / 1.25) * torch.eye(200), atol=1e-4, rtol=0)


def test_resolve_is_the_one_place_a_name_becomes_scheme_gain_and_std():
    assert li.resolve("he", "tanh") == {"scheme": "he_normal", "nonlinearity": "relu", "std": None, "slope": None,
                                        "g": None}  # fmt: skip
    assert li.resolve("lecun")["scheme"] == "lecun_normal" and li.resolve("xavier", "relu")["nonlinearity"] == "linear"
    assert li.resolve("N(0,0.01^2)")["std"] == 0.01
    assert li.resolve("orthogonal", "leaky_relu", slope=0.2, g=1.0) == {
        "scheme": "orthogonal", "nonlinearity": "leaky_relu", "std": None, "slope": 0.2, "g": 1.0}
    assert li.resolve("he", g=1.0)["g"] is None  # He's gain is part of its definition: g overrides only orthogonal
    assert li.lecun_std(400) == 1 / 20 == li.scheme_std(torch.empty(7, 400), "lecun_normal")


def test_init_weight_fills_one_tensor_by_name():
    g = torch.Generator().manual_seed(0)
    w = li.init_weight_(torch.empty(BIG), "he", generator=g)
    assert float(w.var()) == pytest.approx(2 / 1000, rel=0.01)
    d = li.init_weight_(torch.empty(BIG), "default", generator=g)  # nn.Linear's weight: U[+-1/sqrt(fan_in)]
    assert float(d.abs().max()) <= 1 / math.sqrt(1000) and float(d.var()) == pytest.approx(1 / 3000, rel=0.01)
    a = li.init_weight_(torch.empty(50, 50), "orthogonal", "leaky_relu", slope=0.5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a @ a.T, (2 / 1.25) * torch.eye(50), atol=1e-5, rtol=0)
    layer = nn.Linear(50, 50)  # the same draws as apply_init on a layer with that weight
    li.apply_init(layer, "orthogonal", "leaky_relu", slope=0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(layer.weight, a)


# ---- errors name the valid choices -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: li.gain("swish"), "unknown activation 'swish': choose one of linear, relu, leaky_relu, tanh, sigmoid"),
        (lambda: li.activation_fn("gelu"), "choose one of linear, relu"),
        (lambda: li.activation_module("selu"), "choose one of linear, relu"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "lecun"), "unknown init scheme 'lecun': choose one of default, normal"),
        (lambda: li.init_module_(nn.Linear(2, 2), "lecun"), "choose one of default, normal"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "normal"), "needs a finite std >= 0"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "normal", std=-1.0), "needs a finite std >= 0"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "uniform", std=math.inf), "needs a finite std >= 0"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "he_normal", mode="fan_avg"), "'fan_in' or 'fan_out'"),
        (lambda: li.init_tensor_(torch.empty(3, 3), "default"), "init_module_"),
        (lambda: li.scheme_std(torch.empty(3, 3), "orthogonal"), "no single std"),
        (lambda: li.fans(torch.empty(5)), "at least 2 dimensions"),
        (lambda: li.fans(nn.ReLU()), "has no weight"),
        (lambda: li.xavier_std(0, 10), "fans must be positive"),
        (lambda: li.he_std(-3), "fans must be positive"),
        (lambda: li.apply_init(nn.Linear(2, 2), "lsuv"), r"unknown initialization 'lsuv': choose one of default, "
         r"N\(0,1\), N\(0,0.01\^2\), lecun, xavier, he, he_uniform, orthogonal"),
        (lambda: li.init_weight_(torch.empty(3, 3), "kaiming"), "unknown initialization 'kaiming'"),
        (lambda: li.resolve("he", "gelu"), "choose one of linear, relu"),
        (lambda: li.apply_init(nn.Linear(2, 2), "he", "gelu"), "choose one of linear, relu"),
    ],
)  # fmt: skip
def test_bad_arguments_name_the_valid_choices(call, match):
    with pytest.raises(ValueError, match=match):
        call()
