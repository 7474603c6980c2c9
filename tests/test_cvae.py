import math

import pytest
import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, MultivariateNormal, Normal, kl_divergence

import vaelab
from vaelab import data
from vaelab.models import CVAE, one_hot

D, C, SIGMA = 3, 2, 0.5
W = torch.tensor([[1.5], [-0.8], [0.6]], dtype=torch.float64)      # decoder weight on z (D, 1)
BC = torch.tensor([[0.3, -2.0], [-0.2, 1.0], [1.0, 0.5]], dtype=torch.float64)  # mean per class (D, C)


def linear_cvae():
    """x | z, c ~ N(W z + b_c, σ²I): its encoder is the exact posterior p(z|x, c), linear in [x, c]."""
    s2 = 1.0 / (1.0 + (W.T @ W).item() / SIGMA ** 2)  # posterior variance
    a = s2 * W[:, 0] / SIGMA ** 2                      # posterior mean a · (x − b_c)
    encoder, decoder = nn.Linear(D + C, 2).double(), nn.Linear(1 + C, D).double()
    with torch.no_grad():
        encoder.weight.copy_(torch.stack([torch.cat([a, -(a @ BC)]), torch.zeros(D + C, dtype=torch.float64)]))
        encoder.bias.copy_(torch.tensor([0.0, math.log(s2)]))
        decoder.weight.copy_(torch.cat([W, BC], dim=1))
        decoder.bias.zero_()
    return CVAE(encoder, decoder, n_classes=C, likelihood="gaussian", obs_scale=SIGMA).double()


def log_px_given_c(x, labels):
    cov = W @ W.T + SIGMA ** 2 * torch.eye(D, dtype=torch.float64)
    return MultivariateNormal(BC.T[labels], covariance_matrix=cov).log_prob(x)


@pytest.fixture
def xc():
    torch.manual_seed(0)
    labels = torch.randint(0, C, (100,))
    z = torch.randn(100, 1, dtype=torch.float64)
    return z @ W.T + BC.T[labels] + SIGMA * torch.randn(100, D, dtype=torch.float64), labels


# ------------------------------------------------------------------ the math, against closed forms


def test_exact_posterior_makes_elbo_and_iwae_equal_log_px_given_c(xc):
    x, labels = xc
    model = linear_cvae()
    expected = log_px_given_c(x, labels)
    torch.testing.assert_close(model.elbo(x, labels, mc_kl=True), expected, atol=1e-6, rtol=0)
    for k in (1, 5):
        torch.testing.assert_close(model.iwae(x, labels, k), expected, atol=1e-6, rtol=0)


def test_the_condition_moves_the_whole_mixture(xc):
    x, labels = xc
    model = linear_cvae()
    wrong = model.iwae(x, 1 - labels, 3)
    torch.testing.assert_close(wrong, log_px_given_c(x, 1 - labels), atol=1e-6, rtol=0)
    assert (model.iwae(x, labels, 3) - wrong).mean() > 1.0  # nats: the data fit their own class far better


def test_elbo_terms_match_torch_distributions():
    torch.manual_seed(0)
    model = CVAE.mlp(6, 4, 2, hidden=(5,))
    x, labels = torch.bernoulli(torch.full((7, 6), 0.5)), torch.tensor([0, 1, 2, 3, 0, 1, 2])
    c = one_hot(labels, 4)
    torch.manual_seed(1)
    terms = model.elbo_terms(x, c)
    torch.manual_seed(1)
    mu, logvar = model.encoder(torch.cat([x, c], 1)).chunk(2, -1)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    reconstruction = Independent(Bernoulli(logits=model.decoder(torch.cat([z, c], 1))), 1).log_prob(x)
    kl = kl_divergence(Independent(Normal(mu, (0.5 * logvar).exp()), 1), Independent(Normal(0 * mu, 1 + 0 * mu), 1))
    torch.testing.assert_close(terms.reconstruction, reconstruction)
    torch.testing.assert_close(terms.kl, kl)


def test_labels_one_hot_rows_and_an_int_are_the_same_condition():
    model = CVAE.mlp(4, 3, 2, hidden=(8,))
    draws = []
    for c in (2, torch.full((5,), 2), one_hot(torch.full((5,), 2), 3), torch.full((5,), 2.0)):
        torch.manual_seed(0)
        draws.append(model.sample(5, c, mean=True))
    for other in draws[1:]:
        torch.testing.assert_close(other, draws[0])


def test_a_soft_condition_between_classes_is_accepted():
    model = CVAE.mlp(4, 3, 2, hidden=(8,))
    assert model.sample(2, torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])).shape == (2, 4)


def test_one_hot_and_its_errors():
    torch.testing.assert_close(one_hot(torch.tensor([1, 0]), 3), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"`labels` must lie in 0 … 2 \(n_classes = 3\), got values from 0 to 3"):
        one_hot(torch.tensor([0, 3]), 3)
    with pytest.raises(TypeError, match="`labels` must hold integer class labels, got dtype torch.float32"):
        one_hot(torch.tensor([0.5]), 3)
    with pytest.raises(ValueError, match=r"`labels` must be 1-D of shape \(n_samples,\), got shape \(1, 2\)"):
        one_hot(torch.tensor([[0, 1]]), 3)


# ------------------------------------------------------------------ the truth: conditioning works


def test_conditioning_changes_samples_a_fixed_classifier_reads_the_asked_digit():
    X, y = data.digits("train")
    X_test, y_test = data.digits("test")
    centroids = torch.stack([X[y == k].mean(0) for k in range(10)])  # a fixed classifier: the nearest class mean
    predict = lambda images: torch.cdist(images, centroids).argmin(1)
    assert (predict(X_test) == y_test).float().mean() > 0.85  # it reads real digits
    model = CVAE.mlp(64, 10, 2, hidden=(64,))
    vaelab.fit(model, (X, y), epochs=20, batch_size=128, lr=5e-3, progress=False, seed=0, device="cpu")
    torch.manual_seed(0)
    asked = torch.arange(10).repeat_interleave(20)
    samples = model.sample(len(asked), asked, mean=True)
    assert (predict(samples) == asked).float().mean() > 0.8  # chance is 0.1
    # the same z with another label gives another digit: c, not z, decides the class
    torch.manual_seed(0)
    shifted = model.sample(len(asked), (asked + 1) % 10, mean=True)
    assert (predict(shifted) == (asked + 1) % 10).float().mean() > 0.8


def test_fit_takes_pairs_and_the_held_out_elbo_improves():
    X, y = data.digits("test")
    model = CVAE.mlp(64, 10, 2, hidden=(32,))
    history = vaelab.fit(model, (X, y), epochs=3, batch_size=120, lr=1e-2, X_valid=(X, y), progress=False,
                         seed=0, device="cpu")
    assert history.valid_elbo[-1] > history.valid_elbo[0]
    assert sorted(history.train) == ["elbo", "kl", "loss", "reconstruction"]


def test_config_rebuilds_the_same_model(tmp_path):
    model = CVAE.mlp(8, 3, 2, hidden=(5,))
    vaelab.train.save(model, tmp_path / "m.pt")
    loaded = vaelab.train.load(tmp_path / "m.pt", device="cpu")
    assert type(loaded) is CVAE and loaded.n_classes == 3
    x, c = torch.rand(4, 8), torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(loaded.encode(x, c).mean, model.encode(x, c).mean)


# ------------------------------------------------------------------ bad input


@pytest.fixture
def small():
    return CVAE.mlp(4, 3, 2, hidden=(8,))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda m: m.elbo(torch.rand(2, 4), torch.zeros(2, 2)), ValueError,
     r"`c` must have n_classes = 3 columns \(one-hot rows\), got 2 columns"),
    (lambda m: m.elbo(torch.rand(2, 4), torch.tensor([0, 3])), ValueError,
     r"`c` must lie in 0 … 2 \(n_classes = 3\), got values from 0 to 3"),
    (lambda m: m.elbo(torch.rand(2, 4), torch.tensor([0, 1, 2])), ValueError,
     r"`c` must have one row per example \(2\), got 3"),
    (lambda m: m.elbo(torch.rand(2, 4), torch.tensor([0.5, 1.0])), ValueError,
     r"`c` of shape \(2,\) must hold integer class labels"),
    (lambda m: m.elbo(torch.rand(2, 4), torch.tensor([[0, 1, 0], [1, 0, 0]])), ValueError,
     r"holds integers: pass one-hot rows as floats or the labels themselves"),
    (lambda m: m.elbo(torch.rand(2, 5), torch.tensor([0, 1])), ValueError,
     r"`x` must have 4 features \(columns\), got 5"),
    (lambda m: m.sample(3, torch.tensor([0, 1])), ValueError, r"`c` must have one row per example \(3\), got 2"),
    (lambda m: m.sample(0, 1), ValueError, "`n` must be an integer >= 1, got 0"),
    (lambda m: m.iwae(torch.rand(2, 4), torch.tensor([0, 1]), 0), ValueError, "`k` must be an integer >= 1, got 0"),
    (lambda m: vaelab.fit(m, torch.rand(6, 4), epochs=1, progress=False), TypeError,
     r"`X` must be a pair \(x, c\) for a CVAE"),
])
def test_bad_input(small, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(small)


@pytest.mark.parametrize("build, exc, msg", [
    (lambda: CVAE.mlp(4, 0, 2), ValueError, "`n_classes` must be an integer >= 1, got 0"),
    (lambda: CVAE(nn.Linear(7, 4), nn.Linear(4, 4), n_classes=3), ValueError,
     r"`decoder` must take latent_dim \+ n_classes = 5 inputs \(\[z, c\] concatenated\), its first nn.Linear takes 4"),
    (lambda: CVAE(nn.Linear(7, 4), nn.Linear(5, 3), n_classes=3), ValueError,
     r"`decoder` must output data_dim = 4 numbers per example, its last nn.Linear outputs 3"),
    (lambda: CVAE(nn.Linear(3, 4), nn.Linear(5, 4), n_classes=3), ValueError,
     r"`encoder` must take data_dim \+ n_classes inputs, its first nn.Linear takes 3 <= n_classes = 3"),
    (lambda: CVAE(nn.Linear(7, 4), "decoder", n_classes=3), TypeError, "`decoder` must be a torch.nn.Module, got str"),
])
def test_bad_construction(build, exc, msg):
    with pytest.raises(exc, match=msg):
        build()


# ------------------------------------------------------------------ ground truth: log p(x | c) on a latent grid


def test_log_prob_is_the_closed_form_log_px_given_c_for_every_class(xc):
    x, labels = xc
    model = linear_cvae()
    torch.testing.assert_close(model.log_prob(x, labels), log_px_given_c(x, labels), atol=1e-5, rtol=0)
    for c in range(C):  # one label for all rows, as the lesson's generative classifier asks
        torch.testing.assert_close(model.log_prob(x, c), log_px_given_c(x, torch.full((100,), c)), atol=1e-5, rtol=0)


def test_log_prob_bounds_the_iwae_of_a_trained_2d_cvae():
    torch.manual_seed(0)
    x, y = data.digits("test", binarize="static", seed=1)
    model = CVAE.mlp(64, n_classes=10, latent_dim=2, hidden=(32,))
    vaelab.fit(model, (x, y), epochs=5, lr=3e-3, progress=False, seed=0, device="cpu")
    exact = model.log_prob(x[:40], y[:40])
    coarse = model.log_prob(x[:40], y[:40], n=200)
    torch.manual_seed(1)
    bound = model.iwae(x[:40], y[:40], k=500).double()
    assert bound.mean() <= exact.mean() + 0.01  # the IWAE is a lower bound in expectation
    assert (exact - bound).mean() < 0.3  # and a close one with k = 500
    torch.testing.assert_close(coarse, exact, atol=1e-3, rtol=0)  # the grid's error at n = 200


def test_log_prob_refuses_more_than_two_latent_dimensions():
    model = CVAE.mlp(4, n_classes=2, latent_dim=3, hidden=(8,))
    with pytest.raises(ValueError, match=r"works for latent_dim ≤ 2, got latent_dim=3; use the importance-weighted"):
        model.log_prob(torch.rand(2, 4).round(), 0)
