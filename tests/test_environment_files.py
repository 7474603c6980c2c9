"""pyproject.toml, environment.yml and binder/ must name the same packages, so they cannot drift."""
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells some packages differently from PyPI
CONDA_TO_PYPI = {"pytorch": "torch", "pytorch-cpu": "torch"}
NOT_PACKAGES = {"python", "pip"}


def names(requirements):
    return {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].strip().lower() for r in requirements}


def conda_names(path):
    found = set()
    text = path.read_text()
    for line in text[text.index("dependencies:"):].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.\-]+)", line)
        if m:
            found.add(CONDA_TO_PYPI.get(m.group(1).lower(), m.group(1).lower()))
    return found - NOT_PACKAGES


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_has_every_package(project):
    extras = project["optional-dependencies"]
    expected = names(project["dependencies"]) | names(extras["lab"]) | names(extras["test"])
    assert conda_names(ROOT / "environment.yml") == expected
    assert "-e ." in (ROOT / "environment.yml").read_text()


def test_binder_has_runtime_and_lab(project):
    expected = names(project["dependencies"]) | names(project["optional-dependencies"]["lab"])
    assert conda_names(ROOT / "binder" / "environment.yml") == expected


def test_binder_torch_is_cpu_only_and_postbuild_installs_package():
    assert "pytorch-cpu" in (ROOT / "binder" / "environment.yml").read_text()
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "set -e" in post and "pip install --no-deps -e ." in post


def test_torch_is_a_range_not_a_pin(project):
    torch_req = [r for r in project["dependencies"] if r.startswith("torch")]
    assert torch_req == ["torch>=2.2"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci
    assert re.search(r"^make test$", ci, re.M)
    assert "make test" in (ROOT / "README.md").read_text()
