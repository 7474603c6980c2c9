"""Re-execute lessons in place, in order, and strip widget state (what `make lessons` runs).

Usage: python .ci/lessons.py notebooks/01_x.ipynb [...]
"""
from __future__ import annotations

import os
import sys
import time

import nbformat
from nbclient import NotebookClient

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ["VAELAB_STRICT"] = "1"  # a trained number outside its stated band stops the run
os.environ.setdefault("VAELAB_DEVICE", "cpu")  # stored outputs are CPU outputs
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")


def execute(path: str, timeout: int = 600) -> float:
    """Execute the notebook at ``path`` in its own folder, save it, and return the wall time."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
    seconds = time.perf_counter() - start
    # widget state is large and changes on every run (readers see the static figure stored after it);
    # timestamps would make every re-run a diff
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return seconds


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for notebook in sys.argv[1:]:
        print(f"{notebook}: executed in {execute(notebook):.1f} s", flush=True)
