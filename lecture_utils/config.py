"""Run-time settings, read from the environment in one place (every notebook; taught nowhere).

| variable                  | meaning                                                            | default          |
|---------------------------|--------------------------------------------------------------------|------------------|
| ``LECTURE_QUICK=1``       | quick mode for CI: small data, few steps (the banner says so)      | off              |
| ``LECTURE_DATA_DIR``      | folder that holds ``cifar-10-batches-py/``                         | ``<repo>/data``, or ``./data`` when installed |
| ``LECTURE_SYNTHETIC=1``   | generate and use synthetic CIFAR-format data (no download)         | off              |
| ``LECTURE_VERIFY_DATA=0`` | accept CIFAR-format files whose checksums differ from the release  | verify           |
| ``LECTURE_DEVICE``        | force a device (``cpu``, ``cuda``, ``mps``)                        | best available   |
| ``LECTURE_TENSORBOARD=1`` | open TensorBoard inside notebook 07 (always on in Colab)           | off              |

Every setting is read when a function is called, never frozen at import, so a test can change the
environment with ``monkeypatch.setenv`` and see the effect at once.
"""

from __future__ import annotations

import os
import random
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

#: Root of the repository checkout (``None`` when the package was installed without one, as in Colab).
REPO_ROOT: Path | None = (
    Path(__file__).resolve().parent.parent
    if (Path(__file__).resolve().parent.parent / "pyproject.toml").is_file()
    else None
)


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={raw!r} is not understood: use {name}=1 to switch it on or {name}=0 to switch it off.")


def quick() -> bool:
    """True in quick mode (``LECTURE_QUICK=1``): small data and few steps, for CI."""
    return _flag("LECTURE_QUICK", False)


def synthetic() -> bool:
    """True when the notebooks use generated CIFAR-format data (``LECTURE_SYNTHETIC=1``)."""
    return _flag("LECTURE_SYNTHETIC", False)


def verify_data() -> bool:
    """False when ``LECTURE_VERIFY_DATA=0``: files whose checksums differ from the release are accepted."""
    return _flag("LECTURE_VERIFY_DATA", True)


def tensorboard() -> bool:
    """True when notebook 07 should open TensorBoard inline: ``LECTURE_TENSORBOARD=1``, or inside Colab."""
    return _flag("LECTURE_TENSORBOARD", False) or "google.colab" in sys.modules


def data_dir() -> Path:
    """Folder holding ``cifar-10-batches-py/``: ``LECTURE_DATA_DIR``, else ``<repo>/data`` in a checkout,
    else ``./data`` (an installed package, as in Colab)."""
    raw = os.environ.get("LECTURE_DATA_DIR")
    if raw:
        return Path(raw).expanduser().resolve()
    if REPO_ROOT is not None:
        return REPO_ROOT / "data"
    return Path.cwd() / "data"


def pick(quick_value, full_value):
    """``quick_value`` in quick mode, ``full_value`` otherwise: ``steps = pick(50, 2000)``."""
    return quick_value if quick() else full_value


def device() -> torch.device:
    """The device experiments run on: ``LECTURE_DEVICE`` if set, else cuda, else mps, else cpu.
    Read at every call (set ``LECTURE_DEVICE`` and the next call sees it)."""
    forced = os.environ.get("LECTURE_DEVICE")
    if forced:
        valid = ("cpu", "cuda", "mps")
        if forced.split(":")[0] not in valid:
            raise ValueError(f"LECTURE_DEVICE={forced!r} is not a device: use one of {', '.join(valid)}.")
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded the same.

    Pass the returned generator to samplers when a cell must be reproducible on its own.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def rng(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for one named random ``stream`` of an experiment: ``rng(0, "weights")`` and
    ``rng(0, "inputs")`` are independent, although both come from seed 0.  (Drawing weights and inputs from
    two generators seeded with the *same* number replays one stream twice and correlates them.)"""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(stream.encode()))


def one_thread() -> int:
    """Compute with one torch thread (intra-op) from now on; return the number used before, for
    ``torch.set_num_threads(previous)`` to go back.  The one place that forces a single CPU thread: the notebooks
    (:func:`small_layer_threads`), the tests of small networks and the grader call it."""
    previous = torch.get_num_threads()
    if previous != 1:
        torch.set_num_threads(1)
    return previous


def small_layer_threads(dev: torch.device | str | None = None) -> int:
    """On a CPU, compute with one torch thread and return the number now in use.

    The lecture's networks are narrow (10-1000 units): a step is a few thousand tiny operations whose cost
    is per-operation overhead, and a second thread adds synchronisation without speed (on a shared
    2-core machine it can make a step several times slower).  On a GPU nothing changes."""
    if torch.device(dev if dev is not None else device()).type == "cpu":
        one_thread()
    return torch.get_num_threads()


def banner(*extra: str) -> str:
    """The lines that open every notebook: the mode, the data setting, the device, then ``extra``
    (notebooks that read CIFAR-10 pass ``lecture_utils.data.source_line()``)."""
    lines = []
    if quick():
        lines.append(
            "QUICK MODE (LECTURE_QUICK=1): small data and few steps so that CI runs fast; "
            "numbers and curves are rougher than in the full lecture."
        )
    else:
        lines.append("Full mode.")
    if synthetic():
        lines.append(
            "SYNTHETIC DATA (LECTURE_SYNTHETIC=1): the images are generated CIFAR-format data, "
            "not CIFAR-10; accuracies and statistics are NOT CIFAR-10's."
        )
    lines += list(extra)
    lines.append(f"Device: {device()}.")
    return "\n".join(lines)


def show_banner(*extra: str) -> None:
    """Print :func:`banner` framed so that it stands out at the top of a notebook."""
    text = banner(*extra)
    width = min(100, max(len(line) for line in text.splitlines()))
    print("=" * width)
    print(text)
    print("=" * width)
