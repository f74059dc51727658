"""Probe: statistics against a hand computation, selection, finiteness, and hooks removed on exit."""

import math

import pytest
import torch
from torch import nn

from lecture_utils.probes import Probe, Stats


def _one_layer():
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(30, 20)
    with torch.no_grad():
        layer.weight.normal_(0, 0.3, generator=g)
        layer.bias.normal_(0, 0.1, generator=g)
    x = torch.randn(64, 30, generator=g)
    return layer, x


def test_single_linear_layer_against_hand_computation():
    layer, x = _one_layer()
    target = torch.randn(64, 20, generator=torch.Generator().manual_seed(1))
    with Probe(nn.Sequential(layer)) as probe:
        out = layer(x)
        out.retain_grad()
        loss = ((out - target) ** 2).sum()
        loss.backward()
    f, b = probe.forward["0"], probe.backward["0"]
    o = out.detach().double()
    assert f.var == pytest.approx(float(o.var(unbiased=False)), rel=1e-6)
    assert f.mean == pytest.approx(float(o.mean()), rel=1e-6, abs=1e-9)
    assert f.mean_sq == pytest.approx(float((o**2).mean()), rel=1e-6)
    assert f.numel == 64 * 20 and f.finite
    manual_grad = 2 * (o - target.double())  # dL/d out of the squared error
    assert torch.allclose(out.grad.double(), manual_grad, rtol=1e-5)
    assert b.var == pytest.approx(float(manual_grad.var(unbiased=False)), rel=1e-5)
    assert b.mean == pytest.approx(float(manual_grad.mean()), rel=1e-4, abs=1e-6)


def test_stats_of_a_known_tensor_and_sample():
    s = Stats.of(torch.tensor([1.0, 2.0, 3.0, 4.0]), sample=2)
    assert (s.mean, s.var, s.mean_sq, s.numel, s.finite) == (2.5, 1.25, 7.5, 4, True)
    assert s.sample.tolist() == [1.0, 2.0]
    assert not Stats.of(torch.tensor([1.0, math.inf])).finite


def test_hooks_removed_after_the_with_block():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with Probe(model) as probe:
        model(torch.randn(3, 4)).sum().backward()
    assert all(len(m._forward_hooks) == 0 for m in model.modules())
    before = dict(probe.forward)
    model(torch.randn(3, 4))  # outside the block: nothing recorded
    assert probe.forward == before


def test_hooks_removed_when_the_block_raises():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(RuntimeError, match="boom"), Probe(model):
        assert sum(len(m._forward_hooks) for m in model.modules()) == 2
        raise RuntimeError("boom")
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_selection_by_type_name_and_predicate():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
    assert Probe(model).names == ["0", "2"]  # default: Linear / ConvNd
    assert Probe(model, select=(nn.ReLU,)).names == ["1", "3"]
    assert Probe(model, select=["3", "0"]).names == ["3", "0"]
    assert Probe(model, select=lambda n, m: n == "2").names == ["2"]


def test_relu_output_halves_the_mean_square():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(500, 500), nn.ReLU())
    with torch.no_grad():
        model[0].weight.normal_(0, math.sqrt(1 / 500), generator=g)
        model[0].bias.zero_()
    with Probe(model, select=["0", "1"]) as probe:
        model(torch.randn(2000, 500, generator=g))
    assert probe.forward["1"].mean_sq == pytest.approx(probe.forward["0"].var / 2, rel=0.02)


def test_variances_table_and_first_nonfinite():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[0].bias.zero_()
        model[1].weight.fill_(3e38)  # 3e38 * (4 inputs of 4) overflows to inf in float32
    with Probe(model) as probe:
        model(torch.ones(2, 4)).sum().backward()
    assert probe.first_nonfinite() == ("activation", "1")
    assert [row["act_finite"] for row in probe.table()] == [True, False, False]
    assert len(probe.variances("backward")) == 3
    ok = nn.Sequential(nn.Linear(4, 4))
    with Probe(ok) as probe:
        ok(torch.ones(2, 4))
    assert probe.first_nonfinite() is None
    assert probe.backward == {} and math.isnan(probe.variances("backward")[0])


def test_backward_false_records_no_gradients():
    model = nn.Sequential(nn.Linear(4, 4))
    with Probe(model, backward=False) as probe:
        model(torch.ones(2, 4)).sum().backward()
    assert probe.backward == {} and "0" in probe.forward


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: Probe(m, sample=-1), "sample must be >= 0"),
        (lambda m: Probe(m, select=["7"]), r"no modules named \['7'\]; the model has: 0, 1"),
        (lambda m: Probe(m, select=(nn.Conv2d,)), "matched no module"),
        (lambda m: Probe(m).variances("sideways"), "'forward' or 'backward'"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))


def test_locate_nonfinite_names_the_first_overflowing_layer_and_clears_gradients():
    from lecture_utils.probes import locate_nonfinite

    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    loss_fn = nn.functional.cross_entropy
    assert locate_nonfinite(net, x, y, loss_fn) is None
    with torch.no_grad():
        net[1].weight.fill_(3e38)  # the second layer's output overflows to inf
    assert locate_nonfinite(net, x, y, loss_fn) == ("activation", "1")
    assert all(p.grad is None for p in net.parameters())
