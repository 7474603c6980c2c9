"""Priors p(z) over the latent space: each has ``log_prob(z)``, ``sample(n)`` and ``latent_dim``.

A prior with a closed-form KL to a diagonal Gaussian posterior also has ``kl(q)``; the
VAE falls back to a Monte Carlo KL for the others.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from ._validation import check_2d, check_choice, check_positive_int

__all__ = ["PRIORS", "MixturePrior", "Prior", "StandardNormal", "VampPrior", "make_prior"]


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


def _diagonal_mixture(logits: torch.Tensor, means: torch.Tensor, scales: torch.Tensor) -> MixtureSameFamily:
    """A mixture of diagonal Gaussians: logits (K,), means and scales (K, L)."""
    # validate_args=False: the scales are positive by construction (exp), and the checks cost a
    # noticeable share of a small model's training step
    return MixtureSameFamily(Categorical(logits=logits, validate_args=False),
                             Independent(Normal(means, scales, validate_args=False), 1, validate_args=False),
                             validate_args=False)


class _MixtureOfDiagonals(Prior):
    """A prior given by ``distribution()``, a mixture of diagonal Gaussians; no closed-form KL."""

    def distribution(self) -> MixtureSameFamily:
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = logsumexp_k [log π_k + log N(z; m_k, diag s_k²)], of shape z.shape[:-1]."""
        return self.distribution().log_prob(z)

    def sample(self, n: int) -> torch.Tensor:
        n = check_positive_int(n, "n")
        with torch.no_grad():
            return self.distribution().sample((n,))


class MixturePrior(_MixtureOfDiagonals):
    """A learned mixture of Gaussians, p(z) = Σ_k π_k N(z; m_k, diag s_k²).

    The prior itself becomes a finite mixture, so the VAE turns into a mixture (over k) of
    infinite mixtures (over z). There is no closed-form KL to a Gaussian posterior: ``kl``
    returns None and the VAE estimates KL(q || p) = E_q[log q(z|x) − log p(z)] by Monte Carlo.

    Parameters
    ----------
    latent_dim : size of z
    n_components : number of Gaussians K
    learn : if True the weights, means and scales are trained with the VAE; if False they stay
        at their initial values (means drawn from N(0, I), unit scales, equal weights)

    >>> prior = MixturePrior(2, 3)
    >>> prior.log_prob(torch.zeros(5, 2)).shape, prior.sample(4).shape
    (torch.Size([5]), torch.Size([4, 2]))
    """

    def __init__(self, latent_dim: int, n_components: int, *, learn: bool = True):
        super().__init__()
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.n_components = check_positive_int(n_components, "n_components")
        if not isinstance(learn, bool):
            raise TypeError(f"`learn` must be True or False, got {learn!r}")
        logits = torch.zeros(self.n_components)
        means = torch.randn(self.n_components, self.latent_dim)
        log_scales = torch.zeros(self.n_components, self.latent_dim)  # log s: positive scale without a constraint
        for name, value in (("logits", logits), ("means", means), ("log_scales", log_scales)):
            if learn:
                setattr(self, name, nn.Parameter(value))
            else:
                self.register_buffer(name, value)
        # plain data that rebuilds this prior (VAE.mlp stores it so a saved model can be reloaded)
        self.config = {"latent_dim": self.latent_dim, "n_components": self.n_components, "learn": learn}

    @property
    def weights(self) -> torch.Tensor:
        """Mixing weights π, of shape (n_components,)."""
        return self.logits.softmax(-1)

    def distribution(self) -> MixtureSameFamily:
        """The prior as a ``torch.distributions.MixtureSameFamily`` (event shape (latent_dim,))."""
        return _diagonal_mixture(self.logits, self.means, self.log_scales.exp())

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, n_components={self.n_components}"


class VampPrior(_MixtureOfDiagonals):
    """The VampPrior (Tomczak & Welling, 2018): p(z) = (1/K) Σ_k q(z | u_k).

    ``n_pseudo`` learned pseudo-inputs u_k (of shape (n_pseudo, data_dim)) are pushed through the
    VAE's own encoder; the prior is the equal-weight mixture of the posteriors they get. It
    approximates the *aggregate posterior* (1/N) Σ_n q(z | x_n), the prior that maximizes the ELBO.
    ``kl`` returns None: the VAE uses a Monte Carlo KL.

    Parameters
    ----------
    encoder : the VAE's encoder, x of shape (B, data_dim) -> (B, 2·latent_dim): mean then log-variance
    n_pseudo : number of pseudo-inputs K
    data_dim : width of x
    init : optional starting pseudo-inputs of shape (n_pseudo, data_dim), e.g. a random subset of
        the training data; by default N(0.5, 0.1²) noise (mid-grey images for data in [0, 1])

    >>> enc = nn.Linear(4, 2 * 3)
    >>> prior = VampPrior(enc, n_pseudo=5, data_dim=4)
    >>> prior.latent_dim, prior.log_prob(torch.zeros(7, 3)).shape
    (3, torch.Size([7]))
    """

    def __init__(self, encoder: nn.Module, n_pseudo: int, data_dim: int, *, init: torch.Tensor | None = None):
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"`encoder` must be a torch.nn.Module, got {type(encoder).__name__}")
        self.n_pseudo = check_positive_int(n_pseudo, "n_pseudo")
        data_dim = check_positive_int(data_dim, "data_dim")
        self.encoder = encoder  # shared with the VAE: the prior moves as the encoder learns
        reference = next(encoder.parameters(), None)
        device = reference.device if reference is not None else None
        dtype = reference.dtype if reference is not None else torch.get_default_dtype()
        if init is None:
            init = 0.5 + 0.1 * torch.randn(self.n_pseudo, data_dim)
        else:
            init = check_2d(init, "init", n_features=data_dim)
            if init.shape[0] != self.n_pseudo:
                raise ValueError(f"`init` must have n_pseudo={self.n_pseudo} rows, got {init.shape[0]}")
        self.pseudo_inputs = nn.Parameter(init.detach().clone().to(device=device, dtype=dtype))
        with torch.no_grad():
            out = encoder(self.pseudo_inputs)
        if out.ndim != 2 or out.shape[0] != self.n_pseudo or out.shape[1] % 2:
            raise ValueError(
                "`encoder` must map (n_pseudo, data_dim) to (n_pseudo, 2*latent_dim) (mean then "
                f"log-variance), got output shape {tuple(out.shape)} for input {tuple(self.pseudo_inputs.shape)}")
        self.latent_dim = out.shape[1] // 2

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and log-variances of the K components q(z | u_k), each of shape (n_pseudo, latent_dim)."""
        mu, logvar = self.encoder(self.pseudo_inputs).chunk(2, dim=-1)
        return mu, logvar

    def distribution(self) -> MixtureSameFamily:
        """The prior as a ``torch.distributions.MixtureSameFamily`` (event shape (latent_dim,))."""
        mu, logvar = self.components()
        logits = torch.zeros(self.n_pseudo, device=mu.device, dtype=mu.dtype)
        return _diagonal_mixture(logits, mu, (0.5 * logvar).exp())

    def extra_repr(self) -> str:
        return f"latent_dim={self.latent_dim}, n_pseudo={self.n_pseudo}"


PRIORS = ("standard", "mixture", "vamp")


def make_prior(name: str, latent_dim: int, *, n_components: int = 10, encoder: nn.Module | None = None,
               data_dim: int | None = None, init: torch.Tensor | None = None) -> Prior:
    """Build a prior by name: "standard" (N(0, I)), "mixture" (``MixturePrior``) or "vamp" (``VampPrior``).

    ``n_components`` is the number of Gaussians of the mixture or of pseudo-inputs of the VampPrior;
    "vamp" also needs the VAE's ``encoder`` and ``data_dim`` (and takes an optional ``init``).

    >>> make_prior("mixture", 2, n_components=4)
    MixturePrior(latent_dim=2, n_components=4)
    """
    check_choice(name, "name", PRIORS)
    latent_dim = check_positive_int(latent_dim, "latent_dim")
    n_components = check_positive_int(n_components, "n_components")
    if name == "standard":
        return StandardNormal(latent_dim)
    if name == "mixture":
        return MixturePrior(latent_dim, n_components)
    if encoder is None or data_dim is None:
        raise ValueError("make_prior('vamp', ...) needs the VAE's `encoder` and `data_dim`: the "
                         "VampPrior pushes pseudo-inputs through the encoder")
    prior = VampPrior(encoder, n_components, data_dim, init=init)
    if prior.latent_dim != latent_dim:
        raise ValueError(f"`encoder` outputs a latent of size {prior.latent_dim}, but latent_dim={latent_dim}")
    return prior
