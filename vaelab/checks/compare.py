"""Checkers for lesson 06's exercises: the dequantization correction, a Gaussian mixture's parameter
count, and the rate of a finite mixture in bits."""
from __future__ import annotations

import math
import numbers

import torch

from .. import compare as _compare
from ._core import ExerciseError, as_count, as_tensor, call, check_close, checker

__all__ = ["dequantized_log_pmf", "gmm_n_parameters", "mixture_rate_bits"]


def _as_tensor(out, exercise: str) -> torch.Tensor:
    if isinstance(out, bool):
        raise ExerciseError(f"{exercise}: return a number or a torch.Tensor, got the bool {out}.")
    return as_tensor(out, exercise, "the result", dtype=torch.float64)


def _mixture_rate_bits_reference(resp, weights):
    return _compare.mixture_rate(resp, weights) / math.log(2)


def _match(got: torch.Tensor, candidates: dict[str, torch.Tensor], exercise: str) -> None:
    """Raise naming the first typical mistake whose answer ``got`` reproduces."""
    for mistake, wrong in candidates.items():
        if got.shape == wrong.shape and torch.allclose(got, wrong, rtol=1e-6, atol=1e-6):
            raise ExerciseError(f"{exercise}: {mistake}")


@checker("dequantized_log_pmf", _compare.dequantized_log_pmf)
def dequantized_log_pmf(fn):
    """Check ``fn(log_density, n_features, n_levels) -> log_pmf``: log P(v) ≥ log p(x) − D log L per example.

    Returns ``fn`` if it passes, else ``vaelab.compare.dequantized_log_pmf``.

    >>> dequantized_log_pmf = dequantized_log_pmf(_compare.dequantized_log_pmf)
    Correct: dequantized_log_pmf passes every check.
    """
    exercise = "dequantized_log_pmf"
    g = torch.Generator().manual_seed(0)
    for n_features, n_levels in ((64, 17), (3, 5)):
        log_density = 50 * torch.randn(4, generator=g, dtype=torch.float64)
        expected = log_density - n_features * math.log(n_levels)
        got = _as_tensor(call(fn, exercise, log_density, n_features, n_levels), exercise)
        _match(got, {
            "you added D·log L. Each bin is 1/L wide, so P(v) ≈ p(x) · (1/L)^D: subtract D·log L.":
                log_density + n_features * math.log(n_levels),
            "you used L − 1 levels: x = (v + u) / L puts each level in a bin of width 1/L, not 1/(L − 1); "
            "subtract D·log L.": log_density - n_features * math.log(n_levels - 1),
            "you subtracted log L once; every one of the D pixels has its own bin of width 1/L: D·log L.":
                log_density - math.log(n_levels),
            "you used log base 2; stay in nats (natural logs) like log_density: D·log L with math.log.":
                log_density - n_features * math.log2(n_levels),
            "the result is in bits (log base 2); the exercise asks for nats, like log_density: "
            "log_density − D·log L with natural logs, no division by log 2.":
                (log_density - n_features * math.log(n_levels)) / math.log(2),
            "you converted the log density to bits (divided it by log 2); keep it in nats and subtract D·log L "
            "with natural logs.": log_density / math.log(2) - n_features * math.log(n_levels),
        }, exercise)
        check_close(got, expected, exercise, f"log P(v) for D = {n_features}, L = {n_levels}",
                    hint="log P(v) ≈ log_density − n_features · log(n_levels).", rtol=1e-6, atol=1e-6)


def _reference_count(k: int, d: int, covariance_type: str) -> int:
    covariances = k * d * (d + 1) // 2 if covariance_type == "full" else k * d
    return (k - 1) + k * d + covariances


@checker("gmm_n_parameters", _compare.gmm_n_parameters)
def gmm_n_parameters(fn):
    """Check ``fn(n_components, n_features, covariance_type) -> int`` for "full" and "diag" covariances.

    Returns ``fn`` if it passes, else ``vaelab.compare.gmm_n_parameters``.

    >>> gmm_n_parameters = gmm_n_parameters(_compare.gmm_n_parameters)
    Correct: gmm_n_parameters passes every check.
    """
    exercise = "gmm_n_parameters"
    for k, d, cov in ((3, 2, "full"), (5, 3, "diag"), (10, 64, "full"), (10, 64, "diag"), (1, 64, "full")):
        out = call(fn, exercise, k, d, cov)
        got, expected = as_count(out, exercise, "the number of parameters"), _reference_count(k, d, cov)
        if got == expected:
            continue
        case = f"(K = {k}, D = {d}, {cov!r})"
        full = cov == "full"
        mistakes = {
            expected + 1: "you counted K weights; they sum to 1, so only K − 1 are free.",
            expected - k * d: "you are K·D short: you left out the means (D numbers per component) or the "
                              "variances on each covariance's diagonal (a symmetric D × D matrix has D(D + 1)/2 "
                              "free numbers, the diagonal included).",
        }
        if full:
            mistakes.update({
                (k - 1) + k * d + k * d * d: "you counted D² numbers per covariance; it is symmetric, so only "
                                             "D(D + 1)/2 are free.",
                k + k * d + k * d * d: "you counted D² numbers per covariance (it is symmetric: D(D + 1)/2) "
                                       "and K weights (they sum to 1: K − 1).",
            })
        else:
            mistakes.update({
                (k - 1) + k * d + k * d * (d + 1) // 2: "with covariance_type='diag' each covariance is a "
                                                        "diagonal: D variances, not D(D + 1)/2.",
                k + 2 * k * d: "you counted K weights; they sum to 1, so only K − 1 are free.",
            })
        if got in mistakes:
            raise ExerciseError(f"{exercise} {case}: {mistakes[got]}")
        raise ExerciseError(f"{exercise} {case}: expected {expected} parameters, got {got}; count K − 1 weights, "
                            "K·D means and the covariances (K·D(D + 1)/2 full, K·D diag).")


def _rate_bits(resp: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    kl = (torch.xlogy(resp, resp) - torch.xlogy(resp, weights)).sum(1)
    return kl.mean() / math.log(2)


@checker("mixture_rate_bits", _mixture_rate_bits_reference)
def mixture_rate_bits(fn):
    """Check ``fn(resp, weights) -> bits``: mean_n KL(p(k | x_n) || π) in bits.

    Returns ``fn`` if it passes, else vaelab's reference (``compare.mixture_rate`` / log 2).

    >>> mixture_rate_bits = mixture_rate_bits(_mixture_rate_bits_reference)
    Correct: mixture_rate_bits passes every check.
    """
    exercise = "mixture_rate_bits"
    g = torch.Generator().manual_seed(0)
    resp = torch.softmax(3 * torch.randn(6, 4, generator=g, dtype=torch.float64), dim=1)  # no zeros: every formula is finite
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    expected = _rate_bits(resp, weights)
    got = _as_tensor(call(fn, exercise, resp, weights), exercise)
    if got.numel() != 1:
        raise ExerciseError(f"{exercise}: return one number, the average over examples; got shape "
                            f"{tuple(got.shape)}. Sum over components, then take the mean over examples.")
    got = got.reshape(())
    ln2 = math.log(2)
    per_example = (resp * (resp / weights).log()).sum(1)
    _match(got, {
        "that is the rate in nats; divide by log 2 for bits.": expected * ln2,
        "you summed over examples; the rate is the average per example (mean over n).": expected * len(resp),
        "the KL is the wrong way round: it is KL(p(k|x) || π) = Σ_k γ_k log(γ_k / π_k), not Σ_k π_k log(π_k / γ_k).":
            (weights * (weights / resp).log()).sum(1).mean() / ln2,
        "you computed the entropy of the responsibilities; the rate compares them to the weights: "
        "Σ_k γ_k log(γ_k / π_k).": -(resp * resp.log()).sum(1).mean() / ln2,
        "you used log base 10; use natural logs, then divide by log 2 (or use log2 throughout).":
            per_example.mean() / math.log(10),
    }, exercise)
    check_close(got, expected, exercise, "the rate in bits", rtol=1e-6, atol=1e-9,
                hint="rate = mean over n of Σ_k γ_nk log2(γ_nk / π_k).")
    # hard assignments: a responsibility of exactly 0 must contribute 0, not 0 · log 0 = NaN
    hard = torch.eye(4, dtype=torch.float64)
    got = _as_tensor(call(fn, exercise, hard, weights), exercise).reshape(())
    if torch.isnan(got):
        raise ExerciseError(f"{exercise}: got NaN when a responsibility is exactly 0: 0 · log 0 must count as 0 "
                            "(use torch.xlogy(resp, resp / weights), or clamp resp before the log).")
    check_close(got, _rate_bits(hard, weights), exercise, "the rate of hard assignments",
                rtol=1e-6, atol=1e-9, hint="0 · log 0 counts as 0.")
