"""Putting a finite and an infinite mixture on one scale: parameter counts, dequantization, bits.

Derived in lesson 06. Likelihoods of different models compare only when they are densities of the
same variable (or probability masses of the same discrete variable); these helpers make that so:

- ``dequantize``: grey levels v ∈ {0, …, L−1} become x = (v + u) / L with u ~ U(0, 1), a continuous
  variable whose density is bounded (a density of the grey levels themselves is not);
- ``dequantized_log_pmf``: log P(v) ≥ E_u log p(x) − D log L, so a density of x gives a lower bound
  on the log-probability of the grey levels (a code length);
- ``normal_log_interval``, ``discretized_gmm_log_pmf``, ``discretized_iwae``: the probability of the
  grey levels itself, P(v) = ∫_bin(v) p(x) dx, by differences of Φ — exact for a diagonal Gaussian
  mixture, an importance-weighted lower bound for a VAE with Gaussian p(x|z);
- ``n_parameters``: the free parameters of a Gaussian or Bernoulli mixture, of a linear-Gaussian
  model (probabilistic PCA, factor analysis) or of a torch module;
- ``nats_to_bits``, ``mixture_rate`` and ``mixture_rate_terms``: what a log-likelihood or a latent
  code costs in bits, and how much of a mixture's rate is information about x.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import nn

from ._validation import as_tensor, check_choice, check_finite, check_positive_int
from .objectives import log_mean_exp

__all__ = ["gmm_n_parameters", "n_parameters", "dequantize", "dequantized_log_pmf", "level_bins",
           "normal_log_interval", "discretized_gmm_log_pmf", "discretized_iwae", "nats_to_bits",
           "mixture_rate", "RateTerms", "mixture_rate_terms"]

_COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def gmm_n_parameters(n_components: int, n_features: int, covariance_type: str = "full") -> int:
    """Free parameters of a Gaussian mixture with K components in D dimensions.

    ``K − 1`` weights (they sum to 1) + ``K·D`` means + the covariances: ``K·D(D+1)/2`` ("full", each
    symmetric), ``K·D`` ("diag"), ``K`` ("spherical") or ``D(D+1)/2`` ("tied", one shared by all).

    >>> gmm_n_parameters(10, 64, "full"), gmm_n_parameters(10, 64, "diag")
    (21449, 1289)
    """
    k = check_positive_int(n_components, "n_components")
    d = check_positive_int(n_features, "n_features")
    check_choice(covariance_type, "covariance_type", _COVARIANCE_TYPES)
    covariances = {"full": k * d * (d + 1) // 2, "diag": k * d, "spherical": k,
                   "tied": d * (d + 1) // 2}[covariance_type]
    return (k - 1) + k * d + covariances


def n_parameters(model: Any) -> int:
    """Free parameters of a fitted mixture (vaelab's or scikit-learn's) or of a torch ``nn.Module``.

    - a Gaussian mixture (``covariance_type``, ``n_components``, fitted ``means_``): ``gmm_n_parameters``;
    - a model with an ``n_parameters()`` method (``vaelab.BernoulliMixture``): what it says;
    - a fitted linear-Gaussian model, scikit-learn's ``PCA`` (probabilistic PCA) or ``FactorAnalysis``:
      the numbers in ``components_`` (W, L·D), ``mean_`` (D) and ``noise_variance_`` (1 shared σ² for
      PCA, D for factor analysis) — W's rotations, L(L−1)/2 of its numbers, are counted too;
    - an ``nn.Module``: the number of numbers in its parameters (shared ones counted once). For a VAE
      that includes the encoder; ``n_parameters(vae) - n_parameters(vae.encoder)`` counts the
      generative model p(x) = ∫ p(x|z) p(z) dz alone.

    >>> n_parameters(nn.Linear(3, 2))
    8
    """
    if isinstance(model, nn.Module):
        return int(sum(p.numel() for p in model.parameters()))
    if hasattr(model, "covariance_type") and hasattr(model, "n_components"):
        means = getattr(model, "means_", None)
        if means is None:
            raise ValueError(f"`model` ({type(model).__name__}) is not fitted yet; call fit(X) first, so its "
                             "number of features is known")
        return gmm_n_parameters(model.n_components, int(means.shape[1]), model.covariance_type)
    if callable(getattr(model, "n_parameters", None)):
        return int(model.n_parameters())
    if all(hasattr(model, name) for name in ("components_", "mean_", "noise_variance_")):
        return int(sum(torch.as_tensor(getattr(model, name)).numel()
                       for name in ("components_", "mean_", "noise_variance_")))
    raise TypeError(f"`model` must be a fitted Gaussian or Bernoulli mixture, a fitted PCA or FactorAnalysis, "
                    f"or a torch.nn.Module, "
                    f"got {type(model).__name__}")


def _levels(x: torch.Tensor, n_levels: int) -> torch.Tensor:
    """The grey levels v = x·(n_levels − 1) as whole numbers (same dtype), or a ValueError naming ``x``."""
    levels = x * (n_levels - 1)
    v = levels.round()
    off = (levels - v).abs() > 1e-4
    if off.any() or (v < 0).any() or (v > n_levels - 1).any():
        raise ValueError(f"`x` must hold the {n_levels} levels k / {n_levels - 1} (k = 0 … {n_levels - 1}), got "
                         f"values from {float(x.min()):.4g} to {float(x.max()):.4g}"
                         + (f", {int(off.sum())} of them between levels" if off.any() else "")
                         + "; pass n_levels= to match the data")
    return v


def dequantize(x: Any, n_levels: int = 17, *, seed: int | None = 0) -> torch.Tensor:
    """Spread grey levels over their bins: ``(v + u) / n_levels`` with ``v = x·(n_levels − 1)``, u ~ U(0, 1).

    ``x`` of shape (n_samples, n_features) holds the levels ``v / (n_levels − 1)`` in [0, 1] (as
    ``vaelab.data.digits()`` gives: 17 levels). The result, of the same shape, lies in [0, 1) and
    has a bounded density, while a density of the levels themselves can grow without limit.
    ``seed`` fixes u (None: torch's global generator).

    >>> x = dequantize(torch.tensor([[0.0, 0.5, 1.0]]), n_levels=3)  # bins [0, ⅓), [⅓, ⅔), [⅔, 1)
    >>> (x * 3).floor().tolist()
    [[0.0, 1.0, 2.0]]
    """
    n_levels = check_positive_int(n_levels, "n_levels", minimum=2)
    x = check_finite(as_tensor(x, "x"), "x")
    v = _levels(x, n_levels)
    generator = None if seed is None else torch.Generator().manual_seed(check_positive_int(seed, "seed", minimum=0))
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return (v + u) / n_levels


def dequantized_log_pmf(log_density: Any, n_features: int, n_levels: int = 17) -> torch.Tensor:
    """A lower bound on log P(v) from the log density of the dequantized x = (v + u) / L, per example.

    Each grey level's bin has width 1/L, so ``P(v) = ∫_bin p(x) dx = L^−D E_u p(x)`` and, by Jensen,
    ``log P(v) ≥ E_u log p(x) − D log L``: the same shape as ``log_density``, in nats. With the log
    density at *one* draw of u per image (``dequantize``), the result is an unbiased estimate of
    that bound, not the bound itself; averaged over many images its noise is small. For the exact
    P(v) of a Gaussian model see ``discretized_gmm_log_pmf`` and ``discretized_iwae``.

    >>> dequantized_log_pmf(torch.tensor([0.0]), n_features=64, n_levels=17)  # uniform density on [0, 1)^64
    tensor([-181.3257])
    """
    log_density = as_tensor(log_density, "log_density")
    n_features = check_positive_int(n_features, "n_features")
    n_levels = check_positive_int(n_levels, "n_levels", minimum=2)
    return log_density - n_features * math.log(n_levels)


def level_bins(x: Any, n_levels: int = 17) -> tuple[torch.Tensor, torch.Tensor]:
    """The bin ``[v / n_levels, (v + 1) / n_levels)`` of each grey level: (lower, upper), each like ``x``.

    ``x`` holds the levels ``v / (n_levels − 1)`` (as ``vaelab.data.digits()`` gives); the bins are
    the ones ``dequantize`` spreads each level over, so ``P(v) = ∫_bin(v) p(x) dx``.

    >>> lower, upper = level_bins(torch.tensor([[0.0, 1.0]]), n_levels=2)
    >>> lower.tolist(), upper.tolist()
    ([[0.0, 0.5]], [[0.5, 1.0]])
    """
    n_levels = check_positive_int(n_levels, "n_levels", minimum=2)
    v = _levels(check_finite(as_tensor(x, "x"), "x"), n_levels)
    return v / n_levels, (v + 1) / n_levels


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    # log(1 − e^a) for a ≤ 0, accurate at both ends (Mächler 2012): expm1 near 0, log1p far from it
    return torch.where(a > -math.log(2), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def normal_log_interval(lower: Any, upper: Any, loc: Any, scale: Any) -> torch.Tensor:
    """log P(lower ≤ X < upper) for X ~ N(loc, scale²), elementwise: ``log(Φ(b) − Φ(a))``.

    ``a = (lower − loc) / scale``, ``b = (upper − loc) / scale``; the arguments broadcast. Computed
    from log Φ, and in the right tail from the mirrored ``Φ(−a) − Φ(−b)``, so a bin 40 standard
    deviations away still gets a finite log-probability instead of log 0.

    >>> round(float(normal_log_interval(0.0, math.inf, 0.0, 1.0)), 6) == round(math.log(0.5), 6)
    True
    """
    lower, upper = as_tensor(lower, "lower"), as_tensor(upper, "upper")
    loc, scale = as_tensor(loc, "loc"), as_tensor(scale, "scale")
    if (upper <= lower).any():
        raise ValueError("`upper` must be greater than `lower` everywhere (each a bin's edges)")
    if not (scale > 0).all():
        raise ValueError("`scale` must be > 0 everywhere")
    a, b = (lower - loc) / scale, (upper - loc) / scale
    right = a > 0  # both edges above the mean: Φ(b) − Φ(a) would subtract two numbers near 1
    a, b = torch.where(right, -b, a), torch.where(right, -a, b)
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + _log1mexp(log_a - log_b)


def discretized_gmm_log_pmf(gmm: Any, x: Any, n_levels: int = 17) -> torch.Tensor:
    """Exact log P(v) of the grey levels under a diagonal (or spherical) Gaussian mixture, per image.

    ``P(v) = Σ_k π_k Π_d [Φ((b_d − μ_kd)/σ_kd) − Φ((a_d − μ_kd)/σ_kd)]`` with ``[a_d, b_d)`` the bin
    of pixel d (``level_bins``): the integral of the mixture's density over the bin of v, which
    ``dequantized_log_pmf`` only bounds from below. Mass the density puts outside [0, 1) belongs to
    no bin, as in the bound. ``gmm`` is a fitted mixture (vaelab's or scikit-learn's) with
    ``covariance_type`` "diag" or "spherical"; ``x`` of shape (n_samples, n_features) holds the
    levels ``v / (n_levels − 1)``. Returns a float64 tensor of shape (n_samples,), in nats.

    >>> from sklearn.mixture import GaussianMixture
    >>> gm = GaussianMixture(1, covariance_type="diag").fit([[0.0], [1.0]])  # N(0.5, 0.25)
    >>> round(float(discretized_gmm_log_pmf(gm, [[1.0]], n_levels=2)), 4)  # log(Φ(1) − Φ(0))
    -1.0749
    """
    covariance_type = getattr(gmm, "covariance_type", None)
    if covariance_type not in ("diag", "spherical") or getattr(gmm, "means_", None) is None:
        raise ValueError(f"`gmm` must be a fitted Gaussian mixture with covariance_type 'diag' or 'spherical' "
                         f"(a full covariance makes P(v) a {'' if covariance_type is None else 'many-'}dimensional "
                         f"integral with no closed form), got covariance_type={covariance_type!r}")
    means = torch.as_tensor(gmm.means_, dtype=torch.float64).cpu()  # (K, D)
    variances = torch.as_tensor(gmm.covariances_, dtype=torch.float64).cpu()
    if covariance_type == "spherical":
        variances = variances[:, None].expand_as(means)
    log_weights = torch.as_tensor(gmm.weights_, dtype=torch.float64).cpu().log()  # (K,)
    lower, upper = level_bins(as_tensor(x, "x", dtype=torch.float64).cpu(), n_levels)  # (N, D) each
    if lower.ndim != 2 or lower.shape[1] != means.shape[1]:
        raise ValueError(f"`x` must be of shape (n_samples, {means.shape[1]}), got {tuple(lower.shape)}")
    scales = variances.sqrt()
    out = []
    for start in range(0, lower.shape[0], 256):  # (256, K, D) at a time keeps memory small
        lo, up = lower[start:start + 256, None, :], upper[start:start + 256, None, :]
        log_mass = normal_log_interval(lo, up, means, scales).sum(-1)  # (n, K)
        out.append(torch.logsumexp(log_weights + log_mass, dim=1))
    return torch.cat(out)


def discretized_iwae(model: nn.Module, s: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor,
                     k: int) -> torch.Tensor:
    """Importance-weighted lower bound on log P(s ∈ [lower, upper)) of a VAE with Gaussian p(x|z), per example.

    ``log P ≥ E log (1/k) Σ_i P(bin | z_i) p(z_i) / q(z_i | s)``, z_i ~ q(z | s), with
    ``P(bin | z) = Π_d [Φ((upper_d − f_d(z))/σ_d(z)) − Φ((lower_d − f_d(z))/σ_d(z))]``: the bound of
    lesson 03 with the probability of the bin in place of the density at one point, so it bounds
    the probability of the grey levels directly, without the dequantization bound's Jensen gap.
    ``model`` has ``encode``/``decode``/``prior`` like ``vaelab.VAE``, with ``decode(z)`` an
    (Independent) Normal; ``s`` (the encoder's input) and the bin edges ``lower``, ``upper``, each of
    shape (B, D), are in the units the model was trained on. Returns shape (B,), in nats.
    """
    k = check_positive_int(k, "k")
    for name, t in (("s", s), ("lower", lower), ("upper", upper)):
        if not isinstance(t, torch.Tensor) or t.ndim != 2:
            raise ValueError(f"`{name}` must be a 2-D tensor of shape (B, D), got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    if not (s.shape == lower.shape == upper.shape):
        raise ValueError(f"`s`, `lower` and `upper` must have one shape, got {tuple(s.shape)}, "
                         f"{tuple(lower.shape)}, {tuple(upper.shape)}")
    q = model.encode(s)
    chunk = max(1, 2_000_000 // max(1, s.numel()))  # samples per pass: about 2M (B, D) numbers
    log_w = []
    with torch.no_grad():
        for start in range(0, k, chunk):
            z = q.sample((min(chunk, k - start),))  # (k', B, L)
            p = model.decode(z)
            base = getattr(p, "base_dist", p)
            if not isinstance(base, torch.distributions.Normal):
                raise TypeError(f"`model.decode(z)` must be a Normal (or Independent Normal), got {type(base).__name__}")
            log_bin = normal_log_interval(lower, upper, base.loc, base.scale).sum(-1)  # (k', B)
            log_w.append(log_bin + model.prior.log_prob(z) - q.log_prob(z))
    return log_mean_exp(torch.cat(log_w), dim=0)  # (k, B) -> (B,): the IWAE bound, as VAE.iwae


def nats_to_bits(nats: Any) -> Any:
    """Convert nats to bits: divide by log 2 (a float stays a float, a tensor a tensor).

    >>> nats_to_bits(math.log(2))
    1.0
    """
    if isinstance(nats, torch.Tensor):
        return nats / math.log(2)
    return float(nats) / math.log(2)


def mixture_rate(resp: Any, weights: Any) -> float:
    """The rate of a finite mixture's code: ``mean_n KL(p(k | x_n) || π)`` in nats.

    ``resp`` of shape (n_samples, n_components) holds the responsibilities, ``weights`` of shape
    (n_components,) the prior π. It is what sending the component index, the finite mixture's
    latent code, costs: the analogue of a VAE's rate ``E_x KL(q(z|x) || p(z))``. ``0 · log 0``
    counts as 0. It is **not** bounded by log K: it splits as ``I(x; k) + KL(γ̄ || π)``
    (``mixture_rate_terms``), and only the information ``I(x; k) ≤ H(γ̄) ≤ log K`` is; the
    prior-mismatch term grows without limit when π is far from the mean responsibility γ̄
    (at EM's fixed point, on the training images, π = γ̄ and the rate is the information).

    >>> round(mixture_rate(torch.eye(2), torch.tensor([0.5, 0.5])), 6) == round(math.log(2), 6)
    True
    >>> mixture_rate(torch.eye(2), torch.tensor([0.9, 0.1])) > math.log(2)  # π far from γ̄ = (½, ½)
    True
    """
    resp, weights = _check_resp(resp, weights)
    # xlogy: a responsibility of exactly 0 contributes 0, not 0 · (−inf) = NaN
    kl = (torch.xlogy(resp, resp) - torch.xlogy(resp, weights)).sum(dim=1)  # (N,)
    return float(kl.mean())


class RateTerms(NamedTuple):
    """A finite mixture's rate and its parts, in nats: ``rate = information + prior_mismatch``."""

    rate: float            # mean_n KL(γ_n || π)
    information: float     # I(x; k) = mean_n KL(γ_n || γ̄) ≤ entropy
    prior_mismatch: float  # KL(γ̄ || π) ≥ 0
    entropy: float         # H(γ̄) ≤ log K


def mixture_rate_terms(resp: Any, weights: Any) -> RateTerms:
    """Split a mixture's rate into the information its code carries and the prior's mismatch.

    With γ̄ = mean_n γ_n (the codes' marginal over the images given) and the images as the data
    distribution: ``mean_n KL(γ_n || π) = I(x; k) + KL(γ̄ || π)``, where
    ``I(x; k) = mean_n KL(γ_n || γ̄) = H(γ̄) − mean_n H(γ_n) ≤ H(γ̄) ≤ log K``.

    >>> terms = mixture_rate_terms(torch.eye(4), torch.tensor([0.7, 0.1, 0.1, 0.1]))
    >>> round(terms.information / math.log(2), 3), round(terms.rate / math.log(2), 3)  # bits
    (2.0, 2.62)
    """
    resp, weights = _check_resp(resp, weights)
    marginal = resp.mean(0)  # γ̄, (K,)
    information = (torch.xlogy(resp, resp) - torch.xlogy(resp, marginal)).sum(1).mean()
    prior_mismatch = (torch.xlogy(marginal, marginal) - torch.xlogy(marginal, weights)).sum()
    entropy = -torch.xlogy(marginal, marginal).sum()
    return RateTerms(float(information + prior_mismatch), float(information), float(prior_mismatch), float(entropy))


def _check_resp(resp: Any, weights: Any) -> tuple[torch.Tensor, torch.Tensor]:
    resp = as_tensor(resp, "resp")
    weights = as_tensor(weights, "weights", dtype=resp.dtype)
    if resp.ndim != 2 or weights.shape != resp.shape[1:]:
        raise ValueError(f"`resp` must be of shape (n_samples, n_components) and `weights` of shape "
                         f"(n_components,), got {tuple(resp.shape)} and {tuple(weights.shape)}")
    return resp, weights
