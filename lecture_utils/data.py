"""CIFAR-10 the PyTorch way, synthetic CIFAR-format data for offline runs, and a fast in-memory path.

The two ways to the same batches
--------------------------------
The PyTorch way, as students meet it (one image at a time through PIL and the transforms)::

    ds = cifar10("train")                       # torchvision CIFAR10 + Compose([ToTensor(), Normalize])
    loader = DataLoader(ds, batch_size=64, shuffle=True)

The fast path used by the experiments (the whole split decoded once, normalized, on DEVICE)::

    x, y = load_split_tensors("train", device=DEVICE)          # 'train' | 'val' | 'test'
    for xb, yb in TensorLoader(x, y, batch_size=64, shuffle=True, seed=0):
        ...

Both read the same files through ``torchvision.datasets.CIFAR10``, use the same seeded
``random_split`` of the 50,000 training images into training and validation sets, and give the same
numbers (``ToTensor`` is ``x / 255``, ``Normalize`` is ``(x - mean) / std``).

Where the data comes from (see data/README.md)
----------------------------------------------
* ``LECTURE_SYNTHETIC=1``: generated CIFAR-format files (pickled ``data_batch_1..5``, ``test_batch``,
  ``batches.meta``) under ``<LECTURE_DATA_DIR>/synthetic/``, never mixed with a real download.
  They are learnable (a class-dependent pattern plus nuisance and noise) but are NOT CIFAR-10.
* otherwise ``<LECTURE_DATA_DIR>/cifar-10-batches-py/``, downloaded by torchvision if missing.  The
  files must match the official release (torchvision's md5 sums) unless ``LECTURE_VERIFY_DATA=0``, in
  which case CIFAR-format files that differ are loaded with a warning.
* no data and no network: :class:`DataUnavailableError`, a one-paragraph message that says what to do.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torchvision import transforms
from torchvision.datasets import CIFAR10

from . import config

#: Per-channel mean and std of the 50,000 CIFAR-10 training images (RGB, pixel values in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
#: The class names of the official release, in label order (also in ``batches.meta``).
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
FOLDER = CIFAR10.base_folder  # "cifar-10-batches-py"
TRAIN_FILES = tuple(name for name, _ in CIFAR10.train_list)
TEST_FILES = tuple(name for name, _ in CIFAR10.test_list)
META_FILE = CIFAR10.meta["filename"]
#: Official md5 sums, as torchvision checks them.
MD5 = {**dict(CIFAR10.train_list), **dict(CIFAR10.test_list), META_FILE: CIFAR10.meta["md5"]}
SPLITS = ("train", "val", "test")
#: Images held out of the 50,000 training images for validation (seeded random_split).
VAL_SIZE = 5000
SYNTHETIC_VERSION = 1
#: (training, test) images of the synthetic data set: the official sizes (tests shrink it).
SYNTHETIC_SIZE = (50_000, 10_000)
NOISE, NUISANCE, AMPLITUDE = 1.8, 0.2, (0.15, 0.55)  # synthetic data: see synthetic_images


class DataUnavailableError(RuntimeError):
    """The data cannot be found, fetched or trusted; the message says what to do.

    In a notebook it is shown as its message only (IPython's ``_render_traceback_`` hook), not as a
    wall of traceback.
    """

    def _render_traceback_(self) -> list[str]:  # IPython calls this instead of printing a traceback
        return [f"{type(self).__name__}: {self}"]


def _missing_message(folder: Path, reason: str) -> str:
    return (
        f"CIFAR-10 is not available: {reason}\n"
        f"  * Put the official python version there: download cifar-10-python.tar.gz "
        f"(https://www.cs.toronto.edu/~kriz/cifar.html) on a machine with internet and extract it so that "
        f"{folder}/data_batch_1 ... test_batch, batches.meta exist "
        f"(or point LECTURE_DATA_DIR at the folder that holds {FOLDER}/), see data/README.md;\n"
        f"  * or run offline on generated CIFAR-format data: set LECTURE_SYNTHETIC=1 "
        f"(the numbers are then not CIFAR-10's)."
    )


# ---------------------------------------------------------------------------------------------------
# Reading CIFAR-format files through torchvision
# ---------------------------------------------------------------------------------------------------
class CIFAR10Files(CIFAR10):
    """``torchvision.datasets.CIFAR10`` that, with ``verify=False``, reads CIFAR-format files whose md5
    differs from the official release (torchvision's own reader; only the checksum test is relaxed)."""

    def __init__(self, root, train: bool = True, transform=None, target_transform=None,
                 download: bool = False, verify: bool = True):  # fmt: skip
        self.verify = verify
        super().__init__(root, train=train, transform=transform, target_transform=target_transform,
                         download=download)  # fmt: skip

    def _check_integrity(self) -> bool:
        if self.verify:
            return super()._check_integrity()
        folder = Path(self.root) / self.base_folder
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        if self.verify:
            return super()._load_meta()
        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _differing_files(folder: str, stamp: tuple) -> tuple[str, ...]:
    return tuple(name for name, md5 in MD5.items() if _md5(Path(folder) / name) != md5)


def _stamp(folder: Path) -> tuple:
    return tuple((n, (folder / n).stat().st_mtime_ns, (folder / n).stat().st_size) for n in MD5)


def is_official(root: Path | str) -> bool:
    """True when ``root/cifar-10-batches-py`` holds exactly the official release (all md5 sums match)."""
    folder = Path(root) / FOLDER
    if not all((folder / n).is_file() for n in MD5):
        return False
    return not _differing_files(str(folder), _stamp(folder))


def _is_synthetic_folder(folder: Path) -> bool:
    try:
        with open(folder / META_FILE, "rb") as f:
            meta = pickle.load(f, encoding="latin1")
    except (OSError, pickle.UnpicklingError, EOFError):
        return False
    return isinstance(meta, dict) and "synthetic" in meta


def resolve_root(download: bool = True) -> tuple[Path, bool]:
    """(root holding ``cifar-10-batches-py/``, verify) for the current settings.

    Synthetic mode generates the data if needed and never verifies md5 (the banner says the data are
    not CIFAR-10).  Otherwise missing files are downloaded by torchvision (``download=True``); if that
    fails, :class:`DataUnavailableError`.  Files that differ from the release raise unless
    ``LECTURE_VERIFY_DATA=0``, which loads them with a warning.
    """
    if config.synthetic():
        return ensure_synthetic(*SYNTHETIC_SIZE), False
    root = config.data_dir()
    folder = root / FOLDER
    missing = [n for n in MD5 if not (folder / n).is_file()]
    if missing:
        if not download:
            raise DataUnavailableError(_missing_message(folder, f"{folder} lacks {', '.join(missing)}."))
        try:
            root.mkdir(parents=True, exist_ok=True)
            CIFAR10(root, train=True, download=True)
        except Exception as err:  # no network, a proxy, a full disk...: one clear message instead
            raise DataUnavailableError(
                _missing_message(folder, f"{folder} lacks {', '.join(missing)} and the download failed "
                                         f"({type(err).__name__}: {err}).")  # fmt: skip
            ) from None
    differing = _differing_files(str(folder), _stamp(folder))
    if differing:
        what = "generated synthetic data" if _is_synthetic_folder(folder) else "not the official release"
        if config.verify_data():
            raise DataUnavailableError(
                f"The CIFAR-10 files in {folder} differ from the official release ({what}: md5 of "
                f"{', '.join(differing)} do not match).  Replace them with the official files (see "
                f"data/README.md), or set LECTURE_VERIFY_DATA=0 to load these CIFAR-format files anyway."
            )
        warnings.warn(
            f"LECTURE_VERIFY_DATA=0: loading CIFAR-format files from {folder} whose md5 differ from the "
            f"official release ({', '.join(differing)}); results are not CIFAR-10's.",
            stacklevel=2,
        )
        return root, False
    return root, True


def cifar10_dataset(train: bool = True, transform=None, download: bool = True) -> CIFAR10Files:
    """The whole training (50,000) or test (10,000) set as a torchvision ``CIFAR10`` dataset.

    Equivalent to ``torchvision.datasets.CIFAR10(root=LECTURE_DATA_DIR, train=train, download=True,
    transform=transform)``, plus the synthetic and LECTURE_VERIFY_DATA=0 paths of :func:`resolve_root`.
    """
    root, verify = resolve_root(download)
    try:
        return CIFAR10Files(root, train=train, transform=transform, verify=verify)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError) as err:
        raise DataUnavailableError(
            f"The CIFAR-format files under {root / FOLDER} cannot be read ({type(err).__name__}: {err}). "
            "Delete the folder and extract the archive again (see data/README.md)."
        ) from None


def class_names() -> list[str]:
    """The class names, read from ``batches.meta`` (via torchvision's ``classes``)."""
    return list(_raw_split(False)[2])


def normalize_transform(mean=None, std=None) -> transforms.Compose:
    """``Compose([ToTensor(), Normalize(mean, std)])``; ``mean``/``std`` default to :func:`normalization`."""
    if mean is None or std is None:
        mean, std = normalization()
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(tuple(mean), tuple(std))])


def split_indices(n: int = 50_000, val_size: int | None = None, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices (train, val) of the seeded ``random_split`` of the ``n`` training images
    (``val_size`` defaults to :data:`VAL_SIZE`)."""
    val_size = VAL_SIZE if val_size is None else val_size
    if not 0 < val_size < n:
        raise ValueError(f"val_size must be between 1 and {n - 1} images, got {val_size!r}.")
    parts = torch.utils.data.random_split(range(n), [n - val_size, val_size],
                                          generator=torch.Generator().manual_seed(seed))  # fmt: skip
    return list(parts[0].indices), list(parts[1].indices)


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}.")


def cifar10(split: str = "train", transform="normalize", val_size: int | None = None, seed: int = 0):
    """The PyTorch-way dataset of one split: 'train' (45,000 images), 'val' (5,000, a seeded
    ``random_split`` of the training set) or 'test' (10,000).  ``transform='normalize'`` is
    ``Compose([ToTensor(), Normalize(mean, std)])`` with :func:`normalization`; pass ``None`` for PIL images."""
    _check_split(split)
    if isinstance(transform, str):
        if transform != "normalize":
            raise ValueError(f"transform must be 'normalize', None or a callable, got {transform!r}.")
        transform = normalize_transform()
    if split == "test":
        return cifar10_dataset(train=False, transform=transform)
    full = cifar10_dataset(train=True, transform=transform)
    train_idx, val_idx = split_indices(len(full), val_size, seed)
    return torch.utils.data.Subset(full, train_idx if split == "train" else val_idx)


# ---------------------------------------------------------------------------------------------------
# Streaming per-channel statistics
# ---------------------------------------------------------------------------------------------------
def channel_stats(batches: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (population) std of a stream of image batches (B, C, H, W), in float64.

    Never holds more than one batch.  Each batch contributes its count n_b, mean m_b and sum of squared
    deviations M2_b; two partial results are merged with Chan et al.'s (1979) parallel update
        delta = m_b - m,   m <- m + delta n_b / (n + n_b),   M2 <- M2 + M2_b + delta^2 n n_b / (n + n_b),
    which, unlike sum-of-squares minus squared sum, does not cancel catastrophically.  std = sqrt(M2 / n).
    Batches may be tensors or (images, labels) pairs as a DataLoader yields them.
    """
    n = 0
    mean = m2 = None
    for batch in batches:
        if isinstance(batch, list | tuple):
            batch = batch[0]
        x = torch.as_tensor(batch).to(torch.float64)
        if x.dim() != 4:
            raise ValueError(f"batches must have shape (B, C, H, W), got {tuple(x.shape)}.")
        x = x.transpose(0, 1).reshape(x.shape[1], -1)  # (C, B*H*W)
        nb = x.shape[1]
        if nb == 0:
            continue
        mb = x.mean(dim=1)
        m2b = ((x - mb[:, None]) ** 2).sum(dim=1)
        if mean is None:
            n, mean, m2 = nb, mb, m2b
            continue
        delta = mb - mean
        total = n + nb
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta**2 * (n * nb / total)
        n = total
    if mean is None:
        raise ValueError("channel_stats needs at least one non-empty batch.")
    return mean, torch.sqrt(m2 / n)


def _uint8_batches(data: np.ndarray, chunk: int = 2000) -> Iterator[torch.Tensor]:
    """(N, H, W, C) uint8 -> chunks of (B, C, H, W) float64 in [0, 1], exactly what ToTensor gives."""
    for i in range(0, len(data), chunk):
        yield torch.from_numpy(data[i : i + chunk]).permute(0, 3, 1, 2).to(torch.float64) / 255.0


def uint8_channel_stats(data: np.ndarray, chunk: int = 5000) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact per-channel mean and std (of x / 255) of uint8 images (N, H, W, C), streaming.

    A uint8 channel takes only 256 values, so its 256-bin histogram h (accumulated chunk by chunk)
    is a sufficient statistic: mean = sum_v h_v v / n, var = sum_v h_v (v - mean)^2 / n, in float64.
    The same numbers as :func:`channel_stats` on ToTensor'd batches, an order of magnitude faster.
    """
    if data.dtype != np.uint8 or data.ndim != 4:
        raise ValueError(f"expected uint8 images (N, H, W, C), got {data.dtype} {data.shape}.")
    counts = np.zeros((data.shape[-1], 256), dtype=np.int64)
    for i in range(0, len(data), chunk):
        block = data[i : i + chunk].reshape(-1, data.shape[-1])
        for c in range(data.shape[-1]):
            counts[c] += np.bincount(block[:, c], minlength=256)
    values = np.arange(256, dtype=np.float64) / 255.0
    n = counts.sum(axis=1)
    mean = (counts * values).sum(axis=1) / n
    var = (counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / n
    return torch.from_numpy(mean), torch.from_numpy(np.sqrt(var))


@lru_cache(maxsize=4)
def _computed_normalization(root: str, stamp: tuple) -> tuple[tuple, tuple]:
    data = _raw_cached(root, True, stamp)[0]
    mean, std = uint8_channel_stats(data)
    return tuple(mean.tolist()), tuple(std.tolist())


def normalization() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel used to normalize: the published values for the official release,
    otherwise computed (streaming, float64) over the 50,000 training images of the files in use."""
    root, verified = resolve_root()
    if verified:
        return CIFAR10_MEAN, CIFAR10_STD
    folder = root / FOLDER
    return _computed_normalization(str(root), _stamp(folder))


# ---------------------------------------------------------------------------------------------------
# The fast path: the whole split as one normalized tensor, and a shuffling batch iterator
# ---------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _raw_cached(root: str, train: bool, stamp: tuple):
    ds = CIFAR10Files(root, train=train, verify=False)
    return ds.data, np.asarray(ds.targets, dtype=np.int64), tuple(ds.classes)


def _raw_split(train: bool):
    root, _ = resolve_root()
    return _raw_cached(str(root), train, _stamp(root / FOLDER))


def load_split_tensors(split: str = "train", device=None, limit: int | None = None, val_size: int | None = None,
                       seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(x, y) of a whole split, decoded once: x (N, 3, 32, 32) normalized ``(x/255 - mean) / std``
    (the same numbers as ToTensor + Normalize), y (N,) int64 labels, both on ``device`` (default DEVICE).

    ``split``: 'train' | 'val' | 'test' (the same seeded split as :func:`cifar10`).  ``limit`` keeps the
    first ``limit`` images of the split (already in random order for train/val), for quick runs.
    """
    _check_split(split)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of images or None, got {limit!r}.")
    device = config.DEVICE if device is None else torch.device(device)
    data, labels, _ = _raw_split(split != "test")
    if split != "test":
        train_idx, val_idx = split_indices(len(data), val_size, seed)
        idx = np.asarray(train_idx if split == "train" else val_idx)
    else:
        idx = np.arange(len(data))
    if limit is not None:
        idx = idx[:limit]
    mean, std = normalization()
    x = torch.from_numpy(data[idx]).to(device).permute(0, 3, 1, 2).to(dtype).div_(255.0)
    m = torch.tensor(mean, dtype=dtype, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=dtype, device=device).view(1, -1, 1, 1)
    x = x.sub_(m).div_(s).contiguous()
    return x, torch.from_numpy(labels[idx]).to(device)


class TensorLoader:
    """Batches of in-memory tensors with DataLoader's semantics.

    ``len(loader)`` is ceil(N / batch_size) (floor with ``drop_last``); the last batch is partial unless
    ``drop_last``; with ``shuffle`` every pass draws a new permutation from a CPU ``torch.Generator``
    seeded once with ``seed`` (``loader.generator``, as DataLoader's ``generator=`` argument), so a run is
    reproducible and its state can be checkpointed.  Indexing happens on the tensors' device.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):  # fmt: skip
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        self.x, self.y = x, y
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    @property
    def dataset(self) -> torch.utils.data.TensorDataset:
        return torch.utils.data.TensorDataset(self.x, self.y)

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).to(self.x.device)
        else:
            order = None
        for b in range(len(self)):
            lo, hi = b * self.batch_size, min(n, (b + 1) * self.batch_size)
            if order is None:
                yield self.x[lo:hi], self.y[lo:hi]
            else:
                i = order[lo:hi]
                yield self.x[i], self.y[i]


def denormalize(x: torch.Tensor, mean=None, std=None) -> torch.Tensor:
    """Undo Normalize: ``x * std + mean`` per channel, clamped to [0, 1] (for showing images)."""
    if mean is None or std is None:
        mean, std = normalization()
    shape = (1, -1, 1, 1) if x.dim() == 4 else (-1, 1, 1)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(shape)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(shape)
    return (x * s + m).clamp(0, 1)


# ---------------------------------------------------------------------------------------------------
# Synthetic CIFAR-format data
# ---------------------------------------------------------------------------------------------------
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

    z = a * pattern[class, prototype, translation] + sum_k c_k nuisance_k + NOISE * eps, with
    a ~ U(AMPLITUDE), c_k ~ N(0, NUISANCE^2) over 16 shared smooth patterns, eps ~ N(0, I) per pixel;
    pixel = clip(120 + 40 z, 0, 255) (mean about 0.47, std about 0.28 of the range, like CIFAR-10).
    The class signal is weak against nuisance and noise: the seed model learns it well above chance
    (10%) but far from perfectly (about 50% from 10,000 images, 60-70% from 45,000, in 5 epochs).
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
    z *= 40.0
    z += 120.0
    pixels = np.clip(z, 0, 255, out=z).astype(np.uint8)
    return pixels, labels.astype(np.int64)


def write_synthetic_cifar10(root: Path | str, n_train: int = 50_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """Write a synthetic data set in the official CIFAR-10 python format under ``root/cifar-10-batches-py``.

    Five pickled ``data_batch_i`` (dicts with ``batch_label``, ``labels``, ``data`` (n, 3072) uint8 with
    the R, G, B planes of each 32 x 32 image in row order, ``filenames``), one ``test_batch`` and
    ``batches.meta`` (``label_names``, ``num_cases_per_batch``, ``num_vis`` and a ``synthetic`` record).
    Written to a temporary folder and renamed into place, so an interrupted run leaves nothing half done.
    Returns ``root``.
    """
    if n_train < 5 or n_train % 5 or n_test < 1:
        raise ValueError(f"n_train must be a positive multiple of 5 and n_test positive, got {n_train}, {n_test}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    world = _synthetic_world(seed)
    tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=root))
    try:
        per = n_train // 5
        batches = [(f"training batch {i + 1} of 5", name, per) for i, name in enumerate(TRAIN_FILES)]
        batches.append(("testing batch 1 of 1", TEST_FILES[0], n_test))
        for stream, (label, name, count) in enumerate(batches, start=1):
            x, y = synthetic_images(count, seed, stream, world)  # one file at a time: bounded memory
            entry = {"batch_label": label, "labels": y.tolist(), "data": x,
                     "filenames": [f"synthetic_{name}_{i:05d}.png" for i in range(len(y))]}  # fmt: skip
            with open(tmp / name, "wb") as f:
                pickle.dump(entry, f, protocol=4)
        meta = {"label_names": list(SYNTHETIC_CLASSES), "num_cases_per_batch": per, "num_vis": 3072,
                "synthetic": {"version": SYNTHETIC_VERSION, "seed": seed, "n_train": n_train, "n_test": n_test}}  # fmt: skip
        with open(tmp / META_FILE, "wb") as f:
            pickle.dump(meta, f, protocol=4)
        target = root / FOLDER
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: keep its copy
            if not _synthetic_matches(root, n_train, n_test, seed):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _synthetic_matches(root: Path, n_train: int, n_test: int, seed: int) -> bool:
    folder = Path(root) / FOLDER
    if not all((folder / n).is_file() for n in MD5):
        return False
    try:
        with open(folder / META_FILE, "rb") as f:
            info = pickle.load(f, encoding="latin1").get("synthetic")
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
        return False
    want = {"version": SYNTHETIC_VERSION, "seed": seed, "n_train": n_train, "n_test": n_test}
    return info == want


def synthetic_root() -> Path:
    """``<LECTURE_DATA_DIR>/synthetic``: generated data never lands next to a real download."""
    return config.data_dir() / "synthetic"


def ensure_synthetic(n_train: int = 50_000, n_test: int = 10_000, seed: int = 0) -> Path:
    """The root of the synthetic data set, generated once (about ten seconds) and reused afterwards."""
    root = synthetic_root()
    if not _synthetic_matches(root, n_train, n_test, seed):
        write_synthetic_cifar10(root, n_train, n_test, seed)
    return root
