"""Figures for lesson 03 (the variational autoencoder): images in, images out, the latent map, an
interpolation, and — for 2-D data — the VAE drawn as the infinite mixture it is."""
from __future__ import annotations

from typing import Any, Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Ellipse

from .knobs import image_grid

__all__ = ["density", "images", "infinite_mixture", "interpolation", "latent_map", "reconstructions"]


def _numpy(t: Any) -> np.ndarray:
    return np.asarray(torch.as_tensor(t).detach().cpu(), dtype=float)


def images(x: Any, n_cols: int = 10, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Square grey images (rows of an (n, side²) array, values in [0, 1]) tiled ``n_cols`` per row."""
    ax = ax or plt.gca()
    ax.imshow(image_grid(x, n_cols), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


@torch.no_grad()
def reconstructions(model: Any, x: Any, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Originals on the top row, E[x|z = mean of q(z|x)] below: what survives the trip through z."""
    x = model.check_data(x, "x")
    mu, _ = model.encode_params(x)
    recon = model.decode(mu).mean  # (n, D): probabilities (Bernoulli) or f(z) (Gaussian)
    return images(torch.cat([x, recon]).cpu(), n_cols=len(x), ax=ax,
                  title=title or "top: data   bottom: reconstruction")


@torch.no_grad()
def latent_map(model: Any, X: Any, labels: Any = None, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Each x at its posterior mean (first two latent coordinates), coloured by ``labels``."""
    ax = ax or plt.gca()
    mu = _numpy(model.encode_params(model.check_data(X, "X"))[0])
    c = None if labels is None else _numpy(labels)
    points = ax.scatter(mu[:, 0], mu[:, 1] if mu.shape[1] > 1 else np.zeros(len(mu)), c=c, s=6,
                        cmap="tab10", vmin=-0.5, vmax=9.5)
    if labels is not None:
        plt.colorbar(points, ax=ax, ticks=range(10), label="label")
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or "posterior means E[z|x]")
    return ax


@torch.no_grad()
def interpolation(model: Any, x_start: Any, x_end: Any, steps: int = 10, *, ax: Axes | None = None,
                  title: str | None = None) -> Axes:
    """Decode the straight line between the posterior means of two inputs: E[x|z_t], t from 0 to 1."""
    x = model.check_data(torch.stack([torch.as_tensor(x_start), torch.as_tensor(x_end)]), "x")
    mu, _ = model.encode_params(x)
    t = torch.linspace(0, 1, steps, device=mu.device, dtype=mu.dtype)[:, None]
    z = (1 - t) * mu[0] + t * mu[1]  # (steps, L)
    return images(model.decode(z).mean.cpu(), n_cols=steps, ax=ax,
                  title=title or "decoded along the line between two posterior means")


@torch.no_grad()
def infinite_mixture(model: Any, X: Any = None, *, n_components: int = 40, z_range: float = 2.5,
                     ax: Axes | None = None, title: str | None = None) -> Axes:
    """A 1-D-latent Gaussian VAE on 2-D data as a mixture: N(f(z), σ²I) at a grid of z, weighted by p(z).

    The curve is f(z) for z in [−z_range, z_range]; each circle is one component (radius 2σ), its
    opacity ∝ p(z) — the weight of that component in p(x) = ∫ N(x; f(z), σ²I) p(z) dz.
    """
    if model.latent_dim != 1 or model.data_dim != 2 or model.likelihood != "gaussian":
        raise ValueError("`model` must be a Gaussian VAE with latent_dim=1 and data_dim=2, got "
                         f"latent_dim={model.latent_dim}, data_dim={model.data_dim}, likelihood={model.likelihood!r}")
    ax = ax or plt.gca()
    if X is not None:
        x = _numpy(X)
        ax.scatter(x[:, 0], x[:, 1], s=3, color="0.6", zorder=1)
    ref = next(model.parameters())
    fine = torch.linspace(-z_range, z_range, 400, device=ref.device, dtype=ref.dtype)[:, None]
    curve = _numpy(model.decode(fine).mean)
    ax.plot(curve[:, 0], curve[:, 1], color="C3", lw=1.5, zorder=3, label="f(z)")
    z = torch.linspace(-z_range, z_range, n_components, device=ref.device, dtype=ref.dtype)[:, None]
    centres, sigma = _numpy(model.decode(z).mean), float(model.obs_scale)
    weight = _numpy(model.prior.log_prob(z).exp())
    weight = weight / weight.max()
    for (cx, cy), w in zip(centres, weight):
        ax.add_patch(Ellipse((cx, cy), 4 * sigma, 4 * sigma, fill=False, color="C0", alpha=float(0.15 + 0.75 * w), lw=1))
    ax.scatter(centres[:, 0], centres[:, 1], s=8, color="C0", zorder=4, label="f(z) on a grid of z")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or f"{n_components} of the infinitely many components (circles: 2σ, σ = {sigma:.2f})")
    return ax


@torch.no_grad()
def density(log_prob: Callable[[torch.Tensor], Any], X: Any = None, *, bounds: tuple[float, float, float, float] | None = None,
            resolution: int = 80, span: float = 8.0, ax: Axes | None = None, title: str | None = None) -> Axes:
    """The log-density log_prob(x) of a 2-D model on a grid, with the data ``X`` on top.

    ``log_prob`` maps points of shape (n, 2) to log-densities (n,): ``gmm.score_samples`` or
    ``lambda x: vae.iwae(x, k)``. Colours run over the top ``span`` nats (below is black), so two
    models drawn side by side share a scale. ``bounds`` = (x_min, x_max, y_min, y_max), default around ``X``.
    """
    ax = ax or plt.gca()
    if bounds is None:
        if X is None:
            raise ValueError("`bounds` is needed when no data `X` is given")
        x = _numpy(X)
        pad = 0.15 * (x.max(0) - x.min(0))
        bounds = (x[:, 0].min() - pad[0], x[:, 0].max() + pad[0], x[:, 1].min() - pad[1], x[:, 1].max() + pad[1])
    gx = torch.linspace(bounds[0], bounds[1], resolution)
    gy = torch.linspace(bounds[2], bounds[3], resolution)
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), -1).reshape(-1, 2)  # (R*R, 2)
    logp = _numpy(log_prob(grid)).reshape(resolution, resolution)
    # a few points (a fold of a VAE's curve, a narrow component) can be far denser than the rest:
    # anchor the colour scale at a high percentile rather than the maximum
    top = float(np.percentile(logp, 99.5))
    image = ax.imshow(logp, origin="lower", extent=bounds, cmap="magma", aspect="auto", vmin=top - span, vmax=top)
    plt.colorbar(image, ax=ax, label="log p(x)")
    if X is not None:
        x = _numpy(X)
        ax.scatter(x[:, 0], x[:, 1], s=1, color="white", alpha=0.25)
    if title:
        ax.set_title(title)
    return ax
