"""models.StackedMLP and training its members with train.fit (train.Members' loss and callbacks, train.fit_members):
M plain MLPs computed as one stacked model are the M networks (outputs and every gradient, float64), training them
together records what training each alone with train.fit records (losses, gradient norms, evaluations, final
weights), a member that diverges is stopped before its update, diagnosed as fit diagnoses it and frozen (with SGD's
momentum and with Adam) while the others go on exactly as if it had not, and a set-up that would couple the members
is refused before anything is trained."""

import copy
import math

import pytest
import torch
from torch import nn

from lecture_utils import data, models, train
from tests._one_thread import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

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


def _loader(x, y, seed):
    return data.TensorLoader(x, y, 16, seed=seed, drop_last=True)


def _same_records(a, b):
    """Equal to the last bit (repr keeps every digit, and NaN equals NaN)."""
    return all(repr(getattr(a, k)) == repr(getattr(b, k)) for k in ("step_loss", "grad_norm", "evals", "nonfinite"))


def test_fit_on_the_stack_with_the_members_callbacks_is_fit_members_and_records_the_stack():
    x, y = _data()
    xv, yv = _data(40, seed=1)
    val = data.TensorLoader(xv, yv, 20, shuffle=False)
    stack = models.StackedMLP(_nets())
    twin = copy.deepcopy(stack)
    members = train.Members(stack, names=list(INITS))
    seen = []

    class Spy:  # order 0: after the member recorder and guard, before the member evaluation
        def before_fit(self, fit):
            seen.append([type(cb) for cb in fit.callbacks])

        def after_backward(self, fit):
            seen.append((members.losses.tolist(), list(members.norms)))

    run = train.fit(stack, _loader(x, y, 3), val, steps=13, lr=0.05, loss_fn=members.loss,
                    callbacks=[Spy(), *members.callbacks(every=5)])  # fmt: skip
    assert seen[0] == [train.RecordMembers, train.GuardMembers, Spy, train.EvaluateMembers]  # the defaults replaced
    runs = train.fit_members(twin, _loader(x, y, 3), val, steps=13, lr=0.05, eval_every=5, names=list(INITS))
    assert [r.name for r in members.runs] == list(INITS)
    assert all(_same_records(a, b) for a, b in zip(members.runs, runs, strict=True))
    assert seen[1] == ([r.step_loss[0] for r in runs], [r.grad_norm[0] for r in runs])  # the hand-over, step 1
    # fit's own run is the stacked model's: L = the sum of the members' losses, its gradient's norm
    assert run.steps_done == 13 and run.seconds == pytest.approx(sum(r.seconds for r in members.runs))
    assert run.step_loss == pytest.approx([sum(r.step_loss[t] for r in runs) for t in range(13)], rel=1e-12)
    assert run.grad_norm == pytest.approx([math.hypot(*(r.grad_norm[t] for r in runs)) for t in range(13)], rel=1e-12)
    for k, e in enumerate(run.evals):
        each = [r.evals[k] for r in runs]
        assert (e["step"], e["epoch"], e["lr"]) == (each[0]["step"], each[0]["epoch"], 0.05)
        for key in ("train_loss", "val_loss"):
            assert e[key] == pytest.approx(sum(m[key] for m in each), rel=1e-12, nan_ok=True)
        for key in ("train_acc", "val_acc"):
            assert e[key] == pytest.approx(sum(m[key] for m in each) / 4, rel=1e-12, nan_ok=True)


def _params(stack):
    """The stack's own parameters (stack.parameters() also yields those of its template network, never trained)."""
    return [*stack.weights, *stack.biases]


class _Overflow:
    """Before step ``at``, scale the first two layers of the members ``which`` by 1e20: in float32 their second
    layer's output overflows at that step (weights still finite).  Keeps what the stack's weights of those members
    were then, and after every later backward pass checks that the guard left them no gradient."""

    def __init__(self, at, which):
        self.at, self.which, self.frozen, self.grads_seen = at, which, None, 0

    def before_step(self, fit):
        if fit.step == self.at:
            with torch.no_grad():
                for w in fit.model.weights[:2]:
                    w[self.which] *= 1e20
            self.frozen = [p[self.which].clone() for p in _params(fit.model)]

    def after_backward(self, fit):  # order 0: after GuardMembers (-20)
        if fit.step >= self.at:
            assert all(not p.grad[self.which].any() for p in _params(fit.model))
            self.grads_seen += 1


@pytest.mark.parametrize("adam", [False, True], ids=["sgd-momentum", "adam"])
def test_a_stopped_member_is_frozen_and_the_others_train_as_if_it_had_not_diverged(adam):
    x, y = _data()
    x = x.float()
    nets = [net.float() for net in _nets(depth=6, inits=("he", "orthogonal", "xavier"))]
    stacks = [models.StackedMLP(nets) for _ in range(2)]
    overflow = _Overflow(at=4, which=[1])
    runs, stack_runs = [], []
    for stack, extra in zip(stacks, ([], [overflow]), strict=True):
        members = train.Members(stack)
        opt = torch.optim.Adam(stack.parameters(), lr=1e-3) if adam else None
        run = train.fit(stack, _loader(x, y, 0), None, steps=9, lr=0.1, optimizer=opt, loss_fn=members.loss,
                        callbacks=[*members.callbacks(every=2), *extra])  # fmt: skip
        runs.append(members.runs)
        stack_runs.append(run)
        assert run.steps_done == 9
    calm, hit = runs
    assert hit[1].where() == "activation non-finite at step 4, layer 2/6 (fc2)"
    assert len(hit[1].step_loss) == 4 and hit[1].steps_done == 3 and math.isnan(hit[1].final_val_acc)
    assert [e["step"] for e in hit[1].evals] == [0, 2]  # nothing recorded after it stopped
    assert overflow.grads_seen == 6  # steps 4..9: its gradient zeroed before every update
    after = [p[[1]] for p in _params(stacks[1])]
    assert all(torch.equal(a, b) for a, b in zip(after, overflow.frozen, strict=True))  # not moved since step 4
    assert _same_records(calm[0], hit[0]) and _same_records(calm[2], hit[2])  # the others: as if nothing happened
    assert not calm[1].diverged
    # the stack's run: L over the members training, non-finite at the step where one stops, then the others' sum
    assert not math.isfinite(stack_runs[1].step_loss[3]) and not math.isfinite(stack_runs[1].grad_norm[3])
    others = [hit[0].step_loss[t] + hit[2].step_loss[t] for t in range(4, 9)]
    assert stack_runs[1].step_loss[4:] == pytest.approx(others)


def test_when_every_member_has_stopped_the_fit_ends_before_that_update():
    x, y = _data()
    stack = models.StackedMLP([net.float() for net in _nets(depth=4)])
    members = train.Members(stack)
    run = train.fit(stack, _loader(x.float(), y, 0), None, steps=9, lr=0.1, loss_fn=members.loss,
                    callbacks=[*members.callbacks(), _Overflow(at=3, which=[0, 1, 2, 3])])  # fmt: skip
    assert run.steps_done == 2 and len(run.step_loss) == 3 and not math.isfinite(run.step_loss[-1])
    assert [r.where() for r in members.runs] == ["activation non-finite at step 3, layer 2/4 (fc2)"] * 4


def _plateau():
    return train.Scheduler(train.plateau())


@pytest.mark.parametrize(("change", "match"), [
    ({"callbacks": [train.Clip(norm=1.0)]}, "clip the stack's gradient as one vector"),
    ({"callbacks": [train.Checkpoint("unused.pt")]}, "saves the stack's run"),
    ({"callbacks": [_plateau()]}, "lower the learning rate of all members"),
    ({"weight_decay": 1e-4}, "weight decay would still move a stopped member"),
    ({"loss_fn": nn.functional.cross_entropy}, "loss_fn=members.loss"),
    ({"members": 3}, "Members has 3 runs"),
])  # fmt: skip
def test_what_would_couple_the_members_is_refused_before_anything_is_trained(change, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = _data()
    stack = models.StackedMLP(_nets())
    before = copy.deepcopy(stack.state_dict())
    members = train.Members(models.StackedMLP(_nets()[:3]) if change.get("members") == 3 else stack)
    opt = torch.optim.SGD(stack.parameters(), lr=0.1, weight_decay=change.get("weight_decay", 0))
    with pytest.raises(ValueError, match=match):
        train.fit(stack, _loader(x, y, 0), None, steps=3, optimizer=opt, loss_fn=change.get("loss_fn", members.loss),
                  callbacks=[*members.callbacks(), *change.get("callbacks", [])])  # fmt: skip
    assert all(torch.equal(before[k], v) for k, v in stack.state_dict().items())
    assert all(not r.step_loss for r in members.runs)
