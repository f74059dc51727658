"""lecture_utils.data on a small synthetic set: the tensor path equals torchvision's, the split, streaming
statistics, the TensorLoader, the banner line, and every fault reproduced for real (truncated, malformed,
malicious and unverified files, an unwritable folder, no data and no network)."""

import builtins
import hashlib
import os
import pickle
import urllib.error

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from torchvision import transforms
from torchvision.datasets import CIFAR10

from lecture_utils import config, data, synthetic
from tests.conftest import N_TEST, N_TRAIN, N_VAL


# ---- the two ways to the same batches ----------------------------------------------------------------------
def test_tensor_path_equals_torchvision_pipeline(cifar_files):
    x, y = data.load_split_tensors("val", device="cpu")
    ds = data.cifar10("val")  # ToTensor + Normalize, one PIL image at a time
    assert len(ds) == len(x) == N_VAL and x.shape == (N_VAL, 3, 32, 32) and x.dtype == torch.float32
    xs, ys = next(iter(DataLoader(ds, batch_size=N_VAL, shuffle=False)))
    torch.testing.assert_close(x, xs, rtol=0, atol=1e-5)
    assert torch.equal(y, ys) and y.dtype == torch.int64
    xt, yt = data.load_split_tensors("train", device="cpu", limit=50)
    xs, ys = next(iter(DataLoader(data.cifar10("train"), batch_size=50, shuffle=False)))
    torch.testing.assert_close(xt, xs, rtol=0, atol=1e-5)
    assert torch.equal(yt, ys)
    xe, ye = data.load_split_tensors("test", device="cpu")
    assert len(xe) == len(data.cifar10("test")) == N_TEST
    image, label = data.cifar10("test", transform=None)[3]  # torchvision's __getitem__: a PIL image and its label
    assert image.size == (32, 32) and image.mode == "RGB" and label == int(ye[3])
    assert isinstance(data.cifar10_dataset(train=False), CIFAR10)


def test_splits_are_disjoint_seeded_and_cover_the_training_files(cifar_files):
    train_idx, val_idx = data.split_indices(N_TRAIN, N_VAL, seed=0)
    assert len(train_idx) == N_TRAIN - N_VAL and len(val_idx) == N_VAL
    assert not set(train_idx) & set(val_idx) and set(train_idx) | set(val_idx) == set(range(N_TRAIN))
    assert data.split_indices(N_TRAIN, N_VAL, seed=0) == (train_idx, val_idx)
    assert data.split_indices(N_TRAIN, N_VAL, seed=1)[1] != val_idx
    assert len(data.split_indices()[1]) == N_VAL  # data.VAL_SIZE (patched to N_VAL here)
    images, labels, classes = data.raw_split(True)
    x, y = data.load_split_tensors("val", device="cpu")
    assert torch.equal(y, torch.from_numpy(labels[val_idx]))
    assert len(data.load_split_tensors("train", device="cpu")[0]) == N_TRAIN - N_VAL
    assert classes == synthetic.SYNTHETIC_CLASSES and data.class_names() == list(synthetic.SYNTHETIC_CLASSES)
    with pytest.raises(ValueError, match="val_size must be between 1 and 999"):
        data.split_indices(N_TRAIN, N_TRAIN)


def test_normalized_with_the_statistics_of_all_training_images(cifar_files):
    xt, _ = data.load_split_tensors("train", device="cpu")
    xv, _ = data.load_split_tensors("val", device="cpu")
    whole = torch.cat([xt, xv]).to(torch.float64)
    assert whole.mean(dim=(0, 2, 3)).abs().max() < 1e-5
    assert (whole.std(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-5
    mean, std = data.normalization()
    assert mean != data.CIFAR10_MEAN  # not CIFAR-10: the published values are not used
    images = data.raw_split(True)[0].astype(np.float64) / 255
    np.testing.assert_allclose(mean, images.mean(axis=(0, 1, 2)), rtol=1e-10)
    np.testing.assert_allclose(std, images.std(axis=(0, 1, 2)), rtol=1e-10)


def test_tensor_data_is_the_first_images_of_each_split(cifar_files):
    x_train, y_train, x_val, y_val = data.tensor_data(n_train=40, n_val=30, device="cpu")
    assert x_train.shape == (40, 3, 32, 32) and x_val.shape == (30, 3, 32, 32)
    assert torch.equal(x_train, data.load_split_tensors("train", device="cpu")[0][:40])
    assert torch.equal(y_val, data.load_split_tensors("val", device="cpu")[1][:30])
    assert len(data.tensor_data(device="cpu")[0]) == N_TRAIN - N_VAL  # None: all


# ---- streaming statistics --------------------------------------------------------------------------------
def test_channel_stats_streaming_equals_direct_computation():
    g = torch.Generator().manual_seed(0)
    # A large offset and unequal batch sizes: a naive sum-of-squares formula would lose digits.
    scale = torch.tensor([1, 2, 3.0]).view(1, 3, 1, 1)
    batches = [1000.0 + torch.rand(b, 3, 8, 8, generator=g, dtype=torch.float64) * scale for b in (7, 1, 64, 33)]
    mean, std = data.channel_stats(batches)
    whole = torch.cat(batches).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(mean, whole.mean(dim=1), rtol=0, atol=1e-12)
    torch.testing.assert_close(std, whole.std(dim=1, unbiased=False), rtol=1e-10, atol=0)
    mean2, _ = data.channel_stats((b, None) for b in batches)  # (images, labels) pairs, as a DataLoader yields
    torch.testing.assert_close(mean2, mean)
    with pytest.raises(ValueError, match="at least one non-empty batch"):
        data.channel_stats([])
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        data.channel_stats([torch.zeros(3, 4)])


def test_channel_stats_over_all_the_data_equal_numpy_in_float64(cifar_files):
    ds = data.cifar10_dataset(train=True, transform=transforms.ToTensor())
    mean, std = data.channel_stats(DataLoader(ds, batch_size=97, shuffle=False))  # 11 batches, the last partial
    images = data.raw_split(True)[0]
    reference = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean.numpy(), reference.mean(axis=(0, 1, 2)), rtol=1e-7)  # ToTensor is float32
    np.testing.assert_allclose(std.numpy(), reference.std(axis=(0, 1, 2)), rtol=1e-6)
    m8, s8 = data.uint8_channel_stats(images, chunk=333)
    np.testing.assert_allclose(m8.numpy(), reference.mean(axis=(0, 1, 2)), rtol=1e-10)
    np.testing.assert_allclose(s8.numpy(), reference.std(axis=(0, 1, 2)), rtol=1e-10)


def test_uint8_histogram_stats_equal_streaming_stats():
    images = np.random.default_rng(0).integers(0, 256, size=(300, 8, 8, 3), dtype=np.uint8)
    m1, s1 = data.uint8_channel_stats(images, chunk=70)
    m2, s2 = data.channel_stats(data._uint8_batches(images, chunk=64))
    torch.testing.assert_close(m1, m2, rtol=0, atol=1e-12)
    torch.testing.assert_close(s1, s2, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="uint8 images"):
        data.uint8_channel_stats(images.astype(np.float32))


# ---- TensorLoader ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("drop_last", [False, True])
def test_tensor_loader_has_dataloader_batch_semantics(drop_last):
    x, y = torch.arange(103.0).view(-1, 1), torch.arange(103)
    ours = data.TensorLoader(x, y, batch_size=10, shuffle=False, drop_last=drop_last)
    theirs = DataLoader(TensorDataset(x, y), batch_size=10, shuffle=False, drop_last=drop_last)
    assert len(ours) == len(theirs) == (10 if drop_last else 11)
    for (a, b), (c, d) in zip(ours, theirs, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)
    assert [len(b) for _, b in ours][-1] == (10 if drop_last else 3)
    assert len(ours.dataset) == 103


def test_tensor_loader_shuffles_with_a_seed_and_its_generator_is_its_state():
    x, y = torch.arange(50.0), torch.arange(50)
    a = data.TensorLoader(x, y, batch_size=8, shuffle=True, seed=1)
    state = a.generator.get_state()
    epoch1 = torch.cat([yb for _, yb in a])
    epoch2 = torch.cat([yb for _, yb in a])
    assert sorted(epoch1.tolist()) == list(range(50))  # every example once per epoch
    assert not torch.equal(epoch1, epoch2) and not torch.equal(epoch1, torch.arange(50))  # a new order each epoch
    b = data.TensorLoader(x, y, batch_size=8, shuffle=True, seed=1)
    assert torch.equal(torch.cat([yb for _, yb in b]), epoch1)  # same seed, same order
    a.generator.set_state(state)  # what a checkpoint restores
    assert torch.equal(torch.cat([yb for _, yb in a]), epoch1)
    for xb, yb in a:
        assert torch.equal(xb.long(), yb)  # x and y stay paired
    assert len(data.TensorLoader(x[:5], y[:5], batch_size=8, drop_last=True)) == 0


def test_bad_arguments_name_the_choices(cifar_files):
    with pytest.raises(ValueError, match="train, val, test"):
        data.load_split_tensors("validation")
    with pytest.raises(ValueError, match="limit must be a positive number"):
        data.load_split_tensors("train", limit=0)
    with pytest.raises(ValueError, match="train, val, test"):
        data.cifar10("dev")
    with pytest.raises(ValueError, match="transform must be 'normalize', None or a callable"):
        data.cifar10("train", transform="augment")
    with pytest.raises(ValueError, match="batch_size"):
        data.TensorLoader(torch.zeros(3), torch.zeros(3), batch_size=0)
    with pytest.raises(ValueError, match="same length"):
        data.TensorLoader(torch.zeros(3), torch.zeros(4))


# ---- which files: the banner line ------------------------------------------------------------------------
def test_source_line_synthetic(synthetic_mode):
    assert data.source_line() == f"Data: synthetic CIFAR-format images in $LECTURE_DATA_DIR/synthetic/{data.FOLDER}."
    assert data.resolve_root() == (synthetic_mode / "synthetic", False)
    assert len(data.load_split_tensors("val", device="cpu")[0]) == N_VAL  # reused, not regenerated


def test_source_line_unverified_files(cifar_files):
    line = data.source_line()
    assert line.startswith(f"Data: CIFAR-format files in $LECTURE_DATA_DIR/{data.FOLDER}; NOT the official release")
    assert str(cifar_files) not in line  # no local path in a committed output
    assert "LECTURE_VERIFY_DATA=0" in line
    assert not data.is_official(cifar_files)


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_source_line_official_release(fresh_cifar, clean_env):
    """Files whose md5 match the table are the official release: banner, published mean/std, no computation."""
    clean_env.setattr(data, "MD5", {name: _md5(fresh_cifar / name) for name in data.MD5})
    assert data.is_official(fresh_cifar.parent)
    assert data.source_line() == f"Data: CIFAR-10, the official release (md5 verified), in $LECTURE_DATA_DIR/{data.FOLDER}."
    assert data.normalization() == (data.CIFAR10_MEAN, data.CIFAR10_STD)
    with open(fresh_cifar / "test_batch", "ab") as f:  # one byte more: no longer the release
        f.write(b"\0")
    assert not data.is_official(fresh_cifar.parent)
    with pytest.raises(data.DataUnavailableError, match="md5 of test_batch do not match"):
        data.source_line()


def test_shown_path_never_prints_a_local_path(clean_env, tmp_path):
    clean_env.setenv("LECTURE_DATA_DIR", str(tmp_path))
    assert data.shown_path(tmp_path / "cifar-10-batches-py") == "$LECTURE_DATA_DIR/cifar-10-batches-py"
    assert data.shown_path(tmp_path) == "$LECTURE_DATA_DIR"
    assert data.shown_path(tmp_path.parent / "elsewhere") == ".../elsewhere"
    clean_env.delenv("LECTURE_DATA_DIR")
    assert data.shown_path(config.data_dir() / "cifar-10-batches-py") == "data/cifar-10-batches-py"


# ---- faults, reproduced for real ------------------------------------------------------------------------
def _rewrite(path, **changes):
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry.update(changes)
    with open(path, "wb") as f:
        pickle.dump(entry, f)


def _names_file(info, path):
    msg = str(info.value)
    assert str(path) in msg, msg
    assert "LECTURE_DATA_DIR" in msg and "LECTURE_SYNTHETIC=1" in msg  # what to do
    err = info.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)  # one message, no chain
    return msg


def test_truncated_batch_file_is_named(fresh_cifar, clean_env):
    clean_env.setenv("LECTURE_VERIFY_DATA", "0")
    path = fresh_cifar / "data_batch_3"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # a download or copy cut short
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_split_tensors("train", device="cpu")
    msg = _names_file(info, path)
    assert "is not a CIFAR-10 python batch" in msg and "extract the archive again" in msg


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"data": np.zeros((200, 3000), dtype=np.uint8)}, r"'data' must be a uint8 array of shape \(N, 3072\), got ndarray \(200, 3000\)"),
        ({"data": np.zeros((200, 3072), dtype=np.float32)}, r"'data' must be a uint8 array"),
        ({"labels": [10] + [0] * 199}, "labels must be integers 0..9, got values from 0 to 10"),
        ({"labels": [-1] + [0] * 199}, "labels must be integers 0..9, got values from -1 to 0"),
        ({"labels": [0] * 199}, r"'labels' must hold one label per image \(200\), got 199"),
    ],
)  # fmt: skip
def test_malformed_batch_is_named(fresh_cifar, clean_env, changes, problem):
    clean_env.setenv("LECTURE_VERIFY_DATA", "0")
    path = fresh_cifar / "data_batch_2"
    _rewrite(path, **changes)
    with pytest.raises(data.DataUnavailableError, match=problem) as info:
        data.load_split_tensors("train", device="cpu")
    assert "is not a valid CIFAR-10 batch" in _names_file(info, path)


def test_meta_without_ten_class_names_is_named(fresh_cifar, clean_env):
    clean_env.setenv("LECTURE_VERIFY_DATA", "0")
    _rewrite(fresh_cifar / data.META_FILE, label_names=["a"] * 9)
    with pytest.raises(data.DataUnavailableError, match="'label_names' must be 10 names"):
        data.class_names()


class _CreatesAFile:
    """A pickle whose unpickling creates a file: what a malicious 'CIFAR-10' download could do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


def _malicious(path, target):
    payload = pickle.dumps({"label_names": list("abcdefghij"), "data": _CreatesAFile(target)})
    path.write_bytes(payload)
    return payload


def test_the_malicious_payload_really_creates_a_file(tmp_path):
    target = tmp_path / "pwned"
    payload = _malicious(tmp_path / "evil", target)
    pickle.loads(payload)  # what an ordinary unpickler (torchvision's reader) does with it
    assert target.exists()


@pytest.mark.parametrize("name", [data.META_FILE, "data_batch_4", "test_batch"])
def test_malicious_pickle_is_refused_without_running_it(fresh_cifar, clean_env, tmp_path, name):
    clean_env.setenv("LECTURE_VERIFY_DATA", "0")  # even with verification off
    target = tmp_path / f"pwned-{name}"
    _malicious(fresh_cifar / name, target)
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_split_tensors("test" if name == "test_batch" else "train", device="cpu")
    msg = _names_file(info, fresh_cifar / name)
    assert "refusing to load" in msg and "not part of the CIFAR-10 format" in msg
    assert not target.exists()


def test_unverified_files_are_refused_before_anything_is_unpickled(fresh_cifar, clean_env, tmp_path):
    """Verification on (the default) and files that differ from the release: refused on their md5, before any
    unpickler sees them (the malicious meta is never opened as a pickle, not even by the safe reader)."""
    target = tmp_path / "pwned"
    _malicious(fresh_cifar / data.META_FILE, target)
    opened = []
    clean_env.setattr(data._CifarUnpickler, "find_class", lambda self, m, n: opened.append((m, n)))
    for call in (lambda: data.cifar10("train"), lambda: data.load_split_tensors("val"), data.class_names):
        with pytest.raises(data.DataUnavailableError) as info:
            call()
        msg = str(info.value)
        assert "differ from the official release" in msg and "batches.meta" in msg
        assert "LECTURE_VERIFY_DATA=0" in msg
    assert opened == [] and not target.exists()


def test_missing_files_without_download_say_what_to_do(tmp_path, clean_env):
    clean_env.setenv("LECTURE_DATA_DIR", str(tmp_path))
    clean_env.setattr(CIFAR10, "download", lambda self: pytest.fail("must not download"))
    with pytest.raises(data.DataUnavailableError) as info:
        data.resolve_root(download=False)
    msg = str(info.value)
    assert msg.startswith(f"CIFAR-10 is not available: {tmp_path / data.FOLDER} lacks data_batch_1")
    assert "LECTURE_DATA_DIR" in msg and "LECTURE_SYNTHETIC=1" in msg and "cifar-10-python.tar.gz" in msg
    assert "%env LECTURE_DATA_DIR=" in msg and "%env LECTURE_SYNTHETIC=1" in msg  # how, in a notebook
    assert "README" not in msg  # the message itself says what to do
    assert info.value._render_traceback_() == [f"DataUnavailableError: {msg}"]


def test_no_data_and_no_network_gives_one_clear_message(tmp_path, clean_env):
    clean_env.setenv("LECTURE_DATA_DIR", str(tmp_path))

    def offline(self):
        raise urllib.error.URLError("no network")

    clean_env.setattr(CIFAR10, "download", offline)
    with pytest.raises(data.DataUnavailableError) as info:
        data.cifar10("train")
    msg = _names_file(info, tmp_path / data.FOLDER)
    assert "the download failed (URLError" in msg and "cifar-10-python.tar.gz" in msg
    assert info.value._render_traceback_()[0].startswith("DataUnavailableError: CIFAR-10 is not available")


def _unwritable_dir(kind, tmp_path):
    if kind == "parent is a file":  # not writable, even for root
        blocker = tmp_path / "a-file"
        blocker.write_text("not a folder")
        return blocker / "data"
    # a read-only folder: tests run as root, which ignores permission bits, but not a read-only file system
    probe = "/sys/.lecture-write-test"
    try:
        open(probe, "w").close()
    except OSError:
        return data.Path("/sys")
    os.unlink(probe)
    pytest.skip("no read-only folder available: /sys is writable here (and root ignores chmod)")


@pytest.mark.parametrize("kind", ["parent is a file", "read-only /sys"])
@pytest.mark.parametrize("synthetic_flag", ["0", "1"])
def test_unwritable_data_folder_fails_before_any_download_or_generation(tmp_path, clean_env, synthetic_flag, kind):
    clean_env.setattr(CIFAR10, "download", lambda self: pytest.fail("must not download"))
    clean_env.setattr(synthetic, "write_synthetic_cifar10", lambda *a, **k: pytest.fail("must not generate"))
    clean_env.setenv("LECTURE_SYNTHETIC", synthetic_flag)
    clean_env.setenv("LECTURE_DATA_DIR", str(_unwritable_dir(kind, tmp_path)))
    with pytest.raises(data.DataUnavailableError, match="cannot be written") as info:
        data.cifar10("train")
    assert "Set LECTURE_DATA_DIR to a folder you can write to" in str(info.value)
