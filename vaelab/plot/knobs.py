"""Figures for lesson 04 (β and the latent prior): the latent space over the prior's density, samples
and reconstructions side by side, the rate–distortion plane, KL per latent dimension."""
from __future__ import annotations

import math
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["KnobsFigure", "kl_bars", "knobs_figure", "latent_panel", "prior_centres", "rate_distortion_plane"]


def image_grid(images: Any, n_cols: int, *, pad: float = 0.3) -> np.ndarray:
    """Tile square images (rows of a (n, side²) array) into one 2-D array, ``n_cols`` per row.

    >>> image_grid(np.zeros((5, 4)), 3).shape
    (5, 8)
    """
    images = np.asarray(torch.as_tensor(images).detach().cpu(), dtype=float)
    n, d = images.shape
    side = math.isqrt(d)
    if side * side != d:
        raise ValueError(f"`images` must hold square images (side² numbers per row), got rows of {d} numbers")
    n_rows = math.ceil(n / n_cols)
    step = side + 1
    grid = np.full((n_rows * step - 1, n_cols * step - 1), pad)
    for i, img in enumerate(images):
        r, c = divmod(i, n_cols)
        grid[r * step:r * step + side, c * step:c * step + side] = img.reshape(side, side)
    return grid


def _limit(mu: np.ndarray) -> float:
    # frame the codes, and at least the prior's bulk: a β = 0 code can drift far from N(0, I)
    return float(max(3.0, 1.15 * np.quantile(np.abs(mu), 0.99))) if mu.size else 3.0


def _codes(model: Any, X: Any, max_points: int) -> np.ndarray:
    x = model.check_data(X, "X")[:max_points]
    return model.encode_params(x)[0].cpu().numpy()  # (n, L)


def _prior_density(model: Any, lim: float, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """The grid and p(z)/max p(z) on it, for a 2-D latent space."""
    t = torch.linspace(-lim, lim, resolution)
    zz = torch.stack(torch.meshgrid(t, t, indexing="xy"), -1).reshape(-1, 2)  # (R*R, 2)
    ref = next(model.parameters())
    logp = model.prior.log_prob(zz.to(ref.device, ref.dtype)).reshape(resolution, resolution).cpu().numpy()
    return t.numpy(), np.exp(logp - logp.max())


# contours of the density itself, from 1 % of its peak: where the sampler actually draws
_LEVELS = [0.01, 0.1, 0.3, 0.6, 1.0]


def _scatter_kwargs(y: Any, max_points: int) -> dict:
    if y is None:
        return {}
    return {"c": np.asarray(torch.as_tensor(y)[:max_points].cpu()), "cmap": "tab10", "vmin": 0, "vmax": 9}


def _xy(mu: np.ndarray) -> np.ndarray:
    return np.c_[mu[:, 0], mu[:, 1] if mu.shape[1] > 1 else np.zeros(len(mu))]


@torch.no_grad()
def prior_centres(model: Any) -> np.ndarray | None:
    """Where a learned prior puts its components, of shape (K, latent_dim); None for N(0, I).

    The means m_k of a ``MixturePrior``, the codes E_q[z | u_k] of a ``VampPrior``'s pseudo-inputs.

    >>> from vaelab.models import VAE
    >>> from vaelab.priors import MixturePrior
    >>> prior_centres(VAE.mlp(4, 2, hidden=(4,), prior=MixturePrior(2, 3))).shape
    (3, 2)
    """
    prior = getattr(model, "prior", None)
    if hasattr(prior, "components"):  # VampPrior: the pseudo-inputs' codes
        return prior.components()[0].detach().cpu().numpy()
    if hasattr(prior, "means"):  # MixturePrior
        return prior.means.detach().cpu().numpy()
    return None


def _centre_kwargs() -> dict:
    return {"marker": "X", "s": 60, "c": "white", "edgecolors": "black", "linewidths": 1.2, "zorder": 3}


def _class_legend(ax: Axes, y: Any) -> None:
    """One coloured dot per digit class present in ``y``, under the panel."""
    classes = sorted({int(v) for v in np.asarray(torch.as_tensor(y).cpu()).ravel()})
    cmap = plt.get_cmap("tab10")
    handles = [plt.Line2D([], [], ls="", marker="o", ms=5, color=cmap(c % 10), label=str(c)) for c in classes]
    ax.legend(handles=handles, title="digit", fontsize=8, title_fontsize=8, ncol=min(len(handles), 5),
              loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False, handletextpad=0.1,
              columnspacing=0.6)


@torch.no_grad()
def latent_panel(model: Any, X: Any, y: Any = None, *, ax: Axes | None = None, resolution: int = 80,
                 max_points: int = 600, legend: bool = False) -> Axes:
    """The posterior means E_q[z|x] (first two latent coordinates) over contours of p(z).

    The contours are the prior's density (drawn when latent_dim is 2); the dots are where the encoder
    puts each x, coloured by its label ``y``; white crosses mark a learned prior's components
    (:func:`prior_centres`). ``legend`` adds the digit classes under the panel.
    """
    ax = ax or plt.gca()
    mu = _codes(model, X, max_points)
    lim = _limit(mu[:, :2])
    if model.latent_dim == 2:
        t, p = _prior_density(model, lim, resolution)
        ax.contourf(t, t, p, levels=_LEVELS, cmap="Greys", alpha=0.5)
    xy = _xy(mu)
    ax.scatter(xy[:, 0], xy[:, 1], s=7, alpha=0.8, linewidths=0, **_scatter_kwargs(y, max_points))
    centres = prior_centres(model)
    if centres is not None:
        ax.scatter(*_xy(centres).T, **_centre_kwargs())
    if legend and y is not None:
        _class_legend(ax, torch.as_tensor(y)[:max_points])
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title("codes $E_q[z|x]$ over $p(z)$", fontsize=9)
    return ax


@torch.no_grad()
def _pictures(model: Any, X: Any, n_samples: int, n_recon: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tiled E[x|z] for z ~ p(z), and tiled data rows alternating with their reconstructions."""
    x = model.check_data(X, "X")
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        z = model.prior.sample(n_samples)
    samples = image_grid(model.decode(z).mean, math.isqrt(n_samples) or 1)
    originals = x[:n_recon]
    recon = model.decode(model.encode_params(originals)[0]).mean
    n_cols = max(1, math.ceil(n_recon / 2))
    pairs = [t for i in range(0, n_recon, n_cols) for t in (originals[i:i + n_cols], recon[i:i + n_cols])]
    return samples, image_grid(torch.cat(pairs), n_cols)


class KnobsFigure:
    """The panels of :func:`knobs_figure`, built once and redrawn in place for each new model.

    Three panels — codes over the prior, samples, reconstructions — and with ``plane=True`` a fourth:
    the rate–distortion plane with the models seen so far and the current one marked. Redrawing in
    place (new data in the same artists) skips building axes and ticks, which is most of
    matplotlib's time for a figure this small: the dashboard of lesson 04 answers faster this way.
    """

    def __init__(self, fig: Figure | None = None, *, figsize: tuple[float, float] | None = None,
                 plane: bool = False):
        self.plane = bool(plane)
        figsize = figsize or ((13, 4.0) if self.plane else (10, 4.0))
        self.fig = fig if fig is not None else plt.figure(figsize=figsize)
        self.fig.clear()
        n = 4 if self.plane else 3
        gs = self.fig.add_gridspec(1, n, wspace=0.3, left=0.05, right=0.98, bottom=0.3, top=0.85,
                                   width_ratios=[1, 1, 1, 1.25][:n])
        axes = [self.fig.add_subplot(gs[i]) for i in range(n)]
        self.ax_latent, self.ax_samples, self.ax_recon = axes[:3]
        self.ax_plane = axes[3] if self.plane else None
        self.ax_latent.set_aspect("equal")
        self.ax_latent.set_xlabel("$z_1$")
        self.ax_latent.set_ylabel("$z_2$")
        self.ax_latent.set_title("codes $E_q[z|x]$ over $p(z)$", fontsize=10)
        self.ax_samples.set_title("decoded from $z \\sim p(z)$", fontsize=10)
        self.ax_recon.set_title("data, reconstructions (rows 2, 4)", fontsize=10)
        for ax in (self.ax_samples, self.ax_recon):
            ax.axis("off")
        self._contour = self._scatter = self._centres = self._samples = self._recon = None
        self._legend = False
        self._title = self.fig.suptitle("", fontsize=11)

    def _image(self, ax: Axes, current, grid: np.ndarray):
        if current is None:
            return ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
        current.set_data(grid)
        current.set_extent((-0.5, grid.shape[1] - 0.5, grid.shape[0] - 0.5, -0.5))
        return current

    @torch.no_grad()
    def draw(self, model: Any, X: Any, y: Any = None, *, title: str = "", n_samples: int = 36, n_recon: int = 12,
             seed: int = 0, resolution: int = 80, max_points: int = 600,
             points: Sequence[tuple[float, float, str]] = (), current: tuple[float, float] | None = None,
             anchor: float | None = None) -> Figure:
        """Show ``model``: its codes of ``X`` over its prior, samples from the prior, reconstructions.

        With ``plane=True``: ``points`` are (rate, distortion, label) of the models to show in the
        rate–distortion plane, ``current`` the (rate, distortion) of ``model`` (marked in red), and
        ``anchor`` the distortion of independent pixels, the model with no code (R = 0).
        """
        mu = _codes(model, X, max_points)
        lim = _limit(mu[:, :2])
        if self._contour is not None:
            self._contour.remove()
            self._contour = None
        if model.latent_dim == 2:
            t, p = _prior_density(model, lim, resolution)
            self._contour = self.ax_latent.contourf(t, t, p, levels=_LEVELS, cmap="Greys", alpha=0.5, zorder=0)
        xy = _xy(mu)
        if self._scatter is None or len(self._scatter.get_offsets()) != len(xy):
            if self._scatter is not None:
                self._scatter.remove()
            self._scatter = self.ax_latent.scatter(xy[:, 0], xy[:, 1], s=7, alpha=0.8, linewidths=0, zorder=1,
                                                   **_scatter_kwargs(y, max_points))
        else:
            self._scatter.set_offsets(xy)
        if self._centres is not None:
            self._centres.remove()
            self._centres = None
        centres = prior_centres(model)
        if centres is not None:
            self._centres = self.ax_latent.scatter(*_xy(centres).T, **_centre_kwargs())
        if y is not None and not self._legend:
            _class_legend(self.ax_latent, torch.as_tensor(y)[:max_points])
            self._legend = True
        self.ax_latent.set_xlim(-lim, lim)
        self.ax_latent.set_ylim(-lim, lim)
        samples, pairs = _pictures(model, X, n_samples, n_recon, seed)
        self._samples = self._image(self.ax_samples, self._samples, samples)
        self._recon = self._image(self.ax_recon, self._recon, pairs)
        if self.plane:
            self._draw_plane(points, current, anchor)
        self._title.set_text(title)
        return self.fig

    def _draw_plane(self, points, current, anchor) -> None:
        ax = self.ax_plane
        ax.cla()
        if points:
            r, d, labels = zip(*points)
            ax.plot(r, d, "o-", color="0.55", ms=4, lw=1, zorder=1)
            for ri, di, label in points:
                ax.annotate(label, (ri, di), textcoords="offset points", xytext=(4, 3), fontsize=8, color="0.3")
        if anchor is not None:
            ax.plot([0], [anchor], "*", color="k", ms=9, zorder=2, label="independent pixels (R = 0)")
        if current is not None:
            ax.plot([current[0]], [current[1]], "o", color="C3", ms=9, zorder=3, label="this model")
        rs = [p[0] for p in points] + ([current[0]] if current else []) + ([0.0] if anchor is not None else [])
        ds = [p[1] for p in points] + ([current[1]] if current else []) + ([anchor] if anchor is not None else [])
        if rs:
            top = max(max(rs), 1.0)
            if top > 30:  # a VampPrior at β = 0 pays thousands of nats: keep the small rates readable
                ax.set_xscale("symlog", linthresh=10)
                ax.set_xlim(-0.5, 1.5 * top)
            else:
                ax.set_xlim(-0.04 * top, 1.08 * top)
            pad = 0.1 * max(max(ds) - min(ds), 1.0)
            ax.set_ylim(min(ds) - pad, max(ds) + pad)
        ax.set_xlabel("rate R  [nats]", fontsize=9)
        ax.set_ylabel("distortion D  [nats]", fontsize=9)
        ax.set_title("rate–distortion plane", fontsize=10)
        ax.tick_params(labelsize=8)
        if anchor is not None or current is not None:
            ax.legend(fontsize=8, loc="upper right", frameon=False)


def knobs_figure(model: Any, X: Any, y: Any = None, *, title: str = "", n_samples: int = 36, n_recon: int = 12,
                 seed: int = 0, fig: Figure | None = None) -> Figure:
    """Three panels for one trained VAE: latent codes over the prior, samples from the prior, reconstructions.

    Samples show E[x|z] for z ~ p(z) (the component means, not noisy draws); reconstructions show
    the first ``n_recon`` rows of ``X``, each row of data above its row of E[x | z = E_q[z|x]].
    ``seed`` fixes the prior draws (the global generator is left as it was).
    """
    return KnobsFigure(fig).draw(model, X, y, title=title, n_samples=n_samples, n_recon=n_recon, seed=seed)


def rate_distortion_plane(rates: Sequence[float], distortions: Sequence[float], labels: Sequence[str] | None = None,
                          *, ax: Axes | None = None, elbo_lines: bool = True, anchor: float | None = None,
                          label: str | None = None, max_rate: float | None = None, **scatter_kwargs) -> Axes:
    """Models as points (rate R, distortion D) in nats, with lines R + D = −ELBO of slope −1.

    Every point on one dashed line has the same ELBO; the lowest line touched is the best ELBO.
    ``anchor`` marks the distortion of a model without a code (independent pixels) at R = 0;
    ``label`` names this series in the legend (call again with ``elbo_lines=False`` to add a second
    series, e.g. training next to held-out points); ``max_rate`` zooms in on rates 0 … max_rate.
    """
    ax = ax or plt.gca()
    rates, distortions = np.asarray(rates, float), np.asarray(distortions, float)
    if rates.shape != distortions.shape or rates.ndim != 1:
        raise ValueError(f"`rates` and `distortions` must be 1-D of one length, got shapes {rates.shape} "
                         f"and {distortions.shape}")
    if labels is not None and len(labels) != len(rates):
        raise ValueError(f"`labels` must name each of the {len(rates)} points, got {len(labels)}")
    if max_rate is not None and not max_rate > 0:
        raise ValueError(f"`max_rate` must be a number > 0, got {max_rate}")
    scatter_kwargs = {"s": 30, **scatter_kwargs}
    ax.plot(rates, distortions, "-", lw=1, alpha=0.5, zorder=1, color=scatter_kwargs.get("color", "0.7"))
    ax.scatter(rates, distortions, zorder=2, label=label, **scatter_kwargs)
    for i, text in enumerate(labels or []):
        if max_rate is None or rates[i] <= max_rate:
            ax.annotate(text, (rates[i], distortions[i]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if anchor is not None:
        ax.scatter([0.0], [anchor], marker="*", s=140, color="k", zorder=3, label="independent pixels (R = 0)")
    if elbo_lines:
        total = rates + distortions
        r = np.linspace(0, (max_rate or rates.max() * 1.05) + 1e-9, 2)
        best, middle = total.min(), np.median(total)
        ax.plot(r, best - r, "--", color="C3", lw=1, zorder=0, label=f"R + D = {best:.1f} nats (best −ELBO)")
        ax.plot(r, middle - r, ":", color="C3", lw=1, zorder=0, label=f"R + D = {middle:.1f} nats (median)")
    shown = rates <= max_rate if max_rate is not None else np.ones_like(rates, bool)
    d_all = np.r_[distortions[shown], [anchor] if anchor is not None else []]
    top = max_rate if max_rate is not None else max(rates.max(), 1)
    pad = 0.08 * max(np.ptp(d_all), 1.0)
    low, high = ax.get_ylim() if ax.has_data() and getattr(ax, "_vaelab_rd", False) else (np.inf, -np.inf)
    ax.set_xlim(-0.03 * top, top * (1.0 if max_rate is not None else 1.05))
    ax.set_ylim(min(low, d_all.min() - 2 * pad), max(high, d_all.max() + 2 * pad))
    ax._vaelab_rd = True  # a second series widens, never narrows, the frame
    ax.set_xlabel("rate R = E KL(q(z|x) ‖ p(z))  [nats]")
    ax.set_ylabel("distortion D = −E log p(x|z)  [nats]")
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    return ax


def kl_bars(kl_per_dim: Any, *, ax: Axes | None = None, threshold: float | None = None, label: str = "") -> Axes:
    """KL per latent dimension as bars, sorted from largest; an optional horizontal line at ``threshold``."""
    ax = ax or plt.gca()
    kl = np.sort(np.asarray(torch.as_tensor(kl_per_dim).detach().cpu(), float))[::-1]
    ax.bar(np.arange(len(kl)), kl, color="C0")
    if threshold is not None:
        ax.axhline(threshold, color="C3", lw=1, ls="--")
    ax.set_xlabel("latent dimension (sorted)")
    ax.set_ylabel("KL [nats]")
    if label:
        ax.set_title(label, fontsize=9)
    return ax
