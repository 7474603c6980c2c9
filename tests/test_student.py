"""`make student`: solutions removed, everything else unchanged, every exercise has a checker, the
student edition runs top to bottom unsolved, a broken reference solution fails nbval, and Binder
builds the edition from the one source."""
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import vaelab.checks

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("student", ROOT / ".ci" / "student.py")
student = importlib.util.module_from_spec(spec)
spec.loader.exec_module(student)

LESSONS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
WITH_EXERCISES = [p for p in LESSONS if not p.name.startswith("00")]


def solution_lines(source):
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() == student.END:
            inside = False
        if inside and line.strip():
            lines.append(line.strip())
        if line.strip() == student.BEGIN:
            inside = True
    return lines


def test_strip_solutions_keeps_signature_and_indentation():
    source = "def e_step(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\nprint(1)"
    assert student.strip_solutions(source, "t") == (
        "def e_step(x):\n    '''doc'''\n    raise NotImplementedError(\"Exercise: write the body of e_step\")\n\nprint(1)")


@pytest.mark.parametrize("source, msg", [("### BEGIN SOLUTION\nx = 1", "without ### END"),
                                         ("x = 1\n### END SOLUTION", "without ### BEGIN"),
                                         ("### BEGIN SOLUTION\n### BEGIN SOLUTION", "inside another")])
def test_unbalanced_markers_are_errors(source, msg):
    with pytest.raises(ValueError, match=msg):
        student.strip_solutions(source, "t")


def test_make_student_writes_copies(tmp_path):
    subprocess.run([sys.executable, str(ROOT / ".ci" / "student.py"), str(ROOT / "notebooks"), str(tmp_path)],
                   check=True, capture_output=True)
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in LESSONS]
    for path in LESSONS:
        original = nbformat.read(path, as_version=4)
        copy = nbformat.read(tmp_path / path.name, as_version=4)
        nbformat.validate(copy)
        cells = copy.cells
        if path in WITH_EXERCISES:  # one banner cell first, saying how the edition works
            assert cells[0].cell_type == "markdown" and "checks.solution" in cells[0].source
            cells = cells[1:]
        assert len(cells) == len(original.cells)
        for before, after in zip(original.cells, cells):
            if before.cell_type == "code" and student.BEGIN in before.source:
                assert after.outputs == [] and "NotImplementedError" in after.source
                for line in solution_lines(before.source):
                    assert line not in after.source.splitlines(), f"{path.name}: solution line survived: {line}"
            elif before.cell_type == "code" and student.CHECKER.search(before.source):
                # the instructor's "Correct: ..." would be a lie before the student has solved anything
                assert after.outputs == [] and after.source == before.source
            else:
                assert after == before, f"{path.name}: a cell without a solution changed"


def test_the_edition_is_the_same_on_every_build(tmp_path):
    for dest in ("a", "b"):
        subprocess.run([sys.executable, str(ROOT / ".ci" / "student.py"), str(ROOT / "notebooks"), str(tmp_path / dest)],
                       check=True, capture_output=True)
    for path in LESSONS:
        assert (tmp_path / "a" / path.name).read_bytes() == (tmp_path / "b" / path.name).read_bytes()


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.name)
def test_every_exercise_has_a_checker(path):
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    exercises = [i for i, c in enumerate(cells) if c.cell_type == "code" and student.BEGIN in c.source]
    assert exercises, f"{path.name} has no exercise"
    for i in exercises:
        later = " ".join(c.source for c in cells[i + 1: i + 3] if c.cell_type == "code")
        called = re.findall(r"checks\.(\w+)\(", later)
        assert called, f"{path.name} cell {i}: no `vaelab.checks.<name>(...)` call follows the exercise"
        for name in called:
            assert callable(getattr(vaelab.checks, name, None)), f"{path.name}: vaelab.checks.{name} does not exist"


# ---------------------------------------------------------------- the student edition runs unsolved

def error_cells(nb) -> list[str]:
    """'cell i: Error: message' for every cell of an executed notebook that raised."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"cell {i}: {out['ename']}: {out['evalue'][:200]}")
    return found


def execute(nb, cwd: Path, timeout: int = 900, allow_errors: bool = True, **env):
    """Run ``nb`` in a fresh kernel with the test environment (VAELAB_STRICT=1 comes from the root conftest)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return nb


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.name)
def test_the_student_edition_runs_top_to_bottom_unsolved(path, tmp_path):
    nb = execute(student.student_copy(nbformat.read(path, as_version=4), path.name), tmp_path)
    errors = error_cells(nb)
    assert not errors, f"{path.name}: the unsolved student edition has error cells:\n" + "\n".join(errors)
    stubs = sum(1 for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError" in c.source)
    reported = sum(1 for c in nb.cells for out in c.get("outputs", [])
                   if out.get("name") == "stderr" and "not implemented yet" in out.get("text", ""))
    assert reported >= stubs, f"{path.name}: {stubs} exercises but only {reported} checkers said 'not implemented yet'"


# ---------------------------------------------------------------- a broken solution fails the instructor edition

EXERCISE = """import torch, vaelab.checks as checks

def e_step(x, weights, means, covariances):
    ### BEGIN SOLUTION
    log_joint = torch.log(weights) + torch.distributions.MultivariateNormal(means, covariances).log_prob(x[:, None])
    return torch.softmax(log_joint, dim=1)
    ### END SOLUTION"""


def tiny_lesson(solution_line: str = "return torch.softmax(log_joint, dim=1)"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(EXERCISE.replace("return torch.softmax(log_joint, dim=1)", solution_line)),
                nbformat.v4.new_code_cell("e_step = checks.e_step(e_step)"),
                nbformat.v4.new_code_cell("x = torch.zeros(2, 1, dtype=torch.float64)\n"
                                          "print(e_step(x, torch.tensor([0.5, 0.5], dtype=torch.float64), "
                                          "torch.zeros(2, 1, dtype=torch.float64), torch.ones(2, 1, 1, dtype=torch.float64)))")]
    return nb


def nbval(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval",
                           "--nbval-current-env", "-o", "addopts=", str(path)], cwd=path.parent,
                          capture_output=True, text=True, timeout=600)


def test_a_broken_reference_solution_fails_nbval_and_a_right_one_passes(tmp_path):
    good = execute(tiny_lesson(), tmp_path, allow_errors=False)
    assert "Correct: e_step passes every check." in good.cells[1].outputs[0]["text"]
    (tmp_path / "good.ipynb").write_text(nbformat.writes(good))
    run = nbval(tmp_path / "good.ipynb")
    assert run.returncode == 0, run.stdout[-2000:]

    broken = nbformat.reads(nbformat.writes(good), as_version=4)  # the stored outputs of the right one
    broken.cells[0].source = broken.cells[0].source.replace("dim=1)", "dim=0)")  # normalised over points
    (tmp_path / "broken.ipynb").write_text(nbformat.writes(broken))
    run = nbval(tmp_path / "broken.ipynb")
    assert run.returncode != 0 and "ExerciseError" in run.stdout and "normalised over points" in run.stdout


def test_the_same_wrong_answer_only_reports_for_a_learner(tmp_path):
    nb = execute(tiny_lesson("return torch.softmax(log_joint, dim=0)"), tmp_path, VAELAB_STRICT="0")
    assert error_cells(nb) == []
    err = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.get("name") == "stderr")
    out = "".join(o.get("text", "") for o in nb.cells[1].outputs if o.get("name") == "stdout")
    assert "✗ e_step: each column sums to 1, so you normalised over points" in err
    assert "uses vaelab's reference e_step" in out
    assert "[[0.5000, 0.5000]," in nb.cells[2].outputs[0]["text"]  # the reference, not the wrong answer


# ---------------------------------------------------------------- Binder and JupyterLab settings

def test_binder_builds_the_student_edition_and_switches_off_the_news_prompt(tmp_path):
    repo = tmp_path / "repo"
    for part in ("notebooks", ".ci", "binder"):
        shutil.copytree(ROOT / part, repo / part)
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "pip").write_text("#!/bin/sh\necho pip \"$@\" >> \"$PIP_LOG\"\n")
    (shims / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # this environment's python
    for shim in ("pip", "python"):
        (shims / shim).chmod(0o755)
    env = {**os.environ, "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}", "PIP_LOG": str(tmp_path / "pip.log"),
           "JUPYTERLAB_DIR": str(tmp_path / "lab")}
    subprocess.run(["bash", str(repo / "binder" / "postBuild")], cwd=repo, env=env, check=True,
                   capture_output=True, text=True)
    assert "install --no-deps -e ." in (tmp_path / "pip.log").read_text()
    built = sorted(p.name for p in (repo / "student").glob("*.ipynb"))
    assert built == [p.name for p in LESSONS]
    settings = json.loads((tmp_path / "lab" / "settings" / "overrides.json").read_text())
    assert settings["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"


def test_the_readme_has_a_badge_for_the_exercises():
    readme = (ROOT / "README.md").read_text()
    badges = re.findall(r"\[!\[([^\]]+)\]\(https://[^)]+\)\]\((https://mybinder.org/[^)]+)\)", readme)
    assert len(badges) == 2, badges
    (_, instructor), (label, exercises) = badges
    assert "urlpath=lab/tree/notebooks/" in instructor
    assert "exercises" in label.lower() and "urlpath=lab/tree/student/" in exercises
    assert (ROOT / "notebooks" / exercises.rsplit("/", 1)[-1]).exists()


def test_the_settings_override_is_one_jupyterlab_applies(tmp_path):
    """The override names a real setting: JupyterLab's own loader turns it into the schema's default."""
    settings_utils = pytest.importorskip("jupyterlab_server.settings_utils")
    from jupyterlab.commands import get_app_dir
    (tmp_path / "settings").mkdir()
    shutil.copy(ROOT / "binder" / "overrides.json", tmp_path / "settings" / "overrides.json")
    for name, default in json.loads((ROOT / "binder" / "overrides.json").read_text())[
            "@jupyterlab/apputils-extension:notification"].items():
        for folder, expected in ((tmp_path / "settings", default), (tmp_path / "none", None)):
            found, _ = settings_utils.get_settings(str(folder), str(Path(get_app_dir()) / "schemas"),
                                                   str(tmp_path / "user"), "@jupyterlab/apputils-extension:notification")
            got = found["schema"]["properties"][name]["default"]
            assert got == expected if expected is not None else got != default


def test_make_lab_installs_the_settings_override():
    env = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    out = subprocess.run(["make", "--no-print-directory", "-n", "-B", "lab"], cwd=ROOT, capture_output=True,
                         text=True, env=env).stdout
    assert "cp binder/overrides.json .venv/share/jupyter/lab/settings/overrides.json" in out


def test_the_timeout_works_inside_a_jupyter_kernel(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import time, vaelab.checks as checks\n"
        "def forever(x):\n    while True:\n        pass\n"
        "start = time.perf_counter()\n"
        "try:\n    checks.call(forever, 'demo', 1, timeout=1)\n"
        "except checks.ExerciseError as error:\n    print(error, round(time.perf_counter() - start) < 5)")]
    nb = execute(nb, tmp_path, allow_errors=False)
    assert "demo: your function was still running after 1 s" in nb.cells[0].outputs[0]["text"]
    assert nb.cells[0].outputs[0]["text"].strip().endswith("True")
