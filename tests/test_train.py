"""lecture_utils.train: bit-identical resume after an interruption (weights, losses, a shuffled validation set, the
plateau scheduler), arguments refused before the model is touched, divergence named by step, kind and layer,
step budgets, evaluate, clipping, and TensorBoard logs that a second run replaces."""

import math
import random

import numpy as np
import pytest
import torch
from torch import nn

from lecture_utils import checkpoints, data, models, train
from lecture_utils.init import weighted_layers
from tests._one_thread import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (3, 4, 4)


def _problem(n=96, seed=0):
    """Four classes read off the means of two channels: learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *SHAPE, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (x[:, 1].mean(dim=(1, 2)) > 0).long()
    return x, y


def _setup(seed=0, shuffle_val=False):
    """Seed model (BatchNorm) for 48 inputs and 4 classes; 10 training steps per epoch."""
    torch.manual_seed(seed)
    model = models.seed_model(batchnorm=True, hidden=8, in_features=48, classes=4)
    x, y = _problem()
    xv, yv = _problem(50, seed=1)
    train_loader = data.TensorLoader(x, y, batch_size=10, shuffle=True, seed=seed + 1)
    val_loader = data.TensorLoader(xv, yv, batch_size=7, shuffle=shuffle_val, seed=seed + 2)
    return model, train_loader, val_loader


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Interrupt:
    """Raise KeyboardInterrupt after step ``at`` (a kernel interrupted mid-epoch)."""

    def __init__(self, at):
        self.at = at

    def after_step(self, fit):
        if fit.step == self.at:
            raise KeyboardInterrupt


class _Misnamed:
    """A callback with a typo: fit has no event after_batch."""

    def after_batch(self, fit):
        raise AssertionError("never called")


class _At:
    """Call ``fn(fit)`` after step ``at``."""

    def __init__(self, at, fn):
        self.at, self.fn = at, fn

    def after_step(self, fit):
        if fit.step == self.at:
            self.fn(fit)


# ---- resume -------------------------------------------------------------------------------------------------
def _plateau():
    return train.Scheduler(train.plateau(patience=0, threshold=0.5))


def test_resume_after_a_mid_run_interruption_is_bit_identical(tmp_path):
    kwargs = {"epochs": 4, "lr": 0.05}
    model, tl, vl = _setup(shuffle_val=True)
    full = train.fit(model, tl, vl, callbacks=[_plateau()], **kwargs)
    reference = _state(model)
    # the plateau scheduler fires: the validation loss never falls by half, so the lr drops tenfold after each eval
    assert full.column("lr") == pytest.approx([0.05, 0.005, 0.0005, 0.00005])

    ckpt = tmp_path / "run.pt"
    model1, tl1, vl1 = _setup(shuffle_val=True)
    with pytest.raises(KeyboardInterrupt):  # interrupted in epoch 2, after the checkpoint of epoch 1
        train.fit(model1, tl1, vl1, callbacks=[train.Checkpoint(ckpt), _Interrupt(15), _plateau()], **kwargs)
    assert checkpoints.read(ckpt)["epoch"] == 1 and checkpoints.read(ckpt)["step"] == 10

    torch.manual_seed(123), random.seed(123), np.random.seed(123)  # a new process: other random states
    model2, tl2, vl2 = _setup(seed=7, shuffle_val=True)  # other weights, other loader seeds
    cb = train.Checkpoint(ckpt, resume=True)
    resumed = train.fit(model2, tl2, vl2, callbacks=[cb, _plateau()], **kwargs)
    assert cb.resumed_from == 1
    assert _same(model2.state_dict(), reference)  # weights and BatchNorm buffers, bit for bit
    assert resumed.step_loss == full.step_loss and resumed.grad_norm == full.grad_norm
    assert resumed.column("val_loss") == full.column("val_loss")  # the shuffled validation order was restored
    assert resumed.evals == full.evals  # lr (the scheduler's state), accuracies, steps, epochs
    assert checkpoints.read(ckpt)["epoch"] == 4


def test_resume_of_a_finished_run_trains_no_further(tmp_path):
    model, tl, vl = _setup()
    train.fit(model, tl, vl, epochs=2, lr=0.05, callbacks=[train.Checkpoint(tmp_path / "c.pt")])
    done = _state(model)
    model2, tl2, vl2 = _setup(seed=3)
    run = train.fit(model2, tl2, vl2, epochs=2, lr=0.05, callbacks=[train.Checkpoint(tmp_path / "c.pt", resume=True)])
    assert _same(model2.state_dict(), done) and run.steps_done == 20


def test_checkpoint_every_steps(tmp_path):
    model, tl, vl = _setup()
    train.fit(model, tl, vl, steps=14, lr=0.05, callbacks=[train.Checkpoint(tmp_path / "c.pt", every=6)])
    assert checkpoints.read(tmp_path / "c.pt")["step"] == 12
    with pytest.raises(ValueError, match="every must be a positive number of steps"):
        train.Checkpoint(tmp_path / "c.pt", every=0)


def test_unwritable_checkpoint_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    model, tl, vl = _setup()
    before = _state(model)
    with pytest.raises(checkpoints.CheckpointError, match="cannot write a checkpoint"):
        train.fit(model, tl, vl, epochs=1, callbacks=[train.Checkpoint(blocker / "c.pt")])
    assert _same(model.state_dict(), before)
    run = train.fit(model, tl, vl, epochs=1, callbacks=[train.Checkpoint(tmp_path / "none.pt", resume=True)])
    assert run.steps_done == 10  # resume=True without a file: a new run


def test_checkpoint_every_steps_saves_after_that_steps_evaluation_and_resumes_bit_identically(tmp_path):
    model, tl, vl = _setup()
    full = train.fit(model, tl, vl, steps=25, lr=0.05, callbacks=[train.Evaluate(every=5)])
    model1, tl1, vl1 = _setup()
    callbacks = [train.Checkpoint(tmp_path / "c.pt", every=10), _Interrupt(14), train.Evaluate(every=5)]
    with pytest.raises(KeyboardInterrupt):
        train.fit(model1, tl1, vl1, steps=25, lr=0.05, callbacks=callbacks)
    assert [e["step"] for e in checkpoints.read(tmp_path / "c.pt")["history"]["evals"]] == [0, 5, 10]  # step 10's too
    model2, tl2, vl2 = _setup(seed=5)
    callbacks = [train.Checkpoint(tmp_path / "c.pt", every=10, resume=True), train.Evaluate(every=5)]
    resumed = train.fit(model2, tl2, vl2, steps=25, lr=0.05, callbacks=callbacks)
    assert resumed.column("step") == [0, 5, 10, 15, 20, 25]
    assert repr(resumed.evals) == repr(full.evals)  # repr: the train loss at step 0 is NaN, and NaN != NaN
    assert resumed.step_loss == full.step_loss and _same(model2.state_dict(), model.state_dict())


def test_tensorboard_listed_before_checkpoint_continues_the_resumed_log(tmp_path):
    """The callbacks' order decides, not the list's: TensorBoard (order 40) learns from Checkpoint (30) that the run
    was resumed, and keeps the first 20 steps' log instead of wiping it."""
    log_dir, ckpt = tmp_path / "runs", tmp_path / "c.pt"
    model, tl, vl = _setup()
    train.fit(model, tl, vl, epochs=2, lr=0.05, callbacks=[train.TensorBoard(log_dir, False), train.Checkpoint(ckpt)])
    model2, tl2, vl2 = _setup(seed=4)
    callbacks = [train.TensorBoard(log_dir, histograms=False), train.Checkpoint(ckpt, resume=True)]
    run = train.fit(model2, tl2, vl2, epochs=3, lr=0.05, callbacks=callbacks)
    assert run.steps_done == 30 and callbacks[1].resumed_from == 2
    assert [e.step for e in _scalars(log_dir).Scalars("loss/train_step")] == list(range(1, 31))


def test_callbacks_run_in_their_order_at_every_event_and_stopfit_ends_the_run():
    calls = []

    class Log:
        def __init__(self, name, order):
            self.name, self.order = name, order

        def before_step(self, fit):
            calls.append((fit.step, self.name))

        def after_step(self, fit):
            if fit.step == 2 and self.name == "late":
                raise train.StopFit

        def after_fit(self, fit):
            calls.append(("end", self.name))

    model, tl, vl = _setup()
    run = train.fit(model, tl, vl, epochs=3, lr=0.05, callbacks=[Log("late", 5), Log("early", -5), Log("plain", 0)])
    assert calls == [(1, "early"), (1, "plain"), (1, "late"), (2, "early"), (2, "plain"), (2, "late"),
                     ("end", "early"), ("end", "plain"), ("end", "late")]  # fmt: skip
    assert run.steps_done == 2 and run.evals == [] and not run.diverged  # StopFit: at once, no evaluation


def test_print_evals_prints_one_line_per_evaluation(capsys):
    model, tl, vl = _setup()
    run = train.fit(model, tl, vl, steps=4, lr=0.05, name="bn", callbacks=[train.PrintEvals(), train.Evaluate(every=2)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 == len(run.evals)
    e = run.evals[-1]
    assert lines[-1] == (f"bn: step      4 (epoch 1): train loss {e['train_loss']:.4f}, val loss {e['val_loss']:.4f}, "
                         f"val acc {e['val_acc']:.3f}, lr 5e-02")  # fmt: skip


# ---- arguments refused before anything is trained -------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 1, "lr": math.nan}, "lr must be a positive finite number, got nan"),
        ({"epochs": 1, "lr": 0}, "lr must be a positive finite number, got 0"),
        ({"epochs": 1, "lr": -1}, "lr must be a positive finite number, got -1"),
        ({"epochs": 1, "lr": math.inf}, "lr must be a positive finite number"),
        ({"epochs": 1, "steps": 5}, "either epochs= .* or steps= .* not both"),
        ({}, "either epochs= .* or steps="),
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"steps": 2.5}, "steps must be a positive integer"),
        ({"epochs": 1, "callbacks": lambda: [train.Clip(value=0)]}, "Clip's value must be a positive number or None, got 0"),
        ({"epochs": 1, "callbacks": lambda: [train.Clip(norm=-1.0)]}, "Clip's norm must be a positive number or None"),
        ({"epochs": 1, "callbacks": lambda: [train.Clip(norm=math.nan)]}, "Clip's norm must be a positive number or None"),
        ({"epochs": 1, "callbacks": lambda: [train.Clip()]}, "Clip needs value= .* or norm="),
        ({"epochs": 1, "callbacks": lambda: [train.DivergenceGuard(stop="ignore")]}, "stop must be True .* or False"),
        ({"epochs": 1, "callbacks": lambda: [train.Evaluate(every=0)]}, "every must be a positive number of steps"),
        ({"epochs": 1, "callbacks": lambda: [train.Scheduler(0.1)]}, "Scheduler needs a function optimizer -> scheduler"),
        ({"epochs": 1, "callbacks": lambda: [_Misnamed()]}, "_Misnamed.after_batch is named after no event of fit"),
    ],
)
def test_bad_arguments_are_refused_before_the_model_is_touched(kwargs, match):
    model, tl, vl = _setup()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        kwargs = {k: v() if callable(v) else v for k, v in kwargs.items()}  # a bad callback fails when it is made
        train.fit(model, tl, vl, **kwargs)
    assert _same(model.state_dict(), before) and all(p.grad is None for p in model.parameters())


def test_an_empty_loader_is_refused(tmp_path):
    model, tl, vl = _setup()
    before = _state(model)
    x, y = _problem(5)
    empty = data.TensorLoader(x, y, batch_size=10, drop_last=True)  # fewer examples than one batch
    with pytest.raises(ValueError, match="train_loader yields no batches"):
        train.fit(model, empty, vl, epochs=1)
    with pytest.raises(ValueError, match="train_loader yielded no batches"):
        train.fit(model, (b for b in []), vl, epochs=1)  # no len(): found out on the first pass
    assert _same(model.state_dict(), before)


# ---- divergence ---------------------------------------------------------------------------------------------
def test_a_nan_pixel_is_blamed_on_the_input_not_on_a_layer():
    model, _, vl = _setup()
    x, y = _problem()
    x[13, 2, 1, 1] = math.nan  # one corrupt image in the second batch
    before = _state(model)
    loader = data.TensorLoader(x, y, batch_size=10, shuffle=False)
    with pytest.raises(train.DivergenceError) as info:
        train.fit(model, loader, vl, epochs=1, lr=0.05)
    msg = str(info.value)
    assert msg.startswith("training diverged at step 2 (epoch 1): loss = nan; the input batch itself holds NaN")
    assert "Check the data" in msg and "Flatten" not in msg and "flatten" not in msg
    assert info.value.run.nonfinite == train.NonFinite(step=2, kind="input", layer="", index=0, of=0)
    assert info.value.run.where() == "input non-finite at step 2" and info.value.run.steps_done == 1
    assert not _same(model.state_dict(), before)  # step 1 was taken ...
    assert all(torch.isfinite(p).all() for p in model.parameters())  # ... the bad step's update was not


def test_a_diverged_step_leaves_batchnorm_running_averages_as_they_were():
    model, _, vl = _setup()
    x, y = _problem()
    x[13, 2, 1, 1] = math.nan
    run = train.fit(model, data.TensorLoader(x, y, batch_size=10, shuffle=False), vl, epochs=1, lr=0.05,
                    callbacks=[train.DivergenceGuard(stop=True)])  # fmt: skip
    assert run.steps_done == 1
    assert torch.isfinite(model.bn1.running_mean).all() and torch.isfinite(model.bn1.running_var).all()
    assert math.isfinite(train.evaluate(model, vl)[0])


def test_an_injected_inf_weight_names_that_layer_and_stop_returns_the_run():
    model, tl, vl = _setup()

    def poison(fit):
        with torch.no_grad():
            fit.model.fc1.weight[0, 0] = math.inf

    run = train.fit(model, tl, vl, epochs=2, lr=0.05, callbacks=[_At(3, poison), train.DivergenceGuard(stop=True)])
    assert run.nonfinite == train.NonFinite(step=4, kind="activation", layer="fc1", index=1, of=2)
    assert run.where() == "activation non-finite at step 4, layer 1/2 (fc1)"
    assert run.diverged and run.steps_done == 3 and len(run.step_loss) == 4 and math.isnan(run.final_val_acc)
    model, tl, vl = _setup()
    with pytest.raises(train.DivergenceError, match=r"step 4 \(epoch 1\).*layer 'fc1' \(Linear, weighted layer 1 of 2\)"
                       r".*smaller learning rate") as info:  # fmt: skip
        train.fit(model, tl, vl, epochs=2, lr=0.05, callbacks=[_At(3, poison)])
    assert info.value.run.nonfinite.layer == "fc1"
    assert info.value._render_traceback_()[0].startswith("DivergenceError: training diverged at step 4")


def test_an_exploding_gradient_with_a_finite_forward_pass_is_named():
    """Linear layers: 1e-36 * (1e4)^10 = 1e4 forward, but the gradient reaching fc1 is ~ (1e4)^10 = 1e40 > 3.4e38."""
    net = models.plain_net("mlp", 12, 16, "he", activation="linear", in_shape=SHAPE)
    layers = weighted_layers(net)
    with torch.no_grad():
        layers[0][1].weight.mul_(1e-36)
        for _, layer in layers[1:-1]:
            layer.weight.copy_(1e4 * torch.eye(16))
    x, _ = _problem(32)
    y = torch.arange(32) % 10
    assert torch.isfinite(net(x)).all()
    run = train.fit(net, data.TensorLoader(x, y, 16, shuffle=False), steps=3, lr=0.01,
                    callbacks=[train.DivergenceGuard(stop=True)])  # fmt: skip
    # first non-finite in backward order: the gradient reaching act1's output (act1 is an Identity after fc1)
    assert (run.nonfinite.kind, run.nonfinite.layer, run.nonfinite.step) == ("gradient", "act1", 1)
    assert run.where() == "gradient non-finite at step 1, layer 1/12 (act1)"
    assert run.steps_done == 0 and torch.isfinite(layers[0][1].weight).all()  # stopped before the update


def test_a_forward_overflow_names_the_weighted_layer_before_any_update():
    """Linear activations, |h_1| ~ 1, then identity layers times 1e5: 1e5^8 = 1e40 > 3.4e38 at weighted layer 9."""
    net = models.plain_net("mlp", 14, 16, "he", activation="linear", in_shape=SHAPE)
    layers = weighted_layers(net)
    with torch.no_grad():
        for _, layer in layers[1:-1]:
            layer.weight.copy_(1e5 * torch.eye(16))
    before = _state(net)
    x, _ = _problem(32)
    run = train.fit(net, data.TensorLoader(x, torch.arange(32) % 10, 16), steps=5, lr=0.01,
                    callbacks=[train.DivergenceGuard(stop=True)])  # fmt: skip
    assert run.nonfinite == train.NonFinite(step=1, kind="activation", layer="fc9", index=9, of=14)
    assert run.where() == "activation non-finite at step 1, layer 9/14 (fc9)"
    assert run.steps_done == 0 and math.isnan(run.final_val_acc) and _same(net.state_dict(), before)


# ---- the loop: step budgets, schedulers, callbacks, evaluate --------------------------------------------------
def test_steps_mode_evaluates_at_step_0_and_every_so_many_steps():
    model, tl, vl = _setup()
    run = train.fit(model, tl, vl, steps=25, lr=0.05, callbacks=[train.Evaluate(every=10)])  # 10 steps an epoch
    assert run.steps_done == 25 == len(run.step_loss)
    assert run.column("step") == [0, 10, 20, 25] and run.column("epoch") == [0, 1, 2, 3]
    assert math.isnan(run.evals[0]["train_loss"]) and run.evals[0]["val_loss"] > 0
    run = train.fit(_setup()[0], tl, vl, steps=20, lr=0.05)  # default: a tenth of the budget
    assert run.column("step") == list(range(0, 21, 2))
    assert set(run.evals[0]) == set(train.EVAL_KEYS)


def test_epochs_mode_learns_and_records():
    model, tl, vl = _setup()
    run = train.fit(model, tl, vl, epochs=3, lr=0.05, name="bn")
    assert run.column("epoch") == [1, 2, 3] and run.column("step") == [10, 20, 30] and run.name == "bn"
    assert len(run.step_loss) == len(run.grad_norm) == 30 and all(g > 0 for g in run.grad_norm)
    sizes = [10] * 9 + [6]  # 96 examples: the last batch is partial; train_loss is the mean per example
    assert run.evals[0]["train_loss"] == pytest.approx(np.average(run.step_loss[:10], weights=sizes), rel=1e-6)
    assert run.final_val_acc > 0.4  # chance is 0.25 (50 validation examples: 0.4 is 2.5 sd above it)
    assert np.mean(run.step_loss[-5:]) < 0.8 * np.mean(run.step_loss[:5])  # measured: 1.14 vs 1.57
    assert run.where() == "ok" and run.seconds > 0
    again = train.fit(_setup()[0], _setup()[1], vl, epochs=3, lr=0.05)
    assert again.step_loss == run.step_loss  # the same seeds give the same run
    back = train.Run.from_state(run.state())
    assert (back.step_loss, back.evals, back.name) == (run.step_loss, run.evals, "bn")
    with pytest.raises(ValueError, match="unknown column 'acc'"):
        run.column("acc")


def test_other_schedulers_step_after_every_step_and_callbacks_can_stop():
    model, tl, vl = _setup()
    sched = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)  # noqa: E731
    stop = _At(9, lambda fit: setattr(fit, "stop", True))
    run = train.fit(model, tl, vl, epochs=5, lr=0.08, callbacks=[stop, train.Scheduler(sched)])
    assert run.steps_done == 9
    assert run.column("lr")[-1] == pytest.approx(0.08 * 0.5**2)  # 9 scheduler steps: two halvings


def test_a_given_optimizer_is_used_as_it_is():
    model, tl, vl = _setup()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train.fit(model, tl, vl, steps=3, optimizer=opt, lr=math.nan)  # lr= is not checked: the optimizer has its own
    assert opt.state[model.fc1.weight]["step"] == 3


def test_evaluate_returns_loss_then_accuracy_in_eval_mode_and_restores_the_mode():
    model, tl, vl = _setup()
    train.fit(model, tl, vl, epochs=1, lr=0.05)
    model.train()
    loss, acc = train.evaluate(model, vl)
    assert model.training
    model.eval()
    with torch.no_grad():
        out = model(vl.x)  # BatchNorm with its running averages
    assert loss == pytest.approx(float(nn.functional.cross_entropy(out, vl.y)), rel=1e-5)
    assert acc == pytest.approx(float((out.argmax(1) == vl.y).double().mean()))
    assert 0 <= acc <= 1 < loss * 100
    assert not model.training  # restored to eval too
    sq = train.evaluate(model, vl, loss_fn=lambda o, t: (o**2).mean())
    assert sq[0] == pytest.approx(float((out**2).mean()), rel=1e-5)
    with pytest.raises(ValueError, match="at least one example"):
        train.evaluate(model, [])
    report = train.test_report(model, vl)
    assert report == f"Test Error: \n Accuracy: {100 * acc:.1f}%, Avg loss: {loss:.6f}"


def test_clipping_by_value_and_by_norm():
    g = torch.Generator().manual_seed(0)
    params = [nn.Parameter(torch.zeros(50)), nn.Parameter(torch.zeros(7, 3))]
    for p in params:
        p.grad = 10 * torch.randn(p.shape, generator=g)
    raw = torch.cat([p.grad.flatten() for p in params]).clone()
    norm = train.clip_gradients_(params, clip_value=1.5)
    assert norm == pytest.approx(float(raw.norm()), rel=1e-6)
    clipped = torch.cat([p.grad.flatten() for p in params])
    torch.testing.assert_close(clipped, raw.clamp(-1.5, 1.5))  # "if |g| > c then g = +-c"
    for p in params:
        p.grad = 10 * torch.randn(p.shape, generator=g)
    raw = torch.cat([p.grad.flatten() for p in params]).clone()
    train.clip_gradients_(params, clip_norm=2.0)
    clipped = torch.cat([p.grad.flatten() for p in params])
    assert float(clipped.norm()) == pytest.approx(2.0, rel=1e-5)
    assert torch.nn.functional.cosine_similarity(clipped, raw, dim=0) > 1 - 1e-6  # direction kept
    small = [nn.Parameter(torch.zeros(3))]
    small[0].grad = torch.tensor([0.1, -0.2, 0.2])
    assert train.clip_gradients_(small, clip_norm=1.0) == pytest.approx(0.3)
    assert torch.equal(small[0].grad, torch.tensor([0.1, -0.2, 0.2]))  # below the threshold: untouched
    huge = [nn.Parameter(torch.zeros(2))]
    huge[0].grad = torch.tensor([3e38, 3e38])
    assert train.clip_gradients_(huge) == pytest.approx(3e38 * math.sqrt(2))  # float64: no overflow
    assert train.clip_gradients_([nn.Parameter(torch.zeros(2))]) == 0.0  # no gradients
    with pytest.raises(ValueError, match="clip_norm"):
        train.clip_gradients_(params, clip_norm=0)


def test_fit_clips_and_records_the_norm_before_clipping():
    model, tl, vl = _setup()
    run = train.fit(model, tl, vl, steps=5, lr=0.05, callbacks=[train.Clip(norm=1e-3)])
    assert all(n > 1e-3 for n in run.grad_norm)  # recorded before clipping
    model2, tl2, vl2 = _setup()
    free = train.fit(model2, tl2, vl2, steps=5, lr=0.05)
    assert run.grad_norm[0] == free.grad_norm[0] and run.step_loss[1] != free.step_loss[1]


def test_after_backward_sees_the_raw_gradients_and_after_step_the_clipped_ones():
    class Norms:
        def __init__(self):
            self.raw, self.clipped = [], []

        def _norm(self, fit):
            return float(torch.linalg.vector_norm(torch.stack([p.grad.double().norm() for p in fit.model.parameters()])))

        def after_backward(self, fit):
            self.raw.append(self._norm(fit))

        def after_step(self, fit):
            self.clipped.append(self._norm(fit))

    model, tl, vl = _setup()
    norms = Norms()
    run = train.fit(model, tl, vl, steps=4, lr=0.05, callbacks=[train.Clip(norm=1e-3), norms])  # listed first, runs after
    assert norms.raw == pytest.approx(run.grad_norm, rel=1e-6) and min(norms.raw) > 1e-3
    assert max(norms.clipped) == pytest.approx(1e-3, rel=1e-4)


# ---- TensorBoard -------------------------------------------------------------------------------------------
def _scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def test_tensorboard_writes_events_and_a_second_run_replaces_the_first(tmp_path):
    log_dir = tmp_path / "runs" / "bn"
    model, tl, vl = _setup()
    train.fit(model, tl, vl, epochs=2, lr=0.05, callbacks=[train.TensorBoard(log_dir)])
    acc = _scalars(log_dir)
    assert set(acc.Tags()["scalars"]) == {"loss/train_step", "loss/train", "loss/validation", "accuracy/train",
                                          "accuracy/validation", "lr"}  # fmt: skip
    assert [e.step for e in acc.Scalars("loss/train_step")] == list(range(1, 21))
    assert [e.step for e in acc.Scalars("accuracy/validation")] == [10, 20]
    assert "weights/fc1.weight" in acc.Tags()["histograms"] and "gradients/head.weight" in acc.Tags()["histograms"]
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 1

    model, tl, vl = _setup()
    train.fit(model, tl, vl, epochs=1, lr=0.05, callbacks=[train.TensorBoard(log_dir, histograms=False)])
    files = list(log_dir.glob("events.out.tfevents.*"))
    assert len(files) == 1  # replaced, not appended
    acc = _scalars(log_dir)
    assert [e.step for e in acc.Scalars("loss/train_step")] == list(range(1, 11))
    assert acc.Tags()["histograms"] == []


def test_tensorboard_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    model, tl, vl = _setup()
    with pytest.raises(ValueError, match="holds files that are not TensorBoard logs"):
        train.fit(model, tl, vl, epochs=1, callbacks=[train.TensorBoard(tmp_path)])
    assert (tmp_path / "notes.txt").read_text() == "mine"
