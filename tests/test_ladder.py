"""The depth-ladder runner: builders and their variances, what a run records, and where it overflows."""

import math

import pytest
import torch
from torch import nn

from lecture_utils.ladder import (
    CONFIGS,
    batches,
    critical_mlp,
    format_table,
    locate_nonfinite,
    plain_net,
    tailored_slope,
    train_steps,
    weighted_layers,
)

SHAPE = (3, 4, 4)


def toy_data(n_train=256, n_val=128, seed=0):
    """Ten Gaussian clusters in CIFAR's NCHW layout (3 x 4 x 4): learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(10, *SHAPE, generator=g)
    y = torch.randint(0, 10, (n_train + n_val,), generator=g)
    x = protos[y] + 0.5 * torch.randn(n_train + n_val, *SHAPE, generator=g)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def hidden_weight(net, i=1):
    return weighted_layers(net)[i][1].weight


def test_depth_counts_weighted_layers_and_bn():
    for arch in ("mlp", "cnn"):
        net = plain_net(arch, 4, 8, "he_bn", in_shape=SHAPE)
        assert len(weighted_layers(net)) == 4
        assert sum(isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) for m in net.modules()) == 3
        assert net(torch.randn(5, *SHAPE)).shape == (5, 10)


@pytest.mark.parametrize(
    "config, expected",
    [("default", 1 / (3 * 400)), ("xavier", 2 / 800), ("he", 2 / 400), ("he_bn", 2 / 400)],
)
def test_weight_variance_of_each_config(config, expected):
    w = hidden_weight(plain_net("mlp", 3, 400, config, in_shape=SHAPE))
    assert w.var().item() == pytest.approx(expected, rel=0.03)


def test_orthogonal_has_relu_gain():
    w = hidden_weight(plain_net("mlp", 3, 64, "orthogonal", in_shape=SHAPE))
    assert torch.allclose(w @ w.T, 2 * torch.eye(64), atol=1e-4)


def test_same_seed_same_stream_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    he = hidden_weight(plain_net("mlp", 3, 50, "he", in_shape=SHAPE, seed=7))
    xavier = hidden_weight(plain_net("mlp", 3, 50, "xavier", in_shape=SHAPE, seed=7))
    assert torch.equal(torch.rand(1), before)
    # same normal draws, different scale: He std sqrt(2/50), Xavier std sqrt(2/100)
    assert torch.allclose(he / math.sqrt(2), xavier, atol=1e-6)


def test_tailored_slope_formula():
    for depth, width, c in [(1000, 32, 1.0), (100, 64, 0.5)]:
        a = tailored_slope(depth, width, c)
        rho = (1 - a * a) / (1 + a * a)
        assert 3 * depth * rho**2 / width == pytest.approx(c)
    assert tailored_slope(1000, 32) == pytest.approx(0.9015, abs=1e-4)
    assert tailored_slope(10, 64) == 0.0  # shallow and wide: plain ReLU is fine
    assert tailored_slope(10_000, 32) > tailored_slope(1000, 32)


def test_critical_tanh_orthogonal_preserves_norm_of_weights():
    net = critical_mlp(5, 16, in_features=48)
    w = hidden_weight(net)
    assert torch.allclose(w @ w.T, torch.eye(16), atol=1e-5)
    assert isinstance(net[2], nn.Tanh)


def test_batches_are_seeded_epochs():
    a = list(zip(range(6), batches(10, 3, seed=1), strict=False))
    b = list(zip(range(6), batches(10, 3, seed=1), strict=False))
    assert all(torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    first_epoch = torch.cat([a[i][1] for i in range(3)])
    assert len(set(first_epoch.tolist())) == 9  # 3 full batches, the partial one dropped
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(4, 5))


def test_run_records_curves_and_learns():
    data = toy_data()
    run = train_steps(plain_net("mlp", 3, 32, "he", in_shape=SHAPE), data, steps=40, lr=0.05, batch_size=32)
    assert len(run.loss) == 40 and run.steps_done == 40
    assert run.eval_steps == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    assert len(run.grad_var) == 3 and run.grad_var_first == run.grad_var[0] > 0
    assert run.final_val_acc > 0.6  # chance is 0.1
    assert run.loss[-1] < 0.5 * run.loss[0]
    assert run.where() == "ok" and not run.diverged


def test_same_seed_gives_identical_runs():
    data = toy_data()
    runs = [train_steps(plain_net("mlp", 4, 16, "he", in_shape=SHAPE), data, 10, 0.05, 16) for _ in range(2)]
    assert runs[0].loss == runs[1].loss and runs[0].val_acc == runs[1].val_acc


def _scaled_linear_chain(first_scale, middle, factor):
    """Linear activations; layer 1 random times first_scale, then ``middle`` layers factor * I, then a head."""
    net = plain_net("mlp", middle + 2, 16, "he", in_shape=SHAPE, activation="linear")
    layers = weighted_layers(net)
    with torch.no_grad():
        layers[0][1].weight.mul_(first_scale)
        for _, layer in layers[1:-1]:
            layer.weight.copy_(factor * torch.eye(16))
    return net, layers


def test_forward_overflow_names_layer_and_step():
    # |h_1| ~ 1; each identity layer multiplies by 1e5: 1e5^8 = 1e40 > 3.4e38 overflows at weighted layer 9
    net, layers = _scaled_linear_chain(1.0, middle=12, factor=1e5)
    run = train_steps(net, toy_data(), steps=5, lr=0.01, batch_size=16)
    assert run.nonfinite == {"step": 0, "kind": "activation", "layer": layers[8][0], "index": 9, "of": 14}
    assert run.steps_done == 0 and math.isnan(run.final_val_acc) and run.diverged
    assert run.where().startswith("activation non-finite at step 0, layer 9/14")


def test_backward_overflow_names_gradient_layer():
    # forward: 1e-36 * (1e4)^10 = 1e4, finite; backward: dL/dh_1 ~ (1e4)^10 = 1e40 overflows, dL/dh_2 does not
    net, layers = _scaled_linear_chain(1e-36, middle=10, factor=1e4)
    data = toy_data()
    x, y = data[0][:16], data[1][:16]
    assert torch.isfinite(net(x)).all()
    assert locate_nonfinite(net, x, y) == ("gradient", layers[0][0])
    run = train_steps(net, data, steps=3, lr=0.01, batch_size=16)
    assert (run.nonfinite["kind"], run.nonfinite["index"], run.nonfinite["step"]) == ("gradient", 1, 0)


def test_bad_arguments_and_table():
    with pytest.raises(ValueError, match="default, xavier, he, orthogonal, he_bn"):
        plain_net("mlp", 3, 8, "lecun")
    with pytest.raises(ValueError, match="mlp, cnn"):
        plain_net("rnn", 3, 8)
    with pytest.raises(ValueError, match="depth"):
        plain_net("mlp", 1, 8)
    assert set(CONFIGS) == {"default", "xavier", "he", "orthogonal", "he_bn"}
    text = format_table([{"a": "x", "b": 0.123456}], ["a", "b"], {"b": ".3g"})
    assert text.splitlines() == ["a  b", "x  0.123"]


def test_smoothed_and_threads():
    from lecture_utils.ladder import small_layers_threads, smoothed

    assert smoothed([1.0, 3.0, 5.0, 7.0], window=2) == [1.0, 2.0, 4.0, 6.0]
    with pytest.raises(ValueError, match="window"):
        smoothed([1.0], 0)
    assert small_layers_threads("meta") == torch.get_num_threads()  # not a CPU: left alone
