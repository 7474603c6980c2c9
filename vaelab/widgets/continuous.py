"""Widgets for lesson 02 (continuous mixtures).

``components_widget``: a K slider (and a choice of where the nodes go) that puts K components on a
curve f(z_k) with weights from p(z), and shows the density of x becoming smooth as K grows.
``prior_widget``: pick the prior's shape (normal, uniform, two bumps) and spread, see the density
of x change; for two bumps a second slider sets the bumps' width apart from their separation. Every change only draws (no training), in well under a second.
"""
from __future__ import annotations

import html
from typing import Any, Callable

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from .._validation import check_choice, check_positive, check_positive_int
from torch.distributions import Categorical, MixtureSameFamily, Normal

from ..continuous import NODES, PRIOR_KINDS, ContinuousMixture, example_prior, mixture_log_prob
from ..plot.continuous import components_figure, mixture_extent, prior_figure
from ._frame import _Frame, _png

__all__ = ["ComponentsWidget", "PriorWidget", "components_widget", "prior_widget"]

NODE_LABELS = {"quadrature": "Gauss–Hermite nodes", "quantile": "prior quantiles", "grid": "even grid, π ∝ p(z)"}
PRIOR_LABELS = {"normal": "normal", "uniform": "uniform", "two-bump": "two bumps"}


class ComponentsWidget(_Frame):
    """K components N(f(z_k), σ²I) with weights π_k from p(z): a slider for K, a dropdown for the nodes.

    ``draw(n_components, nodes)`` is the callback (it returns the figure and the gap to the
    continuum); ``update()`` redraws from the controls; ``text.value`` / ``image.value`` hold what is shown.
    """

    def __init__(self, mixture: ContinuousMixture, *, n_components: int = 3, max_components: int = 100,
                 nodes: str = "quadrature", data: Any = None, dpi: int = 72, resolution: int = 100):
        self.mixture = mixture
        self.extent = mixture_extent(mixture)
        self.data, self.dpi, self.resolution = data, dpi, check_positive_int(resolution, "resolution")
        max_components = check_positive_int(max_components, "max_components", minimum=2)
        n_components = check_positive_int(n_components, "n_components")
        if n_components > max_components:
            raise ValueError(f"`n_components` must be at most max_components={max_components}, got {n_components}")
        check_choice(nodes, "nodes", NODES)
        # the continuum on the same grid the figure uses, once: each K is compared with it
        self._grid = self._grid_points()
        z, w = mixture.components(400, "grid")
        with torch.no_grad():
            self._log_p = mixture_log_prob(self._grid, mixture.decode(z), w, mixture.obs_scale)
        self.slider = widgets.IntSlider(value=n_components, min=1, max=max_components, description="K",
                                        continuous_update=False)
        self.nodes_dropdown = widgets.Dropdown(options=[(NODE_LABELS[k], k) for k in NODES], value=nodes,
                                               description="nodes")
        self.controls = [self.slider, self.nodes_dropdown]
        self._build("components")

    def _grid_points(self) -> torch.Tensor:
        x0, x1, y0, y1 = self.extent
        ref = self.mixture.prior.mean
        gx = torch.linspace(x0, x1, 80, dtype=ref.dtype, device=ref.device)
        gy = torch.linspace(y0, y1, 80, dtype=ref.dtype, device=ref.device)
        self._cell = float((gx[1] - gx[0]) * (gy[1] - gy[0]))  # area of one grid cell
        return torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)

    @torch.no_grad()
    def gap(self, n_components: int, nodes: str) -> float:
        """∫ |p_K(x) − p(x)| dx on the figure's square: 0 for the same density, 2 for no overlap."""
        z, w = self.mixture.components(n_components, nodes)
        log_p_k = mixture_log_prob(self._grid, self.mixture.decode(z), w, self.mixture.obs_scale)
        return float((log_p_k.exp() - self._log_p.exp()).abs().sum() * self._cell)

    def draw(self, n_components: int, nodes: str) -> tuple[Figure, float]:
        """The figure for K components placed by ``nodes``, and the gap to the continuum (nats)."""
        components_figure(self.mixture, n_components, nodes=nodes, extent=self.extent, data=self.data,
                          fig=self.figure, resolution=self.resolution)
        return self.figure, self.gap(n_components, nodes)

    def render(self, n_components: int, nodes: str) -> tuple[str, bytes]:
        fig, gap = self.draw(n_components, nodes)
        text = (f"<pre style='margin:0'>K = {n_components} components at {html.escape(NODE_LABELS[nodes])}: "
                f"∫|p_K(x) − p(x)| dx = {gap:.3f}   (0: the continuum itself, 2: no overlap)</pre>")
        return text, _png(fig, self.dpi)


class PriorWidget(_Frame):
    """The same curve f(z) under different priors p(z): a dropdown for the shape, a slider for the spread.

    ``draw(kind, scale, width)`` is the callback (it returns the figure and the mixture it drew).
    ``width`` matters for two bumps only: 0 ties the bumps to the spread as ``example_prior`` does
    (½ N(∓a, (0.3 s)²), standard deviation s); a width w > 0 puts the bumps at ±s, each N(±s, w²), so
    that narrowing the bumps does not move them.
    """

    def __init__(self, decoder: Callable[[torch.Tensor], torch.Tensor], *, obs_scale: float, kind: str = "normal",
                 scale: float = 1.0, extent: Any = None, data: Any = None, dpi: int = 72, resolution: int = 100):
        self.decoder = decoder
        self.obs_scale = check_positive(obs_scale, "obs_scale")
        check_choice(kind, "kind", PRIOR_KINDS)
        scale = check_positive(scale, "scale")
        self.data, self.dpi, self.resolution = data, dpi, check_positive_int(resolution, "resolution")
        # one view for every prior, so that shapes can be compared: the widest spread's extent
        self.extent = tuple(extent) if extent is not None else mixture_extent(self.mixture("normal", 2.5))
        self.z_lim = (-4.5, 4.5)  # holds the widest uniform, √3 · 2.5 ≈ 4.3
        self.kind_dropdown = widgets.Dropdown(options=[(PRIOR_LABELS[k], k) for k in PRIOR_KINDS], value=kind,
                                              description="prior p(z)")
        self.scale_slider = widgets.FloatSlider(value=scale, min=0.2, max=2.5, step=0.1, description="spread",
                                                continuous_update=False, readout_format=".1f")
        self.width_slider = widgets.FloatSlider(value=0.0, min=0.0, max=1.5, step=0.05, description="bump width",
                                                continuous_update=False, readout_format=".2f")
        self.controls = [self.kind_dropdown, self.scale_slider, self.width_slider]
        self._build("prior")

    def mixture(self, kind: str, scale: float, width: float = 0.0) -> ContinuousMixture:
        """The continuous mixture with this decoder under the prior ``example_prior(kind, scale)``, or, for
        two bumps with ``width`` > 0, under ½ N(−scale, width²) + ½ N(scale, width²)."""
        params = list(self.decoder.parameters()) if isinstance(self.decoder, torch.nn.Module) else []
        dtype = params[0].dtype if params else torch.float64  # the decoder's precision decides
        if kind == "two-bump" and width > 0:
            check_positive(width, "width")
            prior = MixtureSameFamily(Categorical(torch.tensor([0.5, 0.5], dtype=dtype)),
                                      Normal(torch.tensor([-scale, scale], dtype=dtype),
                                             torch.tensor([width, width], dtype=dtype)))
        else:
            prior = example_prior(kind, scale, dtype=dtype)
        return ContinuousMixture(self.decoder, obs_scale=self.obs_scale, prior=prior)

    @staticmethod
    def _describe(kind: str, scale: float, width: float) -> str:
        if kind == "two-bump" and width > 0:
            return f"two bumps at ±{scale:.1f}, each of width (standard deviation) {width:.2f}"
        return f"{PRIOR_LABELS[kind]}, standard deviation {scale:.1f}"

    def draw(self, kind: str, scale: float, width: float = 0.0) -> tuple[Figure, ContinuousMixture]:
        mixture = self.mixture(kind, scale, width)
        prior_figure(mixture, extent=self.extent, data=self.data, fig=self.figure, resolution=self.resolution,
                     title=f"the prior p(z): {self._describe(kind, scale, width)}", z_lim=self.z_lim)
        return self.figure, mixture

    def render(self, kind: str, scale: float, width: float = 0.0) -> tuple[str, bytes]:
        fig, mixture = self.draw(kind, scale, width)
        note = "" if kind == "two-bump" else " (bump width: for two bumps only)"
        text = (f"<pre style='margin:0'>p(x) = ∫ N(x; f(z), σ²I) p(z) dz with p(z) "
                f"{html.escape(self._describe(kind, scale, width))}: the weight of the component at z is p(z) dz"
                f"{note}</pre>")
        return text, _png(fig, self.dpi)


def components_widget(mixture: ContinuousMixture, **kwargs) -> ComponentsWidget:
    """A :class:`ComponentsWidget`: grow K and watch the finite mixture on f(z_k) become the continuum."""
    return ComponentsWidget(mixture, **kwargs)


def prior_widget(decoder: Callable[[torch.Tensor], torch.Tensor], *, obs_scale: float, **kwargs) -> PriorWidget:
    """A :class:`PriorWidget`: change the shape and spread of p(z), watch the density of x change."""
    return PriorWidget(decoder, obs_scale=obs_scale, **kwargs)
