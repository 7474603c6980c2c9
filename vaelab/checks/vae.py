"""Checkers for lesson 03's exercises: the reparameterized sample, the Gaussian KL, the IWAE bound."""
from __future__ import annotations

import math

import torch
from torch.distributions import Independent, Normal, kl_divergence

from .. import objectives
from ._core import ExerciseError, as_tensor, call, check_close, checker, require_finite

__all__ = ["reparameterized_sample", "gaussian_kl", "iwae_bound"]


def _call(fn, exercise: str, *args, keep_grad: bool = False, dtype=None):
    out = call(fn, exercise, *args, copy=not keep_grad)
    return as_tensor(out, exercise, "the result", dtype=dtype, keep_grad=keep_grad)


def _reparameterize_reference(mu, logvar):
    return objectives.reparameterize(mu, logvar)


@checker("reparameterize", _reparameterize_reference, function="reparameterize")
def reparameterized_sample(fn):
    """Check ``fn(mu, logvar) -> z``: one sample of N(mu, diag exp(logvar)) that gradients flow through.

    Returns ``fn`` if it passes, else vaelab's ``objectives.reparameterize``.

    >>> reparameterize = reparameterized_sample(objectives.reparameterize)
    Correct: reparameterize passes every check.
    """
    exercise = "reparameterize"
    n = 200_000
    mu = torch.tensor([1.0, -2.0]).repeat(n, 1).requires_grad_()
    logvar = torch.log(torch.tensor([0.25, 4.0])).repeat(n, 1).requires_grad_()
    torch.manual_seed(0)
    z = _call(fn, exercise, mu, logvar, keep_grad=True)
    if z.shape != mu.shape:
        raise ExerciseError(f"{exercise}: z should have the shape of mu, {tuple(mu.shape)}, got {tuple(z.shape)}.")
    require_finite(z.detach(), exercise, "z")
    if not z.requires_grad:
        raise ExerciseError(f"{exercise}: z is not differentiable (it does not depend on mu and logvar through "
                            "autograd). Don't detach, use .item()/numpy, or call .sample(); write z = mu + std * eps "
                            "with eps = torch.randn_like(std).")
    std = z.detach().double().std(0)  # statistics in float64, whatever dtype z came in
    candidates = {
        "you used exp(logvar), the variance, as the standard deviation: std = exp(½ · logvar)": torch.tensor([0.25, 4.0]),
        "you used logvar itself as the standard deviation: std = exp(½ · logvar)": torch.tensor([1.386, 1.386]),
    }
    candidates = {k: v.double() for k, v in candidates.items()}
    if not torch.allclose(std, torch.tensor([0.5, 2.0], dtype=torch.float64), rtol=0.02):
        for mistake, wrong in candidates.items():
            if torch.allclose(std, wrong, rtol=0.02):
                raise ExerciseError(f"{exercise}: the spread of z is wrong: {mistake}.")
        raise ExerciseError(f"{exercise}: z should have standard deviations (0.5, 2.0) here, got "
                            f"({std[0]:.3g}, {std[1]:.3g}); std = exp(½ · logvar).")
    mean = z.detach().double().mean(0)
    if not torch.allclose(mean, torch.tensor([1.0, -2.0], dtype=torch.float64), atol=0.03):
        raise ExerciseError(f"{exercise}: z should have mean mu = (1, -2) here, got ({mean[0]:.3g}, {mean[1]:.3g}).")
    grad_mu, grad_logvar = torch.autograd.grad(z.sum(), (mu, logvar), allow_unused=True)
    if grad_mu is None or grad_logvar is None:
        missing = "mu" if grad_mu is None else "logvar"
        raise ExerciseError(f"{exercise}: z must depend on both mu and logvar through autograd; no gradient reaches "
                            f"{missing} (is it detached?).")
    check_close(grad_mu, torch.ones_like(mu), exercise, "dz/dmu", hint="z = mu + std · eps has dz/dmu = 1.")
    # dz/dlogvar = ½ std · eps = ½ (z − mu): true only of the reparameterized sample
    check_close(grad_logvar, 0.5 * (z - mu).detach(), exercise, "dz/dlogvar", atol=1e-4,
                hint="with z = mu + exp(½ logvar) · eps, dz/dlogvar = ½ (z − mu); draw eps once, independent of mu and logvar.")


def _kl_reference(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    return kl_divergence(q, p)


def _gaussian_kl_reference(mu, logvar):
    return objectives.gaussian_kl(mu, logvar).sum(-1)


@checker("gaussian_kl", _gaussian_kl_reference)
def gaussian_kl(fn):
    """Check ``fn(mu, logvar) -> kl`` of shape (B,): KL(N(mu, diag exp(logvar)) || N(0, I)) per example.

    Returns ``fn`` if it passes, else vaelab's reference.

    >>> gaussian_kl = gaussian_kl(lambda mu, logvar: objectives.gaussian_kl(mu, logvar).sum(-1))
    Correct: gaussian_kl passes every check.
    """
    exercise = "gaussian_kl"
    g = torch.Generator().manual_seed(0)
    B, L = 5, 3  # different sizes, so a sum over the wrong axis shows in the shape
    mu, logvar = torch.randn(B, L, generator=g), torch.randn(B, L, generator=g)
    expected = _kl_reference(mu, logvar)
    kl = _call(fn, exercise, mu, logvar)
    if kl.shape == (B, L):
        raise ExerciseError(f"{exercise}: got one KL per latent dimension, shape {(B, L)}; sum over the latent "
                            "dimensions (the last axis) for one KL per example, shape (B,).")
    if kl.shape == (L,):
        raise ExerciseError(f"{exercise}: summed over the wrong axis: got shape {(L,)} (one per latent dimension); "
                            "sum over the last axis, dim=-1, for one KL per example, shape (B,).")
    if kl.shape == ():
        raise ExerciseError(f"{exercise}: got one number for the whole batch; sum over the latent dimensions only "
                            "(dim=-1), keeping one KL per example, shape (B,).")
    if kl.shape != expected.shape:
        raise ExerciseError(f"{exercise}: the KL should have shape {tuple(expected.shape)}, got {tuple(kl.shape)}.")
    kl = kl.detach().to(expected.dtype)
    if torch.allclose(kl, -expected, rtol=1e-4, atol=1e-5):
        raise ExerciseError(f"{exercise}: sign error: a KL divergence is never negative. "
                            "KL = −½ Σ (1 + logvar − mu² − exp(logvar)).")
    if torch.allclose(kl, 2 * expected, rtol=1e-4, atol=1e-5):
        raise ExerciseError(f"{exercise}: missing the factor ½: KL = ½ Σ (mu² + exp(logvar) − 1 − logvar).")
    check_close(kl, expected, exercise, "the KL", rtol=1e-4, atol=1e-5,
                hint="KL = ½ Σ_j (mu_j² + exp(logvar_j) − 1 − logvar_j); logvar is the log of the variance.")
    zero = _call(fn, exercise, torch.zeros(2, L), torch.zeros(2, L))
    check_close(zero, torch.zeros(2), exercise, "the KL of the prior to itself",
                hint="with mu = 0 and logvar = 0, q is the prior and the KL must be 0.")


def _iwae_bound_reference(log_weights):
    return objectives.iwae(log_weights, dim=0)


@checker("iwae_bound", _iwae_bound_reference)
def iwae_bound(fn):
    """Check ``fn(log_weights) -> bound``: log (1/k) Σ_i exp(log_weights[i]) over the first axis, shape (B,).

    Returns ``fn`` if it passes, else vaelab's ``objectives.iwae``.

    >>> iwae_bound = iwae_bound(objectives.iwae)
    Correct: iwae_bound passes every check.
    """
    exercise = "iwae_bound"
    g = torch.Generator().manual_seed(0)
    k, B = 6, 4
    log_w = 3 * torch.randn(k, B, generator=g) - 20  # (k, B)
    expected = torch.logsumexp(log_w, 0) - math.log(k)
    got = _call(fn, exercise, log_w)
    if got.shape == (k,):
        raise ExerciseError(f"{exercise}: averaged over the wrong axis: got shape {(k,)}; the k samples are "
                            "along the first axis (dim=0), the result has one number per example, shape (B,).")
    if got.shape != expected.shape:
        raise ExerciseError(f"{exercise}: the bound should have shape {tuple(expected.shape)}, got {tuple(got.shape)}.")
    got = got.detach().to(expected.dtype)
    if torch.allclose(got, log_w.mean(0), rtol=1e-5, atol=1e-5):
        raise ExerciseError(f"{exercise}: you averaged the log-weights: that is the ELBO's estimate, not the "
                            "IWAE bound. Average the weights themselves, in log space: logsumexp − log k.")
    if torch.allclose(got, expected + math.log(k), rtol=1e-5, atol=1e-5):
        raise ExerciseError(f"{exercise}: forgot −log k: logsumexp gives log Σ w_i; the bound is log of the "
                            "*mean*, log (1/k) Σ w_i = logsumexp − log k.")
    check_close(got, expected, exercise, "the bound", rtol=1e-5, atol=1e-5,
                hint="ℒ_k = logsumexp(log_weights, dim=0) − log k.")
    # log-weights of real models are in the hundreds of nats: exp() of them is 0 or inf in floating point
    far = torch.tensor([[-1000.0, -800.0], [-1000.0 + math.log(3.0), -800.0]])
    got = _call(fn, exercise, far)
    if not torch.isfinite(got).all():
        raise ExerciseError(f"{exercise}: not finite for log-weights near −1000: exp(−1000) underflows to 0. "
                            "Use torch.logsumexp, which subtracts the maximum first.")
    check_close(got, torch.tensor([-1000.0 + math.log(2.0), -800.0]), exercise, "the bound for log-weights near −1000",
                hint="use torch.logsumexp, which is stable for large negative log-weights.")
    single = _call(fn, exercise, torch.tensor([[-5.0, -7.0]]))
    check_close(single, torch.tensor([-5.0, -7.0]), exercise, "the bound with k = 1",
                hint="with one sample the bound is that sample's log-weight.")
