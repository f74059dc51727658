"""lecture_utils.train: atomic checkpoints, bit-identical resume, divergence error, clipping."""

import math

import pytest
import torch
from torch import nn

from lecture_utils import data, models, train


def _problem(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 4, 4, generator=g)
    y = (x[:, 0].mean(dim=(1, 2)) > 0).long() + 2 * (x[:, 1].mean(dim=(1, 2)) > 0).long()
    return x, y


def _setup(seed=0):
    torch.manual_seed(seed)
    model = models.seed_model(batchnorm=True, hidden=8, in_features=48, classes=4)
    x, y = _problem()
    return model, data.TensorLoader(x, y, batch_size=10, shuffle=True, seed=1), data.TensorLoader(x, y, 32, False)


def test_resume_from_epoch_k_is_bit_identical(tmp_path):
    model, tl, vl = _setup()
    full = train.train(model, tl, vl, epochs=3, lr=0.05, progress=False)
    ref = {k: v.clone() for k, v in model.state_dict().items()}

    ckpt = tmp_path / "run.pt"
    model1, tl1, vl1 = _setup()
    train.train(model1, tl1, vl1, epochs=1, lr=0.05, progress=False, checkpoint=ckpt)
    torch.manual_seed(123)  # the interrupted process is gone; a new one starts with other RNG states
    model2, tl2, vl2 = _setup(seed=7)
    resumed = train.train(model2, tl2, vl2, epochs=3, lr=0.05, progress=False, checkpoint=ckpt, resume=True)
    for k, v in model2.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert resumed["val_loss"] == full["val_loss"] and resumed["step_loss"] == full["step_loss"]
    ck = torch.load(ckpt, weights_only=True)
    assert ck["epoch"] == 3 and set(ck) >= {"model", "optimizer", "scheduler", "rng", "history"}


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model, tl, vl = _setup()
    path = tmp_path / "c.pt"
    train.save_checkpoint(path, model, epoch=1)
    before = path.read_bytes()
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh:  # half the bytes on disk, then the process "dies"
            fh.truncate(len(before) // 2)
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        train.save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left over
    monkeypatch.undo()
    assert train.read_checkpoint(path)["epoch"] == 1


def test_bad_checkpoints_give_clear_errors_and_change_nothing(tmp_path):
    model, tl, vl = _setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(train.CheckpointError, match="no checkpoint at"):
        train.train(model, tl, vl, epochs=1, checkpoint=tmp_path / "none.pt", resume=True, progress=False)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(train.CheckpointError, match="not a readable checkpoint"):
        train.load_checkpoint(tmp_path / "bad.pt", model)
    other = models.seed_model(batchnorm=False, hidden=8, in_features=48, classes=4)
    train.save_checkpoint(tmp_path / "other.pt", other)
    with pytest.raises(train.CheckpointError, match="different model"):
        train.load_checkpoint(tmp_path / "other.pt", model)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_divergence_names_the_step_and_the_layer():
    model, tl, vl = _setup()

    def poison(step, m):  # after step 3 the first Linear's weights are infinite
        if step == 3:
            with torch.no_grad():
                m[1].weight[0, 0] = math.inf

    with pytest.raises(train.DivergenceError) as info:
        train.train(model, tl, vl, epochs=2, progress=False, on_step=poison)
    err = info.value
    assert err.step == 4 and err.kind == "activation" and err.layer == "1"
    assert "step 4" in str(err) and "layer '1' (Linear)" in str(err)


def test_exploding_gradient_is_named():
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 4))
    x, y = _problem()
    with torch.no_grad():
        model[1].weight.fill_(3e37)  # finite outputs ... whose gradient overflows float32
    with pytest.raises(train.DivergenceError, match="step 1") as info:
        train.train(model, data.TensorLoader(x, y, 10), epochs=1, progress=False)
    assert info.value.layer is not None


def test_clipping_by_value_and_by_norm():
    g = torch.Generator().manual_seed(0)
    params = [nn.Parameter(torch.zeros(50)), nn.Parameter(torch.zeros(7, 3))]
    for p in params:
        p.grad = 10 * torch.randn(p.shape, generator=g)
    raw = torch.cat([p.grad.flatten() for p in params]).clone()
    norm = train.clip_gradients_(params, clip_value=1.5)
    assert norm == pytest.approx(float(raw.norm()), rel=1e-6)
    clipped = torch.cat([p.grad.flatten() for p in params])
    assert clipped.abs().max() <= 1.5
    torch.testing.assert_close(clipped, raw.clamp(-1.5, 1.5))  # "if |g| > max then g = +-max"
    for p in params:
        p.grad = 10 * torch.randn(p.shape, generator=g)
    raw = torch.cat([p.grad.flatten() for p in params]).clone()
    train.clip_gradients_(params, clip_norm=2.0)
    clipped = torch.cat([p.grad.flatten() for p in params])
    assert float(clipped.norm()) <= 2.0 + 1e-5
    assert torch.nn.functional.cosine_similarity(clipped, raw, dim=0) > 1 - 1e-6  # direction kept
    with pytest.raises(ValueError, match="clip_norm"):
        train.clip_gradients_(params, clip_norm=0)


def test_history_tensorboard_and_test_report(tmp_path):
    model, tl, vl = _setup()
    hist = train.train(model, tl, vl, epochs=2, lr=0.05, progress=False, log_dir=tmp_path / "tb")
    assert hist["epoch"] == [1, 2] and len(hist["step_loss"]) == 2 * len(tl)
    assert hist["val_acc"][-1] > 0.5  # learns the 4-class toy problem
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    report = train.test_report(model, vl)
    assert report.startswith("Test Error: \n Accuracy: ") and report.endswith(f"{train.evaluate(model, vl)[0]:.6f}")


def test_input_percentiles_recorder():
    model, tl, vl = _setup()
    rec = train.PercentileRecorder(model[3], tl.x[:64], unit=2, every=5)
    train.train(model, tl, epochs=1, progress=False, on_step=rec)
    assert rec.steps == [1, 5, 10] and all(a <= b <= c for a, b, c in rec.values)
    assert model.training  # the recorder puts the model back in training mode
