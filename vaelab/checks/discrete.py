"""Checkers for lesson 05's exercises: one-hot conditioning, nearest-code quantization, the
straight-through estimator and the perplexity of code usage.

Each runs the student's function on cases with known answers; a known mistake raises
``ExerciseError`` naming it, a correct answer prints one confirmation line.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..models import vqvae
from ._core import ExerciseError, as_number, as_tensor, call, check_close, checker, require_finite

__all__ = ["code_perplexity", "nearest_code", "one_hot_condition", "straight_through"]


def _as_tensor(out, exercise: str, what: str, keep_grad: bool = False) -> torch.Tensor:
    return as_tensor(out, exercise, what, dtype=None, keep_grad=keep_grad)


def _one_hot_condition_reference(x, labels, n_classes):
    return torch.cat([x, torch.nn.functional.one_hot(labels, n_classes).to(x.dtype)], dim=1)


def _code_perplexity_reference(counts):
    return torch.tensor(vqvae.perplexity(counts))


# ---------------------------------------------------------------- CVAE: the condition


@checker("one_hot_condition", _one_hot_condition_reference)
def one_hot_condition(fn: Callable) -> Callable:
    """Check ``fn(x, labels, n_classes) -> [x, one_hot(labels)]`` of shape (B, data_dim + n_classes).

    Returns ``fn`` if it passes, else the reference.

    >>> one_hot_condition = one_hot_condition(_one_hot_condition_reference)
    Correct: one_hot_condition passes every check.
    """
    exercise = "one_hot_condition"
    x = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], [1.0, 0.0, 0.5]])  # (4, 3)
    labels = torch.tensor([2, 0, 1, 2])  # no example of classes 3 and 4
    n_classes = 5
    c = torch.nn.functional.one_hot(labels, n_classes).float()
    expected = torch.cat([x, c], dim=1)  # (4, 8)
    out = _as_tensor(call(fn, exercise, x.clone(), labels.clone(), n_classes), exercise, "the encoder's input")
    B, D = x.shape
    if out.ndim == 2 and out.shape == (B, D + 1):
        raise ExerciseError(f"{exercise}: the result has {D + 1} columns: the label was appended as one number. "
                            "As a number, 7 would sit closer to 8 than to 1; append one_hot(labels, n_classes) instead.")
    if out.ndim == 2 and out.shape == (B, D + int(labels.max()) + 1):
        raise ExerciseError(f"{exercise}: the one-hot part has {int(labels.max()) + 1} columns, the largest label in this "
                            f"batch plus one; it must have n_classes = {n_classes} columns whatever the batch holds "
                            "(pass num_classes=n_classes to one_hot).")
    if out.ndim == 2 and out.shape[1] == D and out.shape[0] > B:
        raise ExerciseError(f"{exercise}: the result has shape {tuple(out.shape)}: x and c were stacked along the batch "
                            "axis; concatenate along the features, dim=1.")
    if out.shape != expected.shape:
        raise ExerciseError(f"{exercise}: the result should have shape {tuple(expected.shape)} "
                            f"(data_dim + n_classes columns), got {tuple(out.shape)}.")
    if not out.is_floating_point():
        raise ExerciseError(f"{exercise}: the result has dtype {out.dtype}; the networks need floats: "
                            "convert the one-hot rows with .float() (or .to(x.dtype)).")
    if torch.allclose(out.float(), torch.cat([c, x], dim=1)):
        raise ExerciseError(f"{exercise}: the one-hot columns come first; put x first, then c, "
                            "the order vaelab's CVAE uses.")
    check_close(out.float(), expected, exercise, "[x, one_hot(labels)]",
                hint="The first data_dim columns must be x unchanged, then a single 1 in column data_dim + label.")


# ---------------------------------------------------------------- VQ-VAE: quantization


@checker("nearest_code", vqvae.nearest_code)
def nearest_code(fn: Callable) -> Callable:
    """Check ``fn(z_e, codebook) -> indices``: argmin_k ||z_e − e_k||², int tensor of shape (B,).

    Returns ``fn`` if it passes, else ``vqvae.nearest_code``.

    >>> nearest_code = nearest_code(vqvae.nearest_code)
    Correct: nearest_code passes every check.
    """
    exercise = "nearest_code"
    # codes of very different norms: "largest inner product" and "nearest" disagree here
    codebook = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [10.0, 10.0]])  # (K=4, D=2)
    z_e = torch.tensor([[0.4, 0.2], [2.6, 0.3], [0.1, 2.0], [4.0, 3.5], [9.0, 9.0], [-1.0, -2.0]])  # (B=6, D)
    distances = torch.cdist(z_e, codebook).pow(2)  # (B, K), computed independently of the package
    expected = distances.argmin(1)
    out = _as_tensor(call(fn, exercise, z_e.clone(), codebook.clone()), exercise, "the indices")
    if out.shape == z_e.shape and out.is_floating_point():
        raise ExerciseError(f"{exercise}: returned vectors of shape {tuple(out.shape)}; return the *indices* of the "
                            "nearest codes, shape (B,) — codebook[indices] gives the vectors.")
    if out.shape == (codebook.shape[0],):
        raise ExerciseError(f"{exercise}: returned shape {tuple(out.shape)}, one number per code: the argmin ran over "
                            "the batch axis; take it over the codes, the last axis of the (B, K) distances.")
    if out.shape != expected.shape:
        raise ExerciseError(f"{exercise}: should return one index per row of z_e, shape {tuple(expected.shape)}, "
                            f"got {tuple(out.shape)}.")
    _compare_indices(out, z_e, codebook, "")
    g = torch.Generator().manual_seed(0)
    z_e, codebook = torch.randn(50, 3, generator=g), torch.randn(7, 3, generator=g)
    out = _as_tensor(call(fn, exercise, z_e, codebook), exercise, "the indices")
    if out.shape != (50,):
        raise ExerciseError(f"{exercise}: on 50 random vectors and 7 codes, should return shape (50,), got {tuple(out.shape)}.")
    _compare_indices(out, z_e, codebook, " (50 random vectors, 7 codes)")


def _compare_indices(out: torch.Tensor, z_e: torch.Tensor, codebook: torch.Tensor, case: str) -> None:
    """Raise naming the rule ``out`` follows if it is not the nearest code in squared Euclidean distance."""
    exercise = "nearest_code"
    require_finite(out, exercise, "the indices")
    if out.is_floating_point() or out.dtype == torch.bool:
        raise ExerciseError(f"{exercise}: should return integer indices (int64, what argmin gives), got dtype {out.dtype}.")
    out = out.long()
    distances = torch.cdist(z_e, codebook).pow(2)  # (B, K)
    expected = distances.argmin(1)
    if torch.equal(out, expected):
        return
    rules = [
        (distances.argmax(1), "picks the *farthest* code (argmax of the distance); use argmin."),
        ((z_e @ codebook.T).argmax(1), "picks the largest inner product z·e_k, which ignores ||e_k||² and so favours "
                                       "long codes; minimise ||z − e_k||² = ||z||² − 2 z·e_k + ||e_k||²."),
        (torch.cdist(z_e, codebook, p=1).argmin(1), "picks the nearest code in L1 distance (sum of absolute "
         "differences); the codebook is the finite mixture's means, nearest in squared Euclidean distance "
         "||z − e_k||² = Σ_d (z_d − e_kd)²: use .pow(2), not .abs()."),
        (torch.cdist(z_e, codebook, p=float("inf")).argmin(1), "picks the nearest code by the largest coordinate "
         "difference (L∞, .abs().max()); use the squared Euclidean distance Σ_d (z_d − e_kd)²."),
    ]
    for wrong, message in rules:
        if torch.equal(out, wrong):
            raise ExerciseError(f"{exercise}{case}: {message}")
    bad = (out != expected).nonzero().flatten()
    i = int(bad[0])
    if not 0 <= int(out[i]) < len(codebook):
        raise ExerciseError(f"{exercise}{case}: row {i} got index {int(out[i])}, but there are only {len(codebook)} "
                            f"codes (indices 0 to {len(codebook) - 1}).")
    raise ExerciseError(f"{exercise}{case}: {len(bad)} of {len(out)} rows do not get their nearest code. Row {i}, "
                        f"z_e = {[round(v, 3) for v in z_e[i].tolist()]}, got code {int(out[i])}, but code "
                        f"{int(expected[i])} is nearer (squared distances "
                        f"{[round(v, 3) for v in distances[i].tolist()]}).")


# ---------------------------------------------------------------- VQ-VAE: the straight-through estimator


@checker("straight_through", vqvae.straight_through)
def straight_through(fn: Callable) -> Callable:
    """Check ``fn(z_e, z_q)``: the value of z_q, and the gradient passed to z_e unchanged (none to the codebook).

    Returns ``fn`` if it passes, else ``vqvae.straight_through``.

    >>> straight_through = straight_through(vqvae.straight_through)
    Correct: straight_through passes every check.
    """
    exercise = "straight_through"
    codebook = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    z_e = torch.tensor([[0.2, -0.1], [0.9, 0.3], [-0.2, 0.8]], requires_grad=True)
    z_q = codebook[torch.tensor([0, 1, 2])]  # what quantization gives: rows of the codebook, in its graph
    out = _as_tensor(call(fn, exercise, z_e, z_q, copy=False), exercise, "the decoder's input", keep_grad=True)
    if out.shape != z_e.shape:
        raise ExerciseError(f"{exercise}: should return a tensor of the shape of z_e {tuple(z_e.shape)}, "
                            f"got {tuple(out.shape)}.")
    value = require_finite(out.detach().double(), exercise, "the decoder's input")
    if torch.allclose(value, z_e.detach().double()) and not torch.allclose(value, z_q.detach().double()):
        raise ExerciseError(f"{exercise}: the value is z_e: the decoder would see the unquantized vector. The value "
                            "must be z_q; only the gradient should be z_e's: z_e + (z_q − z_e).detach().")
    check_close(value, z_q.detach(), exercise, "the value (it must equal z_q)",
                hint="Compute z_e + (z_q − z_e).detach(): its value is z_q.")
    if not out.requires_grad:
        raise ExerciseError(f"{exercise}: the result carries no gradient at all (everything was detached); the "
                            "encoder would learn nothing. Detach only the difference: z_e + (z_q − z_e).detach().")
    weights = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # d loss / d out
    (out * weights.to(out.dtype)).sum().backward()
    to_codebook = codebook.grad is not None and codebook.grad.abs().sum() > 0
    if z_e.grad is None:
        raise ExerciseError(f"{exercise}: no gradient reaches z_e" + (
            ": you returned z_q, which comes from an argmin, so the encoder learns nothing from the decoder (the "
            "gradient goes to the codebook instead)." if to_codebook else ".") +
            " Return z_e + (z_q − z_e).detach().")
    if z_e.grad.abs().sum() == 0 and to_codebook:
        raise ExerciseError(f"{exercise}: z_e + (z_q − z_e) without .detach(): the two z_e cancel in the gradient, so "
                            "the encoder gets zero and the codebook gets the decoder's gradient. Detach the difference.")
    check_close(z_e.grad, weights, exercise, "the gradient reaching z_e",
                hint="The straight-through estimator passes d loss/d z_q to z_e unchanged (identity Jacobian).")
    if to_codebook:
        raise ExerciseError(f"{exercise}: the decoder's gradient leaks into the codebook; the codes learn from the "
                            "codebook loss only. Detach (z_q − z_e) as a whole.")


# ---------------------------------------------------------------- VQ-VAE: how many codes are used


@checker("code_perplexity", _code_perplexity_reference)
def code_perplexity(fn: Callable) -> Callable:
    """Check ``fn(counts) -> exp(H(p))`` with p = counts / Σ counts and 0 · log 0 = 0.

    Returns ``fn`` if it passes, else the reference.

    >>> code_perplexity = code_perplexity(_code_perplexity_reference)
    Correct: code_perplexity passes every check.
    """
    exercise = "code_perplexity"
    cases = [([5, 5, 0, 0], 2.0), ([3, 3, 3, 3], 4.0), ([7, 0, 0], 1.0), ([1, 2, 3, 4, 0], None)]
    for counts, expected in cases:
        counts = torch.tensor(counts, dtype=torch.float32)
        p = counts / counts.sum()
        nonzero = p[p > 0]
        entropy = float(-(nonzero * nonzero.log()).sum())
        expected = math.exp(entropy) if expected is None else expected
        out = call(fn, exercise, counts.clone())
        got = as_number(out, exercise, "the perplexity")
        if math.isnan(got):
            raise ExerciseError(f"{exercise}: counts {counts.long().tolist()} give NaN: an unused code makes 0 · log 0. "
                                "Count it as 0 (torch.special.xlogy(p, p), or keep only p > 0).")
        if entropy > 0 and math.isclose(got, entropy, rel_tol=1e-4):
            raise ExerciseError(f"{exercise}: returned the entropy H = {got:.4g} nats; the perplexity is exp(H) "
                                f"= {expected:.4g}, the effective number of codes.")
        used = int((counts > 0).sum())
        if got == used and not math.isclose(expected, used, rel_tol=1e-4):
            raise ExerciseError(f"{exercise}: counts {counts.long().tolist()}: you counted the codes in use ({used}). "
                                f"The perplexity exp(H(p)) equals that only when every used code is used equally "
                                f"often; here it is {expected:.4g}: weight each code by its frequency p = counts / Σ counts.")
        raw = -float((counts[counts > 0] * counts[counts > 0].log()).sum())
        if math.isclose(got, math.exp(raw), rel_tol=1e-4) or math.isclose(got, raw, rel_tol=1e-4):
            raise ExerciseError(f"{exercise}: the counts were used as probabilities; divide them by their total first.")
        if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
            raise ExerciseError(f"{exercise}: counts {counts.long().tolist()} should give {expected:.4g}, got {got:.4g}.")
