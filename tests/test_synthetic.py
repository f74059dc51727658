"""lecture_utils.synthetic: the official CIFAR-10 python format, the marker, reuse, and writes that are interrupted
(in-process and by SIGKILL) leave no half-written data set."""

import json
import os
import pickle
import signal
import time

import numpy as np
import pytest
from torchvision.datasets import CIFAR10

from lecture_utils import synthetic
from lecture_utils.synthetic import FOLDER, MARKER, META_FILE, TEST_FILES, TRAIN_FILES

N_TRAIN, N_TEST = 500, 100


def _load(path):
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def test_writes_the_official_format(tmp_path):
    root = synthetic.write_synthetic_cifar10(tmp_path, n_train=N_TRAIN, n_test=N_TEST, seed=3)
    assert root == tmp_path
    folder = root / FOLDER
    assert sorted(p.name for p in folder.iterdir()) == sorted([*TRAIN_FILES, *TEST_FILES, META_FILE, MARKER])
    assert TRAIN_FILES == tuple(f"data_batch_{i}" for i in range(1, 6)) and TEST_FILES == ("test_batch",)
    for i, name in enumerate(TRAIN_FILES, start=1):
        entry = _load(folder / name)
        assert set(entry) == {"batch_label", "labels", "data", "filenames"}
        assert entry["batch_label"] == f"training batch {i} of 5"
        assert entry["data"].dtype == np.uint8 and entry["data"].shape == (N_TRAIN // 5, 3072)
        assert len(entry["labels"]) == len(entry["filenames"]) == N_TRAIN // 5
        assert set(entry["labels"]) <= set(range(10))
    test = _load(folder / "test_batch")
    assert np.bincount(test["labels"], minlength=10).tolist() == [N_TEST // 10] * 10  # balanced
    meta = _load(folder / META_FILE)
    assert meta == {"label_names": list(synthetic.SYNTHETIC_CLASSES), "num_cases_per_batch": N_TRAIN // 5,
                    "num_vis": 3072}  # fmt: skip
    assert json.loads((folder / MARKER).read_text()) == {"version": synthetic.VERSION, "seed": 3,
                                                         "n_train": N_TRAIN, "n_test": N_TEST}  # fmt: skip
    assert synthetic.is_synthetic(folder) and not synthetic.is_synthetic(tmp_path)
    # The pixels are the generator's, in CIFAR's channel-planar rows; images look like CIFAR (mean ~0.47).
    x2, y2 = synthetic.synthetic_images(N_TRAIN // 5, 3, 2, synthetic._synthetic_world(3))
    entry = _load(folder / "data_batch_2")
    np.testing.assert_array_equal(entry["data"], x2)
    assert entry["labels"] == y2.tolist()
    assert 0.4 < entry["data"].mean() / 255 < 0.55 and 0.2 < entry["data"].std() / 255 < 0.35
    # torchvision reads the format, but the official checksums do not match: it refuses the files.
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        CIFAR10(root, train=True)


def test_same_seed_same_data_other_stream_other_data():
    world = synthetic._synthetic_world(0)
    a, ya = synthetic.synthetic_images(50, 0, 1, world)
    b, yb = synthetic.synthetic_images(50, 0, 1, world)
    c, _ = synthetic.synthetic_images(50, 0, 2, world)
    assert np.array_equal(a, b) and np.array_equal(ya, yb) and not np.array_equal(a, c)
    assert a.shape == (50, 3072) and a.dtype == np.uint8 and ya.dtype == np.int64


def test_bad_sizes():
    for n_train, n_test in ((7, 10), (0, 10), (10, 0)):
        with pytest.raises(ValueError, match="positive multiple of 5"):
            synthetic.write_synthetic_cifar10("unused", n_train=n_train, n_test=n_test)


def test_ensure_synthetic_is_idempotent_and_regenerates_on_change(tmp_path, clean_env):
    clean_env.setenv("LECTURE_DATA_DIR", str(tmp_path))
    root = synthetic.ensure_synthetic(N_TRAIN, N_TEST)
    assert root == tmp_path / "synthetic" == synthetic.synthetic_root()  # never next to a real download
    folder = root / FOLDER
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert synthetic.ensure_synthetic(N_TRAIN, N_TEST) == root
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # reused, not rewritten
    synthetic.ensure_synthetic(N_TRAIN, 2 * N_TEST)
    assert len(_load(folder / "test_batch")["labels"]) == 2 * N_TEST
    (folder / "data_batch_4").unlink()  # a missing file: written again
    synthetic.ensure_synthetic(N_TRAIN, 2 * N_TEST)
    assert (folder / "data_batch_4").is_file()
    assert not list(root.glob(f".{FOLDER}.*.tmp"))  # no temporary folders left behind


def test_interrupt_in_process_leaves_the_previous_set(tmp_path, monkeypatch):
    """Ctrl-C in a notebook while the data are generated: the previous set is intact, no temporary folder."""
    synthetic.write_synthetic_cifar10(tmp_path, n_train=N_TRAIN, n_test=N_TEST)
    before = {p.name: p.read_bytes() for p in (tmp_path / FOLDER).iterdir()}
    calls = []
    real_dump = pickle.dump

    def dump_then_interrupt(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_dump(obj, f, *args, **kwargs)

    monkeypatch.setattr(synthetic.pickle, "dump", dump_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        synthetic.write_synthetic_cifar10(tmp_path, n_train=2 * N_TRAIN, n_test=N_TEST)
    assert {p.name: p.read_bytes() for p in (tmp_path / FOLDER).iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER]


def test_sigkill_mid_write_leaves_no_half_written_set(tmp_path, forker):
    """A process killed (SIGKILL: no cleanup runs) while it writes: the target folder holds the previous complete
    set, never a partial one, and the next write builds a complete set."""
    synthetic.write_synthetic_cifar10(tmp_path, n_train=N_TRAIN, n_test=N_TEST)
    before = {p.name: p.read_bytes() for p in (tmp_path / FOLDER).iterdir()}
    forker.start(f"from lecture_utils import synthetic\n"
                 f"synthetic.write_synthetic_cifar10({str(tmp_path)!r}, n_train=20_000, n_test=2_000)\n")  # fmt: skip
    partial = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not partial:
            partial = [p for t in tmp_path.glob(f".{FOLDER}.*.tmp") for p in t.glob("data_batch_*")]
            time.sleep(0.005)
    finally:
        status = forker.kill_and_reap()  # the writer is between its first and its last file
    assert partial, "the writer finished (or failed) before it could be killed"
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert {p.name: p.read_bytes() for p in (tmp_path / FOLDER).iterdir()} == before  # intact
    assert json.loads((tmp_path / FOLDER / MARKER).read_text())["n_train"] == N_TRAIN
    synthetic.write_synthetic_cifar10(tmp_path, n_train=2 * N_TRAIN, n_test=N_TEST)
    assert len(_load(tmp_path / FOLDER / "data_batch_5")["labels"]) == 2 * N_TRAIN // 5


def test_a_later_write_removes_what_a_killed_writer_left(tmp_path):
    stale = tmp_path / f".{FOLDER}.k1ll3d.tmp"  # what SIGKILL leaves: a temporary folder with the first files
    stale.mkdir()
    (stale / "data_batch_1").write_bytes(b"\x80\x04 partial")
    synthetic.write_synthetic_cifar10(tmp_path, n_train=N_TRAIN, n_test=N_TEST)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FOLDER]
