"""The objectives a VAE is trained with: the ELBO, its importance-weighted refinement, the Gaussian KL,
β, free bits and KL annealing. Derived in lesson 03; β, free bits and annealing used in lesson 04.

One convention everywhere in vaelab: every quantity is **per example, summed over dimensions**
(pixels, latent coordinates), in nats, of shape (B,); a training loss is the **mean over the batch**
of the negative ELBO. The pytorch/examples (and the seed's) ``vae_loss`` sums over the batch too::

    BCE(sum) + KLD(sum)  ==  B * mean_b[ -elbo_b ]  ==  B * negative_elbo_loss(reconstruction, kl)

so their numbers are ours multiplied by the batch size, and their learning rate acts B times larger.
"""
from __future__ import annotations

import math

import torch

from ._validation import as_tensor, check_nonnegative, check_positive_int

__all__ = [
    "elbo",
    "free_bits_kl",
    "gaussian_kl",
    "iwae",
    "kl_weight",
    "log_mean_exp",
    "negative_elbo_loss",
    "reparameterize",
]


def _tensor(value, name: str) -> torch.Tensor:
    """Tensors pass through untouched (autograd intact); numpy arrays and lists become tensors."""
    return value if isinstance(value, torch.Tensor) else as_tensor(value, name)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """Draw z ~ N(mu, diag exp(logvar)) as a differentiable function of (mu, logvar).

    z = mu + exp(½ logvar) · ε,  ε ~ N(0, I). The noise ε carries the randomness, so gradients flow
    to mu and logvar (lesson 03, §4). ``eps`` may have extra leading dimensions (k samples).

    Parameters
    ----------
    mu, logvar : tensors of shape (B, latent_dim)
    eps : optional standard normal noise of shape (..., B, latent_dim); drawn when None

    Returns
    -------
    z : tensor of the shape of ``eps`` (of ``mu`` when ``eps`` is None)

    >>> reparameterize(torch.zeros(1, 2), torch.log(torch.full((1, 2), 4.0)), torch.ones(1, 2))
    tensor([[2., 2.]])
    """
    mu, logvar = _tensor(mu, "mu"), _tensor(logvar, "logvar")
    if eps is None:
        eps = torch.randn_like(mu)
    eps = _tensor(eps, "eps")
    # log-variance parameterisation: any real number is a valid output of the encoder's last layer
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per latent dimension, of the shape of ``mu``.

    KL_j = ½ (mu_j² + exp(logvar_j) − 1 − logvar_j); sum over the last axis for the KL of the vector.

    >>> gaussian_kl(torch.tensor([[0.0, 1.0]]), torch.zeros(1, 2))
    tensor([[0.0000, 0.5000]])
    """
    mu, logvar = _tensor(mu, "mu"), _tensor(logvar, "logvar")
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def log_mean_exp(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log( (1/k) Σ_i exp(x_i) ) along ``dim``, computed stably with log-sum-exp.

    >>> float(log_mean_exp(torch.tensor([1000.0, 1000.0])))
    1000.0
    """
    x = _tensor(x, "x")
    # subtracting the max inside logsumexp keeps exp() from overflowing for log-weights of -1000 or +1000
    return torch.logsumexp(x, dim=dim) - math.log(x.shape[dim])


def elbo(reconstruction: torch.Tensor, kl: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """The (β-weighted) evidence lower bound per example: ℒ = E_q[log p(x|z)] − β KL(q(z|x) || p(z)).

    Parameters
    ----------
    reconstruction : tensor of shape (B,), log p(x|z) at a sample z ~ q(z|x), summed over data dimensions
    kl : tensor of shape (B,) (or (B, latent_dim), summed here), KL(q(z|x) || p(z))
    beta : weight of the KL term; 1 gives the ELBO, a bound on log p(x)

    >>> elbo(torch.tensor([-10.0]), torch.tensor([2.0]), beta=0.5)
    tensor([-11.])
    """
    beta = check_nonnegative(beta, "beta")
    reconstruction, kl = _tensor(reconstruction, "reconstruction"), _tensor(kl, "kl")
    if kl.ndim == reconstruction.ndim + 1:
        kl = kl.sum(-1)
    if kl.shape != reconstruction.shape:  # (3, 1) − (3,) would broadcast silently to (3, 3)
        raise ValueError(f"`kl` must have the shape of `reconstruction`, {tuple(reconstruction.shape)}, or that shape "
                         f"plus a last latent_dim axis (summed), got shape {tuple(kl.shape)}")
    return reconstruction - beta * kl


def iwae(log_weights: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """The importance-weighted bound ℒ_k = log (1/k) Σ_i w_i from log-weights along ``dim``.

    log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), z_i ~ q(z|x); ℒ_1 is the ELBO's estimator,
    ℒ_k rises with k toward log p(x) (Burda et al., 2016).

    Parameters
    ----------
    log_weights : tensor of shape (k, B) (with the default ``dim=0``)

    >>> iwae(torch.log(torch.tensor([[1.0], [3.0]])))
    tensor([0.6931])
    """
    log_weights = _tensor(log_weights, "log_weights")
    check_positive_int(log_weights.shape[dim], "k")
    return log_mean_exp(log_weights, dim=dim)


def free_bits_kl(kl: torch.Tensor, free_bits: float = 0.0) -> torch.Tensor:
    """The batch-mean KL with each column floored at ``free_bits`` nats: Σ_j max(λ, mean_b KL_bj).

    With ``kl`` of shape (B, latent_dim) the floor is per latent dimension (Kingma et al., 2016):
    a dimension whose average KL is below λ gets no gradient pushing it further toward the prior,
    which counters posterior collapse (lesson 04). ``free_bits=0`` gives the plain mean KL.

    >>> float(free_bits_kl(torch.tensor([[0.1, 2.0], [0.3, 4.0]]), free_bits=0.5))
    3.5
    """
    free_bits = check_nonnegative(free_bits, "free_bits")
    kl = _tensor(kl, "kl")
    if kl.ndim == 1:
        kl = kl[:, None]  # (B, 1): the floor applies to the total
    per_column = kl.mean(0)  # (L,)
    if free_bits > 0:
        per_column = per_column.clamp(min=free_bits)
    return per_column.sum()


def negative_elbo_loss(reconstruction: torch.Tensor, kl: torch.Tensor, *, beta: float = 1.0,
                       free_bits: float = 0.0) -> torch.Tensor:
    """The training loss: mean over the batch of −ℒ, with β on the KL and an optional free-bits floor.

    loss = −mean_b log p(x_b|z_b) + β Σ_j max(λ, mean_b KL_bj). With β = 1 and λ = 0 this is
    mean_b(−elbo_b); the seed's ``vae_loss`` (sums over the batch) is B times it.

    Parameters
    ----------
    reconstruction : tensor of shape (B,)
    kl : tensor of shape (B, latent_dim) (free bits per dimension) or (B,) (free bits on the total)

    >>> float(negative_elbo_loss(torch.tensor([-10.0, -20.0]), torch.tensor([1.0, 3.0])))
    17.0
    """
    beta = check_nonnegative(beta, "beta")
    reconstruction = _tensor(reconstruction, "reconstruction")
    return -reconstruction.mean() + beta * free_bits_kl(kl, free_bits)


def kl_weight(epoch: float, warmup: float) -> float:
    """KL annealing: the factor on β that grows linearly from 0 to 1 over the first ``warmup`` epochs.

    w(t) = min(1, t / warmup) for a (possibly fractional) epoch t counted from 0; ``warmup=0``
    switches annealing off (w = 1). Bowman et al. (2016) use it against posterior collapse.

    >>> [kl_weight(t, 4) for t in (0, 2, 4, 9)]
    [0.0, 0.5, 1.0, 1.0]
    """
    epoch = check_nonnegative(epoch, "epoch")
    warmup = check_nonnegative(warmup, "warmup")
    if warmup == 0:
        return 1.0
    return min(1.0, epoch / warmup)
