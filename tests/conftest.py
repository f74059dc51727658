"""Shared fixtures of the unit tests.

* ``small_cifar``: ONE small synthetic CIFAR-format data set per session (1,000 training and 200 test images,
  about a second to write instead of the ten seconds of the full 60,000), written with
  :func:`lecture_utils.synthetic.write_synthetic_cifar10` into a temporary folder.
* ``cifar_files``: that set used as "CIFAR-format files that differ from the release" (LECTURE_SYNTHETIC=0,
  LECTURE_VERIFY_DATA=0, LECTURE_DATA_DIR pointing at it, 100 validation images instead of 5,000).
* ``synthetic_mode``: the same set used through LECTURE_SYNTHETIC=1 (the generator's full size patched down
  to it, so nothing is regenerated).
* ``fresh_cifar``: a private copy of the small set, for tests that corrupt files.
* ``forker``: ONE helper process per session that has imported torch and lecture_utils and forks, on request,
  a worker running a given piece of code, which a test can then SIGKILL (a crash for real, without paying for a
  torch import per crash).

Every test that touches data sets LECTURE_DATA_DIR to a temporary folder: the repository's data/ is never used.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # before anything imports pyplot: no window, figures are drawn in memory

from lecture_utils import data, synthetic  # noqa: E402

N_TRAIN, N_TEST, N_VAL = 1000, 200, 100
ROOT = Path(__file__).resolve().parent.parent

if os.environ.get("PYTEST_XDIST_WORKER"):  # `make test`: two workers on two cores, one torch thread each
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_cifar(tmp_path_factory):
    """Root of a small synthetic set: ``root/cifar-10-batches-py`` and, for synthetic mode, the same files under
    ``root/synthetic/cifar-10-batches-py``.  Read-only by convention: copy it (``fresh_cifar``) to damage it."""
    root = tmp_path_factory.mktemp("cifar")
    synthetic.write_synthetic_cifar10(root, n_train=N_TRAIN, n_test=N_TEST, seed=0)
    shutil.copytree(root / synthetic.FOLDER, root / "synthetic" / synthetic.FOLDER)
    return root


@pytest.fixture
def clean_env(monkeypatch):
    """No lecture variable inherited from the shell (``make test`` sets LECTURE_QUICK and LECTURE_SYNTHETIC)."""
    for name in ("LECTURE_QUICK", "LECTURE_SYNTHETIC", "LECTURE_VERIFY_DATA", "LECTURE_DEVICE",
                 "LECTURE_DATA_DIR", "LECTURE_TENSORBOARD"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LECTURE_DEVICE", "cpu")
    return monkeypatch


@pytest.fixture
def cifar_files(small_cifar, clean_env):
    """The small set as non-official CIFAR-format files, accepted with LECTURE_VERIFY_DATA=0."""
    clean_env.setenv("LECTURE_DATA_DIR", str(small_cifar))
    clean_env.setenv("LECTURE_SYNTHETIC", "0")
    clean_env.setenv("LECTURE_VERIFY_DATA", "0")
    clean_env.setattr(data, "VAL_SIZE", N_VAL)
    return small_cifar


@pytest.fixture
def synthetic_mode(small_cifar, clean_env):
    """LECTURE_SYNTHETIC=1 on the small set: the generator's size is patched to it, so it is reused as it is."""
    clean_env.setenv("LECTURE_DATA_DIR", str(small_cifar))
    clean_env.setenv("LECTURE_SYNTHETIC", "1")
    clean_env.setattr(synthetic, "SIZE", (N_TRAIN, N_TEST))
    clean_env.setattr(synthetic.ensure_synthetic, "__defaults__", (N_TRAIN, N_TEST, 0))
    clean_env.setattr(data, "VAL_SIZE", N_VAL)
    return small_cifar


@pytest.fixture
def fresh_cifar(small_cifar, tmp_path, clean_env):
    """A private, writable copy of the small set under a temporary LECTURE_DATA_DIR (verification on)."""
    shutil.copytree(small_cifar / synthetic.FOLDER, tmp_path / synthetic.FOLDER)
    clean_env.setenv("LECTURE_DATA_DIR", str(tmp_path))
    clean_env.setenv("LECTURE_SYNTHETIC", "0")
    clean_env.setattr(data, "VAL_SIZE", N_VAL)
    return tmp_path / synthetic.FOLDER


_FORK_SERVER = r"""
import json, os, sys, traceback
import torch
torch.set_num_threads(1)  # no OpenMP pool before fork(): the forked workers compute on one thread
import lecture_utils.checkpoints, lecture_utils.synthetic  # imported once, inherited by every worker
for line in sys.stdin:
    code = json.loads(line)
    pid = os.fork()
    if pid == 0:  # the worker: runs the code; its output must not reach the protocol's pipe
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        try:
            exec(code, {"__name__": "__worker__"})
        except BaseException:
            traceback.print_exc()
            os._exit(1)
        os._exit(0)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)  # reap it: a killed but unreaped worker is a zombie that still "exists"
    print(status, flush=True)
"""


class Forker:
    """``pid = forker.start(code)`` runs ``code`` in a fresh worker process; ``forker.kill_and_reap()`` kills it with
    SIGKILL and returns its wait status (call it in a ``finally``).  One worker at a time."""

    def __init__(self):
        self.server = subprocess.Popen([sys.executable, "-c", _FORK_SERVER], cwd=ROOT, text=True,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip

    worker: int | None = None

    def start(self, code: str) -> int:
        self.server.stdin.write(json.dumps(code) + "\n")
        self.server.stdin.flush()
        line = self.server.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server died (exit status {self.server.wait()})")
        self.worker = int(line)
        return self.worker

    def kill_and_reap(self) -> int:
        """SIGKILL the worker (if it still runs) and return its wait status once the server has reaped it."""
        try:
            os.kill(self.worker, signal.SIGKILL)
        except ProcessLookupError:
            pass
        status = int(self.server.stdout.readline())
        self.worker = None
        return status

    def close(self) -> None:
        if self.worker is not None:  # a test failed before it killed its worker: do not leave it running
            self.kill_and_reap()
        self.server.stdin.close()
        self.server.kill()
        self.server.wait()


_forker: Forker | None = None


#: Under pytest-xdist (`make test`: ``-n 2 --dist loadgroup``) these modules run on one worker, one test after
#: the other, as without xdist: their sandboxes share user ids and limits (lecture_grading.grader.sandbox), and their
#: tests build and grade the same assignments.
SERIAL_GROUPS = {"grading": {"test_grading_attacks.py", "test_sandbox.py", "test_assignments.py",
                             "test_lecture_grading.py", "test_gradescope.py", "test_grading_faults.py"}}  # fmt: skip
#: Seconds the slowest units of work took (`make test`'s --durations on 2 cores, rounded), to start the longest
#: first; only the order depends on them.  A unit (see unit_of) is a module, a group of SERIAL_GROUPS, or one
#: notebook of tests/test_fresh_install.py.
SLOW_UNITS = {
    "grading": 120, "08_deep_networks_training": 45, "10_residual_networks": 40, "fresh-assignments": 35,
    "09_thousand_layers": 31, "05_initialization_at_depth": 30, "test_outputs.py": 30, "07_batchnorm_training": 28,
    "test_setup.py": 22, "test_site.py": 20, "04_xavier_and_he": 18, "01_exploding_vanishing_products": 16,
    "02_variance_of_sums_and_products": 15, "06_cifar10_pipeline": 15, "03_relu_halving_and_gains": 14,
}  # fmt: skip


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its tests run together, in order, on one worker (so module-scoped
    fixtures are made once).  Each notebook of test_fresh_install.py is a unit of its own; the assignment checks
    there share one (and the assignments they build); the grading modules share one (SERIAL_GROUPS)."""
    path, _, name = nodeid.partition("::")
    module = path.rsplit("/", 1)[-1]
    if module == "test_fresh_install.py":
        if name.startswith("test_notebook_runs") and name.endswith("]"):
            return Path(name[name.index("[") + 1 : -1]).stem
        if name.startswith("test_assignment_checks"):
            return "fresh-assignments"
    for group, modules in SERIAL_GROUPS.items():
        if module in modules:
            return group
    return module if module in SLOW_UNITS else path


if importlib.util.find_spec("xdist") is not None:  # a hook of pytest-xdist's: unknown to pytest without it

    def pytest_xdist_make_scheduler(config, log):
        """``--dist loadgroup``, with the units of :func:`unit_of` as its groups, handed out in collection order.

        (pytest-xdist's own loadgroup reads its groups from a suffix it writes into each test's node id; pytest 9.2
        no longer takes that write, and xdist then silently hands out tests one by one: pytest-dev/pytest-xdist#1386.)
        """
        if config.getoption("dist") != "loadgroup":
            return None
        from xdist.scheduler import LoadScopeScheduling

        class UnitScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return unit_of(nodeid)

        return UnitScheduling(config, log)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the xdist_group marks
def pytest_collection_modifyitems(config, items):
    """Start the fork server as soon as it is known to be needed, and run the tests that use it last: its torch
    import then overlaps the other tests (on a 2-core machine the unit tests mostly use one).

    Under ``--dist loadgroup``, put the tests of each unit of work (unit_of) together and the longest units first,
    so that the two workers are busy until the end."""
    global _forker
    uses = [item for item in items if "forker" in getattr(item, "fixturenames", ())]
    if uses:
        items[:] = [item for item in items if item not in uses] + uses
        if _forker is None:
            _forker = Forker()
    # In an xdist worker, --dist reads "no" and xdist's own `loadgroup` option says whether groups count.
    if not (getattr(config.option, "loadgroup", False) or config.getoption("dist", "no") == "loadgroup"):
        return
    units: dict[str, list] = {}
    for item in items:
        units.setdefault(unit_of(item.nodeid), []).append(item)
    order = sorted(units, key=lambda name: -SLOW_UNITS.get(name, 0))  # stable: the others as collected
    items[:] = [item for name in order for item in units[name]]


def pytest_sessionfinish(session):
    if _forker is not None:
        _forker.close()


@pytest.fixture(scope="session")
def forker():
    global _forker
    if _forker is None:
        _forker = Forker()
    return _forker
