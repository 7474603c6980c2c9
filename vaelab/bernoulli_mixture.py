"""A finite mixture of Bernoullis fit by EM, in torch: the finite mixture for binary images.

Derived in lesson 06, §6: the same EM as lesson 01's Gaussian mixture, with each component a product
of independent Bernoullis, so ``log p(x)`` is a probability mass (nats) that can be compared with a
VAE whose likelihood is Bernoulli.

    p(x) = Σ_k π_k Π_d p_kd^x_d (1 - p_kd)^(1 - x_d),   x ∈ {0, 1}^D
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ._validation import check_2d, check_choice, check_nonnegative, check_positive_int
from .device import get_device

__all__ = ["BernoulliMixture", "component_log_pmf", "e_step", "m_step", "log_prior"]

# keeps an empty component's weight (and its log) finite, as scikit-learn does for its counts
_TINY = 10 * torch.finfo(torch.float64).eps
# probabilities are clamped to [_CLAMP, 1 - _CLAMP]: with smoothing = 0 a pixel never on in a component
# would get p = 0, and 0 · log 0 inside a matrix product is NaN, not 0
_CLAMP = 1e-10


def _clamp(probs: torch.Tensor) -> torch.Tensor:
    """Clamp to [c, 1 − c] with c at least the dtype's ε: in float32, 1 − 1e-10 rounds to 1 and log1p(−1) = −inf."""
    c = max(_CLAMP, torch.finfo(probs.dtype).eps)
    return probs.clamp(c, 1 - c)


def component_log_pmf(x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
    """Log pmf of each example under each component, of shape (n_samples, n_components).

    ``log p(x | k) = Σ_d x_d log p_kd + (1 - x_d) log(1 - p_kd)``; ``x`` of shape
    (n_samples, n_features) with 0/1 entries, ``probs`` of shape (n_components, n_features) in (0, 1).
    Two matrix products, so it is fast and never forms the (N, K, D) tensor.

    >>> component_log_pmf(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]))
    tensor([[-1.3863]])
    """
    # log1p(-p) is accurate for p near 0, where log(1 - p) loses digits
    return x @ torch.log(probs).T + (1 - x) @ torch.log1p(-probs).T  # (N, K)


def e_step(x: torch.Tensor, weights: torch.Tensor, probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """E-step: return ``(log_prob, log_resp)``, of shapes (n_samples,) and (n_samples, n_components).

    ``log p(x_n) = logsumexp_k [log π_k + log p(x_n | k)]`` and
    ``log γ_nk = log π_k + log p(x_n | k) - log p(x_n)``; log-space, so 64 or 784 pixels never underflow.

    >>> log_prob, log_resp = e_step(torch.tensor([[1.0]]), torch.tensor([0.5, 0.5]), torch.tensor([[0.9], [0.1]]))
    >>> round(float(log_prob), 4), [round(v, 2) for v in log_resp.exp()[0].tolist()]
    (-0.6931, [0.9, 0.1])
    """
    joint = torch.log(weights) + component_log_pmf(x, probs)  # (N, K)
    log_prob = torch.logsumexp(joint, dim=1)  # (N,)
    return log_prob, joint - log_prob[:, None]


def m_step(x: torch.Tensor, resp: torch.Tensor, smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """M-step: return ``(weights, probs)`` of shapes (n_components,) and (n_components, n_features).

    ``N_k = Σ_n γ_nk``, ``π_k = N_k / N``, ``p_kd = (Σ_n γ_nk x_nd + a) / (N_k + 2a)`` with ``a = smoothing``:
    the maximum a posteriori estimate under a Beta(1 + a, 1 + a) prior on every ``p_kd``
    (``a = 0`` is maximum likelihood), which keeps ``p_kd`` away from 0 and 1 so no log(0) appears;
    the result is also clamped to [1e-10, 1 − 1e-10] so that ``a = 0`` stays finite.

    >>> weights, probs = m_step(torch.tensor([[1.0], [0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), smoothing=1.0)
    >>> weights.tolist(), [round(v, 4) for v in probs[:, 0].tolist()]
    ([0.5, 0.5], [0.6667, 0.3333])
    """
    counts = resp.sum(dim=0) + _TINY  # (K,)
    weights = counts / counts.sum()
    probs = (resp.T @ x + smoothing) / (counts[:, None] + 2 * smoothing)  # (K, D)
    return weights, _clamp(probs)


def log_prior(probs: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Log density of the Beta(1 + a, 1 + a) prior on ``probs``, up to a constant (``a = smoothing``).

    EM with ``m_step(..., smoothing=a)`` never lowers ``Σ_n log p(x_n) + log_prior(probs, a)``.

    >>> float(log_prior(torch.tensor([[0.5]]), 0.0))
    0.0
    """
    if smoothing == 0:
        return probs.new_zeros(())
    return smoothing * (torch.log(probs) + torch.log1p(-probs)).sum()


def _check_binary(x: torch.Tensor, name: str) -> torch.Tensor:
    bad = (x != 0) & (x != 1)
    if bad.any():
        first = tuple(int(i) for i in bad.nonzero()[0].tolist())
        raise ValueError(
            f"`{name}` must be binary (every entry 0 or 1), got {int(bad.sum())} other value(s), the first "
            f"{float(x[first]):.4g} at index {first}; binarize it first, e.g. "
            f"vaelab.data.digits(binarize='static')")
    return x


def _kmeans_plusplus(x: torch.Tensor, n_components: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``n_components`` distinct examples, each drawn with probability ∝ its squared
    distance (for 0/1 data, the Hamming distance) to the nearest one already drawn."""
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    dist = ((x - x[first]) ** 2).sum(dim=1)  # (N,)
    for _ in range(1, n_components):
        if float(dist.sum()) > 0:
            nxt = int(torch.multinomial(dist.cpu(), 1, generator=generator))
        else:  # every example is already a seed's duplicate: take any example not yet chosen
            rest = torch.ones(n, dtype=torch.bool)
            rest[chosen] = False
            nxt = int(rest.nonzero()[torch.randint(int(rest.sum()), (1,), generator=generator)])
        chosen.append(nxt)
        dist = torch.minimum(dist, ((x - x[nxt]) ** 2).sum(dim=1))
    return torch.tensor(chosen, device=x.device)


class BernoulliMixture:
    """A mixture of ``n_components`` products of Bernoullis, fit by EM.

    Parameters
    ----------
    n_components : number of components K (1 <= K <= n_samples)
    max_iter : most EM iterations
    tol : stop when the per-example objective rises by less than this
    smoothing : pseudo-count ``a`` of a Beta(1 + a, 1 + a) prior on every probability; 0 is
        maximum likelihood (probabilities may then reach 0 or 1 and a held-out image get log p = -inf)
    init_params : "kmeans++" (each component starts near a distinct training example, drawn far
        from the ones already chosen) or "random" (random responsibilities)
    random_state : seed for the initialisation and for ``sample``; None draws a fresh one
    device, dtype : where and in what precision to compute

    Attributes
    ----------
    weights_ : of shape (n_components,)
    probs_ : of shape (n_components, n_features), each in (0, 1)
    converged_, n_iter_, lower_bound_ : as in scikit-learn; ``lower_bound_`` is the mean
        log-likelihood per example plus the prior's log density divided by n_samples
    lower_bounds_ : that objective after every iteration (EM never lowers it)

    Numpy in -> numpy out, torch in -> torch out.

    >>> X = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]], dtype=torch.float64)
    >>> model = BernoulliMixture(2, random_state=0).fit(X)
    >>> model.predict(X).tolist() in ([0, 0, 1, 1], [1, 1, 0, 0])
    True
    """

    def __init__(self, n_components: int = 1, *, max_iter: int = 100, tol: float = 1e-4,
                 smoothing: float = 1.0, init_params: str = "kmeans++",
                 random_state: int | None = None, device: Any = None, dtype: torch.dtype = torch.float64):
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.smoothing = smoothing
        self.init_params = init_params
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    # ------------------------------------------------------------------ fitting
    def _generator(self) -> torch.Generator:
        seed = self.random_state
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        return torch.Generator().manual_seed(seed)

    def _validate_params(self) -> None:
        check_positive_int(self.n_components, "n_components")
        check_positive_int(self.max_iter, "max_iter")
        check_nonnegative(self.tol, "tol")
        check_nonnegative(self.smoothing, "smoothing")
        check_choice(self.init_params, "init_params", ("kmeans++", "random"))
        if self.random_state is not None:
            check_positive_int(self.random_state, "random_state", minimum=0)
        if not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point:
            raise TypeError(f"`dtype` must be a floating torch dtype such as torch.float64 or torch.float32, "
                            f"got {self.dtype!r}")
        if torch.finfo(self.dtype).bits < 32:
            raise ValueError(f"`dtype` must be torch.float64 or torch.float32, got {self.dtype}: half precision "
                             "is too coarse for EM's log-likelihoods")

    def _initial_resp(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, k = x.shape[0], self.n_components
        if self.init_params == "random":
            resp = torch.rand(n, k, generator=generator, dtype=x.dtype).to(x.device)
            return resp / resp.sum(dim=1, keepdim=True)
        seeds = _kmeans_plusplus(x, k, generator)
        # blended with the data mean so no probability starts at exactly 0 or 1
        probs = _clamp(0.5 * x[seeds] + 0.5 * x.mean(dim=0))
        weights = torch.full((k,), 1.0 / k, dtype=x.dtype, device=x.device)
        return e_step(x, weights, probs)[1].exp()

    def fit(self, X: Any) -> "BernoulliMixture":
        """Fit the mixture to binary ``X`` of shape (n_samples, n_features) by EM; return ``self``."""
        self._validate_params()
        x = _check_binary(check_2d(X, "X", dtype=self.dtype, device=get_device(self.device)), "X")
        n = x.shape[0]
        if self.n_components > n:
            raise ValueError(f"`n_components` must be <= n_samples, got n_components={self.n_components} "
                             f"for {n} samples; use fewer components or more data")
        resp = self._initial_resp(x, self._generator())
        history: list[float] = []
        self.converged_ = False
        for it in range(1, self.max_iter + 1):
            weights, probs = m_step(x, resp, self.smoothing)
            log_prob, log_resp = e_step(x, weights, probs)
            resp = log_resp.exp()
            history.append(float(log_prob.mean() + log_prior(probs, self.smoothing) / n))
            if it > 1 and abs(history[-1] - history[-2]) < self.tol:
                self.converged_ = True
                break
        self.weights_, self.probs_ = weights, probs
        self.n_iter_, self.lower_bound_, self.lower_bounds_ = it, history[-1], history
        self.n_features_in_ = x.shape[1]
        return self

    # ------------------------------------------------------------------ using a fitted model
    def _input(self, X: Any) -> torch.Tensor:
        if not hasattr(self, "probs_"):
            raise ValueError("This BernoulliMixture is not fitted yet; call fit(X) first")
        x = check_2d(X, "X", n_features=self.n_features_in_, dtype=self.dtype, device=self.probs_.device)
        return _check_binary(x, "X")

    @staticmethod
    def _like(result: torch.Tensor, X: Any):
        if isinstance(X, torch.Tensor):
            return result.to(X.device)
        return result.cpu().numpy()

    def score_samples(self, X: Any):
        """Log pmf ``log p(x)`` of each example in nats, of shape (n_samples,)."""
        return self._like(e_step(self._input(X), self.weights_, self.probs_)[0], X)

    def score(self, X: Any) -> float:
        """Mean log pmf per example, in nats."""
        return float(e_step(self._input(X), self.weights_, self.probs_)[0].mean())

    def predict_proba(self, X: Any):
        """Responsibilities ``p(k | x)``, of shape (n_samples, n_components)."""
        return self._like(e_step(self._input(X), self.weights_, self.probs_)[1].exp(), X)

    def predict(self, X: Any):
        """The most responsible component of each example, of shape (n_samples,)."""
        return self._like(e_step(self._input(X), self.weights_, self.probs_)[1].argmax(dim=1), X)

    def n_parameters(self) -> int:
        """Free parameters: ``K - 1`` weights (they sum to 1) plus ``K * D`` probabilities."""
        if not hasattr(self, "probs_"):
            raise ValueError("This BernoulliMixture is not fitted yet; call fit(X) first")
        k, d = self.probs_.shape
        return k - 1 + k * d

    def bic(self, X: Any) -> float:
        """Bayesian information criterion ``-2 Σ log p(x_n) + n_parameters · log N`` (lower is better)."""
        n = self._input(X).shape[0]
        return -2 * self.score(X) * n + self.n_parameters() * math.log(n)

    def aic(self, X: Any) -> float:
        """Akaike information criterion ``-2 Σ log p(x_n) + 2 n_parameters`` (lower is better)."""
        n = self._input(X).shape[0]
        return -2 * self.score(X) * n + 2 * self.n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(X, labels)``: binary images of shape (n_samples, n_features) and their components.

        The same ``random_state`` gives the same draw on every call.
        """
        if not hasattr(self, "probs_"):
            raise ValueError("This BernoulliMixture is not fitted yet; call fit(X) first")
        n_samples = check_positive_int(n_samples, "n_samples")
        generator = self._generator()
        labels = torch.multinomial(self.weights_.cpu(), n_samples, replacement=True, generator=generator)
        x = torch.bernoulli(self.probs_.cpu()[labels], generator=generator)
        return x.to(self.probs_.device), labels.to(self.probs_.device)
