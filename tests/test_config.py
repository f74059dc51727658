"""Settings read from the environment: flags, data folder, device, seeding, the banner."""

from pathlib import Path

import pytest
import torch

from lecture_utils import config


@pytest.mark.parametrize("raw,expected", [("1", True), ("true", True), ("0", False), ("", False), ("off", False)])
def test_quick_flag(monkeypatch, raw, expected):
    monkeypatch.setenv("LECTURE_QUICK", raw)
    assert config.quick() is expected
    assert config.pick("q", "full") == ("q" if expected else "full")


def test_unknown_flag_value_says_what_to_do(monkeypatch):
    monkeypatch.setenv("LECTURE_SYNTHETIC", "maybe")
    with pytest.raises(ValueError, match="LECTURE_SYNTHETIC=1"):
        config.synthetic()


def test_verify_defaults_on(monkeypatch):
    monkeypatch.delenv("LECTURE_VERIFY_DATA", raising=False)
    assert config.verify_data() is True
    monkeypatch.setenv("LECTURE_VERIFY_DATA", "0")
    assert config.verify_data() is False


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("LECTURE_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()
    monkeypatch.delenv("LECTURE_DATA_DIR")
    assert config.data_dir() == Path(__file__).resolve().parent.parent / "data"


def test_device(monkeypatch):
    monkeypatch.setenv("LECTURE_DEVICE", "cpu")
    assert config.get_device() == torch.device("cpu")
    monkeypatch.setenv("LECTURE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="cpu, cuda, mps"):
        config.get_device()


def test_seed_everything_is_reproducible():
    g = config.seed_everything(3)
    a, ga = torch.randn(5), torch.randn(5, generator=g)
    g = config.seed_everything(3)
    assert torch.equal(a, torch.randn(5)) and torch.equal(ga, torch.randn(5, generator=g))
    with pytest.raises(ValueError, match="non-negative"):
        config.seed_everything(-1)


def test_banner_names_the_modes(monkeypatch):
    monkeypatch.setenv("LECTURE_QUICK", "1")
    monkeypatch.setenv("LECTURE_SYNTHETIC", "1")
    text = config.banner()
    assert "QUICK MODE" in text and "NOT CIFAR-10's" in text
    monkeypatch.setenv("LECTURE_QUICK", "0")
    monkeypatch.setenv("LECTURE_SYNTHETIC", "0")
    assert "Full mode" in config.banner()
