"""What a packager checks: the data files pyproject names exist and reach the wheel, the recipes are found
through importlib.resources (as from an installed wheel, not only from a source checkout), and the licence is
an SPDX expression with its text shipped."""
from __future__ import annotations

import json
import subprocess
import sys
import tomllib
import zipfile
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_data() -> list[tuple[str, str]]:
    return [(pkg, pattern) for pkg, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items()
            for pattern in patterns]


@pytest.mark.parametrize("pkg, pattern", _package_data())
def test_package_data_named_in_pyproject_exists(pkg, pattern):
    src = ROOT / PYPROJECT["tool"]["setuptools"]["packages"]["find"]["where"][0] / pkg.replace(".", "/")
    assert sorted(src.glob(pattern)), f"pyproject package-data {pkg}: {pattern!r} matches no file under {src}"


def test_recipes_are_found_through_importlib_resources():
    from roboact.train.recipes import builtin_recipes

    folder = resources.files("roboact.train") / "recipes"
    shipped = {p.name for p in folder.iterdir() if p.name.endswith(".json")}
    assert {"paper-metaworld.json", "roboact-sawyer-panda.json"} <= shipped
    for name in shipped:
        assert json.loads((folder / name).read_text())["name"] == name.removesuffix(".json")
    assert set(builtin_recipes()) == {n.removesuffix(".json") for n in shipped}


def test_license_is_an_spdx_expression_with_its_text():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"          # PEP 639: a string, not the deprecated {text = ...}
    for f in project["license-files"]:
        assert "Apache License" in (ROOT / f).read_text()


def test_wheel_carries_the_package_data_and_license(tmp_path):
    """Build the wheel from a copy of the sources (the checkout stays untouched) and look inside."""
    pytest.importorskip("setuptools", minversion="77", reason="building the wheel needs setuptools >= 77")
    import shutil

    src = tmp_path / "src-copy"
    for name in ("pyproject.toml", "README.md", *PYPROJECT["project"]["license-files"]):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("roboact-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    recipes = sorted((ROOT / "src/roboact/train/recipes").glob("*.json"))
    assert recipes and all(f"roboact/train/recipes/{f.name}" in names for f in recipes), names
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: Apache-2.0" in meta
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_ci_runs_exactly_the_readme_test_command():
    """The README's second command is what a new user runs to test; CI must run that very line, so that
    what CI installs (LeRobot's loader included: `setup.sh --tests`) is what a user's run installs."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", readme, re.S).group(1).splitlines()
    assert len(block) >= 2, "README's first code block must hold the demo command and the test command"
    test_cmd = block[1].split("#")[0].strip()
    assert "pytest" in test_cmd, f"README's second command is not the test command: {test_cmd!r}"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    assert test_cmd in ci, f".ci/run does not run the README's test command {test_cmd!r}"
