"""Run-time settings, read from the environment in one place.

| variable               | meaning                                                        | default        |
|------------------------|----------------------------------------------------------------|----------------|
| ``LECTURE_QUICK=1``    | quick mode for CI: small data, few steps (notebooks show a banner) | off        |
| ``LECTURE_DATA_DIR``   | folder that holds ``cifar-10-batches-py/``                     | ``<repo>/data`` |
| ``LECTURE_SYNTHETIC=1``| generate and use synthetic CIFAR-format data (no download)     | off            |
| ``LECTURE_VERIFY_DATA=0`` | accept CIFAR-format files whose checksums differ (warns)    | verify         |
| ``LECTURE_DEVICE``     | force a device (``cpu``, ``cuda``, ``mps``)                     | best available |

The settings are read each time a function is called (not frozen at import), so a test can
change the environment with ``monkeypatch.setenv`` and see the effect.
"""

from __future__ import annotations

import os
import random
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
    raise ValueError(
        f"{name}={raw!r} is not understood: use {name}=1 to switch it on or {name}=0 to switch it off."
    )


def quick() -> bool:
    """True in quick mode (``LECTURE_QUICK=1``): small data and few steps, for CI."""
    return _flag("LECTURE_QUICK", False)


def synthetic() -> bool:
    """True when the notebooks use generated CIFAR-format data (``LECTURE_SYNTHETIC=1``)."""
    return _flag("LECTURE_SYNTHETIC", False)


def verify_data() -> bool:
    """False when ``LECTURE_VERIFY_DATA=0``: checksums that differ from the release only warn."""
    return _flag("LECTURE_VERIFY_DATA", True)


def data_dir() -> Path:
    """Folder holding ``cifar-10-batches-py/``: ``LECTURE_DATA_DIR``, else ``<repo>/data``, else ``./data``."""
    raw = os.environ.get("LECTURE_DATA_DIR")
    if raw:
        return Path(raw).expanduser().resolve()
    if REPO_ROOT is not None:
        return REPO_ROOT / "data"
    return Path.cwd() / "data"


def pick(quick_value, full_value):
    """``quick_value`` in quick mode, ``full_value`` otherwise: ``steps = pick(50, 2000)``."""
    return quick_value if quick() else full_value


def get_device() -> torch.device:
    """The best available device: ``LECTURE_DEVICE`` if set, else cuda, else mps, else cpu."""
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


#: The device experiments that train run on (cuda, then mps, then cpu).
DEVICE: torch.device = get_device()


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded the same.

    Pass the returned generator to samplers when a cell must be reproducible on its own.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def banner() -> str:
    """A one-paragraph banner for the top of a notebook saying which mode it runs in."""
    lines = []
    if quick():
        lines.append(
            "QUICK MODE (LECTURE_QUICK=1): small data and few steps so that CI runs fast; "
            "numbers and curves are rougher than in the full lecture."
        )
    if synthetic():
        lines.append(
            "SYNTHETIC DATA (LECTURE_SYNTHETIC=1): the images are generated CIFAR-format data, "
            "not CIFAR-10; accuracies and statistics are NOT CIFAR-10's."
        )
    if not lines:
        lines.append("Full mode on the real data.")
    lines.append(f"Device: {DEVICE}.")
    return "\n".join(lines)


def show_banner() -> None:
    """Print the banner framed so that it stands out in a notebook."""
    text = banner()
    width = min(100, max(len(line) for line in text.splitlines()))
    print("=" * width)
    print(text)
    print("=" * width)
