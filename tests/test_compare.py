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


def test_count_errors():
    with pytest.raises(ValueError, match=r"`model` \(GaussianMixture\) is not fitted yet"):
        compare.n_parameters(GaussianMixture(2))
    with pytest.raises(TypeError, match="must be a fitted Gaussian or Bernoulli mixture or a torch.nn.Module, got str"):
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
    with pytest.raises(ValueError, match=r"`resp` must be of shape \(n_samples, n_components\)"):
        compare.mixture_rate(np.eye(4), np.full(3, 1 / 3))
