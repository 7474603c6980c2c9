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

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from . import objectives
from .continuous import gauss_hermite
from ._validation import check_positive, check_positive_int
from .priors import StandardNormal

__all__ = [
    "Diagnostics",
    "GaussianQ",
    "InferenceGaps",
    "RateDistortion",
    "activity",
    "active_units",
    "diagnose",
    "gaussian_elbo",
    "inference_gaps",
    "kl_per_dimension",
    "optimal_gaussian_q",
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
    from ._validation import as_tensor

    mu = as_tensor(mu, "mu")  # a numpy array too (its var has no dim=)
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


# ----------------------------------------------------------------------------- inference gaps
# Derived in lesson 03, §7.4. Cremer, Li & Duvenaud (2018), "Inference suboptimality in VAEs":
#   log p(x) − ℒ(x; encoder) = [log p(x) − ℒ(x; q*)] + [ℒ(x; q*) − ℒ(x; encoder)]
#                            =  approximation gap     +  amortization gap,
# with q* the best member of the encoder's family (a diagonal Gaussian) for that x alone.

class GaussianQ(NamedTuple):
    """A diagonal Gaussian q(z|x) = N(mu, diag exp(logvar)) per example, and its ELBO.

    mu, logvar : of shape (n_samples, latent_dim);  elbo : of shape (n_samples,), nats
    """

    mu: torch.Tensor
    logvar: torch.Tensor
    elbo: torch.Tensor


class InferenceGaps(NamedTuple):
    """log p(x), the best diagonal Gaussian's ELBO and the encoder's ELBO per example, each (n_samples,).

    ``approximation`` = log p(x) − ℒ(q*) ≥ 0: what the family costs; ``amortization`` =
    ℒ(q*) − ℒ(encoder) ≥ 0: what sharing one encoder across x costs; they sum to ``total``.
    """

    log_px: torch.Tensor
    elbo_optimal: torch.Tensor
    elbo_encoder: torch.Tensor

    @property
    def approximation(self) -> torch.Tensor:
        return self.log_px - self.elbo_optimal

    @property
    def amortization(self) -> torch.Tensor:
        return self.elbo_optimal - self.elbo_encoder

    @property
    def total(self) -> torch.Tensor:
        return self.log_px - self.elbo_encoder


def _standard_nodes(latent_dim: int, n_nodes: int | None, n_samples: int, seed: int,
                    ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points u (G, L) and weights w (G,) with E_{N(0, I)}[g(u)] ≈ Σ_j w_j g(u_j)."""
    if n_nodes is not None and latent_dim <= 2:
        # Gauss–Hermite: deterministic, and exact for polynomials of degree ≤ 2·n_nodes − 1
        return gauss_hermite(n_nodes, latent_dim, dtype=ref.dtype, device=ref.device)
    # the same draws on every call (common random numbers): the objective is a fixed smooth function
    generator = torch.Generator(device="cpu").manual_seed(seed)
    u = torch.randn(n_samples, latent_dim, generator=generator, dtype=torch.float64)
    return u.to(ref.device, ref.dtype), torch.full((n_samples,), 1.0 / n_samples, dtype=ref.dtype, device=ref.device)


def _gaussian_elbo(model: nn.Module, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                   u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    z = mu[:, None, :] + torch.exp(0.5 * logvar)[:, None, :] * u  # (B, G, L): z = mu + σ u
    reconstruction = (model.decode(z).log_prob(x[:, None, :]) * w).sum(1)  # E_q[log p(x|z)], (B,)
    if type(model.prior) is StandardNormal:
        kl = objectives.gaussian_kl(mu, logvar).sum(-1)
    else:  # E_q[log q(z|x) − log p(z)] on the same points
        kl = ((model.posterior(mu[:, None, :], logvar[:, None, :]).log_prob(z) - model.prior.log_prob(z)) * w).sum(1)
    return reconstruction - kl


def _check_q(mu: Any, logvar: Any, X: torch.Tensor, latent_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (X.shape[0], latent_dim)
    out = []
    for name, value in (("mu", mu), ("logvar", logvar)):
        value = torch.as_tensor(value, device=X.device, dtype=X.dtype)
        if tuple(value.shape) != shape:
            raise ValueError(f"`{name}` must have shape (n_samples, latent_dim) = {shape}, got {tuple(value.shape)}")
        out.append(value)
    return out[0], out[1]


def gaussian_elbo(model: nn.Module, X: Any, mu: Any, logvar: Any, *, n_nodes: int | None = 8,
                  n_samples: int = 64, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """ℒ(x; q) = E_q[log p(x|z)] − KL(q || p(z)) of a given q = N(mu, diag exp(logvar)), per example.

    The expectation is a Gauss–Hermite sum with ``n_nodes`` per dimension for latent_dim ≤ 2
    (no Monte Carlo noise; ``n_nodes=None`` for draws), else an average over ``n_samples`` fixed
    draws ε ~ N(0, I) (``seed``), the same for every x. The KL is analytic for N(0, I). Gradients
    flow to ``mu`` and ``logvar``.

    Returns a tensor of shape (n_samples,) in nats.

    >>> from vaelab.models import VAE
    >>> _ = torch.manual_seed(0); vae = VAE.mlp(4, 2, hidden=(8,))
    >>> x = torch.bernoulli(torch.full((3, 4), 0.5))
    >>> mu, logvar = vae.encode_params(x)
    >>> torch.allclose(gaussian_elbo(vae, x, mu, logvar), vae.elbo(x.repeat(20000, 1)).view(20000, 3).mean(0), atol=0.05)
    True
    """
    model = _check_model(model)
    X = model.check_data(X, "X")
    mu, logvar = _check_q(mu, logvar, X, model.latent_dim)
    if n_nodes is not None:
        n_nodes = check_positive_int(n_nodes, "n_nodes")
    n_samples = check_positive_int(n_samples, "n_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    u, w = _standard_nodes(model.latent_dim, n_nodes, n_samples, check_positive_int(seed, "seed", minimum=0), X)
    return torch.cat([_gaussian_elbo(model, X[i:i + batch_size], mu[i:i + batch_size], logvar[i:i + batch_size], u, w)
                      for i in range(0, X.shape[0], batch_size)])


def optimal_gaussian_q(model: nn.Module, X: Any, *, steps: int = 300, lr: float = 0.03, n_nodes: int | None = 8,
                       n_samples: int = 64, seed: int = 0, batch_size: int = 256) -> GaussianQ:
    """The best diagonal Gaussian q(z|x) for each x on its own: argmax over (mu, logvar) of ℒ(x; q).

    Non-amortized variational inference: ``steps`` of Adam on every example's (mu, logvar),
    started at the encoder's output, the model held fixed. ℒ is computed as in :func:`gaussian_elbo`
    (same ``n_nodes``, ``n_samples``, ``seed``), so the objective is deterministic. Each example keeps
    the better of its optimised q and the encoder's, so ``elbo`` is never below the encoder's ELBO.

    Returns a :class:`GaussianQ` (mu, logvar of shape (n_samples, latent_dim), elbo of shape (n_samples,)).

    >>> from vaelab.models import VAE
    >>> _ = torch.manual_seed(0); vae = VAE.mlp(4, 2, hidden=(8,))
    >>> x = torch.bernoulli(torch.full((3, 4), 0.5))
    >>> best = optimal_gaussian_q(vae, x, steps=50)
    >>> bool((best.elbo >= gaussian_elbo(vae, x, *vae.encode_params(x))).all())
    True
    """
    model = _check_model(model)
    X = model.check_data(X, "X")
    steps = check_positive_int(steps, "steps")
    lr = check_positive(lr, "lr")
    if n_nodes is not None:
        n_nodes = check_positive_int(n_nodes, "n_nodes")
    n_samples = check_positive_int(n_samples, "n_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    u, w = _standard_nodes(model.latent_dim, n_nodes, n_samples, check_positive_int(seed, "seed", minimum=0), X)
    parts = []
    for xb in _batches(X, batch_size):
        with torch.no_grad():
            mu0, logvar0 = model.encode_params(xb)
            elbo0 = _gaussian_elbo(model, xb, mu0, logvar0, u, w)
        mu, logvar = mu0.clone().requires_grad_(), logvar0.clone().requires_grad_()
        optimizer = torch.optim.Adam([mu, logvar], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                # each example's ELBO depends on its own (mu, logvar) only: the sum is N separate problems
                loss = -_gaussian_elbo(model, xb, mu, logvar, u, w).sum()
                mu.grad, logvar.grad = torch.autograd.grad(loss, (mu, logvar))  # not into the model's weights
                optimizer.step()
        with torch.no_grad():
            elbo = _gaussian_elbo(model, xb, mu, logvar, u, w)
            better = (elbo >= elbo0)[:, None]
            parts.append((torch.where(better, mu, mu0), torch.where(better, logvar, logvar0), torch.maximum(elbo, elbo0)))
    return GaussianQ(*(torch.cat(p) for p in zip(*parts)))


def inference_gaps(model: nn.Module, X: Any, *, log_px: Any = None, steps: int = 300, lr: float = 0.03,
                   n_nodes: int | None = 8, n_samples: int = 64, seed: int = 0, batch_size: int = 256) -> InferenceGaps:
    """The approximation and amortization gaps of Cremer et al. (2018) for each example, in nats.

    log p(x) − ℒ(encoder) = [log p(x) − ℒ(q*)] + [ℒ(q*) − ℒ(encoder)], with q* from
    :func:`optimal_gaussian_q` and both ELBOs from :func:`gaussian_elbo` (the same rule).
    ``log_px`` defaults to ``model.log_prob(X)``, exact up to quadrature error for latent_dim ≤ 2;
    pass it for a larger latent (a closed form, or a large-k IWAE, which makes the approximation gap
    a bound).

    >>> from vaelab.models import VAE
    >>> _ = torch.manual_seed(0); vae = VAE.mlp(4, 2, hidden=(8,))
    >>> x = torch.bernoulli(torch.full((3, 4), 0.5))
    >>> gaps = inference_gaps(vae, x, log_px=vae.iwae(x, 5000).detach(), steps=50)
    >>> torch.allclose(gaps.approximation + gaps.amortization, gaps.total)
    True
    """
    model = _check_model(model)
    X = model.check_data(X, "X")
    if log_px is None:
        log_px = model.log_prob(X)
    log_px = torch.as_tensor(log_px, device=X.device).to(X.dtype)
    if tuple(log_px.shape) != (X.shape[0],):
        raise ValueError(f"`log_px` must have shape (n_samples,) = ({X.shape[0]},), got {tuple(log_px.shape)}")
    options = {"n_nodes": n_nodes, "n_samples": n_samples, "seed": seed, "batch_size": batch_size}
    best = optimal_gaussian_q(model, X, steps=steps, lr=lr, **options)
    with torch.no_grad():
        encoder = gaussian_elbo(model, X, *posterior_params(model, X), **options)
    return InferenceGaps(log_px, best.elbo, encoder)


# ---------------------------------------------------------------- the rate split and the R = 0 anchor (lesson 04)

class RateSplit(NamedTuple):
    """R = I_q(x; z) + KL(q(z) || p(z)) in nats, over the empirical distribution of the rows of X.

    ``information`` ≤ ``log_n`` = log(n_samples) always (the code can at most tell the rows apart);
    ``rate`` is the Monte Carlo estimate of the same draws, so information + mismatch = rate exactly.
    """

    information: float
    mismatch: float
    log_n: float

    @property
    def rate(self) -> float:
        return self.information + self.mismatch


@torch.no_grad()
def rate_split(model: nn.Module, X: Any, *, n_samples: int = 10, seed: int | None = 0) -> RateSplit:
    """Split the rate into I_q(x; z) and the prior mismatch KL(q(z) || p(z)) (Hoffman & Johnson, 2016).

    x is drawn from the n rows of X (their empirical distribution), z from q(z|x); the aggregate
    posterior is the exact mixture q(z) = (1/n) Σ_m q(z|x_m) over those rows, so the estimate of
    I = E[log q(z|x) − log q(z)] has only Monte Carlo error — and it is at most log n, because
    q(z) ≥ q(z|x_n)/n: a code cannot say more about x than which of the n rows it came from.
    Alemi et al. (2018)'s sandwich on that distribution reads log n − D ≤ I ≤ R. Derived in lesson 04.
    Holds n × n × n_samples numbers at once: meant for a few thousand rows at most.

    >>> from vaelab.models import VAE
    >>> _ = torch.manual_seed(0)
    >>> split = rate_split(VAE.mlp(4, 2, hidden=(8,)), torch.rand(50, 4))
    >>> 0 <= split.information <= split.log_n
    True
    """
    model = _check_model(model)
    X = model.check_data(X, "X")
    n_samples = check_positive_int(n_samples, "n_samples")
    generator = None
    if seed is not None:
        generator = torch.Generator(device=X.device).manual_seed(check_positive_int(seed, "seed", minimum=0))
    mu, logvar = model.encode_params(X)                                          # (N, L)
    eps = torch.randn((n_samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
    z = objectives.reparameterize(mu, logvar, eps)                               # (S, N, L)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    log_q_zx = q.log_prob(z).sum(-1)                                             # (S, N): log q(z_n | x_n)
    n = X.shape[0]
    log_n = math.log(n)
    # log q(z_n) = log (1/N) Σ_m q(z_n | x_m): log-sum-exp over the N rows, one row block at a time
    log_q_z = torch.cat([q.log_prob(zb[:, :, None, :]).sum(-1).logsumexp(-1)
                         for zb in z.split(max(1, 2 ** 22 // max(1, n * n)), dim=0)]) - log_n  # (S, N)
    log_p_z = model.prior.log_prob(z)                                            # (S, N)
    information = float((log_q_zx - log_q_z).mean())
    return RateSplit(information, float((log_q_z - log_p_z).mean()), log_n)


def independent_pixels(X_fit: Any, X: Any) -> float:
    """−E_x log p(x) in nats per row for independent Bernoulli pixels fitted to ``X_fit``: the model with no code.

    p_j = (Σ_n x_nj + ½) / (n + 1) (add-½, so a pixel never seen on gets a finite cost). A VAE whose
    code says nothing (rate R = 0) can at best reach this distortion: the R = 0 end of the
    rate–distortion plane. Both arrays hold values in [0, 1], of shape (n_samples, n_features).

    >>> round(independent_pixels(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([[1.0, 0.0]])), 4)
    0.8755
    """
    from ._validation import check_2d

    X_fit = check_2d(X_fit, "X_fit", dtype=torch.float64)
    X = check_2d(X, "X", n_features=X_fit.shape[1], dtype=torch.float64)
    for name, data in (("X_fit", X_fit), ("X", X)):
        if (data < 0).any() or (data > 1).any():
            raise ValueError(f"`{name}` must hold values in [0, 1] (binarized pixels), got values from "
                             f"{float(data.min()):.4g} to {float(data.max()):.4g}")
    p = (X_fit.sum(0) + 0.5) / (X_fit.shape[0] + 1)
    return float(-(X * p.log() + (1 - X) * (1 - p).log()).sum(1).mean())


__all__ += ["RateSplit", "rate_split", "independent_pixels"]
