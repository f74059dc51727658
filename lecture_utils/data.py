"""CIFAR-10 the PyTorch way, read safely, and a fast in-memory path (notebooks 06-10).

The two ways to the same batches
--------------------------------
The PyTorch way, as students meet it (one image at a time through PIL and the transforms)::

    ds = cifar10("train")                       # a torchvision CIFAR10 + Compose([ToTensor(), Normalize])
    loader = DataLoader(ds, batch_size=64, shuffle=True)

The fast path used by the experiments (the whole split decoded once, normalized, on the device)::

    x, y = load_split_tensors("train")          # 'train' | 'val' | 'test'
    for xb, yb in TensorLoader(x, y, batch_size=64, shuffle=True, seed=0):
        ...

Both read the same files, use the same seeded ``random_split`` of the 50,000 training images into
45,000 for training and 5,000 for validation, and give the same numbers (``ToTensor`` is ``x / 255``,
``Normalize`` is ``(x - mean) / std``).

Where the data come from
------------------------
* ``LECTURE_SYNTHETIC=1``: generated CIFAR-format files (:mod:`lecture_utils.synthetic`), never mixed with
  a real download.  They are learnable but are NOT CIFAR-10.
* otherwise ``<LECTURE_DATA_DIR>/cifar-10-batches-py/``, downloaded by torchvision if missing.  The files
  must match the official release (md5) unless ``LECTURE_VERIFY_DATA=0``; :func:`source_line` says which
  files are in use, for the notebook's banner.
* no data and no network: :class:`DataUnavailableError`, whose message says what to do.

The files are pickles.  They are read with a restricted unpickler that accepts only what the CIFAR format
holds (dicts, lists, strings, numbers, NumPy arrays), so a file that differs from the release cannot run
code; every batch is checked (shape, dtype, labels 0-9) and a bad one is named in the error.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import pickle
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from . import config, synthetic
from .synthetic import CIFAR10_CLASSES, FOLDER, META_FILE, TEST_FILES, TRAIN_FILES

#: Per-channel mean and std of the 50,000 CIFAR-10 training images (RGB, pixel values in [0, 1]).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
#: Official md5 sums (the ones torchvision.datasets.CIFAR10 checks; tests/test_data.py compares them).
MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f", "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751", "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb", "test_batch": "40351d587109b95175f43aff81a1287e",
    META_FILE: "5ff9c542aee3614f3951f8cda6e48888",
}  # fmt: skip
SPLITS = ("train", "val", "test")
#: Images held out of the 50,000 training images for validation (seeded random_split).
VAL_SIZE = 5000
__all__ = ["CIFAR10_CLASSES", "FOLDER"]  # re-exported from synthetic; the rest is public by name


class DataUnavailableError(RuntimeError):
    """The data cannot be found, fetched, read or trusted; the message says what to do.

    In a notebook it is shown as its message only (IPython's ``_render_traceback_`` hook), not as a
    wall of traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython calls this instead of printing a traceback
        return [f"{type(self).__name__}: {self}"]


def _what_to_do(folder: Path) -> str:
    return (
        "To fix it, either\n"
        "  * put the official CIFAR-10 python version there: on a machine with internet download "
        "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it, so that "
        f"{folder}/data_batch_1 ... data_batch_5, test_batch and batches.meta exist; or point LECTURE_DATA_DIR "
        f"at the folder that holds {FOLDER}/ (in a notebook: %env LECTURE_DATA_DIR=/path/to/folder, then "
        "restart the kernel);\n"
        "  * or run offline on generated CIFAR-format data: LECTURE_SYNTHETIC=1 (%env LECTURE_SYNTHETIC=1); "
        "the numbers are then not CIFAR-10's."
    )


# ---------------------------------------------------------------------------------------------------
# Reading CIFAR-format files safely
# ---------------------------------------------------------------------------------------------------
class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-format file holds: builtin containers and numbers, and NumPy arrays."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
        ("__builtin__", "object"), ("builtins", "object"),
    }  # fmt: skip

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of the CIFAR-10 format")
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict:
    try:
        raw = path.read_bytes()
        obj = _CifarUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except OSError as err:
        raise DataUnavailableError(f"{path} cannot be read ({type(err).__name__}: {err}). "
                                   f"{_what_to_do(path.parent)}") from None  # fmt: skip
    except Exception as err:  # truncated, not a pickle, or a pickle that wants to run code
        raise DataUnavailableError(
            f"{path} is not a CIFAR-10 python batch ({type(err).__name__}: {str(err)[:200]}). Delete it and "
            f"extract the archive again. {_what_to_do(path.parent)}"
        ) from None
    if not isinstance(obj, dict):
        raise DataUnavailableError(f"{path} holds a {type(obj).__name__}, not a CIFAR-10 batch (a dict). "
                                   f"{_what_to_do(path.parent)}")  # fmt: skip
    return obj


def read_batch(path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64) of one CIFAR-10 python batch file, checked:
    ``data`` must be uint8 of shape (N, 3072) and ``labels`` N integers in 0..9."""
    path = Path(path)
    batch = _read_pickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    problem = None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        problem = f"'data' must be a uint8 array of shape (N, 3072), got {type(data).__name__} {shape}"
    elif labels is None or len(labels) != len(data):
        problem = f"'labels' must hold one label per image ({len(data)}), got {None if labels is None else len(labels)}"
    else:
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
            problem = f"labels must be integers 0..9, got values from {labels.min()} to {labels.max()}"
    if problem:
        raise DataUnavailableError(f"{path} is not a valid CIFAR-10 batch: {problem}. Delete it and extract the "
                                   f"archive again. {_what_to_do(path.parent)}")  # fmt: skip
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels.astype(np.int64)


def read_classes(folder: Path | str) -> list[str]:
    """The class names in label order, from ``batches.meta`` (checked: 10 strings)."""
    path = Path(folder) / META_FILE
    names = _read_pickle(path).get("label_names")
    if not (isinstance(names, list) and len(names) == 10 and all(isinstance(n, str) for n in names)):
        raise DataUnavailableError(f"{path} is not a valid batches.meta: 'label_names' must be 10 names. "
                                   f"{_what_to_do(path.parent)}")  # fmt: skip
    return names


def _stamp(folder: Path) -> tuple:
    """What identifies the files' contents cheaply (name, mtime, size), for the caches."""
    try:
        return tuple((n, (folder / n).stat().st_mtime_ns, (folder / n).stat().st_size) for n in MD5)
    except OSError:
        return ()


@lru_cache(maxsize=4)
def _read_split(folder: str, train: bool, stamp: tuple) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    files = TRAIN_FILES if train else TEST_FILES
    parts = [read_batch(Path(folder) / name) for name in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return images, labels, tuple(read_classes(folder))


def raw_split(train: bool = True) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images (N, 32, 32, 3) uint8, labels (N,), class names) of the training (50,000) or test (10,000)
    files in use, read once and cached."""
    root, _ = resolve_root()
    folder = root / FOLDER
    return _read_split(str(folder), train, _stamp(folder))


def torchvision():
    """The torchvision module, or one clear error: the PyTorch-way pipeline (notebook 6) and the download need it;
    the in-memory path of the experiments does not."""
    try:
        import torchvision as tv
    except ImportError:
        raise ImportError(
            f"torchvision is not installed. Install the release that matches your torch {torch.__version__.split('+')[0]} "
            "(see the table at https://github.com/pytorch/vision#installation), e.g. pip install torchvision, or install "
            "the lecture with its [lab] extra in a fresh environment: pip install 'init-lecture[lab]'."
        ) from None
    return tv


@lru_cache(maxsize=1)
def _files_dataset_class():
    tv = torchvision()

    class CIFAR10Files(tv.datasets.CIFAR10):
        """``torchvision.datasets.CIFAR10`` over the files in use, read with the checked reader above
        (torchvision's ``__getitem__``: a PIL image and its label, through ``transform``)."""

        def __init__(self, root, train: bool = True, transform=None, target_transform=None):
            tv.datasets.vision.VisionDataset.__init__(self, str(root), transform=transform,
                                                      target_transform=target_transform)  # fmt: skip
            self.train = train
            folder = Path(root) / FOLDER
            self.data, labels, classes = _read_split(str(folder), train, _stamp(folder))
            self.targets = labels.tolist()
            self.classes = list(classes)
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return CIFAR10Files


# ---------------------------------------------------------------------------------------------------
# Which files
# ---------------------------------------------------------------------------------------------------
def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=8)
def _differing_files(folder: str, stamp: tuple) -> tuple[str, ...]:
    return tuple(name for name, md5 in MD5.items() if _md5(Path(folder) / name) != md5)


def is_official(root: Path | str) -> bool:
    """True when ``root/cifar-10-batches-py`` holds exactly the official release (all md5 sums match)."""
    folder = Path(root) / FOLDER
    if not all((folder / n).is_file() for n in MD5):
        return False
    return not _differing_files(str(folder), _stamp(folder))


def _writable_root(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise DataUnavailableError(
            f"the data folder {root} cannot be written ({type(err).__name__}: {err.strerror or err}). "
            "Set LECTURE_DATA_DIR to a folder you can write to (in a notebook: %env LECTURE_DATA_DIR=/path)."
        ) from None


def resolve_root(download: bool = True) -> tuple[Path, bool]:
    """(root holding ``cifar-10-batches-py/``, official) for the current settings.

    Synthetic mode generates the data if needed.  Otherwise missing files are downloaded by torchvision
    (``download=True``); if that fails, :class:`DataUnavailableError`.  Files whose md5 differ from the release
    are refused, before anything is unpickled, unless ``LECTURE_VERIFY_DATA=0``; then they are used and
    ``official`` is False (:func:`source_line` says so in the banner)."""
    if config.synthetic():
        root = synthetic.synthetic_root()
        if not synthetic._synthetic_matches(root, *synthetic.SIZE, 0):  # about to write: the folder must allow it
            _writable_root(root)
        return synthetic.ensure_synthetic(), False
    root = config.data_dir()
    folder = root / FOLDER
    missing = [n for n in MD5 if not (folder / n).is_file()]
    if missing:
        reason = f"{folder} lacks {', '.join(missing)}"
        if not download:
            raise DataUnavailableError(f"CIFAR-10 is not available: {reason}. {_what_to_do(folder)}")
        _writable_root(root)
        tv = torchvision()
        try:
            tv.datasets.CIFAR10(root, train=True, download=True)
        except Exception as err:  # no network, a proxy, a full disk...: one clear message instead
            raise DataUnavailableError(
                f"CIFAR-10 is not available: {reason} and the download failed ({type(err).__name__}: "
                f"{str(err)[:200]}). {_what_to_do(folder)}"
            ) from None
    differing = _differing_files(str(folder), _stamp(folder))
    if differing and config.verify_data():
        what = "generated synthetic data" if synthetic.is_synthetic(folder) else "not the official release"
        raise DataUnavailableError(
            f"The CIFAR-10 files in {folder} differ from the official release ({what}: the md5 of "
            f"{', '.join(differing)} do not match). Replace them with the official files, or set "
            "LECTURE_VERIFY_DATA=0 to use these CIFAR-format files anyway (the banner will say they are not "
            f"the official release). {_what_to_do(folder)}"
        )
    return root, not differing


def shown_path(folder: Path) -> str:
    """``folder`` as a notebook may print it: relative to ``LECTURE_DATA_DIR`` (``$LECTURE_DATA_DIR/...``) or to the
    default data folder (``data/...``), never the absolute path of someone's machine, which would end up in
    committed outputs and on the course website."""
    folder = Path(folder)
    base, name = config.data_dir(), ("$LECTURE_DATA_DIR" if os.environ.get("LECTURE_DATA_DIR") else "data")
    try:
        rest = folder.resolve().relative_to(base.resolve())
    except ValueError:
        return f".../{folder.name}"
    return f"{name}/{rest.as_posix()}" if rest.parts else name


def source_line() -> str:
    """One line for the notebook's banner: which files are in use (:func:`shown_path`), and whether they are the
    official release."""
    root, official = resolve_root()
    folder = shown_path(root / FOLDER)
    if config.synthetic():
        return f"Data: synthetic CIFAR-format images in {folder}."
    if official:
        return f"Data: CIFAR-10, the official release (md5 verified), in {folder}."
    return (f"Data: CIFAR-format files in {folder}; NOT the official release (their md5 differ, accepted because "
            "LECTURE_VERIFY_DATA=0), so statistics may differ slightly from CIFAR-10's published values.")  # fmt: skip


def cifar10_dataset(train: bool = True, transform=None, download: bool = True):
    """The whole training (50,000) or test (10,000) set as a torchvision ``CIFAR10`` dataset: the same as
    ``torchvision.datasets.CIFAR10(root=LECTURE_DATA_DIR, train=train, download=True, transform=transform)``,
    plus the synthetic and ``LECTURE_VERIFY_DATA=0`` paths of :func:`resolve_root`."""
    root, _ = resolve_root(download)
    return _files_dataset_class()(root, train=train, transform=transform)


def class_names() -> list[str]:
    """The class names of the files in use, in label order (from ``batches.meta``)."""
    return list(raw_split(False)[2])


def normalize_transform(mean=None, std=None):
    """``Compose([ToTensor(), Normalize(mean, std)])``; ``mean``/``std`` default to :func:`normalization`."""
    transforms = torchvision().transforms
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
def merge_moments(a: tuple, b: tuple) -> tuple:
    """Chan et al.'s (1979) parallel update: the (count, mean, sum of squared deviations) of the union of two parts
    from theirs, ``(n_a, m_a, M2_a)`` and ``(n_b, m_b, M2_b)`` (numbers, or tensors of per-channel values):

        delta = m_b - m_a,   m = m_a + delta n_b / n,   M2 = M2_a + M2_b + delta^2 n_a n_b / n,   n = n_a + n_b.

    The heart of :func:`channel_stats`; notebook 06's exercise asks for it."""
    (n_a, m_a, m2_a), (n_b, m_b, m2_b) = a, b
    n = n_a + n_b
    delta = m_b - m_a
    return n, m_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n)


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
        n, mean, m2 = merge_moments((n, mean, m2), (nb, mb, m2b))
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
def _computed_normalization(folder: str, stamp: tuple) -> tuple[tuple, tuple]:
    mean, std = uint8_channel_stats(_read_split(folder, True, stamp)[0])
    return tuple(mean.tolist()), tuple(std.tolist())


def normalization() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel used to normalize: the published values for the official release,
    otherwise computed (exactly, streaming) over the 50,000 training images of the files in use."""
    root, official = resolve_root()
    if official:
        return CIFAR10_MEAN, CIFAR10_STD
    folder = root / FOLDER
    return _computed_normalization(str(folder), _stamp(folder))


# ---------------------------------------------------------------------------------------------------
# The fast path: the whole split as one normalized tensor, and a shuffling batch iterator
# ---------------------------------------------------------------------------------------------------
def load_split_tensors(split: str = "train", device=None, limit: int | None = None, val_size: int | None = None,
                       seed: int = 0, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(x, y) of a whole split, decoded once: x (N, 3, 32, 32) normalized ``(x/255 - mean) / std``
    (the same numbers as ToTensor + Normalize), y (N,) int64 labels, both on ``device``
    (default :func:`lecture_utils.config.device`).

    ``split``: 'train' | 'val' | 'test' (the same seeded split as :func:`cifar10`).  ``limit`` keeps the
    first ``limit`` images of the split (already in random order for train/val), for quick runs."""
    _check_split(split)
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive number of images or None, got {limit!r}.")
    device = config.device() if device is None else torch.device(device)
    images, labels, _ = raw_split(split != "test")
    if split != "test":
        train_idx, val_idx = split_indices(len(images), val_size, seed)
        idx = np.asarray(train_idx if split == "train" else val_idx)
    else:
        idx = np.arange(len(images))
    if limit is not None:
        idx = idx[:limit]
    mean, std = normalization()
    x = torch.from_numpy(images[idx]).to(device).permute(0, 3, 1, 2).to(dtype).div_(255.0)
    m = torch.tensor(mean, dtype=dtype, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=dtype, device=device).view(1, -1, 1, 1)
    x = x.sub_(m).div_(s).contiguous()
    return x, torch.from_numpy(labels[idx]).to(device)


def tensor_data(n_train: int | None = None, n_val: int | None = None, device=None, val_size: int | None = None):
    """(x_train, y_train, x_val, y_val): the first ``n_train`` / ``n_val`` images (None: all) of the training
    and validation splits as normalized tensors on ``device`` (notebooks 08-10)."""
    x_train, y_train = load_split_tensors("train", device=device, limit=n_train, val_size=val_size)
    x_val, y_val = load_split_tensors("val", device=device, limit=n_val, val_size=val_size)
    return x_train, y_train, x_val, y_val


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
