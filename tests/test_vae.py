import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, MultivariateNormal, Normal, kl_divergence

from vaelab import objectives
from vaelab.models import VAE
from vaelab.priors import Prior, StandardNormal

D, SIGMA = 3, 0.5
W = torch.tensor([[1.5], [-0.8], [0.6]], dtype=torch.float64)  # decoder weight (D, 1)
B_ = torch.tensor([0.3, -0.2, 1.0], dtype=torch.float64)        # decoder bias (D,)


def ppca_log_prob(x):
    """log p(x) of the linear-Gaussian model: x ~ N(b, W Wᵀ + σ² I) (probabilistic PCA)."""
    cov = W @ W.T + SIGMA ** 2 * torch.eye(D, dtype=torch.float64)
    return MultivariateNormal(B_, covariance_matrix=cov).log_prob(x)


def linear_vae(mean_shift=0.0, logvar_shift=0.0):
    """A linear-Gaussian VAE whose encoder is the exact posterior p(z|x) (shifted to perturb it)."""
    s2 = 1.0 / (1.0 + (W.T @ W).item() / SIGMA ** 2)  # posterior variance
    a = s2 * W[:, 0] / SIGMA ** 2                      # posterior mean = a · (x − b)
    encoder, decoder = nn.Linear(D, 2).double(), nn.Linear(1, D).double()
    with torch.no_grad():
        encoder.weight.copy_(torch.stack([a, torch.zeros(D, dtype=torch.float64)]))
        encoder.bias.copy_(torch.tensor([-(a @ B_).item() + mean_shift, math.log(s2) + logvar_shift]))
        decoder.weight.copy_(W)
        decoder.bias.copy_(B_)
    return VAE(encoder, decoder, likelihood="gaussian", obs_scale=SIGMA).double()


def assert_mean_is(estimator, x, expected, n=400):
    """The mean of ``n`` draws of a per-example estimator is ``expected`` within 5 standard errors."""
    torch.manual_seed(1)
    draws = estimator(x.repeat(n, 1)).detach().view(n, len(x))  # (n, B): n independent draws per example
    error = (draws.mean(0) - expected).abs()
    assert (error < 5 * draws.std(0) / math.sqrt(n)).all(), float((error / draws.std(0)).max())


@pytest.fixture
def x():
    torch.manual_seed(0)
    z = torch.randn(200, 1, dtype=torch.float64)
    return z @ W.T + B_ + SIGMA * torch.randn(200, D, dtype=torch.float64)


# ------------------------------------------------------------------ the linear-Gaussian truth


def test_closed_form_agrees_with_lesson_02s_ppca_log_prob(x):
    from vaelab import continuous

    torch.testing.assert_close(ppca_log_prob(x), continuous.ppca_log_prob(x, W, B_, SIGMA))


def test_exact_posterior_makes_the_elbo_equal_log_px(x):
    model = linear_vae()
    torch.testing.assert_close(model.elbo(x, mc_kl=True), ppca_log_prob(x), atol=1e-6, rtol=0)
    # with the analytic KL the one-sample ELBO is noisy, but its mean is log p(x) too
    assert_mean_is(model.elbo, x, ppca_log_prob(x))


def test_exact_posterior_makes_every_iwae_equal_log_px(x, monkeypatch):
    model = linear_vae()
    for k in (1, 7, 64):
        torch.testing.assert_close(model.iwae(x, k), ppca_log_prob(x), atol=1e-6, rtol=0)
    monkeypatch.setattr("vaelab.models.vae._IWAE_CHUNK_ROWS", 1)  # one sample per chunk
    torch.testing.assert_close(model.iwae(x, 5), ppca_log_prob(x), atol=1e-6, rtol=0)


def expected_elbo(model, x):
    """E_q[log p(x|z)] − KL(q || p) in closed form for the linear-Gaussian model."""
    mu, logvar = model.encode_params(x)
    var = logvar.exp()
    residual = (x - mu @ W.T - B_).pow(2).sum(-1) + var[:, 0] * (W ** 2).sum()
    reconstruction = -0.5 * D * math.log(2 * math.pi * SIGMA ** 2) - 0.5 * residual / SIGMA ** 2
    return reconstruction - objectives.gaussian_kl(mu, logvar).sum(-1)


def test_perturbed_encoder_gives_a_strictly_lower_elbo_by_the_kl_to_the_posterior(x):
    exact, log_px = linear_vae(), ppca_log_prob(x)
    torch.testing.assert_close(expected_elbo(exact, x), log_px)
    model = linear_vae(mean_shift=0.4, logvar_shift=0.7)
    bound = expected_elbo(model, x)
    assert (bound < log_px - 1e-3).all()
    # the gap is KL(q(z|x) || p(z|x)), the exact encoder being the posterior
    gap = kl_divergence(model.encode(x), exact.encode(x))
    torch.testing.assert_close(log_px - bound, gap)
    # the estimator the model returns has that mean
    assert_mean_is(model.elbo, x, bound)


def test_iwae_rises_toward_log_px_with_k(x):
    model, log_px = linear_vae(mean_shift=0.8, logvar_shift=0.5), ppca_log_prob(x)
    torch.manual_seed(2)
    gaps = [float((log_px - model.iwae(x, k).detach()).mean()) for k in (1, 4, 16, 64, 256, 1024)]
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[0] > 0.3 and 0 < gaps[-1] < 0.05


def test_iwae_with_one_sample_is_the_elbo_estimator_with_the_same_noise(x):
    model = linear_vae(mean_shift=0.5, logvar_shift=0.3)
    torch.manual_seed(3)
    one = model.iwae(x, 1)
    torch.manual_seed(3)
    torch.testing.assert_close(one, model.elbo(x, mc_kl=True))
    assert not torch.allclose(one, ppca_log_prob(x), atol=1e-3)


# ------------------------------------------------------------------ distributions and pieces


def test_encode_and_decode_return_the_documented_distributions():
    model = VAE.mlp(6, 2, hidden=(5,))
    x = torch.rand(4, 6)
    q = model.encode(x)
    assert isinstance(q, Independent) and isinstance(q.base_dist, Normal)
    assert q.batch_shape == (4,) and q.event_shape == (2,)
    mu, logvar = model.encode_params(x)
    torch.testing.assert_close(torch.cat([mu, logvar], -1), model.encoder(x))  # mean then log-variance
    torch.testing.assert_close(q.base_dist.scale, torch.exp(0.5 * logvar))
    p = model.decode(q.sample())
    assert isinstance(p.base_dist, Bernoulli) and p.batch_shape == (4,) and p.event_shape == (6,)
    gaussian = VAE.mlp(6, 2, hidden=(5,), likelihood="gaussian", obs_scale=0.3)
    p = gaussian.decode(torch.zeros(4, 2))
    assert isinstance(p.base_dist, Normal)
    torch.testing.assert_close(p.base_dist.scale, torch.full((4, 6), 0.3))


def test_elbo_terms_match_torch_distributions():
    torch.manual_seed(0)
    model = VAE.mlp(6, 3, hidden=(8,))
    x = torch.bernoulli(torch.full((5, 6), 0.4))
    terms = model.elbo_terms(x)
    q = model.encode(x)
    torch.testing.assert_close(terms.kl, kl_divergence(q, Independent(Normal(torch.zeros(3), torch.ones(3)), 1)))
    torch.testing.assert_close(terms.kl, model.prior.kl(q))
    torch.testing.assert_close(terms.kl_per_dim.sum(-1), terms.kl)
    torch.testing.assert_close(terms.reconstruction, Independent(Bernoulli(logits=model.decoder(terms.z)), 1).log_prob(x))
    torch.testing.assert_close(model.elbo(x).shape, torch.Size([5]))


def test_reparameterize_method_uses_half_the_log_variance():
    model = VAE.mlp(4, 2, hidden=(3,))
    torch.manual_seed(0)
    z = model.reparameterize(torch.zeros(100_000, 2), torch.full((100_000, 2), math.log(4.0)))
    assert abs(float(z.std()) - 2.0) < 0.02


class _ShiftedPrior(Prior):
    """N(1, I): no closed-form kl(), so the VAE must fall back to Monte Carlo."""

    def __init__(self, latent_dim):
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z):
        return Normal(1.0, 1.0).log_prob(z).sum(-1)

    def sample(self, n):
        return torch.randn(n, self.latent_dim) + 1.0


def test_prior_without_closed_form_kl_uses_a_monte_carlo_kl_with_the_right_mean():
    torch.manual_seed(0)
    model = VAE.mlp(4, 2, hidden=(8,), prior=_ShiftedPrior(2))
    x = torch.rand(3, 4).repeat(20_000, 1)
    terms = model.elbo_terms(x)
    assert terms.kl_per_dim is None
    q = model.encode(x[:3])
    exact = kl_divergence(q, Independent(Normal(torch.ones(2), torch.ones(2)), 1))
    torch.testing.assert_close(terms.kl.view(20_000, 3).mean(0), exact.detach(), atol=0.03, rtol=0)
    assert model.config is None  # a prior without a config cannot be rebuilt from plain data


def test_sample_draws_from_the_prior_through_the_decoder():
    torch.manual_seed(0)
    model = VAE.mlp(5, 2, hidden=(4,))
    s = model.sample(7)
    assert s.shape == (7, 5) and set(s.unique().tolist()) <= {0.0, 1.0}
    mean = model.sample(7, mean=True)
    assert ((mean > 0) & (mean < 1)).all()
    g = VAE.mlp(5, 2, hidden=(4,), likelihood="gaussian", obs_scale=1e-4)
    torch.manual_seed(1)
    noisy = g.sample(3)
    torch.manual_seed(1)
    torch.testing.assert_close(noisy, g.sample(3, mean=True), atol=1e-3, rtol=0)


def test_learned_obs_scale_is_a_parameter_and_gets_gradients():
    model = VAE.mlp(3, 1, hidden=(4,), likelihood="gaussian")
    assert isinstance(model.log_obs_scale, nn.Parameter) and float(model.obs_scale) == 1.0
    model.elbo(torch.randn(8, 3)).mean().backward()
    assert model.log_obs_scale.grad is not None and model.log_obs_scale.grad != 0
    fixed = VAE.mlp(3, 1, hidden=(4,), likelihood="gaussian", obs_scale=0.2)
    assert "log_obs_scale" not in dict(fixed.named_parameters()) and float(fixed.obs_scale) == pytest.approx(0.2)
    assert VAE.mlp(3, 1).obs_scale is None


def test_mlp_builder_shapes_and_dims_read_off_the_layers():
    model = VAE.mlp(10, 4, hidden=(16, 8), activation="tanh")
    assert (model.data_dim, model.latent_dim) == (10, 4)
    assert [m.out_features for m in model.encoder if isinstance(m, nn.Linear)] == [16, 8, 8]
    assert [m.out_features for m in model.decoder if isinstance(m, nn.Linear)] == [8, 16, 10]
    assert isinstance(model.encoder[1], nn.Tanh) and isinstance(model.prior, StandardNormal)
    custom = VAE(nn.Sequential(nn.Linear(7, 6)), nn.Sequential(nn.Linear(3, 7)))
    assert (custom.data_dim, custom.latent_dim) == (7, 3) and custom.config is None


def test_modules_without_linear_layers_need_explicit_dims():
    class Enc(nn.Module):
        def forward(self, x):
            return torch.cat([x[:, :2], torch.zeros_like(x[:, :2])], -1)

    model = VAE(Enc(), nn.Sequential(nn.Linear(2, 4)), latent_dim=2, data_dim=4)
    assert model.elbo(torch.rand(3, 4)).shape == (3,)


# ------------------------------------------------------------------ bad input


@pytest.fixture
def small():
    return VAE.mlp(4, 2, hidden=(3,))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda m: m.elbo(torch.rand(3, 5)), ValueError, r"`x` must have 4 features \(columns\), got 5"),
    (lambda m: m.elbo(torch.rand(3, 4) * 2), ValueError,
     r"`x` must hold values in \[0, 1\] for likelihood='bernoulli', got values from .* rescale the data"),
    (lambda m: m.elbo(torch.rand(3, 4) - 0.5), ValueError, r"must hold values in \[0, 1\]"),
    (lambda m: m.elbo(torch.rand(3, 2, 2)), ValueError, r"flatten images first: x.flatten\(1\)"),
    (lambda m: m.elbo(torch.rand(4)), ValueError, r"`x` must be 2-D of shape \(n_samples, n_features\), got shape \(4,\)"),
    (lambda m: m.elbo(torch.full((2, 4), float("nan"))), ValueError, "`x` must contain only finite values"),
    (lambda m: m.elbo(torch.rand(3, 4), beta=-1), ValueError, "`beta` must be a finite number >= 0, got -1"),
    (lambda m: m.iwae(torch.rand(3, 4), 0), ValueError, "`k` must be an integer >= 1, got 0"),
    (lambda m: m.iwae(torch.rand(3, 4), 2.5), TypeError, "`k` must be an integer >= 1, got 2.5"),
    (lambda m: m.sample(0), ValueError, "`n` must be an integer >= 1, got 0"),
    (lambda m: m.encode((torch.rand(3, 4), torch.zeros(3))), TypeError, r"got a tuple of 2; pass the data alone"),
])
def test_bad_input_to_the_model(small, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(small)


@pytest.mark.parametrize("build, exc, msg", [
    (lambda: VAE.mlp(4, 2, likelihood="poisson"), ValueError, "`likelihood` must be one of 'bernoulli', 'gaussian'; got 'poisson'"),
    (lambda: VAE.mlp(4, 2, obs_scale=0.1), ValueError, "`obs_scale` applies to likelihood='gaussian' only"),
    (lambda: VAE.mlp(4, 2, likelihood="gaussian", obs_scale=0.0), ValueError, "`obs_scale` must be a finite number > 0, got 0.0"),
    (lambda: VAE.mlp(0, 2), ValueError, "`data_dim` must be an integer >= 1, got 0"),
    (lambda: VAE.mlp(4, 0), ValueError, "`latent_dim` must be an integer >= 1, got 0"),
    (lambda: VAE.mlp(4, 2, hidden=(0,)), ValueError, "`hidden` must be an integer >= 1, got 0"),
    (lambda: VAE.mlp(4, 2, activation="sigmoid"), ValueError, "`activation` must be one of 'relu', 'tanh'"),
    (lambda: VAE(nn.Linear(4, 4), nn.Linear(3, 4), latent_dim=3), ValueError,
     r"`encoder` must output 2·latent_dim = 6 numbers \(mean then log-variance\), its last nn.Linear outputs 4"),
    (lambda: VAE(nn.Linear(4, 4), nn.Linear(3, 4)), ValueError,
     "`decoder` must take latent_dim = 2 inputs, its first nn.Linear takes 3"),
    (lambda: VAE(nn.Linear(4, 3), nn.Linear(1, 4)), ValueError, r"`latent_dim` could not be read off the encoder"),
    (lambda: VAE(nn.Linear(4, 4), nn.Linear(2, 5)), ValueError, "`decoder` must output data_dim = 4 numbers per example, its last nn.Linear outputs 5"),
    (lambda: VAE(nn.Linear(4, 4), nn.Linear(2, 4), prior=StandardNormal(3)), ValueError, "`prior` has latent_dim 3, the model has 2"),
    (lambda: VAE(nn.Linear(4, 4), nn.Linear(2, 4), prior="normal"), TypeError, "`prior` must be a vaelab.priors.Prior, got str"),
    (lambda: VAE(lambda x: x, nn.Linear(2, 4)), TypeError, "`encoder` must be a torch.nn.Module, got function"),
    (lambda: VAE(nn.Identity(), nn.Identity(), latent_dim=2), ValueError, r"`data_dim` could not be read off the encoder"),
])
def test_bad_construction(build, exc, msg):
    with pytest.raises(exc, match=msg):
        build()


def test_wrong_network_output_widths_are_caught_at_call_time():
    model = VAE(nn.Identity(), nn.Identity(), latent_dim=2, data_dim=4)  # encoder outputs 4 = 2·2: fine
    with pytest.raises(ValueError, match=r"`decoder` must output data_dim = 4 numbers per example, got shape \(3, 2\)"):
        model.elbo(torch.rand(3, 4))
    model = VAE(nn.Identity(), nn.Identity(), latent_dim=3, data_dim=4)
    with pytest.raises(ValueError, match=r"`encoder` must output 2·latent_dim = 6 numbers .* got shape \(3, 4\)"):
        model.elbo(torch.rand(3, 4))


def test_free_bits_with_a_prior_without_per_dimension_kl_floors_the_total():
    torch.manual_seed(0)
    model = VAE.mlp(4, 3, hidden=(8,), prior=_ShiftedPrior(3))
    x = torch.rand(16, 4)
    torch.manual_seed(1)
    loss, metrics = model.loss(x, free_bits=100.0)  # far above the KL: the floor is all that is left
    torch.testing.assert_close(loss, -metrics["reconstruction"] + 3 * 100.0)


def test_bf16_autocast_keeps_the_objective_in_the_data_precision():
    model = VAE.mlp(6, 2, hidden=(8,))
    x = torch.rand(5, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model.encoder(x).dtype == torch.bfloat16  # the network runs in bf16 ...
        mu, logvar = model.encode_params(x)
        terms = model.elbo_terms(x)
    assert mu.dtype == logvar.dtype == terms.reconstruction.dtype == terms.kl.dtype == torch.float32  # ... the ELBO does not
