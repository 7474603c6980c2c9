"""`make student`: solutions removed, everything else unchanged, and every exercise has a checker."""
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

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
        assert len(copy.cells) == len(original.cells)
        for before, after in zip(original.cells, copy.cells):
            if before.cell_type == "code" and student.BEGIN in before.source:
                assert after.outputs == [] and "NotImplementedError" in after.source
                for line in solution_lines(before.source):
                    assert line not in after.source.splitlines(), f"{path.name}: solution line survived: {line}"
            else:
                assert after == before, f"{path.name}: a cell without a solution changed"


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
