"""What a trained VAE does with its latent space: KL per dimension, active units, rate and distortion.

All in nats, averaged over the data, computed without gradients in batches. Derived in lesson 04.

- **Rate** R = E_x KL(q(z|x) || p(z)): how much the code z says about x (an upper bound on the
  mutual information between x and z under the encoder).
- **Distortion** D = −E_x E_q[log p(x|z)]: how badly x is reconstructed from its code.
- R + D = −ELBO, so every model sits on a line of slope −1 in the (R, D) plane; β trades one for
  the other (Alemi et al., 2018).
- **Active units** (Burda et al., 2016): a latent dimension j is active when its posterior mean
  moves with x, A_j = Var_x(E_q[z_j | x]) > 0.01. A collapsed dimension has q(z_j|x) = p(z_j)
  for every x: KL_j = 0 and A_j = 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from . import objectives
from ._validation import check_positive, check_positive_int
from .priors import StandardNormal

__all__ = [
    "Diagnostics",
    "RateDistortion",
    "activity",
    "active_units",
    "diagnose",
    "kl_per_dimension",
    "posterior_params",
    "rate",
    "distortion",
    "rate_distortion",
]


def _check_model(model: Any) -> nn.Module:
    for name in ("encode_params", "decode", "prior", "check_data"):
        if not hasattr(model, name):
            raise TypeError(f"`model` must be a vaelab VAE (with encode_params, decode and prior), "
                            f"got {type(model).__name__} without `{name}`")
    return model


def _batches(X: torch.Tensor, batch_size: int):
    for start in range(0, X.shape[0], batch_size):
        yield X[start:start + batch_size]


@torch.no_grad()
def posterior_params(model: nn.Module, X: Any, *, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's (mu, logvar) for every row of ``X``, each of shape (n_samples, latent_dim)."""
    model = _check_model(model)
    X = model.check_data(X, "X")
    batch_size = check_positive_int(batch_size, "batch_size")
    parts = [model.encode_params(xb) for xb in _batches(X, batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def activity(mu: torch.Tensor) -> torch.Tensor:
    """A_j = Var_x(E_q[z_j | x]): the variance over the data of each posterior mean, of shape (latent_dim,).

    ``mu`` holds E_q[z | x_n] of shape (n_samples, latent_dim); the variance divides by n_samples.

    >>> activity(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
    tensor([1., 0.])
    """
    if mu.ndim != 2:
        raise ValueError(f"`mu` must be 2-D of shape (n_samples, latent_dim), got shape {tuple(mu.shape)}")
    return mu.var(dim=0, correction=0)


@torch.no_grad()
def active_units(model: nn.Module, X: Any, *, threshold: float = 0.01, batch_size: int = 1024) -> int:
    """How many latent dimensions have Var_x(E_q[z_j | x]) > ``threshold`` (Burda et al., 2016 use 0.01).

    >>> from vaelab.models import VAE
    >>> _ = torch.manual_seed(0)
    >>> active_units(VAE.mlp(4, 3, hidden=(8,)), torch.rand(50, 4), threshold=1e-9)
    3
    """
    threshold = check_positive(threshold, "threshold")
    mu, _ = posterior_params(model, X, batch_size=batch_size)
    return int((activity(mu) > threshold).sum())


@torch.no_grad()
def kl_per_dimension(model: nn.Module, X: Any, *, batch_size: int = 1024) -> torch.Tensor:
    """KL_j = E_x KL(q(z_j|x) || N(0, 1)) in nats, of shape (latent_dim,); they sum to the rate.

    KL_j = ½ E_x (mu_j² + σ_j² − 1 − log σ_j²). Defined for the standard-normal prior, which
    factorizes over dimensions; a mixture or VampPrior couples them (use :func:`rate`).
    """
    model = _check_model(model)
    if type(model.prior) is not StandardNormal:
        raise ValueError("KL per dimension needs a prior that factorizes over latent dimensions "
                         f"(StandardNormal), got {type(model.prior).__name__}; use rate() for the total KL")
    mu, logvar = posterior_params(model, X, batch_size=batch_size)
    return objectives.gaussian_kl(mu, logvar).mean(0)


class RateDistortion(NamedTuple):
    """Rate and distortion in nats per example; ``rate + distortion`` is −ELBO."""

    rate: float
    distortion: float

    @property
    def elbo(self) -> float:
        return -(self.rate + self.distortion)


@torch.no_grad()
def rate_distortion(model: nn.Module, X: Any, *, n_samples: int = 8, seed: int | None = 0,
                    batch_size: int = 1024) -> RateDistortion:
    """Rate R = E_x KL(q(z|x) || p(z)) and distortion D = −E_x E_q[log p(x|z)], in nats per example.

    The KL is exact for the standard-normal prior and a Monte Carlo average of
    log q(z|x) − log p(z) over ``n_samples`` draws otherwise; D is always averaged over the same
    ``n_samples`` draws z ~ q(z|x). ``seed`` fixes the draws (None: the global generator).

    >>> from vaelab.models import VAE
    >>> _ = torch.manual_seed(0)
    >>> rd = rate_distortion(VAE.mlp(4, 2, hidden=(8,)), torch.rand(10, 4))
    >>> round(rd.elbo, 6) == round(-(rd.rate + rd.distortion), 6)
    True
    """
    model = _check_model(model)
    X = model.check_data(X, "X")
    n_samples = check_positive_int(n_samples, "n_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=X.device).manual_seed(check_positive_int(seed, "seed", minimum=0))
    exact = type(model.prior) is StandardNormal
    total_rate, total_distortion = 0.0, 0.0
    for xb in _batches(X, batch_size):
        mu, logvar = model.encode_params(xb)  # (B, L)
        eps = torch.randn((n_samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = objectives.reparameterize(mu, logvar, eps)  # (S, B, L)
        total_distortion -= float(model.decode(z).log_prob(xb).mean(0).sum())
        if exact:
            total_rate += float(objectives.gaussian_kl(mu, logvar).sum())
        else:
            q = model.posterior(mu, logvar)
            total_rate += float((q.log_prob(z) - model.prior.log_prob(z)).mean(0).sum())
    n = X.shape[0]
    return RateDistortion(total_rate / n, total_distortion / n)


def rate(model: nn.Module, X: Any, **kwargs) -> float:
    """R = E_x KL(q(z|x) || p(z)) in nats per example (see :func:`rate_distortion` for the options)."""
    return rate_distortion(model, X, **kwargs).rate


def distortion(model: nn.Module, X: Any, **kwargs) -> float:
    """D = −E_x E_q[log p(x|z)] in nats per example (see :func:`rate_distortion` for the options)."""
    return rate_distortion(model, X, **kwargs).distortion


@dataclass(frozen=True)
class Diagnostics:
    """Everything :func:`diagnose` measures; ``str()`` gives the one-line summary the dashboard prints."""

    rate: float
    distortion: float
    activity: torch.Tensor  # (latent_dim,) Var_x E_q[z_j|x]
    active_units: int
    threshold: float
    kl_per_dim: torch.Tensor | None  # (latent_dim,), standard-normal prior only

    @property
    def elbo(self) -> float:
        return -(self.rate + self.distortion)

    @property
    def latent_dim(self) -> int:
        return int(self.activity.shape[0])

    def __str__(self) -> str:
        return (f"rate {self.rate:.2f} nats | distortion {self.distortion:.2f} nats | "
                f"-ELBO {-self.elbo:.2f} nats | active units {self.active_units}/{self.latent_dim}")


@torch.no_grad()
def diagnose(model: nn.Module, X: Any, *, threshold: float = 0.01, n_samples: int = 8, seed: int | None = 0,
             batch_size: int = 1024) -> Diagnostics:
    """Rate, distortion, activity, active units and (standard-normal prior) KL per dimension in one call.

    >>> from vaelab.models import VAE
    >>> _ = torch.manual_seed(0)
    >>> d = diagnose(VAE.mlp(4, 2, hidden=(8,)), torch.rand(10, 4))
    >>> d.latent_dim, d.kl_per_dim.shape
    (2, torch.Size([2]))
    """
    threshold = check_positive(threshold, "threshold")
    rd = rate_distortion(model, X, n_samples=n_samples, seed=seed, batch_size=batch_size)
    mu, logvar = posterior_params(model, X, batch_size=batch_size)
    act = activity(mu)
    kl = objectives.gaussian_kl(mu, logvar).mean(0) if type(model.prior) is StandardNormal else None
    return Diagnostics(rd.rate, rd.distortion, act, int((act > threshold).sum()), threshold, kl)
