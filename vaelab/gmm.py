"""A finite mixture of Gaussians fit by expectation-maximisation, in torch, on any device and dtype.

    p(x) = Σ_k π_k N(x; μ_k, Σ_k),   z ∈ {1..K} the latent component, p(z = k) = π_k.

Derived in lesson 01. The math is a handful of small pure functions (``e_step``, ``m_step``,
``log_likelihood`` and the private ``_estimate_*`` helpers they share); ``GaussianMixture`` is a
thin scikit-learn-shaped estimator around them. The arithmetic follows scikit-learn's
``sklearn/mixture/_gaussian_mixture.py`` step for step, so that from the same initial parameters
both produce the same iterates (to ~1e-14 in float64); the heavy products are batched over
chunks of rows so they run at matrix-multiply speed.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

from ._validation import (as_tensor, check_2d, check_choice, check_finite, check_nonnegative,
                          check_positive_int, check_probabilities, sum_tolerance)
from .compare import gmm_n_parameters
from .device import get_device

__all__ = ["GaussianMixture", "ConvergenceWarning", "NotFittedError", "EMPath", "em_path", "start_at_points",
           "e_step", "m_step", "log_likelihood", "COVARIANCE_TYPES", "INIT_PARAMS"]

COVARIANCE_TYPES = ("full", "diag", "spherical")
INIT_PARAMS = ("kmeans++", "random")

# Rows per chunk are chosen so that one (K, rows, D) block stays in a 1 MiB L2 cache:
# the products then run at matrix-multiply speed instead of at memory speed.
_CHUNK_BYTES = 2 ** 20


def _rows_per_chunk(X: torch.Tensor, n_components: int) -> int:
    return max(1, _CHUNK_BYTES // (X.element_size() * n_components * X.shape[1]))


_SINGULAR_MESSAGE = (
    "Fitting the mixture failed because some components have an ill-defined covariance "
    "(a component collapsed onto a single point or a line). Increase reg_covar, use fewer "
    "components, or scale the data."
)


class ConvergenceWarning(_SklearnConvergenceWarning):
    """EM stopped at ``max_iter`` before the log-likelihood changed by less than ``tol``.

    A subclass of scikit-learn's ``ConvergenceWarning``, so its warning filters apply."""


class NotFittedError(_SklearnNotFittedError):
    """A method that needs fitted parameters was called before ``fit``.

    A subclass of scikit-learn's ``NotFittedError`` (itself a ``ValueError`` and an ``AttributeError``)."""


# ---------------------------------------------------------------------------- shapes and checks

def _covariance_type_of(covariances: torch.Tensor) -> str:
    """The covariance type follows from the number of dimensions: (K, D, D), (K, D) or (K,)."""
    types = {3: "full", 2: "diag", 1: "spherical"}
    if covariances.ndim not in types:
        raise ValueError(
            "`covariances` must have shape (n_components, n_features, n_features) (full), "
            f"(n_components, n_features) (diag) or (n_components,) (spherical), got shape {tuple(covariances.shape)}")
    return types[covariances.ndim]


def _covariance_shape(covariance_type: str, n_components: int, n_features: int) -> tuple[int, ...]:
    return {"full": (n_components, n_features, n_features),
            "diag": (n_components, n_features),
            "spherical": (n_components,)}[covariance_type]


def _common(*tensors: Any, names: tuple[str, ...]) -> list[torch.Tensor]:
    """Convert to tensors on the first one's device, in a common floating dtype."""
    out = [as_tensor(t, name) for t, name in zip(tensors, names)]
    dtype = out[0].dtype
    for t in out[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return [t.to(device=out[0].device, dtype=dtype) for t in out]


# the public math functions take parameters from anywhere (figures, float32 fits cast to float64, a
# student's code): they refuse sums that are wrong (1.2, 0.9), not float32 rounding seen in float64
_MATH_ATOL = 1e-6


def _check_mixture(x: Any, weights: Any, means: Any, covariances: Any):
    """Validate the arguments of the public math functions; return them as tensors and the covariance type."""
    # the tolerance on Σ π_k = 1 comes from the weights' own dtype, before they are promoted to x's
    weights_dtype = as_tensor(weights, "weights").dtype
    x, weights, means, covariances = _common(x, weights, means, covariances,
                                             names=("x", "weights", "means", "covariances"))
    x = check_2d(x, "x")
    if means.ndim != 2 or means.shape[1] != x.shape[1]:
        raise ValueError(f"`means` must have shape (n_components, n_features) = (K, {x.shape[1]}), "
                         f"got shape {tuple(means.shape)}")
    n_components = means.shape[0]
    if weights.shape != (n_components,):
        raise ValueError(f"`weights` must have shape (n_components,) = ({n_components},), got shape {tuple(weights.shape)}")
    covariance_type = _covariance_type_of(covariances)
    expected = _covariance_shape(covariance_type, n_components, x.shape[1])
    if tuple(covariances.shape) != expected:
        raise ValueError(f"`covariances` must have shape {expected} for a {covariance_type} mixture, "
                         f"got shape {tuple(covariances.shape)}")
    # NaN or negative weights would flow on silently as NaN or wrong densities, not as an error
    coarser = weights_dtype if torch.finfo(weights_dtype).eps > torch.finfo(weights.dtype).eps else weights.dtype
    check_probabilities(weights.detach(), "weights", atol=max(_MATH_ATOL, sum_tolerance(coarser, n_components)))
    check_finite(means.detach(), "means")
    check_finite(covariances.detach(), "covariances")
    return x, weights, means, covariances, covariance_type


def _check_resp(resp: torch.Tensor) -> None:
    """Responsibilities are a distribution over components for each row: finite, >= 0, rows summing to 1."""
    check_finite(resp, "resp")
    if bool((resp < 0).any()):
        n, k = (int(i) for i in (resp < 0).nonzero()[0])
        raise ValueError(f"`resp` must be non-negative (probabilities), got {float(resp[n, k]):.4g} at index ({n}, {k})")
    sums = resp.double().sum(1)
    atol = max(_MATH_ATOL, sum_tolerance(resp.dtype, resp.shape[1]))
    worst = int((sums - 1).abs().argmax())
    if abs(float(sums[worst]) - 1) > atol:
        raise ValueError(f"`resp` must have rows that sum to 1 (p(z = k | x_n) over k, within {atol:.2g}), "
                         f"got a sum of {float(sums[worst]):.10g} in row {worst}")


# ---------------------------------------------------------------------------- the Gaussian parts

def _compute_precision_cholesky(covariances: torch.Tensor, covariance_type: str) -> torch.Tensor:
    """Cholesky factors U_k of the precisions, Σ_k⁻¹ = U_k U_kᵀ (upper triangular for "full").

    Σ = L Lᵀ  ⇒  Σ⁻¹ = L⁻ᵀ L⁻¹, so U = L⁻ᵀ: one Cholesky and one triangular solve per component,
    never an explicit inverse. Raises ``ValueError`` when a covariance is not positive definite.
    """
    if covariance_type == "full":
        cov_chol, info = torch.linalg.cholesky_ex(covariances)  # (K, D, D) lower
        if bool((info != 0).any()):
            raise ValueError(_SINGULAR_MESSAGE + _float32_hint(covariances))
        eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device)
        return torch.linalg.solve_triangular(cov_chol, eye.expand_as(cov_chol), upper=False).mT
    if bool((covariances <= 0).any()):
        raise ValueError(_SINGULAR_MESSAGE + _float32_hint(covariances))
    return 1.0 / torch.sqrt(covariances)


def _float32_hint(t: torch.Tensor) -> str:
    return " Float64 (the default dtype) is also more robust than float32." if t.dtype != torch.float64 else ""


def _compute_precision_cholesky_from_precisions(precisions: torch.Tensor, covariance_type: str) -> torch.Tensor:
    """Upper-triangular U with Λ = U Uᵀ: the lower Cholesky factor of Λ with rows and columns reversed."""
    if covariance_type == "full":
        flipped = torch.linalg.cholesky(precisions.flip(-1, -2))
        return flipped.flip(-1, -2)
    return torch.sqrt(precisions)


def _precisions_from_cholesky(precisions_chol: torch.Tensor, covariance_type: str) -> torch.Tensor:
    if covariance_type == "full":
        return precisions_chol @ precisions_chol.mT
    return precisions_chol ** 2


def _compute_log_det_cholesky(precisions_chol: torch.Tensor, covariance_type: str, n_features: int) -> torch.Tensor:
    """log det U_k = ½ log det Σ_k⁻¹, of shape (n_components,)."""
    if covariance_type == "full":
        return torch.log(torch.diagonal(precisions_chol, dim1=-2, dim2=-1)).sum(-1)
    if covariance_type == "diag":
        return torch.log(precisions_chol).sum(-1)
    return n_features * torch.log(precisions_chol)


def _estimate_log_gaussian_prob(X: torch.Tensor, means: torch.Tensor, precisions_chol: torch.Tensor,
                                covariance_type: str, X_sq: torch.Tensor | None = None) -> torch.Tensor:
    """log N(x_n; μ_k, Σ_k) for every row and component, of shape (n_samples, n_components).

    log N = -½ (D log 2π + ‖(x − μ_k)ᵀ U_k‖²) + log det U_k. ``X_sq`` (X * X) may be passed
    to save recomputing it on every EM iteration (diag and spherical only).
    """
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    log_det = _compute_log_det_cholesky(precisions_chol, covariance_type, n_features)  # (K,)
    if covariance_type == "full":
        # all K projections in one product: X @ [U_1 | U_2 | ... | U_K]
        stacked = precisions_chol.permute(1, 0, 2).reshape(n_features, n_components * n_features)  # (D, K*D)
        mu_proj = torch.bmm(means.unsqueeze(1), precisions_chol).reshape(n_components * n_features)  # (K*D,)
        maha = X.new_empty((n_samples, n_components))
        step = _rows_per_chunk(X, n_components)
        for start in range(0, n_samples, step):
            y = X[start:start + step] @ stacked - mu_proj  # (B, K*D)
            maha[start:start + step] = y.square_().view(-1, n_components, n_features).sum(-1)
    elif covariance_type == "diag":
        precisions = precisions_chol ** 2  # (K, D)
        X_sq = X * X if X_sq is None else X_sq
        maha = ((means ** 2 * precisions).sum(1) - 2.0 * (X @ (means * precisions).T) + X_sq @ precisions.T)
        _refine_far_distances(maha, X, means, precisions)
    else:
        precisions = precisions_chol ** 2  # (K,)
        row_sq = (X * X).sum(1) if X_sq is None else X_sq.sum(1)
        maha = ((means ** 2).sum(1) * precisions - 2.0 * (X @ means.T * precisions)
                + torch.outer(row_sq, precisions))
        _refine_far_distances(maha, X, means, precisions[:, None].expand_as(means))
    return -0.5 * (n_features * math.log(2 * math.pi) + maha) + log_det


def _far_from_zero(means: torch.Tensor, precisions: torch.Tensor) -> torch.Tensor:
    """Components whose expanded distances μ²/σ² − 2xμ/σ² + x²/σ² lose too many digits, of shape (K,).

    Near x ≈ μ_k each term is about S_k = Σ_d μ_kd²/σ_kd² while their sum is about D, so the rounding
    error is about ε S_k nats. Past max(1e-6, √ε) nats of error (S_k > 4.5e9 in float64, 2.9e3 in
    float32: a 1-D mean 67,000 or 54 of its standard deviations from 0) the distances are computed
    from centred data.
    """
    eps = torch.finfo(means.dtype).eps
    return (means ** 2 * precisions).sum(1) * eps > max(1e-6, math.sqrt(eps))


def _refine_far_distances(maha: torch.Tensor, X: torch.Tensor, means: torch.Tensor, precisions: torch.Tensor) -> None:
    """Recompute in place, as Σ_d (x_nd − μ_kd)² / σ_kd², the columns of the components far from zero."""
    far = _far_from_zero(means, precisions)
    if bool(far.any()):  # rare (data far from the origin): the usual case costs this one check
        for k in far.nonzero()[:, 0].tolist():
            maha[:, k] = (X - means[k]).square_() @ precisions[k]


def _estimate_log_prob_resp(X: torch.Tensor, weights: torch.Tensor, means: torch.Tensor,
                            precisions_chol: torch.Tensor, covariance_type: str,
                            X_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(x_n) of shape (n_samples,), log γ_nk of shape (n_samples, n_components))."""
    weighted = _estimate_log_gaussian_prob(X, means, precisions_chol, covariance_type, X_sq) + torch.log(weights)
    # log-sum-exp: exp of log-densities near -1000 underflows to 0 and 0/0 gives NaN
    log_prob_norm = torch.logsumexp(weighted, dim=1)  # (N,)
    return log_prob_norm, weighted - log_prob_norm[:, None]


def _estimate_gaussian_covariances_full(resp, X, nk, means, reg_covar):
    """Σ_k = Σ_n γ_nk (x_n − μ_k)(x_n − μ_k)ᵀ / N_k + reg_covar·I, batched over chunks of rows."""
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    covariances = X.new_zeros((n_components, n_features, n_features))
    step = _rows_per_chunk(X, n_components)
    for start in range(0, n_samples, step):
        diff = X[start:start + step].unsqueeze(0) - means.unsqueeze(1)  # (K, B, D)
        weighted = diff * resp[start:start + step].T.unsqueeze(-1)  # (K, B, D)
        covariances.baddbmm_(weighted.mT, diff)  # (K, D, D) += (K, D, B) @ (K, B, D)
    covariances /= nk[:, None, None]
    covariances.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
    return covariances


def _estimate_gaussian_covariances_diag(resp, X, nk, means, reg_covar, X_sq=None):
    """σ²_kd = Σ_n γ_nk x_nd² / N_k − μ_kd² + reg_covar.

    E[x²] − μ² (scikit-learn's formula, one matrix product) has a rounding error of about ε μ², which
    is all of σ² when μ² ≫ σ²; the components where it exceeds √ε of σ² + reg_covar are recomputed
    from centred data, Σ_n γ_nk (x_nd − μ_kd)² / N_k.
    """
    X_sq = X * X if X_sq is None else X_sq
    covariances = (resp.T @ X_sq) / nk[:, None] - means ** 2  # (K, D)
    far = (means ** 2 * math.sqrt(torch.finfo(means.dtype).eps) > covariances + reg_covar).any(1)  # (K,)
    if bool(far.any()):
        for k in far.nonzero()[:, 0].tolist():
            covariances[k] = (resp[:, k] @ (X - means[k]).square_()) / nk[k]
    return covariances + reg_covar


def _estimate_gaussian_parameters(X: torch.Tensor, resp: torch.Tensor, reg_covar: float, covariance_type: str,
                                  X_sq: torch.Tensor | None = None):
    """The M-step's weighted statistics: (N_k of shape (K,), means (K, D), covariances).

    N_k = Σ_n γ_nk (plus 10 ε so that an empty component gives 0/ε = 0, not 0/0 = NaN),
    μ_k = Σ_n γ_nk x_n / N_k, and the covariances of ``covariance_type`` (+ ``reg_covar`` on the diagonal).
    """
    nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps  # (K,)
    means = (resp.T @ X) / nk[:, None]  # (K, D)
    if covariance_type == "full":
        covariances = _estimate_gaussian_covariances_full(resp, X, nk, means, reg_covar)
    else:
        covariances = _estimate_gaussian_covariances_diag(resp, X, nk, means, reg_covar, X_sq)
        if covariance_type == "spherical":
            covariances = covariances.mean(1)
    return nk, means, covariances


# ---------------------------------------------------------------------------- the public math

def log_likelihood(x: Any, weights: Any, means: Any, covariances: Any) -> torch.Tensor:
    """Log-density of each row under the mixture, of shape (n_samples,). Derived in lesson 01, §2.

    log p(x_n) = log Σ_k π_k N(x_n; μ_k, Σ_k), computed with log-sum-exp. ``covariances`` of shape
    (K, D, D), (K, D) or (K,) means a full, diagonal or spherical mixture. ``.mean()`` of the result
    is scikit-learn's ``score``.

    >>> x = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    >>> round(float(log_likelihood(x, torch.ones(1), torch.zeros(1, 2), torch.eye(2)[None])), 6)  # -log 2π
    -1.837877
    """
    x, weights, means, covariances, covariance_type = _check_mixture(x, weights, means, covariances)
    precisions_chol = _compute_precision_cholesky(covariances, covariance_type)
    log_prob_norm, _ = _estimate_log_prob_resp(x, weights, means, precisions_chol, covariance_type)
    return log_prob_norm


def e_step(x: Any, weights: Any, means: Any, covariances: Any) -> torch.Tensor:
    """Responsibilities γ_nk = p(z = k | x_n), of shape (n_samples, n_components). Derived in lesson 01, §3.

    γ_nk = π_k N(x_n; μ_k, Σ_k) / Σ_j π_j N(x_n; μ_j, Σ_j), computed in log space.
    ``covariances`` as in :func:`log_likelihood`.

    >>> x = torch.tensor([[-1.0], [0.0], [1.0]], dtype=torch.float64)
    >>> e_step(x, torch.tensor([0.5, 0.5]), torch.tensor([[-1.0], [1.0]]), torch.ones(2, 1, 1))
    tensor([[0.8808, 0.1192],
            [0.5000, 0.5000],
            [0.1192, 0.8808]], dtype=torch.float64)
    """
    x, weights, means, covariances, covariance_type = _check_mixture(x, weights, means, covariances)
    precisions_chol = _compute_precision_cholesky(covariances, covariance_type)
    _, log_resp = _estimate_log_prob_resp(x, weights, means, precisions_chol, covariance_type)
    return log_resp.exp()


def m_step(x: Any, resp: Any, *, covariance_type: str = "full",
           reg_covar: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Parameters that maximise the expected complete-data log-likelihood. Derived in lesson 01, §4.

    Returns (weights of shape (K,), means (K, D), covariances (K, D, D), (K, D) or (K,)).

    N_k = Σ_n γ_nk,  π_k = N_k / N,  μ_k = Σ_n γ_nk x_n / N_k,
    Σ_k = Σ_n γ_nk (x_n − μ_k)(x_n − μ_k)ᵀ / N_k + reg_covar·I  (diag: its diagonal; spherical: its mean).

    >>> x = torch.tensor([[0.0], [2.0], [10.0]], dtype=torch.float64)
    >>> resp = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    >>> weights, means, covariances = m_step(x, resp, reg_covar=0.0)
    >>> [[round(v, 6) for v in t.flatten().tolist()] for t in (weights, means, covariances)]
    [[0.666667, 0.333333], [1.0, 10.0], [1.0, 0.0]]
    """
    check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
    x, resp = _common(x, resp, names=("x", "resp"))
    x = check_2d(x, "x")
    if resp.ndim != 2 or resp.shape[0] != x.shape[0]:
        raise ValueError(f"`resp` must have shape (n_samples, n_components) = ({x.shape[0]}, K), got shape {tuple(resp.shape)}")
    _check_resp(resp.detach())
    reg_covar = check_nonnegative(reg_covar, "reg_covar")
    nk, means, covariances = _estimate_gaussian_parameters(x, resp, reg_covar, covariance_type)
    return nk / nk.sum(), means, covariances


# ---------------------------------------------------------------------------- initialisation

def _check_random_state(random_state: Any) -> np.random.RandomState:
    """None -> numpy's global generator (seeded by ``seed_everything``); int -> a fresh RandomState."""
    if random_state is None:
        return np.random.mtrand._rand
    if isinstance(random_state, np.random.RandomState):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.RandomState(check_positive_int(random_state, "random_state", minimum=0))
    raise TypeError(f"`random_state` must be None, an int >= 0 or a numpy RandomState, got {type(random_state).__name__}")


def _squared_distances(A: torch.Tensor, X: torch.Tensor, X_sq_norms: torch.Tensor) -> torch.Tensor:
    """‖a − x‖² of shape (len(A), len(X)), expanded as scikit-learn does (‖a‖² − 2 a·x + ‖x‖²)."""
    d = -2.0 * (A @ X.T)
    d += (A * A).sum(1, keepdim=True)
    d += X_sq_norms
    return d.clamp_(min=0.0)


def _kmeans_plusplus(X: torch.Tensor, n_clusters: int, rng: np.random.RandomState) -> torch.Tensor:
    """Indices of greedy k-means++ seeds (Arthur & Vassilvitskii, 2007), of shape (n_clusters,).

    Each new seed is the best of 2 + log K candidates drawn with probability ∝ squared distance to
    the nearest seed. It draws from ``rng`` exactly as scikit-learn's ``kmeans_plusplus`` does, so
    the same integer seed picks the same points.
    """
    n_samples = X.shape[0]
    n_local_trials = 2 + int(np.log(n_clusters))
    X = X - X.mean(0)  # distances do not change; their expansion keeps its digits far from the origin
    X_sq_norms = (X * X).sum(1)
    first = int(rng.choice(n_samples, p=np.full(n_samples, 1.0) / n_samples))
    indices = [first]
    closest = _squared_distances(X[first:first + 1], X, X_sq_norms)[0]  # (N,)
    potential = closest.sum()
    for _ in range(1, n_clusters):
        rand_vals = torch.as_tensor(rng.uniform(size=n_local_trials), dtype=X.dtype, device=X.device) * potential
        candidates = torch.searchsorted(torch.cumsum(closest, 0), rand_vals).clamp_(max=n_samples - 1)
        distances = torch.minimum(closest, _squared_distances(X[candidates], X, X_sq_norms))  # (T, N)
        candidate_potentials = distances.sum(1)
        best = int(torch.argmin(candidate_potentials))
        potential = candidate_potentials[best]
        closest = distances[best]
        indices.append(int(candidates[best]))
    return torch.tensor(indices, device=X.device)


def _initial_resp(X: torch.Tensor, n_components: int, init_params: str, rng: np.random.RandomState) -> torch.Tensor:
    """Responsibilities to start from, of shape (n_samples, n_components).

    "kmeans++": each point belongs wholly to its nearest k-means++ seed. "random": uniform random
    numbers normalised per row (the same numbers as scikit-learn's "random" for the same seed).
    """
    n_samples = X.shape[0]
    if init_params == "random":
        resp = torch.as_tensor(rng.uniform(size=(n_samples, n_components)), dtype=X.dtype, device=X.device)
        return resp / resp.sum(1, keepdim=True)
    seeds = _kmeans_plusplus(X, n_components, rng)
    X = X - X.mean(0)  # as in _kmeans_plusplus: the same nearest seeds, computed with all their digits
    nearest = _squared_distances(X[seeds], X, (X * X).sum(1)).argmin(0)  # (N,)
    resp = X.new_zeros((n_samples, n_components))
    resp[torch.arange(n_samples, device=X.device), nearest] = 1.0
    return resp


# ---------------------------------------------------------------------------- the estimator

def _to_output(t: torch.Tensor, as_numpy: bool, device: torch.device | None = None):
    if as_numpy:
        return t.detach().cpu().numpy()
    return t if device is None else t.to(device)


class GaussianMixture(DensityMixin, BaseEstimator):
    """A mixture of K Gaussians fit by EM: p(x) = Σ_k π_k N(x; μ_k, Σ_k).

    Same parameters, attributes and arithmetic as scikit-learn's ``GaussianMixture`` (without
    "tied" covariances, ``n_init`` and ``warm_start``), computed in torch on any device.
    numpy in -> numpy out, torch in -> torch out: the fitted attributes take the type of the ``X``
    given to ``fit``, and each method returns the type of the ``X`` it is given.

    Parameters
    ----------
    n_components : number of components K
    covariance_type : "full" (K, D, D), "diag" (K, D) or "spherical" (K,)
    tol : EM stops when the mean log-likelihood per sample changes by less than this
    reg_covar : added to every covariance's diagonal; keeps a component that collapses onto one
        point from reaching zero variance (where the likelihood is unbounded)
    max_iter : at most this many EM iterations (0: keep the initial parameters)
    init_params : "kmeans++" (each point assigned to its nearest k-means++ seed) or "random"
        (random responsibilities), then one M-step
    weights_init, means_init, precisions_init : initial parameters, replacing ``init_params``'
        (precisions are inverse covariances, of the shape of ``covariances_``)
    random_state : None, an int or a numpy RandomState; seeds the initialisation and ``sample``
    device : where to compute; None: the device of a tensor ``X``, else ``vaelab.get_device()``
    dtype : floating dtype to compute in

    Attributes
    ----------
    weights_ : of shape (n_components,)
    means_ : of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : of shape (K, D, D), (K, D) or (K,)
    converged_, n_iter_ : whether EM met ``tol``, and after how many iterations
    lower_bound_ : mean log-likelihood per sample at the last E-step
    log_likelihood_history_ : list, entry i is the mean log-likelihood after i iterations
        (i = 0 .. n_iter_ - 1; for EM it never decreases)

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.round(gm.means_[np.argsort(gm.means_[:, 0])], 6)
    array([[ 1.,  2.],
           [10.,  2.]])
    >>> gm.predict(np.array([[0, 0], [12, 3]])).tolist() == [int(np.argmin(gm.means_[:, 0])), int(np.argmax(gm.means_[:, 0]))]
    True
    """

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full", tol: float = 1e-3,
                 reg_covar: float = 1e-6, max_iter: int = 100, init_params: str = "kmeans++",
                 weights_init: Any = None, means_init: Any = None, precisions_init: Any = None,
                 random_state: Any = None, device: str | torch.device | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------ checks

    def _check_hyperparameters(self) -> None:
        check_positive_int(self.n_components, "n_components")
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_nonnegative(self.tol, "tol")
        check_nonnegative(self.reg_covar, "reg_covar")
        check_positive_int(self.max_iter, "max_iter", minimum=0)
        check_choice(self.init_params, "init_params", INIT_PARAMS)
        _check_dtype(self.dtype)
        _check_random_state(self.random_state)

    def _resolve_device(self, X: Any) -> torch.device:
        if self.device is not None:
            return get_device(self.device)
        if isinstance(X, torch.Tensor):
            return X.device
        return get_device()

    def _check_initial_parameters(self, n_features: int, device: torch.device) -> dict:
        K, dtype = self.n_components, self.dtype
        out = {}
        if self.weights_init is not None:
            w = as_tensor(self.weights_init, "weights_init")  # its own dtype sets the tolerance on its sum
            if w.shape != (K,):
                raise ValueError(f"`weights_init` must have shape (n_components,) = ({K},), got shape {tuple(w.shape)}")
            atol = sum_tolerance(w.dtype if w.dtype.itemsize < dtype.itemsize else dtype, K)
            out["weights"] = check_probabilities(w, "weights_init", atol=atol)
        if self.means_init is not None:
            m = check_finite(as_tensor(self.means_init, "means_init", dtype=dtype), "means_init")
            if m.shape != (K, n_features):
                raise ValueError(f"`means_init` must have shape (n_components, n_features) = ({K}, {n_features}), "
                                 f"got shape {tuple(m.shape)}")
            out["means"] = m
        if self.precisions_init is not None:
            p = check_finite(as_tensor(self.precisions_init, "precisions_init", dtype=dtype), "precisions_init")
            expected = _covariance_shape(self.covariance_type, K, n_features)
            if tuple(p.shape) != expected:
                raise ValueError(f"`precisions_init` must have shape {expected} for covariance_type="
                                 f"{self.covariance_type!r}, got shape {tuple(p.shape)}")
            _check_positive_definite(p, self.covariance_type, "precisions_init")
            out["precisions"] = p
        return {name: t.to(device=device, dtype=dtype) for name, t in out.items()}

    def _check_is_fitted(self) -> None:
        if not hasattr(self, "means_"):
            raise NotFittedError("This GaussianMixture is not fitted yet: call fit(X) first, "
                                 "or build one with GaussianMixture.from_parameters(...)")

    def _check_X(self, X: Any) -> torch.Tensor:
        self._check_is_fitted()
        X_t = check_2d(X, "X", dtype=self._dtype, device=self._device)
        if X_t.shape[1] != self.n_features_in_:
            # scikit-learn's wording, which its estimator checks and users' searches look for
            raise ValueError(f"X has {X_t.shape[1]} features, but GaussianMixture is expecting "
                             f"{self.n_features_in_} features as input (the number of columns it was fit on)")
        return X_t

    # ------------------------------------------------------------------ parameters in and out

    def _parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weights, means, precisions_cholesky) as tensors on the compute device, read from the attributes."""
        def t(v, name):
            return as_tensor(v, name, dtype=self._dtype, device=self._device)
        return t(self.weights_, "weights_"), t(self.means_, "means_"), t(self.precisions_cholesky_, "precisions_cholesky_")

    def _set_parameters(self, weights, means, covariances, precisions_chol) -> None:
        out = self._as_numpy
        self.weights_ = _to_output(weights, out)
        self.means_ = _to_output(means, out)
        self.covariances_ = _to_output(covariances, out)
        self.precisions_cholesky_ = _to_output(precisions_chol, out)
        self.precisions_ = _to_output(_precisions_from_cholesky(precisions_chol, self.covariance_type), out)
        self.n_features_in_ = int(means.shape[1])

    def _initialize(self, X: torch.Tensor, rng: np.random.RandomState, inits: dict):
        """Initial (weights, means, covariances, precisions_cholesky), as scikit-learn's ``_initialize``."""
        n_samples = X.shape[0]
        weights = means = covariances = None
        if len(inits) < 3:  # something is left to init_params
            resp = _initial_resp(X, self.n_components, self.init_params, rng)
            nk, means, covariances = _estimate_gaussian_parameters(X, resp, self.reg_covar, self.covariance_type)
            weights = nk / n_samples
        weights = inits.get("weights", weights)
        means = inits.get("means", means)
        if "precisions" in inits:
            precisions = inits["precisions"]
            precisions_chol = _compute_precision_cholesky_from_precisions(precisions, self.covariance_type)
            if self.covariance_type == "full":
                covariances = torch.linalg.inv(precisions)
                covariances = 0.5 * (covariances + covariances.mT)
            else:
                covariances = 1.0 / precisions
        else:
            precisions_chol = _compute_precision_cholesky(covariances, self.covariance_type)
        return weights, means, covariances, precisions_chol

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any = None) -> "GaussianMixture":
        """Estimate the parameters by EM from X of shape (n_samples, n_features); return ``self``.

        Each iteration: E-step (responsibilities from the current parameters), M-step (weighted
        means and covariances). Stops when the mean log-likelihood changes by less than ``tol``,
        or after ``max_iter`` iterations with a ``ConvergenceWarning``. ``y`` is ignored (it is
        there for scikit-learn's API: pipelines, ``GridSearchCV``).
        """
        self._warn_if_not_converged(self._fit(X))
        return self

    def fit_predict(self, X: Any, y: Any = None):
        """Fit by EM, then return the most responsible component of each row, of shape (n_samples,)."""
        self._warn_if_not_converged(self._fit(X))
        return self.predict(X)

    def _warn_if_not_converged(self, message: str | None) -> None:
        # stacklevel 3: the line that called fit or fit_predict, not this helper or the method itself
        if message is not None:
            warnings.warn(message, ConvergenceWarning, stacklevel=3)

    @torch.no_grad()
    def _fit(self, X: Any) -> str | None:
        """Run EM and set the fitted attributes; return the ConvergenceWarning's text, or None."""
        self._check_hyperparameters()
        device = self._resolve_device(X)
        X_t = check_2d(X, "X", dtype=self.dtype, device=device)
        n_samples, n_features = X_t.shape
        if self.n_components > n_samples:
            raise ValueError(f"`n_components` must be <= n_samples: got n_components={self.n_components} "
                             f"but X has n_samples={n_samples} row(s); use fewer components or more data")
        inits = self._check_initial_parameters(n_features, device)
        rng = _check_random_state(self.random_state)
        self._device, self._dtype, self._as_numpy = device, self.dtype, not isinstance(X, torch.Tensor)

        covariance_type, reg_covar = self.covariance_type, float(self.reg_covar)
        weights, means, covariances, precisions_chol = self._initialize(X_t, rng, inits)
        X_sq = None if covariance_type == "full" else X_t * X_t  # the same every iteration
        history: list[float] = []
        lower_bound, converged, n_iter = -math.inf, False, 0
        for n_iter in range(1, self.max_iter + 1):
            previous = lower_bound
            log_prob_norm, log_resp = _estimate_log_prob_resp(X_t, weights, means, precisions_chol,
                                                              covariance_type, X_sq)
            nk, means, covariances = _estimate_gaussian_parameters(X_t, log_resp.exp_(), reg_covar,
                                                                   covariance_type, X_sq)
            weights = nk / nk.sum()
            precisions_chol = _compute_precision_cholesky(covariances, covariance_type)
            lower_bound = float(log_prob_norm.mean())
            history.append(lower_bound)
            if abs(lower_bound - previous) < self.tol:
                converged = True
                break

        self._set_parameters(weights, means, covariances, precisions_chol)
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.lower_bound_ = lower_bound
        self.log_likelihood_history_ = history
        self.lower_bounds_ = history  # scikit-learn's name
        if converged or self.max_iter == 0:
            return None
        if len(history) == 1:
            change = ("one iteration leaves no change of the mean log-likelihood to compare with "
                      f"tol={self.tol}")
        else:
            change = f"the mean log-likelihood last changed by {history[-1] - history[-2]:.3g} (tol={self.tol})"
        return (f"EM did not converge in max_iter={self.max_iter} iteration(s): {change}. "
                "Increase max_iter or tol, try another initialisation, or check for degenerate data.")

    @classmethod
    def from_parameters(cls, weights: Any, means: Any, covariances: Any, covariance_type: str = "full", *,
                        reg_covar: float = 1e-6, random_state: Any = None,
                        device: str | torch.device | None = None,
                        dtype: torch.dtype = torch.float64) -> "GaussianMixture":
        """A ready-to-use mixture with the given parameters, without running EM.

        ``score_samples``, ``predict``, ``predict_proba``, ``sample``, ``bic`` … work at once;
        ``n_iter_`` is 0, ``converged_`` False and ``lower_bound_`` -inf, as after ``fit`` with
        ``max_iter=0``. numpy ``means`` -> numpy attributes; tensor ``means`` -> tensors.

        Parameters
        ----------
        weights : of shape (n_components,), non-negative, summing to 1
        means : of shape (n_components, n_features)
        covariances : of shape (K, D, D) "full", (K, D) "diag" or (K,) "spherical"

        >>> gm = GaussianMixture.from_parameters([0.5, 0.5], np.array([[-2.0], [2.0]]), np.ones((2, 1, 1)))
        >>> gm.predict(np.array([[-1.0], [3.0]])).tolist()
        [0, 1]
        """
        check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
        _check_dtype(dtype)
        requested_device = device  # the estimator's parameter stays what the caller gave (get_params, clone)
        if device is not None:
            device = get_device(device)
        elif isinstance(means, torch.Tensor):
            device = means.device
        else:
            device = get_device()
        means_t = check_finite(as_tensor(means, "means", dtype=dtype, device=device), "means")
        if means_t.ndim != 2 or 0 in means_t.shape:
            raise ValueError(f"`means` must have shape (n_components, n_features), got shape {tuple(means_t.shape)}")
        n_components, n_features = means_t.shape
        weights_t = as_tensor(weights, "weights")
        if weights_t.shape != (n_components,):
            raise ValueError(f"`weights` must have shape (n_components,) = ({n_components},), got shape {tuple(weights_t.shape)}")
        weights_t = check_probabilities(weights_t, "weights", atol=1e-6).to(device=device, dtype=dtype)
        cov_t = check_finite(as_tensor(covariances, "covariances", dtype=dtype, device=device), "covariances")
        expected = _covariance_shape(covariance_type, n_components, n_features)
        if tuple(cov_t.shape) != expected:
            raise ValueError(f"`covariances` must have shape {expected} for covariance_type={covariance_type!r}, "
                             f"got shape {tuple(cov_t.shape)}")
        _check_positive_definite(cov_t, covariance_type, "covariances")
        model = cls(n_components=n_components, covariance_type=covariance_type, reg_covar=reg_covar,
                    random_state=random_state, device=requested_device, dtype=dtype)
        model._device, model._dtype, model._as_numpy = device, dtype, not isinstance(means, torch.Tensor)
        model._set_parameters(weights_t, means_t, cov_t, _compute_precision_cholesky(cov_t, covariance_type))
        model.converged_, model.n_iter_, model.lower_bound_ = False, 0, -math.inf
        model.log_likelihood_history_ = []
        model.lower_bounds_ = model.log_likelihood_history_
        return model

    # ------------------------------------------------------------------ using a fitted mixture

    def _output(self, t: torch.Tensor, X: Any):
        return _to_output(t, not isinstance(X, torch.Tensor), X.device if isinstance(X, torch.Tensor) else None)

    @torch.no_grad()
    def _log_prob_resp(self, X: Any):
        X_t = self._check_X(X)
        weights, means, precisions_chol = self._parameters()
        return _estimate_log_prob_resp(X_t, weights, means, precisions_chol, self.covariance_type)

    def score_samples(self, X: Any):
        """log p(x_n) for each row of X, of shape (n_samples,)."""
        return self._output(self._log_prob_resp(X)[0], X)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per sample (nats); higher is better. ``y`` is ignored.

        ``GridSearchCV`` maximises this on held-out folds, so it chooses K by held-out log-likelihood.
        """
        return float(self._log_prob_resp(X)[0].mean())

    def predict_proba(self, X: Any):
        """Responsibilities p(z = k | x_n), of shape (n_samples, n_components)."""
        return self._output(self._log_prob_resp(X)[1].exp(), X)

    def predict(self, X: Any):
        """The most responsible component of each row, of shape (n_samples,)."""
        return self._output(self._log_prob_resp(X)[1].argmax(1), X)

    def _n_parameters(self) -> int:
        """Free parameters: K−1 weights, K·D means and the covariances (``compare.gmm_n_parameters``)."""
        return gmm_n_parameters(self.n_components, self.n_features_in_, self.covariance_type)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion, −2 log p(X) + (number of parameters) · log N; lower is better."""
        n_samples = self._check_X(X).shape[0]
        return -2 * self.score(X) * n_samples + self._n_parameters() * math.log(n_samples)

    def aic(self, X: Any) -> float:
        """Akaike information criterion, −2 log p(X) + 2 · (number of parameters); lower is better."""
        n_samples = self._check_X(X).shape[0]
        return -2 * self.score(X) * n_samples + 2 * self._n_parameters()

    @torch.no_grad()
    def sample(self, n_samples: int = 1):
        """Draw (X of shape (n_samples, n_features), labels of shape (n_samples,)), grouped by component.

        Ancestral sampling: z ~ Categorical(π), then x = μ_z + U_z⁻ᵀ ε with ε ~ N(0, I), so that
        Cov x = (U_z U_zᵀ)⁻¹ = Σ_z. Reproducible for an int ``random_state``.
        """
        self._check_is_fitted()
        n_samples = check_positive_int(n_samples, "n_samples")
        weights, means, precisions_chol = self._parameters()
        rng = _check_random_state(self.random_state)
        generator = torch.Generator().manual_seed(int(rng.randint(2 ** 31 - 1)))
        # draw on the CPU so that the same seed gives the same points on every device
        labels = torch.multinomial(weights.cpu().double(), n_samples, replacement=True, generator=generator)
        labels = labels.sort().values.to(self._device)
        eps = torch.randn(n_samples, means.shape[1], generator=generator, dtype=torch.float64)
        eps = eps.to(device=self._device, dtype=self._dtype)
        if self.covariance_type == "full":
            # solve U_zᵀ y = ε for y, one triangular solve per row (batched)
            y = torch.linalg.solve_triangular(precisions_chol[labels].mT, eps.unsqueeze(-1), upper=False).squeeze(-1)
        elif self.covariance_type == "diag":
            y = eps / precisions_chol[labels]
        else:
            y = eps / precisions_chol[labels].unsqueeze(-1)
        X = means[labels] + y
        return _to_output(X, self._as_numpy), _to_output(labels, self._as_numpy)


def _check_dtype(dtype: Any) -> None:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"`dtype` must be a floating torch dtype such as torch.float64 or torch.float32, got {dtype!r}")
    if torch.finfo(dtype).bits < 32:
        # 3 significant digits: log-densities of a few hundred nats lose every digit that EM compares
        raise ValueError(f"`dtype` must be torch.float64 or torch.float32, got {dtype}: half precision is "
                         "too coarse for EM's log-likelihoods")


def _check_positive_definite(t: torch.Tensor, covariance_type: str, name: str) -> None:
    """Raise unless every matrix (full) or entry (diag, spherical) of ``t`` is symmetric positive definite."""
    if covariance_type == "full":
        if not torch.allclose(t, t.mT, rtol=1e-5, atol=1e-8):
            raise ValueError(f"`{name}` must hold symmetric matrices, got an asymmetric one")
        _, info = torch.linalg.cholesky_ex(t)
        if bool((info != 0).any()):
            k = int((info != 0).nonzero()[0])
            raise ValueError(f"`{name}` must hold positive-definite matrices; component {k} is not")
    elif bool((t <= 0).any()):
        raise ValueError(f"`{name}` must be positive for covariance_type={covariance_type!r}, "
                         f"got a minimum of {float(t.min()):.4g}")


# ---------------------------------------------------------------------------- the whole path, for pictures

@dataclass
class EMPath:
    """The parameters after each EM iteration: index t holds θ_t (t = 0 is the initialisation).

    weights (T+1, K), means (T+1, K, D), covariances (T+1, K, D, D) / (T+1, K, D) / (T+1, K),
    log_likelihood (T+1,): the mean log p(x_n | θ_t) per sample, which EM never lowers.
    """
    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor
    log_likelihood: torch.Tensor
    covariance_type: str

    def __len__(self) -> int:
        return self.weights.shape[0]

    def parameters(self, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weights, means, covariances) after ``t`` iterations."""
        return self.weights[t], self.means[t], self.covariances[t]


@torch.no_grad()
def em_path(x: Any, n_components: int, *, n_iter: int = 50, covariance_type: str = "full", reg_covar: float = 1e-6,
            init_params: str = "kmeans++", random_state: Any = 0, **init: Any) -> EMPath:
    """Run ``n_iter`` EM iterations from ``GaussianMixture``'s initialisation and keep every iterate.

    θ_t equals the parameters of ``GaussianMixture(..., max_iter=t, tol=0).fit(x)``; made for
    stepping through EM in a figure or a widget. ``init`` takes ``weights_init``, ``means_init``,
    ``precisions_init``.

    >>> x = torch.tensor([[0.0], [0.5], [1.0], [4.0], [5.0], [5.5]], dtype=torch.float64)
    >>> path = em_path(x, 2, n_iter=4, init_params="random", random_state=3)
    >>> len(path), path.log_likelihood.numpy().round(3).tolist()
    (5, [-2.217, -2.211, -2.199, -2.157, -1.988])
    """
    model = GaussianMixture(n_components, covariance_type=covariance_type, reg_covar=reg_covar, max_iter=n_iter,
                            init_params=init_params, random_state=random_state, **init)
    model._check_hyperparameters()
    dtype = x.dtype if isinstance(x, torch.Tensor) and x.dtype == torch.float32 else torch.float64
    model.dtype = dtype
    X = check_2d(x, "x", dtype=dtype)
    if n_components > X.shape[0]:
        raise ValueError(f"`n_components` must be <= n_samples: got n_components={n_components} "
                         f"but x has n_samples={X.shape[0]} row(s); use fewer components or more data")
    inits = model._check_initial_parameters(X.shape[1], X.device)
    weights, means, covariances, precisions_chol = model._initialize(X, _check_random_state(random_state), inits)
    path = [(weights, means, covariances)]
    log_likelihoods = []
    for _ in range(n_iter + 1):
        log_prob_norm, log_resp = _estimate_log_prob_resp(X, weights, means, precisions_chol, covariance_type)
        log_likelihoods.append(log_prob_norm.mean())
        if len(path) == n_iter + 1:
            break
        nk, means, covariances = _estimate_gaussian_parameters(X, log_resp.exp(), reg_covar, covariance_type)
        weights = nk / nk.sum()
        precisions_chol = _compute_precision_cholesky(covariances, covariance_type)
        path.append((weights, means, covariances))
    return EMPath(*(torch.stack(t) for t in zip(*path)), torch.stack(log_likelihoods), covariance_type)


def start_at_points(x: Any, n_components: int, covariance_type: str = "full",
                    random_state: int = 0) -> dict[str, np.ndarray]:
    """A textbook start for watching EM: means at K distinct random rows of x, every covariance the
    covariance of the whole data set, equal weights; as ``GaussianMixture``'s ``*_init`` keyword arguments.

    >>> init = start_at_points(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]), 2)
    >>> sorted(init), init["means_init"].shape, init["precisions_init"].shape
    (['means_init', 'precisions_init', 'weights_init'], (2, 2), (2, 2, 2))
    """
    x = check_2d(x, "x", dtype=torch.float64).cpu().numpy()
    n_components = check_positive_int(n_components, "n_components")
    if n_components > len(x):
        raise ValueError(f"`n_components` must be <= n_samples = {len(x)}, got {n_components}")
    check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
    idx = np.random.RandomState(random_state).choice(len(x), size=n_components, replace=False)
    cov = np.atleast_2d(np.cov(x.T))  # (D, D)
    if covariance_type == "full":
        precisions = np.repeat(np.linalg.inv(cov)[None], n_components, axis=0)
    elif covariance_type == "diag":
        precisions = np.repeat((1.0 / np.diag(cov))[None], n_components, axis=0)
    else:
        precisions = np.full(n_components, 1.0 / np.diag(cov).mean())
    return {"weights_init": np.full(n_components, 1.0 / n_components), "means_init": x[idx],
            "precisions_init": precisions}
