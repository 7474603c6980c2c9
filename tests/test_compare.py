import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from torch import nn

from vaelab import compare
from vaelab.bernoulli_mixture import BernoulliMixture
from vaelab.gmm import GaussianMixture


@pytest.mark.parametrize("covariance_type, by_hand", [
    # K = 3, D = 4: 2 weights + 12 means + covariances
    ("full", 2 + 12 + 3 * 10), ("diag", 2 + 12 + 12), ("spherical", 2 + 12 + 3), ("tied", 2 + 12 + 10)])
def test_gmm_count_by_hand(covariance_type, by_hand):
    assert compare.gmm_n_parameters(3, 4, covariance_type) == by_hand


def test_gmm_count_for_the_digits():
    # K - 1 + K·D + K·D(D+1)/2 with D = 64: 2080 numbers in one symmetric 64 × 64 covariance
    assert compare.gmm_n_parameters(1, 64, "full") == 0 + 64 + 2080
    assert compare.gmm_n_parameters(100, 64, "full") == 99 + 6400 + 208_000
    assert compare.gmm_n_parameters(100, 64, "diag") == 99 + 6400 + 6400


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_count_agrees_with_scikit_learn(covariance_type):
    X = np.random.default_rng(0).normal(size=(60, 5))
    sk = SkGaussianMixture(4, covariance_type=covariance_type, random_state=0).fit(X)
    assert compare.gmm_n_parameters(4, 5, covariance_type) == sk._n_parameters()
    assert compare.n_parameters(sk) == sk._n_parameters()


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_count_of_a_fitted_vaelab_mixture(covariance_type):
    X = np.random.default_rng(0).normal(size=(60, 5))
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    assert compare.n_parameters(gm) == gm._n_parameters() == compare.gmm_n_parameters(3, 5, covariance_type)


def test_count_of_a_bernoulli_mixture_and_of_modules():
    bm = BernoulliMixture(3, random_state=0).fit(np.eye(6))
    assert compare.n_parameters(bm) == 2 + 3 * 6
    layer = nn.Linear(4, 3)
    assert compare.n_parameters(layer) == 4 * 3 + 3
    shared = nn.Sequential(layer, nn.ReLU(), nn.Linear(3, 4))
    shared.add_module("again", layer)  # the same weights twice are one set of parameters
    assert compare.n_parameters(shared) == 15 + 16


def test_count_of_a_vae_and_of_its_generative_part():
    from vaelab.models import VAE

    model = VAE.mlp(64, 8, hidden=(128,), likelihood="gaussian")
    encoder = 64 * 128 + 128 + 128 * 16 + 16
    decoder = 8 * 128 + 128 + 128 * 64 + 64
    assert compare.n_parameters(model.encoder) == encoder
    assert compare.n_parameters(model) == encoder + decoder + 1  # + the learned obs_scale
    assert compare.n_parameters(model) - compare.n_parameters(model.encoder) == decoder + 1


def test_count_of_linear_gaussian_models():
    from sklearn.decomposition import PCA, FactorAnalysis

    X = np.random.default_rng(0).normal(size=(40, 6))
    # probabilistic PCA: W (L·D) + mean (D) + one shared σ²; factor analysis: a variance per feature
    assert compare.n_parameters(PCA(2).fit(X)) == 2 * 6 + 6 + 1
    assert compare.n_parameters(FactorAnalysis(2).fit(X)) == 2 * 6 + 6 + 6


def test_count_errors():
    with pytest.raises(ValueError, match=r"`model` \(GaussianMixture\) is not fitted yet"):
        compare.n_parameters(GaussianMixture(2))
    with pytest.raises(TypeError, match="must be a fitted Gaussian or Bernoulli mixture, a fitted PCA or FactorAnalysis, or a torch.nn.Module, got str"):
        compare.n_parameters("gmm")
    with pytest.raises(ValueError, match="`covariance_type` must be one of"):
        compare.gmm_n_parameters(2, 3, "diagonal")
    with pytest.raises(ValueError, match="`n_components` must be an integer >= 1"):
        compare.gmm_n_parameters(0, 3)


def test_dequantize_stays_in_the_bin_of_each_level():
    from vaelab import data

    X, _ = data.digits("test")
    x = compare.dequantize(X, 17, seed=0)
    assert x.shape == X.shape and x.dtype == X.dtype
    torch.testing.assert_close((x * 17).floor(), (X * 16).round())
    frac = x * 17 - (x * 17).floor()
    assert abs(float(frac.mean()) - 0.5) < 0.01 and abs(float(frac.var()) - 1 / 12) < 0.005  # U(0, 1)
    torch.testing.assert_close(compare.dequantize(X, seed=0), x, rtol=0, atol=0)
    assert not torch.equal(compare.dequantize(X, seed=1), x)


def test_dequantize_errors():
    with pytest.raises(ValueError, match=r"`x` must hold the 17 levels k / 16 .* 1 of them between levels"):
        compare.dequantize(torch.tensor([[0.0, 0.03]]))
    with pytest.raises(ValueError, match=r"got values from 0 to 2"):
        compare.dequantize(torch.tensor([[0.0, 2.0]]))
    with pytest.raises(ValueError, match="`n_levels` must be an integer >= 2"):
        compare.dequantize(torch.zeros(1, 1), 1)


def test_dequantized_log_pmf_is_exact_for_a_density_constant_on_each_bin():
    # independent pixels with a pmf P_d over L levels; the density constant on each bin is L · P_d(v)
    L, D = 5, 3
    rng = np.random.default_rng(0)
    pmf = rng.dirichlet(np.ones(L), size=D)  # (D, L)
    v = rng.integers(0, L, size=(10, D))
    x = compare.dequantize(torch.from_numpy(v / (L - 1)), L, seed=0)
    bins = (x * L).floor().long().numpy()
    log_density = np.log(L * pmf[np.arange(D), bins]).sum(1)
    log_pmf = np.log(pmf[np.arange(D), v]).sum(1)
    got = compare.dequantized_log_pmf(torch.from_numpy(log_density), D, L)
    np.testing.assert_allclose(got.numpy(), log_pmf, rtol=1e-12)


def test_dequantized_log_pmf_is_a_lower_bound_for_a_gaussian():
    # one pixel, 4 levels, bins of width ¼; P(v) = Φ(b) − Φ(a) exactly, E_u log p by quadrature
    L, density = 4, stats.norm(0.4, 0.2)
    u = (np.arange(20_000) + 0.5) / 20_000
    for v in range(L):
        exact = math.log(density.cdf((v + 1) / L) - density.cdf(v / L))
        expected_log_density = density.logpdf((v + u) / L).mean()
        bound = float(compare.dequantized_log_pmf(torch.tensor([expected_log_density]), 1, L))
        assert bound <= exact and exact - bound < 0.5  # Jensen's gap: small, never negative


def test_nats_to_bits():
    assert compare.nats_to_bits(math.log(8)) == pytest.approx(3.0)
    torch.testing.assert_close(compare.nats_to_bits(torch.tensor([math.log(2), 0.0])), torch.tensor([1.0, 0.0]))


def test_mixture_rate():
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(4), size=50)
    resp[0] = [1.0, 0.0, 0.0, 0.0]  # exact zeros: 0 · log 0 = 0
    weights = rng.dirichlet(np.ones(4))
    expected = np.mean([stats.entropy(r, weights) for r in resp])
    assert compare.mixture_rate(resp, weights) == pytest.approx(expected, rel=1e-10)
    # a code that says nothing costs nothing; a hard assignment with uniform weights costs log K
    assert compare.mixture_rate(np.tile(weights, (3, 1)), weights) == pytest.approx(0.0, abs=1e-12)
    assert compare.mixture_rate(np.eye(4), np.full(4, 0.25)) == pytest.approx(math.log(4))
    # ... but the rate is not bounded by log K: hard assignments against a prior far from their mean
    skewed = np.array([0.7, 0.1, 0.1, 0.1])
    assert compare.mixture_rate(np.eye(4), skewed) == pytest.approx(-np.log(skewed).mean())
    assert compare.mixture_rate(np.eye(4), skewed) > math.log(4)
    with pytest.raises(ValueError, match=r"`resp` must be of shape \(n_samples, n_components\)"):
        compare.mixture_rate(np.eye(4), np.full(3, 1 / 3))


def test_mixture_rate_terms_split_the_rate():
    rng = np.random.default_rng(1)
    resp = rng.dirichlet(np.full(5, 0.3), size=200)
    weights = rng.dirichlet(np.ones(5))
    terms = compare.mixture_rate_terms(resp, weights)
    marginal = resp.mean(0)
    assert terms.rate == pytest.approx(compare.mixture_rate(resp, weights), rel=1e-12)
    assert terms.rate == pytest.approx(terms.information + terms.prior_mismatch, rel=1e-12)
    # independent formulas: I = H(γ̄) − mean H(γ_n) and KL(γ̄ || π), with scipy
    assert terms.information == pytest.approx(stats.entropy(marginal) - np.mean([stats.entropy(r) for r in resp]))
    assert terms.prior_mismatch == pytest.approx(stats.entropy(marginal, weights))
    assert terms.entropy == pytest.approx(stats.entropy(marginal))
    assert 0 <= terms.information <= terms.entropy <= math.log(5)
    # at π = γ̄ (EM's fixed point on the training data) the rate is all information
    at_fixed_point = compare.mixture_rate_terms(resp, marginal)
    assert at_fixed_point.prior_mismatch == pytest.approx(0.0, abs=1e-12)
    # hard assignments, K = 4, a skewed prior: 2 bits of information, 2.62 bits of rate
    hard = compare.mixture_rate_terms(np.eye(4), [0.7, 0.1, 0.1, 0.1])
    assert hard.information == pytest.approx(math.log(4)) and hard.rate / math.log(2) == pytest.approx(2.62, abs=0.005)


def test_level_bins():
    lower, upper = compare.level_bins(torch.tensor([[0.0, 0.5, 1.0]]), 3)
    torch.testing.assert_close(lower, torch.tensor([[0.0, 1 / 3, 2 / 3]]))
    torch.testing.assert_close(upper, torch.tensor([[1 / 3, 2 / 3, 1.0]]))
    with pytest.raises(ValueError, match="`x` must hold the 17 levels"):
        compare.level_bins(torch.tensor([[0.03]]))


def test_normal_log_interval_against_scipy():
    rng = np.random.default_rng(0)
    loc, scale = rng.normal(size=50), rng.uniform(0.5, 2, size=50)
    lower = rng.normal(size=50) * 1.5
    upper = lower + rng.uniform(0.01, 1, size=50)
    density = stats.norm(loc, scale)
    # above the mean, the difference of survival functions keeps scipy's own digits
    expected = np.log(np.where(lower > loc, density.sf(lower) - density.sf(upper), density.cdf(upper) - density.cdf(lower)))
    got = compare.normal_log_interval(torch.from_numpy(lower), torch.from_numpy(upper), torch.from_numpy(loc),
                                      torch.from_numpy(scale))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)
    # far in either tail, where Φ(b) − Φ(a) underflows or cancels: scipy's log survival functions
    for a, b in ((40.0, 41.0), (-41.0, -40.0), (8.0, 8.001)):
        far = stats.norm.logsf(abs(a) if a > 0 else -b)
        near = stats.norm.logsf(abs(b) if a > 0 else -a)
        expected = far + math.log1p(-math.exp(near - far))
        got = float(compare.normal_log_interval(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64), 0.0, 1.0))
        assert got == pytest.approx(expected, rel=1e-9)
    # open ends: the whole line has probability 1
    assert float(compare.normal_log_interval(-math.inf, math.inf, 0.3, 2.0)) == pytest.approx(0.0, abs=1e-15)


def test_normal_log_interval_errors():
    with pytest.raises(ValueError, match="`upper` must be greater than `lower`"):
        compare.normal_log_interval(1.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="`scale` must be > 0"):
        compare.normal_log_interval(0.0, 1.0, 0.0, 0.0)


def _brute_force_log_pmf(weights, means, variances, v, L):
    # independent: scipy's normal CDF, a loop over components, no log-space tricks
    p = np.zeros(len(v))
    for w, mu, var in zip(weights, means, variances):
        cdf = stats.norm(mu, np.sqrt(var)).cdf
        p += w * np.prod(cdf((v + 1) / L) - cdf(v / L), axis=1)
    return np.log(p)


def test_discretized_gmm_log_pmf_against_scipy_and_the_bound():
    from sklearn.mixture import GaussianMixture as Sk

    L, D = 5, 3
    rng = np.random.default_rng(0)
    v = rng.integers(0, L, size=(300, D))
    X = v / (L - 1)
    x = compare.dequantize(torch.from_numpy(X), L, seed=0).numpy()
    for covariance_type in ("diag", "spherical"):
        gm = Sk(3, covariance_type=covariance_type, random_state=0).fit(x)
        variances = gm.covariances_ if covariance_type == "diag" else np.repeat(gm.covariances_[:, None], D, 1)
        exact = compare.discretized_gmm_log_pmf(gm, X, n_levels=L)
        assert exact.dtype == torch.float64 and exact.shape == (300,)
        np.testing.assert_allclose(exact.numpy(), _brute_force_log_pmf(gm.weights_, gm.means_, variances, v, L), rtol=1e-10)
    # the dequantization bound, E_u log p(x) − D log L (200 draws of u per image), lies below the
    # exact value: per image up to the Monte Carlo error of the draws, on average by a clear margin
    draws = np.stack([gm.score_samples(compare.dequantize(torch.from_numpy(X), L, seed=s).numpy()) for s in range(200)])
    bound = draws.mean(0) - D * math.log(L)
    error = draws.std(0) / math.sqrt(200)
    assert np.all(bound <= exact.numpy() + 4 * error)
    assert np.mean(exact.numpy() - bound) > 10 * np.sqrt(np.mean(error**2) / len(error))
    # a pmf over the L^D images: the bins inside [0, 1) hold the mass of [0, 1)^D, at most 1
    every = np.array(np.meshgrid(*[np.arange(L)] * D, indexing="ij")).reshape(D, -1).T
    total = compare.discretized_gmm_log_pmf(gm, every / (L - 1), n_levels=L).exp().sum()
    assert 0.5 < float(total) <= 1.0


def test_discretized_gmm_log_pmf_of_vaelab_mixture_and_errors():
    from vaelab import data

    X, _ = data.digits("test")
    x = compare.dequantize(X.double(), 17, seed=0)
    gm = GaussianMixture(2, covariance_type="diag", random_state=0).fit(x)
    exact = compare.discretized_gmm_log_pmf(gm, X)
    assert exact.shape == (360,) and bool((exact < 0).all())
    assert float(exact.mean()) > float(compare.dequantized_log_pmf(gm.score_samples(x), 64).mean())
    with pytest.raises(ValueError, match="covariance_type 'diag' or 'spherical'.*got covariance_type='full'"):
        compare.discretized_gmm_log_pmf(GaussianMixture(1, covariance_type="full").fit(x[:100]), X)
    with pytest.raises(ValueError, match=r"`x` must be of shape \(n_samples, 64\)"):
        compare.discretized_gmm_log_pmf(gm, X[:, :10])


def _linear_vae(obs_scale=0.5):
    from vaelab.models import VAE

    torch.manual_seed(0)
    encoder = nn.Linear(1, 2)   # any q(z|x) is a valid proposal
    decoder = nn.Linear(1, 1)   # x = w z + b + σ ε: p(x) = N(b, w² + σ²) exactly
    with torch.no_grad():
        decoder.weight.fill_(0.8), decoder.bias.fill_(0.2)
        # near the exact posterior N(0.9 (x − 0.2), 0.28), a little wider: a good proposal for a bin
        encoder.weight.copy_(torch.tensor([[0.9], [0.0]])), encoder.bias.copy_(torch.tensor([-0.18, -1.0]))
    return VAE(encoder, decoder, likelihood="gaussian", obs_scale=obs_scale).double()


def test_discretized_iwae_bounds_the_exact_bin_probability():
    model = _linear_vae()
    lower = torch.linspace(-1.5, 1.5, 7, dtype=torch.float64)[:, None]
    upper = lower + 0.25
    s = (lower + upper) / 2
    exact = compare.normal_log_interval(lower, upper, 0.2, math.sqrt(0.8**2 + 0.5**2))[:, 0]
    torch.manual_seed(0)
    one = torch.stack([compare.discretized_iwae(model, s, lower, upper, 1) for _ in range(400)]).mean(0)
    torch.manual_seed(0)
    many = compare.discretized_iwae(model, s, lower, upper, 20_000)
    assert bool((one < exact).all())                       # the ELBO of the bin: below, on average
    torch.testing.assert_close(many, exact, atol=5e-3, rtol=0)  # and tight as k grows


def test_discretized_iwae_errors():
    model = _linear_vae()
    x = torch.zeros(2, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="`k` must be an integer >= 1"):
        compare.discretized_iwae(model, x, x, x + 1, 0)
    with pytest.raises(ValueError, match="must have one shape"):
        compare.discretized_iwae(model, x, x[:1], x + 1, 2)
    with pytest.raises(ValueError, match="`lower` must be a 2-D tensor"):
        compare.discretized_iwae(model, x, x[:, 0], x + 1, 2)
    from vaelab.models import VAE
    bernoulli = VAE(nn.Linear(1, 2), nn.Linear(1, 1)).double()
    with pytest.raises(TypeError, match="must be a Normal .* got Bernoulli"):
        compare.discretized_iwae(bernoulli, x, x, x + 1, 2)
