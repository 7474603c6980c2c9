"""Checkers for lesson 01's exercises: the E-step, the M-step and the log-likelihood of a Gaussian mixture.

Each runs a student's function on small cases with known answers (``vaelab.gmm``'s), and when the
answer is wrong, recomputes the usual mistakes to say which one it is.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .. import gmm
from ._core import ExerciseError, as_tensor, call, check_close, checker

__all__ = ["e_step", "m_step", "log_likelihood"]

F64 = torch.float64


# ---------------------------------------------------------------------------- cases

def _case(seed: int = 0, n_samples: int = 8, far: bool = False):
    """(x, weights, means, covariances) of a 3-component full-covariance mixture in 2-D, float64.

    Weights are unequal so that forgetting them changes the answer; ``far`` puts points ~40 standard
    deviations from every component, where every density underflows to 0 in float64.
    """
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]], dtype=F64)
    A = 0.6 * torch.randn(3, 2, 2, generator=g, dtype=F64)
    covariances = A @ A.mT + 0.4 * torch.eye(2, dtype=F64)  # (K, D, D), well away from singular
    x = 2.0 * torch.randn(n_samples, 2, generator=g, dtype=F64)
    if far:
        x = x + torch.tensor([60.0, -45.0], dtype=F64)
    return x, weights, means, covariances


def _tensor(value, exercise: str, what: str) -> torch.Tensor:
    return as_tensor(value, exercise, what, dtype=F64)


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b.to(a.dtype), rtol=rtol, atol=atol))


def _log_gauss(x, means, covariances):
    """log N(x_n; μ_k, Σ_k) of shape (N, K), from torch.distributions (an independent implementation)."""
    return torch.distributions.MultivariateNormal(means, covariances).log_prob(x.unsqueeze(1))


# ---------------------------------------------------------------------------- E-step

def _e_step_reference(x, weights, means, covariances):
    return gmm.e_step(x, weights, means, covariances)


@checker("e_step", _e_step_reference)
def e_step(fn: Callable) -> Callable:
    """Check ``fn(x, weights, means, covariances) -> resp`` of shape (n_samples, n_components).

    Returns ``fn`` if it passes, else vaelab's reference E-step.

    >>> e_step = e_step(lambda x, w, m, c: gmm.e_step(x, w, m, c))
    Correct: e_step passes every check.
    """
    exercise = "e_step"
    x, weights, means, covariances = _case()
    expected = gmm.e_step(x, weights, means, covariances)
    got = _tensor(call(fn, exercise, x, weights, means, covariances), exercise, "resp")
    if got.shape == expected.T.shape and got.shape != expected.shape:
        raise ExerciseError(f"{exercise}: resp has shape {tuple(got.shape)}, i.e. (n_components, n_samples); "
                            "return one row per point and one column per component, shape (n_samples, n_components).")
    if got.shape != expected.shape:
        raise ExerciseError(f"{exercise}: resp should have shape (n_samples, n_components) = "
                            f"{tuple(expected.shape)}, got {tuple(got.shape)}.")
    if not torch.isfinite(got).all():
        raise ExerciseError(f"{exercise}: resp contains NaN or inf for ordinary points. Check the density and the normalisation.")
    if not _close(got, expected):
        _diagnose_e_step(got, x, weights, means, covariances)
        check_close(got, expected, exercise, "resp")

    # far from every component each density is exp(-1000s) = 0.0 in float64: exp-then-normalise gives 0/0
    x, weights, means, covariances = _case(seed=1, far=True)
    expected = gmm.e_step(x, weights, means, covariances)
    got = _tensor(call(fn, exercise, x, weights, means, covariances), exercise, "resp")
    if not torch.isfinite(got).all():
        raise ExerciseError(
            f"{exercise}: resp is NaN for points far from every component: there each π_k N(x | μ_k, Σ_k) "
            "underflows to 0 and 0/0 = NaN. Work with log-densities: log γ_nk = log π_k + log N(...) "
            "− logsumexp over k, then exponentiate (torch.logsumexp).")
    check_close(got, expected, exercise, "resp for points far from every component",
                hint="Subtract torch.logsumexp(..., dim=1, keepdim=True) in log space before exponentiating.")


def _diagnose_e_step(got, x, weights, means, covariances) -> None:
    exercise = "e_step"
    log_gauss = _log_gauss(x, means, covariances)  # (N, K)
    joint = (log_gauss + torch.log(weights)).exp()  # (N, K)
    log_resp = torch.log_softmax(log_gauss + torch.log(weights), dim=1)
    if not _close(got.sum(1), torch.ones_like(got[:, 0]), atol=1e-6):
        if _close(got, log_resp):
            raise ExerciseError(f"{exercise}: these are the log-responsibilities log γ_nk (every entry ≤ 0, each row's "
                                "logsumexp is 0). Right in log space, one step short: exponentiate them, "
                                "torch.exp(log_resp), so that each row is a probability distribution summing to 1.")
        if _close(got, joint):
            raise ExerciseError(f"{exercise}: these are the unnormalised π_k N(x_n | μ_k, Σ_k). Responsibilities "
                                "are probabilities over components: divide each row by its sum "
                                "Σ_j π_j N(x_n | μ_j, Σ_j) (Bayes' rule), so that every row sums to 1.")
        if _close(got.sum(0), torch.ones_like(got[0])):
            raise ExerciseError(f"{exercise}: each column sums to 1, so you normalised over points. Normalise "
                                "over components instead: every row (one point) must sum to 1 (dim=1).")
        raise ExerciseError(f"{exercise}: the rows of resp must sum to 1 (a distribution over components for "
                            f"each point); their sums range over [{float(got.sum(1).min()):.3g}, {float(got.sum(1).max()):.3g}].")
    uniform = torch.softmax(log_gauss, dim=1)
    if _close(got, uniform):
        raise ExerciseError(f"{exercise}: you forgot the weights: γ_nk ∝ π_k N(x_n | μ_k, Σ_k), not N(x_n | μ_k, Σ_k) alone.")
    swapped = torch.softmax(_log_gauss(x, means, torch.linalg.inv(covariances)) + torch.log(weights), dim=1)
    if _close(got, swapped):
        raise ExerciseError(f"{exercise}: you used the inverse covariance (precision) where the covariance belongs. "
                            "N(x | μ, Σ) has Σ⁻¹ in the exponent and det Σ in the normaliser.")
    no_det = torch.softmax(-0.5 * torch.einsum("nki,kij,nkj->nk", x[:, None] - means, torch.linalg.inv(covariances),
                                               x[:, None] - means) + torch.log(weights), dim=1)
    if _close(got, no_det):
        raise ExerciseError(f"{exercise}: the normaliser of each Gaussian is missing: components have different "
                            "covariances, so −½ log det Σ_k does not cancel between them.")


# ---------------------------------------------------------------------------- M-step

def _m_step_reference(x, resp, reg_covar=1e-6):
    return gmm.m_step(x, resp, reg_covar=reg_covar)


@checker("m_step", _m_step_reference)
def m_step(fn: Callable) -> Callable:
    """Check ``fn(x, resp, reg_covar) -> (weights, means, covariances)`` (full covariances).

    Returns ``fn`` if it passes, else vaelab's reference M-step.

    >>> m_step = m_step(lambda x, resp, reg_covar: gmm.m_step(x, resp, reg_covar=reg_covar))
    Correct: m_step passes every check.
    """
    exercise = "m_step"
    x, weights, means, covariances = _case(n_samples=12)
    resp = gmm.e_step(x, weights, means, covariances)
    reg_covar = 1e-2  # large enough that leaving it out shows
    expected = gmm.m_step(x, resp, reg_covar=reg_covar)
    out = call(fn, exercise, x, resp, reg_covar)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise ExerciseError(f"{exercise} should return three things, (weights, means, covariances); got {type(out).__name__}"
                            + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "") + ".")
    got = [_tensor(t, exercise, name) for t, name in zip(out, ("weights", "means", "covariances"))]
    names = ("weights", "means", "covariances")
    for g, e, name in zip(got, expected, names):
        if g.shape != e.shape:
            raise ExerciseError(f"{exercise}: {name} should have shape {tuple(e.shape)}, got {tuple(g.shape)}.")
        if not torch.isfinite(g).all():
            raise ExerciseError(f"{exercise}: {name} contains NaN or inf.")
    nk = resp.sum(0)  # (K,)
    _check_weights(got[0], expected[0], resp)
    _check_means(got[1], expected[1], x, resp, nk)
    _check_covariances(got[2], expected[2], x, resp, nk, expected[1], reg_covar)

    # a component responsible for no point at all: N_k = 0, and 0/0 must not appear
    resp_empty = resp.clone()
    resp_empty[:, 1] += resp_empty[:, 2]
    resp_empty[:, 2] = 0.0
    try:
        out = call(fn, exercise, x, resp_empty, reg_covar)
    except ExerciseError as error:
        raise ExerciseError(f"{error} This happened when a component has no responsibility at all (N_k = 0, a "
                            "component that lost every point): handle N_k = 0, e.g. N_k = resp.sum(0) + "
                            "10 * torch.finfo(resp.dtype).eps.") from None
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise ExerciseError(f"{exercise} should return three things, (weights, means, covariances); got "
                            f"{type(out).__name__} when a component has no responsibility (N_k = 0).")
    for t, name in zip(out, names):
        if not torch.isfinite(_tensor(t, exercise, name)).all():
            raise ExerciseError(
                f"{exercise}: when a component has no responsibility at all (N_k = 0), {name} becomes NaN (0/0). "
                "Add a tiny number to N_k before dividing, e.g. N_k = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps; "
                "reg_covar then keeps that component's covariance positive definite.")


def _check_weights(got, expected, resp) -> None:
    if _close(got, expected):
        return
    exercise, nk = "m_step", resp.sum(0)
    if _close(got, nk):
        raise ExerciseError(f"{exercise}: weights are N_k = Σ_n γ_nk; divide by the number of points N so they sum to 1.")
    if _close(got, torch.full_like(got, 1.0 / len(got))):
        raise ExerciseError(f"{exercise}: weights should be re-estimated, π_k = N_k / N with N_k = Σ_n γ_nk, not kept uniform.")
    check_close(got, expected, exercise, "weights", hint="π_k = N_k / N with N_k = Σ_n γ_nk.")


def _check_means(got, expected, x, resp, nk) -> None:
    if _close(got, expected):
        return
    exercise = "m_step"
    if _close(got, resp.T @ x):
        raise ExerciseError(f"{exercise}: means are the weighted sums Σ_n γ_nk x_n; divide each by N_k to get an average.")
    if _close(got, resp.T @ x / x.shape[0]):
        raise ExerciseError(f"{exercise}: means divided by N; divide component k's weighted sum by its own N_k = Σ_n γ_nk.")
    hard = torch.nn.functional.one_hot(resp.argmax(1), resp.shape[1]).to(resp.dtype)
    if _close(got, hard.T @ x / hard.sum(0).clamp_min(1)[:, None]):
        raise ExerciseError(f"{exercise}: these are hard (argmax) assignments, as in k-means. EM uses the soft "
                            "responsibilities: μ_k = Σ_n γ_nk x_n / N_k.")
    if _close(got, x.mean(0).expand_as(got)):
        raise ExerciseError(f"{exercise}: every mean is the plain data mean; weight each point by γ_nk: μ_k = Σ_n γ_nk x_n / N_k.")
    check_close(got, expected, exercise, "means", hint="μ_k = Σ_n γ_nk x_n / N_k.")


def _check_covariances(got, expected, x, resp, nk, means, reg_covar) -> None:
    if _close(got, expected):
        return
    exercise = "m_step"
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    diff = x.unsqueeze(0) - means.unsqueeze(1)  # (K, N, D)
    scatter = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff)  # Σ_n γ_nk (x_n − μ_k)(x_n − μ_k)ᵀ
    mistakes = [
        (scatter / nk[:, None, None],
         "you forgot reg_covar: add reg_covar · I to each covariance. It keeps a component that collapses "
         "onto a single point from reaching zero variance, where the likelihood is infinite."),
        (scatter / (nk - 1)[:, None, None] + reg_covar * eye,
         "you divided by N_k − 1 (the unbiased sample covariance). The M-step maximises the likelihood, and "
         "its maximiser divides by N_k."),
        (scatter / nk[:, None, None] + reg_covar,
         "reg_covar was added to every entry; add it to the diagonal only (reg_covar * torch.eye(D))."),
        (scatter / x.shape[0] + reg_covar * eye,
         "you divided by N; divide component k's weighted scatter by its own N_k = Σ_n γ_nk."),
        (scatter + reg_covar * eye,
         "you forgot to divide the weighted scatter by N_k."),
        (torch.einsum("kni,knj->kij", diff, diff) / nk[:, None, None] + reg_covar * eye,
         "each outer product must be weighted by its responsibility γ_nk."),
    ]
    # torch.cov(x.T, aweights=γ_k) centres on the weighted mean but, by default (correction=1), divides by the
    # "unbiased" N_k − Σγ²/N_k
    w2 = (resp**2).sum(0)
    unbiased = scatter / (nk - w2 / nk)[:, None, None]
    for wrong, extra in ((unbiased + reg_covar * eye, ""), (unbiased, " and add reg_covar · I")):
        mistakes.append((wrong, "torch.cov(x.T, aweights=resp[:, k]) uses correction=1 by default, dividing by the "
                                f"unbiased N_k − Σ_n γ_nk² / N_k; the M-step's maximiser divides by N_k: pass "
                                f"correction=0{extra}."))
    centred = x - x.mean(0)
    mistakes.append((torch.einsum("kn,ni,nj->kij", resp.T, centred, centred) / nk[:, None, None] + reg_covar * eye,
                     "you centred on the overall data mean; centre component k on its own new mean μ_k."))
    for wrong, message in mistakes:
        if _close(got, wrong):
            raise ExerciseError(f"{exercise}: covariances: {message}")
    check_close(got, expected, exercise, "covariances",
                hint="Σ_k = Σ_n γ_nk (x_n − μ_k)(x_n − μ_k)ᵀ / N_k + reg_covar · I, with the new μ_k.")


# ---------------------------------------------------------------------------- log-likelihood

def _log_likelihood_reference(x, weights, means, covariances):
    return gmm.log_likelihood(x, weights, means, covariances)


@checker("log_likelihood", _log_likelihood_reference)
def log_likelihood(fn: Callable) -> Callable:
    """Check ``fn(x, weights, means, covariances) -> log p(x_n)`` of shape (n_samples,).

    Returns ``fn`` if it passes, else vaelab's reference.

    >>> log_likelihood = log_likelihood(lambda x, w, m, c: gmm.log_likelihood(x, w, m, c))
    Correct: log_likelihood passes every check.
    """
    exercise = "log_likelihood"
    x, weights, means, covariances = _case(seed=2)
    expected = gmm.log_likelihood(x, weights, means, covariances)
    got = _tensor(call(fn, exercise, x, weights, means, covariances), exercise, "log p(x)")
    if got.ndim == 0:
        which = "sum" if _close(got, expected.sum()) else "mean" if _close(got, expected.mean()) else "a single number"
        raise ExerciseError(f"{exercise}: returned {which} over the points; return one log p(x_n) per row, "
                            f"shape (n_samples,) = {tuple(expected.shape)} (take .sum() or .mean() afterwards).")
    if got.shape != expected.shape:
        raise ExerciseError(f"{exercise}: should have shape (n_samples,) = {tuple(expected.shape)}, got {tuple(got.shape)}.")
    if not _close(got, expected, rtol=1e-6, atol=1e-8):
        _diagnose_log_likelihood(got, x, weights, means, covariances)
        check_close(got, expected, exercise, "log p(x)", hint="log p(x_n) = logsumexp_k [log π_k + log N(x_n | μ_k, Σ_k)].")

    x, weights, means, covariances = _case(seed=3, far=True)
    expected = gmm.log_likelihood(x, weights, means, covariances)
    got = _tensor(call(fn, exercise, x, weights, means, covariances), exercise, "log p(x)")
    if not torch.isfinite(got).all():
        raise ExerciseError(
            f"{exercise}: −inf (or NaN) for points far from every component: each π_k N(x | μ_k, Σ_k) underflows "
            "to 0, and log 0 = −inf. Never leave log space: torch.logsumexp(log π_k + log N(x | μ_k, Σ_k), dim=1).")
    check_close(got, expected, exercise, "log p(x) for points far from every component", rtol=1e-6, atol=1e-6)


def _diagnose_log_likelihood(got, x, weights, means, covariances) -> None:
    exercise = "log_likelihood"
    log_gauss = _log_gauss(x, means, covariances)  # (N, K)
    log_joint = log_gauss + torch.log(weights)
    D = x.shape[1]
    mistakes = [
        (log_joint.exp().sum(1), "you returned p(x_n), not log p(x_n): take the log (in log space, with logsumexp)."),
        (torch.logsumexp(log_gauss, 1), "you forgot the weights: p(x) = Σ_k π_k N(x | μ_k, Σ_k)."),
        (torch.logsumexp(log_gauss, 1) - math.log(len(weights)),
         "you used equal weights 1/K; use the mixture's weights π_k."),
        ((weights * log_gauss).sum(1),
         "you computed Σ_k π_k log N(x | μ_k, Σ_k). The log of a sum is not the sum of logs: that is only a "
         "lower bound (Jensen). Use logsumexp_k [log π_k + log N(x | μ_k, Σ_k)]."),
        (log_gauss.sum(1) + torch.log(weights).sum(),
         "you summed log π_k + log N over components; p(x) sums the probabilities, so use logsumexp over k."),
        (log_joint.max(1).values, "you kept only the most likely component (max); logsumexp adds them all."),
        (torch.logsumexp(log_joint + 0.5 * D * math.log(2 * math.pi), 1),
         "the −(D/2) log 2π normalising constant of the Gaussian is missing."),
        (torch.logsumexp(log_joint - 0.5 * torch.logdet(covariances), 1),
         "log det Σ_k is not halved: log N has −½ log det Σ_k (i.e. det(2πΣ)^(−1/2))."),
        (torch.logsumexp(log_joint + 0.5 * torch.logdet(covariances), 1),
         "the −½ log det Σ_k term of the Gaussian's normaliser is missing."),
    ]
    for wrong, message in mistakes:
        if _close(got, wrong, rtol=1e-6, atol=1e-8):
            raise ExerciseError(f"{exercise}: {message}")
