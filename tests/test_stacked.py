"""models.StackedMLP and train.fit_members: M plain MLPs computed as one stacked model are the M networks
(outputs and every gradient, float64), training them together records what training each alone with train.fit
records (losses, gradient norms, evaluations, final weights), and a member that diverges is stopped and
diagnosed as fit diagnoses it while the others go on."""

import math

import pytest
import torch
from torch import nn

from lecture_utils import data, models, train

INITS = ("default", "xavier", "he", "orthogonal")


def _nets(depth=5, width=8, inits=INITS):
    return [models.plain_net("mlp", depth, width, init, in_shape=(3, 2, 2), num_classes=4, seed=i).double()
            for i, init in enumerate(inits)]  # fmt: skip


def _data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 2, 2, dtype=torch.float64, generator=g), torch.randint(0, 4, (n,), generator=g)


def test_stacked_outputs_and_gradients_are_the_separate_networks():
    nets = _nets()
    stack = models.StackedMLP(nets)
    assert len(stack) == 4
    x, y = _data(16)
    out = stack(x)
    assert out.shape == (4, 16, 4)
    for m, net in enumerate(nets):
        torch.testing.assert_close(out[m], net(x), rtol=1e-12, atol=1e-12)
    sum(nn.functional.cross_entropy(o, y) for o in out).backward()
    for m, net in enumerate(nets):
        nn.functional.cross_entropy(net(x), y).backward()
        for k, name in enumerate(stack.names):
            layer = getattr(net, name)
            torch.testing.assert_close(stack.weights[k].grad[m], layer.weight.grad, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(stack.biases[k].grad[m, 0], layer.bias.grad, rtol=1e-10, atol=1e-12)
    alone = stack.member(2)
    torch.testing.assert_close(alone(x), nets[2](x), rtol=0, atol=0)


def test_training_together_records_what_training_alone_records():
    x, y = _data()
    xv, yv = _data(40, seed=1)
    val = data.TensorLoader(xv, yv, 20, shuffle=False)
    nets = _nets()
    stack = models.StackedMLP(nets)  # copies the weights: the nets below start from the same ones
    runs = train.fit_members(stack, data.TensorLoader(x, y, 16, seed=3, drop_last=True), val, steps=13, lr=0.05,
                             eval_every=5, names=list(INITS))  # fmt: skip
    for m, net in enumerate(nets):
        alone = train.fit(net, data.TensorLoader(x, y, 16, seed=3, drop_last=True), val, steps=13, lr=0.05,
                          callbacks=[train.Evaluate(every=5), train.DivergenceGuard(stop=True)])  # fmt: skip
        assert runs[m].name == INITS[m] and not runs[m].diverged
        assert runs[m].step_loss == pytest.approx(alone.step_loss, rel=1e-9)
        assert runs[m].grad_norm == pytest.approx(alone.grad_norm, rel=1e-9)
        assert [e["step"] for e in runs[m].evals] == [e["step"] for e in alone.evals] == [0, 5, 10, 13]
        for key in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert runs[m].column(key) == pytest.approx(alone.column(key), rel=1e-9, nan_ok=True), key
        for k, name in enumerate(stack.names):
            torch.testing.assert_close(stack.weights[k][m], getattr(net, name).weight, rtol=1e-9, atol=1e-12)
    assert sum(r.seconds for r in runs) > 0


def test_a_diverging_member_stops_where_fit_stops_and_the_others_go_on():
    x, y = _data()
    x = x.float()  # float32 overflows where float64 would not
    nets = [net.float() for net in _nets(depth=8, inits=("he", "he", "he"))]
    with torch.no_grad():
        for layer in nets[1].modules():
            if isinstance(layer, nn.Linear):
                layer.weight.mul_(40.0)  # member 2 explodes
    stack = models.StackedMLP(nets)
    runs = train.fit_members(stack, data.TensorLoader(x, y, 16, seed=0, drop_last=True), None, steps=6, lr=0.1)
    for m, net in enumerate(nets):
        alone = train.fit(net, data.TensorLoader(x, y, 16, seed=0, drop_last=True), None, steps=6, lr=0.1,
                          callbacks=[train.DivergenceGuard(stop=True)])  # fmt: skip
        assert runs[m].diverged == alone.diverged == (m == 1)
        assert runs[m].where() == alone.where()
        assert runs[m].step_loss == pytest.approx(alone.step_loss, rel=1e-4, nan_ok=True)
    assert runs[1].nonfinite.step >= 1 and math.isnan(runs[1].final_val_acc)
    frozen = [w[1].clone() for w in stack.weights]
    assert all(torch.isfinite(w).all() for w in frozen)  # stopped before the update that would break it


def test_stacked_refuses_networks_that_are_not_one_architecture():
    with pytest.raises(ValueError, match="one architecture"):
        models.StackedMLP([models.plain_net("mlp", 4, 8), models.plain_net("mlp", 5, 8)])
    with pytest.raises(ValueError, match="without BatchNorm"):
        models.StackedMLP([models.plain_net("mlp", 4, 8, batchnorm=True)] * 2)
    with pytest.raises(ValueError, match="same layer shapes"):
        models.StackedMLP([models.plain_net("mlp", 4, 8), models.plain_net("mlp", 4, 16)])
    with pytest.raises(ValueError, match="names for"):
        train.fit_members(models.StackedMLP(_nets()), [], steps=1, names=["a"])
