"""The limits of one submission's run, each defined once: its default, its unit, what it limits, and what a
student reads when their code runs into it.

Everything else is derived from ``LIMITS``: the ``Limits`` record, the keys an assignment's ``ASSIGNMENT CONFIG``
may set (the field names), the grader's command-line options and their help (``add_arguments``), the table in
``assignments/README.md`` (``table``), the kernel's share that the sandbox side applies (``rlimits`` and
``apply_rlimits``) and the students' messages (``stopped`` and ``hit``).

Both ends import this module: the grader to enforce the deadlines and the memory total, the runner (inside the
sandbox) to lower its own resource limits before any of the notebook's code runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

GiB = 1 << 30
MiB = 1 << 20


@dataclass(frozen=True)
class Limit:
    """One limit: ``name`` (field, config key and ``--name-with-dashes`` option), default, unit, description."""

    name: str
    default: float
    unit: str  # "s", "bytes", "count"
    what: str  # what it limits, for --help and the README
    option_unit: str = ""  # the command line's unit when it differs ("GiB" for bytes)


LIMITS: tuple[Limit, ...] = (
    Limit("cell_timeout", 60.0, "s", "seconds one code cell of the notebook may run"),
    Limit("test_timeout", 60.0, "s", "seconds one test's call part may run"),
    Limit("total_timeout", 900.0, "s", "seconds for the whole submission, re-runs included; also its CPU time"),
    Limit("startup_timeout", 120.0, "s",
          "seconds the sandbox may take to start (Python, IPython, torch): past it, grading failed (not a score)"),
    Limit("memory", 3 * GiB, "bytes", "memory of all the submission's processes together, and of each one",
          option_unit="GiB"),
    Limit("processes", 64, "count", "processes and threads the submission may run at once"),
    Limit("file_size", 64 * MiB, "bytes", "size of the largest file the submission may write", option_unit="MiB"),
    Limit("tmp_size", 256 * MiB, "bytes", "size of the submission's private /tmp (bubblewrap)", option_unit="MiB"),
)
_BY_NAME = {lim.name: lim for lim in LIMITS}
_SCALE = {"GiB": GiB, "MiB": MiB, "": 1}


@dataclass(frozen=True)
class Limits:
    """The limits of one submission's sandbox (seconds, bytes, counts); defaults from ``LIMITS``."""

    cell_timeout: float = _BY_NAME["cell_timeout"].default
    test_timeout: float = _BY_NAME["test_timeout"].default
    total_timeout: float = _BY_NAME["total_timeout"].default
    startup_timeout: float = _BY_NAME["startup_timeout"].default
    memory: int = int(_BY_NAME["memory"].default)
    processes: int = int(_BY_NAME["processes"].default)
    file_size: int = int(_BY_NAME["file_size"].default)
    tmp_size: int = int(_BY_NAME["tmp_size"].default)

    @classmethod
    def from_config(cls, config: dict | None = None, **overrides) -> Limits:
        """The defaults, then an assignment's ``ASSIGNMENT CONFIG`` values, then ``overrides`` (None = not set).
        Raises ValueError for a name that is not a limit or a value that is not a positive number."""
        values = {}
        for source in (config or {}, overrides):
            for key, value in source.items():
                if key not in _BY_NAME:
                    if source is overrides:
                        raise ValueError(f"{key!r} is not a limit: choose from {', '.join(_BY_NAME)}")
                    continue  # other settings of the config (name, rules)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                    raise ValueError(f"limit {key} must be a positive number, got {value!r}")
                values[key] = int(value) if _BY_NAME[key].unit != "s" else float(value)
        return cls(**values)

    def rlimits(self) -> dict[str, int]:
        """What the kernel enforces inside the sandbox, per process: data size (memory), processes, file size,
        CPU seconds (the total timeout: a submission cannot use more CPU than wall time)."""
        return {"data": self.memory, "nproc": self.processes, "fsize": self.file_size,
                "cpu": int(self.total_timeout) + 1}


assert [f.name for f in dataclasses.fields(Limits)] == [lim.name for lim in LIMITS]


def option(lim: Limit) -> str:
    return "--" + lim.name.replace("_", "-")


def shown(lim: Limit, value: float) -> str:
    """``value`` in the limit's command-line unit: ``3 GiB``, ``60 s``, ``64``."""
    if lim.option_unit:
        return f"{value / _SCALE[lim.option_unit]:g} {lim.option_unit}"
    return f"{value:g} s" if lim.unit == "s" else f"{value:g}"


def add_arguments(parser) -> None:
    """One ``--name`` option per limit, its help the limit's description and default."""
    for lim in LIMITS:
        unit = lim.option_unit or ("seconds" if lim.unit == "s" else "")
        parser.add_argument(option(lim), type=float, metavar=unit.upper() or "N",
                            help=f"{lim.what} (default: the assignment's, else {shown(lim, lim.default)})")


def from_arguments(args) -> dict:
    """The limits set on the command line (``add_arguments``), in the record's units."""
    out = {}
    for lim in LIMITS:
        value = getattr(args, lim.name, None)
        if value is not None:
            out[lim.name] = value * _SCALE[lim.option_unit]
    return out


def table() -> str:
    """The limits as a Markdown table (assignments/README.md shows it; a test keeps them equal)."""
    rows = ["| limit | option | default | what it limits |", "|---|---|---|---|"]
    rows += [f"| `{lim.name}` | `{option(lim)}` | {shown(lim, lim.default)} | {lim.what} |" for lim in LIMITS]
    return "\n".join(rows)


# -- what a student reads ------------------------------------------------------------------------------------
#: Why the grader stopped a step (the sandbox session's verdict); see ``stopped``.
STOPS = ("timeout", "total", "memory", "output", "cpu", "killed", "ended")
#: Limits the notebook's own process runs into (an error inside it, classified by ``protocol.limit_of``).
HITS = {"memory": "memory", "process": "processes", "disk": "file_size"}


def stopped(stop: str, limits: Limits, step: str, detail: str = "") -> str:
    """What a student reads when the grader stopped one of their steps (``step``: "cell" or "test")."""
    if stop == "timeout":
        limit = limits.cell_timeout if step == "cell" else limits.test_timeout
        return f"ran longer than {limit:g} s and was stopped (an endless loop?)"
    if stop == "total":
        return f"was stopped: the submission used up its {limits.total_timeout:g} s"
    if stop == "memory":
        return f"used more than {limits.memory / GiB:g} GiB of memory and was stopped"
    if stop == "output":
        return "wrote too much to the grader's channel and was stopped"
    if stop == "cpu":
        return f"used up its {limits.total_timeout:g} s of CPU time and was killed"
    if stop == "killed":
        return f"was killed ({detail})"
    if stop == "ended":
        return f"ended the notebook's process ({detail}: os._exit, a crash?)"
    raise ValueError(f"unknown stop {stop!r}")


def hit(kind: str) -> str:
    """The words for a limit the notebook's process ran into: ``hit the memory limit``."""
    return f"hit the {kind} limit"


# -- the sandbox side -------------------------------------------------------------------------------------------
def apply_rlimits(rlimits: dict) -> None:
    """Lower this process's resource limits (its children inherit them; without privileges they cannot be
    raised again).  CPU: SIGXCPU at the limit, SIGKILL 5 s later.  No core files."""
    import resource

    names = {"data": resource.RLIMIT_DATA, "nproc": resource.RLIMIT_NPROC, "fsize": resource.RLIMIT_FSIZE,
             "cpu": resource.RLIMIT_CPU}
    for key, value in rlimits.items():
        soft = int(value)
        hard = soft + 5 if key == "cpu" else soft
        resource.setrlimit(names[key], (soft, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
