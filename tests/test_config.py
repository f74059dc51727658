"""lecture_utils.config: flags, the data folder, the device (read at every call), seeds and streams, the banner."""

from pathlib import Path

import numpy as np
import pytest
import torch

from lecture_utils import config


@pytest.mark.parametrize(
    "raw, expected",
    [("1", True), ("true", True), ("YES", True), (" on ", True), ("0", False), ("", False), ("off", False),
     ("False", False)],
)  # fmt: skip
def test_flags_parse(clean_env, raw, expected):
    clean_env.setenv("LECTURE_QUICK", raw)
    assert config.quick() is expected
    assert config.pick("q", "full") == ("q" if expected else "full")


@pytest.mark.parametrize("name, fn", [("LECTURE_QUICK", config.quick), ("LECTURE_SYNTHETIC", config.synthetic),
                                      ("LECTURE_VERIFY_DATA", config.verify_data),
                                      ("LECTURE_TENSORBOARD", config.tensorboard)])  # fmt: skip
def test_unknown_flag_value_raises_and_says_what_to_do(clean_env, name, fn):
    clean_env.setenv(name, "maybe")
    with pytest.raises(ValueError, match=f"{name}='maybe' is not understood: use {name}=1 .* {name}=0"):
        fn()


def test_defaults_when_unset(clean_env):
    assert config.quick() is False and config.synthetic() is False
    assert config.verify_data() is True  # verification is on unless switched off
    clean_env.setenv("LECTURE_VERIFY_DATA", "0")
    assert config.verify_data() is False


def test_pick_follows_the_environment_at_each_call(clean_env):
    assert config.pick(50, 2000) == 2000
    clean_env.setenv("LECTURE_QUICK", "1")
    assert config.pick(50, 2000) == 50


def test_data_dir(clean_env, tmp_path):
    clean_env.setenv("LECTURE_DATA_DIR", str(tmp_path / "x" / ".." / "y"))
    assert config.data_dir() == (tmp_path / "y").resolve()
    clean_env.delenv("LECTURE_DATA_DIR")
    assert config.REPO_ROOT == Path(__file__).resolve().parent.parent
    assert config.data_dir() == config.REPO_ROOT / "data"


def test_device_is_read_at_every_call(clean_env):
    clean_env.setenv("LECTURE_DEVICE", "cpu")
    assert config.device() == torch.device("cpu")
    clean_env.setenv("LECTURE_DEVICE", "cuda:1")
    assert config.device() == torch.device("cuda", 1)  # no error: only constructing the device
    clean_env.setenv("LECTURE_DEVICE", "meta")
    with pytest.raises(ValueError, match="LECTURE_DEVICE='meta' is not a device: use one of cpu, cuda, mps"):
        config.device()
    clean_env.setenv("LECTURE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="cpu, cuda, mps"):
        config.device()
    clean_env.delenv("LECTURE_DEVICE")
    best = config.device().type  # unset: the best available
    assert best == "cuda" if torch.cuda.is_available() else best in ("mps", "cpu")


def test_seed_everything_is_reproducible():
    g = config.seed_everything(3)
    a, ga, na = torch.randn(5), torch.randn(5, generator=g), np.random.rand(3)
    g = config.seed_everything(3)
    assert torch.equal(a, torch.randn(5)) and torch.equal(ga, torch.randn(5, generator=g))
    assert np.array_equal(na, np.random.rand(3))
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(ValueError, match="non-negative integer"):
            config.seed_everything(bad)


def test_rng_streams_are_reproducible_and_independent():
    n = 100_000
    a = torch.randn(n, generator=config.rng(0, "weights"), dtype=torch.float64)
    b = torch.randn(n, generator=config.rng(0, "inputs"), dtype=torch.float64)
    assert torch.equal(a, torch.randn(n, generator=config.rng(0, "weights"), dtype=torch.float64))
    # Independent: the correlation of 1e5 pairs is ~N(0, 1/n), |corr| < 5 / sqrt(n) = 0.016.
    corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert abs(corr) < 5 / n**0.5
    # ... and not the same stream shifted: no lag of one against the other is correlated either.
    for lag in (1, 2, 7):
        assert abs(float(torch.corrcoef(torch.stack([a[lag:], b[:-lag]]))[0, 1])) < 5 / n**0.5
    # Two generators seeded with the SAME number replay one stream: correlation 1 (what rng avoids).
    c = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    d = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert float(torch.corrcoef(torch.stack([c, d]))[0, 1]) == pytest.approx(1.0)
    # Other seeds give other streams.
    assert not torch.equal(a[:10], torch.randn(10, generator=config.rng(1, "weights"), dtype=torch.float64))
    with pytest.raises(ValueError, match="non-negative integer"):
        config.rng(-1, "weights")


def test_small_layer_threads(clean_env):
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert config.small_layer_threads("meta") == 2  # not a CPU: left alone
        assert torch.get_num_threads() == 2
        assert config.small_layer_threads("cpu") == 1 == torch.get_num_threads()
        torch.set_num_threads(2)
        clean_env.setenv("LECTURE_DEVICE", "cpu")
        assert config.small_layer_threads() == 1  # default: config.device()
        torch.set_num_threads(2)
        assert config.one_thread() == 2 and torch.get_num_threads() == 1  # returns the count before
        assert config.one_thread() == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_banner_lines(clean_env):
    clean_env.setenv("LECTURE_QUICK", "1")
    clean_env.setenv("LECTURE_SYNTHETIC", "1")
    lines = config.banner("Data: here.", "extra line").splitlines()
    assert lines[0].startswith("QUICK MODE (LECTURE_QUICK=1)")
    assert lines[1].startswith("SYNTHETIC DATA (LECTURE_SYNTHETIC=1)") and "NOT CIFAR-10's" in lines[1]
    assert lines[2:] == ["Data: here.", "extra line", "Device: cpu."]
    clean_env.setenv("LECTURE_QUICK", "0")
    clean_env.setenv("LECTURE_SYNTHETIC", "0")
    assert config.banner().splitlines() == ["Full mode.", "Device: cpu."]


def test_show_banner_frames_the_text(clean_env, capsys):
    config.show_banner("x")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == out[-1] == "=" * max(len(line) for line in out[1:-1])
    assert out[1:-1] == ["Full mode.", "x", "Device: cpu."]
