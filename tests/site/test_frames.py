"""website/frames.py: which cells a widget needs, and recording a widget's frames through its controls."""
from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("vaelab_site_frames", ROOT / "website" / "frames.py")
frames = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = frames  # dataclasses look their module up
_spec.loader.exec_module(frames)

PNG = b"\x89PNG\r\n\x1a\n"


def test_an_assignment_reads_its_value_before_binding_its_target():
    # `e_step = checks.e_step(e_step)` needs the e_step defined earlier
    defined, needed = frames.cell_names("e_step = checks.e_step(e_step)")
    assert defined == {"e_step"} and needed == {"checks", "e_step"}


def test_a_function_needs_its_free_names_and_not_its_locals():
    source = "def train(beta, X=X_train):\n    model = VAE(64)\n    return fit(model, X, beta=beta)"
    defined, needed = frames.cell_names(source)
    assert defined == {"train"} and needed == {"X_train", "VAE", "fit"}


def test_comprehension_variables_and_builtins_are_not_needed():
    defined, needed = frames.cell_names("grid = {(name, b): train(name, b) for name in names for b in betas}\nprint(len(grid))")
    assert defined == {"grid"} and needed == {"train", "names", "betas"}


def test_magics_are_read_as_python():
    assert "get_ipython" in frames.python_source("%matplotlib inline\nx = 1")


def test_needed_cells_follow_names_to_the_latest_definition_and_skip_the_rest():
    sources = ["import torch", "x = 1", "x = 2\nslow = train_everything()", "plot(x)", "y = x + 1",
               "w = widget(y)\nw"]
    # cell 2 redefines x (the latest definition wins); the plot cell and the first x are not needed,
    # but cell 2 brings its other names along
    assert frames.needed_cells(sources, 5) == [0, 2, 4, 5]


def test_snake_visits_every_combination_moving_one_control_at_a_time():
    sizes = [3, 2, 4]
    order = list(frames.snake(sizes))
    assert sorted(order) == sorted(itertools.product(*map(range, sizes)))
    assert all(sum(a != b for a, b in zip(s, t)) == 1 for s, t in zip(order, order[1:]))


def test_nice_subset_keeps_the_ends_the_start_and_round_numbers():
    chosen = frames.nice_subset(list(range(1, 101)), keep=[37], limit=16)
    assert chosen[0] == 1 and chosen[-1] == 100 and 37 in chosen and len(chosen) <= 17
    assert frames.nice_subset([0, 1, 2], keep=[], limit=16) == [0, 1, 2]
    thinned = frames.nice_subset([round(0.1 * i, 1) for i in range(2, 26)], keep=[1.0], limit=8)
    assert thinned[0] == 0.2 and thinned[-1] == 2.5 and 1.0 in thinned and len(thinned) <= 9


def test_record_moves_every_control_and_keeps_one_frame_per_combination(mixture):
    from vaelab.widgets import components_widget

    widget = components_widget(mixture, n_components=2, max_components=3, resolution=20)
    recorded = frames.record(widget)
    assert [c.description for c in recorded.controls] == ["K", "nodes"]
    assert [len(c.values) for c in recorded.controls] == [3, 3]
    assert len(recorded.pngs) == 9 and all(png.startswith(PNG) for png in recorded.pngs.values())
    for (k, _), text in recorded.texts.items():
        assert f"K = {k + 1} components" in text
    assert len(set(recorded.pngs.values())) > 1  # the picture changes with the controls
    manifest = recorded.manifest({key: f"{key}.png" for key in recorded.pngs})
    assert manifest["controls"][0]["labels"] == ["1", "2", "3"] and manifest["controls"][0]["start"] == 1
    assert len(manifest["frames"]) == 9
    assert all(len(entry) == 3 and entry[2] == [] for entry in manifest["frames"].values())  # nothing greyed out


def test_record_refuses_too_many_frames_and_unknown_values(mixture):
    from vaelab.widgets import components_widget

    widget = components_widget(mixture, n_components=2, max_components=3, resolution=20)
    with pytest.raises(ValueError, match="exceed max_frames=4"):
        frames.record(widget, max_frames=4)
    with pytest.raises(ValueError, match="offers no value"):
        frames.record(widget, choose={"K": (7,)})


def test_run_widget_cell_runs_only_the_cells_the_widget_needs(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A lesson"),
        nbformat.v4.new_code_cell("import torch\nimport vaelab"),
        nbformat.v4.new_code_cell("x = vaelab.data.toy('moons', 60).double()"),
        nbformat.v4.new_code_cell("raise RuntimeError('a cell the widget does not need must not run')"),
        nbformat.v4.new_code_cell("em = vaelab.widgets.em_widget(x, n_components=2, max_components=2, n_iter=3)\nem"),
    ]
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    widget, ran, _ = frames.run_widget_cell(path, 4)
    assert ran == [1, 2, 4] and type(widget).__name__ == "EMWidget"
    recorded = frames.record(widget)
    k, iteration = recorded.controls
    assert (k.description, k.values, k.play) == ("K", [1, 2], False)
    assert (iteration.description, iteration.values, iteration.play) == ("iteration", [0, 1, 2, 3], True)
    assert len(recorded.pngs) == 8
    with pytest.raises(ValueError, match="code cell"):
        frames.run_widget_cell(path, 0)
