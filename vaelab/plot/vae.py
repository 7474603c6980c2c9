"""Figures for lesson 03 (the variational autoencoder): images in, images out, the latent map, the
decoder on a grid of z, an interpolation, the exact posterior beside q(z|x), and — for 2-D data — the
VAE drawn as the infinite mixture it is."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Ellipse, Patch

from .knobs import image_grid

__all__ = ["decoder_grid", "density", "images", "infinite_mixture", "interpolation", "latent_map", "posterior_vs_q",
           "reconstructions"]


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


def _prior_circles(ax: Axes, radii: Sequence[float]) -> None:
    # the standard normal's 1 and 2 sd circles: where the prior puts 39 % and 86 % of its mass in 2-D
    for i, r in enumerate(radii):
        ax.add_patch(Circle((0.0, 0.0), r, fill=False, ls="--", lw=1, color="0.35", zorder=3,
                            label="N(0, I): " + ", ".join(f"{v:g}" for v in radii) + " sd" if i == 0 else None))


@torch.no_grad()
def latent_map(model: Any, X: Any, labels: Any = None, *, ax: Axes | None = None, title: str | None = None,
               prior_circles: Sequence[float] = (1.0, 2.0)) -> Axes:
    """Each x at its posterior mean (first two latent coordinates), coloured by ``labels``, on equal axes.

    Dashed circles at ``prior_circles`` standard deviations of the prior N(0, I) show where the codes
    should sit; a legend names the label of each colour.
    """
    ax = ax or plt.gca()
    mu = _numpy(model.encode_params(model.check_data(X, "X"))[0])
    c = None if labels is None else _numpy(labels)
    points = ax.scatter(mu[:, 0], mu[:, 1] if mu.shape[1] > 1 else np.zeros(len(mu)), c=c, s=6,
                        cmap="tab10", vmin=-0.5, vmax=9.5)
    _prior_circles(ax, prior_circles)
    handles, names = [], []
    if labels is not None:
        handles, names = points.legend_elements()
    handles += [h for h in ax.patches if h.get_label() and not h.get_label().startswith("_")]
    names += [h.get_label() for h in handles[len(names):]]
    ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
              title="label" if labels is not None else None, title_fontsize=7)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or "posterior means E[z|x]")
    return ax


@torch.no_grad()
def decoder_grid(model: Any, n: int = 12, z_range: float = 2.0, *, ax: Axes | None = None,
                 title: str | None = None) -> Axes:
    """The decoder's mean image E[x|z] at an n × n grid of z in [−z_range, z_range]², each drawn at its z.

    Every image is one component p(x|z) of the infinite mixture; the axes are in latent units
    (z₁ to the right, z₂ up), so the picture lines up with :func:`latent_map`.
    """
    if model.latent_dim != 2:
        raise ValueError(f"`model` must have latent_dim=2 for a grid of z, got latent_dim={model.latent_dim}")
    n = int(n)
    if n < 2:
        raise ValueError(f"`n` must be an integer ≥ 2, got {n}")
    z_range = float(z_range)
    if not z_range > 0:
        raise ValueError(f"`z_range` must be > 0, got {z_range}")
    ax = ax or plt.gca()
    ref = next(model.parameters())
    t = torch.linspace(-z_range, z_range, n, device=ref.device, dtype=ref.dtype)
    z1, z2 = torch.meshgrid(t, t.flip(0), indexing="xy")  # rows from the top (z₂ large) down
    grid = torch.stack([z1, z2], -1).reshape(-1, 2)
    half = z_range / (n - 1)  # half the spacing: each image fills the cell around its z
    ax.imshow(image_grid(model.decode(grid).mean, n), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest",
              extent=(-z_range - half, z_range + half, -z_range - half, z_range + half))
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    ax.set_title(title or "decoder means E[x | z] on a grid of z")
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
        ax.scatter(x[:, 0], x[:, 1], s=3, color="0.6", zorder=1, label="data")
    ref = next(model.parameters())
    fine = torch.linspace(-z_range, z_range, 400, device=ref.device, dtype=ref.dtype)[:, None]
    curve = _numpy(model.decode(fine).mean)
    ax.plot(curve[:, 0], curve[:, 1], color="C3", lw=1.5, zorder=3, label="f(z)")
    z = torch.linspace(-z_range, z_range, n_components, device=ref.device, dtype=ref.dtype)[:, None]
    centres, sigma = _numpy(model.decode(z).mean), float(model.obs_scale)
    weight = _numpy(model.prior.log_prob(z).exp())
    weight = weight / weight.max()
    for i, ((cx, cy), w) in enumerate(zip(centres, weight)):
        label = "N(f(z), σ²I): radius 2σ, darker = larger p(z)" if i == int(np.argmax(weight)) else None
        ax.add_patch(Ellipse((cx, cy), 4 * sigma, 4 * sigma, fill=False, color="C0", alpha=float(0.15 + 0.75 * w),
                             lw=1, label=label))
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


@torch.no_grad()
def posterior_vs_q(model: Any, x: Any, *, axes: Any = None, n: int = 60, n_grid: int = 200,
                   title: str | None = None) -> np.ndarray:
    """For each row of ``x``: the exact posterior p(z|x) (filled contours) and the encoder's q(z|x) (ellipses).

    p(z|x) = p(x|z) p(z) / p(x) is evaluated on an ``n`` × ``n`` grid around it, with log p(x) and the
    posterior's mean and covariance from ``model.exact_posterior(x, n_grid)``; q(z|x) is drawn at 1
    and 2 of its standard deviations, its mean as a cross (a q far narrower than p(z|x) is only the
    cross). Contours: the regions holding 50 %, 90 % and 99 % of p(z|x). Latent_dim 2 only.

    Returns the axes, one per row of ``x`` (created in one row when ``axes`` is None).
    """
    if model.latent_dim != 2:
        raise ValueError(f"`model` must have latent_dim=2 to draw p(z|x) in the plane, got latent_dim={model.latent_dim}")
    x = model.check_data(x, "x")
    if axes is None:
        _, axes = plt.subplots(1, len(x), figsize=(2.6 * len(x), 2.8), squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    if len(axes) != len(x):
        raise ValueError(f"`axes` must hold one axis per row of x ({len(x)}), got {len(axes)}")
    post = model.exact_posterior(x, n_grid)
    mu, logvar = model.encode_params(x)
    q_sd, post_sd = torch.exp(0.5 * logvar).double(), post.cov.diagonal(dim1=-2, dim2=-1).sqrt()
    for i, ax in enumerate(axes):
        # a window that holds both: 4 sd of p(z|x) around its mean, and q's mean
        lo = torch.minimum(post.mean[i] - 4 * post_sd[i], mu[i].double() - 3 * q_sd[i])
        hi = torch.maximum(post.mean[i] + 4 * post_sd[i], mu[i].double() + 3 * q_sd[i])
        t1, t2 = (torch.linspace(float(lo[d]), float(hi[d]), n, dtype=mu.dtype, device=mu.device) for d in range(2))
        z = torch.stack(torch.meshgrid(t1, t2, indexing="xy"), -1).reshape(-1, 2)  # (n², 2), rows = z₂
        log_post = (model.decode(z).log_prob(x[i]) + model.prior.log_prob(z)).double() - post.log_px[i]
        density = _numpy(log_post.exp()).reshape(n, n)
        ax.contourf(_numpy(t1), _numpy(t2), density, levels=_mass_levels(density), cmap="Blues")
        for k in (1, 2):
            ax.add_patch(Ellipse(tuple(_numpy(mu[i])), *(2 * k * _numpy(q_sd[i])), fill=False, color="C3", lw=1.2))
        ax.plot(*_numpy(mu[i]), marker="x", color="C3", ms=6)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$" if i == 0 else "")
        inset = ax.inset_axes((0.0, 0.72, 0.28, 0.28))  # the digit itself, top left
        inset.imshow(image_grid(x[i:i + 1], 1), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        inset.set_axis_off()
    axes[-1].legend([Patch(color=plt.get_cmap("Blues")(0.6)),
                     Line2D([], [], color="C3", marker="x", lw=1.2)],
                    ["exact p(z|x): 50/90/99 %", "q(z|x): mean, 1 and 2 sd"], fontsize=7,
                    loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    if title:
        axes[0].figure.suptitle(title)
    return axes


def _mass_levels(density: np.ndarray, masses: Sequence[float] = (0.99, 0.9, 0.5)) -> list[float]:
    """Density thresholds whose upper sets hold the given fractions of the grid's mass (increasing)."""
    values = np.sort(density.ravel())[::-1]
    cumulative = np.cumsum(values) / values.sum()
    levels = [float(values[min(np.searchsorted(cumulative, m), len(values) - 1)]) for m in masses]
    return sorted(set(levels)) + [float(values[0]) * (1 + 1e-9)]
