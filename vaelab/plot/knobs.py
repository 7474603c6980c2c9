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

__all__ = ["KnobsFigure", "kl_bars", "knobs_figure", "latent_panel", "rate_distortion_plane"]


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
def latent_panel(model: Any, X: Any, y: Any = None, *, ax: Axes | None = None, resolution: int = 80,
                 max_points: int = 600) -> Axes:
    """The posterior means E_q[z|x] (first two latent coordinates) over contours of p(z).

    The contours are the prior's density (drawn when latent_dim is 2); the dots are where the encoder
    puts each x, coloured by its label ``y``.
    """
    ax = ax or plt.gca()
    mu = _codes(model, X, max_points)
    lim = _limit(mu[:, :2])
    if model.latent_dim == 2:
        t, p = _prior_density(model, lim, resolution)
        ax.contourf(t, t, p, levels=_LEVELS, cmap="Greys", alpha=0.5)
    xy = _xy(mu)
    ax.scatter(xy[:, 0], xy[:, 1], s=7, alpha=0.8, linewidths=0, **_scatter_kwargs(y, max_points))
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
    """The three panels of :func:`knobs_figure`, built once and redrawn in place for each new model.

    Redrawing in place (new data in the same artists) skips building axes and ticks, which is most of
    matplotlib's time for a figure this small: the dashboard of lesson 04 answers faster this way.
    """

    def __init__(self, fig: Figure | None = None, *, figsize: tuple[float, float] = (10, 3.3)):
        self.fig = fig if fig is not None else plt.figure(figsize=figsize)
        self.fig.clear()
        gs = self.fig.add_gridspec(1, 3, wspace=0.2)
        self.ax_latent, self.ax_samples, self.ax_recon = (self.fig.add_subplot(gs[i]) for i in range(3))
        self.ax_latent.set_aspect("equal")
        self.ax_latent.set_xlabel("$z_1$")
        self.ax_latent.set_ylabel("$z_2$")
        self.ax_latent.set_title("codes $E_q[z|x]$ over $p(z)$", fontsize=9)
        self.ax_samples.set_title("decoded from $z \\sim p(z)$", fontsize=9)
        self.ax_recon.set_title("data and reconstructions (rows 2, 4)", fontsize=9)
        for ax in (self.ax_samples, self.ax_recon):
            ax.axis("off")
        self._contour = self._scatter = self._samples = self._recon = None
        self._title = self.fig.suptitle("", fontsize=10)

    def _image(self, ax: Axes, current, grid: np.ndarray):
        if current is None:
            return ax.imshow(grid, cmap="gray_r", vmin=0, vmax=1)
        current.set_data(grid)
        current.set_extent((-0.5, grid.shape[1] - 0.5, grid.shape[0] - 0.5, -0.5))
        return current

    @torch.no_grad()
    def draw(self, model: Any, X: Any, y: Any = None, *, title: str = "", n_samples: int = 36, n_recon: int = 12,
             seed: int = 0, resolution: int = 80, max_points: int = 600) -> Figure:
        """Show ``model``: its codes of ``X`` over its prior, samples from the prior, reconstructions."""
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
        self.ax_latent.set_xlim(-lim, lim)
        self.ax_latent.set_ylim(-lim, lim)
        samples, pairs = _pictures(model, X, n_samples, n_recon, seed)
        self._samples = self._image(self.ax_samples, self._samples, samples)
        self._recon = self._image(self.ax_recon, self._recon, pairs)
        self._title.set_text(title)
        return self.fig


def knobs_figure(model: Any, X: Any, y: Any = None, *, title: str = "", n_samples: int = 36, n_recon: int = 12,
                 seed: int = 0, fig: Figure | None = None) -> Figure:
    """Three panels for one trained VAE: latent codes over the prior, samples from the prior, reconstructions.

    Samples show E[x|z] for z ~ p(z) (the component means, not noisy draws); reconstructions show
    the first ``n_recon`` rows of ``X``, each row of data above its row of E[x | z = E_q[z|x]].
    ``seed`` fixes the prior draws (the global generator is left as it was).
    """
    return KnobsFigure(fig).draw(model, X, y, title=title, n_samples=n_samples, n_recon=n_recon, seed=seed)


def rate_distortion_plane(rates: Sequence[float], distortions: Sequence[float], labels: Sequence[str] | None = None,
                          *, ax: Axes | None = None, elbo_lines: bool = True, **scatter_kwargs) -> Axes:
    """Models as points (rate R, distortion D) in nats, with lines R + D = −ELBO of slope −1.

    Every point on one dashed line has the same ELBO; the lowest line touched is the best ELBO.
    """
    ax = ax or plt.gca()
    rates, distortions = np.asarray(rates, float), np.asarray(distortions, float)
    if rates.shape != distortions.shape or rates.ndim != 1:
        raise ValueError(f"`rates` and `distortions` must be 1-D of one length, got shapes {rates.shape} "
                         f"and {distortions.shape}")
    ax.plot(rates, distortions, "-", color="0.7", zorder=1)
    ax.scatter(rates, distortions, zorder=2, **{"s": 30, **scatter_kwargs})
    for i, label in enumerate(labels or []):
        ax.annotate(label, (rates[i], distortions[i]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if elbo_lines:
        total = rates + distortions
        r = np.linspace(0, rates.max() * 1.05 + 1e-9, 2)
        best, middle = total.min(), np.median(total)
        ax.plot(r, best - r, "--", color="C3", lw=1, zorder=0, label=f"R + D = {best:.1f} nats (best −ELBO)")
        ax.plot(r, middle - r, ":", color="C3", lw=1, zorder=0, label=f"R + D = {middle:.1f} nats (median)")
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    pad = 0.08 * max(np.ptp(distortions), 1.0)
    ax.set_xlim(left=-0.03 * max(rates.max(), 1))
    ax.set_ylim(distortions.min() - 2 * pad, distortions.max() + 2 * pad)
    ax.set_xlabel("rate R = E KL(q(z|x) ‖ p(z))  [nats]")
    ax.set_ylabel("distortion D = −E log p(x|z)  [nats]")
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
