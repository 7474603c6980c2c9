"""What the lesson widgets share: controls above a line of text and a PNG figure, redrawn on change.

A widget sets ``self.controls`` (the widgets whose values are ``render``'s arguments, in order),
defines ``render(*values) -> (html_text, png_bytes)``, and calls ``_build(name)`` last in ``__init__``.
The figure is drawn off-screen (Agg), so nothing reaches the notebook's inline backend.
"""
from __future__ import annotations

import io
from typing import Sequence

import ipywidgets as widgets
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _png(fig: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


class _Frame:
    """A row of controls, a line of text, a PNG figure, and ``update()``."""

    controls: list[widgets.Widget]

    def _build(self, name: str, figsize=(9, 3.4), rows: Sequence[widgets.Widget] | None = None) -> None:
        """Lay out ``rows`` (default: the controls in one row) above the text and the figure; draw once.

        ``name`` gives the CSS classes ``vaelab-<name>`` (the whole widget) and ``vaelab-<name>-figure``.
        """
        self.text = widgets.HTML()
        self.image = widgets.Image(format="png")
        for control in self.controls:
            control.observe(lambda change: self.update(), names="value")
        rows = [widgets.HBox(self.controls)] if rows is None else list(rows)
        self.widget = widgets.VBox([*rows, self.text, self.image])
        self.widget.add_class(f"vaelab-{name}")
        self.image.add_class(f"vaelab-{name}-figure")
        self.figure = Figure(figsize=figsize)
        FigureCanvasAgg(self.figure)
        self.update()

    def update(self) -> None:
        """Redraw for the controls' current values."""
        text, png = self.render(*(c.value for c in self.controls))
        self.text.value, self.image.value = text, png

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
