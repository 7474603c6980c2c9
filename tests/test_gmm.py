"""vaelab.gmm against scikit-learn, scipy and the properties EM must have."""
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.cluster import kmeans_plusplus
from sklearn.mixture import GaussianMixture as SKGaussianMixture
from sklearn.mixture import _gaussian_mixture as skgm

import vaelab
from vaelab import gmm
from vaelab.gmm import ConvergenceWarning, GaussianMixture, NotFittedError

TYPES = ("full", "diag", "spherical")
F64 = torch.float64


def make_data(seed=0, n=(120, 90, 60)):
    """Three well-separated, differently shaped clusters in 3-D."""
    rng = np.random.RandomState(seed)
    return np.concatenate([rng.randn(n[0], 3) + 4,
                           0.5 * rng.randn(n[1], 3),
                           rng.randn(n[2], 3) @ np.array([[1.0, 0.3, 0.0], [0.0, 0.5, 0.2], [0.1, 0.0, 0.8]]) - 3])


X = make_data()


def sklearn_inits(X, K, covariance_type, seed=1):
    """A deliberately poor start (random responsibilities, one M-step) that EM then improves for many steps."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SKGaussianMixture(K, covariance_type=covariance_type, init_params="random", max_iter=1,
                               random_state=seed).fit(X)
    return dict(weights_init=sk.weights_, means_init=sk.means_, precisions_init=sk.precisions_)


def fit_quietly(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Best performing initialization did not converge")
        return model.fit(X)


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def full_covariances(model):
    """Every covariance as a (K, D, D) array, whatever the covariance type."""
    cov, D = np.asarray(model.covariances_), model.means_.shape[1]
    if model.covariance_type == "full":
        return cov
    if model.covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(D) for c in cov])


# ---------------------------------------------------------------- agreement with scikit-learn

@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("chunk", [None, 512])  # 512 bytes: many chunks of a few rows each
def test_matches_sklearn_iterate_for_iterate(covariance_type, chunk, monkeypatch):
    if chunk is not None:
        monkeypatch.setattr(gmm, "_CHUNK_BYTES", chunk)
    kw = dict(tol=0.0, max_iter=25, reg_covar=1e-3, covariance_type=covariance_type, **sklearn_inits(X, 4, covariance_type))
    sk = fit_quietly(SKGaussianMixture(4, **kw), X)
    ours = fit_quietly(GaussianMixture(4, **kw), X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        assert rel_err(getattr(ours, name), getattr(sk, name)) < 1e-10, name
    assert rel_err(ours.lower_bound_, sk.lower_bound_) < 1e-10
    assert rel_err(ours.log_likelihood_history_, sk.lower_bounds_) < 1e-10
    assert ours.n_iter_ == sk.n_iter_ == 25 and not ours.converged_


@pytest.mark.parametrize("covariance_type", TYPES)
def test_converges_like_sklearn_with_a_tolerance(covariance_type):
    kw = dict(tol=1e-4, max_iter=200, covariance_type=covariance_type, **sklearn_inits(X, 3, covariance_type, seed=2))
    sk = SKGaussianMixture(3, **kw).fit(X)
    ours = GaussianMixture(3, **kw).fit(X)
    assert ours.converged_ and sk.converged_ and ours.n_iter_ == sk.n_iter_
    assert rel_err(ours.means_, sk.means_) < 1e-10
    assert abs(ours.bic(X) - sk.bic(X)) < 1e-8 and abs(ours.aic(X) - sk.aic(X)) < 1e-8
    assert ours._n_parameters() == sk._n_parameters()


@pytest.mark.parametrize("covariance_type", TYPES)
def test_random_init_uses_the_same_numbers_as_sklearn(covariance_type):
    kw = dict(init_params="random", random_state=3, tol=0.0, max_iter=10, covariance_type=covariance_type)
    sk = fit_quietly(SKGaussianMixture(3, **kw), X)
    ours = fit_quietly(GaussianMixture(3, **kw), X)
    assert rel_err(ours.means_, sk.means_) < 1e-10
    assert rel_err(ours.lower_bound_, sk.lower_bound_) < 1e-10


def test_kmeans_plusplus_picks_sklearns_seeds():
    for seed in range(3):
        _, expected = kmeans_plusplus(X, 5, random_state=seed)
        got = gmm._kmeans_plusplus(torch.from_numpy(X), 5, np.random.RandomState(seed))
        assert got.tolist() == expected.tolist()


def test_kmeans_plusplus_init_assigns_each_point_to_its_nearest_seed():
    model = GaussianMixture(3, random_state=4, max_iter=0).fit(X)
    seeds, _ = kmeans_plusplus(X, 3, random_state=4)
    nearest = ((X[:, None, :] - seeds[None]) ** 2).sum(-1).argmin(1)
    expected = np.stack([X[nearest == k].mean(0) for k in range(3)])
    np.testing.assert_allclose(model.means_, expected, rtol=1e-12)
    np.testing.assert_allclose(model.weights_, np.bincount(nearest) / len(X), rtol=1e-12)


def test_private_helpers_match_sklearns():
    rng = np.random.RandomState(5)
    resp = rng.dirichlet(np.ones(4), size=len(X))
    for covariance_type in TYPES:
        nk, means, cov = gmm._estimate_gaussian_parameters(torch.from_numpy(X), torch.from_numpy(resp), 1e-4, covariance_type)
        sk_nk, sk_means, sk_cov = skgm._estimate_gaussian_parameters(X, resp, 1e-4, covariance_type)
        assert rel_err(nk, sk_nk) < 1e-12 and rel_err(means, sk_means) < 1e-12 and rel_err(cov, sk_cov) < 1e-12
        chol = gmm._compute_precision_cholesky(cov, covariance_type)
        assert rel_err(chol, skgm._compute_precision_cholesky(sk_cov, covariance_type)) < 1e-12
        log_prob = gmm._estimate_log_gaussian_prob(torch.from_numpy(X), means, chol, covariance_type)
        sk_log_prob = skgm._estimate_log_gaussian_prob(X, sk_means, chol.numpy(), covariance_type)
        assert rel_err(log_prob, sk_log_prob) < 1e-12


# ---------------------------------------------------------------- the public math functions

def random_mixture(K=3, D=2, seed=0, covariance_type="full"):
    g = torch.Generator().manual_seed(seed)
    weights = torch.rand(K, generator=g, dtype=F64) + 0.1
    means = 3 * torch.randn(K, D, generator=g, dtype=F64)
    A = torch.randn(K, D, D, generator=g, dtype=F64)
    cov = A @ A.mT + 0.5 * torch.eye(D, dtype=F64)
    if covariance_type == "diag":
        cov = torch.diagonal(cov, dim1=-2, dim2=-1).clone()
    elif covariance_type == "spherical":
        cov = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1)
    return weights / weights.sum(), means, cov


@pytest.mark.parametrize("covariance_type", TYPES)
def test_log_likelihood_equals_a_mixture_of_scipy_densities(covariance_type):
    weights, means, cov = random_mixture(covariance_type=covariance_type)
    model = GaussianMixture.from_parameters(weights.numpy(), means.numpy(), cov.numpy(), covariance_type)
    x = np.random.RandomState(0).randn(50, 2) * 3
    expected = logsumexp([np.log(w) + multivariate_normal(m, c).logpdf(x)
                          for w, m, c in zip(weights.numpy(), means.numpy(), full_covariances(model))], axis=0)
    np.testing.assert_allclose(gmm.log_likelihood(torch.from_numpy(x), weights, means, cov).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(model.score_samples(x), expected, rtol=1e-12)
    assert model.score(x) == pytest.approx(expected.mean(), rel=1e-12)


def test_e_step_is_bayes_rule_and_stays_finite_far_away():
    weights, means, cov = random_mixture()
    x = torch.randn(20, 2, dtype=F64) * 3
    joint = torch.stack([w * torch.distributions.MultivariateNormal(m, c).log_prob(x).exp()
                         for w, m, c in zip(weights, means, cov)], dim=1)
    torch.testing.assert_close(gmm.e_step(x, weights, means, cov), joint / joint.sum(1, keepdim=True))
    far = torch.full((1, 2), 1e4, dtype=F64)  # every density underflows to 0: exp then normalise gives 0/0
    resp = gmm.e_step(far, weights, means, cov)
    assert torch.isfinite(resp).all() and float(resp.sum()) == pytest.approx(1.0)
    assert torch.isfinite(gmm.log_likelihood(far, weights, means, cov)).all()


def test_m_step_maximises_the_expected_complete_log_likelihood():
    """Nudging any parameter away from the M-step's answer lowers Σ_n Σ_k γ_nk log(π_k N(x_n; μ_k, Σ_k))."""
    weights, means, cov = random_mixture()
    x = torch.randn(40, 2, dtype=F64) * 2
    resp = gmm.e_step(x, weights, means, cov)

    def q(w, m, c):
        comps = torch.stack([torch.distributions.MultivariateNormal(mk, ck).log_prob(x) for mk, ck in zip(m, c)], 1)
        return float((resp * (comps + torch.log(w))).sum())

    w, m, c = gmm.m_step(x, resp, reg_covar=0.0)
    best = q(w, m, c)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        assert q(w, m + 0.05 * torch.randn(m.shape, generator=g, dtype=F64), c) < best
        assert q(w, m, c * 1.05) < best and q(w, m, c * 0.95) < best
    assert q(torch.tensor([0.4, 0.3, 0.3], dtype=F64), m, c) < best or torch.allclose(w, torch.tensor([0.4, 0.3, 0.3], dtype=F64))


def test_empty_component_gives_no_nan():
    x = torch.randn(30, 2, dtype=F64)
    resp = torch.zeros(30, 3, dtype=F64)
    resp[:, :2] = 0.5  # component 2 is responsible for nothing
    weights, means, cov = gmm.m_step(x, resp)
    assert torch.isfinite(weights).all() and torch.isfinite(means).all() and torch.isfinite(cov).all()
    assert float(weights[2]) < 1e-15 and torch.allclose(cov[2], 1e-6 * torch.eye(2, dtype=F64))
    # a component started far from every point loses all of them, and EM carries on without NaN
    means_init = np.array([[4.0, 4, 4], [0, 0, 0], [1e6, 1e6, 1e6]])
    model = GaussianMixture(3, means_init=means_init, random_state=0).fit(X)
    assert np.isfinite(model.means_).all() and np.isfinite(model.covariances_).all()
    assert np.isfinite(model.score_samples(X)).all() and model.weights_[2] < 1e-10


def test_log_likelihood_is_differentiable():
    weights, means, cov = random_mixture(K=2)
    x = torch.randn(5, 2, dtype=F64)
    means = means.requires_grad_()
    assert torch.autograd.gradcheck(lambda m: gmm.log_likelihood(x, weights, m, cov), (means,))


# ---------------------------------------------------------------- EM's properties

@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_never_lowers_the_log_likelihood(covariance_type):
    for seed in range(6):
        rng = np.random.RandomState(seed)
        x = rng.standard_t(df=3, size=(150, 2)) + rng.randint(0, 3, size=(150, 1)) * 2.0  # heavy tails, overlap
        model = fit_quietly(GaussianMixture(rng.randint(2, 6), covariance_type=covariance_type, tol=0.0,
                                            max_iter=40, random_state=seed, init_params=("kmeans++", "random")[seed % 2]), x)
        history = np.array(model.log_likelihood_history_)
        assert len(history) == 40
        assert np.all(np.diff(history) >= -1e-10 * np.abs(history[1:])), np.diff(history).min()


def test_warns_when_not_converged_and_not_otherwise():
    with pytest.warns(ConvergenceWarning, match=r"EM did not converge in max_iter=2 iteration\(s\): the mean log-likelihood last changed by .*Increase max_iter or tol"):
        GaussianMixture(3, max_iter=2, tol=0.0, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = GaussianMixture(3, random_state=0).fit(X)
        assert model.converged_ and model.n_iter_ < 100
        GaussianMixture(3, max_iter=0, random_state=0).fit(X)  # max_iter=0 asks for the initialisation only


def test_max_iter_zero_keeps_the_given_parameters():
    inits = sklearn_inits(X, 3, "full")
    model = GaussianMixture(3, max_iter=0, **inits).fit(X)
    np.testing.assert_allclose(model.precisions_, inits["precisions_init"], rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, np.linalg.inv(inits["precisions_init"]), rtol=1e-10)
    assert model.n_iter_ == 0 and model.lower_bound_ == -np.inf and model.log_likelihood_history_ == []


def test_recovers_well_separated_clusters():
    model = GaussianMixture(3, random_state=0).fit(X)
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(model.weights_[order], [60 / 270, 90 / 270, 120 / 270], atol=0.01)
    labels = model.predict(X)
    assert len(set(labels[:120])) == 1 and len(set(labels[120:210])) == 1 and len(set(labels[210:])) == 1


# ---------------------------------------------------------------- numpy in, numpy out; torch in, torch out

def test_numpy_in_numpy_out_and_torch_in_torch_out():
    model = GaussianMixture(3, random_state=0).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        assert isinstance(getattr(model, name), np.ndarray) and getattr(model, name).dtype == np.float64
    for method in ("score_samples", "predict_proba", "predict"):
        assert isinstance(getattr(model, method)(X), np.ndarray)
        assert isinstance(getattr(model, method)(torch.from_numpy(X)), torch.Tensor)
    assert isinstance(model.score(X), float) and isinstance(model.bic(X), float)
    Xs, labels = model.sample(10)
    assert isinstance(Xs, np.ndarray) and Xs.shape == (10, 3) and labels.dtype == np.int64

    tmodel = GaussianMixture(3, random_state=0).fit(torch.from_numpy(X))
    assert isinstance(tmodel.means_, torch.Tensor) and tmodel.means_.dtype == F64
    np.testing.assert_allclose(tmodel.means_.numpy(), model.means_, rtol=1e-12)
    assert isinstance(tmodel.predict(X), np.ndarray) and isinstance(tmodel.sample(4)[0], torch.Tensor)
    assert tmodel.predict(torch.from_numpy(X)).dtype == torch.int64


def test_float32_stays_close_to_float64():
    x32 = torch.from_numpy(X).float()
    kw = dict(tol=0.0, max_iter=30, **sklearn_inits(X, 3, "full"))
    m64 = fit_quietly(GaussianMixture(3, **kw), X)
    m32 = fit_quietly(GaussianMixture(3, dtype=torch.float32, **kw), x32)
    assert m32.means_.dtype == torch.float32 and m32.score_samples(x32).dtype == torch.float32
    assert abs(m32.lower_bound_ - m64.lower_bound_) < 2e-5
    np.testing.assert_allclose(m32.means_.numpy(), m64.means_, atol=1e-4)
    # a float32 model fed float64 numpy data computes in float32 and answers numpy
    assert GaussianMixture(3, dtype=torch.float32, random_state=0).fit(X).means_.dtype == np.float32


def test_integer_data_and_explicit_device():
    model = GaussianMixture(2, random_state=0, device="cpu").fit(np.array([[0, 0], [0, 1], [9, 9], [9, 10]]))
    assert model.means_.dtype == np.float64 and sorted(model.predict(np.array([[0, 0], [9, 9]]))) == [0, 1]


# ---------------------------------------------------------------- sampling and from_parameters

@pytest.mark.parametrize("covariance_type", TYPES)
def test_sample_has_the_mixtures_moments(covariance_type):
    weights, means, cov = random_mixture(covariance_type=covariance_type, seed=3)
    model = GaussianMixture.from_parameters(weights, means, cov, covariance_type, random_state=0)
    x, labels = model.sample(40000)
    assert x.shape == (40000, 2) and labels.shape == (40000,) and torch.all(labels[1:] >= labels[:-1])
    counts = torch.bincount(labels, minlength=3).double() / 40000.0
    torch.testing.assert_close(counts, weights, atol=0.01, rtol=0)
    for k in range(3):
        xk = x[labels == k]
        torch.testing.assert_close(xk.mean(0), means[k], atol=0.1, rtol=0)
        torch.testing.assert_close(torch.cov(xk.T), torch.as_tensor(full_covariances(model)[k]), atol=0.25, rtol=0.05)
    again, _ = model.sample(40000)
    assert torch.equal(x, again)  # an int random_state makes sample reproducible


def test_from_parameters_builds_a_usable_model():
    weights, means, cov = random_mixture()
    model = GaussianMixture.from_parameters(weights, means, cov)
    assert isinstance(model.means_, torch.Tensor) and model.n_iter_ == 0 and model.n_features_in_ == 2
    x = torch.randn(7, 2, dtype=F64)
    torch.testing.assert_close(model.score_samples(x), gmm.log_likelihood(x, weights, means, cov))
    torch.testing.assert_close(model.predict_proba(x), gmm.e_step(x, weights, means, cov))
    torch.testing.assert_close(model.predict(x), gmm.e_step(x, weights, means, cov).argmax(1))
    np_model = GaussianMixture.from_parameters(weights.numpy(), means.numpy(), cov.numpy())
    assert isinstance(np_model.means_, np.ndarray)
    assert repr(np_model) == "GaussianMixture(n_components=3)"


@pytest.mark.parametrize("args, msg", [
    (([0.5, 0.6], [[0.0], [1.0]], np.ones((2, 1, 1))), r"`weights` must sum to 1 \(within 1e-06\), got a sum of 1.1"),
    (([1.0], [[0.0], [1.0]], np.ones((2, 1, 1))), r"`weights` must have shape \(n_components,\) = \(2,\), got shape \(1,\)"),
    (([0.5, 0.5], [0.0, 1.0], np.ones((2, 1, 1))), r"`means` must have shape \(n_components, n_features\), got shape \(2,\)"),
    (([0.5, 0.5], [[0.0], [1.0]], np.ones((2, 2, 2))), r"`covariances` must have shape \(2, 1, 1\) for covariance_type='full', got shape \(2, 2, 2\)"),
    (([0.5, 0.5], [[0.0], [1.0]], np.array([[[1.0]], [[-1.0]]])), r"`covariances` must hold positive-definite matrices; component 1 is not"),
    (([0.5, 0.5], [[0.0, 0], [1, 1]], np.array([[[1.0, 2], [0, 1]]] * 2)), r"`covariances` must hold symmetric matrices"),
])
def test_from_parameters_errors(args, msg):
    with pytest.raises(ValueError, match=msg):
        GaussianMixture.from_parameters(*args)


def test_from_parameters_diag_must_be_positive():
    with pytest.raises(ValueError, match=r"`covariances` must be positive for covariance_type='diag', got a minimum of 0"):
        GaussianMixture.from_parameters([1.0], [[0.0, 0.0]], [[1.0, 0.0]], "diag")


# ---------------------------------------------------------------- every bad input, with its message

@pytest.mark.parametrize("kwargs, data, msg", [
    ({}, np.zeros(5), r"`X` must be 2-D of shape \(n_samples, n_features\), got shape \(5,\)"),
    ({}, np.array([[0.0, np.nan]] * 3), r"`X` must contain only finite values, got 3 NaN"),
    ({}, np.array([[0.0, np.inf]] * 3), r"`X` must contain only finite values"),
    ({}, [[1.0, 2.0], [3.0]], r"`X` must be a rectangular array \(every row of the same length\), got a ragged sequence"),
    ({"n_components": 0}, X, r"`n_components` must be an integer >= 1, got 0"),
    ({"n_components": 5}, X[:3], r"`n_components` must be <= n_samples: got n_components=5 but X has n_samples=3 row\(s\)"),
    ({"covariance_type": "tied"}, X, r"`covariance_type` must be one of 'full', 'diag', 'spherical'; got 'tied'"),
    ({"init_params": "kmeans"}, X, r"`init_params` must be one of 'kmeans\+\+', 'random'; got 'kmeans'"),
    ({"tol": -1.0}, X, r"`tol` must be a finite number >= 0, got -1.0"),
    ({"reg_covar": -1e-6}, X, r"`reg_covar` must be a finite number >= 0"),
    ({"max_iter": -1}, X, r"`max_iter` must be an integer >= 0, got -1"),
    ({"means_init": np.zeros((2, 3))}, X, r"`means_init` must have shape \(n_components, n_features\) = \(3, 3\), got shape \(2, 3\)"),
    ({"weights_init": np.ones(2) / 2}, X, r"`weights_init` must have shape \(n_components,\) = \(3,\), got shape \(2,\)"),
    ({"weights_init": np.array([0.5, 0.3, 0.3])}, X, r"`weights_init` must sum to 1 \(within 1e-08\), got a sum of 1.1"),
    ({"weights_init": np.array([1.2, -0.1, -0.1])}, X, r"`weights_init` must be non-negative"),
    ({"precisions_init": np.ones((3, 3))}, X, r"`precisions_init` must have shape \(3, 3, 3\) for covariance_type='full', got shape \(3, 3\)"),
    ({"precisions_init": -np.stack([np.eye(3)] * 3)}, X, r"`precisions_init` must hold positive-definite matrices; component 0 is not"),
    ({"precisions_init": np.zeros((3, 3)), "covariance_type": "diag"}, X, r"`precisions_init` must be positive for covariance_type='diag'"),
    ({"precisions_init": np.ones(2), "covariance_type": "spherical"}, X, r"`precisions_init` must have shape \(3,\) for covariance_type='spherical'"),
])
def test_fit_rejects_bad_input(kwargs, data, msg):
    kwargs = {"n_components": 3, **kwargs}
    with pytest.raises(ValueError, match=msg):
        GaussianMixture(**kwargs).fit(data)


@pytest.mark.parametrize("kwargs, msg", [
    ({"n_components": 2.5}, r"`n_components` must be an integer >= 1, got 2.5 of type float"),
    ({"random_state": "seed"}, r"`random_state` must be None, an int >= 0 or a numpy RandomState, got str"),
    ({"dtype": torch.int64}, r"`dtype` must be a floating torch dtype"),
])
def test_fit_rejects_bad_types(kwargs, msg):
    with pytest.raises(TypeError, match=msg):
        GaussianMixture(**{"n_components": 2, **kwargs}).fit(X)


def test_init_only_stores():
    model = GaussianMixture(n_components=-3, covariance_type="nonsense")  # checked in fit, not here
    assert model.n_components == -3 and not hasattr(model, "means_")


@pytest.mark.parametrize("call", [lambda m: m.predict(X), lambda m: m.predict_proba(X), lambda m: m.score(X),
                                  lambda m: m.score_samples(X), lambda m: m.bic(X), lambda m: m.aic(X),
                                  lambda m: m.sample(3)])
def test_using_before_fit(call):
    with pytest.raises(NotFittedError, match=r"This GaussianMixture is not fitted yet: call fit\(X\) first"):
        call(GaussianMixture(2))
    with pytest.raises(ValueError):  # NotFittedError is a ValueError, as in scikit-learn
        call(GaussianMixture(2))


def test_other_feature_count_than_at_fit():
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"X has 2 features, but GaussianMixture is expecting 3 features as input"):
        model.score_samples(X[:, :2])
    with pytest.raises(ValueError, match=r"`n_samples` must be an integer >= 1, got 0"):
        model.sample(0)


def test_collapsed_component_without_reg_covar_says_what_to_do():
    x = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0], [5.0, 6.0], [6.0, 5.0]]), [5, 1, 1, 1], axis=0)
    with pytest.raises(ValueError, match=r"ill-defined covariance.*Increase reg_covar"):
        GaussianMixture(2, reg_covar=0.0, means_init=[[0.0, 0.0], [5.0, 5.0]], random_state=0).fit(x)
    model = GaussianMixture(2, reg_covar=1e-6, means_init=[[0.0, 0.0], [5.0, 5.0]], random_state=0).fit(x)
    assert np.isfinite(model.score(x))


@pytest.mark.parametrize("call, msg", [
    (lambda w, m, c, x: gmm.e_step(x, w, m, c[:2]), r"`covariances` must have shape \(3, 2, 2\) for a full mixture"),
    (lambda w, m, c, x: gmm.e_step(x, w[:2], m, c), r"`weights` must have shape \(n_components,\) = \(3,\)"),
    (lambda w, m, c, x: gmm.log_likelihood(x, w, m[:, :1], c), r"`means` must have shape \(n_components, n_features\) = \(K, 2\)"),
    (lambda w, m, c, x: gmm.log_likelihood(x, w, m, c[None]), r"`covariances` must have shape \(n_components, n_features, n_features\)"),
    (lambda w, m, c, x: gmm.log_likelihood(x[0], w, m, c), r"`x` must be 2-D"),
    (lambda w, m, c, x: gmm.m_step(x, torch.ones(4, 3)), r"`resp` must have shape \(n_samples, n_components\) = \(5, K\)"),
    (lambda w, m, c, x: gmm.m_step(x, torch.ones(5, 3), covariance_type="tied"), r"`covariance_type` must be one of"),
    (lambda w, m, c, x: gmm.log_likelihood(x, w, m, -c), r"ill-defined covariance"),
])
def test_math_functions_reject_bad_input(call, msg):
    weights, means, cov = random_mixture()
    with pytest.raises(ValueError, match=msg):
        call(weights, means, cov, torch.randn(5, 2, dtype=F64))


def test_lazy_import():
    assert vaelab.GaussianMixture is GaussianMixture


# ---------------------------------------------------------------- on a GPU

@pytest.mark.gpu
@pytest.mark.parametrize("covariance_type", TYPES)
def test_same_results_on_a_gpu(covariance_type):
    kw = dict(tol=0.0, max_iter=20, covariance_type=covariance_type, **sklearn_inits(X, 3, covariance_type))
    cpu = fit_quietly(GaussianMixture(3, **kw), X)
    gpu = fit_quietly(GaussianMixture(3, device="cuda", **kw), torch.from_numpy(X))
    assert gpu.means_.device.type == "cuda"
    np.testing.assert_allclose(gpu.means_.cpu().numpy(), cpu.means_, rtol=1e-9)
    assert abs(gpu.lower_bound_ - cpu.lower_bound_) < 1e-9 * abs(cpu.lower_bound_)
    x_gpu = torch.from_numpy(X).to("cuda")
    assert gpu.score_samples(x_gpu).device.type == "cuda"
    np.testing.assert_allclose(gpu.score_samples(X), cpu.score_samples(X), rtol=1e-9)
    kmeans_gpu = GaussianMixture(3, random_state=0, device="cuda").fit(X)
    np.testing.assert_allclose(np.sort(kmeans_gpu.means_[:, 0]), np.sort(GaussianMixture(3, random_state=0).fit(X).means_[:, 0]), rtol=1e-8)
    assert GaussianMixture(3, random_state=0, device="cuda", dtype=torch.float32).fit(X).sample(5)[0].shape == (5, 3)


# ---------------------------------------------------------------- the EM path (for figures and widgets)

@pytest.mark.parametrize("covariance_type", TYPES)
def test_em_path_holds_every_iterate_of_fit(covariance_type):
    path = gmm.em_path(X, 3, n_iter=6, covariance_type=covariance_type, init_params="random", random_state=1)
    assert len(path) == 7 and path.covariance_type == covariance_type
    for t in (0, 3, 6):
        model = fit_quietly(GaussianMixture(3, covariance_type=covariance_type, init_params="random", random_state=1,
                                            max_iter=t, tol=0.0), X)
        np.testing.assert_allclose(path.means[t].numpy(), model.means_, rtol=1e-12)
        np.testing.assert_allclose(path.covariances[t].numpy(), model.covariances_, rtol=1e-12)
        weights, means, cov = path.parameters(t)
        assert path.log_likelihood[t].item() == pytest.approx(float(gmm.log_likelihood(X, weights, means, cov).mean()), rel=1e-12)
    np.testing.assert_allclose(path.log_likelihood[:6].numpy(), model.log_likelihood_history_, rtol=1e-12)
    assert torch.all(path.log_likelihood.diff() >= -1e-12)


def test_start_at_points():
    init = gmm.start_at_points(X, 4, random_state=2)
    assert init["means_init"].shape == (4, 3) and all(any(np.array_equal(m, x) for x in X) for m in init["means_init"])
    np.testing.assert_allclose(np.linalg.inv(init["precisions_init"][0]), np.cov(X.T), rtol=1e-10)
    np.testing.assert_allclose(init["weights_init"], 0.25)
    assert gmm.start_at_points(X, 4, "diag")["precisions_init"].shape == (4, 3)
    assert gmm.start_at_points(X, 4, "spherical")["precisions_init"].shape == (4,)
    model = GaussianMixture(4, random_state=0, **init).fit(X)  # a start GaussianMixture accepts as it is
    assert model.converged_
    with pytest.raises(ValueError, match=r"`n_components` must be <= n_samples = 270, got 300"):
        gmm.start_at_points(X, 300)
    with pytest.raises(ValueError, match=r"`n_components` must be <= n_samples: got n_components=4 but x has n_samples=3 row"):
        gmm.em_path(X[:3], 4)


# ---------------------------------------------------------------- far from zero: no silent loss of digits

@pytest.mark.parametrize("covariance_type", TYPES)
def test_data_far_from_zero_fit_as_well_as_centred_data(covariance_type):
    """E[x²] − μ² at x ≈ 1e8 cancels every digit: this fit was wrong (or failed) in most seeds for diag/spherical."""
    for seed in range(10):
        x = np.random.RandomState(seed).randn(300, 2)
        far = GaussianMixture(1, covariance_type=covariance_type, random_state=0).fit(1e8 + x)
        centred = GaussianMixture(1, covariance_type=covariance_type, random_state=0).fit(x)
        np.testing.assert_allclose(far.covariances_, centred.covariances_, rtol=1e-6)
        np.testing.assert_allclose(far.means_ - 1e8, centred.means_, atol=1e-6)
        assert far.score(1e8 + x) == pytest.approx(centred.score(x), abs=1e-6)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_a_component_far_from_the_others_keeps_its_variance(covariance_type):
    rng = np.random.RandomState(0)
    near, far = rng.randn(200, 2), 1e8 + rng.randn(200, 2)
    model = GaussianMixture(2, covariance_type=covariance_type, means_init=[[0.0, 0.0], [1e8, 1e8]]).fit(np.concatenate([near, far]))
    expected = far.var(0) if covariance_type == "diag" else far.var(0).mean()
    np.testing.assert_allclose(np.asarray(model.covariances_)[1], expected + 1e-6, rtol=1e-6)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_public_math_far_from_zero_equals_the_centred_answer(covariance_type):
    weights, means, cov = random_mixture(covariance_type=covariance_type)
    x = means.repeat(10, 1) + torch.randn(30, 2, dtype=F64)  # ten points about each mean: no near-empty component
    shift = 1e8
    torch.testing.assert_close(gmm.log_likelihood(x + shift, weights, means + shift, cov),
                               gmm.log_likelihood(x, weights, means, cov), rtol=0, atol=1e-6)
    resp = gmm.e_step(x, weights, means, cov)
    far_fit, centred_fit = gmm.m_step(x + shift, resp, covariance_type=covariance_type), gmm.m_step(x, resp, covariance_type=covariance_type)
    torch.testing.assert_close(far_fit[2], centred_fit[2], rtol=1e-6, atol=0)


def test_far_from_zero_in_float32():
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    far = GaussianMixture(1, covariance_type="diag", dtype=torch.float32).fit(1e4 + x)
    centred = GaussianMixture(1, covariance_type="diag", dtype=torch.float32).fit(x)
    torch.testing.assert_close(far.covariances_, centred.covariances_, rtol=1e-3, atol=0)


# ---------------------------------------------------------------- the public math checks what it is given

@pytest.mark.parametrize("call, msg", [
    (lambda x, w, m, c: gmm.log_likelihood(x, torch.tensor([-0.5, 1.5], dtype=F64), m, c),
     r"`weights` must be non-negative, got a minimum of -0.5"),
    (lambda x, w, m, c: gmm.e_step(x, torch.tensor([0.6, 0.6], dtype=F64), m, c),
     r"`weights` must sum to 1 \(within 1e-06\), got a sum of 1.2"),
    (lambda x, w, m, c: gmm.e_step(x, w, torch.tensor([[0.0, float("nan")], [1.0, 1.0]], dtype=F64), c),
     r"`means` must contain only finite values, got 1 NaN or infinite value\(s\), the first at index \(0, 1\)"),
    (lambda x, w, m, c: gmm.log_likelihood(x, w, m, torch.full_like(c, float("inf"))),
     r"`covariances` must contain only finite values"),
    (lambda x, w, m, c: gmm.m_step(x, torch.tensor([[1.5, -0.5]] * 5, dtype=F64)),
     r"`resp` must be non-negative \(probabilities\), got -0.5 at index \(0, 1\)"),
    (lambda x, w, m, c: gmm.m_step(x, torch.tensor([[0.5, 0.4]] * 5, dtype=F64)),
     r"`resp` must have rows that sum to 1 \(p\(z = k \| x_n\) over k, within 1e-06\), got a sum of 0.9 in row 0"),
    (lambda x, w, m, c: gmm.m_step(x, torch.tensor([[0.5, float("nan")]] * 5, dtype=F64)),
     r"`resp` must contain only finite values"),
])
def test_math_functions_check_probabilities_and_finiteness(call, msg):
    weights, means, cov = random_mixture(K=2)
    with pytest.raises(ValueError, match=msg):
        call(torch.randn(5, 2, dtype=F64), weights, means, cov)


def test_float32_weights_that_sum_to_one_in_float32_are_accepted():
    rng = np.random.RandomState(0)
    for _ in range(1000):
        w = rng.dirichlet(np.ones(3)).astype(np.float32)
        w /= w.sum()  # as a user would: sums to 1 up to float32 rounding, e.g. 0.99999994
        GaussianMixture(3, weights_init=w, max_iter=0)._check_initial_parameters(3, torch.device("cpu"))
        GaussianMixture(3, weights_init=w, max_iter=0, dtype=torch.float32)._check_initial_parameters(3, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"`weights_init` must sum to 1 \(within 2.9e-06\), got a sum of 1.000009"):
        GaussianMixture(3, weights_init=np.array([0.5, 0.25, 0.250009], dtype=np.float32)).fit(X)


def test_half_precision_is_refused_up_front():
    with pytest.raises(ValueError, match=r"`dtype` must be torch.float64 or torch.float32, got torch.float16: half precision"):
        GaussianMixture(2, dtype=torch.float16).fit(X)
    with pytest.raises(ValueError, match=r"half precision"):
        GaussianMixture.from_parameters([1.0], [[0.0]], [[[1.0]]], dtype=torch.bfloat16)


def test_float32_weights_with_float64_data_are_accepted():
    """float32 weights [0.2, 0.3, 0.5] sum to 1.0000000149 in float64: within float32's precision, not float64's."""
    weights, means, cov = random_mixture()
    x = torch.randn(4, 2, dtype=F64)
    w32 = torch.tensor([0.2, 0.3, 0.5])
    w64 = w32.double() / w32.double().sum()
    torch.testing.assert_close(gmm.e_step(x, w32, means, cov), gmm.e_step(x, w64, means, cov))
    assert torch.isfinite(gmm.log_likelihood(x, w32, means, cov)).all()


def test_float32_parameters_cast_to_float64_are_accepted_by_the_math_functions():
    """A float32 fit drawn by a float64 figure: the weights sum to 1.00000003 in float64."""
    x = torch.from_numpy(X).float()
    path = gmm.em_path(x, 3, n_iter=8, init_params="random")
    weights, means, cov = (t.double() for t in path.parameters(8))
    resp = gmm.e_step(X, weights, means, cov)
    assert torch.isfinite(resp).all() and gmm.m_step(X, resp.float().double())[0].shape == (3,)
