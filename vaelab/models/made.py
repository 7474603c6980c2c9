"""A VAE whose decoder is autoregressive: p_θ(x|z) = Π_i Bernoulli(x_i; σ(f_i(x_<i, z))). Derived in lesson 04.

The decoder adds a MADE (Germain et al., 2015) — one masked hidden layer plus masked direct
connections, so pixel i only ever sees the pixels before it in raster order — to the factorised
MLP decoder of :class:`vaelab.VAE`::

    logit_i = g_i(z) + h_i(x_<i, z)      g: the usual MLP of z;  h: the masked network

Such a decoder can model x *without* z (h alone is an autoregressive model of the pixels, much
better than independent pixels), which is the real "strong decoder" road to posterior collapse:
at β = 1 the KL goes to zero because z is not needed, not because the optimiser lagged.
``window`` makes it weaker on purpose: pixel i then sees only the ``window`` pixels before it
(``window=0`` is the factorised decoder).

One pass of the masked network gives every p(x_i | x_<i, z), so log p(x|z) costs one forward
pass; sampling costs ``data_dim`` passes, one pixel at a time.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, constraints

from .._validation import check_positive_int
from ..priors import Prior, StandardNormal
from .vae import VAE, mlp

__all__ = ["MADEDecoder", "MADEVAE", "AutoregressiveBernoulli", "made_masks"]


def _check_window(window: Any) -> int | None:
    if window is None:
        return None
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ValueError(f"`window` must be None (every earlier pixel) or an integer >= 0, got {window!r}")
    return window


def made_masks(data_dim: int, hidden: int, window: int | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 0/1 masks (input→hidden, hidden→output, direct input→output) that make a network autoregressive.

    Pixels have degrees 1 … D, hidden units degrees m_k cycling through 1 … D − 1. Hidden unit k sees
    pixels d ≤ m_k; output i sees hidden units with m_k < i and pixels d < i (Germain et al., 2015).
    With a ``window`` w, hidden unit k sees only pixels m_k − w < d ≤ m_k and output i only the
    units of degree i − 1 and the pixels i − w ≤ d < i: pixel i then depends on exactly the w
    pixels before it.

    Returns masks of shapes (hidden, D), (D, hidden), (D, D), laid out as ``nn.Linear`` weights.

    >>> m_in, m_out, direct = made_masks(3, 2)
    >>> direct
    tensor([[0., 0., 0.],
            [1., 0., 0.],
            [1., 1., 0.]])
    >>> bool(((m_out @ m_in + direct) * torch.ones(3, 3).triu()).sum() == 0)  # output i never sees x_i, x_>i
    True
    """
    data_dim = check_positive_int(data_dim, "data_dim")
    hidden = check_positive_int(hidden, "hidden")
    window = _check_window(window)
    d = torch.arange(1, data_dim + 1)                               # pixel degrees (D,)
    m = torch.arange(hidden) % max(1, data_dim - 1) + 1             # hidden degrees (H,)
    if window is None:
        m_in = d[None, :] <= m[:, None]                              # (H, D)
        m_out = m[None, :] < d[:, None]                              # (D, H)
        direct = d[None, :] < d[:, None]                             # (D, D)
    else:
        m_in = (d[None, :] <= m[:, None]) & (d[None, :] > m[:, None] - window)
        m_out = (m[None, :] == d[:, None] - 1) & (window > 0)
        direct = (d[None, :] < d[:, None]) & (d[None, :] >= d[:, None] - window)
    return m_in.float(), m_out.float(), direct.float()


class _MaskedLinear(nn.Linear):
    """nn.Linear whose weight is multiplied by a fixed 0/1 mask (a buffer, so it moves with the model)."""

    def __init__(self, mask: torch.Tensor, bias: bool = True):
        super().__init__(mask.shape[1], mask.shape[0], bias=bias)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MADEDecoder(nn.Module):
    """Logits of p(x_i | x_<i, z) for every pixel i at once: an MLP of z plus a masked network of (x, z).

    Parameters
    ----------
    latent_dim, data_dim : sizes of z and x
    hidden : hidden sizes of the MLP of z (the factorised decoder's, as in ``VAE.mlp``)
    made_hidden : width of the masked hidden layer
    window : None (pixel i sees every earlier pixel) or how many earlier pixels it sees (0: none,
        which is the factorised decoder)

    ``forward(x, z)`` takes x of shape (..., data_dim) and z of shape (..., latent_dim) (broadcast
    against each other) and returns logits of shape (..., data_dim).

    >>> dec = MADEDecoder(2, 4, hidden=(8,), made_hidden=6)
    >>> dec(torch.zeros(3, 4), torch.zeros(3, 2)).shape
    torch.Size([3, 4])
    """

    def __init__(self, latent_dim: int, data_dim: int, *, hidden: Sequence[int] = (64,), made_hidden: int = 256,
                 window: int | None = None):
        super().__init__()
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.data_dim = check_positive_int(data_dim, "data_dim")
        self.window = _check_window(window)
        if isinstance(hidden, int):
            hidden = (hidden,)
        # registered first: VAE reads latent_dim off the decoder's first nn.Linear, data_dim off its last
        self.net_z = mlp([self.latent_dim, *hidden, self.data_dim])  # g(z): the factorised decoder
        m_in, m_out, direct = made_masks(self.data_dim, made_hidden, self.window)
        self.z_to_hidden = nn.Linear(self.latent_dim, made_hidden, bias=False)
        self.x_to_hidden = _MaskedLinear(m_in)
        self.direct = _MaskedLinear(direct, bias=False)
        self.hidden_to_out = _MaskedLinear(m_out, bias=False)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        batch = torch.broadcast_shapes(x.shape[:-1], z.shape[:-1])
        x, z = x.expand(*batch, x.shape[-1]), z.expand(*batch, z.shape[-1])
        h = torch.relu(self.x_to_hidden(x) + self.z_to_hidden(z))                   # (..., H)
        return self.net_z(z) + self.hidden_to_out(h) + self.direct(x)               # (..., D)


class AutoregressiveBernoulli(Distribution):
    """p(x|z) = Π_i Bernoulli(x_i; σ(f_i(x_<i, z))) over binary vectors: batch shape z.shape[:-1], event (D,).

    ``log_prob(x)`` is one pass of the decoder; ``sample()`` draws the pixels one at a time
    (D passes). Its mean E[x|z] has no closed form: ``mean`` raises, use ``sample``.
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.boolean, 1)

    def __init__(self, decoder: MADEDecoder, z: torch.Tensor):
        self.decoder, self.z = decoder, z
        super().__init__(batch_shape=z.shape[:-1], event_shape=torch.Size([decoder.data_dim]), validate_args=False)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of p(x_i | x_<i, z) at the given x, of shape batch_shape + (D,)."""
        return self.decoder(x, self.z)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x)
        x = x.expand_as(logits)
        return Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        raise NotImplementedError("E[x|z] of an autoregressive decoder has no closed form; draw images with "
                                  ".sample() instead")

    @torch.no_grad()
    def sample(self, sample_shape: torch.Size = torch.Size()) -> torch.Tensor:
        shape = torch.Size(sample_shape) + self.batch_shape + self.event_shape
        z = self.z.expand(*shape[:-1], self.z.shape[-1])
        x = torch.zeros(shape, dtype=self.z.dtype, device=self.z.device)
        for i in range(shape[-1]):  # pixel i depends on the pixels before it: one pass per pixel
            p = torch.sigmoid(self.decoder(x, z)[..., i])
            x[..., i] = torch.bernoulli(p)
        return x


class MADEVAE(VAE):
    """A VAE with an autoregressive Bernoulli decoder (:class:`MADEDecoder`): a decoder that can model x alone.

    Everything of :class:`vaelab.VAE` works unchanged (``elbo``, ``iwae``, ``fit``, β, free bits,
    annealing, the diagnostics), because the decoder's distribution scores x in one pass.
    Only ``sample(n, mean=True)`` is unavailable (no closed-form E[x|z]).

    >>> model = MADEVAE.made(16, 2, hidden=(8,), made_hidden=8)
    >>> model.elbo(torch.rand(5, 16).round()).shape
    torch.Size([5])
    """

    def __init__(self, encoder: nn.Module, decoder: MADEDecoder, *, prior: Prior | None = None):
        if not isinstance(decoder, MADEDecoder):
            raise TypeError(f"`decoder` must be a MADEDecoder, got {type(decoder).__name__}")
        super().__init__(encoder, decoder, likelihood="bernoulli", prior=prior, latent_dim=decoder.latent_dim,
                         data_dim=decoder.data_dim)

    @classmethod
    def made(cls, data_dim: int, latent_dim: int, hidden: Sequence[int] = (64,), *, made_hidden: int = 256,
             window: int | None = None, prior: Prior | None = None) -> "MADEVAE":
        """An MLP encoder (data_dim → hidden… → 2·latent_dim) and a :class:`MADEDecoder` with ``window``.

        >>> MADEVAE.made(64, 2, window=0).decoder.window
        0
        """
        data_dim = check_positive_int(data_dim, "data_dim")
        latent_dim = check_positive_int(latent_dim, "latent_dim")
        hidden = [check_positive_int(h, "hidden") for h in ((hidden,) if isinstance(hidden, int) else hidden)]
        made_hidden = check_positive_int(made_hidden, "made_hidden")
        encoder = mlp([data_dim, *hidden, 2 * latent_dim])
        decoder = MADEDecoder(latent_dim, data_dim, hidden=tuple(reversed(hidden)), made_hidden=made_hidden,
                              window=window)
        model = cls(encoder, decoder, prior=prior)
        custom_prior = prior is not None and type(prior) is not StandardNormal
        model.config = None if custom_prior else {
            "builder": "made", "data_dim": data_dim, "latent_dim": latent_dim, "hidden": hidden,
            "made_hidden": made_hidden, "window": decoder.window}
        return model

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "MADEVAE":
        """Rebuild a model from its ``config`` (used by :func:`vaelab.train.load`)."""
        return cls.made(**{k: v for k, v in config.items() if k != "builder"})

    def decode(self, z: torch.Tensor) -> Distribution:
        """p_θ(x|z) as an :class:`AutoregressiveBernoulli` (event shape (data_dim,))."""
        return AutoregressiveBernoulli(self.decoder, z)

    @torch.no_grad()
    def sample(self, n: int, *, mean: bool = False) -> torch.Tensor:
        """Draw ``n`` images x ~ p(x), pixel by pixel, of shape (n, data_dim)."""
        n = check_positive_int(n, "n")
        if mean:
            raise ValueError("`mean=True` needs E[x|z], which an autoregressive decoder does not have in closed "
                             "form; call sample(n) for images drawn pixel by pixel")
        return self.decode(self.prior.sample(n)).sample()
