"""A VAE for sequences: a GRU reads a series into z, another GRU unrolls z back into a series.

Only the networks change: q(z|x) = N(mu, diag σ²) from the encoder GRU's last hidden state, p(x|z) =
Π_t N(x_t; f_t(z), σ²) from the decoder GRU, p(z) = N(0, I). The ELBO, its training and its bounds
are the VAE's (lesson 03). :class:`GRUDecoder` is not autoregressive: it sees z (and not the previous
x_t) at every step, so everything it draws must come through z. :class:`ARGRUDecoder` also reads
x_{t-1} (teacher forcing), p(x|z) = Π_t N(x_t; f_t(z, x_{<t}), σ²): it can model the series without
z, and does — posterior collapse (lesson 04) — unless its inputs are dropped now and then
(Bowman et al., 2016). Derived in lesson 05.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from .._validation import as_tensor, check_choice, check_finite, check_nonnegative, check_positive_int
from ..priors import Prior
from .vae import VAE, ELBOTerms

__all__ = ["ARGRUDecoder", "GRUDecoder", "GRUEncoder", "SequenceVAE"]


class GRUEncoder(nn.Module):
    """x of shape (B, length, n_channels) -> (B, 2·latent_dim): mean then log-variance of q(z|x).

    A GRU reads the series step by step; its last hidden state summarises the whole series and a
    linear layer turns it into the posterior's parameters. With ``reverse=True`` (the default) it
    reads from the last step to the first, so what it saw most recently is the start of the series,
    where the decoder begins (the trick of Sutskever et al., 2014): training is faster and steadier.

    >>> GRUEncoder(n_channels=1, latent_dim=2, hidden=8)(torch.zeros(3, 20, 1)).shape
    torch.Size([3, 4])
    """

    def __init__(self, n_channels: int, latent_dim: int, hidden: int = 32, *, reverse: bool = True):
        super().__init__()
        n_channels = check_positive_int(n_channels, "n_channels")
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        hidden = check_positive_int(hidden, "hidden")
        self.reverse = bool(reverse)
        self.gru = nn.GRU(n_channels, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(x.flip(1) if self.reverse else x)  # h: (1, B, hidden), the state after the last step read
        return self.head(h[-1])  # (B, 2L)


class GRUDecoder(nn.Module):
    """z of shape (..., latent_dim) -> the mean series f(z) of shape (..., length, n_channels).

    The GRU starts from h_0 = tanh(W z + b) and reads z again at every step (not the previous
    values of x), so the whole series is a deterministic function of z.

    >>> GRUDecoder(latent_dim=2, n_channels=1, length=20, hidden=8)(torch.zeros(3, 2)).shape
    torch.Size([3, 20, 1])
    """

    def __init__(self, latent_dim: int, n_channels: int, length: int, hidden: int = 32):
        super().__init__()
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        n_channels = check_positive_int(n_channels, "n_channels")
        self.length = check_positive_int(length, "length")
        hidden = check_positive_int(hidden, "hidden")
        self.init = nn.Linear(latent_dim, hidden)
        self.gru = nn.GRU(latent_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_channels)

    def forward(self, z: torch.Tensor, length: int | None = None) -> torch.Tensor:
        length = self.length if length is None else check_positive_int(length, "length")
        lead = z.shape[:-1]
        z = z.reshape(-1, z.shape[-1])  # (N, L): IWAE passes (k, B, L)
        h0 = torch.tanh(self.init(z)).unsqueeze(0)  # (1, N, hidden)
        out, _ = self.gru(z.unsqueeze(1).expand(-1, length, -1), h0)  # (N, T, hidden)
        return self.head(out).reshape(*lead, length, -1)  # (..., T, C)


class ARGRUDecoder(nn.Module):
    """An autoregressive decoder: the mean of x_t from z and the previous values x_{<t}, (..., length, n_channels).

    The GRU starts from h_0 = tanh(W z + b) and reads [x_{t-1}, z] at step t (x_0 := 0). Given the
    observed series (``forward(z, x)``, teacher forcing) all steps run at once; without it
    (``generate``) each step's output is fed back as the next input. ``input_dropout`` is the
    probability, during training only, that an input x_{t-1} is replaced by 0 (Bowman et al.'s word
    dropout): the decoder cannot always read the past, so it must learn to read z.

    >>> decoder = ARGRUDecoder(latent_dim=2, n_channels=1, length=20, hidden=8)
    >>> decoder(torch.zeros(3, 2), torch.zeros(3, 20, 1)).shape, decoder.generate(torch.zeros(3, 2)).shape
    (torch.Size([3, 20, 1]), torch.Size([3, 20, 1]))
    """

    autoregressive = True

    def __init__(self, latent_dim: int, n_channels: int, length: int, hidden: int = 32, *,
                 input_dropout: float = 0.0):
        super().__init__()
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.n_channels = check_positive_int(n_channels, "n_channels")
        self.length = check_positive_int(length, "length")
        hidden = check_positive_int(hidden, "hidden")
        self.input_dropout = check_nonnegative(input_dropout, "input_dropout")
        if self.input_dropout >= 1:
            raise ValueError(f"`input_dropout` must be a probability in [0, 1), got {input_dropout}; "
                             "at 1 the decoder would never see the past")
        self.init = nn.Linear(latent_dim, hidden)
        self.gru = nn.GRU(n_channels + latent_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_channels)

    def forward(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the means f_t(z, x_{<t}) for every step of the observed ``x`` (..., T, C)."""
        lead = z.shape[:-1]
        x = x.expand(*lead, *x.shape[-2:]).reshape(-1, *x.shape[-2:])  # (N, T, C): IWAE passes z of (k, B, L)
        z = z.reshape(-1, z.shape[-1])  # (N, L)
        previous = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)  # x_{t-1}, with x_0 = 0
        if self.training and self.input_dropout > 0:
            keep = torch.rand(previous.shape[:2], device=x.device) >= self.input_dropout  # (N, T)
            previous = previous * keep[..., None].to(previous.dtype)
        inputs = torch.cat([previous, z.unsqueeze(1).expand(-1, x.shape[1], -1)], dim=-1)  # (N, T, C + L)
        h0 = torch.tanh(self.init(z)).unsqueeze(0)  # (1, N, hidden)
        out, _ = self.gru(inputs, h0)
        return self.head(out).reshape(*lead, x.shape[-2], -1)

    def generate(self, z: torch.Tensor, length: int | None = None, noise: float = 0.0) -> torch.Tensor:
        """Run free, of shape (..., length, C): each step's mean (plus ``noise`` · ε: a draw of x_t) is the next input."""
        length = self.length if length is None else check_positive_int(length, "length")
        lead = z.shape[:-1]
        z = z.reshape(-1, z.shape[-1])
        h = torch.tanh(self.init(z)).unsqueeze(0)
        x_t = z.new_zeros(z.shape[0], 1, self.n_channels)
        steps = []
        for _ in range(length):
            out, h = self.gru(torch.cat([x_t, z.unsqueeze(1)], dim=-1), h)
            mean = self.head(out)  # (N, 1, C)
            x_t = mean + noise * torch.randn_like(mean) if noise else mean
            steps.append(x_t)
        return torch.cat(steps, dim=1).reshape(*lead, length, -1)


class _TeacherForced:
    """A SequenceVAE whose autoregressive decoder reads the observed ``x``: VAE's bounds run on it unchanged."""

    def __init__(self, model: "SequenceVAE", x: torch.Tensor):
        self.model, self.x = model, x

    def decode(self, z: torch.Tensor) -> Distribution:
        return self.model.decode(z, self.x)

    def __getattr__(self, name: str):  # encode_params, posterior, prior, latent_dim, …
        return getattr(self.model, name)


class SequenceVAE(VAE):
    """A VAE over series of shape (length, n_channels): GRU encoder to z, GRU decoder from z.

    ℒ(x) = E_q[Σ_t log N(x_t; f_t(z), σ²I)] − KL(q(z|x) || p(z)), one z per series.

    Parameters
    ----------
    encoder : module mapping (B, length, n_channels) to (B, 2·latent_dim), e.g. :class:`GRUEncoder`
    decoder : module mapping (B, latent_dim) to (B, length, n_channels), e.g. :class:`GRUDecoder`
    length, n_channels : the shape of one series
    latent_dim : size of z (read off the encoder's last nn.Linear when not given)
    likelihood, obs_scale, prior : as for :class:`VAE`; the default likelihood is "gaussian"

    Build the usual one with :meth:`SequenceVAE.gru`; train it with ``vaelab.fit(model, x, ...)``
    on x of shape (n_series, length, n_channels). With an autoregressive decoder
    (``SequenceVAE.gru(..., autoregressive=True)``, an :class:`ARGRUDecoder`) the bounds score
    p(x|z) = Π_t p(x_t | z, x_{<t}) by teacher forcing, and sampling runs the decoder free.

    >>> model = SequenceVAE.gru(length=20, latent_dim=2, hidden=8)
    >>> x = torch.randn(4, 20, 1)
    >>> model.elbo(x).shape, model.sample(3, mean=True).shape
    (torch.Size([4]), torch.Size([3, 20, 1]))
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, *, length: int, n_channels: int = 1,
                 latent_dim: int | None = None, likelihood: str = "gaussian", obs_scale: float | None = None,
                 prior: Prior | None = None):
        length = check_positive_int(length, "length", minimum=2)
        n_channels = check_positive_int(n_channels, "n_channels")
        # data_dim is the width of one step: it is what the decoder's last layer outputs
        super().__init__(encoder, decoder, likelihood=likelihood, obs_scale=obs_scale, prior=prior,
                         latent_dim=latent_dim, data_dim=n_channels)
        self.length, self.n_channels = length, n_channels

    @classmethod
    def gru(cls, length: int, latent_dim: int, *, n_channels: int = 1, hidden: int = 32,
            likelihood: str = "gaussian", obs_scale: float | None = None, autoregressive: bool = False,
            input_dropout: float = 0.0) -> "SequenceVAE":
        """A SequenceVAE with a :class:`GRUEncoder` and a decoder of ``hidden`` units.

        The decoder is a :class:`GRUDecoder` (z alone), or with ``autoregressive=True`` an
        :class:`ARGRUDecoder` (z and x_{<t}; Gaussian likelihood only) that drops its inputs with
        probability ``input_dropout`` during training.

        >>> SequenceVAE.gru(length=50, latent_dim=3).latent_dim
        3
        >>> SequenceVAE.gru(length=50, latent_dim=3, obs_scale=0.1, autoregressive=True).autoregressive
        True
        """
        check_choice(likelihood, "likelihood", ("bernoulli", "gaussian"))
        if not isinstance(autoregressive, bool):
            raise TypeError(f"`autoregressive` must be True or False, got {type(autoregressive).__name__}")
        if autoregressive and likelihood != "gaussian":
            raise ValueError("`autoregressive=True` feeds the decoder's means back as inputs, so it needs "
                             f"likelihood='gaussian', got likelihood={likelihood!r}")
        if input_dropout and not autoregressive:
            raise ValueError(f"`input_dropout` drops the past inputs of an autoregressive decoder; the plain "
                             f"decoder reads none. Pass autoregressive=True, got input_dropout={input_dropout}")
        decoder = (ARGRUDecoder(latent_dim, n_channels, length, hidden, input_dropout=input_dropout)
                   if autoregressive else GRUDecoder(latent_dim, n_channels, length, hidden))
        model = cls(GRUEncoder(n_channels, latent_dim, hidden), decoder, length=length, n_channels=n_channels,
                    latent_dim=latent_dim, likelihood=likelihood, obs_scale=obs_scale)
        model.config = {"builder": "gru", "length": length, "latent_dim": latent_dim, "n_channels": n_channels,
                        "hidden": hidden, "likelihood": likelihood, "obs_scale": obs_scale,
                        "autoregressive": autoregressive, "input_dropout": input_dropout}
        return model

    @classmethod
    def mlp(cls, *args, **kwargs):
        raise TypeError("SequenceVAE is built with SequenceVAE.gru(length, latent_dim, ...), not .mlp(...)")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SequenceVAE":
        """Rebuild a model from its ``config`` (used by :func:`vaelab.train.load`)."""
        return cls.gru(**{k: v for k, v in config.items() if k != "builder"})

    @property
    def autoregressive(self) -> bool:
        """True when the decoder reads the previous values x_{<t} as well as z (an :class:`ARGRUDecoder`)."""
        return bool(getattr(self.decoder, "autoregressive", False))

    def decode(self, z: torch.Tensor, x: torch.Tensor | None = None) -> Distribution:
        """p(x|z) = Π_t p(x_t|z, …): event shape (length, n_channels), so ``log_prob`` sums over time too.

        An autoregressive decoder needs the observed series ``x`` to score it (teacher forcing: the
        means f_t(z, x_{<t})); without ``x`` it runs free from its own means, which is for drawing
        pictures (``.mean``), not for scoring. A plain decoder ignores ``x``.
        """
        if not self.autoregressive:
            # the VAE's per-step likelihood (event: the channels), with the time axis made part of the event
            return Independent(super().decode(z), 1, validate_args=False)
        mean = self.decoder.generate(z) if x is None else self.decoder(z, x)
        mean = mean.to(z.dtype)  # (..., T, C)
        return Independent(Normal(mean, self.log_obs_scale.exp().expand_as(mean), validate_args=False), 2,
                           validate_args=False)

    def elbo_terms(self, x: torch.Tensor, *, mc_kl: bool = False) -> ELBOTerms:
        """Reconstruction and KL per example from one reparameterized sample (teacher-forced if autoregressive)."""
        return VAE.elbo_terms(_TeacherForced(self, x) if self.autoregressive else self, x, mc_kl=mc_kl)

    def log_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x|z_i) + log p(z_i) − log q(z_i|x) for z_i ~ q(z|x), of shape (k, B) (no input checks)."""
        return VAE.log_weights(_TeacherForced(self, x) if self.autoregressive else self, x, k)

    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = False) -> torch.Tensor:
        """Draw ``n`` series x ~ p(x), of shape (n, length, n_channels); ``mean=True``: the noise-free series.

        An autoregressive decoder runs free: each drawn x_t (or, with ``mean=True``, each mean) is the next input.
        """
        if not self.autoregressive:
            return super().sample(n, mean=mean)
        n = check_positive_int(n, "n")
        z = self.prior.sample(n)
        return self.decoder.generate(z, noise=0.0 if mean else float(self.log_obs_scale.exp()))

    def check_data(self, X: Any, name: str = "X") -> torch.Tensor:
        """``X`` as a finite tensor of shape (n, length, n_channels) on the model's device and dtype."""
        ref = next(self.parameters(), None)
        device, dtype = (ref.device, ref.dtype) if ref is not None else (None, None)
        X = as_tensor(X, name, dtype=dtype, device=device)
        expected = f"(n_series, {self.length}, {self.n_channels})"
        if X.ndim == 2 and X.shape[1] == self.length and self.n_channels == 1:
            raise ValueError(f"`{name}` must be 3-D of shape {expected}, got shape {tuple(X.shape)}; "
                             f"add the channel axis: {name}.unsqueeze(-1)")
        if X.ndim != 3 or X.shape[1:] != (self.length, self.n_channels) or X.shape[0] < 1:
            raise ValueError(f"`{name}` must be 3-D of shape {expected}, got shape {tuple(X.shape)}")
        X = check_finite(X, name)
        if self.likelihood == "bernoulli" and ((X < 0).any() or (X > 1).any()):
            raise ValueError(f"`{name}` must hold values in [0, 1] for likelihood='bernoulli', got values from "
                             f"{float(X.min()):.4g} to {float(X.max()):.4g}; use likelihood='gaussian'")
        return X

    @torch.no_grad()
    def interpolate(self, x_start: torch.Tensor, x_end: torch.Tensor, steps: int = 5) -> torch.Tensor:
        """Decode the straight line between the posterior means of two series: (steps, length, n_channels).

        z_s = (1 − s) mu(x_start) + s mu(x_end), s = 0, 1/(steps−1), …, 1; returns the mean series f(z_s).
        """
        steps = check_positive_int(steps, "steps", minimum=2)
        x = self.check_data(torch.stack([torch.as_tensor(x_start), torch.as_tensor(x_end)]), "x_start, x_end")
        mu, _ = self.encode_params(x)  # (2, L)
        s = torch.linspace(0, 1, steps, device=mu.device, dtype=mu.dtype)[:, None]  # (steps, 1)
        return self.decode((1 - s) * mu[0] + s * mu[1]).mean
