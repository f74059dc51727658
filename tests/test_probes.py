"""lecture_utils.probes: statistics against a hand computation, hooks removed even on error, divergence diagnosis,
per-layer gradient and residual-stream variances, percentiles, and the training-time recorders under train.fit."""

import copy
import functools
import math

import numpy as np
import pytest
import torch
from torch import nn

from lecture_utils import config, data, models, train
from lecture_utils.init import weighted_layers
from lecture_utils.probes import (
    BufferSnapshot,
    LayerHistograms,
    PercentileRecorder,
    Probe,
    Stats,
    UpdateRatio,
    input_percentiles,
    leaves,
    locate_nonfinite,
    stream_variances,
    weight_grad_variances,
)
from tests._one_thread import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (3, 4, 4)


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


# ---- Stats and Probe -------------------------------------------------------------------------------------
def test_stats_of_a_known_tensor():
    s = Stats.of(torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0, 0.0]), sample=2)
    assert (s.mean, s.numel, s.finite) == (pytest.approx(10 / 6), 6, True)
    assert s.var == pytest.approx(30 / 6 - (10 / 6) ** 2) and s.mean_sq == pytest.approx(30 / 6)
    assert s.frac_zero == pytest.approx(2 / 6) and s.frac_saturated == pytest.approx(4 / 6)  # |x| > 0.97
    assert s.sample.tolist() == [1.0, 2.0]
    assert not Stats.of(torch.tensor([1.0, math.inf])).finite
    assert Stats.of(torch.tensor([1.0])).sample is None
    assert Stats.of(torch.empty(0)).numel == 0 and math.isnan(Stats.of(torch.empty(0)).var)
    t = torch.tanh(torch.tensor([0.1, 3.0, -3.0, 0.5]))
    assert Stats.of(t).frac_saturated == 0.5


def test_single_linear_layer_against_hand_computation():
    g = torch.Generator().manual_seed(0)
    layer = nn.Linear(30, 20)
    with torch.no_grad():
        layer.weight.normal_(0, 0.3, generator=g)
        layer.bias.normal_(0, 0.1, generator=g)
    x = torch.randn(64, 30, generator=g)
    target = torch.randn(64, 20, generator=g)
    model = nn.Sequential(layer)
    with Probe(model) as probe:
        out = model(x)
        ((out - target) ** 2).sum().backward()
    f, b = probe.forward["0"], probe.backward["0"]
    o = (x.double() @ layer.weight.detach().double().T + layer.bias.detach().double())  # by hand, float64
    assert f.var == pytest.approx(float(o.var(unbiased=False)), rel=1e-5)
    assert f.mean == pytest.approx(float(o.mean()), rel=1e-4, abs=1e-7)
    assert f.mean_sq == pytest.approx(float((o**2).mean()), rel=1e-5)
    assert f.numel == 64 * 20 and f.finite
    manual_grad = 2 * (o - target.double())  # dL/d out of the squared error
    assert b.var == pytest.approx(float(manual_grad.var(unbiased=False)), rel=1e-5)
    assert b.mean == pytest.approx(float(manual_grad.mean()), rel=1e-4, abs=1e-6)


def test_relu_output_halves_the_mean_square():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(500, 500), nn.ReLU())
    with torch.no_grad():
        model[0].weight.normal_(0, math.sqrt(1 / 500), generator=g)
        model[0].bias.zero_()
    with Probe(model, select=["0", "1"], backward=False) as probe:
        model(torch.randn(2000, 500, generator=g))
    assert probe.forward["1"].mean_sq == pytest.approx(probe.forward["0"].var / 2, rel=0.02)
    assert probe.forward["1"].frac_zero == pytest.approx(0.5, abs=0.01)  # half the units are off


def test_probe_does_not_change_the_computation():
    torch.manual_seed(0)
    model = models.deep_mlp(3, 16, in_features=8, out_features=2)
    x = torch.randn(4, 8)
    plain = model(x)
    with Probe(model, select=leaves, sample=5):
        probed = model(x)
    assert torch.equal(plain, probed)


def test_hooks_removed_after_the_with_block():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with Probe(model) as probe:
        assert _hook_count(model) == 2
        model(torch.randn(3, 4)).sum().backward()
    assert _hook_count(model) == 0
    before = dict(probe.forward)
    model(torch.randn(3, 4))  # outside the block: nothing recorded
    assert probe.forward == before


def test_hooks_removed_when_the_block_raises():
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    with pytest.raises(RuntimeError, match="boom"), Probe(model, select=leaves):
        assert _hook_count(model) == 3
        model(torch.randn(2, 4))
        raise RuntimeError("boom")
    assert _hook_count(model) == 0


def test_selection_by_type_name_predicate_and_leaves():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU())
    assert Probe(model).names == ["0", "2"]  # default: Linear / ConvNd
    assert Probe(model, select=(nn.ReLU,)).names == ["1", "3"]
    assert Probe(model, select=["3", "0"]).names == ["3", "0"]
    assert Probe(model, select=lambda n, m: n == "2").names == ["2"]
    net = models.residual_mlp(2, 4, in_features=3)
    assert Probe(net, select=leaves).names[:3] == ["stem", "block1.branch.0", "block1.branch.1"]


def test_values_in_layer_order_with_nan_where_nothing_was_recorded():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    with Probe(model, backward=False) as probe:
        model(torch.ones(2, 4))
    np.testing.assert_allclose(probe.values("forward", "var"), [probe.forward["0"].var, probe.forward["1"].var])
    assert np.isnan(probe.values("backward")).all() and probe.backward == {}
    assert probe.values("forward", "numel").tolist() == [8, 8]


def test_first_nonfinite_and_locate_nonfinite_name_the_overflowing_layer():
    net = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    x, y = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1] * 4)
    loss_fn = nn.functional.cross_entropy
    assert locate_nonfinite(net, x, y, loss_fn) is None
    with torch.no_grad():
        net[1].weight.fill_(3e38)  # the second layer's output overflows to inf in float32
    with Probe(net) as probe:
        loss_fn(net(x), y).backward()
    assert probe.first_nonfinite() == ("activation", "1")
    assert probe.values("forward", "finite").tolist() == [True, False, False]
    assert locate_nonfinite(net, x, y, loss_fn) == ("activation", "1")
    assert all(p.grad is None for p in net.parameters())  # gradients cleared


def test_locate_nonfinite_blames_the_input_for_a_nan_pixel():
    torch.manual_seed(0)
    net = models.seed_model(hidden=8, in_features=48, classes=4)
    x, y = torch.randn(6, *SHAPE), torch.tensor([0, 1, 2, 3, 0, 1])
    x[2, 1, 0, 3] = math.nan
    assert locate_nonfinite(net, x, y, nn.functional.cross_entropy, select=leaves) == ("input", "")


def test_locate_nonfinite_names_a_gradient_that_overflows():
    """Linear layers, finite forward (1e-36 * (1e4)^10 = 1e4), but dL/dh_1 ~ (1e4)^10 = 1e40 overflows float32."""
    net = models.plain_net("mlp", 12, 16, "he", activation="linear", in_shape=SHAPE)
    layers = weighted_layers(net)
    with torch.no_grad():
        layers[0][1].weight.mul_(1e-36)
        for _, layer in layers[1:-1]:
            layer.weight.copy_(1e4 * torch.eye(16))
    x, y = torch.randn(16, *SHAPE, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 10
    assert torch.isfinite(net(x)).all()
    assert locate_nonfinite(net, x, y, nn.functional.cross_entropy) == ("gradient", "fc1")


def test_buffer_snapshot_puts_batchnorm_running_averages_back():
    bn = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    snap = BufferSnapshot(bn)
    bn(torch.full((5, 3), 7.0) + torch.arange(5.0)[:, None])  # train mode: running mean, var and count move
    assert int(bn[1].num_batches_tracked) == 1 and not torch.equal(bn[1].running_mean, torch.zeros(4))
    snap.restore()
    assert torch.equal(bn[1].running_mean, torch.zeros(4)) and torch.equal(bn[1].running_var, torch.ones(4))
    assert int(bn[1].num_batches_tracked) == 0
    with pytest.raises(RuntimeError), BufferSnapshot(bn):  # as a context manager: back even after an error
        bn(torch.randn(5, 3))
        raise RuntimeError
    assert torch.equal(bn[1].running_mean, torch.zeros(4)) and int(bn[1].num_batches_tracked) == 0


def test_locate_nonfinite_leaves_batchnorm_buffers_as_they_were():
    torch.manual_seed(0)
    net = models.seed_model(hidden=8, in_features=48, classes=4)
    x, y = torch.randn(6, *SHAPE), torch.tensor([0, 1, 2, 3, 0, 1])
    before = {k: v.clone() for k, v in net.named_buffers()}
    net.fc1.weight.data[0, 0] = math.inf
    assert locate_nonfinite(net, x, y, nn.functional.cross_entropy, select=leaves) == ("activation", "fc1")
    assert all(torch.equal(v, before[k]) for k, v in net.named_buffers())


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: Probe(m, sample=-1), "sample must be a number of values >= 0"),
        (lambda m: Probe(m, select=["7"]), r"no modules named \['7'\]; the model has: 0, 1"),
        (lambda m: Probe(m, select=(nn.Conv2d,)), "matched no module"),
        (lambda m: Probe(m).values("sideways"), "'forward' or 'backward'"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))


# ---- gradients reaching each layer, residual streams ---------------------------------------------------------
def test_weight_grad_variances_xavier_starves_the_first_layer_of_a_deep_relu_net():
    """30 ReLU layers of 100: Xavier (Var 1/n, half of He's) shrinks the backward signal by ~2 per layer, so the
    first layer gets a gradient 1e-6 times (measured: ~3e-9 times) He's."""
    x = torch.randn(128, *SHAPE, generator=config.rng(0, "inputs"))
    y = torch.randint(0, 10, (128,), generator=config.rng(0, "labels"))
    he_net = models.plain_net("mlp", 30, 100, "he", in_shape=SHAPE)
    he = weight_grad_variances(he_net, x, y)
    xavier = weight_grad_variances(models.plain_net("mlp", 30, 100, "xavier", in_shape=SHAPE), x, y)
    assert he.shape == xavier.shape == (30,)
    assert xavier[0] < 1e-6 * he[0]
    assert 0.01 < he[0] / he[-2] < 100  # He: the same order of magnitude at the bottom as at the top
    assert all(p.grad is None for p in he_net.parameters())  # cleared afterwards
    nn.functional.cross_entropy(he_net(x), y).backward()  # by hand
    assert float(he_net.fc1.weight.grad.double().var(unbiased=False)) == pytest.approx(he[0], rel=1e-6)


K, WIDTH, BATCH, DRAWS = 10, 512, 512, 4


@functools.cache
def mean_stream_variances(variant: str) -> np.ndarray:
    """Var[h_k] averaged over DRAWS independently initialized networks (the expectation the theory gives)."""
    torch.manual_seed(0)
    x = torch.randn(BATCH, WIDTH)
    runs = []
    for _ in range(DRAWS):
        net = models.residual_mlp(K, WIDTH, variant)
        runs.append(stream_variances(net, x, models.names(net, "block")))
    return np.mean(runs, axis=0)


@pytest.mark.parametrize("variant", ["unscaled", "scaled", "bn", "zero"])
def test_stream_variance_matches_residual_theory(variant):
    measured = mean_stream_variances(variant)
    assert measured.shape == (K + 1,)
    np.testing.assert_allclose(measured, models.residual_theory(variant, K, var0=measured[0]), rtol=0.15)


def test_growth_rates_are_the_three_regimes():
    unscaled, scaled, bn = (mean_stream_variances(v) for v in ("unscaled", "scaled", "bn"))
    assert 2 ** (K - 1) < unscaled[-1] / unscaled[0] < 2 ** (K + 1)  # exponential: ~1024
    assert 0.8 < scaled[-1] / scaled[0] < 1.25  # constant
    assert K * 0.85 < bn[-1] - bn[0] < K * 1.15  # linear: +1 per block


def test_stream_variances_restores_the_mode():
    net = models.residual_mlp(2, 8, "bn")
    net.eval()
    stream_variances(net, torch.randn(16, 8), ["block1", "block2"])
    assert not net.training and _hook_count(net) == 0


# ---- percentiles and the training-time recorders -----------------------------------------------------------
def test_input_percentiles_restores_batchnorm_buffers_and_mode():
    torch.manual_seed(0)
    model = models.seed_model(hidden=8, in_features=48, classes=4)
    x = 3 + 2 * torch.randn(200, *SHAPE)
    model.eval()
    buffers = {k: v.clone() for k, v in model.named_buffers()}
    p15, p50, p85 = input_percentiles(model, model.act1, x, unit=2)
    assert not model.training
    assert all(torch.equal(v, buffers[k]) for k, v in model.named_buffers())  # running stats, batch count
    # computed as in training: after BatchNorm with batch statistics, unit 2 is ~N(0, 1) over the batch
    assert p15 < p50 < p85 and p50 == pytest.approx(0.0, abs=0.2) and p85 - p15 == pytest.approx(2.07, rel=0.2)
    model.train()  # by hand, as in training: BatchNorm with the batch's statistics
    with torch.no_grad():
        z = model.bn1(model.fc1(model.flatten(x)))[:, 2].double()
    expected = torch.quantile(z, torch.tensor([0.15, 0.5, 0.85], dtype=torch.float64)).tolist()
    assert [p15, p50, p85] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def _toy(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *SHAPE, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (x[:, 1].mean(dim=(1, 2)) > 0).long()
    return x, y


def test_percentile_recorder_under_fit():
    torch.manual_seed(0)
    model = models.seed_model(hidden=8, in_features=48, classes=4)
    x, y = _toy()
    loader = data.TensorLoader(x, y, batch_size=10, shuffle=True, seed=1)
    rec = PercentileRecorder(model.act1, x[:64], unit=2, every=5)
    train.fit(model, loader, epochs=2, lr=0.05, callbacks=[rec])  # 10 steps per epoch
    assert rec.steps == [1, 5, 10, 15, 20]
    assert len(rec.values) == 5 and all(a <= b <= c for a, b, c in rec.values)
    assert rec.median_drift() == pytest.approx(max(v[1] for v in rec.values) - min(v[1] for v in rec.values))
    assert model.training  # the recorder put the model back in training mode
    with pytest.raises(ValueError, match="every must be a positive number of steps"):
        PercentileRecorder(model.act1, x, every=0)


class _ExpectedRatio:
    """log10(lr * std(g) / std(W)): what plain SGD's update-to-data ratio must be."""

    def __init__(self, lr, every):
        self.lr, self.every, self.values, self._w = lr, every, [], None

    def before_step(self, fit):
        if fit.step % self.every == 0:
            self._w = [m.weight.detach().clone() for _, m in weighted_layers(fit.model)]

    def after_step(self, fit):
        if fit.step % self.every == 0:
            layers = [m for _, m in weighted_layers(fit.model)]
            self.values.append([math.log10(self.lr * float(m.weight.grad.double().std()) / float(w.double().std()))
                                for m, w in zip(layers, self._w, strict=True)])  # fmt: skip


def test_update_ratio_under_fit_is_log10_lr_grad_over_weight():
    torch.manual_seed(0)
    model = models.seed_model(hidden=8, in_features=48, classes=4)
    x, y = _toy()
    loader = data.TensorLoader(x, y, batch_size=16, shuffle=True, seed=1)
    ratio, expected = UpdateRatio(every=4), _ExpectedRatio(0.05, 4)
    run = train.fit(model, loader, steps=12, lr=0.05, momentum=0.0, callbacks=[ratio, expected])
    assert run.steps_done == 12 and ratio.steps == [4, 8, 12]
    assert all(r.shape == (2,) and np.isfinite(r).all() for r in ratio.ratios)  # fc1 and head
    np.testing.assert_allclose(np.array(ratio.ratios), np.array(expected.values), atol=1e-3)
    with pytest.raises(ValueError, match="every must be a positive number of steps"):
        UpdateRatio(every=0)


class _Replay:
    """Keeps a copy of the model and the batch of the given steps, as they are before that step's forward pass."""

    def __init__(self, steps):
        self.steps, self.saved = steps, {}

    def before_step(self, fit):
        if fit.step in self.steps:
            self.saved[fit.step] = (copy.deepcopy(fit.model), fit.xb.clone(), fit.yb.clone())


def test_layer_histograms_are_the_training_steps_own_activations_and_gradients():
    torch.manual_seed(0)
    model = models.plain_net("mlp", 4, 8, "he", in_shape=SHAPE, num_classes=4, seed=0)
    x, y = _toy()
    loader = data.TensorLoader(x, y, batch_size=16, shuffle=True, seed=1)
    hist, replay = LayerHistograms([1, 4, 6], sample=100), _Replay({1, 4, 6})
    run = train.fit(model, loader, steps=6, lr=0.1, callbacks=[hist, replay])
    assert run.steps_done == 6 and hist.steps == [1, 4, 6] and sorted(hist.forward) == [1, 4, 6]
    assert hist.names == ["fc1", "fc2", "fc3", "head"] and _hook_count(model) == 0
    for step, (net, xb, yb) in replay.saved.items():  # the same pass again, on the weights of that step
        with Probe(net, sample=100) as probe:
            nn.functional.cross_entropy(net(xb), yb).backward()
        for name in hist.names:
            for mine, ref in ((hist.forward[step][name], probe.forward[name]),
                              (hist.backward[step][name], probe.backward[name])):  # fmt: skip
                assert mine.numel == ref.numel == 16 * (4 if name == "head" else 8)
                assert mine.var == pytest.approx(ref.var, rel=1e-6) and mine.mean == pytest.approx(ref.mean, abs=1e-9)
                assert torch.equal(mine.sample, ref.sample) and len(mine.sample) == min(100, mine.numel)
    # the head's gradient is (softmax - one-hot) / batch: each row sums to 0, so its mean is 0
    assert hist.backward[1]["head"].mean == pytest.approx(0.0, abs=1e-9)
    assert hist.forward[1]["fc1"].var != hist.forward[6]["fc1"].var  # the weights moved in between


def test_layer_histograms_do_not_change_training_and_remove_their_hooks_when_a_run_stops():
    x, y = _toy()

    def train_once(*callbacks):
        model = models.plain_net("mlp", 4, 8, "he", in_shape=SHAPE, num_classes=4, seed=0)
        loader = data.TensorLoader(x, y, batch_size=16, shuffle=True, seed=1)
        return model, train.fit(model, loader, steps=5, lr=0.1, callbacks=list(callbacks))

    _, plain = train_once()
    _, probed = train_once(LayerHistograms([1, 2, 5]))
    assert probed.step_loss == plain.step_loss  # recording reads the step; it changes nothing

    class StopAtTwo:  # ends the run inside a recorded step, before the recorder's after_backward
        order = -40

        def after_backward(self, fit):
            if fit.step == 2:
                raise train.StopFit

    hist = LayerHistograms([2])
    model, run = train_once(hist, StopAtTwo())
    assert run.steps_done == 1 and _hook_count(model) == 0 and hist.forward == {}
    assert LayerHistograms.order < train.DivergenceGuard.order  # removes its hooks before the guard may stop


@pytest.mark.parametrize("kwargs, match", [({"steps": []}, "steps must be training steps"),
                                           ({"steps": [0, 5]}, "steps must be training steps"),
                                           ({"steps": [1], "sample": 0}, "sample must be a positive")])  # fmt: skip
def test_layer_histograms_refuse_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LayerHistograms(**kwargs)
