"""lecture_utils.checkpoints: what a checkpoint holds, atomic writes that survive SIGKILL mid-write, and loads
that refuse (CheckpointError, nothing changed) what does not fit."""

import builtins
import contextlib
import os
import pickle
import random
import signal
import time

import numpy as np
import pytest
import torch
from torch import nn

from lecture_utils import checkpoints, data, models
from lecture_utils.checkpoints import CheckpointError


def _model(seed=0, activation="relu"):
    torch.manual_seed(seed)
    return models.deep_mlp(2, 8, in_features=6, out_features=3, activation=activation)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _sgd_after_one_step(model):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(4, 6)).sum().backward()
    opt.step()
    return opt


def test_save_and_load_round_trip(tmp_path):
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    model(torch.ones(4, 6)).sum().backward()
    opt.step()
    sched.step()
    loader = data.TensorLoader(torch.zeros(10, 6), torch.zeros(10), batch_size=3, seed=5)
    history = {"step_loss": [1.0, 0.5], "evals": [{"step": 2}]}
    path = checkpoints.save(tmp_path / "sub" / "c.pt", model=model, optimizer=opt, scheduler=sched, epoch=3,
                            step=7, history=history, loaders=[loader])  # fmt: skip
    assert path == tmp_path / "sub" / "c.pt" and sorted(p.name for p in path.parent.iterdir()) == ["c.pt"]
    raw = torch.load(path, weights_only=True)  # plain data: readable without trusting the file
    assert raw["format"] == checkpoints.FORMAT and raw["architecture"] == checkpoints.architecture(model)
    assert ["fc1", "Linear"] in raw["architecture"] and ["act1", "ReLU"] in raw["architecture"]

    other = _model(seed=1)
    opt2 = torch.optim.SGD(other.parameters(), lr=0.3, momentum=0.9)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.5)
    loader2 = data.TensorLoader(torch.zeros(10, 6), torch.zeros(10), batch_size=3, seed=99)
    state = checkpoints.load(path, other, opt2, sched2, loaders=[loader2])
    assert (state["epoch"], state["step"], state["history"]) == (3, 7, history)
    assert _same(other.state_dict(), model.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.05)  # the scheduler had halved it
    buf = opt.state[next(iter(model.parameters()))]["momentum_buffer"]
    assert torch.equal(opt2.state[next(iter(other.parameters()))]["momentum_buffer"], buf)
    assert sched2.last_epoch == 1
    assert torch.equal(loader2.generator.get_state(), loader.generator.get_state())


def test_every_random_state_is_restored(tmp_path):
    loader = data.TensorLoader(torch.zeros(10), torch.zeros(10), seed=3)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    checkpoints.save(tmp_path / "c.pt", model=_model(), loaders=[loader])
    expected = (random.random(), np.random.rand(), torch.rand(1), torch.randperm(10, generator=loader.generator))
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    next(iter(loader))  # the loader's generator moves on
    checkpoints.load(tmp_path / "c.pt", _model(), loaders=[loader], restore_rng=False)
    assert random.random() != expected[0]  # restore_rng=False leaves them
    checkpoints.load(tmp_path / "c.pt", _model(), loaders=[loader])
    got = (random.random(), np.random.rand(), torch.rand(1), torch.randperm(10, generator=loader.generator))
    assert got[0] == expected[0] and got[1] == expected[1]
    assert torch.equal(got[2], expected[2]) and torch.equal(got[3], expected[3])


# ---- crash safety ------------------------------------------------------------------------------------
_WRITER = """
import torch
from torch import nn
from lecture_utils import checkpoints
model = nn.Sequential(nn.Linear(1024, 2048, bias=False), nn.Linear(2048, 1024, bias=False))  # 16 MB of weights
with torch.no_grad():
    for p in model.parameters():
        p.fill_({round_})
while True:  # saves the same checkpoint again and again until it is killed
    checkpoints.save({path!r}, model=model, epoch={round_})
"""


def test_sigkill_mid_write_keeps_the_previous_checkpoint(tmp_path, forker):
    """A writer process is killed with SIGKILL (no cleanup runs) while its temporary file is being written, three
    times: the checkpoint on disk is always a complete one, loadable, and after the next successful save no
    temporary file is left."""
    path = tmp_path / "big.pt"
    model = nn.Sequential(nn.Linear(1024, 2048, bias=False), nn.Linear(2048, 1024, bias=False))
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(-1.0)
    checkpoints.save(path, model=model, epoch=0)
    completed = {0}
    for round_ in (1, 2, 3):
        pid = forker.start(_WRITER.format(round_=round_, path=str(path)))
        tmp = tmp_path / f".big.pt.{pid}.tmp"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(FileNotFoundError):  # renamed into place between two looks
                    if tmp.stat().st_size > 0:
                        break
                time.sleep(0.001)
        finally:
            status = forker.kill_and_reap()  # mid-write: its temporary file holds part of a checkpoint
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert tmp.exists(), "the writer was not killed while writing"
        state = checkpoints.read(path)  # the previous (or a completed) checkpoint, never a torn one
        assert state["epoch"] in completed | {round_}
        weights = state["model"]["0.weight"]
        assert torch.equal(weights, torch.full_like(weights, -1.0 if state["epoch"] == 0 else state["epoch"]))
        completed.add(state["epoch"])
        checkpoints.load(path, model)
    assert [p.name for p in tmp_path.glob(".big.pt.*.tmp")] == [tmp.name]  # each writer removed its predecessor's
    checkpoints.save(path, model=model, epoch=4)  # the next successful save removes the dead writers' files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pt"]
    assert checkpoints.read(path)["epoch"] == 4


def test_temporary_file_of_a_live_writer_is_kept(tmp_path):
    live = tmp_path / ".c.pt.1.tmp"  # pid 1 is alive (init)
    dead_pid = 2**22 + 12345  # above pid_max on Linux by default: no such process
    dead = tmp_path / f".c.pt.{dead_pid}.tmp"
    live.write_bytes(b"x")
    dead.write_bytes(b"x")
    checkpoints.save(tmp_path / "c.pt", model=_model())
    assert live.exists() and not dead.exists()


def test_failed_write_reports_and_keeps_the_previous_file(tmp_path, monkeypatch):
    path = checkpoints.save(tmp_path / "c.pt", model=_model(), epoch=1)

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)  # where lecture_utils.atomic flushes the file
    with pytest.raises(CheckpointError, match="writing .* failed .*No space left on device.*intact"):
        checkpoints.save(path, model=_model(), epoch=2)
    monkeypatch.undo()
    assert checkpoints.read(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


# ---- refusing what does not fit, changing nothing ----------------------------------------------------------
def test_missing_empty_truncated_and_foreign_files(tmp_path):
    model = _model()
    before = _state(model)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        checkpoints.load(tmp_path / "none.pt", model)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        checkpoints.load(tmp_path / "empty.pt", model)
    good = checkpoints.save(tmp_path / "good.pt", model=_model(seed=1)).read_bytes()
    (tmp_path / "half.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        checkpoints.load(tmp_path / "half.pt", model)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        checkpoints.load(tmp_path / "text.pt", model)
    torch.save(model.state_dict(), tmp_path / "plain.pt")  # a bare state dict, not ours
    with pytest.raises(CheckpointError, match="was not written by lecture_utils.checkpoints.save"):
        checkpoints.load(tmp_path / "plain.pt", model)
    assert _same(model.state_dict(), before)


class _CreatesAFile:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def test_a_checkpoint_cannot_run_code(tmp_path):
    target = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format": checkpoints.FORMAT, "x": _CreatesAFile(target)}, f, protocol=2)
    with pytest.raises(CheckpointError, match="is not a readable checkpoint"):
        checkpoints.read(tmp_path / "evil.pt")
    assert not target.exists()


def test_sgd_checkpoint_into_adam_is_refused_and_nothing_changes(tmp_path):
    src = _model(seed=1)
    checkpoints.save(tmp_path / "sgd.pt", model=src, optimizer=_sgd_after_one_step(src))
    model = _model()
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(2, 6)).sum().backward()
    adam.step()
    before, opt_before = _state(model), adam.state_dict()
    with pytest.raises(CheckpointError, match="a SGD optimizer in the file, a Adam given. Nothing was loaded"):
        checkpoints.load(tmp_path / "sgd.pt", model, adam)
    assert _same(model.state_dict(), before)
    after = adam.state_dict()
    assert after["param_groups"] == opt_before["param_groups"]
    assert all(torch.equal(after["state"][i]["exp_avg"], opt_before["state"][i]["exp_avg"]) for i in after["state"])


def test_another_architecture_with_the_same_tensors_is_refused(tmp_path):
    """ReLU and Tanh MLPs have the same keys and shapes: load_state_dict would accept one for the other."""
    checkpoints.save(tmp_path / "relu.pt", model=_model(seed=1))
    tanh = _model(activation="tanh")
    before = _state(tanh)
    assert {k: v.shape for k, v in tanh.state_dict().items()} == {
        k: v.shape for k, v in _model(seed=1).state_dict().items()}  # fmt: skip
    with pytest.raises(CheckpointError, match="another architecture .*act1: ReLU in the file, Tanh in the model"):
        checkpoints.load(tmp_path / "relu.pt", tanh)
    assert _same(tanh.state_dict(), before)


def test_other_shapes_scheduler_and_loaders_are_refused(tmp_path):
    checkpoints.save(tmp_path / "c.pt", model=_model(seed=1))
    torch.manual_seed(0)
    wider = models.deep_mlp(2, 9, in_features=6, out_features=3)
    with pytest.raises(CheckpointError, match=r"other tensors \(fc1.weight: \(8, 6\) vs \(9, 6\)"):
        checkpoints.load(tmp_path / "c.pt", wider)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(CheckpointError, match="no optimizer state in the file"):
        checkpoints.load(tmp_path / "c.pt", model, opt)
    loader = data.TensorLoader(torch.zeros(4), torch.zeros(4))
    with pytest.raises(CheckpointError, match="0 loaders' random states in the file, 1 given"):
        checkpoints.load(tmp_path / "c.pt", model, loaders=[loader])
    checkpoints.save(tmp_path / "s.pt", model=model, optimizer=opt,
                     scheduler=torch.optim.lr_scheduler.StepLR(opt, 1))  # fmt: skip
    with pytest.raises(CheckpointError, match="a StepLR scheduler in the file, a ExponentialLR given"):
        checkpoints.load(tmp_path / "s.pt", model, opt, torch.optim.lr_scheduler.ExponentialLR(opt, 0.9))


def test_check_writable(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CheckpointError, match="cannot write a checkpoint to .*choose a folder you can write to"):
        checkpoints.check_writable(blocker / "ckpt.pt")  # its parent is a file: fails, even for root
    with pytest.raises(CheckpointError, match="is a folder: give a file name"):
        checkpoints.check_writable(tmp_path)
    assert checkpoints.check_writable(tmp_path / "new" / "c.pt") == tmp_path / "new" / "c.pt"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == []  # the probe file is gone
    assert CheckpointError("x")._render_traceback_() == ["CheckpointError: x"]
