"""What the lesson widgets share: controls above a line of text and a PNG figure, redrawn on change.

A widget sets ``self.controls`` (the widgets whose values are ``render``'s arguments, in order),
defines ``render(*values) -> (html_text, png_bytes)``, and calls ``_build(name)`` last in ``__init__``.
The figure is drawn off-screen (Agg), so nothing reaches the notebook's inline backend.
When a setting cannot be drawn (EM fails for that K, say), the text says so, and that the figure
still shows the last setting that could; an exception raised in a slider's callback would only
reach the browser's log, leaving a slider that disagrees with the figure and no word why.
"""
from __future__ import annotations

import html
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
        self.error: Exception | None = None  # why the current setting could not be drawn, if it could not
        # the first drawing raises: a widget built with settings it cannot draw is an error of the caller
        self.text.value, self.image.value = self.render(*(c.value for c in self.controls))

    def update(self) -> None:
        """Redraw for the controls' current values; if that fails, say why in the text and keep the last figure."""
        values = [c.value for c in self.controls]
        try:
            text, png = self.render(*values)
        except Exception as error:  # reported where the student looks, not in the browser's log
            self.error = error
            setting = ", ".join(f"{c.description or 'value'} = {v}" for c, v in zip(self.controls, values))
            self.text.value = (f"<pre style='margin:0;color:#b00'>Cannot draw {html.escape(setting)}: "
                               f"{html.escape(type(error).__name__)}: {html.escape(str(error))}\n"
                               "The figure below still shows the last setting that could be drawn.</pre>")
            return
        self.error = None
        self.text.value, self.image.value = text, png

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
