"""Write student copies of the lessons: exercise solutions removed, everything else unchanged.

Usage: python .ci/student.py notebooks student

In a code cell, the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` (nbgrader's markers,
inclusive) become one ``raise NotImplementedError(...)`` at the same indentation, and that cell's
outputs are cleared, as are those of the cells that call a checker (``checks.name(...)``: their stored
"Correct" would be the instructor's). A first markdown cell says how the edition works. Every other
cell is unchanged. Binder runs this at image build time (binder/postBuild): one source, no copy committed.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECKER = re.compile(r"\bchecks\.(\w+)\(")
BANNER = """**Student edition.** Each exercise is a function whose body you write (it starts as
`raise NotImplementedError`). The cell after it checks your answer: a red line names what is wrong,
and the rest of the lesson then uses vaelab's reference implementation, so *Run All* always reaches
the end. Stuck? `vaelab.checks.solution("e_step")` (the exercise's name) shows a solution."""


def strip_solutions(source: str, exercise: str) -> str:
    """Replace every marked solution block in ``source`` with a stub that raises."""
    out, inside, name = [], False, exercise
    for line in source.splitlines():
        m = re.match(r"\s*def (\w+)\(", line)
        if m and not inside:
            name = m.group(1)
        if line.strip() == BEGIN:
            if inside:
                raise ValueError(f"{exercise}: {BEGIN} inside another solution")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("Exercise: write the body of {name}")')
        elif line.strip() == END:
            if not inside:
                raise ValueError(f"{exercise}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{exercise}: {BEGIN} without {END}")
    return "\n".join(out)


def student_copy(nb: nbformat.NotebookNode, label: str) -> nbformat.NotebookNode:
    """Return a copy of ``nb`` with solutions stubbed out and their outputs cleared."""
    nb = nbformat.from_dict(nb)
    n_exercises = 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if BEGIN in cell.source:
            cell.source = strip_solutions(cell.source, f"{label} cell {i}")
            cell.outputs, cell.execution_count = [], None
            n_exercises += 1
        elif CHECKER.search(cell.source):
            cell.outputs, cell.execution_count = [], None
    if n_exercises:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(BANNER, metadata={"tags": ["student-edition"]}))
        nb.cells[0].id = "student-edition"  # fixed, so a rebuilt edition does not differ
    return nb


def main(src: str, dest: str) -> None:
    Path(dest).mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(src).glob("[0-9]*.ipynb")):
        nb = student_copy(nbformat.read(path, as_version=4), path.name)
        nbformat.write(nb, Path(dest) / path.name)
        print(f"{dest}/{path.name}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
