"""A continuous mixture of Gaussians: p(x) = ∫ N(x; f(z), σ²I) p(z) dz.

Derived in lesson 02. Each latent point z is the centre of one Gaussian component placed in
data space by the decoder f; the prior p(z) gives the mixing weights. Three ways to compute
log p(x) live here: quadrature (Gauss–Hermite, latent_dim ≤ 2, for a normal prior; other priors
have Gaussian rules too, but this module implements the normal one), Monte Carlo
(any latent_dim, with a standard error) and the closed form of the linear case, probabilistic
PCA: p(x) = N(x; b, WWᵀ + σ²I). ``ContinuousMixture.finite(K)`` returns the K-component
``GaussianMixture`` that approximates the continuum, so K → ∞ can be watched.

Only torch and numpy are imported here (scipy appears in the tests only).
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.distributions import (Bernoulli, Categorical, Distribution, Independent, MixtureSameFamily, MultivariateNormal, Normal,
                                 Uniform)

from .objectives import log_mean_exp  # one copy: log (1/n) Σ exp(a_i), also behind lesson 03's IWAE
from ._validation import as_tensor, check_2d, check_choice, check_finite, check_positive, check_positive_int

__all__ = [
    "ContinuousMixture",
    "LinearDecoder",
    "PRIOR_KINDS",
    "example_prior",
    "fit_mc",
    "fit_ppca",
    "gauss_hermite",
    "GridPosterior",
    "grid_posterior",
    "latent_grid",
    "pairwise_log_prob",
    "isotropic_log_prob",
    "log_mean_exp",
    "mc_estimate",
    "mixture_log_prob",
    "ppca_covariance",
    "ppca_log_prob",
    "ppca_posterior",
]

METHODS = ("quadrature", "mc", "exact")
PRIOR_KINDS = ("normal", "uniform", "two-bump")
NODES = ("quadrature", "quantile", "grid")
_CHUNK = 2**22  # elements of one (batch, nodes, data_dim) block: bounds memory, stays in cache


# ----------------------------------------------------------------------------- pure functions

def gauss_hermite(n: int, latent_dim: int = 1, *, dtype: torch.dtype = torch.float64,
                  device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss–Hermite nodes and weights for expectations under N(0, I) in ``latent_dim`` ≤ 2 dimensions (lesson 02, §3.1).

    E[g(z)] ≈ Σ_j w_j g(z_j), exact when g is a polynomial of degree ≤ 2n − 1 in each coordinate.
    In 2-D the rule is the tensor product of the 1-D rule (n² nodes).

    Returns
    -------
    nodes : of shape (n**latent_dim, latent_dim)
    weights : of shape (n**latent_dim,), positive, summing to 1

    >>> z, w = gauss_hermite(3)
    >>> round(float((w * z[:, 0] ** 4).sum()), 12)  # E[z⁴] = 3 for a standard normal
    3.0
    """
    n = check_positive_int(n, "n")
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    if latent_dim > 2:
        raise ValueError(f"`latent_dim` must be 1 or 2 for a tensor-product rule (it has n**latent_dim "
                         f"nodes), got {latent_dim}; use Monte Carlo instead")
    if n <= 100:
        # probabilists' Hermite: weight function exp(-z²/2), weights summing to sqrt(2π)
        z, w = np.polynomial.hermite_e.hermegauss(n)
    else:
        # numpy's recurrence overflows past n ≈ 360; Golub–Welsch does not: the nodes are the
        # eigenvalues of the Jacobi matrix of the recurrence, the weights the squared first
        # components of its eigenvectors
        off = torch.arange(1, n, dtype=torch.float64).sqrt()
        # torch's eigh, not numpy's: it follows torch.set_num_threads (numpy's BLAS threads may oversubscribe)
        z, vectors = torch.linalg.eigh(torch.diag(off, 1) + torch.diag(off, -1))
        z, w = z.numpy(), (vectors[0] ** 2).numpy()
    w = w / w.sum()
    if latent_dim == 2:
        z = np.stack(np.meshgrid(z, z, indexing="ij"), -1).reshape(-1, 2)
        w = np.outer(w, w).reshape(-1)
    else:
        z = z[:, None]
    return (torch.as_tensor(z, dtype=dtype, device=device), torch.as_tensor(w, dtype=dtype, device=device))


def mc_estimate(log_w: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """Monte Carlo estimate of log E[w] from log-weights, and its standard error (lesson 02, §3.2).

    log p̂ = log((1/n) Σ_i w_i); its standard error by the delta method is the relative standard
    error of the mean, std(w) / (√n · mean(w)). One sample (n = 1) gives an infinite standard error.

    Parameters
    ----------
    log_w : log w_i = log p(x | z_i), of shape (..., n) with the samples along ``dim``

    Returns
    -------
    estimate, stderr : each of the shape of ``log_w`` without ``dim``

    >>> est, se = mc_estimate(torch.log(torch.tensor([1.0, 3.0])))
    >>> round(float(est.exp()), 6), round(float(se), 6)
    (2.0, 0.5)
    """
    n = log_w.shape[dim]
    estimate = log_mean_exp(log_w, dim)
    if n < 2:
        return estimate, torch.full_like(estimate, math.inf)
    # weights relative to their mean: finite even when every w_i underflows
    ratio = torch.exp(log_w - estimate.unsqueeze(dim))  # (..., n), mean 1
    stderr = ratio.std(dim=dim) / math.sqrt(n)
    return estimate, stderr


def isotropic_log_prob(x: torch.Tensor, means: torch.Tensor, obs_scale: float) -> torch.Tensor:
    """log N(x_b; means_k, σ²I) for every pair, of shape (n_samples, n_components).

    x of shape (n_samples, n_features), means of shape (n_components, n_features).

    >>> isotropic_log_prob(torch.zeros(1, 2), torch.zeros(3, 2), 1.0).shape
    torch.Size([1, 3])
    """
    d = x.shape[-1]
    const = -0.5 * d * math.log(2 * math.pi * obs_scale**2)
    rows = max(1, _CHUNK // max(1, means.shape[0] * d))
    out = []
    for start in range(0, x.shape[0], rows):
        # differences, not the expanded |x|² − 2x·m + |m|²: exact in float64, no cancellation
        diff = x[start:start + rows, None, :] - means[None, :, :]  # (B, K, D)
        out.append(const - 0.5 * diff.pow(2).sum(-1) / obs_scale**2)
    return torch.cat(out, 0)


def mixture_log_prob(x: torch.Tensor, means: torch.Tensor, weights: torch.Tensor, obs_scale: float) -> torch.Tensor:
    """log Σ_k w_k N(x; means_k, σ²I): a finite mixture whose components share one isotropic scale.

    x of shape (n_samples, n_features), means of shape (n_components, n_features),
    weights of shape (n_components,) summing to 1; returns shape (n_samples,).

    >>> x = torch.zeros(1, 1)
    >>> round(float(mixture_log_prob(x, torch.zeros(2, 1), torch.tensor([0.5, 0.5]), 1.0)), 6)
    -0.918939
    """
    # log 0 = -inf for components of zero weight: logsumexp ignores them
    log_w = weights.log()
    # a block of rows at a time: 10⁴ grid points × 10³ components would otherwise hold 80 MB per temporary
    rows = max(1, _CHUNK // max(1, means.numel()))
    return torch.cat([torch.logsumexp(isotropic_log_prob(x[i:i + rows], means, obs_scale) + log_w, dim=-1)
                      for i in range(0, x.shape[0], rows)])


def ppca_covariance(W: torch.Tensor, obs_scale: float) -> torch.Tensor:
    """Marginal covariance of probabilistic PCA, C = W Wᵀ + σ² I, of shape (data_dim, data_dim) (lesson 02, §3.3).

    W of shape (data_dim, latent_dim): x = W z + b + σ ε with z ~ N(0, I), ε ~ N(0, I).

    >>> ppca_covariance(torch.ones(2, 1), 0.5)
    tensor([[1.2500, 1.0000],
            [1.0000, 1.2500]])
    """
    W = _check_W(W)
    obs_scale = check_positive(obs_scale, "obs_scale")
    return W @ W.T + obs_scale**2 * torch.eye(W.shape[0], dtype=W.dtype, device=W.device)


def ppca_log_prob(x, W, b, obs_scale: float) -> torch.Tensor:
    """Exact log p(x) of probabilistic PCA: log N(x; b, W Wᵀ + σ² I), of shape (n_samples,).

    Parameters
    ----------
    x : of shape (n_samples, data_dim)
    W : of shape (data_dim, latent_dim)
    b : of shape (data_dim,)
    obs_scale : σ > 0

    >>> round(float(ppca_log_prob(torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1), 1.0)), 6)
    -1.265512
    """
    W = _check_W(W)
    x = check_2d(x, "x", n_features=W.shape[0], dtype=W.dtype, device=W.device)
    b = as_tensor(b, "b", dtype=W.dtype, device=W.device)
    if b.shape != (W.shape[0],):
        raise ValueError(f"`b` must have shape (data_dim,) = ({W.shape[0]},) to match `W`, got shape {tuple(b.shape)}")
    C = ppca_covariance(W, obs_scale)
    chol = torch.linalg.cholesky(C)  # (D, D); C is positive definite because σ² > 0
    r = torch.linalg.solve_triangular(chol, (x - b).T, upper=False)  # (D, B): whitened residuals
    log_det = 2 * chol.diagonal().log().sum()
    return -0.5 * (r.pow(2).sum(0) + log_det + W.shape[0] * math.log(2 * math.pi))


def ppca_posterior(x, W, b, obs_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact posterior of probabilistic PCA, p(z | x) = N(M⁻¹Wᵀ(x − b), σ² M⁻¹), M = WᵀW + σ²I.

    Returns the posterior means, of shape (n_samples, latent_dim), and the shared posterior
    covariance, of shape (latent_dim, latent_dim).

    >>> mean, cov = ppca_posterior(torch.ones(1, 1), torch.ones(1, 1), torch.zeros(1), 1.0)
    >>> float(mean), float(cov)
    (0.5, 0.5)
    """
    W = _check_W(W)
    obs_scale = check_positive(obs_scale, "obs_scale")
    x = check_2d(x, "x", n_features=W.shape[0], dtype=W.dtype, device=W.device)
    b = as_tensor(b, "b", dtype=W.dtype, device=W.device)
    M = W.T @ W + obs_scale**2 * torch.eye(W.shape[1], dtype=W.dtype, device=W.device)  # (L, L)
    mean = torch.linalg.solve(M, W.T @ (x - b).T).T  # (B, L)
    return mean, obs_scale**2 * torch.linalg.inv(M)


def fit_ppca(X, latent_dim: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Maximum-likelihood probabilistic PCA (Tipping & Bishop, 1999), in closed form.

    With λ_1 ≥ … ≥ λ_D the eigenvalues of the (1/n) sample covariance and U_L the top eigenvectors:
    b = mean(X), σ² = mean(λ_{L+1..D}), W = U_L (Λ_L − σ² I)^{1/2}.

    Returns
    -------
    W : of shape (data_dim, latent_dim)
    b : of shape (data_dim,)
    obs_scale : σ, a float

    >>> W, b, s = fit_ppca(torch.randn(50, 3, dtype=torch.float64), 1)
    >>> tuple(W.shape), tuple(b.shape), s > 0
    ((3, 1), (3,), True)
    """
    X = check_2d(X, "X", min_samples=2)
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    D = X.shape[1]
    if latent_dim >= D:
        raise ValueError(f"`latent_dim` must be smaller than the number of features ({D}) so that some "
                         f"variance is left for σ², got {latent_dim}")
    b = X.mean(0)
    S = (X - b).T @ (X - b) / X.shape[0]  # (D, D), maximum likelihood (1/n)
    eigvals, eigvecs = torch.linalg.eigh(S)  # ascending
    eigvals, eigvecs = eigvals.flip(0), eigvecs.flip(1)
    sigma2 = eigvals[latent_dim:].mean().clamp_min(torch.finfo(X.dtype).tiny)
    W = eigvecs[:, :latent_dim] * (eigvals[:latent_dim] - sigma2).clamp_min(0).sqrt()
    return W, b, float(sigma2.sqrt())


def _check_W(W) -> torch.Tensor:
    W = as_tensor(W, "W")
    if W.ndim != 2:
        raise ValueError(f"`W` must be 2-D of shape (data_dim, latent_dim), got shape {tuple(W.shape)}")
    return check_finite(W, "W")


# ----------------------------------------------------------------------------- decoders and priors

class LinearDecoder(nn.Module):
    """The linear decoder of probabilistic PCA, f(z) = W z + b.

    Parameters
    ----------
    W : of shape (data_dim, latent_dim)
    b : of shape (data_dim,), zeros when omitted

    >>> LinearDecoder(torch.ones(3, 2))(torch.zeros(5, 2)).shape
    torch.Size([5, 3])
    """

    def __init__(self, W, b=None):
        super().__init__()
        W = _check_W(W)
        b = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device) if b is None else as_tensor(
            b, "b", dtype=W.dtype, device=W.device)
        if b.shape != (W.shape[0],):
            raise ValueError(f"`b` must have shape (data_dim,) = ({W.shape[0]},) to match `W`, got shape {tuple(b.shape)}")
        self.W = nn.Parameter(W.clone())
        self.b = nn.Parameter(b.clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W.T + self.b  # (..., L) -> (..., D)


def _linear_params(decoder) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(W, b) of a linear decoder, or None when the decoder is not linear."""
    if isinstance(decoder, LinearDecoder):
        return decoder.W, decoder.b
    if isinstance(decoder, nn.Linear):
        b = decoder.bias if decoder.bias is not None else torch.zeros_like(decoder.weight[:, 0])
        return decoder.weight, b
    return None


def _as_event_prior(prior: Distribution) -> Distribution:
    """Make the prior a single distribution over vectors: batch shape (), event shape (latent_dim,)."""
    if not isinstance(prior, Distribution):
        raise TypeError(f"`prior` must be a torch.distributions.Distribution, got {type(prior).__name__}")
    if len(prior.event_shape) == 1 and len(prior.batch_shape) == 0:
        return prior
    if len(prior.event_shape) == 0 and len(prior.batch_shape) <= 1:
        # a scalar distribution is a 1-D latent; a batch of L scalars is L independent coordinates
        return Independent(prior.expand((1,)) if len(prior.batch_shape) == 0 else prior, 1)
    raise ValueError(f"`prior` must be a distribution over z of shape (latent_dim,), got batch shape "
                     f"{tuple(prior.batch_shape)} and event shape {tuple(prior.event_shape)}")


def _normal_params(prior: Distribution) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(loc, scale_tril) when the prior is normal, so z = loc + scale_tril u with u ~ N(0, I); else None."""
    if isinstance(prior, MultivariateNormal):
        return prior.loc, prior.scale_tril
    if isinstance(prior, Independent) and isinstance(prior.base_dist, Normal):
        return prior.base_dist.loc, torch.diag_embed(prior.base_dist.scale)
    return None


def _icdf_1d(base: Distribution, q: torch.Tensor) -> torch.Tensor:
    """Quantiles of a 1-D distribution: its icdf, or bisection on its cdf (mixtures have no icdf)."""
    try:
        return base.icdf(q)
    except NotImplementedError:
        pass
    lo = (base.mean - 20 * base.stddev).expand_as(q).clone()
    hi = (base.mean + 20 * base.stddev).expand_as(q).clone()
    for _ in range(80):  # each halving gains a bit; 80 reach float64 resolution
        mid = (lo + hi) / 2
        below = base.cdf(mid) < q
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


def _grid_range(base: Distribution) -> tuple[torch.Tensor, torch.Tensor]:
    """Where a 1-D prior's mass is: its support when bounded, else mean ± 6 standard deviations."""
    support = base.support
    lower, upper = getattr(support, "lower_bound", None), getattr(support, "upper_bound", None)
    if lower is not None and upper is not None:
        return torch.as_tensor(lower, dtype=base.mean.dtype), torch.as_tensor(upper, dtype=base.mean.dtype)
    return base.mean - 6 * base.stddev, base.mean + 6 * base.stddev


@contextlib.contextmanager
def _seeded(seed: int | None, device: torch.device):
    """Run a block with torch's generator seeded, leaving the global generator as it was."""
    if seed is None:
        yield
        return
    seed = check_positive_int(seed, "seed", minimum=0)
    kind = device.type if device.type != "cpu" else "cuda"
    devices = [device] if device.type != "cpu" else []
    with torch.random.fork_rng(devices=devices, device_type=kind):
        torch.manual_seed(seed)
        yield


def example_prior(kind: str = "normal", scale: float = 1.0, *, dtype: torch.dtype = torch.float64) -> Distribution:
    """A 1-D prior of standard deviation ``scale`` and a given shape, to compare shapes at equal spread.

    "normal": N(0, s²); "uniform": U(−√3 s, √3 s); "two-bump": ½ N(−a, (0.3 s)²) + ½ N(a, (0.3 s)²)
    with a = √0.91 s, so that its variance a² + (0.3 s)² is s² as well.

    >>> round(float(example_prior("two-bump", 2.0).stddev), 12)
    2.0
    """
    check_choice(kind, "kind", PRIOR_KINDS)
    s = check_positive(scale, "scale")
    if kind == "normal":
        return Normal(torch.tensor(0.0, dtype=dtype), torch.tensor(s, dtype=dtype))
    if kind == "uniform":
        half = math.sqrt(3.0) * s
        return Uniform(torch.tensor(-half, dtype=dtype), torch.tensor(half, dtype=dtype))
    a = math.sqrt(0.91) * s
    return MixtureSameFamily(Categorical(torch.tensor([0.5, 0.5], dtype=dtype)),
                             Normal(torch.tensor([-a, a], dtype=dtype), torch.tensor([0.3 * s, 0.3 * s], dtype=dtype)))


# ------------------------------------------------- any decoder's continuous mixture on a latent grid
# A VAE is lesson 02's continuous mixture with other components: p(x) = ∫ p_θ(x|z) p(z) dz, one
# component p_θ(x|z) per latent point, the prior as mixing weights. With latent_dim ≤ 2 the integral
# is a sum over a grid of nodes z_g with weights p(z_g)·ΔV — the finite mixture of lesson 01 with
# n**latent_dim components — and is computed exactly up to the rule's error: vaelab's ground truth.

_MASS_SDS = 10.0  # a normal's mass beyond 10 standard deviations is < 2e-23: never seen in float64 sums
_NODE_BLOCK = 2**13  # nodes decoded at a time: bounds memory whatever the grid's size


def _mass_box(prior, latent_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower and upper corners (each of shape (latent_dim,)) of a box that holds the prior's mass.

    A mixture of diagonal Gaussians (vaelab's MixturePrior, VampPrior): the union of its components'
    mean ± 10 sd; any other prior with ``mean``/``stddev``: mean ± 10 sd; N(0, I) otherwise.
    """
    dist = prior.distribution() if hasattr(prior, "distribution") else prior
    if isinstance(dist, MixtureSameFamily):
        comp = dist.component_distribution
        base = comp.base_dist if isinstance(comp, Independent) else comp
        loc, scale = base.mean, base.stddev  # (K, L)
        return (loc - _MASS_SDS * scale).min(0).values, (loc + _MASS_SDS * scale).max(0).values
    if isinstance(dist, Distribution):
        loc, scale = dist.mean.reshape(-1), dist.stddev.reshape(-1)
        return loc - _MASS_SDS * scale, loc + _MASS_SDS * scale
    ones = torch.ones(latent_dim, dtype=torch.float64)
    return -_MASS_SDS * ones, _MASS_SDS * ones


@torch.no_grad()
def latent_grid(prior, latent_dim: int, n: int, *, rule: str = "grid", dtype: torch.dtype = torch.float64,
                device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nodes and log-weights of a rule for ∫ g(z) p(z) dz in ``latent_dim`` ≤ 2 dimensions.

    rule="grid": the midpoint rule on n points per dimension over a box holding the prior's mass
    (±10 sd of every component), weights p(z_g)·ΔV from ``prior.log_prob`` — any prior (vaelab's
    StandardNormal, MixturePrior, VampPrior, or a torch distribution). Its error is O(Δ²) for a smooth
    integrand: halve Δ (double n) and compare to measure it; the mass outside the box is < 1e-22.
    rule="gauss-hermite": the Gauss–Hermite tensor rule of :func:`gauss_hermite` (N(0, I) only),
    exact for polynomials but poor when p(x|z) is much narrower than the prior.

    Returns
    -------
    z : of shape (n**latent_dim, latent_dim), a tensor grid in "ij" order
    log_w : of shape (n**latent_dim,), log of the node weights (they sum to ≈ 1)
    edge : bool of shape (n**latent_dim,), the nodes on the box's boundary (to check coverage)

    >>> from torch.distributions import Independent, Normal
    >>> z, log_w, edge = latent_grid(Independent(Normal(torch.zeros(2), torch.ones(2)), 1), 2, 200)
    >>> z.shape, round(float(log_w.exp().sum()), 6), int(edge.sum())
    (torch.Size([40000, 2]), 1.0, 796)
    """
    n = check_positive_int(n, "n")
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    check_choice(rule, "rule", ("grid", "gauss-hermite"))
    if latent_dim > 2:
        raise ValueError(f"`latent_dim` must be 1 or 2 for a grid (it has n**latent_dim nodes), got {latent_dim}; "
                         "estimate log p(x) with an importance-weighted bound instead (VAE.iwae)")
    if rule == "gauss-hermite":
        z, w = gauss_hermite(n, latent_dim, dtype=dtype, device=device)
        log_w = w.log()
    else:
        lo, hi = (c.to(device=device, dtype=dtype) for c in _mass_box(prior, latent_dim))
        step = (hi - lo) / n  # (L,)
        axes = [lo[d] + step[d] * (torch.arange(n, dtype=dtype, device=device) + 0.5) for d in range(latent_dim)]
        z = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, latent_dim)
        log_p = prior.log_prob(z.to(_prior_dtype(prior, dtype))).to(dtype)
        log_w = log_p + step.log().sum()
    index = torch.stack(torch.meshgrid(*[torch.arange(n, device=z.device)] * latent_dim, indexing="ij"), -1)
    edge = ((index == 0) | (index == n - 1)).any(-1).reshape(-1)
    return z, log_w, edge


def _prior_dtype(prior, default: torch.dtype) -> torch.dtype:
    ref = next(prior.parameters(), None) if isinstance(prior, nn.Module) else None
    if ref is None and isinstance(prior, nn.Module):
        ref = next(prior.buffers(), None)
    return ref.dtype if ref is not None else default


def pairwise_log_prob(components: Distribution, x: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """log p(x_b | z_g) for every pair, of shape (n_samples, G), from a decoder's distribution of batch shape (G,).

    Independent Bernoulli or Normal components are scored with matrix products (x·logitsᵀ −
    Σ softplus(logits); the expanded square for the Gaussian) in ``dtype``; any other distribution by
    broadcasting ``log_prob``.

    >>> from torch.distributions import Bernoulli, Independent
    >>> comps = Independent(Bernoulli(logits=torch.zeros(5, 3)), 1)
    >>> pairwise_log_prob(comps, torch.ones(2, 3)).shape
    torch.Size([2, 5])
    """
    base = components.base_dist if isinstance(components, Independent) else None
    x = x.to(dtype)
    if isinstance(base, Bernoulli) and base.batch_shape[-1:] == x.shape[-1:]:
        logits = base.logits.to(dtype)  # (G, D)
        return x @ logits.T - torch.nn.functional.softplus(logits).sum(-1)
    if isinstance(base, Normal) and base.batch_shape[-1:] == x.shape[-1:]:
        loc = base.loc.to(dtype)
        prec = base.scale.to(dtype).expand_as(loc).pow(-2)  # (G, D)
        quad = x.pow(2) @ prec.T - 2 * x @ (loc * prec).T + (loc.pow(2) * prec).sum(-1)
        return -0.5 * quad + 0.5 * prec.log().sum(-1) - 0.5 * x.shape[-1] * math.log(2 * math.pi)
    # any other distribution: broadcast, a block of rows of x at a time so (rows, G, D) stays bounded
    rows = max(1, _CHUNK // max(1, math.prod(components.batch_shape) * x.shape[-1]))
    return torch.cat([components.log_prob(x[i:i + rows, None, :]).to(dtype) for i in range(0, x.shape[0], rows)])


class GridPosterior(NamedTuple):
    """The exact posterior p(z|x) ∝ p(x|z) p(z) on a latent grid, and the evidence log p(x) it normalises by."""

    z: torch.Tensor            # (G, L) nodes; in 2-D an n×n grid in "ij" order (reshape(n, n, 2))
    log_density: torch.Tensor  # (B, G) log p(z_g | x_b), a density in z
    weights: torch.Tensor      # (B, G) posterior probability of each node's cell; rows sum to 1
    mean: torch.Tensor         # (B, L) E[z | x]
    cov: torch.Tensor          # (B, L, L) Cov[z | x]
    log_px: torch.Tensor       # (B,) log p(x)


def _log_joint_blocks(decode: Callable, prior, x: torch.Tensor, latent_dim: int, n: int, rule: str,
                      model_dtype: torch.dtype, dtype: torch.dtype):
    """Yield (z, log p(x|z) + log w, edge) over blocks of grid nodes: the (B, G) matrix is never held whole."""
    z, log_w, edge = latent_grid(prior, latent_dim, n, rule=rule, dtype=dtype, device=x.device)
    rows = max(1, min(_NODE_BLOCK, _CHUNK // max(1, x.shape[0])))  # (B, rows) log-likelihoods at a time
    for start in range(0, z.shape[0], rows):
        zb = z[start:start + rows]
        log_lik = pairwise_log_prob(decode(zb.to(model_dtype)), x, dtype)  # (B, g)
        yield zb, log_lik + log_w[start:start + rows], edge[start:start + rows]


def _check_coverage(log_edge_mass: torch.Tensor, n: int) -> None:
    worst = float(log_edge_mass.max().exp()) if log_edge_mass.numel() else 0.0
    if worst > 1e-6:
        import warnings

        warnings.warn(f"the posterior puts {worst:.2g} of its mass on the edge of the latent grid (n={n}): "
                      "the box around the prior's mass does not hold p(z|x) and log p(x) is too low", stacklevel=3)


@torch.no_grad()
def grid_log_prob(decode: Callable, prior, x: torch.Tensor, latent_dim: int, n: int, *, rule: str = "grid",
                  model_dtype: torch.dtype = torch.float32, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """log p(x) = log Σ_g w_g p(x | z_g) per row of x, of shape (B,): the continuous mixture summed on a grid.

    ``decode(z)`` returns the distribution p(x|z) for z of shape (g, latent_dim) (batch shape (g,)).
    """
    total = edge_total = None
    for _, log_joint, edge in _log_joint_blocks(decode, prior, x, latent_dim, n, rule, model_dtype, dtype):
        block = torch.logsumexp(log_joint, -1)
        total = block if total is None else torch.logaddexp(total, block)
        if edge.any():
            e = torch.logsumexp(log_joint[:, edge], -1)
            edge_total = e if edge_total is None else torch.logaddexp(edge_total, e)
    if edge_total is not None and rule == "grid":
        _check_coverage(edge_total - total, n)
    return total


@torch.no_grad()
def grid_posterior(decode: Callable, prior, x: torch.Tensor, latent_dim: int, n: int, *, rule: str = "grid",
                   model_dtype: torch.dtype = torch.float32, dtype: torch.dtype = torch.float64) -> GridPosterior:
    """The exact posterior p(z|x) on the grid of :func:`latent_grid`, for a few x (it holds the (B, G) matrix)."""
    zs, joints, edges = [], [], []
    for zb, log_joint, edge in _log_joint_blocks(decode, prior, x, latent_dim, n, rule, model_dtype, dtype):
        zs.append(zb)
        joints.append(log_joint)
        edges.append(edge)
    z, log_joint, edge = torch.cat(zs), torch.cat(joints, -1), torch.cat(edges)  # (G, L), (B, G), (G,)
    log_px = torch.logsumexp(log_joint, -1)
    weights = torch.exp(log_joint - log_px[:, None])  # (B, G)
    mean = weights @ z  # (B, L)
    centred = z[None] - mean[:, None]  # (B, G, L)
    cov = torch.einsum("bg,bgi,bgj->bij", weights, centred, centred)
    if rule == "grid":
        _check_coverage(torch.logsumexp(log_joint[:, edge], -1) - log_px, n)
        lo, hi = _mass_box(prior, latent_dim)
        log_cell = ((hi - lo) / n).log().sum().to(dtype)
    else:
        log_cell = torch.zeros((), dtype=dtype)  # Gauss–Hermite nodes have no cells: log_density holds log weights
    return GridPosterior(z, log_joint - log_px[:, None] - log_cell, weights, mean, cov, log_px)


# ----------------------------------------------------------------------------- the model

class ContinuousMixture(nn.Module):
    """p(x) = ∫ N(x; f(z), σ²I) p(z) dz: a mixture of Gaussians with one component per latent point z.

    Parameters
    ----------
    decoder : callable or nn.Module mapping z of shape (n, latent_dim) to means of shape (n, data_dim)
    obs_scale : σ > 0, the standard deviation of every component
    prior : a ``torch.distributions`` distribution over z of shape (latent_dim,); a scalar one is a
        1-D latent. Default: the standard normal N(0, I), which needs ``latent_dim``.
    latent_dim : needed only without a prior (read from the prior otherwise)

    >>> mix = ContinuousMixture(LinearDecoder(torch.ones(2, 1, dtype=torch.float64)), obs_scale=1.0)
    >>> x = torch.zeros(1, 2, dtype=torch.float64)
    >>> torch.allclose(mix.log_prob(x, method="quadrature", n=20), mix.log_prob(x, method="exact"))
    True
    """

    def __init__(self, decoder: Callable[[torch.Tensor], torch.Tensor], *, obs_scale: float,
                 prior: Distribution | None = None, latent_dim: int | None = None):
        super().__init__()
        if not callable(decoder):
            raise TypeError(f"`decoder` must be callable (a function or an nn.Module), got {type(decoder).__name__}")
        self.obs_scale = check_positive(obs_scale, "obs_scale")
        linear = _linear_params(decoder)
        if prior is None:
            if latent_dim is None and linear is None:
                raise ValueError("`latent_dim` is needed when no `prior` is given (it cannot be read from a "
                                 "non-linear decoder); pass latent_dim=... or a prior")
            latent_dim = linear[0].shape[1] if latent_dim is None else latent_dim
            latent_dim = check_positive_int(latent_dim, "latent_dim")
            ref = linear[0] if linear is not None else torch.zeros(())
            zeros = torch.zeros(latent_dim, dtype=ref.dtype, device=ref.device)
            prior = Independent(Normal(zeros, torch.ones_like(zeros)), 1)
        self.prior = _as_event_prior(prior)
        L = self.prior.event_shape[0]
        if latent_dim is not None and check_positive_int(latent_dim, "latent_dim") != L:
            raise ValueError(f"`latent_dim`={latent_dim} disagrees with the prior's event shape ({L},)")
        self.latent_dim = L
        self.decoder = decoder
        self.data_dim = self._probe()

    # -- small helpers --------------------------------------------------------------------------
    @property
    def _ref(self) -> torch.Tensor:
        return self.prior.mean

    def _probe(self) -> int:
        z = torch.zeros(1, self.latent_dim, dtype=self._ref.dtype, device=self._ref.device)
        try:
            with torch.no_grad():
                out = self.decoder(z)
        except (RuntimeError, ValueError, TypeError, IndexError) as err:
            raise ValueError(f"`decoder` failed on z of shape (1, {self.latent_dim}) (the prior's latent_dim): "
                             f"{err}") from err
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 1:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"`decoder` must map z of shape (n, latent_dim) to means of shape (n, data_dim), "
                             f"got {shape} for z of shape (1, {self.latent_dim})")
        return out.shape[1]

    def _x(self, x) -> torch.Tensor:
        return check_2d(x, "x", n_features=self.data_dim, device=self._ref.device)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The component means f(z): z of shape (..., latent_dim) -> (..., data_dim)."""
        z = as_tensor(z, "z", device=self._ref.device)
        if z.ndim < 1 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"`z` must have shape (..., latent_dim) = (..., {self.latent_dim}), got shape {tuple(z.shape)}")
        return self.decoder(z.reshape(-1, self.latent_dim)).reshape(*z.shape[:-1], self.data_dim)

    def _log_lik(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x_b | z_s) for every pair, of shape (n_samples, n_nodes)."""
        means = self.decoder(z)  # (S, D), once for the whole batch of x
        dtype = torch.promote_types(x.dtype, means.dtype)
        return isotropic_log_prob(x.to(dtype), means.to(dtype), self.obs_scale)

    def _reduce(self, x: torch.Tensor, z: torch.Tensor, reduce: Callable) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``reduce(log p(x_b | z_s))`` over the nodes, a block of rows of x at a time.

        The full (n_samples, n_nodes) matrix is never held: 200 points × 10⁵ samples would be 160 MB.
        """
        means = self.decoder(z)  # (S, D), once for every block
        dtype = torch.promote_types(x.dtype, means.dtype)
        x, means = x.to(dtype), means.to(dtype)
        rows = max(1, _CHUNK // max(1, means.numel()))
        parts = [reduce(isotropic_log_prob(x[i:i + rows], means, self.obs_scale)) for i in range(0, x.shape[0], rows)]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(p) for p in zip(*parts))
        return torch.cat(parts)

    # -- components: where the finite approximations put their Gaussians ---------------------------
    def components(self, n_components: int, nodes: str = "quadrature") -> tuple[torch.Tensor, torch.Tensor]:
        """Latent points z_k and weights π_k of a K-component approximation of the prior.

        nodes="quadrature": Gauss–Hermite nodes and weights (normal prior, latent_dim ≤ 2; in 2-D
        ``n_components`` must be a square). nodes="quantile": z_k = F⁻¹((k − ½)/K), equal weights
        (latent_dim = 1). nodes="grid": evenly spaced z_k over the prior's mass, π_k ∝ p(z_k)
        (latent_dim ≤ 2, a square in 2-D).

        Returns z of shape (n_components, latent_dim) and weights of shape (n_components,).
        """
        K = check_positive_int(n_components, "n_components")
        check_choice(nodes, "nodes", NODES)
        L, ref = self.latent_dim, self._ref
        if L > 2:
            raise ValueError(f"nodes={nodes!r} works for latent_dim ≤ 2 (a grid has K**latent_dim nodes), "
                             f"got latent_dim={L}; use Monte Carlo samples, prior.sample((K,))")
        per_dim = K
        if L == 2 and nodes != "quantile":
            per_dim = math.isqrt(K)
            if per_dim**2 != K:
                raise ValueError(f"`n_components` must be a perfect square for a 2-D grid, got {K}; "
                                 f"try {per_dim**2} or {(per_dim + 1)**2}")
        if nodes == "quadrature":
            params = self._require_normal("nodes='quadrature'")
            u, w = gauss_hermite(per_dim, L, dtype=ref.dtype, device=ref.device)
            loc, scale_tril = params
            return loc + u @ scale_tril.T, w  # change of variables z = loc + S u
        if nodes == "quantile":
            if L != 1:
                raise ValueError(f"nodes='quantile' needs latent_dim = 1, got {L}; use 'quadrature' or 'grid'")
            q = (torch.arange(K, dtype=ref.dtype, device=ref.device) + 0.5) / K
            z = _icdf_1d(self._base_1d(), q)
            return z[:, None], torch.full((K,), 1.0 / K, dtype=ref.dtype, device=ref.device)
        # grid: a midpoint rule, so a bounded support is never evaluated at its edge
        axes = []
        for d in range(L):
            lo, hi = _grid_range(self._base_1d(d))
            step = (hi - lo) / per_dim
            axes.append(lo + step * (torch.arange(per_dim, dtype=ref.dtype, device=ref.device) + 0.5))
        z = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, L)
        log_p = self.prior.log_prob(z)
        return z, torch.softmax(log_p, 0)

    def _base_1d(self, d: int = 0) -> Distribution:
        """The prior's marginal of coordinate ``d``, when the prior is a product of 1-D distributions."""
        prior = self.prior
        if isinstance(prior, Independent) and prior.base_dist.batch_shape == (self.latent_dim,):
            base = prior.base_dist
            if self.latent_dim == 1:
                return base
            if isinstance(base, Normal):
                return Normal(base.loc[d:d + 1], base.scale[d:d + 1])
            if hasattr(base, "low") and hasattr(base, "high"):
                return type(base)(base.low[d:d + 1], base.high[d:d + 1])
        if isinstance(prior, MultivariateNormal):
            std = prior.covariance_matrix.diagonal()[d:d + 1].sqrt()
            return Normal(prior.loc[d:d + 1], std)
        raise ValueError(f"this needs a prior with independent coordinates (e.g. Independent(Normal(...), 1) "
                         f"or Uniform), got {type(prior).__name__}")

    def _require_normal(self, what: str) -> tuple[torch.Tensor, torch.Tensor]:
        params = _normal_params(self.prior)
        if params is None:
            base = self.prior.base_dist if isinstance(self.prior, Independent) else self.prior
            if "quadrature" in what:
                # not "quadrature needs a normal prior": Gauss–Legendre is the Gaussian rule for a uniform
                # prior, Golub–Welsch builds one for any prior with moments, and u ↦ F⁻¹(Φ(u)) lets
                # Gauss–Hermite serve any 1-D prior; this method implements only the normal case
                raise ValueError(f"{what} is Gauss–Hermite, the Gaussian rule for a normal prior (Normal or "
                                 f"MultivariateNormal), got {type(base).__name__}; use finite(K, nodes='grid' or "
                                 f"'quantile'), method='mc', or Gauss–Hermite on the decoder z ↦ f(F⁻¹(Φ(z))) "
                                 f"under a standard normal prior (lesson 02, §4)")
            raise ValueError(f"{what} needs a normal prior (Normal or MultivariateNormal), got {type(base).__name__}; "
                             f"use method='mc', or finite(K, nodes='grid' or 'quantile')")
        return params

    def finite(self, n_components: int, nodes: str = "quadrature"):
        """The K-component ``vaelab.GaussianMixture`` approximating this mixture.

        Components N(f(z_k), σ²I) sit at the latent points of ``components(n_components, nodes)``
        with their weights; as K grows, its ``score_samples(x)`` tends to log p(x).
        """
        from .gmm import GaussianMixture  # the finite world of lesson 01

        z, weights = self.components(n_components, nodes)
        with torch.no_grad():
            means = self.decoder(z)  # (K, D)
        covariances = torch.full((means.shape[0],), self.obs_scale**2, dtype=means.dtype, device=means.device)
        return GaussianMixture.from_parameters(weights.to(means.dtype), means, covariances,
                                               covariance_type="spherical", device=means.device,
                                               dtype=means.dtype)

    # -- log p(x) ----------------------------------------------------------------------------------
    @torch.no_grad()
    def log_prob(self, x, method: str = "quadrature", n: int | None = None, *, seed: int | None = None) -> torch.Tensor:
        """log p(x) of shape (n_samples,) for x of shape (n_samples, data_dim).

        method="quadrature": Gauss–Hermite with ``n`` nodes per latent dimension (default 50; normal
        prior, latent_dim ≤ 2). method="mc": log-mean-exp over ``n`` prior samples (default 1000;
        any prior and latent_dim; ``log_prob_mc`` also returns the standard error). method="exact":
        the closed form N(x; W m + b, W S Sᵀ Wᵀ + σ²I) for a linear decoder and a normal prior
        N(m, S Sᵀ) (``n`` must be None).

        An evaluation: no gradients flow (``fit_mc`` and the pure functions here are for training).
        """
        check_choice(method, "method", METHODS)
        if method == "mc":
            return self.log_prob_mc(x, 1000 if n is None else n, seed=seed)[0]
        if method == "exact":
            if n is not None:
                raise ValueError(f"`n` has no meaning for method='exact' (nothing is sampled or summed), got n={n}")
            return self._exact(x)
        n = check_positive_int(50 if n is None else n, "n")
        if self.latent_dim > 2:
            raise ValueError(f"method='quadrature' works for latent_dim ≤ 2 (a tensor-product grid has "
                             f"n**latent_dim nodes), got latent_dim={self.latent_dim}; use method='mc'")
        self._require_normal("method='quadrature'")
        x = self._x(x)
        z, w = self.components(n**self.latent_dim, "quadrature")
        log_w = w.log()  # -inf for weights that underflow: logsumexp ignores them
        return self._reduce(x, z, lambda log_lik: torch.logsumexp(log_lik + log_w.to(log_lik.dtype), dim=-1))

    @torch.no_grad()
    def log_prob_mc(self, x, n: int = 1000, *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Monte Carlo log p(x) with ``n`` prior samples, and its standard error (delta method).

        log p̂(x) = log (1/n) Σ_s N(x; f(z_s), σ²I), z_s ~ p(z). The estimate is unbiased for p(x),
        slightly biased low for log p(x) (Jensen); the standard error is std(w)/(√n mean(w)).
        ``seed`` draws the same z every call without touching torch's global generator.

        Returns
        -------
        estimate, stderr : each of shape (n_samples,)
        """
        n = check_positive_int(n, "n")
        x = self._x(x)
        with _seeded(seed, self._ref.device):
            z = self.prior.sample((n,))  # (n, L): one set of components shared by every x
        return self._reduce(x, z, mc_estimate)

    def _exact(self, x) -> torch.Tensor:
        linear = _linear_params(self.decoder)
        if linear is None:
            raise ValueError(f"method='exact' needs a linear decoder (vaelab.continuous.LinearDecoder or "
                             f"torch.nn.Linear), got {type(self.decoder).__name__}; use 'quadrature' "
                             f"(latent_dim ≤ 2) or 'mc'")
        W, b = linear
        loc, scale_tril = self._require_normal("method='exact'")
        # x = W (m + S u) + b + σ ε  is pPCA with W' = W S and b' = W m + b
        return ppca_log_prob(self._x(x).to(W.dtype), W @ scale_tril, W @ loc + b, self.obs_scale)

    @torch.no_grad()
    def forward(self, x) -> torch.Tensor:
        """The default log p(x): exact when the decoder is linear, else quadrature (L ≤ 2), else MC."""
        if _linear_params(self.decoder) is not None and _normal_params(self.prior) is not None:
            return self.log_prob(x, "exact")
        if self.latent_dim <= 2 and _normal_params(self.prior) is not None:
            return self.log_prob(x, "quadrature")
        return self.log_prob(x, "mc")

    def sample(self, n: int, *, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw x = f(z) + σ ε with z ~ p(z): returns x of shape (n, data_dim) and z of shape (n, latent_dim)."""
        n = check_positive_int(n, "n")
        with _seeded(seed, self._ref.device), torch.no_grad():
            z = self.prior.sample((n,))
            means = self.decoder(z)
            x = means + self.obs_scale * torch.randn_like(means)
        return x, z

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, data_dim={self.data_dim}, obs_scale={self.obs_scale:g}"


# ----------------------------------------------------------------------------- learning f

def fit_mc(mixture: ContinuousMixture, X, *, n_samples: int = 256, epochs: int = 500, lr: float = 1e-2,
           batch_size: int | None = None, seed: int | None = 0) -> list[float]:
    """Fit the decoder by gradient ascent on the Monte Carlo estimate of the log-likelihood (lesson 02, §5).

    Each step draws ``n_samples`` fresh z ~ p(z), shared by the whole batch, and maximises
    (1/B) Σ_b log (1/S) Σ_s N(x_b; f(z_s), σ²I) with Adam. Works for a 1-D latent; as latent_dim
    grows, most z explain no x and the estimate (and its gradient) is carried by a few samples.

    Returns
    -------
    history : the mean Monte Carlo log-likelihood (nats per point) of each epoch

    >>> mix = ContinuousMixture(nn.Linear(1, 2), obs_scale=0.5, latent_dim=1)
    >>> len(fit_mc(mix, torch.randn(20, 2), epochs=3))
    3
    """
    if not isinstance(mixture, ContinuousMixture):
        raise TypeError(f"`mixture` must be a ContinuousMixture, got {type(mixture).__name__}")
    if not isinstance(mixture.decoder, nn.Module) or not any(p.requires_grad for p in mixture.decoder.parameters()):
        raise TypeError("`mixture.decoder` must be an nn.Module with trainable parameters to be fitted")
    n_samples = check_positive_int(n_samples, "n_samples")
    epochs = check_positive_int(epochs, "epochs")
    lr = check_positive(lr, "lr")
    X = mixture._x(X)
    batch_size = X.shape[0] if batch_size is None else check_positive_int(batch_size, "batch_size")
    optimizer = torch.optim.Adam(mixture.decoder.parameters(), lr=lr)
    history = []
    with _seeded(seed, mixture._ref.device):
        for _ in range(epochs):
            order = torch.randperm(X.shape[0], device=X.device) if batch_size < X.shape[0] else None
            total = 0.0
            for start in range(0, X.shape[0], batch_size):
                xb = X if order is None else X[order[start:start + batch_size]]
                z = mixture.prior.sample((n_samples,))
                loss = -log_mean_exp(mixture._log_lik(xb, z), dim=1).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += -loss.item() * xb.shape[0]
            history.append(total / X.shape[0])
    return history
