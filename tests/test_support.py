"""The support ranges pyproject.toml declares are the ones tested: every lower bound is a
version the oldest stage installs (requirements-oldest.txt), no dependency has an upper bound
or a pin, torch has no bound at all (an install never replaces a runtime's torch), the
bounds admit what Colab ships, and ruff and mypy check against requires-python's floor."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
# What a Colab runtime ships (pip list in a CPU runtime), and the Python it runs.
COLAB = {
    "python": "3.12",
    "numpy": "2.0.2",
    "pandas": "2.2.2",
    "matplotlib": "3.10.0",
    "ipywidgets": "7.7.1",
    "ipython": "7.34.0",
}
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)(?:>=([0-9][0-9.]*))?$")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _bounds() -> dict[str, str | None]:
    """Every dependency of the core and the extras: name -> lower bound (None: unbounded)."""
    out: dict[str, str | None] = {}
    for spec in PROJECT["dependencies"] + [
        s for extra in PROJECT["optional-dependencies"].values() for s in extra
    ]:
        match = REQUIREMENT.match(spec.replace(" ", ""))
        assert match, f"{spec!r}: a dependency takes a lower bound (>=) at most"
        name, low = match.group(1).lower(), match.group(2)
        assert out.get(name, low) == low, f"{name} is bounded twice differently"
        out[name] = low
    return out


def _oldest_pins() -> dict[str, str]:
    lines = (ROOT / "requirements-oldest.txt").read_text().splitlines()
    pins = [line.split("#")[0].strip() for line in lines]
    return {p.split("==")[0].lower(): p.split("==")[1] for p in pins if "==" in p}


def test_every_lower_bound_is_what_the_oldest_stage_installs():
    pins = _oldest_pins()
    for name, low in _bounds().items():
        if low is not None:
            tested = pins.get(name)
            assert tested == low, f"{name}>={low} but the oldest stage tests {tested}"
    for name in ("numpy", "pandas", "matplotlib", "ipywidgets", "ipython"):
        assert _bounds()[name], f"{name} needs a tested lower bound"


def test_torch_is_never_bounded_and_the_oldest_stage_uses_the_projects_torch():
    assert _bounds()["torch"] is None, "a torch bound could make Colab reinstall its torch"
    pinned = (ROOT / "requirements.txt").read_text()
    assert f"torch=={_oldest_pins()['torch']}" in pinned


@pytest.mark.parametrize("name", sorted(COLAB))
def test_the_bounds_admit_what_colab_ships(name):
    if name == "python":
        floor = PROJECT["requires-python"].removeprefix(">=")
    else:
        floor = _bounds()[name] or "0"
    assert _version(floor) <= _version(COLAB[name]), f"{name}>={floor} excludes Colab's"


def test_lint_and_type_check_target_the_python_floor():
    floor = PROJECT["requires-python"].removeprefix(">=")
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + floor.replace(".", "")
    assert PYPROJECT["tool"]["mypy"]["python_version"] == floor
    first = (ROOT / "requirements-oldest.txt").read_text()
    assert f"Python {floor}" in first, "the oldest stage runs on the floor's Python"
