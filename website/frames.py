"""Precompute a lesson widget's frames at build time, so the site can move its knobs without a kernel.

A lesson widget is rebuilt with the lesson's own code: the widget cell and the earlier code cells it
needs (found by following names back to the cells that define them) run in a fresh namespace, so the
site shows the models the lesson trains, not a copy of them. The widget is then driven through its
ipywidgets controls, as a student would drive it, and every (control values) combination is recorded
as a PNG and a line of text. Nothing here knows a widget's arguments: a control added to a widget
appears on the site by itself.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import hashlib
import io
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import nbformat

__all__ = ["Control", "Frames", "cell_names", "needed_cells", "run_widget_cell", "record", "snake"]

BUILTINS = set(dir(builtins))


# ---------------------------------------------------------------- which cells a widget needs

def python_source(cell_source: str) -> str:
    """A code cell's source as plain Python (IPython magics become calls, as in a kernel)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell_source)


def _function_free_names(node: ast.AST) -> set[str]:
    """Names a function or lambda body reads that are neither its parameters nor assigned in it."""
    local: set[str] = set()
    args = node.args
    for a in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if a is not None:
            local.add(a.arg)
    loads: set[str] = set()
    body = node.body if isinstance(node.body, list) else [node.body]
    for stmt in body:
        for sub in ast.walk(stmt):
            if isinstance(sub, ast.Name):
                (local.add if isinstance(sub.ctx, (ast.Store, ast.Del)) else loads.add)(sub.id)
            elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                local.add(sub.name)
            elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                local.update((a.asname or a.name).split(".")[0] for a in sub.names)
    return loads - local


def cell_names(source: str) -> tuple[set[str], set[str]]:
    """(names the cell defines, names it reads before defining them) for Python ``source``.

    Reading order is the order of evaluation (an assignment's value before its targets); a function's
    body counts as read where the function is defined (its free names must exist when it is called).

    >>> defined, needed = cell_names("import torch\\nx = torch.zeros(3)\\ny = f(x)\\ng = checks.g(g)")
    >>> sorted(defined), sorted(needed)
    (['g', 'torch', 'x', 'y'], ['checks', 'f', 'g'])
    """
    tree = ast.parse(source)
    stores: dict[str, int] = {}
    loads: dict[str, int] = {}
    clock = iter(range(10**9))  # the order in which names are met

    def store(name: str, node: ast.AST) -> None:
        stores.setdefault(name, next(clock))

    def load(name: str, node: ast.AST) -> None:
        loads.setdefault(name, next(clock))

    def visit(node: ast.AST, depth: int = 0) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for name in _function_free_names(node):
                load(name, node)
            for default in [*node.args.defaults, *[d for d in node.args.kw_defaults if d is not None]]:
                visit(default, depth)
            for decorator in getattr(node, "decorator_list", []):
                visit(decorator, depth)
            if not isinstance(node, ast.Lambda):
                store(node.name, node)  # bound once the def statement has run: after its body is read
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            # a comprehension's loop variables are its own: only its other names are read
            local = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            for sub in ast.walk(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load) and sub.id not in local:
                    load(sub.id, sub)
            return
        if isinstance(node, ast.ClassDef):
            store(node.name, node)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name != "*":
                    store((alias.asname or alias.name).split(".")[0], node)
        elif isinstance(node, ast.Name):
            (store if isinstance(node.ctx, ast.Store) else load)(node.id, node)
        for child in ast.iter_child_nodes(node):
            visit(child, depth + 1)

    # an assignment's value is read before its targets are bound: visit the value first
    for stmt in tree.body:
        if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and stmt.value is not None:
            visit(stmt.value)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                if isinstance(stmt, ast.AugAssign) and isinstance(target, ast.Name):
                    load(target.id, target)
                visit(target)
        else:
            visit(stmt)
    defined = set(stores)
    needed = {name for name, at in loads.items() if name not in stores or at < stores[name]}
    return defined, needed - BUILTINS


def needed_cells(sources: Sequence[str], target: int) -> list[int]:
    """Indices of the code cells (of ``sources``, in order) that cell ``target`` needs, itself included.

    Each name a needed cell reads comes from the latest earlier cell that defines it; cells that
    define nothing read later (plots, prints) are left out. The first cell (the lesson's setup) is
    always kept: it seeds the generators and sets the threads.

    >>> needed_cells(["import math", "a = 1", "b = 2", "print(b)", "c = a * 3"], 4)
    [0, 1, 4]
    """
    names = [cell_names(s) for s in sources]
    keep = {0, target}
    todo = [target]
    while todo:
        i = todo.pop()
        for name in names[i][1]:
            for j in range(i - 1, -1, -1):
                if name in names[j][0]:
                    if j not in keep:
                        keep.add(j)
                        todo.append(j)
                    break
    return sorted(keep)


@contextlib.contextmanager
def _lesson_environment(folder: Path) -> Iterator[None]:
    """Run lesson code as the stored outputs were made: on the CPU, off-screen, no progress bars."""
    import matplotlib

    saved_env = {k: os.environ.get(k) for k in ("VAELAB_DEVICE", "TQDM_DISABLE", "VAELAB_STRICT", "MPLBACKEND")}
    saved_backend, saved_cwd = matplotlib.get_backend(), os.getcwd()
    os.environ.update(VAELAB_DEVICE="cpu", TQDM_DISABLE="1", VAELAB_STRICT="0")
    os.environ.pop("MPLBACKEND", None)
    matplotlib.use("Agg")
    os.chdir(folder)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.chdir(saved_cwd)
        matplotlib.use(saved_backend)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_widget_cell(notebook: Path, cell: int) -> tuple[Any, list[int], float]:
    """Build the widget of code cell ``cell`` (an index into ``notebook.cells``) with the lesson's code.

    Returns (the widget object: the value of the cell's last expression, the notebook cell indices
    that ran, seconds taken).
    """
    import matplotlib.pyplot as plt

    nb = nbformat.read(notebook, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    if cell not in code:
        raise ValueError(f"`cell` must be the index of a code cell of {notebook.name}, got {cell}")
    sources = [python_source(nb.cells[i].source) for i in code]
    ran = [code[k] for k in needed_cells(sources, code.index(cell))]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    start = time.perf_counter()
    with _lesson_environment(notebook.parent), contextlib.redirect_stdout(io.StringIO()):
        for i in ran:
            source = python_source(nb.cells[i].source)
            tree = ast.parse(source)
            last = tree.body.pop() if i == cell and tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, f"{notebook.name} cell {i}", "exec"), namespace)
            plt.close("all")
        if last is None:
            raise ValueError(f"{notebook.name} cell {cell} does not end with the widget as an expression")
        widget = eval(compile(ast.Expression(last.value), f"{notebook.name} cell {cell}", "eval"), namespace)
    return widget, ran, time.perf_counter() - start


# ---------------------------------------------------------------- driving a widget through its controls

@dataclass
class Control:
    """One knob of a widget: its label, the values the site offers, how they read, and its kind."""

    description: str
    kind: str  # "slider" or "select"
    values: list[Any]
    labels: list[str]
    start: int
    play: bool = False
    widget: Any = field(default=None, repr=False, compare=False)

    def manifest(self) -> dict:
        return {"description": self.description, "kind": self.kind, "labels": self.labels,
                "start": self.start, "play": self.play}


def _walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in getattr(widget, "children", ()) or ():
        yield from _walk(child)


def nice_subset(values: Sequence[Any], keep: Sequence[Any], limit: int) -> list[Any]:
    """At most about ``limit`` of the sorted numbers ``values``, with the ends and every value of ``keep``.

    Positive integers keep the round ones (1, 2, 3, 4, 5, 6, 8 times a power of ten, fewer if that
    is still too many): the steps a reader would pick. Other values are thinned evenly.

    >>> nice_subset(list(range(1, 101)), keep=[7], limit=16)
    [1, 2, 3, 4, 5, 6, 7, 8, 10, 20, 30, 40, 50, 60, 80, 100]
    """
    values = list(values)
    if len(values) <= limit:
        return values
    ends = {values[0], values[-1], *(v for v in keep if v in values)}
    if all(isinstance(v, int) and v > 0 for v in values):
        for mantissas in ((1, 1.5, 2, 3, 4, 5, 6, 8), (1, 2, 3, 4, 5, 6, 8), (1, 2, 3, 5), (1, 2, 5), (1, 3), (1,)):
            chosen = ends | {v for v in values if v / 10 ** math.floor(math.log10(v)) in mantissas}
            if len(chosen) <= limit:
                return sorted(chosen)
    step = (len(values) - 1) / (limit - 1)
    return sorted(ends | {values[round(i * step)] for i in range(limit)})


def controls_of(widget: Any, *, choose: dict[str, Sequence[Any]] | None = None, limit: int = 16) -> tuple[list[Control], Any, Any]:
    """The controls, the text widget and the image widget of a lesson widget (or dashboard).

    ``choose`` maps a control's description to the values the site offers (default: every option of
    a dropdown or selection slider; a slider's values thinned to about ``limit`` by :func:`nice_subset`,
    except a slider driven by a play button, which keeps every value).
    """
    import ipywidgets as w

    root = getattr(widget, "widget", widget)
    if not isinstance(root, w.Widget):
        raise TypeError(f"`widget` must be an ipywidget or hold one as .widget, got {type(widget).__name__}")
    parts = list(_walk(root))
    images = [p for p in parts if isinstance(p, w.Image)]
    texts = [p for p in parts if isinstance(p, w.HTML)]
    if not images:
        raise ValueError(f"{type(widget).__name__} shows no image: nothing to precompute")
    plays = [p for p in parts if isinstance(p, w.Play)]
    choose = choose or {}
    controls = []
    for p in parts:
        description = getattr(p, "description", "") or type(p).__name__
        if isinstance(p, (w.Dropdown, w.RadioButtons, w.ToggleButtons, w.SelectionSlider)):
            n = len(p.options)
            current = p.index
            values, labels = [], []
            for i in range(n):
                p.index = i
                values.append(p.value)
                labels.append(str(p.label))
            p.index = current
            kind = "slider" if isinstance(p, w.SelectionSlider) else "select"
        elif isinstance(p, (w.IntSlider, w.FloatSlider)):
            step = p.step
            count = int(round((p.max - p.min) / step)) + 1
            values = [p.min + i * step for i in range(count)]
            if isinstance(p, w.FloatSlider):
                digits = max(0, -int(math.floor(math.log10(step)))) if step < 1 else 0
                values = [round(v, digits + 2) for v in values]
            played = any(q.max == p.max and q.min == p.min for q in plays)
            if description not in choose and not played:
                values = nice_subset(values, keep=[p.value], limit=limit)
            fmt = getattr(p, "readout_format", "d") or "d"
            labels = [format(v, fmt) for v in values]
            kind = "slider"
        elif isinstance(p, w.Checkbox):
            values, labels, kind = [False, True], ["off", "on"], "select"
        else:
            continue
        if description in choose:
            wanted = list(choose[description])
            missing = [v for v in wanted if v not in values]
            if missing:
                raise ValueError(f"control {description!r} offers no value {missing}; it offers {labels}")
            labels = [labels[values.index(v)] for v in wanted]
            values = wanted
        current = p.value
        start = values.index(current) if current in values else 0
        played = isinstance(p, (w.IntSlider, w.FloatSlider)) and any(q.max == p.max and q.min == p.min for q in plays)
        controls.append(Control(description, kind, values, labels, start, played, p))
    if not controls:
        raise ValueError(f"{type(widget).__name__} has no control to move")
    return controls, (texts[0] if texts else None), images[0]


def snake(sizes: Sequence[int]) -> Iterator[tuple[int, ...]]:
    """Every index tuple of a grid of ``sizes``, each differing from the one before in one place.

    Moving one control at a time, each redraw the widget does is one the site keeps.

    >>> list(snake([2, 3]))
    [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0)]
    """
    if not sizes:
        yield ()
        return
    head, *rest = sizes
    inner = list(snake(rest))
    for i in range(head):
        for t in (inner if i % 2 == 0 else reversed(inner)):
            yield (i, *t)


@dataclass
class Frames:
    """What the site needs to replay a widget: its controls and, per combination, a PNG and a text."""

    controls: list[Control]
    pngs: dict[tuple[int, ...], bytes]
    texts: dict[tuple[int, ...], str]
    seconds: float = 0.0
    disabled: dict[tuple[int, ...], list[int]] = field(default_factory=dict)  # controls greyed out there

    def manifest(self, image_paths: dict[tuple[int, ...], str]) -> dict:
        """``{"controls": [...], "frames": {"i,j,…": [image path, text, disabled control indices]}}``."""
        keys = sorted(self.pngs)
        return {"controls": [c.manifest() for c in self.controls],
                "frames": {",".join(map(str, k)): [image_paths[k], self.texts.get(k, ""), self.disabled.get(k, [])]
                           for k in keys}}


def record(widget: Any, *, choose: dict[str, Sequence[Any]] | None = None, limit: int = 16,
           max_frames: int = 500) -> Frames:
    """Move every control of ``widget`` through its values and record what it shows for each combination."""
    controls, text, image = controls_of(widget, choose=choose, limit=limit)
    sizes = [len(c.values) for c in controls]
    if math.prod(sizes) > max_frames:
        raise ValueError(f"{math.prod(sizes)} frames ({' × '.join(map(str, sizes))}) exceed max_frames={max_frames}: "
                         "offer fewer values with `choose`")
    pngs, texts, disabled = {}, {}, {}
    start = time.perf_counter()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for key in snake(sizes):
            for c, i in zip(controls, key):
                if c.widget.value != c.values[i]:
                    c.widget.value = c.values[i]
            pngs[key] = bytes(image.value)
            texts[key] = text.value if text is not None else ""
            disabled[key] = [j for j, c in enumerate(controls) if getattr(c.widget, "disabled", False)]
    return Frames(controls, pngs, texts, time.perf_counter() - start, disabled)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]
