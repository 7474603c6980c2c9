import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from vaelab import diagnostics as dg
from vaelab.models import VAE
from vaelab.priors import MixturePrior


def linear_vae(likelihood="gaussian", obs_scale=0.5, collapsed=False):
    """x (3) -> mu, logvar (2 each) by one known linear map; z -> x by another."""
    encoder, decoder = nn.Linear(3, 4), nn.Linear(2, 3)
    with torch.no_grad():
        encoder.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.05, 0.0],
                                           [0.0, 0.0, 0.5], [0.1, 0.0, 0.0]]))
        encoder.bias.copy_(torch.tensor([0.2, -0.1, -1.0, 0.3]))
        decoder.weight.copy_(torch.tensor([[1.0, 0.5], [0.0, -1.0], [0.3, 0.3]]))
        decoder.bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
        if collapsed:
            encoder.weight.zero_()
            encoder.bias.zero_()
    kwargs = {"obs_scale": obs_scale} if likelihood == "gaussian" else {}
    return VAE(encoder, decoder, likelihood=likelihood, **kwargs)


X = torch.tensor([[0.0, 1.0, 2.0], [1.0, -1.0, 0.5], [2.0, 3.0, -1.0], [-1.0, 0.0, 0.0], [0.5, 0.5, 0.5]])


def by_hand(model):
    W, b = model.encoder.weight.detach().numpy(), model.encoder.bias.detach().numpy()
    h = X.numpy() @ W.T + b
    return h[:, :2], h[:, 2:]


def test_posterior_params_and_activity_by_hand():
    model = linear_vae()
    mu, logvar = by_hand(model)
    got_mu, got_logvar = dg.posterior_params(model, X, batch_size=2)
    np.testing.assert_allclose(got_mu.numpy(), mu, rtol=1e-6)
    np.testing.assert_allclose(got_logvar.numpy(), logvar, rtol=1e-6)
    np.testing.assert_allclose(dg.activity(got_mu).numpy(), mu.var(axis=0), rtol=1e-6)  # numpy: divides by n


def test_active_units_uses_the_threshold():
    model = linear_vae()
    mu, _ = by_hand(model)
    a = mu.var(axis=0)  # dim 0 moves a lot, dim 1 (weight 0.05) barely
    assert a[0] > 0.5 and 1e-4 < a[1] < 0.01
    assert dg.active_units(model, X) == 1
    assert dg.active_units(model, X, threshold=1e-4) == 2
    assert dg.active_units(model, X, threshold=10.0) == 0


def test_kl_per_dimension_matches_torch_distributions():
    model = linear_vae()
    mu, logvar = (torch.from_numpy(a) for a in by_hand(model))
    q = Normal(mu, (0.5 * logvar).exp())
    expected = kl_divergence(q, Normal(torch.zeros(()), torch.ones(()))).mean(0)
    torch.testing.assert_close(dg.kl_per_dimension(model, X), expected.float())


def test_rate_is_the_exact_kl_and_distortion_matches_the_closed_form():
    model = linear_vae(obs_scale=0.5)
    mu, logvar = by_hand(model)
    A, c = model.decoder.weight.detach().numpy(), model.decoder.bias.detach().numpy()
    var_q = np.exp(logvar)
    # E_q ||x - A z - c||^2 = ||x - A mu - c||^2 + tr(A diag(var_q) A^T) for a linear-Gaussian decoder
    sq = ((X.numpy() - mu @ A.T - c) ** 2).sum(1) + (var_q[:, None, :] * A[None] ** 2).sum((1, 2))
    sigma2, D = 0.25, 3
    distortion = (0.5 * D * math.log(2 * math.pi * sigma2) + sq / (2 * sigma2)).mean()
    rd = dg.rate_distortion(model, X, n_samples=20000)
    expected_rate = float(dg.kl_per_dimension(model, X).sum())
    assert rd.rate == pytest.approx(expected_rate, rel=1e-6)
    assert rd.distortion == pytest.approx(distortion, rel=0.01)
    assert rd.elbo == pytest.approx(-(rd.rate + rd.distortion))
    assert dg.rate(model, X) == rd.rate and dg.distortion(model, X, n_samples=20000) == rd.distortion


def test_monte_carlo_rate_for_a_prior_without_closed_form():
    model = linear_vae()
    exact = dg.rate(model, X)
    model.prior = MixturePrior(2, 1, learn=False)  # one unit Gaussian at the origin: N(0, I) again
    model.prior.means.zero_()
    assert dg.rate(model, X, n_samples=20000) == pytest.approx(exact, rel=0.02)
    with pytest.raises(ValueError, match="KL per dimension needs a prior that factorizes.*got MixturePrior"):
        dg.kl_per_dimension(model, X)
    assert dg.diagnose(model, X).kl_per_dim is None


def test_collapsed_encoder_has_zero_rate_and_no_active_unit():
    model = linear_vae(collapsed=True)
    d = dg.diagnose(model, X)
    assert d.rate == 0.0 and d.active_units == 0
    torch.testing.assert_close(d.kl_per_dim, torch.zeros(2))
    torch.testing.assert_close(d.activity, torch.zeros(2))
    assert str(d).endswith("active units 0/2") and "rate 0.00 nats" in str(d)


def test_seed_makes_monte_carlo_reproducible_and_leaves_the_global_generator_alone():
    model = linear_vae(likelihood="bernoulli")
    x = X.clamp(0, 1)
    torch.manual_seed(0)
    a = dg.rate_distortion(model, x, seed=3)
    state = torch.get_rng_state()
    b = dg.rate_distortion(model, x, seed=3)
    assert a == b and torch.equal(state, torch.get_rng_state())
    assert dg.rate_distortion(model, x, seed=4).distortion != a.distortion


def test_distortion_agrees_with_the_models_own_elbo():
    torch.manual_seed(0)
    model = VAE.mlp(6, 2, hidden=(8,))
    x = torch.rand(200, 6)
    rd = dg.rate_distortion(model, x, n_samples=64)
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x) for _ in range(64)]).mean()
    assert rd.elbo == pytest.approx(float(elbo), abs=0.05)


@pytest.mark.parametrize("call, error, msg", [
    (lambda m: dg.active_units(m, X, threshold=0.0), ValueError, r"`threshold` must be a finite number > 0, got 0.0"),
    (lambda m: dg.diagnose(m, X, threshold=-1), ValueError, r"`threshold` must be a finite number > 0"),
    (lambda m: dg.rate_distortion(m, X, n_samples=0), ValueError, r"`n_samples` must be an integer >= 1, got 0"),
    (lambda m: dg.posterior_params(m, X, batch_size=0), ValueError, r"`batch_size` must be an integer >= 1"),
    (lambda m: dg.rate(m, X[:, :2]), ValueError, r"`X` must have 3 features"),
    (lambda m: dg.active_units(nn.Linear(3, 4), X), TypeError, r"`model` must be a vaelab VAE"),
    (lambda m: dg.activity(torch.zeros(3)), ValueError, r"`mu` must be 2-D"),
])
def test_bad_input_is_a_clear_error(call, error, msg):
    with pytest.raises(error, match=msg):
        call(linear_vae())
