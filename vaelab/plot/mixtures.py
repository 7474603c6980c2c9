"""Figures for finite Gaussian mixtures (lesson 01, reused later): components as ellipses, points coloured
by their responsibilities, and EM's log-likelihood curve."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

from .. import gmm as _gmm
from .._validation import check_2d

__all__ = ["COMPONENT_COLORS", "MANY_COLORS", "component_colors", "responsibility_colors", "gmm_ellipses", "plot_gmm",
           "log_likelihood_curve", "em_figure"]

COMPONENT_COLORS = tuple(plt.get_cmap("tab10").colors)
# ten more, each chosen in turn as far (in RGB) from tab10 and from those before it as a list of
# distinct colours allows; tab20 would pair every colour with a pale copy of itself, and 16
# components could not be told apart
EXTRA_COLORS = ("#000000", "#aaffc3", "#0000ff", "#ff00ff", "#000075", "#00ff00", "#800000", "#ffff00",
                "#ffd8b1", "#dcbeff")
MANY_COLORS = COMPONENT_COLORS + tuple(to_rgb(c) for c in EXTRA_COLORS)


def component_colors(n_components: int) -> np.ndarray:
    """One RGB colour per component, of shape (n_components, 3): tab10, then ten distinct others (20 in all).

    Beyond 20 the palette repeats.

    >>> component_colors(16).shape
    (16, 3)
    """
    palette = COMPONENT_COLORS if n_components <= 10 else MANY_COLORS
    return np.array([to_rgb(palette[k % len(palette)]) for k in range(n_components)])


def _numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64)


def _mixture_parameters(gmm_or_params: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(weights (K,), means (K, D), full covariances (K, D, D)) as numpy, from a fitted GaussianMixture
    or a tuple (weights, means, covariances) whose covariances are (K, D, D), (K, D) or (K,)."""
    if isinstance(gmm_or_params, _gmm.GaussianMixture):
        gmm_or_params._check_is_fitted()
        params = (gmm_or_params.weights_, gmm_or_params.means_, gmm_or_params.covariances_)
    elif isinstance(gmm_or_params, (tuple, list)) and len(gmm_or_params) == 3:
        params = gmm_or_params
    else:
        raise TypeError("`gmm_or_params` must be a fitted vaelab.GaussianMixture or a tuple "
                        f"(weights, means, covariances), got {type(gmm_or_params).__name__}")
    weights, means, cov = (_numpy(p) for p in params)
    if means.ndim != 2 or weights.shape != (means.shape[0],):
        raise ValueError(f"`means` must have shape (K, D) and `weights` (K,), got {means.shape} and {weights.shape}")
    K, D = means.shape
    if cov.shape == (K, D, D):
        full = cov
    elif cov.shape == (K, D):
        full = np.stack([np.diag(c) for c in cov])
    elif cov.shape == (K,):
        full = cov[:, None, None] * np.eye(D)
    else:
        raise ValueError(f"`covariances` must have shape ({K}, {D}, {D}), ({K}, {D}) or ({K},), got {cov.shape}")
    return weights, means, full


def responsibility_colors(resp: Any, colors: Any = None) -> np.ndarray:
    """Blend the components' colours by responsibility, of shape (n_samples, 3): a point shared
    50/50 between red and blue is drawn purple."""
    resp = _numpy(resp)
    colors = component_colors(resp.shape[1]) if colors is None else np.asarray(colors, dtype=np.float64)
    return np.clip(resp @ colors, 0.0, 1.0)


def gmm_ellipses(ax: Axes, means: Any, covariances: Any, weights: Any = None, *, n_std: Sequence[float] = (1.0, 2.0),
                 colors: Any = None, dims: tuple[int, int] = (0, 1)) -> list[Ellipse]:
    """Draw each component as ellipses at ``n_std`` standard deviations, and its mean as a dot whose area
    grows with π_k (30 + 400 π_k points², so that a component of tiny weight stays visible).

    ``covariances`` of shape (K, D, D), (K, D) or (K,); for D > 2 the marginal over ``dims`` is drawn.
    """
    K = _numpy(means).shape[0]
    weights = np.full(K, 1.0 / K) if weights is None else weights
    weights, means, cov = _mixture_parameters((weights, means, covariances))
    colors = component_colors(K) if colors is None else np.asarray(colors)
    idx = list(dims)
    patches = []
    for k in range(K):
        sub = cov[k][np.ix_(idx, idx)]  # (2, 2): the marginal covariance of the two drawn coordinates
        eigvals, eigvecs = np.linalg.eigh(sub)
        angle = np.degrees(np.arctan2(eigvecs[1, -1], eigvecs[0, -1]))
        for i, s in enumerate(n_std):
            width, height = 2 * s * np.sqrt(np.maximum(eigvals[::-1], 0.0))
            patch = Ellipse(means[k, idx], width, height, angle=angle, fill=False, color=colors[k],
                            lw=2.0 if i == 0 else 1.0, alpha=0.9 if i == 0 else 0.5)
            ax.add_patch(patch)
            patches.append(patch)
    ax.scatter(means[:, idx[0]], means[:, idx[1]], s=30 + 400 * weights, c=colors, edgecolor="k", zorder=3)
    return patches


def plot_gmm(ax: Axes, X: Any, gmm_or_params: Any, resp: Any = None, *, n_std: Sequence[float] = (1.0, 2.0),
             title: str | None = None, s: float = 8.0, dims: tuple[int, int] = (0, 1), limits: Any = None) -> Axes:
    """Data coloured by responsibilities, with the mixture's components as ellipses (axes labelled x₁, x₂).

    ``gmm_or_params``: a fitted ``GaussianMixture`` or (weights, means, covariances). ``resp`` of shape
    (n_samples, n_components): colours for the points; by default the E-step's responsibilities under
    these parameters; ``False`` draws the points grey. ``limits`` = (x_min, x_max, y_min, y_max) keeps
    the view fixed (default: around ``X``).

    >>> fig, ax = plt.subplots()
    >>> ax = plot_gmm(ax, np.array([[0.0, 0.0], [1.0, 1.0]]), ([1.0], [[0.5, 0.5]], [[[1.0, 0.0], [0.0, 1.0]]]))
    >>> len(ax.patches)  # the 1- and 2-standard-deviation ellipses
    2
    >>> plt.close(fig)
    """
    x = check_2d(X, "X").detach().cpu().double().numpy()
    weights, means, cov = _mixture_parameters(gmm_or_params)
    if x.shape[1] != means.shape[1]:
        raise ValueError(f"`X` has {x.shape[1]} features but the mixture's means have {means.shape[1]}")
    colors = component_colors(len(weights))
    if resp is None:
        resp = _gmm.e_step(x, weights, means, cov).numpy()
    point_colors = np.full((len(x), 3), 0.55) if resp is False else responsibility_colors(resp, colors)
    ax.scatter(x[:, dims[0]], x[:, dims[1]], s=s, c=point_colors, alpha=0.6, linewidths=0)
    gmm_ellipses(ax, means, cov, weights, n_std=n_std, colors=colors, dims=dims)
    if limits is None:
        lo, hi = x[:, list(dims)].min(0), x[:, list(dims)].max(0)
        pad = 0.1 * (hi - lo) + 1e-9
        limits = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[2], limits[3])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(f"$x_{dims[0] + 1}$")
    ax.set_ylabel(f"$x_{dims[1] + 1}$")
    if title:
        ax.set_title(title)
    return ax


def log_likelihood_curve(ax: Axes, history: Any, *, current: int | None = None, label: str | None = None,
                         color: Any = "tab:blue", ylim: Any = None) -> Axes:
    """EM's mean log-likelihood per sample against the iteration (0 = the initial parameters).

    ``current`` marks one iteration (the one the ellipses show). ``ylim`` fixes the vertical range.
    """
    values = _numpy(history).ravel()
    iterations = np.arange(len(values))
    ax.plot(iterations, values, color=color, lw=1.5, label=label)
    if current is not None:
        ax.plot([current], [values[current]], "o", color="tab:red", zorder=3)
        ax.axvline(current, color="tab:red", lw=0.8, alpha=0.5)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("mean log-likelihood (nats)")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    return ax


def em_figure(path: _gmm.EMPath, iteration: int, X: Any, *, fig: Figure | None = None,
              title: str | None = None, limits: Any = None) -> Figure:
    """Two panels for one EM iterate: the mixture θ_t over the data (coloured by the responsibilities
    the next E-step computes), and the log-likelihood curve with iteration t marked."""
    if not 0 <= iteration < len(path):
        raise ValueError(f"`iteration` must be in [0, {len(path) - 1}], got {iteration}")
    fig = fig or plt.figure(figsize=(9, 3.6))
    fig.clear()
    ax_mix, ax_ll = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    K = path.weights.shape[1]
    plot_gmm(ax_mix, X, path.parameters(iteration), limits=limits,
             title=title or f"K = {K}, after {iteration} EM iteration{'s' if iteration != 1 else ''}")
    values = _numpy(path.log_likelihood)
    span = values.max() - values.min()
    log_likelihood_curve(ax_ll, values, current=iteration,
                         ylim=(values.min() - 0.05 * span - 1e-3, values.max() + 0.05 * span + 1e-3))
    ax_ll.set_title(f"log-likelihood {values[iteration]:.3f} nats per point")
    # fixed margins rather than tight_layout: no extra draw pass, so a widget redraws faster
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.3)
    return fig
