"""Inference gaps (Cremer et al., 2018): the ELBO of a given q, the best q per point, and the two gaps,
checked against the closed forms of a linear-Gaussian model (probabilistic PCA)."""
import math

import pytest
import torch
from torch import nn

from vaelab import continuous
from vaelab import diagnostics as dg
from vaelab.models import VAE
from vaelab.priors import MixturePrior

SIGMA = 0.5


def linear_model(latent_dim=2, data_dim=5, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(data_dim, latent_dim, generator=g, dtype=torch.float64)
    b = 0.1 * torch.randn(data_dim, generator=g, dtype=torch.float64)
    x = torch.randn(n, latent_dim, generator=g, dtype=torch.float64) @ W.T + b
    x = x + SIGMA * torch.randn(n, data_dim, generator=g, dtype=torch.float64)
    encoder, decoder = nn.Linear(data_dim, 2 * latent_dim).double(), nn.Linear(latent_dim, data_dim).double()
    with torch.no_grad():
        decoder.weight.copy_(W), decoder.bias.copy_(b)
        encoder.weight.mul_(0.1), encoder.bias.zero_()  # some encoder, far from the posterior
    return VAE(encoder, decoder, likelihood="gaussian", obs_scale=SIGMA).double(), W, b, x


def closed_form_elbo(W, b, x, mu, logvar):
    # E_q[log N(x; Wz + b, σ²I)] − KL(q || N(0, I)) for q = N(mu, diag exp(logvar))
    var = logvar.exp()
    r2 = (x - mu @ W.T - b).pow(2).sum(-1) + (var * W.pow(2).sum(0)).sum(-1)
    rec = -0.5 * W.shape[0] * math.log(2 * math.pi * SIGMA**2) - 0.5 * r2 / SIGMA**2
    return rec - 0.5 * (mu.pow(2) + var - 1 - logvar).sum(-1)


def best_diagonal(W, b, x):
    # the KL(q || p(z|x))-optimal diagonal Gaussian: the posterior mean, variances 1/Λ_jj
    mean, cov = continuous.ppca_posterior(x, W, b, SIGMA)
    precision = torch.linalg.inv(cov)
    return mean, (1.0 / precision.diagonal()).log().expand_as(mean)


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_gaussian_elbo_is_the_closed_form_for_a_linear_decoder(latent_dim):
    model, W, b, x = linear_model(latent_dim)
    mu, logvar = torch.randn(len(x), latent_dim, dtype=torch.float64), torch.randn(len(x), latent_dim, dtype=torch.float64)
    # the integrand is quadratic in z: Gauss–Hermite with 2 nodes is already exact (rtol: σ is stored in float32)
    torch.testing.assert_close(dg.gaussian_elbo(model, x, mu, logvar, n_nodes=2), closed_form_elbo(W, b, x, mu, logvar),
                               rtol=1e-7, atol=0)


def test_gaussian_elbo_with_fixed_draws_is_close_and_repeatable():
    model, W, b, x = linear_model(3)
    mu, logvar = best_diagonal(W, b, x)  # near the posterior: log p(x|z) varies little over q
    a = dg.gaussian_elbo(model, x, mu, logvar, n_samples=20000, seed=1)  # latent_dim 3: draws, not nodes
    torch.testing.assert_close(a, dg.gaussian_elbo(model, x, mu, logvar, n_samples=20000, seed=1), rtol=0, atol=0)
    torch.testing.assert_close(a, closed_form_elbo(W, b, x, mu, logvar), rtol=0, atol=0.02)  # MC error ≈ 0.005
    assert not torch.equal(a, dg.gaussian_elbo(model, x, mu, logvar, n_samples=20000, seed=2))


def test_gaussian_elbo_gradients_reach_mu_and_logvar():
    model, W, b, x = linear_model(2)
    mu = torch.zeros(len(x), 2, dtype=torch.float64, requires_grad=True)
    logvar = torch.zeros(len(x), 2, dtype=torch.float64, requires_grad=True)
    dg.gaussian_elbo(model, x, mu, logvar).sum().backward()
    expected = torch.autograd.grad(closed_form_elbo(W, b, x, mu, logvar).sum(), (mu, logvar))
    torch.testing.assert_close((mu.grad, logvar.grad), expected)


def test_optimal_gaussian_q_finds_the_best_diagonal_gaussian():
    model, W, b, x = linear_model(2)
    best = dg.optimal_gaussian_q(model, x, steps=1500, lr=0.05)
    mean, logvar = best_diagonal(W, b, x)
    torch.testing.assert_close(best.mu, mean, rtol=0, atol=2e-3)
    torch.testing.assert_close(best.logvar, logvar, rtol=0, atol=5e-3)
    torch.testing.assert_close(best.elbo, closed_form_elbo(W, b, x, mean, logvar), rtol=0, atol=1e-4)
    # mean field under-estimates the posterior's variances: 1/Λ_jj ≤ Σ_jj
    _, cov = continuous.ppca_posterior(x, W, b, SIGMA)
    assert (best.logvar.exp() <= cov.diagonal() + 1e-6).all()


def test_optimal_gaussian_q_never_ends_below_the_encoder():
    model, W, b, x = linear_model(2)
    encoder = dg.gaussian_elbo(model, x, *model.encode_params(x))
    best = dg.optimal_gaussian_q(model, x, steps=3, lr=5.0)  # a step far too large
    assert (best.elbo >= encoder).all()


def test_inference_gaps_add_up_and_vanish_for_an_exact_encoder():
    model, W, b, x = linear_model(2)
    log_px = continuous.ppca_log_prob(x, W, b, SIGMA)
    gaps = dg.inference_gaps(model, x, log_px=log_px, steps=1500, lr=0.05)
    torch.testing.assert_close(gaps.approximation + gaps.amortization, gaps.total, rtol=0, atol=1e-12)
    torch.testing.assert_close(gaps.total, log_px - closed_form_elbo(W, b, x, *model.encode_params(x)), rtol=1e-7, atol=0)
    mean, logvar = best_diagonal(W, b, x)
    torch.testing.assert_close(gaps.approximation, log_px - closed_form_elbo(W, b, x, mean, logvar), rtol=0, atol=1e-4)
    assert (gaps.amortization > 0.1).all()  # this encoder is far from the posterior
    # a 1-D latent: the posterior is Gaussian, the family holds it, the approximation gap is 0
    model, W, b, x = linear_model(1)
    gaps = dg.inference_gaps(model, x, log_px=continuous.ppca_log_prob(x, W, b, SIGMA), steps=1500, lr=0.05)
    torch.testing.assert_close(gaps.approximation, torch.zeros_like(gaps.approximation), rtol=0, atol=1e-4)


def test_inference_gaps_defaults_to_the_models_log_prob():
    model, W, b, x = linear_model(2)
    gaps = dg.inference_gaps(model, x, steps=5)
    torch.testing.assert_close(gaps.log_px, continuous.ppca_log_prob(x, W, b, SIGMA), rtol=0, atol=1e-4)


def test_a_mixture_prior_takes_its_kl_from_the_same_nodes():
    torch.manual_seed(0)
    model = VAE.mlp(4, 2, hidden=(8,), prior=MixturePrior(2, 3))
    x = torch.bernoulli(torch.full((3, 4), 0.5))
    mu, logvar = model.encode_params(x)
    with torch.no_grad():
        quad = dg.gaussian_elbo(model, x, mu, logvar, n_nodes=30)
        torch.manual_seed(1)
        mc = model.elbo(x.repeat(40000, 1), mc_kl=True).view(40000, 3).mean(0)
    torch.testing.assert_close(quad, mc, rtol=0, atol=0.03)


def test_bad_inputs_are_named():
    model, W, b, x = linear_model(2)
    mu, logvar = model.encode_params(x)
    with pytest.raises(ValueError, match=r"`mu` must have shape \(n_samples, latent_dim\) = \(6, 2\), got \(6, 3\)"):
        dg.gaussian_elbo(model, x, torch.zeros(6, 3), logvar)
    with pytest.raises(ValueError, match="`steps` must be"):
        dg.optimal_gaussian_q(model, x, steps=0)
    with pytest.raises(ValueError, match=r"`log_px` must have shape \(n_samples,\) = \(6,\), got \(5,\)"):
        dg.inference_gaps(model, x, log_px=torch.zeros(5))
    with pytest.raises(TypeError, match="`model` must be a vaelab VAE"):
        dg.gaussian_elbo(nn.Linear(2, 2), x, mu, logvar)
