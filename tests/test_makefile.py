"""The Makefile's targets say what the README promises (dry runs: nothing is installed or started)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _env(**extra):
    # `make test` runs pytest inside make: drop the parent's make variables so the
    # child does not print "make[1]: Entering directory" banners.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    return {**env, **extra}


def dry_run(*targets, **env):
    out = subprocess.run(["make", "--no-print-directory", "-n", *targets], cwd=ROOT,
                         capture_output=True, text=True, env=_env(**env), check=True)
    return out.stdout


def test_setup_is_a_no_op_when_the_stamp_is_fresh():
    stamp = ROOT / ".venv" / ".installed"
    if not stamp.exists() or stamp.stat().st_mtime < (ROOT / "pyproject.toml").stat().st_mtime:
        pytest.skip("the environment is not set up through make")
    assert dry_run("setup").strip() in ("", "make: Nothing to be done for 'setup'.")


def test_lab_opens_the_notebooks_with_allow_root_only_as_root():
    cmd = [line for line in dry_run("lab").splitlines() if "jupyter lab" in line]
    assert len(cmd) == 1 and "--notebook-dir=notebooks" in cmd[0]
    assert ("--allow-root" in cmd[0]) == (os.getuid() == 0)
    # progress bars are wanted in the lab, unlike in tests
    assert "env -u TQDM_DISABLE" in cmd[0]


def test_test_runs_pytest_and_lessons_execute_every_notebook_in_order():
    assert ".venv/bin/python -m pytest" in dry_run("test")
    lessons = [line for line in dry_run("lessons").splitlines() if ".ci/lessons.py" in line][0]
    listed = [w for w in lessons.split() if w.endswith(".ipynb")]
    assert listed == sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    assert "student.py notebooks student" in dry_run("student")


def test_fresh_setup_pins_torch_first():
    out = subprocess.run(["make", "--no-print-directory", "-n", "-B", "setup"], cwd=ROOT,
                         capture_output=True, text=True, env=_env(), check=True).stdout
    lines = out.splitlines()
    torch_line = next(i for i, l in enumerate(lines) if "torch==2.13.0" in l)
    package_line = next(i for i, l in enumerate(lines) if '-e ".[lab,test]"' in l)
    assert torch_line < package_line
