"""Checkers for lesson 02 (continuous mixtures): the Monte Carlo log p(x) and the pPCA covariance."""
from __future__ import annotations

import math

import torch

from ._core import ExerciseError, as_tensor, call, check_close, checker
from ..continuous import LinearDecoder, isotropic_log_prob, log_mean_exp
from ..continuous import ppca_covariance as _ppca_covariance

__all__ = ["mc_log_prob", "ppca_covariance", "ppca_posterior"]

_F64 = torch.float64


def _call(fn, exercise: str, *args) -> torch.Tensor:
    return as_tensor(call(fn, exercise, *args), exercise, "the result", dtype=_F64)


def _near(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and bool(torch.isfinite(a).all()) and torch.allclose(a.to(b.dtype), b, rtol=1e-5, atol=atol)


def _mc_case(far: bool):
    g = torch.Generator().manual_seed(2 if far else 1)
    decoder = LinearDecoder(torch.randn(3, 2, generator=g, dtype=_F64), torch.randn(3, generator=g, dtype=_F64))
    decoder.requires_grad_(False)
    x = torch.randn(5, 3, generator=g, dtype=_F64)
    if far:
        x = x + 60.0  # every log-likelihood near -5000: exp() of it is 0 in any floating type
    z = torch.randn(40, 2, generator=g, dtype=_F64)
    return x, z, decoder, 0.7


def _mc_log_prob_reference(x, z, decoder, obs_scale):
    return log_mean_exp(isotropic_log_prob(x, decoder(z), obs_scale), dim=1)


@checker("mc_log_prob", _mc_log_prob_reference)
def mc_log_prob(fn):
    """Check ``fn(x, z, decoder, obs_scale)``: log (1/S) Σ_s N(x; decoder(z_s), σ²I) for each row of x.

    x of shape (B, D), z of shape (S, L) drawn from the prior; returns shape (B,). Returns ``fn`` if
    it passes, else vaelab's reference.

    >>> mc_log_prob = mc_log_prob(_mc_log_prob_reference)
    Correct: mc_log_prob passes every check.
    """
    exercise = "mc_log_prob"
    for far in (False, True):
        x, z, decoder, obs_scale = _mc_case(far)
        got = _call(fn, exercise, x.clone(), z.clone(), decoder, obs_scale)
        log_lik = isotropic_log_prob(x, decoder(z), obs_scale)  # (B, S)
        expected = log_mean_exp(log_lik, dim=1)
        B, D, S = x.shape[0], x.shape[1], z.shape[0]
        if got.shape == (B, D):
            raise ExerciseError(f"{exercise}: got shape {(B, D)}, one number per row of x *and coordinate*: log N(x; f(z), "
                                f"σ²I) of a D-dimensional x is the sum of the D one-dimensional log-densities. Sum over "
                                f"the last axis (.sum(-1)) to get log_lik of shape (B, S) = {(B, S)}, then log-mean-exp "
                                f"over the samples (dim=1).")
        if got.shape != expected.shape:
            raise ExerciseError(f"{exercise}: should return one number per row of x, shape {tuple(expected.shape)}, "
                                f"got {tuple(got.shape)}. Reduce over the samples z (dim=1), not over x.")
        if _near(got, expected):
            continue
        if far and not bool(torch.isfinite(got).all()):
            raise ExerciseError(f"{exercise}: for x far from every f(z) the log-likelihoods are about "
                                f"{float(log_lik.mean()):.0f}, exp() of that underflows to 0 and the log gives "
                                f"{float(got[~torch.isfinite(got)][0])}. Never exponentiate: use "
                                f"torch.logsumexp(log_lik, dim=1) - math.log(S) (log-sum-exp).")
        S, D = z.shape[0], x.shape[1]
        if _near(got, log_lik.mean(1)):
            raise ExerciseError(f"{exercise}: you averaged the log-likelihoods (mean of the logs). The estimator "
                                f"is the log of the mean of the likelihoods, log (1/S) Σ exp(log_lik); by Jensen the "
                                f"mean of the logs is lower (here by {float((expected - got).mean()):.2f} nats).")
        if _near(got, expected + math.log(S)):
            raise ExerciseError(f"{exercise}: off by exactly log S = log {S}: you summed the likelihoods but forgot "
                                f"to divide by the number of samples, the − log S of the mean.")
        if _near(got, expected + 0.5 * D * math.log(2 * math.pi * obs_scale**2)):
            raise ExerciseError(f"{exercise}: the Gaussian's normalising constant −(D/2) log(2πσ²) is missing "
                                f"from log N(x; f(z), σ²I).")
        if _near(got, log_mean_exp(isotropic_log_prob(x, decoder(z), math.sqrt(obs_scale)), dim=1)):
            raise ExerciseError(f"{exercise}: obs_scale is the standard deviation σ; the variance is σ² "
                                f"(you used σ as the variance).")
        check_close(got, expected, exercise, "log p̂(x)", rtol=1e-5, atol=1e-5,
                    hint="Compute log N(x_b; f(z_s), σ²I) for every pair (shape (B, S)), then log-mean-exp over s.")


@checker("ppca_covariance", _ppca_covariance)
def ppca_covariance(fn):
    """Check ``fn(W, obs_scale)``: the covariance of x = W z + b + σ ε, that is W Wᵀ + σ² I.

    Returns ``fn`` if it passes, else vaelab's ``continuous.ppca_covariance``.

    >>> ppca_covariance = ppca_covariance(_ppca_covariance)
    Correct: ppca_covariance passes every check.
    """
    exercise = "ppca_covariance"
    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(4, 2, generator=g, dtype=_F64), 0.5),   # D > L: the usual case
             (torch.randn(3, 3, generator=g, dtype=_F64), 0.3)]   # square: W Wᵀ ≠ Wᵀ W still
    for W, obs_scale in cases:
        D, L = W.shape
        try:
            got = _call(fn, exercise, W.clone(), obs_scale)
        except ExerciseError as error:
            if D != L and "RuntimeError" in str(error) and "size of tensor" in str(error):
                raise ExerciseError(f"{exercise}: with W of shape ({D}, {L}) your function raised a shape error: W Wᵀ is "
                                    f"({D}, {D}), so the noise term must be too: σ² torch.eye(D) with D = W.shape[0] "
                                    f"= {D}, not torch.eye(L) (x lives in D dimensions, z in L). ({error})") from None
            raise
        expected = _ppca_covariance(W, obs_scale)
        if _near(got, expected, atol=1e-8):
            continue
        eye_L = torch.eye(L, dtype=_F64)
        if (got.shape == (L, L) and L != D) or _near(got, W.T @ W + obs_scale**2 * eye_L) or _near(got, W.T @ W):
            raise ExerciseError(f"{exercise}: you computed WᵀW (shape ({L}, {L})); x = W z + b + σε lives in "
                                f"D = {D} dimensions and Cov[W z] = W Cov[z] Wᵀ = W Wᵀ, of shape ({D}, {D}).")
        if _near(got, W @ W.T):
            raise ExerciseError(f"{exercise}: the noise σ²I is missing: W Wᵀ alone has rank {L} < {D} when L < D "
                                f"(a singular covariance, a density concentrated on a plane).")
        if _near(got, W @ W.T + obs_scale * torch.eye(D, dtype=_F64)):
            raise ExerciseError(f"{exercise}: you added σI; obs_scale is the standard deviation σ, so the noise "
                                f"covariance is σ²I.")
        check_close(got, expected, exercise, "the covariance", rtol=1e-6, atol=1e-8,
                    hint="C = W @ W.T + obs_scale**2 * torch.eye(D).")


def _ppca_posterior_reference(x, W, b, obs_scale):
    from ..continuous import ppca_posterior
    return ppca_posterior(x, W, b, obs_scale)


@checker("ppca_posterior", _ppca_posterior_reference)
def ppca_posterior(fn):
    """Check ``fn(x, W, b, obs_scale)``: the exact posterior of pPCA, p(z | x) = N(M⁻¹Wᵀ(x − b), σ²M⁻¹).

    M = WᵀW + σ²I (of shape (L, L)); returns (means of shape (B, L), covariance of shape (L, L)).
    Returns ``fn`` if it passes, else vaelab's ``continuous.ppca_posterior``.

    >>> ppca_posterior = ppca_posterior(_ppca_posterior_reference)
    Correct: ppca_posterior passes every check.
    """
    from ..continuous import ppca_posterior as reference
    exercise = "ppca_posterior"
    g = torch.Generator().manual_seed(3)
    # D > L with σ not 1 (so σ² and σ differ) and b not 0 (so forgetting it shows)
    W, b, obs_scale = torch.randn(4, 2, generator=g, dtype=_F64), torch.randn(4, generator=g, dtype=_F64), 0.6
    x = torch.randn(5, 4, generator=g, dtype=_F64)
    out = call(fn, exercise, x.clone(), W.clone(), b.clone(), obs_scale)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ExerciseError(f"{exercise}: return two things, (mean, cov): the posterior means of shape (5, 2) and the "
                            f"shared posterior covariance of shape (2, 2); got {type(out).__name__}.")
    mean = as_tensor(out[0], exercise, "the posterior mean", dtype=_F64)
    cov = as_tensor(out[1], exercise, "the posterior covariance", dtype=_F64)
    expected_mean, expected_cov = reference(x, W, b, obs_scale)
    eye = torch.eye(2, dtype=_F64)
    M = W.T @ W + obs_scale**2 * eye
    if cov.shape == (4, 4):
        raise ExerciseError(f"{exercise}: the covariance should be over z, shape (L, L) = (2, 2), got (4, 4): that is "
                            f"a covariance over x. M = WᵀW + σ²I is (L, L).")
    if mean.shape == (5, 4):
        raise ExerciseError(f"{exercise}: the mean should be over z, shape (B, L) = (5, 2), got (5, 4): multiply the "
                            f"residual x − b by Wᵀ (and M⁻¹) to land in latent space.")
    if not _near(cov, expected_cov, atol=1e-8):
        if _near(cov, torch.linalg.inv(M), atol=1e-8):
            raise ExerciseError(f"{exercise}: the covariance is σ² M⁻¹, you returned M⁻¹ (the σ² factor is missing).")
        if _near(cov, torch.linalg.inv(W.T @ W + eye), atol=1e-8) or _near(cov, obs_scale**2 * torch.linalg.inv(W.T @ W + obs_scale * eye), atol=1e-8):
            raise ExerciseError(f"{exercise}: M = WᵀW + σ²I: check the σ² (obs_scale is the standard deviation σ).")
        if _near(cov, obs_scale**2 * M, atol=1e-8) or _near(cov, M, atol=1e-8):
            raise ExerciseError(f"{exercise}: you returned (a multiple of) M itself; the posterior covariance is its "
                                f"inverse, σ² M⁻¹ (the precision of z given x is M/σ²).")
        check_close(cov, expected_cov, exercise, "the posterior covariance", rtol=1e-6, atol=1e-8,
                    hint="Precision of z given x: WᵀW/σ² + I = M/σ², so the covariance is σ² M⁻¹.")
    if not _near(mean, expected_mean, atol=1e-8):
        if _near(mean, reference(x, W, torch.zeros_like(b), obs_scale)[0], atol=1e-8):
            raise ExerciseError(f"{exercise}: the mean ignores b: it is M⁻¹Wᵀ(x − b), the residual after the offset.")
        if _near(mean, (x - b) @ W, atol=1e-8) or _near(mean, (x - b) @ W / obs_scale**2, atol=1e-8):
            raise ExerciseError(f"{exercise}: the mean is M⁻¹Wᵀ(x − b): you have Wᵀ(x − b) without the M⁻¹ "
                                f"(the prior pulls the mean towards 0).")
        if _near(mean, (x - b) @ W @ cov, atol=1e-8):
            raise ExerciseError(f"{exercise}: mean = cov · Wᵀ(x − b)/σ² = M⁻¹Wᵀ(x − b): the 1/σ² is missing.")
        check_close(mean, expected_mean, exercise, "the posterior mean", rtol=1e-6, atol=1e-8,
                    hint="Complete the square: mean = M⁻¹ Wᵀ (x − b), one row per point.")
