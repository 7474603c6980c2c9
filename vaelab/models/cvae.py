"""The conditional VAE (Sohn et al., 2015): encoder and decoder both see a condition c.

    ℒ(x | c) = E_{q(z|x,c)}[log p_θ(x|z,c)] − KL(q_φ(z|x,c) || p(z)) ≤ log p(x|c)

With c the one-hot label of a digit, c says *which* digit and z is left to hold the rest (slant,
thickness, style): sample z ~ p(z), pick c, decode — digits on demand. Fix c and the model is an
ordinary VAE of x, so the bounds and the training are lesson 03's. Derived in lesson 05.
"""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import torch
from torch import nn
from torch.distributions import Distribution

from .. import continuous, objectives
from .._validation import as_tensor, check_choice, check_finite, check_nonnegative, check_positive_int
from ..priors import Prior, StandardNormal
from .vae import VAE, ELBOTerms, _linear_layers, _sum_dtype, mlp

__all__ = ["CVAE", "one_hot"]


def one_hot(labels: Any, n_classes: int) -> torch.Tensor:
    """Labels of shape (B,) in 0 … n_classes − 1 -> one-hot rows of shape (B, n_classes), float32.

    A label enters the networks as a one-hot vector, not as the number itself: as a number, 7
    would sit closer to 8 than to 1, an order the classes do not have.

    >>> one_hot(torch.tensor([2, 0]), 3)
    tensor([[0., 0., 1.],
            [1., 0., 0.]])
    """
    n_classes = check_positive_int(n_classes, "n_classes")
    labels = torch.as_tensor(labels)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"`labels` must hold integer class labels, got dtype {labels.dtype}")
    if labels.ndim != 1:
        raise ValueError(f"`labels` must be 1-D of shape (n_samples,), got shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"`labels` must lie in 0 … {n_classes - 1} (n_classes = {n_classes}), got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    return nn.functional.one_hot(labels.long(), n_classes).float()


class _Given:
    """A CVAE with its condition c fixed, which is a VAE of x: VAE's methods run on it unchanged."""

    def __init__(self, model: "CVAE", c: torch.Tensor):
        self.model, self.c = model, c

    def encode_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode_params(x, self.c)

    def decode(self, z: torch.Tensor) -> Distribution:
        return self.model.decode(z, self.c)

    def elbo_terms(self, x: torch.Tensor, **kwargs) -> ELBOTerms:
        return VAE.elbo_terms(self, x, **kwargs)

    def __getattr__(self, name: str):  # prior, latent_dim, data_dim, posterior, …
        return getattr(self.model, name)


class CVAE(VAE):
    """A conditional VAE: q_φ(z|x, c), p_θ(x|z, c), p(z), for a one-hot condition c of ``n_classes``.

    The encoder reads the concatenation [x, c] and the decoder [z, c]. The prior is one fixed p(z)
    for every class (default N(0, I)), not the learned p(z|c) network of Sohn et al. (2015): the KL
    term then pulls q(z|x, c) of every class toward the same p(z), which pushes z to be independent
    of c — the class is left to c, and z holds what the classes share (style).

    Parameters
    ----------
    encoder : nn.Module mapping (B, data_dim + n_classes) to (B, 2·latent_dim): mean then log-variance
    decoder : nn.Module mapping (B, latent_dim + n_classes) to (B, data_dim)
    n_classes : width of the one-hot condition
    likelihood, obs_scale, prior, latent_dim, data_dim : as for :class:`VAE`

    Every method that takes a condition accepts it as integer labels of shape (B,) or as rows of
    shape (B, n_classes) (one-hot, or any mixture of classes). Train with
    ``vaelab.fit(model, (x, labels), ...)``.

    Examples
    --------
    >>> model = CVAE.mlp(data_dim=4, n_classes=3, latent_dim=2, hidden=(8,))
    >>> x, c = torch.rand(5, 4), torch.tensor([0, 1, 2, 0, 1])
    >>> model.elbo(x, c).shape, model.sample(6, c=2).shape
    (torch.Size([5]), torch.Size([6, 4]))
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, n_classes: int, likelihood: str = "bernoulli",
                 obs_scale: float | None = None, prior: Prior | None = None, latent_dim: int | None = None,
                 data_dim: int | None = None):
        n_classes = check_positive_int(n_classes, "n_classes")
        if data_dim is None and isinstance(encoder, nn.Module):
            enc_layers = _linear_layers(encoder)
            if not enc_layers:
                raise ValueError("`data_dim` could not be read off the encoder (it has no nn.Linear); pass data_dim=")
            data_dim = enc_layers[0].in_features - n_classes
            if data_dim < 1:
                raise ValueError(f"`encoder` must take data_dim + n_classes inputs, its first nn.Linear takes "
                                 f"{enc_layers[0].in_features} <= n_classes = {n_classes}")
        if not isinstance(decoder, nn.Module):
            raise TypeError(f"`decoder` must be a torch.nn.Module, got {type(decoder).__name__}")
        # VAE checks that a decoder takes latent_dim inputs; this one takes latent_dim + n_classes,
        # so it is checked below and handed to VAE afterwards
        super().__init__(encoder, nn.Identity(), likelihood=likelihood, obs_scale=obs_scale, prior=prior,
                         latent_dim=latent_dim, data_dim=data_dim)
        self.decoder, self.n_classes = decoder, n_classes
        dec_layers = _linear_layers(decoder)
        if dec_layers and dec_layers[-1].out_features != self.data_dim:
            raise ValueError(f"`decoder` must output data_dim = {self.data_dim} numbers per example, "
                             f"its last nn.Linear outputs {dec_layers[-1].out_features}")
        for name, module, width, what in (("encoder", encoder, self.data_dim + n_classes, "data_dim + n_classes"),
                                          ("decoder", decoder, self.latent_dim + n_classes, "latent_dim + n_classes")):
            layers = _linear_layers(module)
            if layers and layers[0].in_features != width:
                joined = "[x, c]" if name == "encoder" else "[z, c]"
                raise ValueError(f"`{name}` must take {what} = {width} inputs ({joined} concatenated), "
                                 f"its first nn.Linear takes {layers[0].in_features}")

    @classmethod
    def mlp(cls, data_dim: int, n_classes: int, latent_dim: int, hidden: Sequence[int] = (256,), *,
            likelihood: str = "bernoulli", obs_scale: float | None = None, activation: str = "relu",
            prior: Prior | None = None) -> "CVAE":
        """A CVAE with MLP networks: [x, c] → hidden… → 2·latent_dim and [z, c] → reversed(hidden)… → data_dim.

        >>> CVAE.mlp(64, 10, 2, hidden=(32,)).decoder[0]
        Linear(in_features=12, out_features=32, bias=True)
        """
        data_dim = check_positive_int(data_dim, "data_dim")
        n_classes = check_positive_int(n_classes, "n_classes")
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        hidden = [check_positive_int(h, "hidden") for h in ((hidden,) if isinstance(hidden, int) else hidden)]
        encoder = mlp([data_dim + n_classes, *hidden, 2 * latent_dim], activation)
        decoder = mlp([latent_dim + n_classes, *reversed(hidden), data_dim], activation)
        model = cls(encoder, decoder, n_classes=n_classes, likelihood=likelihood, obs_scale=obs_scale, prior=prior)
        # plain data that rebuilds the model (vaelab.train.load); a custom prior has no such data
        plain_prior = prior is None or type(prior) is StandardNormal
        model.config = None if not plain_prior else {
            "builder": "mlp", "data_dim": data_dim, "n_classes": n_classes, "latent_dim": latent_dim,
            "hidden": hidden, "likelihood": likelihood, "obs_scale": obs_scale, "activation": activation}
        return model

    # ---------------------------------------------------------------- the condition

    def check_condition(self, c: Any, n_rows: int | None = None, name: str = "c") -> torch.Tensor:
        """``c`` as float rows of shape (n_rows, n_classes) on the model's device: labels become one-hot."""
        ref = next(self.parameters())
        if isinstance(c, numbers.Integral) and not isinstance(c, bool):
            if n_rows is None:
                raise ValueError(f"`{name}` must be labels of shape (B,) or rows of shape (B, {self.n_classes}), got {c}")
            c = torch.full((n_rows,), int(c), dtype=torch.long)
        c = torch.as_tensor(c) if not isinstance(c, torch.Tensor) else c
        if c.is_floating_point() and c.ndim == 1:
            # labels that went through a float conversion (e.g. vaelab.fit's as_tensor) are still labels
            if not torch.equal(c, c.round()):
                raise ValueError(f"`{name}` of shape {tuple(c.shape)} must hold integer class labels, "
                                 f"or pass one-hot rows of shape (B, {self.n_classes})")
            c = c.long()
        if c.is_floating_point():
            if c.ndim != 2 or c.shape[1] != self.n_classes:
                width = f"{c.shape[1]} columns" if c.ndim == 2 else f"shape {tuple(c.shape)}"
                raise ValueError(f"`{name}` must have n_classes = {self.n_classes} columns (one-hot rows), got {width}")
            c = check_finite(as_tensor(c, name, dtype=ref.dtype, device=ref.device), name)
        else:
            if c.ndim == 2:
                raise ValueError(f"`{name}` of shape {tuple(c.shape)} holds integers: pass one-hot rows as floats "
                                 f"or the labels themselves, of shape (B,)")
            try:
                c = one_hot(c, self.n_classes).to(device=ref.device, dtype=ref.dtype)
            except (TypeError, ValueError) as err:
                raise type(err)(str(err).replace("`labels`", f"`{name}`")) from None
        if n_rows is not None and c.shape[0] != n_rows:
            raise ValueError(f"`{name}` must have one row per example ({n_rows}), got {c.shape[0]}")
        return c

    def check_data(self, X: Any, name: str = "X") -> tuple[torch.Tensor, torch.Tensor]:
        """The pair ``(x, c)`` checked: x of shape (n, data_dim), c as one-hot rows of shape (n, n_classes)."""
        if not (isinstance(X, (tuple, list)) and len(X) == 2):
            raise TypeError(f"`{name}` must be a pair (x, c) for a CVAE: images and their labels, "
                            f"e.g. fit(model, (x, y), ...); got {type(X).__name__}")
        x = super().check_data(X[0], name)
        return x, self.check_condition(X[1], x.shape[0], "c")

    # ---------------------------------------------------------------- the distributions

    def encode_params(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's outputs (mu, logvar) from [x, c], each of shape (B, latent_dim) (no input checks)."""
        return super().encode_params(torch.cat([x, c], dim=-1))

    def encode(self, x: torch.Tensor, c: Any) -> Distribution:
        """q_φ(z|x, c) = N(mu(x, c), diag exp(logvar(x, c))): batch shape (B,), event shape (latent_dim,)."""
        x, c = self.check_data((x, c), "x")
        return self.posterior(*self.encode_params(x, c))

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> Distribution:
        """p_θ(x|z, c) from the decoder on [z, c]; ``c`` of shape (B, n_classes) (no input checks)."""
        c = c.expand(*z.shape[:-1], c.shape[-1])  # z may carry a leading sample axis (IWAE): (k, B, L)
        return super().decode(torch.cat([z, c], dim=-1))

    # ---------------------------------------------------------------- bounds on log p(x | c)

    def elbo_terms(self, x: torch.Tensor, c: torch.Tensor, *, mc_kl: bool = False) -> ELBOTerms:
        """Reconstruction and KL per example given c (one reparameterized sample; no input checks)."""
        return VAE.elbo_terms(_Given(self, c), x, mc_kl=mc_kl)

    def elbo(self, x: torch.Tensor, c: Any, beta: float = 1.0, *, mc_kl: bool = False) -> torch.Tensor:
        """ℒ(x|c) = E_q[log p(x|z,c)] − β KL(q(z|x,c) || p(z)) per example, of shape (B,)."""
        beta = check_nonnegative(beta, "beta")
        x, c = self.check_data((x, c), "x")
        terms = self.elbo_terms(x, c, mc_kl=mc_kl)
        return objectives.elbo(terms.reconstruction, terms.kl, beta)

    def log_weights(self, x: torch.Tensor, c: torch.Tensor, k: int) -> torch.Tensor:
        """log w_i = log p(x|z_i,c) + log p(z_i) − log q(z_i|x,c), of shape (k, B) (no input checks)."""
        return VAE.log_weights(_Given(self, c), x, k)

    def iwae(self, x: torch.Tensor, c: Any, k: int) -> torch.Tensor:
        """The importance-weighted bound on log p(x|c) with ``k`` samples, of shape (B,)."""
        k = check_positive_int(k, "k")
        x, c = self.check_data((x, c), "x")
        return objectives.iwae(self.log_weights(x, c, k))

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, c: Any, method: str = "quadrature", n: int | None = None, *,
                 rule: str = "grid") -> torch.Tensor:
        """log p(x|c) = log ∫ p_θ(x|z, c) p(z) dz per example, of shape (B,): the ground truth for latent_dim ≤ 2.

        For each condition, the integral is summed on the latent grid of :meth:`VAE.log_prob` (same
        ``n`` and ``rule``, same accuracy); ``c`` is one label for all (an int), labels of shape (B,)
        or rows of shape (B, n_classes).

        >>> _ = torch.manual_seed(0); model = CVAE.mlp(4, n_classes=2, latent_dim=2, hidden=(8,))
        >>> x = torch.bernoulli(torch.full((3, 4), 0.5))
        >>> bool((model.iwae(x, 1, k=100) <= model.log_prob(x, 1) + 0.05).all())
        True
        """
        check_choice(method, "method", ("quadrature",))
        check_choice(rule, "rule", ("grid", "gauss-hermite"))
        if self.latent_dim > 2:
            raise ValueError(f"log_prob sums p(x|z,c) p(z) over a grid of n**latent_dim nodes and works for latent_dim "
                             f"≤ 2, got latent_dim={self.latent_dim}; use the importance-weighted bound "
                             "cvae.iwae(x, c, k) (a lower bound on log p(x|c)) instead")
        if rule == "gauss-hermite" and not isinstance(self.prior, StandardNormal):
            raise ValueError(f"rule='gauss-hermite' is the rule for the prior N(0, I), got {type(self.prior).__name__}; "
                             "use rule='grid' (any prior)")
        if n is None:
            n = (4000 if self.latent_dim == 1 else 400) if rule == "grid" else (200 if self.latent_dim == 1 else 100)
        n = check_positive_int(n, "n")
        x, c = self.check_data((x, c), "x")
        out = torch.empty(x.shape[0], dtype=_sum_dtype(x), device=x.device)
        conditions, which = torch.unique(c, dim=0, return_inverse=True)  # one grid sum per distinct condition
        for j, row in enumerate(conditions):
            rows = which == j
            out[rows] = continuous.grid_log_prob(lambda z: self.decode(z, row.expand(z.shape[0], -1)), self.prior,
                                                 x[rows], self.latent_dim, n, rule=rule, model_dtype=x.dtype,
                                                 dtype=out.dtype)
        return out

    @torch.no_grad()
    def sample(self, n: int, c: Any, *, mean: bool = False) -> torch.Tensor:
        """Draw ``n`` points x ~ p(x|c) = ∫ p(x|z,c) p(z) dz, of shape (n, data_dim).

        ``c`` is one class label for all (an int), labels of shape (n,), or rows of shape (n, n_classes).
        ``mean=True`` returns E[x|z,c] (Bernoulli probabilities or f(z, c)) instead of a noisy draw.
        """
        n = check_positive_int(n, "n")
        c = self.check_condition(c, n)
        p = self.decode(self.prior.sample(n), c)
        return p.mean if mean else p.sample()

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor], *, beta: float = 1.0, free_bits: float = 0.0
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The VAE's training loss on a checked batch ``(x, c)`` (what :func:`vaelab.fit` calls)."""
        x, c = batch
        return VAE.loss(_Given(self, c), x, beta=beta, free_bits=free_bits)
