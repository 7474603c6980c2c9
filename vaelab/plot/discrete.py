"""Figures for lesson 05: digits on demand from a conditional VAE, a VQ-VAE's codebook among the encoded
data and how often each code is used, and time series with their reconstructions and interpolations."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .knobs import image_grid

__all__ = ["codebook_map", "digits_on_demand", "series_grid", "series_interpolation", "usage_bars"]


def _numpy(t: Any) -> np.ndarray:
    return np.asarray(torch.as_tensor(t).detach().cpu(), dtype=float)


def _z_vector(model: Any, z: Sequence[float]) -> torch.Tensor:
    """The latent point (z_1, z_2, 0, …, 0) on the model's device, of shape (1, latent_dim)."""
    ref = next(model.parameters())
    out = torch.zeros(1, model.latent_dim, device=ref.device, dtype=ref.dtype)
    z = torch.as_tensor(z, dtype=ref.dtype)[: model.latent_dim]
    out[0, : len(z)] = z.to(ref.device)
    return out


@torch.no_grad()
def digits_on_demand(model: Any, digit: int, z: Sequence[float] = (0.0, 0.0), *, fig: Figure | None = None,
                     span: float = 2.5, n_grid: int = 7) -> Figure:
    """A conditional VAE asked for ``digit`` at the latent point ``z``: three panels.

    Left: E[x | z, c = digit]. Middle: every class at the same z (c picks the digit, z the style).
    Right: ``digit`` over an ``n_grid`` × ``n_grid`` grid of (z_1, z_2) in [−span, span]², the current z framed.
    Latent coordinates beyond the first two are held at 0.
    """
    if fig is None:
        fig = plt.figure(figsize=(10, 3.4))
    fig.clear()
    n_classes, side = model.n_classes, int(round(model.data_dim ** 0.5))
    z0 = _z_vector(model, z)  # (1, L)
    one = model.decode(z0, model.check_condition([digit], 1)).mean  # (1, D)
    every = model.decode(z0.expand(n_classes, -1), model.check_condition(torch.arange(n_classes), n_classes)).mean
    t = torch.linspace(-span, span, n_grid)
    z1, z2 = torch.meshgrid(t, t.flip(0), indexing="xy")  # rows from top (z_2 high) to bottom
    zz = z0.repeat(n_grid * n_grid, 1)
    zz[:, 0] = z1.reshape(-1).to(zz)
    if model.latent_dim > 1:
        zz[:, 1] = z2.reshape(-1).to(zz)
    grid = model.decode(zz, model.check_condition(torch.full((len(zz),), digit), len(zz))).mean

    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 2.6, 1.6]})
    axes[0].imshow(_numpy(one).reshape(side, side), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title(f"c = {digit}, z = ({z[0]:.1f}, {z[1] if len(z) > 1 else 0:.1f})")
    axes[1].imshow(image_grid(every, 5), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title("every class at this z: same style")
    axes[2].imshow(image_grid(grid, n_grid), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title(f"c = {digit} across $z_1, z_2$")
    # latent axes on the grid: tick k sits at the centre of the k-th image, at z = t[k]
    centres = np.arange(n_grid) * (side + 1) + (side - 1) / 2
    ticks = [0, n_grid // 2, n_grid - 1]
    axes[2].set_xticks(centres[ticks], [f"{float(t[k]):.1f}" for k in ticks])
    axes[2].set_yticks(centres[ticks], [f"{float(t.flip(0)[k]):.1f}" for k in ticks])
    axes[2].set_xlabel("$z_1$")
    axes[2].set_ylabel("$z_2$")
    # frame the grid cell nearest to the current z
    col = int(np.clip(np.round((float(z0[0, 0]) + span) / (2 * span) * (n_grid - 1)), 0, n_grid - 1))
    zy = float(z0[0, 1]) if model.latent_dim > 1 else 0.0
    row = int(np.clip(np.round((span - zy) / (2 * span) * (n_grid - 1)), 0, n_grid - 1))
    axes[2].add_patch(Rectangle((col * (side + 1) - 0.5, row * (side + 1) - 0.5), side, side,
                                fill=False, edgecolor="tab:red", linewidth=2))
    for ax in axes[:2]:
        ax.set_axis_off()
    axes[2].tick_params(length=0, labelsize=8)
    for spine in axes[2].spines.values():
        spine.set_visible(False)
    fig.tight_layout()
    return fig


def codebook_map(z_e: Any, codebook: Any, *, labels: Any = None, means: Any = None, counts: Any = None,
                 means_label: str = "GMM means", ax: Axes | None = None, title: str | None = None) -> Axes:
    """Encoded points z_e (first two coordinates, coloured by ``labels``) with the codebook on top.

    Codes are black crosses (grey where ``counts`` says the code is never used); ``means`` (e.g.
    k-means centres or a Gaussian mixture's means, fitted to the same z_e) are drawn as red circles,
    named ``means_label`` in the legend. With ``labels`` a colour bar names the digit of each colour.
    """
    ax = ax or plt.gca()
    z_e, codebook = _numpy(z_e).reshape(-1, _numpy(codebook).shape[-1]), _numpy(codebook)
    c = None if labels is None else _numpy(labels)
    points = ax.scatter(z_e[:, 0], z_e[:, 1], c=c, s=4, cmap="tab10", vmin=-0.5, vmax=9.5, alpha=0.6)
    if labels is not None:
        bar = ax.figure.colorbar(points, ax=ax, ticks=range(10), fraction=0.046, pad=0.02)
        bar.set_label("digit")
        bar.solids.set_alpha(1)
    used = np.ones(len(codebook), bool) if counts is None else _numpy(counts) > 0
    ax.scatter(codebook[used, 0], codebook[used, 1], marker="x", c="k", s=50, linewidths=2, label="codebook")
    if (~used).any():
        ax.scatter(codebook[~used, 0], codebook[~used, 1], marker="x", c="0.6", s=50, linewidths=1.5, label="dead codes")
    if means is not None:
        means = _numpy(means)
        ax.scatter(means[:, 0], means[:, 1], marker="o", facecolors="none", edgecolors="tab:red", s=70,
                   linewidths=1.5, label=means_label)
    ax.set_xlabel("$z_{e,1}$")
    ax.set_ylabel("$z_{e,2}$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or "encoder outputs and the codebook")
    return ax


def usage_bars(counts: Any, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """How often each code is chosen: a bar per code, dead codes (count 0) marked in red on the axis."""
    ax = ax or plt.gca()
    counts = _numpy(counts)
    k = np.arange(len(counts))
    ax.bar(k, counts, color="tab:blue")
    dead = counts == 0
    ax.scatter(k[dead], np.zeros(dead.sum()), marker="v", c="tab:red", s=30, zorder=3, label="dead")
    ax.set_xlabel("code k")
    ax.set_ylabel("examples")
    if dead.any():
        ax.legend(fontsize=8)
    ax.set_title(title or f"code usage: {int((~dead).sum())} of {len(counts)} codes used")
    return ax


def series_grid(x: Any, reconstruction: Any = None, *, n_cols: int = 4, fig: Figure | None = None,
                title: str | None = None) -> Figure:
    """Series of shape (n, length, 1) in small panels, each with its ``reconstruction`` overlaid (dashed).

    The panels share one y scale, labelled on the left column, and the time axis on the bottom row.
    """
    x = _numpy(x)[..., 0]
    recon = None if reconstruction is None else _numpy(reconstruction)[..., 0]
    n_rows = -(-len(x) // n_cols)
    if fig is None:
        fig = plt.figure(figsize=(2.3 * n_cols, 1.5 * n_rows))
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, sharex=True, sharey=True)).ravel()
    for i, ax in enumerate(axes):
        if i >= len(x):
            ax.set_axis_off()
            continue
        ax.plot(x[i], ".-", color="0.35", markersize=3, linewidth=0.8, label="series")
        if recon is not None:
            ax.plot(recon[i], "--", color="tab:red", linewidth=1.5, label="reconstruction")
        ax.axhline(0, color="0.85", linewidth=0.6, zorder=0)
        ax.tick_params(labelsize=7)
        if i % n_cols == 0:
            ax.set_ylabel("$x_t$", fontsize=8)
        if i >= len(x) - n_cols:
            ax.set_xlabel("t", fontsize=8)
    if recon is not None:
        axes[0].legend(fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def series_interpolation(path: Any, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Decoded series along a straight line in z (shape (steps, length, 1)), coloured from start to end."""
    ax = ax or plt.gca()
    path = _numpy(path)[..., 0]
    colors = plt.cm.viridis(np.linspace(0, 1, len(path)))
    for i, (series, color) in enumerate(zip(path, colors)):
        label = "start" if i == 0 else "end" if i == len(path) - 1 else None
        ax.plot(series, color=color, linewidth=2.2 if label else 1.2, label=label)
    ax.set_xlabel("time step t")
    ax.legend(fontsize=8)
    ax.set_title(title or "decoded along a line in z")
    return ax
