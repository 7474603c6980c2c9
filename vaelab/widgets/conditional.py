"""Widgets for lesson 05 (conditional and discrete latents).

``digits_on_demand``: pick a digit and move in z; a conditional VAE draws it. Every change only
decodes about sixty images and draws them (no training), well under a second.
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
from matplotlib.figure import Figure

from .._validation import check_positive, check_positive_int
from ..plot.discrete import digits_on_demand as digits_figure
from ._frame import _Frame, _png

__all__ = ["DigitsOnDemand", "digits_on_demand"]


class DigitsOnDemand(_Frame):
    """A conditional VAE's digits on demand: buttons for the class c, sliders for z_1 and z_2.

    ``draw(digit, z1, z2)`` is the callback and returns the figure; ``update()`` redraws from the
    controls; ``text.value`` and ``image.value`` (PNG bytes) hold what is shown.
    """

    def __init__(self, model: Any, *, digit: int = 0, span: float = 2.5, n_grid: int = 7, dpi: int = 72):
        for name in ("n_classes", "latent_dim", "decode", "check_condition"):
            if not hasattr(model, name):
                raise TypeError(f"`model` must be a conditional VAE (vaelab.CVAE), got {type(model).__name__}")
        self.model = model
        self.span = check_positive(span, "span")
        self.n_grid = check_positive_int(n_grid, "n_grid", minimum=2)
        self.dpi = check_positive_int(dpi, "dpi")
        digit = check_positive_int(digit, "digit", minimum=0)
        if digit >= model.n_classes:
            raise ValueError(f"`digit` must be a class of the model, 0 … {model.n_classes - 1}, got {digit}")
        self.digit_buttons = widgets.ToggleButtons(options=list(range(model.n_classes)), value=digit,
                                                   description="digit c", style={"button_width": "2.2em"})
        slider = dict(min=-span, max=span, step=span / 20, value=0.0, continuous_update=False, readout_format=".2f")
        self.z1_slider = widgets.FloatSlider(description="z₁", **slider)
        self.z2_slider = widgets.FloatSlider(description="z₂", disabled=model.latent_dim < 2, **slider)
        self.controls = [self.digit_buttons, self.z1_slider, self.z2_slider]
        self._build("digits-on-demand", figsize=(10, 3.4),
                    rows=[self.digit_buttons, widgets.HBox([self.z1_slider, self.z2_slider])])

    def draw(self, digit: int, z1: float, z2: float) -> Figure:
        """The figure for class ``digit`` at the latent point (z1, z2) (see ``vaelab.plot.digits_on_demand``)."""
        return digits_figure(self.model, digit, (z1, z2), fig=self.figure, span=self.span, n_grid=self.n_grid)

    def render(self, digit: int, z1: float, z2: float) -> tuple[str, bytes]:
        fig = self.draw(digit, z1, z2)
        text = (f"<pre style='margin:0'>{html.escape(f'c = {digit}: E[x | z, c] at z = ({z1:.2f}, {z2:.2f})')}"
                " — move z to change the style, c to change the digit</pre>")
        return text, _png(fig, self.dpi)


def digits_on_demand(model: Any, **kwargs) -> DigitsOnDemand:
    """Pick a digit and move in z: a conditional VAE draws it on demand. See :class:`DigitsOnDemand`."""
    return DigitsOnDemand(model, **kwargs)
