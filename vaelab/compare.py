"""Putting a finite and an infinite mixture on one scale: parameter counts, dequantization, bits.

Derived in lesson 06. Likelihoods of different models compare only when they are densities of the
same variable (or probability masses of the same discrete variable); these helpers make that so:

- ``dequantize``: grey levels v ∈ {0, …, L−1} become x = (v + u) / L with u ~ U(0, 1), a continuous
  variable whose density is bounded (a density of the grey levels themselves is not);
- ``dequantized_log_pmf``: log P(v) ≥ E_u log p(x) − D log L, so a density of x gives a code length
  for the grey levels;
- ``n_parameters``: the free parameters of a Gaussian or Bernoulli mixture or of a torch module;
- ``nats_to_bits`` and ``mixture_rate``: what a log-likelihood or a latent code costs in bits.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ._validation import as_tensor, check_choice, check_finite, check_positive_int

__all__ = ["gmm_n_parameters", "n_parameters", "dequantize", "dequantized_log_pmf", "nats_to_bits",
           "mixture_rate"]

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
    raise TypeError(f"`model` must be a fitted Gaussian or Bernoulli mixture or a torch.nn.Module, "
                    f"got {type(model).__name__}")


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
    levels = x * (n_levels - 1)
    v = levels.round()
    off = (levels - v).abs() > 1e-4
    if off.any() or (v < 0).any() or (v > n_levels - 1).any():
        raise ValueError(f"`x` must hold the {n_levels} levels k / {n_levels - 1} (k = 0 … {n_levels - 1}), got "
                         f"values from {float(x.min()):.4g} to {float(x.max()):.4g}"
                         + (f", {int(off.sum())} of them between levels" if off.any() else "")
                         + "; pass n_levels= to match the data")
    generator = None if seed is None else torch.Generator().manual_seed(check_positive_int(seed, "seed", minimum=0))
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return (v + u) / n_levels


def dequantized_log_pmf(log_density: Any, n_features: int, n_levels: int = 17) -> torch.Tensor:
    """A lower bound on log P(v) from the log density of the dequantized x = (v + u) / L, per example.

    Each grey level's bin has width 1/L, so ``P(v) = ∫_bin p(x) dx = L^−D E_u p(x)`` and, by Jensen,
    ``log P(v) ≥ E_u log p(x) − D log L``: the same shape as ``log_density``, in nats.

    >>> dequantized_log_pmf(torch.tensor([0.0]), n_features=64, n_levels=17)  # uniform density on [0, 1)^64
    tensor([-181.3257])
    """
    log_density = as_tensor(log_density, "log_density")
    n_features = check_positive_int(n_features, "n_features")
    n_levels = check_positive_int(n_levels, "n_levels", minimum=2)
    return log_density - n_features * math.log(n_levels)


def nats_to_bits(nats: Any) -> Any:
    """Convert nats to bits: divide by log 2 (a float stays a float, a tensor a tensor).

    >>> nats_to_bits(math.log(2))
    1.0
    """
    if isinstance(nats, torch.Tensor):
        return nats / math.log(2)
    return float(nats) / math.log(2)


def mixture_rate(resp: Any, weights: Any) -> float:
    """The rate of a finite mixture: ``mean_n KL(p(k | x_n) || π)`` in nats, at most log K.

    ``resp`` of shape (n_samples, n_components) holds the responsibilities, ``weights`` of shape
    (n_components,) the prior π. It is what the component index, the finite mixture's latent code,
    says about x: the analogue of a VAE's rate ``E_x KL(q(z|x) || p(z))``. ``0 · log 0`` counts as 0.

    >>> round(mixture_rate(torch.eye(2), torch.tensor([0.5, 0.5])), 6) == round(math.log(2), 6)
    True
    """
    resp = as_tensor(resp, "resp")
    weights = as_tensor(weights, "weights", dtype=resp.dtype)
    if resp.ndim != 2 or weights.shape != resp.shape[1:]:
        raise ValueError(f"`resp` must be of shape (n_samples, n_components) and `weights` of shape "
                         f"(n_components,), got {tuple(resp.shape)} and {tuple(weights.shape)}")
    # xlogy: a responsibility of exactly 0 contributes 0, not 0 · (−inf) = NaN
    kl = (torch.xlogy(resp, resp) - torch.xlogy(resp, weights)).sum(dim=1)  # (N,)
    return float(kl.mean())
