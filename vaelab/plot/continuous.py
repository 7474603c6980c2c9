"""Figures for lesson 02 (continuous mixtures): K components on a curve f(z_k) with weights from p(z),
the density of x they make, and how the prior p(z) shapes it. All for a 1-D latent and 2-D data."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..continuous import ContinuousMixture, mixture_log_prob

__all__ = ["components_figure", "curve_mixture", "latent_weights", "prior_figure", "mixture_extent"]


def _check_mixture(mixture: Any) -> ContinuousMixture:
    if not isinstance(mixture, ContinuousMixture):
        raise TypeError(f"`mixture` must be a vaelab.ContinuousMixture, got {type(mixture).__name__}")
    if mixture.latent_dim != 1 or mixture.data_dim != 2:
        raise ValueError(f"these figures draw a 1-D latent and 2-D data, got latent_dim={mixture.latent_dim} "
                         f"and data_dim={mixture.data_dim}")
    return mixture


def _z_range(mixture: ContinuousMixture, n: int = 200, z_lim: Sequence[float] | None = None) -> torch.Tensor:
    """Evenly spaced latent points, of shape (n, 1): over ``z_lim``, else over the prior's mass
    (its 0.25 % to 99.75 % quantiles)."""
    if z_lim is None:
        z, _ = mixture.components(n, "quantile")
        z_lim = (float(z[0, 0]), float(z[-1, 0]))
    ref = mixture.prior.mean
    return torch.linspace(float(z_lim[0]), float(z_lim[1]), n, dtype=ref.dtype, device=ref.device)[:, None]


@torch.no_grad()
def mixture_extent(mixture: ContinuousMixture, *, margin: float = 3.0) -> tuple[float, float, float, float]:
    """A square (x_min, x_max, y_min, y_max) around the curve f(z) where p(z) has mass, ± margin·σ."""
    mixture = _check_mixture(mixture)
    means = mixture.decode(_z_range(mixture)).double().cpu().numpy()
    lo, hi = means.min(0) - margin * mixture.obs_scale, means.max(0) + margin * mixture.obs_scale
    centre, half = (lo + hi) / 2, (hi - lo).max() / 2
    return (float(centre[0] - half), float(centre[0] + half), float(centre[1] - half), float(centre[1] + half))


@torch.no_grad()
def curve_mixture(mixture: ContinuousMixture, n_components: int | None, *, nodes: str = "quadrature",
                  ax: Axes | None = None, extent: Sequence[float] | None = None, resolution: int = 120,
                  data: Any = None, title: str | None = None, z_lim: Sequence[float] | None = None) -> Axes:
    """The density of x for K components N(f(z_k), σ²I) with weights π_k, drawn with the curve f(z).

    ``n_components=None`` draws the continuum itself (a fine grid of 400 nodes stands in for the
    integral); otherwise the K components' centres are drawn as dots with area ∝ π_k. The dashed
    line is f(z) for z in ``z_lim`` (default: where the prior has its mass).
    """
    mixture = _check_mixture(mixture)
    ax = ax or plt.gca()
    extent = tuple(extent) if extent is not None else mixture_extent(mixture)
    K, how = (400, "grid") if n_components is None else (n_components, nodes)
    z, weights = mixture.components(K, how)
    means = mixture.decode(z)  # (K, 2)
    gx = torch.linspace(extent[0], extent[1], resolution, dtype=means.dtype)
    gy = torch.linspace(extent[2], extent[3], resolution, dtype=means.dtype)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)  # (R*R, 2)
    log_p = mixture_log_prob(grid.to(means.device), means, weights.to(means.dtype), mixture.obs_scale)
    ax.imshow(log_p.exp().reshape(resolution, resolution).cpu().numpy(), origin="lower", extent=extent,
              cmap="Blues", interpolation="bilinear")
    line = mixture.decode(_z_range(mixture, 400, z_lim)).cpu().numpy()
    ax.plot(line[:, 0], line[:, 1], color="0.35", lw=0.8, ls="--")
    if data is not None:
        x = np.asarray(torch.as_tensor(data).detach().cpu(), dtype=float)
        ax.scatter(x[:, 0], x[:, 1], s=2, color="k", alpha=0.25)
    if n_components is not None:
        w = weights.cpu().numpy()
        m = means.cpu().numpy()
        ax.scatter(m[:, 0], m[:, 1], s=5 + 120 * w / w.max(), color="tab:orange", edgecolor="k", lw=0.4, zorder=3)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title if title is not None else ("K → ∞" if n_components is None else f"K = {n_components}"))
    return ax


@torch.no_grad()
def latent_weights(mixture: ContinuousMixture, n_components: int | None = None, *, nodes: str = "quadrature",
                   ax: Axes | None = None, title: str | None = "latent space: p(z) and the weights π_k",
                   z_lim: Sequence[float] | None = None) -> Axes:
    """The prior density p(z) on the latent line, with the K nodes z_k as stems of height π_k / Δz_k."""
    mixture = _check_mixture(mixture)
    ax = ax or plt.gca()
    z = _z_range(mixture, 400, z_lim)
    if z_lim is not None and hasattr(mixture.prior, "support"):
        # outside a bounded support log_prob would raise: evaluate inside only
        inside = mixture.prior.support.check(z).reshape(-1)
        z = z[inside]
    density = mixture.prior.log_prob(z).exp()
    if z_lim is not None:  # show the prior's zero outside its support too
        z = torch.cat([z[:1], z, z[-1:]])
        density = torch.cat([density.new_zeros(1), density, density.new_zeros(1)])
    ax.fill_between(z[:, 0].cpu().numpy(), density.cpu().numpy(), color="0.85")
    ax.plot(z[:, 0].cpu().numpy(), density.cpu().numpy(), color="0.4", lw=1)
    if n_components is not None:
        zk, w = mixture.components(n_components, nodes)
        zk, w = zk[:, 0].cpu().numpy(), w.cpu().numpy()
        # a weight is mass, p(z) is mass per unit of z: divide by the width each node stands for
        order = np.argsort(zk)
        zs = zk[order]
        edges = np.concatenate([[zs[0] - (zs[1] - zs[0]) / 2 if len(zs) > 1 else zs[0] - 0.5],
                                (zs[1:] + zs[:-1]) / 2,
                                [zs[-1] + (zs[-1] - zs[-2]) / 2 if len(zs) > 1 else zs[0] + 0.5]])
        height = np.empty_like(w)
        height[order] = w[order] / np.diff(edges)
        ax.vlines(zk, 0, height, color="tab:orange", lw=1.5)
        ax.scatter(zk, height, s=10, color="tab:orange", zorder=3)
    lo, hi = (float(z[0, 0]), float(z[-1, 0])) if z_lim is None else z_lim
    ax.set_xlim(lo, hi)
    ax.set_ylim(0, None)
    ax.set_xlabel("z")
    if title:
        ax.set_title(title)
    return ax


# a fixed layout: tight_layout would cost a quarter of a second on every widget redraw
_LAYOUT = {"width_ratios": [1.4, 1], "left": 0.06, "right": 0.98, "bottom": 0.14, "top": 0.9, "wspace": 0.12}


def components_figure(mixture: ContinuousMixture, n_components: int, *, nodes: str = "quadrature",
                      extent: Sequence[float] | None = None, data: Any = None, fig: Figure | None = None,
                      resolution: int = 120) -> Figure:
    """Two panels: the weights π_k over p(z) in latent space, and the K-component density in data space."""
    fig = fig if fig is not None else plt.figure(figsize=(9, 3.4))
    fig.clear()
    ax_z, ax_x = fig.subplots(1, 2, gridspec_kw=_LAYOUT)
    latent_weights(mixture, n_components, nodes=nodes, ax=ax_z)
    curve_mixture(mixture, n_components, nodes=nodes, ax=ax_x, extent=extent, data=data, resolution=resolution,
                  title=f"data space: K = {n_components} components on f(z)")
    return fig


def prior_figure(mixture: ContinuousMixture, *, extent: Sequence[float] | None = None, data: Any = None,
                 fig: Figure | None = None, resolution: int = 120, title: str | None = None,
                 z_lim: Sequence[float] | None = None) -> Figure:
    """Two panels: the prior p(z), and the density of x = ∫ N(x; f(z), σ²I) p(z) dz it makes."""
    fig = fig if fig is not None else plt.figure(figsize=(9, 3.4))
    fig.clear()
    ax_z, ax_x = fig.subplots(1, 2, gridspec_kw=_LAYOUT)
    latent_weights(mixture, None, ax=ax_z, title=title or "the prior p(z)", z_lim=z_lim)
    curve_mixture(mixture, None, ax=ax_x, extent=extent, data=data, resolution=resolution,
                  title="the density of x it makes", z_lim=z_lim)
    return fig
