"""The vector-quantized VAE (van den Oord et al., 2017): a discrete latent from a learned codebook.

The encoder maps x to a continuous vector z_e; quantization replaces it by its nearest codebook row
e_k; the decoder sees only e_k. With one code per example the model is a **finite mixture** of K
components p(x|e_k), the road's starting point (lesson 01); with ``n_latents`` = M codes per example
it has K^M components. Derived in lesson 05.

    k(x) = argmin_j ||z_e(x) − e_j||²,   z_q = e_k,
    loss = −log p(x|z_q) + ||sg[z_e] − e_k||² + commitment · ||z_e − sg[e_k]||²

``sg`` stops the gradient. The decoder's gradient reaches the encoder through the straight-through
estimator z_e + sg[z_q − z_e]: its value is z_q, its gradient with respect to z_e the identity.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import torch
from torch import nn

from .._validation import (as_tensor, check_choice, check_finite, check_fraction, check_nonnegative,
                           check_positive_int)
from .vae import LIKELIHOODS, VAE, _data_dim, _linear_layers, _set_obs_scale, mlp

__all__ = [
    "VQVAE",
    "VQTerms",
    "code_usage",
    "dead_codes",
    "nearest_code",
    "perplexity",
    "quantize",
    "squared_distances",
    "straight_through",
    "vq_losses",
]


CODEBOOK_UPDATES = ("ema", "loss")

# ---------------------------------------------------------------- the quantizer as pure functions


def _check_codes(z_e, codebook) -> tuple[torch.Tensor, torch.Tensor]:
    codebook = as_tensor(codebook, "codebook")
    if codebook.ndim != 2 or codebook.shape[0] < 1:
        raise ValueError("`codebook` must be 2-D of shape (n_codes, code_dim) with n_codes >= 1, "
                         f"got shape {tuple(codebook.shape)}")
    z_e = as_tensor(z_e, "z_e", dtype=codebook.dtype, device=codebook.device)
    if z_e.ndim < 1 or z_e.shape[-1] != codebook.shape[1]:
        raise ValueError(f"`z_e` must end in code_dim = {codebook.shape[1]} numbers (the codebook's width), "
                         f"got shape {tuple(z_e.shape)}")
    return check_finite(z_e, "z_e"), check_finite(codebook, "codebook")


def squared_distances(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """||z_e − e_k||² for every vector and every code: (..., code_dim), (K, code_dim) -> (..., K).

    Expanded as ||z||² − 2 z·e + ||e||² so that it is one matrix product, not a (..., K, D) tensor.

    >>> squared_distances(torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 4.0], [1.0, 0.0]]))
    tensor([[25.,  1.]])
    """
    z_e, codebook = _check_codes(z_e, codebook)
    return _squared_distances(z_e, codebook)


def _squared_distances(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    flat = z_e.reshape(-1, z_e.shape[-1])  # (N, D)
    norms = flat.pow(2).sum(-1, keepdim=True) + codebook.pow(2).sum(-1)  # (N, K): ||z||² + ||e||²
    # clamp: the expansion can go slightly negative by rounding when z_e sits on a code
    return torch.addmm(norms, flat, codebook.T, alpha=-2).clamp_min(0).reshape(*z_e.shape[:-1], -1)


def _nearest(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    flat = z_e.reshape(-1, z_e.shape[-1])  # (N, D)
    # ||z||² is the same for every code, so the argmin needs only ||e_k||² − 2 z·e_k: one fused
    # matrix product: 1.1–1.3x faster than torch.cdist, and 4–100x faster than broadcasting
    # (N, 1, D) − (1, K, D), on one CPU thread (benchmarks/bench_vq.py)
    scores = torch.addmm(codebook.pow(2).sum(-1), flat, codebook.T, alpha=-2)  # (N, K)
    return scores.argmin(-1).reshape(z_e.shape[:-1])


def nearest_code(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """The index of the nearest codebook row, k = argmin_j ||z_e − e_j||²: (..., code_dim) -> (...,) int64.

    Ties go to the lowest index.

    >>> nearest_code(torch.tensor([[0.9, 0.1], [-2.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    tensor([1, 0])
    """
    z_e, codebook = _check_codes(z_e, codebook)
    return _nearest(z_e, codebook)


def quantize(z_e: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace each vector by its nearest codebook row: returns (z_q, indices), z_q = codebook[indices].

    Parameters
    ----------
    z_e : tensor of shape (..., code_dim), the encoder's continuous outputs
    codebook : tensor of shape (n_codes, code_dim)

    Returns
    -------
    z_q : tensor of the shape of ``z_e``, every vector exactly a row of ``codebook``
    indices : int64 tensor of shape (...,)

    >>> quantize(torch.tensor([[0.9, 0.1]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    (tensor([[1., 0.]]), tensor([1]))
    """
    z_e, codebook = _check_codes(z_e, codebook)
    indices = _nearest(z_e, codebook)
    return codebook[indices], indices


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_e + sg[z_q − z_e]: the value of z_q, the gradient of z_e (the straight-through estimator).

    argmin has no useful gradient, so the backward pass pretends quantization was the identity:
    ∂loss/∂z_e := ∂loss/∂z_q. The codebook receives no gradient through this path (it learns from
    the codebook loss instead).

    >>> z_e = torch.tensor([0.2, 0.7], requires_grad=True)
    >>> out = straight_through(z_e, torch.tensor([0.0, 1.0]))
    >>> (3 * out).sum().backward(); out.detach(), z_e.grad
    (tensor([0., 1.]), tensor([3., 3.]))
    """
    if z_e.shape != z_q.shape:
        raise ValueError(f"`z_e` and `z_q` must have the same shape, got {tuple(z_e.shape)} and {tuple(z_q.shape)}")
    return z_e + (z_q - z_e).detach()


def vq_losses(z_e: torch.Tensor, z_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The codebook and commitment losses per example: (||sg[z_e] − z_q||², ||z_e − sg[z_q]||²), each (B,).

    Equal in value, different in where the gradient goes: the first moves the codes toward the
    encoder outputs assigned to them (a k-means step), the second keeps the encoder close to its
    code. Summed over every dimension after the batch one.

    >>> vq_losses(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 3.0]]))
    (tensor([4.]), tensor([4.]))
    """
    if z_e.shape != z_q.shape:
        raise ValueError(f"`z_e` and `z_q` must have the same shape, got {tuple(z_e.shape)} and {tuple(z_q.shape)}")
    codebook_loss = (z_e.detach() - z_q).pow(2).flatten(1).sum(-1)
    commitment_loss = (z_e - z_q.detach()).pow(2).flatten(1).sum(-1)
    return codebook_loss, commitment_loss


# ---------------------------------------------------------------- how the codebook is used


def code_usage(indices: torch.Tensor, n_codes: int) -> torch.Tensor:
    """How many times each of the ``n_codes`` codes was chosen: int64 tensor of shape (n_codes,).

    >>> code_usage(torch.tensor([0, 2, 2, 2]), 4)
    tensor([1, 0, 3, 0])
    """
    n_codes = check_positive_int(n_codes, "n_codes")
    indices = torch.as_tensor(indices)
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == torch.bool:
        raise TypeError(f"`indices` must hold integers (code indices), got dtype {indices.dtype}")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= n_codes):
        raise ValueError(f"`indices` must lie in 0 … n_codes − 1 = {n_codes - 1}, got values from "
                         f"{int(indices.min())} to {int(indices.max())}")
    return torch.bincount(indices.flatten().long(), minlength=n_codes)


def perplexity(counts: torch.Tensor) -> float:
    """exp(H(p)) of the usage frequencies p_k = counts_k / Σ counts: the effective number of codes used.

    Between 1 (one code does everything) and K (all codes equally used); 0 · log 0 counts as 0.

    >>> round(perplexity(torch.tensor([5, 5, 0, 0])), 6)
    2.0
    """
    counts = as_tensor(counts, "counts", dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() == 0 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError("`counts` must be a 1-D array of non-negative counts with a positive total, "
                         f"got shape {tuple(counts.shape)} and total {float(counts.sum()) if counts.numel() else 0.0:.4g}")
    p = counts / counts.sum()
    entropy = -torch.special.xlogy(p, p).sum()  # xlogy(0, 0) = 0: unused codes add nothing
    return float(entropy.exp())


def dead_codes(counts: torch.Tensor) -> int:
    """The number of codes that were never chosen (count 0).

    >>> dead_codes(torch.tensor([1, 0, 3, 0]))
    2
    """
    counts = torch.as_tensor(counts)
    if counts.ndim != 1:
        raise ValueError(f"`counts` must be 1-D of shape (n_codes,), got shape {tuple(counts.shape)}")
    return int((counts == 0).sum())


# ---------------------------------------------------------------- the model


class VQTerms(NamedTuple):
    """The pieces of a VQ-VAE's loss, each per example unless said otherwise.

    reconstruction : (B,) log p(x|z_q), summed over data dimensions
    codebook_loss, commitment_loss : (B,) ||sg[z_e] − z_q||² and ||z_e − sg[z_q]||², summed over codes and dimensions
    z_e, z_q : (B, n_latents, code_dim) the encoder's outputs and their quantized values
    indices : (B, n_latents) the chosen codes
    """

    reconstruction: torch.Tensor
    codebook_loss: torch.Tensor
    commitment_loss: torch.Tensor
    z_e: torch.Tensor
    z_q: torch.Tensor
    indices: torch.Tensor


class VQVAE(nn.Module):
    """A vector-quantized autoencoder: x → z_e → nearest of ``n_codes`` codebook rows → p(x|z_q).

    loss = −log p(x|z_q) + ||sg[z_e] − z_q||² + commitment · ||z_e − sg[z_q]||²

    The posterior is one-hot (the nearest code) and the training prior uniform over the codes, so
    KL(q || p) = n_latents · log n_codes, a constant that the loss leaves out. After training,
    :meth:`fit_prior` fits a categorical prior π to the codes the data uses; :meth:`sample` draws
    codes from it and decodes them. With ``n_latents=1`` the model is a finite mixture
    p(x) = Σ_k π_k p(x|e_k), lesson 01's model with components drawn by a decoder.

    Parameters
    ----------
    encoder : nn.Module mapping (B, data_dim) to (B, n_latents · code_dim)
    decoder : nn.Module mapping (B, n_latents · code_dim) to (B, data_dim): Bernoulli logits or Gaussian mean
    n_codes : K, the number of codebook vectors (at least 1)
    n_latents : M, codes per example; the model has K^M components
    commitment : weight of the commitment loss (the β of van den Oord et al.; 0.25 there)
    codebook_update : how the codes learn. "ema" (default): each code is a running mean, with weight
        ``decay`` on the past, of the encoder outputs assigned to it — an online k-means step, the
        M-step of lesson 01 with hard assignments (van den Oord et al., appendix A.1). "loss": the
        optimizer follows the codebook loss' gradient, which with Adam moves a code at most about
        ``lr`` per step, slow for codes that must travel far.
    decay : the EMA's weight on the past, in (0, 1)
    likelihood, obs_scale : p(x|z_q), exactly as for :class:`vaelab.VAE`
    code_dim, data_dim : needed only when they cannot be read off the encoder's nn.Linear layers

    Examples
    --------
    >>> model = VQVAE.mlp(data_dim=4, n_codes=8, code_dim=2, hidden=(16,))
    >>> x = torch.rand(5, 4)
    >>> model.codes(x).shape, model.elbo(x).shape, model.sample(3).shape
    (torch.Size([5, 1]), torch.Size([5]), torch.Size([3, 4]))
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, n_codes: int, n_latents: int = 1,
                 commitment: float = 0.25, codebook_update: str = "ema", decay: float = 0.99,
                 likelihood: str = "bernoulli", obs_scale: float | None = None,
                 code_dim: int | None = None, data_dim: int | None = None):
        super().__init__()
        self.codebook_update = check_choice(codebook_update, "codebook_update", CODEBOOK_UPDATES)
        self.decay = check_fraction(decay, "decay")
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"`{name}` must be a torch.nn.Module, got {type(module).__name__}")
        self.n_codes = check_positive_int(n_codes, "n_codes")
        self.n_latents = check_positive_int(n_latents, "n_latents")
        self.commitment = check_nonnegative(commitment, "commitment")
        self.likelihood = check_choice(likelihood, "likelihood", LIKELIHOODS)
        self.encoder, self.decoder = encoder, decoder
        enc_layers, dec_layers = _linear_layers(encoder), _linear_layers(decoder)
        if code_dim is None:
            if not enc_layers or enc_layers[-1].out_features % self.n_latents:
                raise ValueError("`code_dim` could not be read off the encoder (its last nn.Linear must output "
                                 "n_latents · code_dim numbers); pass code_dim=")
            code_dim = enc_layers[-1].out_features // self.n_latents
        self.code_dim = check_positive_int(code_dim, "code_dim")
        self.data_dim = _data_dim(enc_layers, data_dim)
        width = self.n_latents * self.code_dim
        if enc_layers and enc_layers[-1].out_features != width:
            raise ValueError(f"`encoder` must output n_latents · code_dim = {width} numbers, "
                             f"its last nn.Linear outputs {enc_layers[-1].out_features}")
        if dec_layers and dec_layers[0].in_features != width:
            raise ValueError(f"`decoder` must take n_latents · code_dim = {width} inputs, "
                             f"its first nn.Linear takes {dec_layers[0].in_features}")
        if dec_layers and dec_layers[-1].out_features != self.data_dim:
            raise ValueError(f"`decoder` must output data_dim = {self.data_dim} numbers per example, "
                             f"its last nn.Linear outputs {dec_layers[-1].out_features}")
        # small uniform codes, as in the paper's implementation; init_codebook(x) starts from the data instead
        codebook = torch.empty(self.n_codes, self.code_dim).uniform_(-1 / self.n_codes, 1 / self.n_codes)
        # "loss": the optimizer moves the codes along the codebook loss' gradient;
        # "ema": the codes are running means of the z_e assigned to them (online k-means), no gradient
        self.codebook = nn.Parameter(codebook, requires_grad=self.codebook_update == "loss")
        self.register_buffer("ema_counts", torch.zeros(self.n_codes))
        self.register_buffer("ema_sums", torch.zeros(self.n_codes, self.code_dim))
        # log π of the categorical prior over codes, one row per latent position; zeros = uniform
        self.register_buffer("prior_logits", torch.zeros(self.n_latents, self.n_codes))
        _set_obs_scale(self, likelihood, obs_scale)
        self.config: dict[str, Any] | None = None  # set by VQVAE.mlp: plain data that rebuilds the model

    @classmethod
    def mlp(cls, data_dim: int, n_codes: int, code_dim: int, hidden: Sequence[int] = (256,), *,
            n_latents: int = 1, commitment: float = 0.25, codebook_update: str = "ema", decay: float = 0.99,
            likelihood: str = "bernoulli", obs_scale: float | None = None, activation: str = "relu") -> "VQVAE":
        """A VQ-VAE with MLP networks: data_dim → hidden… → n_latents·code_dim and back (mirrored).

        >>> VQVAE.mlp(64, n_codes=16, code_dim=2, hidden=(32,), n_latents=3).encoder[-1]
        Linear(in_features=32, out_features=6, bias=True)
        """
        data_dim = check_positive_int(data_dim, "data_dim")
        code_dim = check_positive_int(code_dim, "code_dim")
        n_latents = check_positive_int(n_latents, "n_latents")
        hidden = [check_positive_int(h, "hidden") for h in ((hidden,) if isinstance(hidden, int) else hidden)]
        encoder = mlp([data_dim, *hidden, n_latents * code_dim], activation)
        decoder = mlp([n_latents * code_dim, *reversed(hidden), data_dim], activation)
        model = cls(encoder, decoder, n_codes=n_codes, n_latents=n_latents, commitment=commitment,
                    codebook_update=codebook_update, decay=decay, likelihood=likelihood, obs_scale=obs_scale)
        model.config = {"builder": "mlp", "data_dim": data_dim, "n_codes": n_codes, "code_dim": code_dim,
                        "hidden": hidden, "n_latents": n_latents, "commitment": commitment,
                        "codebook_update": codebook_update, "decay": decay,
                        "likelihood": likelihood, "obs_scale": obs_scale, "activation": activation}
        return model

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "VQVAE":
        """Rebuild a model from its ``config`` (used by :func:`vaelab.train.load`)."""
        return cls.mlp(**{k: v for k, v in config.items() if k != "builder"})

    # p(x|z) and the data checks are the VAE's, unchanged (lesson 03)
    decode = VAE.decode
    check_data = VAE.check_data
    obs_scale = VAE.obs_scale

    # ---------------------------------------------------------------- encode and quantize

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(x)
        if h.shape[-1] != self.n_latents * self.code_dim:
            raise ValueError(f"`encoder` must output n_latents · code_dim = {self.n_latents * self.code_dim} "
                             f"numbers, got shape {tuple(h.shape)}")
        return h.reshape(*h.shape[:-1], self.n_latents, self.code_dim)  # (B, M, D)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's continuous outputs z_e, of shape (B, n_latents, code_dim)."""
        return self._encode(self.check_data(x, "x"))

    def quantize(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_q, indices): each vector of ``z_e`` replaced by its nearest codebook row (see :func:`quantize`)."""
        indices = _nearest(z_e, self.codebook)  # (B, M)
        return self.codebook[indices], indices

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The code each example is sent to, int64 of shape (B, n_latents)."""
        return self.quantize(self.encode(x))[1]

    def terms(self, x: torch.Tensor) -> VQTerms:
        """Reconstruction, codebook and commitment losses per example on a checked batch (no input checks)."""
        z_e = self._encode(x)  # (B, M, D)
        z_q, indices = self.quantize(z_e)
        # the decoder sees the value of z_q; the encoder receives the decoder's gradient as if z_q were z_e
        z = straight_through(z_e, z_q).flatten(1)  # (B, M·D)
        reconstruction = self.decode(z).log_prob(x)  # (B,)
        codebook_loss, commitment_loss = vq_losses(z_e, z_q)
        return VQTerms(reconstruction, codebook_loss, commitment_loss, z_e, z_q, indices)

    def _kl(self, indices: torch.Tensor) -> torch.Tensor:
        """KL(one-hot q || π) = −Σ_m log π_m(k_m) per example (n_latents · log K for the uniform prior)."""
        log_prior = self.prior_logits.log_softmax(-1)  # (M, K)
        rows = torch.arange(self.n_latents, device=indices.device)
        return -log_prior[rows, indices].sum(-1)  # (B,)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """ℒ(x) = log p(x|z_q(x)) + Σ_m log π_m(k_m(x)) per example, of shape (B,): a bound on log p(x).

        The posterior puts all its mass on the nearest codes, so E_q[log p(x|z)] is one term and the
        KL is −log π of the chosen codes (log K per code under the uniform training prior).
        """
        x = self.check_data(x, "x")
        terms = self.terms(x)
        return terms.reconstruction - self._kl(terms.indices)

    def loss(self, x: torch.Tensor, *, beta: float = 1.0, free_bits: float = 0.0
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The VQ-VAE loss on a checked batch, and its metrics (what :func:`vaelab.fit` calls).

        ``beta`` and ``free_bits`` concern a KL term, which a VQ-VAE does not train: they are ignored.
        Metrics, batch means: "loss", "elbo", "reconstruction", "kl" (the constant −log π), "codebook",
        "commitment", "perplexity" (of the codes used in the batch).
        """
        terms = self.terms(x)
        if self.training and self.codebook_update == "ema":
            self._ema_step(terms.z_e.detach(), terms.indices)
        loss = (-terms.reconstruction + terms.codebook_loss + self.commitment * terms.commitment_loss).mean()
        with torch.no_grad():
            counts = torch.bincount(terms.indices.flatten(), minlength=self.n_codes).to(x.dtype)
            p = counts / counts.sum()
            reconstruction, kl = terms.reconstruction.mean(), self._kl(terms.indices).mean()
            metrics = {"loss": loss.detach(), "elbo": reconstruction - kl, "reconstruction": reconstruction,
                       "kl": kl, "codebook": terms.codebook_loss.mean(), "commitment": terms.commitment_loss.mean(),
                       "perplexity": torch.exp(-torch.special.xlogy(p, p).sum())}
        return loss, metrics

    # ---------------------------------------------------------------- the codebook and the prior

    @torch.no_grad()
    def _ema_step(self, z_e: torch.Tensor, indices: torch.Tensor) -> None:
        """Move each used code to the running mean of the z_e assigned to it (online k-means)."""
        # the running sums stay in the codebook's dtype (z_e may be bfloat16 under fit's autocast)
        z_e, indices = z_e.reshape(-1, self.code_dim).to(self.ema_sums.dtype), indices.reshape(-1)  # (B·M, D), (B·M,)
        counts = torch.bincount(indices, minlength=self.n_codes).to(z_e.dtype)  # (K,)
        sums = torch.zeros_like(self.ema_sums).index_add_(0, indices, z_e)  # (K, D): Σ of assigned z_e
        self.ema_counts.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sums.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # both running sums decay alike, so their ratio is a weighted mean of past assignments; a code
        # whose weight has faded keeps its place (and the tiny numbers are zeroed: no denormals)
        faded = self.ema_counts < 1e-6
        self.ema_counts[faded], self.ema_sums[faded] = 0.0, 0.0
        alive = ~faded
        self.codebook[alive] = self.ema_sums[alive] / self.ema_counts[alive, None]

    @torch.no_grad()
    def usage(self, x: torch.Tensor) -> torch.Tensor:
        """How often each code is chosen over ``x`` (all latent positions), int64 of shape (n_codes,)."""
        return code_usage(self.codes(x), self.n_codes)

    @torch.no_grad()
    def init_codebook(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> "VQVAE":
        """Set the codebook to the encoder outputs of ``n_codes`` random examples of ``x`` (a data-based start)."""
        z_e = self.encode(x).reshape(-1, self.code_dim)  # (B·M, D)
        if z_e.shape[0] < self.n_codes:
            raise ValueError(f"`x` must give at least n_codes = {self.n_codes} encoder outputs, got {z_e.shape[0]}")
        pick = torch.randperm(z_e.shape[0], generator=generator)[: self.n_codes].to(z_e.device)
        self.codebook.copy_(z_e[pick])
        self.ema_counts.zero_()  # forget the running means, or the next EMA step would undo this
        self.ema_sums.zero_()
        return self

    @torch.no_grad()
    def reset_dead_codes(self, x: torch.Tensor, *, generator: torch.Generator | None = None) -> int:
        """Move every code that no example of ``x`` uses onto a random encoder output; return how many moved.

        A dead code gets no gradient from the codebook loss (no z_e is assigned to it), so it never
        moves by itself: restarting it where the data is gives it a chance to be chosen.
        """
        z_e = self.encode(x).reshape(-1, self.code_dim)  # (B·M, D)
        dead = (code_usage(self.quantize(z_e)[1], self.n_codes) == 0).nonzero().flatten()
        if len(dead):
            pick = torch.randint(z_e.shape[0], (len(dead),), generator=generator).to(z_e.device)
            self.codebook[dead] = z_e[pick]
            self.ema_counts[dead] = 0.0  # forget their running means, or the next EMA step would move them back
            self.ema_sums[dead] = 0.0
        return len(dead)

    @torch.no_grad()
    def fit_prior(self, x: torch.Tensor, *, pseudocount: float = 1.0) -> "VQVAE":
        """Fit the categorical prior π_m(k) ∝ count_m(k) + pseudocount to the codes of ``x``, per position.

        ``pseudocount=0`` is the maximum-likelihood fit (unused codes get probability 0); the default
        adds one imaginary use of every code (Laplace's rule), so no code is impossible.
        """
        pseudocount = check_nonnegative(pseudocount, "pseudocount")
        indices = self.codes(x)  # (B, M)
        counts = torch.stack([torch.bincount(indices[:, m], minlength=self.n_codes)
                              for m in range(self.n_latents)]).to(self.prior_logits.dtype)  # (M, K)
        self.prior_logits.copy_((counts + pseudocount).log())  # log of unnormalised π; log_softmax normalises
        return self

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x) = log Σ_k π_k p(x|e_k) per example, of shape (B,), with π = :attr:`prior_probs`.

        With one code per example the model is a finite mixture of ``n_codes`` components, so its
        likelihood is one log-sum-exp (lesson 01); the ELBO falls short of it by −log γ_k(x) of the
        chosen code. ``n_latents`` > 1 would need a sum over n_codes**n_latents combinations.

        >>> _ = torch.manual_seed(0); model = VQVAE.mlp(4, n_codes=8, code_dim=2, hidden=(16,))
        >>> x = torch.bernoulli(torch.full((3, 4), 0.5))
        >>> bool((model.elbo(x) <= model.log_prob(x) + 1e-5).all())
        True
        """
        if self.n_latents != 1:
            raise ValueError(f"log_prob sums over every combination of codes, n_codes**n_latents = "
                             f"{self.n_codes}**{self.n_latents} here; it is computed for n_latents = 1 only")
        x = self.check_data(x, "x")
        log_px_k = self.decode(self.codebook[:, None, :].to(x.dtype)).log_prob(x)  # (K, B): log p(x | e_k)
        log_pi = self.prior_logits[0].log_softmax(-1).to(log_px_k.dtype)  # (K,)
        return torch.logsumexp(log_px_k + log_pi[:, None], dim=0)

    @property
    def prior_probs(self) -> torch.Tensor:
        """π, the categorical prior over codes, of shape (n_latents, n_codes); uniform until :meth:`fit_prior`."""
        return self.prior_logits.softmax(-1)

    @torch.no_grad()
    def decode_codes(self, indices: torch.Tensor, *, mean: bool = True) -> torch.Tensor:
        """Decode code indices of shape (B, n_latents): E[x|z_q] (``mean=True``) or a draw, (B, data_dim)."""
        indices = torch.as_tensor(indices, device=self.codebook.device)
        if indices.ndim == 1 and self.n_latents == 1:
            indices = indices[:, None]
        if indices.ndim != 2 or indices.shape[1] != self.n_latents:
            raise ValueError(f"`indices` must have shape (B, n_latents = {self.n_latents}), got {tuple(indices.shape)}")
        code_usage(indices, self.n_codes)  # checks dtype and range
        p = self.decode(self.codebook[indices].flatten(1))
        return p.mean if mean else p.sample()

    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = False) -> torch.Tensor:
        """Draw ``n`` points: codes k_m ~ π_m, then x ~ p(x|e_k) (``mean=True``: E[x|e_k]), (n, data_dim)."""
        n = check_positive_int(n, "n")
        indices = torch.multinomial(self.prior_probs, n, replacement=True).T  # (n, M)
        return self.decode_codes(indices, mean=mean)
