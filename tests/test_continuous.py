import math

import numpy as np
import pytest
import torch
from scipy.special import roots_hermitenorm
from scipy.stats import multivariate_normal
from sklearn.decomposition import PCA
from torch import nn
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal, Normal, Uniform

import vaelab
from vaelab import continuous
from vaelab.continuous import (ContinuousMixture, LinearDecoder, fit_mc, fit_ppca, gauss_hermite, isotropic_log_prob,
                               log_mean_exp, mc_estimate, mixture_log_prob, ppca_covariance, ppca_log_prob,
                               ppca_posterior)

F64 = torch.float64


def linear_mixture(data_dim=3, latent_dim=1, obs_scale=1.0, prior=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(data_dim, latent_dim, generator=g, dtype=F64)
    b = torch.randn(data_dim, generator=g, dtype=F64)
    return ContinuousMixture(LinearDecoder(W, b), obs_scale=obs_scale, prior=prior, latent_dim=None if prior else latent_dim)


def curve(z):
    """A non-linear decoder: an arc in 2-D."""
    return torch.cat([2 * torch.sin(z[..., :1]), 2 * torch.cos(z[..., :1]) - 1], -1)


def two_bumps(dtype=F64):
    return MixtureSameFamily(Categorical(torch.tensor([0.3, 0.7], dtype=dtype)),
                             Normal(torch.tensor([-2.0, 1.5], dtype=dtype), torch.tensor([0.4, 0.6], dtype=dtype)))


# ------------------------------------------------------------------ pure functions

@pytest.mark.parametrize("n", [1, 2, 7, 60, 150, 400])
def test_gauss_hermite_matches_scipy(n):
    z, w = gauss_hermite(n)
    z_ref, w_ref = roots_hermitenorm(n)
    w_ref = w_ref / w_ref.sum()
    np.testing.assert_allclose(z[:, 0].numpy(), z_ref, atol=1e-11 * max(1, n))
    big = w_ref > 1e-8
    np.testing.assert_allclose(w.numpy()[big], w_ref[big], rtol=1e-9)
    assert abs(float(w.sum()) - 1) < 1e-14


def test_gauss_hermite_is_exact_for_polynomials_up_to_degree_2n_minus_1():
    z, w = gauss_hermite(4)
    moments = [float((w * z[:, 0] ** k).sum()) for k in range(8)]
    # E z^k for a standard normal: 0 for odd k, (k-1)!! for even k
    np.testing.assert_allclose(moments, [1, 0, 1, 0, 3, 0, 15, 0], atol=1e-12)
    assert abs(float((w * z[:, 0] ** 8).sum()) - 105) > 1  # degree 2n is not integrated exactly


def test_gauss_hermite_2d_is_the_tensor_product():
    z, w = gauss_hermite(5, 2)
    assert z.shape == (25, 2) and w.shape == (25,)
    assert abs(float((w * z[:, 0] ** 2 * z[:, 1] ** 4).sum()) - 3) < 1e-12
    assert abs(float((w * z[:, 0] * z[:, 1]).sum())) < 1e-14


def test_log_mean_exp_matches_naive_and_survives_underflow():
    a = torch.randn(4, 9, dtype=F64)
    torch.testing.assert_close(log_mean_exp(a, dim=-1), a.exp().mean(-1).log())
    torch.testing.assert_close(log_mean_exp(a - 2000, dim=1), a.exp().mean(-1).log() - 2000)
    torch.testing.assert_close(log_mean_exp(a, dim=0), a.exp().mean(0).log())


def test_mc_estimate_standard_error_is_std_over_sqrt_n_mean():
    w = torch.rand(3, 50, dtype=F64) + 0.1
    est, se = mc_estimate(w.log())
    torch.testing.assert_close(est, w.mean(-1).log())
    torch.testing.assert_close(se, w.std(-1) / (math.sqrt(50) * w.mean(-1)))
    est1, se1 = mc_estimate(w[:, :1].log())
    assert torch.isinf(se1).all() and torch.allclose(est1, w[:, 0].log())


def test_isotropic_log_prob_matches_scipy_and_chunks(monkeypatch):
    x, means = torch.randn(7, 3, dtype=F64), torch.randn(4, 3, dtype=F64)
    expected = np.stack([multivariate_normal(m, 0.49 * np.eye(3)).logpdf(x.numpy()) for m in means.numpy()], 1)
    np.testing.assert_allclose(isotropic_log_prob(x, means, 0.7).numpy(), expected, rtol=1e-12)
    monkeypatch.setattr(continuous, "_CHUNK", 10)  # one row per chunk
    np.testing.assert_allclose(isotropic_log_prob(x, means, 0.7).numpy(), expected, rtol=1e-12)


def test_mixture_log_prob_matches_scipy():
    x, means = torch.randn(6, 2, dtype=F64), torch.randn(3, 2, dtype=F64)
    weights = torch.tensor([0.2, 0.0, 0.8], dtype=F64)  # a zero weight must not give NaN
    dens = sum(w * multivariate_normal(m, 0.25 * np.eye(2)).pdf(x.numpy()) for w, m in zip(weights.numpy(), means.numpy()))
    np.testing.assert_allclose(mixture_log_prob(x, means, weights, 0.5).numpy(), np.log(dens), rtol=1e-12)


# ------------------------------------------------------------------ probabilistic PCA in closed form

def test_ppca_log_prob_matches_scipy():
    g = torch.Generator().manual_seed(1)
    W, b, x = (torch.randn(4, 2, generator=g, dtype=F64), torch.randn(4, generator=g, dtype=F64),
               torch.randn(10, 4, generator=g, dtype=F64))
    C = ppca_covariance(W, 0.3)
    torch.testing.assert_close(C, W @ W.T + 0.09 * torch.eye(4, dtype=F64))
    expected = multivariate_normal(b.numpy(), C.numpy()).logpdf(x.numpy())
    np.testing.assert_allclose(ppca_log_prob(x, W, b, 0.3).numpy(), expected, rtol=1e-12)


def test_ppca_log_prob_matches_scikit_learn_pca_score_samples():
    X = vaelab.data.digits("test")[0].double()[:, :20]
    pca = PCA(n_components=3).fit(X.numpy())
    W = torch.from_numpy(pca.components_.T * np.sqrt(pca.explained_variance_ - pca.noise_variance_))
    b = torch.from_numpy(pca.mean_)
    np.testing.assert_allclose(ppca_log_prob(X, W, b, math.sqrt(pca.noise_variance_)).numpy(),
                               pca.score_samples(X.numpy()), rtol=1e-10)


def test_fit_ppca_is_the_maximum_likelihood_solution():
    X = vaelab.data.digits("test")[0].double()[:, 10:30]
    W, b, s = fit_ppca(X, 3)
    n = X.shape[0]
    # scikit-learn's PCA divides by n − 1; maximum likelihood divides by n
    sk = PCA(n_components=3).fit(X.numpy()).get_covariance()
    np.testing.assert_allclose(ppca_covariance(W, s).numpy(), sk * (n - 1) / n, atol=1e-10)
    best = ppca_log_prob(X, W, b, s).mean()
    g = torch.Generator().manual_seed(0)
    for _ in range(5):  # no nearby parameters do better
        dW = 1e-3 * torch.randn(W.shape, generator=g, dtype=F64)
        assert ppca_log_prob(X, W + dW, b + 1e-3, s * 1.01).mean() < best


def test_ppca_posterior_is_bayes_rule():
    g = torch.Generator().manual_seed(2)
    W, b = torch.randn(3, 2, generator=g, dtype=F64), torch.randn(3, generator=g, dtype=F64)
    x, z = torch.randn(4, 3, generator=g, dtype=F64), torch.randn(4, 2, generator=g, dtype=F64)
    mean, cov = ppca_posterior(x, W, b, 0.5)
    # log p(z|x) = log p(x|z) + log p(z) − log p(x)
    bayes = (isotropic_log_prob(x, z @ W.T + b, 0.5).diagonal() + Normal(0, 1).log_prob(z).sum(-1)
             - ppca_log_prob(x, W, b, 0.5))
    torch.testing.assert_close(MultivariateNormal(mean, cov).log_prob(z), bayes)


# ------------------------------------------------------------------ the continuous mixture: truth

@pytest.mark.parametrize("latent_dim, n", [(1, 150), (2, 160)])
@pytest.mark.parametrize("prior_kind", ["standard", "scaled", "correlated"])
def test_quadrature_equals_closed_form(latent_dim, n, prior_kind):
    loc = torch.linspace(-0.5, 0.7, latent_dim, dtype=F64)
    prior = {"standard": None,
             "scaled": Normal(loc, torch.linspace(0.5, 1.5, latent_dim, dtype=F64)),
             "correlated": MultivariateNormal(loc, torch.eye(latent_dim, dtype=F64) * 0.8 + 0.3)}[prior_kind]
    if prior_kind == "scaled" and latent_dim == 1:
        prior = Normal(torch.tensor(0.4, dtype=F64), torch.tensor(1.7, dtype=F64))  # a scalar prior is a 1-D latent
    mix = linear_mixture(latent_dim=latent_dim, prior=prior, obs_scale=1.5)
    x, _ = mix.sample(20, seed=0)
    torch.testing.assert_close(mix.log_prob(x, "quadrature", n=n), mix.log_prob(x, "exact"), rtol=0, atol=1e-8)
    if prior_kind == "correlated":  # and the closed form is scipy's multivariate normal
        W, b = mix.decoder.W.detach(), mix.decoder.b.detach()
        cov = (W @ prior.covariance_matrix @ W.T + 2.25 * torch.eye(3, dtype=F64)).numpy()
        expected = multivariate_normal((W @ loc + b).numpy(), cov).logpdf(x.numpy())
        np.testing.assert_allclose(mix.log_prob(x, "exact").detach().numpy(), expected, rtol=1e-12)


def test_nn_linear_decoder_is_recognised_as_linear():
    torch.manual_seed(0)
    lin = nn.Linear(2, 3).double()
    mix = ContinuousMixture(lin, obs_scale=0.8)  # latent_dim read from the layer
    assert mix.latent_dim == 2 and mix.data_dim == 3
    x = torch.randn(5, 3, dtype=F64)
    expected = ppca_log_prob(x, lin.weight.detach(), lin.bias.detach(), 0.8)
    torch.testing.assert_close(mix.log_prob(x, "exact"), expected)
    torch.testing.assert_close(mix(x), expected)  # forward picks the exact route
    torch.testing.assert_close(mix.log_prob(x, n=80), expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_monte_carlo_within_four_standard_errors(latent_dim):
    mix = linear_mixture(data_dim=5, latent_dim=latent_dim, obs_scale=2.0)
    x, _ = mix.sample(30, seed=1)
    est, se = mix.log_prob_mc(x, 4000, seed=2)
    exact = mix.log_prob(x, "exact")
    assert ((est - exact).abs() < 4 * se).all()
    assert (se > 0).all() and (se < 0.5).all()
    torch.testing.assert_close(mix.log_prob(x, "mc", 4000, seed=2), est)


def test_monte_carlo_standard_error_describes_the_spread_of_the_estimates():
    mix = linear_mixture(data_dim=3, latent_dim=2, obs_scale=0.7)
    x = mix.sample(1, seed=3)[0]
    with torch.no_grad():
        runs = [mix.log_prob_mc(x, 200, seed=s) for s in range(300)]
    estimates = torch.stack([r[0] for r in runs])
    mean_se = torch.stack([r[1] for r in runs]).mean()
    assert 0.8 < float(estimates.std() / mean_se) < 1.25
    # log p̂ is biased low (Jensen), by about se²/2
    bias = float(estimates.mean() - mix.log_prob(x, "exact").detach())
    assert -4 * mean_se**2 < bias < 0.5 * mean_se**2 + 3 * float(estimates.std()) / math.sqrt(300)


def test_seed_repeats_draws_and_leaves_the_global_generator_alone():
    mix = linear_mixture()
    x = torch.zeros(2, 3, dtype=F64)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a, b = mix.log_prob_mc(x, 50, seed=7), mix.log_prob_mc(x, 50, seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(mix.log_prob_mc(x, 50, seed=8)[0], a[0])
    assert torch.equal(mix.sample(4, seed=1)[0], mix.sample(4, seed=1)[0])


def test_samples_have_the_ppca_mean_and_covariance():
    mix = linear_mixture(data_dim=3, latent_dim=2, obs_scale=0.5)
    x, z = mix.sample(40000, seed=0)
    assert x.shape == (40000, 3) and z.shape == (40000, 2)
    W, b = mix.decoder.W.detach(), mix.decoder.b.detach()
    torch.testing.assert_close(x.mean(0), b, rtol=0, atol=0.05)
    torch.testing.assert_close(torch.cov(x.T), ppca_covariance(W, 0.5), rtol=0, atol=0.1)


# ------------------------------------------------------------------ finite(K) -> the continuum

def test_finite_with_quadrature_nodes_is_the_quadrature_rule():
    mix = ContinuousMixture(curve, obs_scale=0.4, prior=Normal(torch.tensor(0.3, dtype=F64), torch.tensor(0.9, dtype=F64)))
    x = torch.tensor([[0.0, 1.0], [1.5, -0.5], [-3.0, 2.0]], dtype=F64)
    gm = mix.finite(30)
    assert isinstance(gm, vaelab.GaussianMixture) and gm.n_components == 30
    assert gm.covariance_type == "spherical" and torch.allclose(gm.covariances_, torch.tensor(0.16, dtype=F64))
    torch.testing.assert_close(gm.score_samples(x), mix.log_prob(x, "quadrature", n=30), rtol=0, atol=1e-10)
    z, w = mix.components(30)
    torch.testing.assert_close(gm.means_, curve(z))
    torch.testing.assert_close(gm.weights_, w)


def test_finite_converges_to_quadrature_at_measured_rates():
    mix = ContinuousMixture(LinearDecoder(torch.tensor([[1.0], [0.5]], dtype=F64)), obs_scale=0.5)
    x = torch.tensor([[0.0, 0.0], [1.0, 0.3], [-2.0, -1.0]], dtype=F64)
    truth = mix.log_prob(x, "quadrature", n=100).detach()
    Ks = [32, 64, 128, 256]
    err = {nodes: np.array([float((mix.finite(K, nodes).score_samples(x) - truth).abs().max()) for K in Ks])
           for nodes in ("quadrature", "quantile", "grid")}
    # quantile nodes (equal weights): algebraic, steeper than K^-1.5 on the last doublings
    slopes = np.diff(np.log(err["quantile"])) / np.log(2)
    assert (slopes < -1.5).all() and err["quantile"][-1] < 1e-3
    # Gauss–Hermite: faster than any power, down to rounding by K = 128
    assert err["quadrature"][1] < 1e-3 * err["quadrature"][0] and err["quadrature"][2] < 1e-12
    # the grid (midpoint rule over ±6 prior standard deviations): geometric until the truncated tails
    assert err["grid"][0] < 1e-2 and err["grid"][1] < 1e-8


def test_components_for_non_normal_priors():
    mix = ContinuousMixture(curve, obs_scale=0.3, prior=Uniform(torch.tensor(-2.0, dtype=F64), torch.tensor(2.0, dtype=F64)))
    zq, wq = mix.components(8, "quantile")
    zg, wg = mix.components(8, "grid")
    torch.testing.assert_close(zq, torch.linspace(-1.75, 1.75, 8, dtype=F64)[:, None])
    torch.testing.assert_close((zq, wq), (zg, wg))  # uniform: equal weights at evenly spaced points either way
    bumps = ContinuousMixture(curve, obs_scale=0.3, prior=two_bumps())
    z, w = bumps.components(10, "quantile")
    torch.testing.assert_close(two_bumps().cdf(z[:, 0]), (torch.arange(10, dtype=F64) + 0.5) / 10)
    z, w = bumps.components(400, "grid")
    assert abs(float(w.sum()) - 1) < 1e-12 and abs(float((w * z[:, 0]).sum()) - two_bumps().mean) < 1e-9


def test_grid_in_two_dimensions_converges_too():
    prior = Normal(torch.zeros(2, dtype=F64), torch.tensor([1.0, 0.5], dtype=F64))
    mix = linear_mixture(latent_dim=2, prior=prior, obs_scale=1.0)
    x, _ = mix.sample(5, seed=0)
    z, w = mix.components(40 * 40, "grid")
    got = mixture_log_prob(x, mix.decoder(z).detach(), w, 1.0)
    torch.testing.assert_close(got, mix.log_prob(x, "exact"), rtol=0, atol=1e-7)


def test_monte_carlo_matches_a_fine_grid_for_a_non_normal_prior():
    mix = ContinuousMixture(curve, obs_scale=0.3, prior=two_bumps())
    x = torch.tensor([[0.0, 1.0], [-1.8, -1.5]], dtype=F64)
    z, w = mix.components(4000, "grid")
    fine = mixture_log_prob(x, curve(z), w, 0.3)
    est, se = mix.log_prob_mc(x, 20000, seed=0)
    assert ((est - fine).abs() < 4 * se).all()


def test_fit_mc_learns_a_linear_decoder_close_to_the_ppca_optimum():
    truth = ContinuousMixture(LinearDecoder(torch.tensor([[1.5], [-0.8]])), obs_scale=0.4)
    X, _ = truth.sample(300, seed=0)
    torch.manual_seed(0)
    model = ContinuousMixture(nn.Linear(1, 2), obs_scale=0.4, latent_dim=1)
    before = float(model.log_prob(X, "exact").mean())
    history = fit_mc(model, X, n_samples=128, epochs=300, lr=0.05, seed=0)
    assert len(history) == 300 and history[-1] > history[0]
    after = float(model.log_prob(X, "exact").mean())
    best = float(truth.log_prob(X, "exact").mean())
    assert after > before + 1 and after > best - 0.05


def test_fit_mc_with_minibatches_runs_and_improves():
    X = vaelab.data.toy("moons", 200)
    torch.manual_seed(0)
    model = ContinuousMixture(nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 2)), obs_scale=0.3, latent_dim=1)
    history = fit_mc(model, X, n_samples=64, epochs=15, lr=0.02, batch_size=64, seed=1)
    assert np.mean(history[-3:]) > history[0]


@pytest.mark.gpu
def test_log_prob_on_gpu_matches_cpu():
    mix = linear_mixture(latent_dim=2)
    x, _ = mix.sample(10, seed=0)
    expected = mix.log_prob(x, n=60)
    dev = torch.device("cuda")
    prior = Normal(torch.zeros(2, dtype=F64, device=dev), torch.ones(2, dtype=F64, device=dev))
    gpu = ContinuousMixture(LinearDecoder(mix.decoder.W.detach().to(dev), mix.decoder.b.detach().to(dev)),
                            obs_scale=1.0, prior=prior)
    torch.testing.assert_close(gpu.log_prob(x.to(dev), n=60).cpu(), expected)
    torch.testing.assert_close(gpu.log_prob(x.to(dev), "exact").cpu(), mix.log_prob(x, "exact"))
    est, se = gpu.log_prob_mc(x.to(dev), 2000, seed=0)
    assert ((est.cpu() - expected).abs() < 4 * se.cpu()).all()


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("obs_scale", [0, -1.0])
def test_obs_scale_must_be_positive(obs_scale):
    with pytest.raises(ValueError, match=r"`obs_scale` must be a finite number > 0"):
        ContinuousMixture(curve, obs_scale=obs_scale, latent_dim=1)
    with pytest.raises(ValueError, match=r"`obs_scale` must be a finite number > 0"):
        ppca_log_prob(torch.zeros(1, 2), torch.ones(2, 1), torch.zeros(2), obs_scale)


@pytest.mark.parametrize("method", ["quadrature", "mc"])
def test_n_must_be_at_least_one(method):
    mix = linear_mixture()
    with pytest.raises(ValueError, match=r"`n` must be an integer >= 1, got 0"):
        mix.log_prob(torch.zeros(1, 3), method, n=0)
    with pytest.raises(ValueError, match=r"`n_components` must be an integer >= 1, got 0"):
        mix.finite(0)


def test_exact_needs_a_linear_decoder():
    mix = ContinuousMixture(curve, obs_scale=0.5, latent_dim=1)
    with pytest.raises(ValueError, match=r"method='exact' needs a linear decoder .* got function"):
        mix.log_prob(torch.zeros(1, 2), "exact")
    with pytest.raises(ValueError, match=r"`n` has no meaning for method='exact'"):
        linear_mixture().log_prob(torch.zeros(1, 3), "exact", n=10)


def test_quadrature_needs_latent_dim_at_most_two():
    mix = linear_mixture(latent_dim=3)
    with pytest.raises(ValueError, match=r"method='quadrature' works for latent_dim ≤ 2 .* got latent_dim=3; use method='mc'"):
        mix.log_prob(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"latent_dim ≤ 2 .* got latent_dim=3"):
        mix.finite(8)
    with pytest.raises(ValueError, match=r"`latent_dim` must be 1 or 2"):
        gauss_hermite(3, 3)


def test_quadrature_and_exact_need_a_normal_prior():
    mix = ContinuousMixture(LinearDecoder(torch.ones(2, 1)), obs_scale=0.5, prior=Uniform(-1.0, 1.0))
    with pytest.raises(ValueError, match=r"method='exact' needs a normal prior .* got Uniform"):
        mix.log_prob(torch.zeros(1, 2), "exact")
    # quadrature is not tied to a normal prior in general, only this Gauss–Hermite rule is: the message says so
    with pytest.raises(ValueError, match=r"method='quadrature' is Gauss–Hermite, the Gaussian rule for a normal "
                                         r"prior .* got Uniform; use finite.*F⁻¹\(Φ\(z\)\)"):
        mix.log_prob(torch.zeros(1, 2), "quadrature")
    with pytest.raises(ValueError, match=r"nodes='quadrature' is Gauss–Hermite"):
        mix.finite(4)


def test_wrong_latent_shape():
    mix = ContinuousMixture(curve, obs_scale=0.5, latent_dim=1)
    with pytest.raises(ValueError, match=r"`z` must have shape \(\.\.\., latent_dim\) = \(\.\.\., 1\), got shape \(4, 2\)"):
        mix.decode(torch.zeros(4, 2))
    assert mix.decode(torch.zeros(3, 5, 1)).shape == (3, 5, 2)
    with pytest.raises(ValueError, match=r"`decoder` failed on z of shape \(1, 3\) \(the prior's latent_dim\)"):
        ContinuousMixture(nn.Linear(2, 4), obs_scale=1.0, latent_dim=3)
    with pytest.raises(ValueError, match=r"`latent_dim`=2 disagrees with the prior's event shape \(1,\)"):
        ContinuousMixture(curve, obs_scale=1.0, prior=Normal(0.0, 1.0), latent_dim=2)
    with pytest.raises(ValueError, match=r"`prior` must be a distribution over z of shape \(latent_dim,\), got batch shape \(3, 2\)"):
        ContinuousMixture(curve, obs_scale=1.0, prior=Normal(torch.zeros(3, 2), 1.0))
    with pytest.raises(ValueError, match=r"`decoder` must map z of shape \(n, latent_dim\) to means of shape \(n, data_dim\), got \(1,\)"):
        ContinuousMixture(lambda z: z.sum(-1), obs_scale=1.0, latent_dim=1)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match=r"`latent_dim` is needed when no `prior` is given"):
        ContinuousMixture(curve, obs_scale=1.0)
    with pytest.raises(TypeError, match=r"`prior` must be a torch.distributions.Distribution, got str"):
        ContinuousMixture(curve, obs_scale=1.0, prior="normal")
    with pytest.raises(TypeError, match=r"`decoder` must be callable"):
        ContinuousMixture(3, obs_scale=1.0, latent_dim=1)
    mix = linear_mixture()
    with pytest.raises(ValueError, match=r"`x` must have 3 features \(columns\), got 2"):
        mix.log_prob(torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"`x` must be 2-D"):
        mix.log_prob(torch.zeros(3))
    with pytest.raises(ValueError, match=r"`method` must be one of 'quadrature', 'mc', 'exact'; got 'simpson'"):
        mix.log_prob(torch.zeros(1, 3), "simpson")
    with pytest.raises(ValueError, match=r"`nodes` must be one of 'quadrature', 'quantile', 'grid'"):
        mix.components(4, "random")
    with pytest.raises(ValueError, match=r"`n_components` must be a perfect square for a 2-D grid, got 10; try 9 or 16"):
        linear_mixture(latent_dim=2).finite(10)
    with pytest.raises(ValueError, match=r"nodes='quantile' needs latent_dim = 1, got 2"):
        linear_mixture(latent_dim=2).components(9, "quantile")
    with pytest.raises(ValueError, match=r"`b` must have shape \(data_dim,\) = \(3,\)"):
        ppca_log_prob(torch.zeros(1, 3), torch.ones(3, 1), torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"`W` must be 2-D of shape \(data_dim, latent_dim\), got shape \(3,\)"):
        LinearDecoder(torch.ones(3))
    with pytest.raises(ValueError, match=r"`latent_dim` must be smaller than the number of features \(3\)"):
        fit_ppca(torch.randn(10, 3), 3)
    with pytest.raises(TypeError, match=r"`mixture.decoder` must be an nn.Module with trainable parameters"):
        fit_mc(ContinuousMixture(curve, obs_scale=1.0, latent_dim=1), torch.zeros(5, 2), epochs=1)
    with pytest.raises(ValueError, match=r"`n_samples` must be an integer >= 1, got 0"):
        fit_mc(mix, torch.zeros(5, 3), n_samples=0)


@pytest.mark.parametrize("kind", ["normal", "uniform", "two-bump"])
def test_example_priors_share_their_standard_deviation(kind):
    prior = continuous.example_prior(kind, 1.7)
    assert abs(float(prior.stddev) - 1.7) < 1e-12 and abs(float(prior.mean)) < 1e-12
    z = prior.sample((200000,))
    assert abs(float(z.std()) - 1.7) < 0.02
    with pytest.raises(ValueError, match=r"`kind` must be one of 'normal', 'uniform', 'two-bump'; got 'laplace'"):
        continuous.example_prior("laplace")


def test_log_prob_is_an_evaluation_without_gradients():
    mix = linear_mixture()
    x, _ = mix.sample(3, seed=0)
    for method in ("quadrature", "mc", "exact"):
        assert not mix.log_prob(x, method).requires_grad
    assert mix.decode(torch.zeros(2, 1, dtype=F64)).requires_grad  # the decoder itself stays differentiable


def test_blocks_of_rows_give_the_same_answer(monkeypatch):
    mix = linear_mixture(latent_dim=2, obs_scale=1.5)
    x, _ = mix.sample(7, seed=0)
    whole = mix.log_prob(x, n=12), mix.log_prob_mc(x, 50, seed=0)
    z, w = mix.components(16, "grid")
    finite = mixture_log_prob(x, mix.decode(z).detach(), w, 1.5)
    monkeypatch.setattr(continuous, "_CHUNK", 100)  # 100 numbers: one row of x per block
    torch.testing.assert_close(mixture_log_prob(x, mix.decode(z).detach(), w, 1.5), finite, rtol=0, atol=1e-12)
    torch.testing.assert_close(mix.log_prob(x, n=12), whole[0], rtol=0, atol=1e-12)
    torch.testing.assert_close(mix.log_prob_mc(x, 50, seed=0), whole[1], rtol=0, atol=1e-12)
