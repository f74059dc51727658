"""lecture_utils.bench: the flush-denormal setting is restored, the timings are numbers, both pipelines run on the
same small synthetic set and the command's last line is the promised JSON (no speed is asserted: machines differ)."""

import json

import pytest
import torch

from lecture_utils import bench, data, models


def _flushing() -> bool:
    """Whether the CPU currently flushes subnormals (float64 1e-323 is a subnormal: flushed, it reads as 0)."""
    return torch.tensor([1e-323], dtype=torch.float64).item() == 0.0


@pytest.fixture
def flush_supported():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals (needs SSE3)")
    yield
    torch.set_flush_denormal(False)


def _tiny():
    torch.manual_seed(0)
    model = models.seed_model(hidden=8, in_features=48, classes=4)
    return model, torch.randn(16, 3, 4, 4), torch.randint(0, 4, (16,))


def test_time_step_restores_flush_denormal_off(flush_supported):
    model, x, y = _tiny()
    assert not _flushing()
    seconds = bench.time_step(model, x, y, repeats=3, flush_denormal=True)
    assert seconds > 0 and not _flushing()
    assert all(p.grad is None for p in model.parameters())  # gradients cleared afterwards


def test_time_step_restores_flush_denormal_on(flush_supported):
    model, x, y = _tiny()
    torch.set_flush_denormal(True)
    assert _flushing()
    bench.time_step(model, x, y, repeats=1, flush_denormal=False)
    assert _flushing()


def test_time_step_and_elementwise_return_positive_seconds(flush_supported):
    model, x, y = _tiny()
    assert bench.time_step(model, x, y, repeats=1) > 0
    assert bench.time_elementwise(torch.ones(1000), repeats=3) > 0
    subnormal = torch.full((1000,), 1e-40)  # float32 subnormals (smallest normal 1.2e-38)
    assert bench.time_elementwise(subnormal, repeats=3) > 0
    with pytest.raises(ValueError, match="repeats must be a positive integer"):
        bench.time_step(model, x, y, repeats=0)


def test_compare_on_a_small_synthetic_set(cifar_files):
    result = bench.compare(device="cpu", batch_size=32, workers=0, limit=96)
    assert set(result) == {"dataloader_img_s", "tensor_img_s", "speedup"}
    assert result["dataloader_img_s"] > 0 and result["tensor_img_s"] > 0
    assert result["speedup"] == pytest.approx(result["tensor_img_s"] / result["dataloader_img_s"], abs=0.1)


def test_interleaved_alternates_the_pipelines_on_the_same_images(cifar_files, monkeypatch):
    calls = []
    real = bench._train_steps

    def recording(model, opt, batches, device, n=None):
        calls.append(id(model))
        return real(model, opt, batches, device, n)

    monkeypatch.setattr(bench, "_train_steps", recording)
    result = bench.interleaved(device="cpu", batch_size=32, workers=0, limit=96, chunk=1)
    assert set(result) == {"images", "dataloader_img_s", "tensor_img_s", "speedup", "dataloader_ms_per_batch",
                           "tensor_ms_per_batch", "tensor_decode_s"}  # fmt: skip
    assert result["images"] == 96 and result["dataloader_img_s"] > 0 and result["tensor_img_s"] > 0
    assert result["speedup"] == pytest.approx(result["tensor_img_s"] / result["dataloader_img_s"], abs=0.01)
    # 3 full batches each: images per second and milliseconds per batch are the same measurement
    assert result["dataloader_img_s"] == pytest.approx(32_000 / result["dataloader_ms_per_batch"], rel=0.01)
    # the one-off decode is part of the tensor side's clock: at most its 3 batches' time, and not nothing
    assert 0 < result["tensor_decode_s"] <= 3 * result["tensor_ms_per_batch"] / 1000 + 1e-4
    assert result["tensor_decode_s"] <= 96 / result["tensor_img_s"] + 1e-4
    # one batch of each in turn (3 batches each, then one empty turn each that ends the epoch): a b a b a b a b
    first, second = calls[0], calls[1]
    assert first != second and calls == [first, second] * 4
    with pytest.raises(ValueError, match="chunk must be a positive number of batches"):
        bench.interleaved(device="cpu", limit=96, chunk=0)


def test_main_prints_both_rates_and_json_last(synthetic_mode, capsys):
    assert bench.main(["--workers", "0", "--limit", "64", "--batch-size", "32"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert set(result) == {"dataloader_img_s", "tensor_img_s", "speedup"}
    assert lines[0].startswith("Full mode.") and any(line.startswith("SYNTHETIC DATA") for line in lines)
    assert any("DataLoader" in line for line in lines) and any("in-memory" in line for line in lines)


def test_missing_data_is_one_message_not_a_traceback(tmp_path, clean_env, capsys):
    clean_env.setenv("LECTURE_DATA_DIR", str(tmp_path))
    clean_env.setattr(data.torchvision().datasets.CIFAR10, "download", lambda self: (_ for _ in ()).throw(OSError("offline")))
    assert bench.main(["--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 is not available" in err and "LECTURE_SYNTHETIC=1" in err and "Traceback" not in err
