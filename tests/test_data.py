"""lecture_utils.data: CIFAR-format round trip, streaming statistics, the tensor path, clear errors."""

import math
import pickle
import urllib.error

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision.datasets import CIFAR10

from lecture_utils import data

N_TRAIN, N_TEST, VAL = 500, 100, 100


@pytest.fixture
def synthetic_env(tmp_path, monkeypatch):
    """LECTURE_SYNTHETIC=1 with a small synthetic set under a temporary LECTURE_DATA_DIR."""
    monkeypatch.setenv("LECTURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LECTURE_SYNTHETIC", "1")
    monkeypatch.setattr(data, "SYNTHETIC_SIZE", (N_TRAIN, N_TEST))
    return tmp_path


def test_cifar_format_round_trip_through_torchvision(tmp_path):
    root = data.write_synthetic_cifar10(tmp_path, n_train=N_TRAIN, n_test=N_TEST, seed=3)
    folder = root / data.FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.MD5)
    with open(folder / "data_batch_2", "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    assert set(entry) == {"batch_label", "labels", "data", "filenames"}
    assert entry["data"].dtype == np.uint8 and entry["data"].shape == (N_TRAIN // 5, 3072)
    # torchvision's reader: the same pixels, labels and class names come back (CHW rows -> HWC images).
    train = data.CIFAR10Files(root, train=True, verify=False)
    test = data.CIFAR10Files(root, train=False, verify=False)
    assert train.data.shape == (N_TRAIN, 32, 32, 3) and len(test) == N_TEST
    assert train.classes == list(data.SYNTHETIC_CLASSES)
    world = data._synthetic_world(3)
    x2, y2 = data.synthetic_images(N_TRAIN // 5, 3, 2, world)
    got = train.data[N_TRAIN // 5 : 2 * N_TRAIN // 5]
    np.testing.assert_array_equal(got, x2.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert train.targets[N_TRAIN // 5 : 2 * N_TRAIN // 5] == y2.tolist()
    assert np.bincount(test.targets, minlength=10).tolist() == [N_TEST // 10] * 10  # balanced
    img, label = train[0]
    assert img.size == (32, 32) and 0 <= label < 10
    # The official checksums do not match, so plain torchvision refuses the files.
    with pytest.raises(RuntimeError):
        CIFAR10(root, train=True)


def test_synthetic_is_cached_and_regenerated_on_size_change(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_DATA_DIR", str(tmp_path))
    root = data.ensure_synthetic(N_TRAIN, N_TEST)
    assert root == tmp_path / "synthetic"  # never next to a real download
    stamp = (root / data.FOLDER / "test_batch").stat().st_mtime_ns
    assert data.ensure_synthetic(N_TRAIN, N_TEST) == root
    assert (root / data.FOLDER / "test_batch").stat().st_mtime_ns == stamp
    data.ensure_synthetic(N_TRAIN, 2 * N_TEST)
    assert len(data.CIFAR10Files(root, train=False, verify=False)) == 2 * N_TEST
    assert not list(root.glob(".synthetic-*"))  # no temporary folders left behind


def test_channel_stats_streaming_equals_direct_computation():
    g = torch.Generator().manual_seed(0)
    # A large offset and unequal batch sizes: a naive sum-of-squares formula would lose digits.
    batches = [1000.0 + torch.rand(b, 3, 8, 8, generator=g, dtype=torch.float64) * torch.tensor([1, 2, 3.0])
               .view(1, 3, 1, 1) for b in (7, 1, 64, 33)]  # fmt: skip
    mean, std = data.channel_stats(batches)
    whole = torch.cat(batches).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(mean, whole.mean(dim=1), rtol=0, atol=1e-12)
    torch.testing.assert_close(std, whole.std(dim=1, unbiased=False), rtol=1e-10, atol=0)
    # (images, labels) pairs, as a DataLoader yields them, work too.
    mean2, _ = data.channel_stats((b, None) for b in batches)
    torch.testing.assert_close(mean2, mean)


def test_uint8_histogram_stats_equal_streaming_stats():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(300, 8, 8, 3), dtype=np.uint8)
    m1, s1 = data.uint8_channel_stats(images, chunk=70)
    m2, s2 = data.channel_stats(data._uint8_batches(images, chunk=64))
    torch.testing.assert_close(m1, m2, rtol=0, atol=1e-12)
    torch.testing.assert_close(s1, s2, rtol=0, atol=1e-12)


@pytest.mark.parametrize("drop_last", [False, True])
def test_tensor_loader_has_dataloader_batch_semantics(drop_last):
    x, y = torch.arange(103.0).view(-1, 1), torch.arange(103)
    ours = data.TensorLoader(x, y, batch_size=10, shuffle=False, drop_last=drop_last)
    theirs = DataLoader(TensorDataset(x, y), batch_size=10, shuffle=False, drop_last=drop_last)
    assert len(ours) == len(theirs) == (10 if drop_last else 11)
    for (a, b), (c, d) in zip(ours, theirs, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)
    sizes = [len(b) for _, b in ours]
    assert sizes[-1] == (10 if drop_last else 3)


def test_tensor_loader_shuffles_with_a_seed():
    x, y = torch.arange(50.0), torch.arange(50)
    a = data.TensorLoader(x, y, batch_size=8, shuffle=True, seed=1)
    epoch1 = torch.cat([yb for _, yb in a])
    epoch2 = torch.cat([yb for _, yb in a])
    assert sorted(epoch1.tolist()) == list(range(50))  # every example once per epoch
    assert not torch.equal(epoch1, epoch2)  # a new order each epoch
    assert not torch.equal(epoch1, torch.arange(50))
    b = data.TensorLoader(x, y, batch_size=8, shuffle=True, seed=1)
    assert torch.equal(torch.cat([yb for _, yb in b]), epoch1)  # same seed, same order
    for xb, yb in a:
        assert torch.equal(xb.long(), yb)  # x and y stay paired


def test_tensor_path_equals_torchvision_pipeline_and_is_normalized(synthetic_env):
    x, y = data.load_split_tensors("val", device="cpu", val_size=VAL)
    ds = data.cifar10("val", val_size=VAL)  # ToTensor + Normalize, one image at a time
    assert len(ds) == len(x) == VAL
    xs, ys = next(iter(DataLoader(ds, batch_size=VAL, shuffle=False)))
    torch.testing.assert_close(x, xs, rtol=0, atol=1e-5)
    assert torch.equal(y, ys)
    train_idx, val_idx = data.split_indices(N_TRAIN, VAL, seed=0)
    assert not set(train_idx) & set(val_idx) and len(train_idx) + len(val_idx) == N_TRAIN
    # Normalized with the statistics of all training images: mean 0, std 1 per channel over them.
    xt, _ = data.load_split_tensors("train", device="cpu", val_size=VAL)
    whole = torch.cat([xt, x]).to(torch.float64)
    assert whole.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (whole.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-4
    assert len(data.load_split_tensors("test", device="cpu", limit=30)[0]) == 30
    assert data.class_names() == list(data.SYNTHETIC_CLASSES)
    # Synthetic data are not CIFAR-10: the published values are not used.
    assert data.normalization()[0] != data.CIFAR10_MEAN


def test_bad_arguments_name_the_choices(synthetic_env):
    with pytest.raises(ValueError, match="train, val, test"):
        data.load_split_tensors("validation")
    with pytest.raises(ValueError, match="batch_size"):
        data.TensorLoader(torch.zeros(3), torch.zeros(3), batch_size=0)


def test_missing_data_and_no_network_gives_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("LECTURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LECTURE_SYNTHETIC", "0")

    def offline(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(CIFAR10, "download", offline)
    with pytest.raises(data.DataUnavailableError) as info:
        data.cifar10("train")
    msg = str(info.value)
    assert str(tmp_path / data.FOLDER) in msg and "LECTURE_SYNTHETIC=1" in msg
    assert "cifar-10-python.tar.gz" in msg and "URLError" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert info.value._render_traceback_()[0].startswith("DataUnavailableError: CIFAR-10 is not available")


def test_files_that_differ_need_verify_off_and_then_warn(tmp_path, monkeypatch):
    data.write_synthetic_cifar10(tmp_path, n_train=N_TRAIN, n_test=N_TEST)  # sits where CIFAR-10 would
    monkeypatch.setenv("LECTURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LECTURE_SYNTHETIC", "0")
    assert not data.is_official(tmp_path)
    with pytest.raises(data.DataUnavailableError, match="LECTURE_VERIFY_DATA=0"):
        data.cifar10_dataset(train=False)
    monkeypatch.setenv("LECTURE_VERIFY_DATA", "0")
    with pytest.warns(UserWarning, match="md5"):
        ds = data.cifar10_dataset(train=False)
    assert len(ds) == N_TEST
    with pytest.warns(UserWarning):
        mean, std = data.normalization()
    assert all(0 < m < 1 for m in mean) and all(0 < s < 1 for s in std)
    assert not math.isclose(mean[0], data.CIFAR10_MEAN[0], abs_tol=1e-4)
