"""The EM widget of lesson 01: step through EM's iterations on 2-D data, and change the number of components K.

The whole EM path (every iterate θ_0 … θ_T) is computed once per K and cached, so moving a slider
only draws (well under a second).
"""
from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure

from .._validation import check_2d, check_choice, check_positive_int
from ..gmm import COVARIANCE_TYPES, INIT_PARAMS, EMPath, em_path, start_at_points
from ..plot.mixtures import em_figure
from ._frame import _Frame, _png

__all__ = ["EMWidget", "em_widget"]

DROP = 1e-9  # nats per point: smaller "drops" are rounding, not EM


class EMWidget(_Frame):
    """Sliders for K and for the EM iteration (with a play button), a line of text and the figure.

    ``draw(n_components, iteration)`` is the callback: it returns the figure (the mixture θ_t over
    the data, and the log-likelihood curve); ``update()`` redraws from the sliders; ``text.value`` /
    ``image.value`` hold what is shown; ``path(K)`` is the cached EM path for K components.
    ``init_params="points"`` starts from :func:`vaelab.gmm.start_at_points` (broad components at random data
    points, so the climb is visible); "kmeans++" and "random" are ``GaussianMixture``'s.
    """

    def __init__(self, x: Any, *, n_components: int = 3, max_components: int = 10, n_iter: int = 40,
                 covariance_type: str = "full", init_params: str = "points", reg_covar: float = 1e-6,
                 random_state: int = 0, dpi: int = 72) -> None:
        self.x = check_2d(x, "x", dtype=torch.float64)
        if self.x.shape[1] != 2:
            raise ValueError(f"`x` must be 2-D data of shape (n_samples, 2), got {self.x.shape[1]} features")
        self.max_components = check_positive_int(max_components, "max_components")
        n_components = check_positive_int(n_components, "n_components")
        if n_components > self.max_components:
            raise ValueError(f"`n_components` must be at most max_components={self.max_components}, got {n_components}")
        if self.max_components > self.x.shape[0]:
            raise ValueError(f"`max_components` must be <= n_samples = {self.x.shape[0]}, got {self.max_components}")
        self.n_iter = check_positive_int(n_iter, "n_iter")
        self.covariance_type = check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
        self.init_params = check_choice(init_params, "init_params", ("points", *INIT_PARAMS))
        self.random_state = check_positive_int(random_state, "random_state", minimum=0)
        self.reg_covar, self.dpi = reg_covar, dpi
        self._paths: dict[int, EMPath] = {}
        # one view for every K and iteration, so that frames can be compared
        x = self.x.numpy()
        lo, hi = x.min(0), x.max(0)
        pad = 0.1 * (hi - lo)
        self.limits = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])

        self.k_slider = widgets.IntSlider(value=n_components, min=1, max=self.max_components, description="K",
                                          continuous_update=False)
        self.iteration_slider = widgets.IntSlider(value=0, min=0, max=self.n_iter, description="iteration",
                                                  continuous_update=False)
        self.play = widgets.Play(value=0, min=0, max=self.n_iter, interval=500, description="run EM")
        widgets.jslink((self.play, "value"), (self.iteration_slider, "value"))
        self.controls = [self.k_slider, self.iteration_slider]
        self._build("em", figsize=(9, 3.6), rows=[widgets.HBox([self.k_slider, self.play, self.iteration_slider])])

    def path(self, n_components: int) -> EMPath:
        """EM's iterates for ``n_components`` components, computed on first use and cached."""
        if n_components not in self._paths:
            init = {} if self.init_params != "points" else start_at_points(self.x, n_components, self.covariance_type,
                                                                           self.random_state)
            self._paths[n_components] = em_path(self.x, n_components, n_iter=self.n_iter,
                                                covariance_type=self.covariance_type, reg_covar=self.reg_covar,
                                                init_params="kmeans++" if self.init_params == "points" else self.init_params,
                                                random_state=self.random_state, **init)
        return self._paths[n_components]

    def draw(self, n_components: int, iteration: int) -> Figure:
        """The figure for K = ``n_components`` after ``iteration`` EM iterations."""
        return em_figure(self.path(n_components), iteration, self.x, fig=self.figure, limits=self.limits)

    def describe(self, n_components: int, iteration: int) -> str:
        """The line under the figure: the log-likelihood at this iteration, and how many steps lowered it.

        EM never lowers the likelihood when ``reg_covar`` = 0; with ``reg_covar`` > 0 the M-step
        maximises Q plus a penalty that depends on the responsibilities, so a step may lower it (by
        less than 1e-9 nats per point at the default 1e-6). The count is measured on this run, so the
        sentence stays true for any ``reg_covar``.
        """
        values = self.path(n_components).log_likelihood.numpy()
        step = "the initial parameters" if iteration == 0 else \
            f"{values[iteration] - values[iteration - 1]:+.4f} since iteration {iteration - 1}"
        drops = int((np.diff(values[:iteration + 1]) < -DROP).sum())
        why = "with reg_covar = 0 EM never lowers it" if self.reg_covar == 0 else \
            f"reg_covar = {self.reg_covar:g} can make EM lower it; with 0 it never does"
        return (f"K = {n_components}, iteration {iteration} of {self.n_iter}: mean log-likelihood "
                f"{values[iteration]:.4f} nats ({step}); steps that lowered it by more than {DROP:g}: "
                f"{drops} of {iteration} ({why})")

    def render(self, n_components: int, iteration: int) -> tuple[str, bytes]:
        fig = self.draw(n_components, iteration)
        text = f"<pre style='margin:0'>{html.escape(self.describe(n_components, iteration))}</pre>"
        return text, _png(fig, self.dpi)


def em_widget(x: Any, **kwargs: Any) -> EMWidget:
    """An :class:`EMWidget`: step through EM on 2-D data ``x`` of shape (n_samples, 2), for K = 1 … max_components."""
    return EMWidget(x, **kwargs)
