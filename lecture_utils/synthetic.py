"""Synthetic CIFAR-format data: what CI and offline runs use instead of CIFAR-10 (``LECTURE_SYNTHETIC=1``).

The generator writes the official python format (pickled ``data_batch_1..5``, ``test_batch``, ``batches.meta``)
plus a marker file ``SYNTHETIC.json``, under ``<LECTURE_DATA_DIR>/synthetic/cifar-10-batches-py/`` -- never
next to a real download.  The images are learnable (a class pattern under nuisance and noise) but they are
NOT CIFAR-10: every notebook's banner says so, and the lecture's text describes CIFAR-10.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import torch

from . import atomic, config

#: The official release's layout (as torchvision.datasets.CIFAR10 knows it).
FOLDER = "cifar-10-batches-py"
TRAIN_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
#: The marker that says a folder holds generated data (read without unpickling anything).
MARKER = "SYNTHETIC.json"
VERSION = 3
#: (training, test) images: the official sizes.
SIZE = (50_000, 10_000)
#: Pixel noise, nuisance-pattern strength, class-pattern amplitude range and per-image brightness (see
#: :func:`synthetic_images`); SCALE and OFFSET map the result to pixel values like CIFAR-10's.
NOISE, NUISANCE, AMPLITUDE, BRIGHTNESS = 1.2, 0.5, (0.2, 0.6), 1.0
SCALE, OFFSET = 24.5, 120.0
#: The class names of the official release, in label order.
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


SYNTHETIC_CLASSES = tuple(f"synthetic-{c}" for c in CIFAR10_CLASSES)


def _synthetic_world(seed: int, prototypes: int = 4, shift: int = 3):
    """Per class ``prototypes`` smooth colour patterns, each at every (2 shift + 1)^2 translation;
    shared nuisance patterns.  Returns (table (10, P*S, 3072), nuisance (16, 3072)), unit variance."""
    g = torch.Generator().manual_seed(seed)
    side = 32 + 2 * shift

    def smooth(k: int, coarse: int) -> torch.Tensor:
        z = torch.randn(k, 3, coarse, coarse, generator=g)
        z = torch.nn.functional.interpolate(z, size=(side, side), mode="bicubic", align_corners=False)
        return z

    protos = smooth(10 * prototypes, 6)  # (10P, 3, side, side)
    crops = [protos[:, :, dy : dy + 32, dx : dx + 32] for dy in range(2 * shift + 1) for dx in range(2 * shift + 1)]
    table = torch.stack(crops, dim=1).reshape(10, prototypes * len(crops), 3 * 32 * 32)
    table = (table - table.mean(dim=-1, keepdim=True)) / table.std(dim=-1, keepdim=True)
    nuisance = smooth(16, 4)[:, :, :32, :32].reshape(16, -1)
    nuisance = nuisance / nuisance.std(dim=-1, keepdim=True)
    return table.numpy(), nuisance.numpy()


def synthetic_images(n: int, seed: int, stream: int, world=None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic images (n, 3072) uint8 in CIFAR's channel-planar row layout, and balanced labels.

    z = a * pattern[class, prototype, translation] + sum_k c_k nuisance_k + b + NOISE * eps, with
    a ~ U(AMPLITUDE), c_k ~ N(0, NUISANCE^2) over 16 shared smooth patterns, a brightness b ~ N(0, BRIGHTNESS^2)
    shared by all pixels of the image, eps ~ N(0, I) per pixel; pixel = clip(OFFSET + SCALE z, 0, 255) (mean about
    0.47, std about 0.24 of the range, like CIFAR-10).  Like photographs, the pixels of one image are strongly
    correlated (the brightness and the smooth patterns), which is what makes a deep linear network unstable at a
    large learning rate on both data sets (notebook 7).  The class signal is weak against nuisance and noise: the
    seed model learns it well above chance (10%) but far from perfectly.
    Seeded (``stream`` picks an independent random stream) and vectorised.
    """
    table, nuisance = _synthetic_world(seed) if world is None else world
    rng = np.random.default_rng([seed, stream])
    labels = rng.permutation(np.arange(n) % 10)
    which = rng.integers(0, table.shape[1], size=n)
    amp = rng.uniform(*AMPLITUDE, size=(n, 1)).astype(np.float32)
    coef = (NUISANCE * rng.standard_normal((n, nuisance.shape[0]))).astype(np.float32)
    z = amp * table[labels, which]
    z += coef @ nuisance
    z += NOISE * rng.standard_normal(z.shape, dtype=np.float32)
    z += BRIGHTNESS * rng.standard_normal((n, 1), dtype=np.float32)
    z *= SCALE
    z += OFFSET
    pixels = np.clip(z, 0, 255, out=z).astype(np.uint8)
    return pixels, labels.astype(np.int64)


def write_synthetic_cifar10(root: Path | str, n_train: int = 50_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """Write a synthetic data set in the official CIFAR-10 python format under ``root/cifar-10-batches-py``.

    Five pickled ``data_batch_i`` (dicts with ``batch_label``, ``labels``, ``data`` (n, 3072) uint8 with
    the R, G, B planes of each 32 x 32 image in row order, ``filenames``), one ``test_batch``,
    ``batches.meta`` (``label_names``, ``num_cases_per_batch``, ``num_vis``) and ``SYNTHETIC.json``.
    Written to a temporary folder and renamed into place (:mod:`lecture_utils.atomic`), so an interrupted run leaves
    nothing half done.
    Returns ``root``.
    """
    if n_train < 5 or n_train % 5 or n_test < 1:
        raise ValueError(f"n_train must be a positive multiple of 5 and n_test positive, got {n_train}, {n_test}.")
    root = Path(root)
    world = _synthetic_world(seed)
    try:
        with atomic.replace(root / FOLDER) as tmp:
            tmp.mkdir()
            per = n_train // 5
            batches = [(f"training batch {i + 1} of 5", name, per) for i, name in enumerate(TRAIN_FILES)]
            batches.append(("testing batch 1 of 1", TEST_FILES[0], n_test))
            for stream, (label, name, count) in enumerate(batches, start=1):
                x, y = synthetic_images(count, seed, stream, world)  # one file at a time: bounded memory
                entry = {"batch_label": label, "labels": y.tolist(), "data": x,
                         "filenames": [f"synthetic_{name}_{i:05d}.png" for i in range(len(y))]}  # fmt: skip
                with open(tmp / name, "wb") as f:
                    pickle.dump(entry, f, protocol=4)
            meta = {"label_names": list(SYNTHETIC_CLASSES), "num_cases_per_batch": per, "num_vis": 3072}
            with open(tmp / META_FILE, "wb") as f:
                pickle.dump(meta, f, protocol=4)
            record = {"version": VERSION, "seed": seed, "n_train": n_train, "n_test": n_test}
            (tmp / MARKER).write_text(json.dumps(record, sort_keys=True))
    except OSError:  # another process finished first (its folder took the place): keep its copy
        if not _synthetic_matches(root, n_train, n_test, seed):
            raise
    return root


def is_synthetic(folder: Path | str) -> bool:
    """True when ``folder`` (a ``cifar-10-batches-py``) was written by :func:`write_synthetic_cifar10`."""
    return (Path(folder) / MARKER).is_file()


def _synthetic_matches(root: Path, n_train: int, n_test: int, seed: int) -> bool:
    folder = Path(root) / FOLDER
    if not all((folder / n).is_file() for n in (*TRAIN_FILES, *TEST_FILES, META_FILE)):
        return False
    try:
        info = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info == {"version": VERSION, "seed": seed, "n_train": n_train, "n_test": n_test}


def synthetic_root() -> Path:
    """``<LECTURE_DATA_DIR>/synthetic``: generated data never lands next to a real download."""
    return config.data_dir() / "synthetic"


def ensure_synthetic(n_train: int | None = None, n_test: int | None = None, seed: int = 0) -> Path:
    """The root of the synthetic data set (:data:`SIZE` images unless given), generated once (about ten seconds)
    and reused afterwards."""
    n_train = SIZE[0] if n_train is None else n_train
    n_test = SIZE[1] if n_test is None else n_test
    root = synthetic_root()
    if not _synthetic_matches(root, n_train, n_test, seed):
        write_synthetic_cifar10(root, n_train, n_test, seed)
    return root
