"""Priors p(z) over the latent space: each has ``log_prob(z)``, ``sample(n)`` and ``latent_dim``.

A prior with a closed-form KL to a diagonal Gaussian posterior also has ``kl(q)``; the
VAE falls back to a Monte Carlo KL for the others.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ._validation import check_positive_int

__all__ = ["Prior", "StandardNormal"]


class Prior(nn.Module):
    """Base class: a distribution over z of shape (latent_dim,) that may hold learnable parameters."""

    latent_dim: int

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the latent dimensions: (..., latent_dim) -> (...)."""
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        """Draw ``n`` latent vectors, of shape (n, latent_dim)."""
        raise NotImplementedError

    def kl(self, q: Distribution) -> torch.Tensor | None:
        """KL(q || p) per example in closed form, or None when there is none (use Monte Carlo)."""
        return None


class StandardNormal(Prior):
    """p(z) = N(0, I) in ``latent_dim`` dimensions.

    >>> round(StandardNormal(2).log_prob(torch.zeros(2)).item(), 4)  # -log(2π)
    -1.8379
    """

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.register_buffer("_zero", torch.zeros(()))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z.pow(2).sum(-1) + self.latent_dim * math.log(2 * math.pi))

    def sample(self, n: int) -> torch.Tensor:
        n = check_positive_int(n, "n")
        return torch.randn(n, self.latent_dim, device=self._zero.device, dtype=self._zero.dtype)

    def kl(self, q: Distribution) -> torch.Tensor | None:
        """KL(N(mu, diag σ²) || N(0, I)) = ½ Σ (mu² + σ² − 1 − log σ²), per example."""
        base = q.base_dist if isinstance(q, Independent) else q
        if not isinstance(base, Normal):
            return None
        mu, var = base.loc, base.scale.pow(2)
        return 0.5 * (mu.pow(2) + var - 1.0 - var.log()).sum(-1)
