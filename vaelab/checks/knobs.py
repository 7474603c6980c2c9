"""Checkers for lesson 04's exercises: KL per latent dimension, active units, the free-bits KL.

Each runs the student's function on cases with known answers; a wrong answer raises
``ExerciseError`` naming the likely mistake, a right one prints "Correct: ... passes every check."
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .. import objectives
from ..diagnostics import activity
from ._core import ExerciseError, as_count, as_tensor, call, check_close, checker

__all__ = ["active_units", "free_bits_kl", "kl_per_dimension"]


def _matches(got: torch.Tensor, candidate: torch.Tensor) -> bool:
    return got.shape == candidate.shape and torch.allclose(got.double(), candidate.double(), rtol=1e-5, atol=1e-6)


def _diagnose(exercise: str, got: torch.Tensor, mistakes: list[tuple[str, torch.Tensor]]) -> None:
    for message, candidate in mistakes:
        if _matches(got, candidate):
            raise ExerciseError(f"{exercise}: {message}")


def _as_tensor(value, exercise: str, what: str) -> torch.Tensor:
    return as_tensor(value, exercise, what, dtype=torch.float64)


def _kl_per_dimension_reference(mu, logvar):
    return objectives.gaussian_kl(mu, logvar).mean(0)


def _active_units_reference(mu, threshold=0.01):
    return int((activity(mu) > threshold).sum())


def _free_bits_kl_reference(kl, free_bits):
    return objectives.free_bits_kl(kl, free_bits)


@checker("kl_per_dimension", _kl_per_dimension_reference)
def kl_per_dimension(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable:
    """Check ``fn(mu, logvar) -> KL_j`` of shape (latent_dim,): E_x KL(N(mu_j, e^logvar_j) || N(0, 1)).

    mu, logvar have shape (n_samples, latent_dim); KL_j = mean over rows of ½(mu² + e^logvar − 1 − logvar).
    Returns ``fn`` if it passes, else vaelab's reference.

    >>> kl_per_dimension = kl_per_dimension(_kl_per_dimension_reference)
    Correct: kl_per_dimension passes every check.
    """
    exercise = "kl_per_dimension"
    g = torch.Generator().manual_seed(4)
    mu = torch.randn(6, 3, generator=g, dtype=torch.float64)
    logvar = 0.8 * torch.randn(6, 3, generator=g, dtype=torch.float64)
    mu_in, logvar_in = mu.clone(), logvar.clone()
    got = _as_tensor(call(fn, exercise, mu_in, logvar_in, copy=False), exercise, "the KL per dimension")
    if not (torch.equal(mu_in, mu) and torch.equal(logvar_in, logvar)):
        raise ExerciseError(f"{exercise}: changed mu or logvar in place; compute new tensors instead.")
    per_example = objectives.gaussian_kl(mu, logvar)  # (B, L)
    expected = per_example.mean(0)
    _diagnose(exercise, got, [
        ("returned the total KL (summed over latent dimensions); return one number per dimension, "
         "of shape (latent_dim,).", per_example.sum(1).mean()),
        ("returned the KL per example, of shape (n_samples, latent_dim); average over the data (dim 0).",
         per_example),
        ("averaged over the latent dimensions (dim 1) instead of over the data (dim 0).", per_example.mean(1)),
        ("summed over the data instead of averaging: divide by the number of rows.", per_example.sum(0)),
        ("is twice too large: the Gaussian KL has a factor ½ in front.", 2 * expected),
        ("treats logvar as log σ; it is log σ², so σ² = exp(logvar), not exp(2·logvar).",
         (0.5 * (mu.pow(2) + (2 * logvar).exp() - 1 - 2 * logvar)).mean(0)),
        ("has the sign flipped: KL(q || p) is never negative.", -expected),
        ("forgot the mu² term: moving the mean away from 0 also costs nats.",
         (0.5 * (logvar.exp() - 1 - logvar)).mean(0)),
    ])
    check_close(got, expected, exercise, "the KL per dimension",
                hint="Use KL_j = ½(mu_j² + exp(logvar_j) − 1 − logvar_j), averaged over the rows.")
    if (got < 0).any():
        raise ExerciseError(f"{exercise}: returned a negative KL.")
    zero = call(fn, exercise, torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64))
    check_close(_as_tensor(zero, exercise, "the KL"), torch.zeros(2, dtype=torch.float64), exercise,
                "the KL of q = N(0, 1), which is the prior itself,", hint="It must be exactly 0.")


@checker("active_units", _active_units_reference)
def active_units(fn: Callable[..., int]) -> Callable:
    """Check ``fn(mu, threshold=0.01) -> int``: how many columns of mu have Var over rows > threshold.

    mu has shape (n_samples, latent_dim), the posterior means E_q[z|x_n] (Burda et al., 2016).
    Returns ``fn`` if it passes, else vaelab's reference.

    >>> active_units = active_units(_active_units_reference)
    Correct: active_units passes every check.
    """
    exercise = "active_units"
    g = torch.Generator().manual_seed(5)
    base = torch.randn(400, 1, generator=g, dtype=torch.float64)
    base = (base - base.mean()) / base.std(correction=0)  # unit variance exactly
    # columns: active (var 1); offset but constant (mean 3, var 0); barely moving (var 0.0009,
    # std 0.03 > 0.01); active (var 0.25); two dead (var 0). Each mistake below gives its own count.
    mu = torch.cat([base, torch.full_like(base, 3.0), 0.03 * base, 0.5 * base.flip(0), torch.zeros_like(base),
                    torch.zeros_like(base)], 1)
    expected = int((activity(mu) > 0.01).sum())  # 2

    def run(x: torch.Tensor, threshold: float) -> int:
        got = call(fn, exercise, x, threshold=threshold)
        if hasattr(got, "shape") and not isinstance(got, str) and math.prod(got.shape) != 1:
            raise ExerciseError(f"{exercise}: returned a tensor of shape {tuple(got.shape)}; return the number "
                                "of active units (one integer), e.g. int((variances > threshold).sum()).")
        return as_count(got, exercise, "the number of active units (an integer count)")

    got = run(mu, 0.01)
    thr = 0.01
    mistakes = {
        int((mu.var(1, correction=0) > thr).sum()): "took the variance over the latent dimensions (dim 1); "
        "activity is the variance over the data (dim 0), one number per dimension.",
        int((mu.mean(0).abs() > thr).sum()): "thresholded the mean of mu; a unit is active when its mean "
        "*varies* with x: use the variance over the data.",
        int((mu.std(0) > thr).sum()): "thresholded the standard deviation; the criterion is on the variance "
        "Var_x(E_q[z_j|x]) > threshold.",
    }
    mistakes.pop(expected, None)
    if got != expected and got in mistakes:
        raise ExerciseError(f"{exercise}: {mistakes[got]}")
    if got != expected:
        raise ExerciseError(f"{exercise}: found {got} active units where there are {expected}. "
                            "Active means Var over the rows of mu (dim 0) > threshold.")
    if run(mu, 0.5) != 1 or run(mu, 1e-4) != 3:
        raise ExerciseError(f"{exercise}: ignores the `threshold` argument (try threshold=0.5: one unit is active).")


@checker("free_bits_kl", _free_bits_kl_reference)
def free_bits_kl(fn: Callable[[torch.Tensor, float], torch.Tensor]) -> Callable:
    """Check ``fn(kl, free_bits) -> 0-d tensor``: Σ_j max(λ, mean_b kl_bj) (Kingma et al., 2016).

    kl has shape (batch, latent_dim): the KL of each example in each latent dimension.
    Returns ``fn`` if it passes, else vaelab's ``objectives.free_bits_kl``.

    >>> free_bits_kl = free_bits_kl(_free_bits_kl_reference)
    Correct: free_bits_kl passes every check.
    """
    exercise = "free_bits_kl"
    kl = torch.tensor([[0.05, 0.9, 1.6, 0.3], [0.15, 0.7, 2.4, 0.1], [0.10, 0.2, 2.0, 0.5]],
                      dtype=torch.float64, requires_grad=True)
    lam = 0.4
    got = call(fn, exercise, kl, lam, copy=False)
    if not isinstance(got, torch.Tensor):
        raise ExerciseError(f"{exercise}: should return a torch tensor (so the loss can be differentiated), "
                            f"got {type(got).__name__}.")
    k = kl.detach()
    expected = objectives.free_bits_kl(k, lam)
    # a second batch whose total KL (0.06) is itself below λ tells "floor on the total" from "no floor"
    small = torch.full((2, 6), 0.01, dtype=torch.float64)
    got_small = call(fn, exercise, small, lam)
    mistakes = [
        ("floored each example's KL; free bits floor the *batch average* of each dimension: "
         "average over the batch first, then take max(λ, ·).", lambda t: t.clamp(min=lam).mean(0).sum()),
        ("floored the total KL; the floor is per latent dimension: Σ_j max(λ, mean_b KL_bj).",
         lambda t: t.mean(0).sum().clamp(min=lam)),
        ("capped the KL at λ (min instead of max): dimensions below λ should be raised *to* λ.",
         lambda t: t.mean(0).clamp(max=lam).sum()),
        ("ignores free_bits: the dimensions below λ must count as λ.", lambda t: t.mean(0).sum()),
        ("summed over the batch; average over it (the loss is a mean over examples).",
         lambda t: t.sum(0).clamp(min=lam).sum()),
        ("returned one number per dimension; sum the floored dimensions into one number.",
         lambda t: t.mean(0).clamp(min=lam)),
    ]
    if isinstance(got_small, torch.Tensor):
        for message, mistake in mistakes:
            if _matches(got.detach(), mistake(k)) and _matches(got_small.detach(), mistake(small)):
                raise ExerciseError(f"{exercise}: {message}")
    got_value = got.detach()
    check_close(got_value, expected, exercise, "the free-bits KL",
                hint="Average kl over the batch (dim 0), take max(free_bits, ·) per dimension, then sum.")
    if not got.requires_grad:
        raise ExerciseError(f"{exercise}: the result carries no gradient; don't detach or convert to a "
                            "Python number inside the loss.")
    (grad,) = torch.autograd.grad(got, kl)
    below = k.mean(0) < lam  # dimensions 0 and 3 sit under the floor
    if grad[:, below].abs().max() > 0:
        raise ExerciseError(f"{exercise}: dimensions below the floor still get a gradient; max(λ, ·) must "
                            "make them constant (torch.clamp(…, min=free_bits) does).")
    check_close(grad[:, ~below], torch.full_like(grad[:, ~below], 1 / k.shape[0]), exercise,
                "the gradient for dimensions above the floor", hint="It should be 1/batch for each entry.")
    check_close(torch.as_tensor(got_small).detach(), objectives.free_bits_kl(small, lam), exercise,
                "the free-bits KL of a batch with every dimension below the floor",
                hint="Each dimension counts as max(free_bits, its batch-mean KL).")
    check_close(call(fn, exercise, k, 0.0), k.mean(0).sum(), exercise, "the result with free_bits=0",
                hint="With no floor it is the plain mean KL summed over dimensions.")
