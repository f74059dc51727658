"""lecture_utils.models: stable layer names, shapes, the init each builder applies (variance over many weights),
plain nets (seeded, global RNG untouched), the seed model, residual blocks and their theory, and the
correlation of weights and inputs drawn from one random stream (issue 8)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from lecture_utils import config, models
from lecture_utils import init as init_lib
from lecture_utils.init import weighted_layers
from lecture_utils.probes import Probe

SHAPE = (3, 4, 4)


def _kinds(model):
    return [(n, type(m).__name__) for n, m in model.named_children()]


# ---- deep_mlp / deep_cnn -------------------------------------------------------------------------------
def test_deep_mlp_names_structure_and_shapes():
    m = models.deep_mlp(3, 20, in_features=7, out_features=2, activation="tanh")
    assert _kinds(m) == [("fc1", "Linear"), ("act1", "Tanh"), ("fc2", "Linear"), ("act2", "Tanh"),
                         ("fc3", "Linear"), ("act3", "Tanh"), ("head", "Linear")]  # fmt: skip
    assert models.names(m, "fc") == ["fc1", "fc2", "fc3"] and models.names(m, "act") == ["act1", "act2", "act3"]
    assert m(torch.randn(5, 7)).shape == (5, 2)
    assert (m.fc1.in_features, m.fc1.out_features, m.head.in_features) == (7, 20, 20)
    assert all(float(layer.bias.detach().abs().max()) == 0 for _, layer in weighted_layers(m))  # He: biases 0


def test_deep_mlp_without_head_with_batchnorm_and_flatten():
    m = models.deep_mlp(2, 16, in_features=12, batchnorm=True, flatten=True)
    assert [n for n, _ in m.named_children()] == ["flatten", "fc1", "bn1", "act1", "fc2", "bn2", "act2"]
    assert models.names(m, "bn") == ["bn1", "bn2"]
    assert all(layer.bias is None for _, layer in weighted_layers(m))  # no bias before BatchNorm
    assert m(torch.randn(4, 3, 2, 2)).shape == (4, 16)
    assert all(m2.bias is None for _, m2 in weighted_layers(models.deep_mlp(2, 8, bias=False, out_features=3)))


@pytest.mark.parametrize(
    "act, init, expected_var",
    [("relu", "he", 2 / 1000), ("tanh", "he", 2 / 1000), ("tanh", "xavier", 2 / 2000), ("relu", "N(0,1)", 1.0),
     ("relu", "N(0,0.01^2)", 1e-4), ("relu", "default", 1 / 3000)],
)  # fmt: skip
def test_deep_mlp_init_variance(act, init, expected_var):
    """Var[w] of each 1000 x 1000 layer (1e6 weights) within 2% of the named init's formula."""
    torch.manual_seed(0)
    m = models.deep_mlp(2, 1000, activation=act, init=init)
    for _, layer in weighted_layers(m):
        assert float(layer.weight.detach().var()) == pytest.approx(expected_var, rel=0.02)


def test_deep_mlp_default_init_is_drawn_from_the_global_rng():
    torch.manual_seed(3)
    a = models.deep_mlp(2, 10, init="default")
    torch.manual_seed(3)
    b = models.deep_mlp(2, 10, init="default")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert float(a.fc1.bias.detach().abs().max()) > 0  # PyTorch's default draws biases too


def test_deep_mlp_orthogonal_gain_follows_activation_and_g():
    w = models.deep_mlp(2, 64, activation="tanh", init="orthogonal").fc2.weight.detach()
    torch.testing.assert_close(w @ w.T, (5 / 3) ** 2 * torch.eye(64), atol=1e-4, rtol=0)
    w = models.deep_mlp(2, 64, activation="tanh", init="orthogonal", g=1.0).fc2.weight.detach()
    torch.testing.assert_close(w @ w.T, torch.eye(64), atol=1e-5, rtol=0)


def test_deep_mlp_generator_makes_it_reproducible():
    a = models.deep_mlp(3, 16, init="he", generator=torch.Generator().manual_seed(1))
    b = models.deep_mlp(3, 16, init="he", generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.fc3.weight, b.fc3.weight)


def test_deep_cnn_names_shapes_and_fans():
    torch.manual_seed(0)
    m = models.deep_cnn(4, 32, in_channels=3, num_classes=10, init="he")
    assert models.names(m, "conv") == ["conv1", "conv2", "conv3", "conv4"]
    assert [n for n, _ in m.named_children()][-3:] == ["pool", "flatten", "head"]
    assert m(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    # He with fan_in = C_in k^2 = 32 * 9 for the inner convolutions (9216 weights: 3% is ~2 standard errors)
    assert float(m.conv2.weight.detach().var()) == pytest.approx(2 / (32 * 9), rel=0.05)
    assert m.conv1.padding == (1, 1) and m.conv1.bias is not None
    bn = models.deep_cnn(2, 8, batchnorm=True, kernel_size=5)
    assert models.names(bn, "bn") == ["bn1", "bn2"] and bn.conv1.bias is None and bn.conv1.padding == (2, 2)
    assert bn(torch.randn(2, 3, 8, 8)).shape == (2, 10)


# ---- plain nets of the depth ladder ------------------------------------------------------------------------
def test_plain_net_depth_counts_weighted_layers_head_included():
    for arch in ("mlp", "cnn"):
        net = models.plain_net(arch, 4, 8, "he", batchnorm=True, in_shape=SHAPE)
        assert len(weighted_layers(net)) == 4 and weighted_layers(net)[-1][0] == "head"
        assert sum(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in net.modules()) == 3
        assert net(torch.randn(5, *SHAPE)).shape == (5, 10)
    assert models.names(models.plain_net("mlp", 4, 8, in_shape=SHAPE), "fc") == ["fc1", "fc2", "fc3"]


@pytest.mark.parametrize(
    "init, expected",
    [("default", 1 / (3 * 400)), ("xavier", 2 / 800), ("he", 2 / 400), ("N(0,1)", 1.0), ("N(0,0.01^2)", 1e-4)],
)
def test_plain_net_weight_variance_of_each_init(init, expected):
    w = models.plain_net("mlp", 3, 400, init, in_shape=SHAPE).fc2.weight.detach()  # 160,000 weights
    assert float(w.var()) == pytest.approx(expected, rel=0.03)


def test_plain_net_orthogonal_has_the_relu_gain():
    w = models.plain_net("mlp", 3, 64, "orthogonal", in_shape=SHAPE).fc2.weight.detach()
    torch.testing.assert_close(w @ w.T, 2 * torch.eye(64), atol=1e-4, rtol=0)


def test_plain_net_same_seed_same_stream_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    he = models.plain_net("mlp", 3, 50, "he", in_shape=SHAPE, seed=7)
    xavier = models.plain_net("mlp", 3, 50, "xavier", in_shape=SHAPE, seed=7)
    default = models.plain_net("mlp", 3, 50, "default", in_shape=SHAPE, seed=7)
    cnn = models.plain_net("cnn", 3, 8, "he", in_shape=SHAPE, seed=7)
    assert torch.equal(torch.rand(3), before)  # the global generator is where it was
    again = models.plain_net("mlp", 3, 50, "he", in_shape=SHAPE, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(he.state_dict().values(), again.state_dict().values(), strict=True))
    assert torch.equal(models.plain_net("cnn", 3, 8, "he", in_shape=SHAPE, seed=7).conv2.weight, cnn.conv2.weight)
    assert not torch.equal(models.plain_net("mlp", 3, 50, "he", in_shape=SHAPE, seed=8).fc2.weight, he.fc2.weight)
    # same normal draws, another scale: He std sqrt(2/50), Xavier std sqrt(2/100)
    torch.testing.assert_close(he.fc2.weight / math.sqrt(2), xavier.fc2.weight)
    # 'default' is PyTorch's init under torch.manual_seed(seed)
    torch.manual_seed(7)
    assert torch.equal(nn.Linear(48, 50).weight, default.fc1.weight)


def test_issue_8_weights_and_inputs_from_independent_streams_give_the_theory():
    """Issue 8: a 'default' plain MLP (Var[w] = Var[b] = 1 / (3 fan_in)) fed N(0, 1) inputs of 3072 features has
    Var[z_1] = 3072 / (3 * 3072) + 1 / (3 * 3072) = 1/3 + 1/9216.  The old code drew the inputs from a generator
    seeded like the weights (the same stream) and measured 2.24: config.rng(0, "inputs") fixes it."""
    theory = 1 / 3 + 1 / (3 * 3072)
    net = models.plain_net("mlp", 3, 100, "default", seed=0)
    x = torch.randn(256, 3, 32, 32, generator=config.rng(0, "inputs"))
    with Probe(net, select=["fc1"], backward=False) as probe:
        net(x)
    assert probe.forward["fc1"].var == pytest.approx(theory, rel=0.10)
    # The fault, reproduced: the same seed for weights and inputs replays one stream and correlates them.
    replay = torch.randn(100, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with Probe(net, select=["fc1"], backward=False) as probe:
        net(replay)
    assert probe.forward["fc1"].var > 2 * theory


def test_plain_net_cnn_honours_g_and_bias():
    net = models.plain_net("cnn", 3, 8, "orthogonal", activation="tanh", g=1.0, bias=False, in_shape=SHAPE)
    w = net.conv2.weight.detach().reshape(8, -1)  # rows orthonormal times g
    torch.testing.assert_close(w @ w.T, torch.eye(8), atol=1e-5, rtol=0)
    assert net.conv1.bias is None


# ---- the seed model ------------------------------------------------------------------------------------
def test_seed_model():
    torch.manual_seed(0)
    m = models.seed_model()
    assert _kinds(m) == [("flatten", "Flatten"), ("fc1", "Linear"), ("bn1", "BatchNorm1d"), ("act1", "ReLU"),
                         ("head", "Linear")]  # fmt: skip
    assert m.fc1.bias is None and m(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    for layer, fan_in in ((m.fc1, 3072), (m.head, 100)):  # He-uniform: U[-a, a], a = sqrt(6 / fan_in)
        a = math.sqrt(6 / fan_in)
        w = layer.weight.detach()
        assert float(w.abs().max()) <= a and float(w.abs().max()) > 0.97 * a
    assert float(m.fc1.weight.detach().var()) == pytest.approx(2 / 3072, rel=0.01)  # 307,200 weights
    assert float(m.head.bias.detach().abs().max()) == 0.0
    torch.manual_seed(0)
    assert torch.equal(models.seed_model().fc1.weight, m.fc1.weight)  # drawn from the global RNG
    m = models.seed_model(batchnorm=False, hidden=8, in_features=48, classes=4)
    assert [n for n, _ in m.named_children()] == ["flatten", "fc1", "act1", "head"]
    assert m.fc1.bias is not None and float(m.fc1.bias.detach().abs().max()) == 0.0
    assert m(torch.randn(2, 3, 4, 4)).shape == (2, 4)


# ---- residual networks ---------------------------------------------------------------------------------
def test_residual_theory_values():
    assert models.residual_theory("unscaled", 3).tolist() == [1, 2, 4, 8]
    assert models.residual_theory("bn", 3, var0=2.0).tolist() == [2, 3, 4, 5]
    assert models.residual_theory("scaled", 2, var0=3.0).tolist() == [3, 3, 3]
    assert models.residual_theory("zero", 2).tolist() == [1, 1, 1]
    assert models.VARIANTS == ("unscaled", "scaled", "bn", "zero")


def test_zero_branch_scale_is_identity_at_init_and_learnable():
    torch.manual_seed(0)
    block = models.ResidualBlock(8, "zero")
    x = torch.randn(4, 8)
    assert torch.equal(block(x), x)
    block(x).pow(2).sum().backward()
    # d/d alpha = <2h, f(h)>: not zero, so the branch switches on at the first step
    assert float(block.alpha.grad) == pytest.approx(float((2 * x * block.branch(x)).sum().detach()), rel=1e-5)
    assert float(block.alpha.grad) != 0


def test_he_block_structure_and_weights():
    torch.manual_seed(0)
    block = models.ResidualBlock(1000, "bn", branch_depth=2)
    kinds = [type(m).__name__ for m in block.branch]
    assert kinds == ["BatchNorm1d", "ReLU", "Linear", "ReLU", "Linear"]  # pre-activation branch, BN first
    bn = block.branch[0]
    assert torch.equal(bn.weight.detach(), torch.ones(1000)) and torch.equal(bn.bias.detach(), torch.zeros(1000))
    linears = [m for m in block.branch if isinstance(m, nn.Linear)]
    assert float(linears[0].weight.detach().var()) == pytest.approx(2 / 1000, rel=0.02)  # He, 1e6 weights
    assert float(linears[1].bias.detach().abs().max()) == 0.0
    assert "variant='bn'" in repr(block)


def test_scaled_and_plain_sums():
    torch.manual_seed(0)
    x = torch.randn(3, 6)
    scaled = models.ResidualBlock(6, "scaled")
    torch.testing.assert_close(scaled(x), (x + scaled.branch(x)) / math.sqrt(2))
    unscaled = models.ResidualBlock(6, "unscaled")
    torch.testing.assert_close(unscaled(x), x + unscaled.branch(x))


def test_residual_mlp_names_stem_and_head():
    torch.manual_seed(0)
    net = models.residual_mlp(5, 16, "scaled", in_features=12, out_features=3, flatten=True)
    assert [n for n, _ in net.named_children()] == ["flatten", "stem", "block1", "block2", "block3", "block4",
                                                     "block5", "head"]  # fmt: skip
    assert models.names(net, "block") == [f"block{k}" for k in range(1, 6)]
    assert net(torch.randn(2, 3, 2, 2)).shape == (2, 3)
    big = models.residual_mlp(0, 1000, in_features=1000, out_features=1000)
    assert float(big.stem.weight.detach().var()) == pytest.approx(1 / 1000, rel=0.02)  # Var 1 / fan_in, gain 1
    assert float(big.head.bias.detach().abs().max()) == 0.0
    assert [n for n, _ in models.residual_mlp(2, 4).named_children()] == ["block1", "block2"]


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: models.deep_mlp(3, 10, activation="swish"), "choose one of linear, relu"),
        (lambda: models.deep_mlp(0, 10), "depth must be a positive integer, got 0"),
        (lambda: models.deep_mlp(3, 0), "width must be a positive integer"),
        (lambda: models.deep_mlp(3, 10, out_features=0), "out_features must be a positive integer"),
        (lambda: models.deep_mlp(3, 10, init="lsuv"), "unknown initialization 'lsuv': choose one of default, N"),
        (lambda: models.deep_cnn(0, 8), "depth must be a positive integer"),
        (lambda: models.deep_cnn(2, 8, kernel_size=2), "positive odd integer"),
        (lambda: models.plain_net("mlp", 3, 8, "lsuv"), "choose one of default, N"),
        (lambda: models.plain_net("rnn", 3, 8), "choose one of mlp, cnn"),
        (lambda: models.plain_net("mlp", 1, 8), "depth counts the weighted layers, head included"),
        (lambda: models.seed_model(hidden=0), "hidden must be a positive integer"),
        (lambda: models.residual_mlp(3, 8, "resnet"), "choose one of unscaled, scaled, bn, zero"),
        (lambda: models.residual_mlp(3, 8, "he"), "choose one of unscaled"),  # 'he' names an initialization only
        (lambda: models.residual_mlp(-1, 8), "num_blocks must be a non-negative integer"),
        (lambda: models.ResidualBlock(0), "width must be a positive integer"),
        (lambda: models.residual_theory("x", 3), "choose one of unscaled, scaled, bn, zero"),
        (lambda: models.names(nn.Sequential(nn.Linear(2, 2)), "fc"), "no layer named fc1, fc2"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_residual_theory_is_float64():
    assert models.residual_theory("unscaled", 2).dtype == np.float64


# ---- the fused 1000-layer net (notebook 9) -----------------------------------------------------------------
@pytest.mark.parametrize("slope", [0.0, 0.3, 0.9])
def test_deep_leaky_mlp_computes_what_its_sequential_twin_computes(slope):
    torch.manual_seed(1)
    net = models.deep_leaky_mlp(12, 8, slope, init="orthogonal", seed=3, in_features=20, num_classes=5)
    twin = net.to_sequential()
    x, y = torch.randn(16, 20, dtype=torch.float64), torch.randint(0, 5, (16,))
    net, twin = net.double(), twin.double()
    out, out_twin = net(x), twin(x)
    torch.testing.assert_close(out, out_twin, rtol=1e-12, atol=1e-12)
    nn.functional.cross_entropy(out, y).backward()  # the fused backward pass
    nn.functional.cross_entropy(out_twin, y).backward()
    twin_grads = [layer.weight.grad for _, layer in weighted_layers(twin)]
    fused_grads = [net.fc1.weight.grad, *net.hidden.grad.unbind(0), net.head.weight.grad]
    assert len(fused_grads) == len(twin_grads) == 12
    for g, g_twin in zip(fused_grads, twin_grads, strict=True):
        torch.testing.assert_close(g, g_twin, rtol=1e-10, atol=1e-12)
    with torch.no_grad():  # the unfused loop of the no-grad path gives the same outputs
        torch.testing.assert_close(net(x), out_twin, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name, hidden_var",
    [("he", 2 / 300), ("xavier", 1 / 300), ("lecun", 1 / 300), ("default", 1 / 900), ("N(0,0.01^2)", 1e-4)],
)
def test_deep_leaky_mlp_takes_any_named_init_of_the_vocabulary(name, hidden_var):
    """One vocabulary: every name of init.INITS works on the fused net's weight tensors (90,000 hidden weights:
    3% is ~6 standard errors); 'default' is the bound 1/sqrt(fan_in) of nn.Linear's reset_parameters()."""
    net = models.deep_leaky_mlp(4, 300, 0.0, init=name, seed=0, in_features=300)
    assert float(net.hidden.detach().var()) == pytest.approx(hidden_var, rel=0.03)
    if name == "default":
        assert float(net.hidden.detach().abs().max()) <= 1 / math.sqrt(300)


def test_every_builder_draws_its_weights_through_the_vocabulary():
    """The same seed, the same draws: a residual branch is init 'he', a stem 'lecun', the seed model 'he_uniform'."""
    torch.manual_seed(0)
    block = models.ResidualBlock(6, "unscaled")
    torch.manual_seed(0)
    assert torch.equal(block.branch[1].weight, init_lib.apply_init(nn.Linear(6, 6), "he").weight)
    torch.manual_seed(0)
    stem = models.residual_mlp(0, 6, in_features=5).stem
    torch.manual_seed(0)
    assert torch.equal(stem.weight, init_lib.apply_init(nn.Linear(5, 6), "lecun").weight)
    torch.manual_seed(0)
    seed = models.seed_model(hidden=8, in_features=12, classes=3)
    torch.manual_seed(0)
    layers = (nn.Linear(12, 8, bias=False), nn.BatchNorm1d(8), nn.Linear(8, 3))
    init_lib.apply_init(nn.Sequential(layers[0], layers[2]), "he_uniform")
    assert torch.equal(seed.fc1.weight, layers[0].weight) and torch.equal(seed.head.weight, layers[2].weight)


def test_deep_leaky_mlp_orthogonal_hidden_layers_have_the_leaky_gain():
    a = 0.5
    net = models.deep_leaky_mlp(6, 16, a, init="orthogonal", seed=0)
    w = net.hidden[0]
    gain = math.sqrt(2 / (1 + a**2))
    torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(16), rtol=0, atol=1e-5)
    s = torch.linalg.svdvals(net.head.weight)  # first and last layer: gain 1
    torch.testing.assert_close(s, torch.ones_like(s), rtol=0, atol=1e-5)
    assert not isinstance(models.deep_leaky_mlp(6, 16, a, fused=False), models.DeepLeakyMLP)
    with pytest.raises(ValueError, match="depth counts the weighted layers"):
        models.DeepLeakyMLP(2, 16, a)
    with pytest.raises(ValueError, match="unknown initialization 'lsuv'"):
        models.deep_leaky_mlp(6, 16, a, init="lsuv")
