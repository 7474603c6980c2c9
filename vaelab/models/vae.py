"""The variational autoencoder: a learned infinite mixture p(x) = ∫ p_θ(x|z) p(z) dz with an
amortized posterior q_φ(z|x). Derived in lesson 03.

Encoder: x -> 2·latent_dim numbers, mean then log-variance (``chunk(2)``) of q(z|x) = N(mu, diag σ²).
Decoder: z -> logits of a Bernoulli per pixel, or the mean f(z) of N(f(z), obs_scale² I).
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from .. import continuous, objectives
from .._validation import (check_2d, check_choice, check_nonnegative, check_positive, check_positive_int)
from ..priors import Prior, StandardNormal

__all__ = ["VAE", "ELBOTerms", "mlp"]

LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "silu": nn.SiLU, "softplus": nn.Softplus}
# iwae() evaluates the decoder on k·B latent samples; it does so in chunks of at most this many
# (sample, example) rows, so a large k (held-out log p(x) with k in the 1000s) needs bounded memory:
# each hidden layer of width H holds rows·H numbers at a time
_IWAE_CHUNK_ROWS = 2 ** 16


def _sum_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for the quadrature sums, except on Apple's MPS, which has no float64."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def mlp(sizes: Sequence[int], activation: str = "relu") -> nn.Sequential:
    """A multilayer perceptron: Linear layers of the given ``sizes`` with ``activation`` between them.

    >>> mlp([4, 8, 2])
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=2, bias=True)
    )
    """
    check_choice(activation, "activation", tuple(ACTIVATIONS))
    sizes = [check_positive_int(s, "sizes") for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"`sizes` must list at least an input and an output size, got {sizes}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i > 0:
            layers.append(ACTIVATIONS[activation]())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


class ELBOTerms(NamedTuple):
    """The pieces of a one-sample ELBO, each per example.

    reconstruction : (B,) log p(x|z) at z ~ q(z|x), summed over data dimensions
    kl : (B,) KL(q(z|x) || p(z)), analytic when the prior has one, else a one-sample estimate
    kl_per_dim : (B, latent_dim) KL per latent dimension (standard-normal prior), else None
    z : (B, latent_dim) the sample used;  mu, logvar : (B, latent_dim) the encoder's outputs
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor | None
    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor


def _linear_layers(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _data_dim(enc_layers: list[nn.Linear], data_dim: int | None) -> int:
    """``data_dim`` as given, else the input width of the encoder's first nn.Linear."""
    if data_dim is None:
        if not enc_layers:
            raise ValueError("`data_dim` could not be read off the encoder (it has no nn.Linear); pass data_dim=")
        data_dim = enc_layers[0].in_features
    return check_positive_int(data_dim, "data_dim")


def _set_obs_scale(model: nn.Module, likelihood: str, obs_scale: float | None) -> None:
    """Give ``model`` its ``log_obs_scale``: a parameter (learned σ), a buffer (fixed σ) or None (Bernoulli)."""
    if likelihood == "bernoulli" and obs_scale is not None:
        raise ValueError("`obs_scale` applies to likelihood='gaussian' only; a Bernoulli has no scale, "
                         f"got obs_scale={obs_scale!r}")
    if likelihood == "gaussian" and obs_scale is None:
        # log-scale parameter: σ = exp(s) stays positive whatever the optimizer does to s
        model.log_obs_scale = nn.Parameter(torch.zeros(()))
    elif likelihood == "gaussian":
        model.register_buffer("log_obs_scale", torch.tensor(math.log(check_positive(obs_scale, "obs_scale"))))
    else:
        model.log_obs_scale = None
    model.learn_obs_scale = likelihood == "gaussian" and obs_scale is None


class VAE(nn.Module):
    """A variational autoencoder: decoder p_θ(x|z), encoder q_φ(z|x), prior p(z).

    ℒ(x) = E_q[log p_θ(x|z)] − KL(q_φ(z|x) || p(z)) ≤ log p(x) = log ∫ p_θ(x|z) p(z) dz.

    Parameters
    ----------
    encoder : nn.Module mapping x of shape (B, data_dim) to (B, 2·latent_dim): mean then log-variance
    decoder : nn.Module mapping z of shape (B, latent_dim) to (B, data_dim): Bernoulli logits or Gaussian mean
    likelihood : "bernoulli" (data in [0, 1]) or "gaussian" (real data)
    obs_scale : fixed standard deviation σ of the Gaussian likelihood; None learns one σ shared by all
        dimensions (stored as ``log_obs_scale``). Only for ``likelihood="gaussian"``.
    prior : a :class:`vaelab.priors.Prior`; default ``StandardNormal(latent_dim)``
    latent_dim, data_dim : needed only when they cannot be read off the first and last
        ``nn.Linear`` layers of the encoder

    Examples
    --------
    >>> model = VAE.mlp(data_dim=4, latent_dim=2, hidden=(8,))
    >>> model.elbo(torch.rand(3, 4)).shape
    torch.Size([3])
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, likelihood: str = "bernoulli",
                 obs_scale: float | None = None, prior: Prior | None = None,
                 latent_dim: int | None = None, data_dim: int | None = None):
        super().__init__()
        for name, module in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(module, nn.Module):
                raise TypeError(f"`{name}` must be a torch.nn.Module, got {type(module).__name__}")
        self.likelihood = check_choice(likelihood, "likelihood", LIKELIHOODS)
        self.encoder, self.decoder = encoder, decoder
        if prior is not None and not isinstance(prior, Prior):
            raise TypeError(f"`prior` must be a vaelab.priors.Prior, got {type(prior).__name__}")
        enc_layers = _linear_layers(encoder)
        if latent_dim is None:
            if enc_layers and enc_layers[-1].out_features % 2 == 0:
                latent_dim = enc_layers[-1].out_features // 2
            elif prior is not None:
                latent_dim = prior.latent_dim
            else:
                raise ValueError("`latent_dim` could not be read off the encoder (its last nn.Linear must "
                                 "output 2·latent_dim numbers); pass latent_dim=")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.data_dim = _data_dim(enc_layers, data_dim)
        if enc_layers and enc_layers[-1].out_features != 2 * self.latent_dim:
            raise ValueError(f"`encoder` must output 2·latent_dim = {2 * self.latent_dim} numbers (mean then "
                             f"log-variance), its last nn.Linear outputs {enc_layers[-1].out_features}")
        dec_layers = _linear_layers(decoder)
        if dec_layers and dec_layers[0].in_features != self.latent_dim:
            raise ValueError(f"`decoder` must take latent_dim = {self.latent_dim} inputs, "
                             f"its first nn.Linear takes {dec_layers[0].in_features}")
        if dec_layers and dec_layers[-1].out_features != self.data_dim:
            raise ValueError(f"`decoder` must output data_dim = {self.data_dim} numbers per example, "
                             f"its last nn.Linear outputs {dec_layers[-1].out_features}")
        if prior is None:
            prior = StandardNormal(self.latent_dim)
        if prior.latent_dim != self.latent_dim:
            raise ValueError(f"`prior` has latent_dim {prior.latent_dim}, the model has {self.latent_dim}")
        self.prior = prior
        _set_obs_scale(self, likelihood, obs_scale)
        self.config: dict[str, Any] | None = None  # set by VAE.mlp: plain data that rebuilds the model

    # ---------------------------------------------------------------- the builder

    @classmethod
    def mlp(cls, data_dim: int, latent_dim: int, hidden: Sequence[int] = (256,), *,
            likelihood: str = "bernoulli", obs_scale: float | None = None, activation: str = "relu",
            prior: Prior | None = None) -> "VAE":
        """A VAE whose encoder and decoder are MLPs with the ``hidden`` layer sizes (mirrored in the decoder).

        Encoder data_dim → hidden… → 2·latent_dim, decoder latent_dim → reversed(hidden)… → data_dim.
        The default ``hidden=(256,)`` is the one hidden layer of 256 units of the tutorial code lesson 03 repairs.

        >>> VAE.mlp(64, 2, hidden=(32, 16)).decoder[0]
        Linear(in_features=2, out_features=16, bias=True)
        """
        data_dim = check_positive_int(data_dim, "data_dim")
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        if isinstance(hidden, int):
            hidden = (hidden,)
        hidden = [check_positive_int(h, "hidden") for h in hidden]
        encoder = mlp([data_dim, *hidden, 2 * latent_dim], activation)
        decoder = mlp([latent_dim, *reversed(hidden), data_dim], activation)
        model = cls(encoder, decoder, likelihood=likelihood, obs_scale=obs_scale, prior=prior)
        config = {"builder": "mlp", "data_dim": data_dim, "latent_dim": latent_dim, "hidden": hidden,
                  "likelihood": likelihood, "obs_scale": obs_scale, "activation": activation, "prior": None}
        if prior is not None and type(prior) is not StandardNormal:
            # a prior that can be rebuilt from plain data says how in its own `config`; others can't be
            prior_config = getattr(prior, "config", None)
            config["prior"] = None if prior_config is None else {"class": type(prior).__name__, **prior_config}
            if prior_config is None:
                config = None
        model.config = config
        return model

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "VAE":
        """Rebuild a model from its ``config`` (used by :func:`vaelab.train.load`)."""
        from .. import priors

        kwargs = {k: v for k, v in config.items() if k != "builder"}
        prior = kwargs.pop("prior", None)
        if prior is not None:
            prior = dict(prior)
            kwargs["prior"] = getattr(priors, prior.pop("class"))(**prior)
        return cls.mlp(**kwargs)

    # ---------------------------------------------------------------- the distributions

    @property
    def obs_scale(self) -> torch.Tensor | None:
        """σ of the Gaussian likelihood (a 0-d tensor), None for a Bernoulli likelihood."""
        return None if self.log_obs_scale is None else self.log_obs_scale.detach().exp()

    def encode_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's outputs (mu, logvar), each of shape (B, latent_dim)."""
        # under bf16 autocast the networks compute in bf16; the objective is computed in x's precision
        h = self.encoder(x).to(x.dtype)
        if h.shape[-1] != 2 * self.latent_dim:
            raise ValueError(f"`encoder` must output 2·latent_dim = {2 * self.latent_dim} numbers "
                             f"(mean then log-variance), got shape {tuple(h.shape)}")
        mu, logvar = h.chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> Distribution:
        """q_φ(z|x) = N(mu(x), diag exp(logvar(x))): batch shape (B,), event shape (latent_dim,)."""
        mu, logvar = self.encode_params(self.check_data(x, "x"))
        return self.posterior(mu, logvar)

    @staticmethod
    def posterior(mu: torch.Tensor, logvar: torch.Tensor) -> Distribution:
        """q(z|x) from the encoder's outputs: N(mu, diag exp(logvar)), event shape (latent_dim,)."""
        # validate_args=False: the checks would synchronise a GPU on every batch; the scale is positive by construction
        return Independent(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1, validate_args=False)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p_θ(x|z): independent Bernoullis (logits) or N(f(z), obs_scale² I); event shape (data_dim,)."""
        out = self.decoder(z).to(z.dtype)
        if out.shape[-1] != self.data_dim:
            raise ValueError(f"`decoder` must output data_dim = {self.data_dim} numbers per example, "
                             f"got shape {tuple(out.shape)}")
        if self.likelihood == "bernoulli":
            # validate_args=False also lets grey levels in [0, 1] be scored (the "continuous" BCE many tutorials use)
            base = Bernoulli(logits=out, validate_args=False)
        else:
            base = Normal(out, self.log_obs_scale.exp().expand_as(out), validate_args=False)
        return Independent(base, 1, validate_args=False)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + exp(½ logvar) · ε with ε ~ N(0, I): a sample of q(z|x) that gradients flow through."""
        return objectives.reparameterize(mu, logvar)

    # ---------------------------------------------------------------- bounds on log p(x)

    def elbo_terms(self, x: torch.Tensor, *, mc_kl: bool = False) -> ELBOTerms:
        """Reconstruction and KL per example from one reparameterized sample (no input checks: see ``elbo``).

        The KL is analytic when the prior has a closed form (per dimension for the standard normal),
        else — or with ``mc_kl=True`` — the one-sample estimate log q(z|x) − log p(z).
        """
        mu, logvar = self.encode_params(x)
        z = objectives.reparameterize(mu, logvar)  # (B, L)
        reconstruction = self.decode(z).log_prob(x)  # (B,)
        kl_per_dim, kl = None, None
        if not mc_kl and type(self.prior) is StandardNormal:
            kl_per_dim = objectives.gaussian_kl(mu, logvar)  # (B, L)
            kl = kl_per_dim.sum(-1)
        elif not mc_kl:
            kl = self.prior.kl(self.posterior(mu, logvar))
        if kl is None:
            kl = self.posterior(mu, logvar).log_prob(z) - self.prior.log_prob(z)
        return ELBOTerms(reconstruction, kl, kl_per_dim, z, mu, logvar)

    def elbo(self, x: torch.Tensor, beta: float = 1.0, *, mc_kl: bool = False) -> torch.Tensor:
        """ℒ(x) = E_q[log p(x|z)] − β KL(q(z|x) || p(z)) per example, in nats, of shape (B,).

        One reparameterized sample of z per example; ``beta=1`` is a lower bound on log p(x).
        """
        beta = check_nonnegative(beta, "beta")
        x = self.check_data(x, "x")
        terms = self.elbo_terms(x, mc_kl=mc_kl)
        return objectives.elbo(terms.reconstruction, terms.kl, beta)

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x) for z_i ~ q(z|x), of shape (k, B) (no input checks)."""
        mu, logvar = self.encode_params(x)
        q = self.posterior(mu, logvar)
        chunk = max(1, _IWAE_CHUNK_ROWS // max(1, x.shape[0]))
        out = []
        for start in range(0, k, chunk):
            eps = torch.randn((min(chunk, k - start), *mu.shape), device=mu.device, dtype=mu.dtype)
            z = objectives.reparameterize(mu, logvar, eps)  # (k', B, L)
            out.append(self.decode(z).log_prob(x) + self.prior.log_prob(z) - q.log_prob(z))  # (k', B)
        return torch.cat(out)

    def iwae(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The importance-weighted bound ℒ_k = log (1/k) Σ_i w_i per example, of shape (B,).

        ℒ_1 is the ELBO's estimator with the one-sample KL; ℒ_k rises toward log p(x) as k grows.
        """
        k = check_positive_int(k, "k")
        x = self.check_data(x, "x")
        return objectives.iwae(self.log_weights(x, k))

    # ---------------------------------------------------------------- ground truth: log p(x) itself

    def _grid_args(self, x: torch.Tensor, n: int | None, rule: str, what: str, *, grid_2d: int = 400
                   ) -> tuple[torch.Tensor, int]:
        if self.latent_dim > 2:
            raise ValueError(f"{what} sums p(x|z) p(z) over a grid of n**latent_dim nodes and works for latent_dim ≤ 2, "
                             f"got latent_dim={self.latent_dim}; use the importance-weighted bound "
                             "vae.iwae(x, k) (a lower bound on log p(x)) instead")
        if n is None:
            n = (4000 if self.latent_dim == 1 else grid_2d) if rule == "grid" else (200 if self.latent_dim == 1 else 100)
        n = check_positive_int(n, "n")
        if rule == "gauss-hermite" and not isinstance(self.prior, StandardNormal):
            raise ValueError(f"rule='gauss-hermite' is the rule for the prior N(0, I), got {type(self.prior).__name__}; "
                             "use rule='grid' (any prior)")
        return self.check_data(x, "x"), n

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, method: str = "quadrature", n: int | None = None, *,
                 rule: str = "grid") -> torch.Tensor:
        """log p(x) = log ∫ p_θ(x|z) p(z) dz per example, of shape (B,): the ground truth for latent_dim ≤ 2.

        The VAE is lesson 02's continuous mixture with components p_θ(x|z); the integral is summed on
        a latent grid (:func:`vaelab.continuous.latent_grid`): rule="grid" (default, any prior) is the
        midpoint rule on ``n`` points per dimension (default 4000 in 1-D, 400 in 2-D) over the box that
        holds the prior's mass (±10 sd of every component); its error is O(Δ²) — compare ``n`` and
        ``2n`` to measure it (tests/test_vae_log_prob.py sees < 2e-4 nats at the defaults for small
        ReLU decoders, and 1e-6 against pPCA's closed form). A
        warning says when p(z|x) reaches the box's edge. rule="gauss-hermite" (N(0, I) only) uses
        ``n`` Gauss–Hermite nodes per dimension: it needs many (≈ 300) when p(z|x) is much narrower
        than the prior. Computed on the model's device, the sums in float64.

        >>> _ = torch.manual_seed(0); vae = VAE.mlp(4, 2, hidden=(8,))
        >>> x = torch.bernoulli(torch.full((3, 4), 0.5))
        >>> bool((vae.iwae(x, 100) <= vae.log_prob(x) + 0.05).all())
        True
        """
        check_choice(method, "method", ("quadrature",))
        check_choice(rule, "rule", ("grid", "gauss-hermite"))
        x, n = self._grid_args(x, n, rule, "log_prob")
        return continuous.grid_log_prob(self.decode, self.prior, x, self.latent_dim, n, rule=rule,
                                        model_dtype=x.dtype, dtype=_sum_dtype(x))

    @torch.no_grad()
    def exact_posterior(self, x: torch.Tensor, n: int | None = None, *, rule: str = "grid") -> "continuous.GridPosterior":
        """The exact posterior p(z|x) ∝ p_θ(x|z) p(z) on a latent grid (latent_dim ≤ 2), to set beside q(z|x).

        Returns a :class:`vaelab.continuous.GridPosterior`: ``z`` (G, L) nodes (in 2-D ``n``×``n``, "ij"
        order), ``log_density`` (B, G), ``weights`` (B, G) summing to 1 per row, ``mean`` (B, L),
        ``cov`` (B, L, L) and ``log_px`` (B,). It holds B × G numbers: pass a few x (default n: 4000
        in 1-D, 200 in 2-D).

        >>> _ = torch.manual_seed(0); vae = VAE.mlp(4, 1, hidden=(8,))
        >>> post = vae.exact_posterior(torch.ones(2, 4))
        >>> post.weights.sum(-1)
        tensor([1.0000, 1.0000], dtype=torch.float64)
        """
        check_choice(rule, "rule", ("grid", "gauss-hermite"))
        x, n = self._grid_args(x, n, rule, "exact_posterior", grid_2d=200)  # it holds (B, n²): a coarser default
        return continuous.grid_posterior(self.decode, self.prior, x, self.latent_dim, n, rule=rule,
                                         model_dtype=x.dtype, dtype=_sum_dtype(x))

    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = False) -> torch.Tensor:
        """Draw ``n`` points x ~ p(x) = ∫ p(x|z) p(z) dz, of shape (n, data_dim).

        ``mean=True`` returns E[x|z] instead (Bernoulli probabilities or f(z)): the picture of
        each component rather than a noisy draw from it.
        """
        n = check_positive_int(n, "n")
        p = self.decode(self.prior.sample(n))
        return p.mean if mean else p.sample()

    # ---------------------------------------------------------------- what fit() calls

    def loss(self, x: torch.Tensor, *, beta: float = 1.0, free_bits: float = 0.0
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss on a checked batch: mean over the batch of −ℒ (β, free bits), and metrics.

        Returns ``(loss, {"loss", "elbo", "reconstruction", "kl"})``, each a 0-d tensor, batch means;
        "elbo" is always the plain ELBO (β = 1, no free bits), comparable across settings.
        ``free_bits`` floors each latent dimension's batch-mean KL (λ·latent_dim on the total KL when
        the prior gives no KL per dimension).
        """
        terms = self.elbo_terms(x)
        if terms.kl_per_dim is not None:
            loss = objectives.negative_elbo_loss(terms.reconstruction, terms.kl_per_dim, beta=beta, free_bits=free_bits)
        else:  # no KL per dimension (a prior that is not N(0, I)): floor the total at free_bits per dimension
            loss = objectives.negative_elbo_loss(terms.reconstruction, terms.kl, beta=beta,
                                                 free_bits=free_bits * self.latent_dim)
        with torch.no_grad():
            reconstruction, kl_mean = terms.reconstruction.mean(), terms.kl.mean()
            metrics = {"loss": loss.detach(), "elbo": reconstruction - kl_mean,
                       "reconstruction": reconstruction, "kl": kl_mean}
        return loss, metrics

    def check_data(self, X: Any, name: str = "X") -> torch.Tensor:
        """``X`` as a finite tensor of shape (n, data_dim) on the model's device and dtype, or a clear error."""
        if isinstance(X, tuple):
            raise TypeError(f"`{name}` must be one array of shape (n_samples, {self.data_dim}) for a VAE, got a tuple "
                            f"of {len(X)}; pass the data alone (not (x, labels)), or use a conditional model")
        ref = next(self.parameters(), None)
        device, dtype = (ref.device, ref.dtype) if ref is not None else (None, None)
        if isinstance(X, torch.Tensor) and X.ndim > 2 and math.prod(X.shape[1:]) == self.data_dim:
            raise ValueError(f"`{name}` must be 2-D of shape (n_samples, {self.data_dim}), got shape "
                             f"{tuple(X.shape)}; flatten images first: {name}.flatten(1)")
        X = check_2d(X, name, n_features=self.data_dim, device=device, dtype=dtype)
        if self.likelihood == "bernoulli" and ((X < 0).any() or (X > 1).any()):
            raise ValueError(f"`{name}` must hold values in [0, 1] for likelihood='bernoulli', got values from "
                             f"{float(X.min()):.4g} to {float(X.max()):.4g}; rescale the data (e.g. X / 255) "
                             "or use likelihood='gaussian'")
        return X
