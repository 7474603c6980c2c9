"""Ground truth for small VAEs: VAE.log_prob on a latent grid, and the exact posterior beside q(z|x)."""
import math
import warnings

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

from vaelab import VAE, continuous
from vaelab.priors import MixturePrior, StandardNormal, VampPrior

F64 = torch.float64
SIGMA = 0.4


def linear_gaussian(latent_dim, data_dim=5, seed=0, orthogonal=False):
    """A VAE whose decoder is linear-Gaussian (pPCA), and data drawn from it; float64."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(data_dim, latent_dim, generator=g, dtype=F64)
    if orthogonal:  # orthogonal columns: the exact posterior has a diagonal covariance
        W = torch.linalg.qr(W).Q * torch.tensor([1.5, 0.8][:latent_dim], dtype=F64)
    b = torch.randn(data_dim, generator=g, dtype=F64)
    decoder = nn.Linear(latent_dim, data_dim).double()
    with torch.no_grad():
        decoder.weight.copy_(W)
        decoder.bias.copy_(b)
    encoder = nn.Linear(data_dim, 2 * latent_dim).double()
    vae = VAE(encoder, decoder, likelihood="gaussian", obs_scale=SIGMA)
    x = torch.randn(50, latent_dim, generator=g, dtype=F64) @ W.T + b + SIGMA * torch.randn(50, data_dim, generator=g, dtype=F64)
    return vae, W, b, x


def exact_encoder(vae, W, b):
    """Set the linear encoder to the exact posterior N(M⁻¹Wᵀ(x − b), σ²M⁻¹) (diagonal when W's columns are orthogonal)."""
    L = W.shape[1]
    M = W.T @ W + SIGMA**2 * torch.eye(L, dtype=F64)
    A = torch.linalg.solve(M, W.T)  # (L, D)
    var = SIGMA**2 * torch.linalg.inv(M).diagonal()
    with torch.no_grad():
        vae.encoder.weight.copy_(torch.cat([A, torch.zeros_like(A)]))
        vae.encoder.bias.copy_(torch.cat([-A @ b, var.log()]))


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_log_prob_equals_the_ppca_closed_form(latent_dim):
    vae, W, b, x = linear_gaussian(latent_dim)
    exact = continuous.ppca_log_prob(x, W, b, SIGMA)
    torch.testing.assert_close(vae.log_prob(x), exact, atol=1e-6, rtol=0)
    # Gauss–Hermite needs many nodes when p(z|x) is narrower than the prior (here σ_post ≈ 0.2–0.4)
    torch.testing.assert_close(vae.log_prob(x, rule="gauss-hermite", n=300), exact, atol=1e-4, rtol=0)


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_exact_posterior_equals_the_ppca_posterior(latent_dim):
    vae, W, b, x = linear_gaussian(latent_dim)
    post = vae.exact_posterior(x[:4])
    mean, cov = continuous.ppca_posterior(x[:4], W, b, SIGMA)
    torch.testing.assert_close(post.mean, mean, atol=1e-6, rtol=0)
    torch.testing.assert_close(post.cov, cov.expand(4, -1, -1), atol=1e-6, rtol=0)
    torch.testing.assert_close(post.weights.sum(-1), torch.ones(4, dtype=F64))
    torch.testing.assert_close(post.log_px, continuous.ppca_log_prob(x[:4], W, b, SIGMA), atol=1e-6, rtol=0)
    # the density integrates to one over the grid's cells
    n = 4000 if latent_dim == 1 else 200
    cell = (20.0 / n) ** latent_dim
    torch.testing.assert_close(post.log_density.exp().sum(-1) * cell, torch.ones(4, dtype=F64), atol=1e-6, rtol=0)


def small_bernoulli_vae(prior="standard", latent_dim=2, seed=0):
    torch.manual_seed(seed)
    vae = VAE.mlp(16, latent_dim, hidden=(32,))
    with torch.no_grad():  # a sharper decoder than at init, so the posterior is narrower than the prior
        vae.decoder[-1].weight.mul_(6.0)
    if prior == "mixture":
        vae.prior = MixturePrior(latent_dim, 3)
    elif prior == "vamp":
        vae.prior = VampPrior(vae.encoder, n_pseudo=4, data_dim=16)
    x = torch.bernoulli(torch.full((20, 16), 0.3), generator=torch.Generator().manual_seed(seed))
    return vae, x


@pytest.mark.parametrize("prior", ["standard", "mixture", "vamp"])
def test_two_grid_resolutions_agree(prior):
    vae, x = small_bernoulli_vae(prior)
    default, fine = vae.log_prob(x), vae.log_prob(x, n=800)
    assert (default - fine).abs().max() < 2e-4


@pytest.mark.parametrize("prior", ["standard", "mixture", "vamp"])
def test_grid_agrees_with_prior_monte_carlo(prior):
    """An independent estimate: log (1/S) Σ p(x|z_s), z_s ~ p(z), S = 200k, within 4 standard errors."""
    vae, x = small_bernoulli_vae(prior)
    torch.manual_seed(1)
    with torch.no_grad():
        z = vae.prior.sample(200_000)
        log_lik = continuous.pairwise_log_prob(vae.decode(z), x)  # (B, S)
    estimate, stderr = continuous.mc_estimate(log_lik.float().double())
    exact = vae.log_prob(x)
    assert ((exact - estimate).abs() < 4 * stderr + 1e-3).all()


def test_one_dimensional_grid_converges():
    vae, x = small_bernoulli_vae("standard", latent_dim=1)
    torch.testing.assert_close(vae.log_prob(x), vae.log_prob(x, n=8000), atol=1e-5, rtol=0)


def test_iwae_is_below_the_exact_value_and_reaches_it_for_a_matched_q():
    vae, W, b, x = linear_gaussian(2, orthogonal=True)
    exact = vae.log_prob(x)
    exact_encoder(vae, W, b)  # q(z|x) = p(z|x): every importance weight equals p(x)
    torch.manual_seed(0)
    with torch.no_grad():
        torch.testing.assert_close(vae.iwae(x, 1), exact, atol=1e-6, rtol=0)
        with torch.no_grad():
            vae.encoder.bias[2:] += 1.0  # q too wide: a gap, closed by k
        torch.manual_seed(0)
        bounds = [vae.iwae(x, k).mean() for k in (1, 10, 1000)]
    assert bounds[0] < bounds[1] < bounds[2] < exact.mean() + 1e-3
    assert exact.mean() - bounds[2] < 0.05 < exact.mean() - bounds[0]


def test_pairwise_log_prob_fast_paths_match_broadcasting():
    g = torch.Generator().manual_seed(0)
    x01 = torch.bernoulli(torch.full((6, 4), 0.5), generator=g)
    bern = Independent(Bernoulli(logits=torch.randn(7, 4, generator=g), validate_args=False), 1)
    torch.testing.assert_close(continuous.pairwise_log_prob(bern, x01),
                               bern.log_prob(x01[:, None]).double(), atol=1e-5, rtol=1e-6)
    x = torch.randn(6, 4, generator=g)
    gauss = Independent(Normal(torch.randn(7, 4, generator=g), torch.rand(7, 4, generator=g) + 0.1), 1)
    torch.testing.assert_close(continuous.pairwise_log_prob(gauss, x), gauss.log_prob(x[:, None]).double(),
                               atol=1e-4, rtol=1e-6)


def test_latent_dim_above_two_points_to_iwae():
    vae = VAE.mlp(8, 3, hidden=(8,))
    with pytest.raises(ValueError, match=r"latent_dim ≤ 2.*got latent_dim=3.*iwae"):
        vae.log_prob(torch.zeros(2, 8))
    with pytest.raises(ValueError, match="latent_dim=3"):
        vae.exact_posterior(torch.zeros(2, 8))


def test_bad_arguments_are_named():
    vae, x = small_bernoulli_vae("mixture")
    with pytest.raises(ValueError, match="gauss-hermite.*N\\(0, I\\).*MixturePrior"):
        vae.log_prob(x, rule="gauss-hermite")
    with pytest.raises(ValueError, match="`method`"):
        vae.log_prob(x, method="mc")
    with pytest.raises(TypeError, match="`n`"):
        vae.log_prob(x, n=2.5)
    with pytest.raises(ValueError, match="`x`"):
        vae.log_prob(torch.zeros(2, 3))


def test_a_posterior_outside_the_box_is_reported():
    decoder = nn.Linear(1, 1).double()
    with torch.no_grad():
        decoder.weight.fill_(1.0)
        decoder.bias.zero_()
    vae = VAE(nn.Linear(1, 2).double(), decoder, likelihood="gaussian", obs_scale=0.1)
    with pytest.warns(UserWarning, match="edge of the latent grid"):
        vae.log_prob(torch.tensor([[12.0]], dtype=F64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vae.log_prob(torch.tensor([[1.0]], dtype=F64))


def test_follows_the_model_dtype_and_keeps_no_graph():
    vae, x = small_bernoulli_vae()
    out = vae.log_prob(x)
    assert out.shape == (20,) and out.dtype == F64 and not out.requires_grad
    assert math.isfinite(float(out.sum()))
    assert isinstance(vae.prior, StandardNormal)
