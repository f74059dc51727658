"""environment.yml (conda) installs what `make lab` installs, with pyproject.toml's lower bounds, and nothing
a student does not need (no test, site or grading tools)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
ENV = yaml.safe_load((ROOT / "environment.yml").read_text())
# conda-forge's name where it differs from PyPI's
CONDA_NAME = {"torch": "pytorch"}
REQ = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$")


def _parse(spec: str) -> tuple[str, str]:
    name, _extras, bound = REQ.match(spec).groups()
    return name.lower().replace("_", "-"), bound.replace(" ", "")


def _conda() -> dict[str, str]:
    return dict(_parse(d) for d in ENV["dependencies"] if isinstance(d, str))


def _pip_lines() -> list[str]:
    return next(d["pip"] for d in ENV["dependencies"] if isinstance(d, dict) and "pip" in d)


def _student_requirements() -> dict[str, str]:
    specs = PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["lab"]
    return dict(_parse(s) for s in specs)


def test_every_student_requirement_is_in_the_conda_env_with_the_same_lower_bound():
    conda = _conda()
    for name, bound in _student_requirements().items():
        conda_name = CONDA_NAME.get(name, name)
        assert conda_name in conda, f"environment.yml lacks {conda_name} (pyproject: {name}{bound})"
        assert conda[conda_name] == bound, f"{conda_name}: environment.yml has {conda[conda_name]!r}, pyproject {bound!r}"


def test_python_bound_matches_requires_python():
    assert _conda()["python"] == PYPROJECT["requires-python"]


def test_the_conda_env_installs_nothing_else():
    expected = {CONDA_NAME.get(n, n) for n in _student_requirements()} | {"python", "pip"}
    assert set(_conda()) == expected


def test_no_test_site_or_grading_tools_in_a_students_env():
    extras = set(PYPROJECT["optional-dependencies"]) - {"lab"}
    tools = {_parse(s)[0] for extra in extras for s in PYPROJECT["optional-dependencies"][extra]}
    tools -= {PYPROJECT["name"]}
    assert not tools & set(_conda()), tools & set(_conda())
    pip = _pip_lines()
    assert pip == ["-e ."], f"the package itself, without extras: {pip}"
