"""``checks.solution(name)``: a worked solution on request, for a learner alone with the student edition.

The solution comes from the one source, the instructor edition of the lessons (the cell that defines
the exercise's function between nbgrader's ``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers);
where those notebooks are not next to the package, it shows vaelab's reference implementation.
"""
from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path

from ._core import _REGISTRY

__all__ = ["solution"]

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def _notebook_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("VAELAB_NOTEBOOKS"):
        dirs.append(Path(os.environ["VAELAB_NOTEBOOKS"]))
    dirs.append(Path(__file__).resolve().parents[2] / "notebooks")  # an editable install: the repository
    return [d for d in dirs if d.is_dir()]


def _solution_cell(function: str) -> tuple[str, str] | None:
    """(notebook name, cell source without the markers) of the solved exercise defining ``function``."""
    pattern = re.compile(rf"^\s*def {re.escape(function)}\(", re.M)
    for folder in _notebook_dirs():
        for path in sorted(folder.glob("[0-9]*.ipynb")):
            try:
                cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            except (OSError, ValueError, KeyError):
                continue
            for cell in cells:
                source = "".join(cell.get("source", ""))
                if cell.get("cell_type") == "code" and BEGIN in source and pattern.search(source):
                    lines = [line for line in source.splitlines() if line.strip() not in (BEGIN, END)]
                    return path.name, "\n".join(lines)
    return None


def solution(name: str) -> str:
    """Print (and return) a solution of the exercise ``name``, a checker's name or the lesson's function name.

    Try the exercise first: the checker's message usually names the mistake. The solution is the
    instructor edition's own cell; without the notebooks, vaelab's reference implementation.

    >>> text = solution("gaussian_kl")  # doctest: +ELLIPSIS
    # a solution of gaussian_kl...
    >>> "def gaussian_kl(" in text
    True
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be the exercise's name as a string, e.g. 'e_step', got {type(name).__name__}")
    check = _REGISTRY.get(name) or next((c for c in _REGISTRY.values() if name in (c.function, c.exercise)), None)
    if check is None:
        raise ValueError(f"`name` must be one of the exercises {sorted(_REGISTRY)}, got {name!r}")
    found = _solution_cell(check.function)
    if found is not None:
        where, text = found
        header = f"# a solution of {check.function}, from {where}"
    else:
        text = inspect.getsource(check.reference)
        header = f"# a solution of {check.function}: vaelab's reference implementation"
    text = f"{header}\n{text}"
    print(text)
    return text
