import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from vaelab.bernoulli_mixture import BernoulliMixture, component_log_pmf, e_step, log_prior, m_step


def planted(n=3000, seed=0):
    """Three well-separated components in 24 dimensions, with known weights and probabilities."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    probs = torch.full((3, 24), 0.1, dtype=torch.float64)
    for k in range(3):
        probs[k, 8 * k:8 * (k + 1)] = 0.9
    labels = torch.multinomial(weights, n, replacement=True, generator=g)
    return torch.bernoulli(probs[labels], generator=g), labels, weights, probs


def random_params(k=3, d=5, seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(k))
    probs = rng.uniform(0.05, 0.95, size=(k, d))
    x = (rng.random((7, d)) < 0.5).astype(float)
    return x, weights, probs


def test_component_log_pmf_matches_scipy():
    x, _, probs = random_params()
    got = component_log_pmf(torch.from_numpy(x), torch.from_numpy(probs))
    expected = stats.bernoulli.logpmf(x[:, None, :], probs[None, :, :]).sum(-1)  # (N, K)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_e_step_matches_a_direct_computation():
    x, weights, probs = random_params()
    log_prob, log_resp = e_step(torch.from_numpy(x), torch.from_numpy(weights), torch.from_numpy(probs))
    joint = np.log(weights) + stats.bernoulli.logpmf(x[:, None, :], probs[None]).sum(-1)
    np.testing.assert_allclose(log_prob.numpy(), logsumexp(joint, axis=1), rtol=1e-12)
    np.testing.assert_allclose(log_resp.exp().sum(1).numpy(), np.ones(len(x)), rtol=1e-12)


def test_score_samples_is_a_pmf_over_all_binary_vectors():
    X, *_ = planted(200)
    model = BernoulliMixture(3, random_state=0, max_iter=5).fit(X[:, :6])
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)), dtype=torch.float64)  # all 2^6 images
    assert math.isclose(float(model.score_samples(every).exp().sum()), 1.0, rel_tol=1e-10)


def test_score_samples_by_brute_force_over_components():
    X, *_ = planted(300)
    model = BernoulliMixture(3, random_state=0).fit(X)
    x = X[:5].numpy()
    w, p = model.weights_.numpy(), model.probs_.numpy()
    by_hand = [math.log(sum(w[k] * np.prod(p[k] ** xi * (1 - p[k]) ** (1 - xi)) for k in range(3))) for xi in x]
    np.testing.assert_allclose(model.score_samples(X[:5]).numpy(), by_hand, rtol=1e-10)


def test_m_step_formula():
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    resp = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
    weights, probs = m_step(x, resp, smoothing=0.0)
    torch.testing.assert_close(weights, torch.tensor([0.5, 0.5], dtype=torch.float64))
    torch.testing.assert_close(probs, torch.tensor([[1.5 / 1.5, 0.5 / 1.5], [0.5 / 1.5, 0.5 / 1.5]],
                                                   dtype=torch.float64).clamp(1e-10, 1 - 1e-10))
    _, smoothed = m_step(x, resp, smoothing=2.0)
    torch.testing.assert_close(smoothed, torch.tensor([[3.5 / 5.5, 2.5 / 5.5], [2.5 / 5.5, 2.5 / 5.5]], dtype=torch.float64))


def test_m_step_is_the_map_estimate():
    # the smoothed M-step maximises Σ_n γ_n log Bern(x_n; p) + a log p + a log(1 - p) for each p_kd
    x = torch.tensor([[1.0], [0.0], [1.0], [1.0]], dtype=torch.float64)
    resp = torch.tensor([[0.9], [0.2], [0.6], [1.0]], dtype=torch.float64)
    a = 0.7
    _, probs = m_step(x, resp, smoothing=a)
    grid = torch.linspace(0.001, 0.999, 99_801, dtype=torch.float64)
    objective = (resp * (x * grid.log() + (1 - x) * torch.log1p(-grid))).sum(0) + a * (grid.log() + torch.log1p(-grid))
    assert abs(float(grid[objective.argmax()]) - float(probs)) < 1e-4


@pytest.mark.parametrize("smoothing", [0.0, 1.0])
def test_em_never_lowers_its_objective(smoothing):
    X, *_ = planted(500)
    model = BernoulliMixture(5, smoothing=smoothing, max_iter=40, tol=0, random_state=1).fit(X)
    steps = np.diff(model.lower_bounds_)
    assert len(steps) == 39 and steps.min() > -1e-10


def test_lower_bound_includes_the_prior():
    X, *_ = planted(300)
    model = BernoulliMixture(2, smoothing=1.0, random_state=0).fit(X)
    expected = model.score(X) + float(log_prior(model.probs_, 1.0)) / len(X)
    # the last E-step's objective: the parameters after the last M-step
    assert math.isclose(model.lower_bound_, expected, rel_tol=1e-10)


@pytest.mark.parametrize("init_params", ["kmeans++", "random"])
def test_recovers_a_planted_mixture(init_params):
    X, labels, weights, probs = planted()
    model = BernoulliMixture(3, init_params=init_params, random_state=0, smoothing=0.0).fit(X)
    order = [int(torch.cdist(probs[k:k + 1], model.probs_).argmin()) for k in range(3)]
    assert sorted(order) == [0, 1, 2]
    torch.testing.assert_close(model.probs_[order], probs, atol=0.05, rtol=0)
    torch.testing.assert_close(model.weights_[order], weights, atol=0.03, rtol=0)
    assert model.converged_
    agreement = (model.predict(X) == torch.tensor(order)[labels]).double().mean()
    assert agreement > 0.99


def test_numpy_in_numpy_out_and_torch_in_torch_out():
    X, *_ = planted(200)
    model = BernoulliMixture(2, random_state=0).fit(X.numpy())
    assert isinstance(model.score_samples(X.numpy()), np.ndarray)
    assert isinstance(model.score_samples(X), torch.Tensor)
    assert model.predict_proba(X.numpy()).shape == (200, 2)
    np.testing.assert_allclose(model.predict_proba(X.numpy()).sum(1), 1.0, rtol=1e-12)
    assert math.isclose(model.score(X), float(model.score_samples(X).mean()), rel_tol=1e-12)


def test_same_seed_same_fit_and_float32_agrees():
    X, *_ = planted(300)
    a = BernoulliMixture(4, random_state=3).fit(X)
    b = BernoulliMixture(4, random_state=3).fit(X)
    torch.testing.assert_close(a.probs_, b.probs_, rtol=0, atol=0)
    c = BernoulliMixture(4, random_state=3, dtype=torch.float32).fit(X)
    assert abs(c.score(X) - a.score(X)) < 1e-3


def test_parameters_and_criteria():
    X, *_ = planted(300)
    model = BernoulliMixture(3, random_state=0).fit(X)
    assert model.n_parameters() == 2 + 3 * 24
    total = model.score(X) * 300
    assert math.isclose(model.bic(X), -2 * total + model.n_parameters() * math.log(300), rel_tol=1e-12)
    assert math.isclose(model.aic(X), -2 * total + 2 * model.n_parameters(), rel_tol=1e-12)


def test_sample_is_binary_reproducible_and_follows_the_model():
    X, _, weights, probs = planted()
    model = BernoulliMixture(3, random_state=0).fit(X)
    xs, labels = model.sample(20_000)
    assert xs.shape == (20_000, 24) and labels.shape == (20_000,)
    assert set(xs.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(model.sample(5)[0], model.sample(5)[0])
    freq = torch.bincount(labels, minlength=3).double() / 20_000
    torch.testing.assert_close(freq, model.weights_, atol=0.015, rtol=0)
    k = int(model.weights_.argmax())
    torch.testing.assert_close(xs[labels == k].mean(0), model.probs_[k], atol=0.03, rtol=0)


def test_identical_rows_still_fit():
    X = torch.ones(6, 4, dtype=torch.float64)
    model = BernoulliMixture(3, random_state=0).fit(X)
    assert np.isfinite(model.score(X))


@pytest.mark.parametrize("X, msg", [
    (np.array([[0.0, 0.5], [1.0, 1.0]]), r"`X` must be binary \(every entry 0 or 1\), got 1 other value\(s\), the first 0.5 at index \(0, 1\); binarize"),
    (np.array([[0.0, 2.0], [1.0, -1.0]]), r"got 2 other value\(s\)"),
    (np.zeros(5), r"`X` must be 2-D"),
    (np.array([[0.0, np.nan]]), r"`X` must contain only finite values"),
])
def test_bad_data(X, msg):
    with pytest.raises(ValueError, match=msg):
        BernoulliMixture(1).fit(X)


@pytest.mark.parametrize("kwargs, error, msg", [
    ({"n_components": 0}, ValueError, r"`n_components` must be an integer >= 1, got 0"),
    ({"n_components": 2.5}, TypeError, r"`n_components` must be an integer >= 1, got 2.5"),
    ({"n_components": 5}, ValueError, r"`n_components` must be <= n_samples, got n_components=5 for 4 samples"),
    ({"max_iter": 0}, ValueError, r"`max_iter` must be an integer >= 1"),
    ({"tol": -1.0}, ValueError, r"`tol` must be a finite number >= 0"),
    ({"smoothing": -0.1}, ValueError, r"`smoothing` must be a finite number >= 0, got -0.1"),
    ({"init_params": "kmeans"}, ValueError, r"`init_params` must be one of 'kmeans\+\+', 'random'; got 'kmeans'"),
    ({"random_state": -1}, ValueError, r"`random_state` must be an integer >= 0"),
])
def test_bad_parameters(kwargs, error, msg):
    X = np.eye(4)
    params = {"n_components": 2, **kwargs}
    with pytest.raises(error, match=msg):
        BernoulliMixture(**params).fit(X)


def test_unfitted_and_mismatched_inputs():
    model = BernoulliMixture(2)
    for call in (lambda: model.score_samples(np.eye(3)), model.n_parameters, lambda: model.sample(2)):
        with pytest.raises(ValueError, match="not fitted yet; call fit"):
            call()
    model.fit(np.eye(3))
    with pytest.raises(ValueError, match="`X` must have 3 features"):
        model.score(np.eye(4))
    with pytest.raises(ValueError, match="`X` must be binary"):
        model.score(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="`n_samples` must be an integer >= 1"):
        model.sample(0)


def test_float32_with_a_constant_pixel_and_no_smoothing_stays_finite():
    """In float32 the clamp 1 − 1e-10 rounded to 1, log1p(−1) = −inf, and the fit was silently NaN."""
    from vaelab.bernoulli_mixture import BernoulliMixture

    X = (torch.rand(200, 10, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    X[:, 0], X[:, 1] = 1.0, 0.0
    m64 = BernoulliMixture(2, smoothing=0.0, random_state=0).fit(X)
    m32 = BernoulliMixture(2, smoothing=0.0, random_state=0, dtype=torch.float32).fit(X.float())
    assert math.isfinite(m32.lower_bound_) and abs(m32.lower_bound_ - m64.lower_bound_) < 1e-3


def test_half_precision_is_refused():
    from vaelab.bernoulli_mixture import BernoulliMixture

    with pytest.raises(ValueError, match=r"`dtype` must be torch.float64 or torch.float32, got torch.float16"):
        BernoulliMixture(2, dtype=torch.float16).fit(torch.ones(4, 3))
    with pytest.raises(TypeError, match=r"`dtype` must be a floating torch dtype"):
        BernoulliMixture(2, dtype=torch.int64).fit(torch.ones(4, 3))
