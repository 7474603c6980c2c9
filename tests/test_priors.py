import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from torch import nn

from vaelab.models import VAE
from vaelab.priors import MixturePrior, StandardNormal, VampPrior, make_prior


def _scipy_mixture_logpdf(z, weights, means, scales):
    comps = [math.log(w) + multivariate_normal(m, np.diag(s ** 2)).logpdf(z)
             for w, m, s in zip(weights, means, scales)]
    return logsumexp(np.stack(comps), axis=0)


def test_mixture_log_prob_matches_scipy():
    torch.manual_seed(0)
    prior = MixturePrior(2, 3)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.0, 1.0, -1.0]))
        prior.log_scales.copy_(torch.tensor([[0.0, -0.5], [0.3, 0.1], [-1.0, 0.2]]))
    z = torch.randn(7, 2, dtype=torch.float32)
    expected = _scipy_mixture_logpdf(z.numpy(), prior.weights.detach().numpy(),
                                     prior.means.detach().numpy(), prior.log_scales.exp().detach().numpy())
    np.testing.assert_allclose(prior.log_prob(z).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_one_component_at_origin_is_the_standard_normal():
    prior = MixturePrior(3, 1)
    with torch.no_grad():
        prior.means.zero_()
    z = torch.randn(5, 3)
    torch.testing.assert_close(prior.log_prob(z), StandardNormal(3).log_prob(z))


def test_mixture_log_prob_broadcasts_leading_dims_and_samples_have_the_right_moments():
    torch.manual_seed(1)
    prior = MixturePrior(2, 4)
    assert prior.log_prob(torch.zeros(3, 5, 2)).shape == (3, 5)
    z = prior.sample(20000)
    assert z.shape == (20000, 2) and not z.requires_grad
    expected_mean = (prior.weights[:, None] * prior.means).sum(0).detach()
    torch.testing.assert_close(z.mean(0), expected_mean, atol=0.05, rtol=0)


def test_mixture_learn_flag_decides_what_is_trained():
    learned, fixed = MixturePrior(2, 3), MixturePrior(2, 3, learn=False)
    assert {n for n, _ in learned.named_parameters()} == {"logits", "means", "log_scales"}
    assert list(fixed.parameters()) == [] and fixed.means.shape == (3, 2)
    learned.log_prob(torch.randn(4, 2)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in learned.parameters())


def test_vamp_prior_is_the_mean_of_the_encoded_pseudo_inputs():
    torch.manual_seed(2)
    encoder = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 4))
    prior = VampPrior(encoder, n_pseudo=3, data_dim=5)
    assert prior.latent_dim == 2 and prior.pseudo_inputs.shape == (3, 5)
    with torch.no_grad():
        mu, logvar = encoder(prior.pseudo_inputs).chunk(2, -1)
    z = torch.randn(6, 2)
    expected = _scipy_mixture_logpdf(z.numpy(), [1 / 3] * 3, mu.numpy(), (0.5 * logvar).exp().numpy())
    np.testing.assert_allclose(prior.log_prob(z).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_vamp_prior_gradients_reach_pseudo_inputs_and_encoder():
    torch.manual_seed(3)
    encoder = nn.Linear(4, 6)
    prior = VampPrior(encoder, 5, 4, init=torch.rand(5, 4))
    prior.log_prob(torch.randn(3, 3)).sum().backward()
    assert prior.pseudo_inputs.grad is not None and prior.pseudo_inputs.grad.abs().sum() > 0
    assert encoder.weight.grad is not None
    assert prior.sample(4).shape == (4, 3)


def test_mixture_and_vamp_have_no_closed_form_kl():
    q = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2, 3), torch.ones(2, 3)), 1)
    assert MixturePrior(3, 2).kl(q) is None
    assert VampPrior(nn.Linear(4, 6), 2, 4).kl(q) is None
    torch.testing.assert_close(StandardNormal(3).kl(q), torch.zeros(2))


@pytest.mark.parametrize("name, cls", [("standard", StandardNormal), ("mixture", MixturePrior), ("vamp", VampPrior)])
def test_make_prior_builds_each_kind(name, cls):
    encoder = nn.Linear(64, 4)
    prior = make_prior(name, 2, n_components=5, encoder=encoder, data_dim=64)
    assert type(prior) is cls and prior.latent_dim == 2 and prior.sample(3).shape == (3, 2)
    if name != "standard":
        assert getattr(prior, "n_components", getattr(prior, "n_pseudo", None)) == 5


@pytest.mark.parametrize("call, error, msg", [
    (lambda: make_prior("laplace", 2), ValueError, r"`name` must be one of 'standard', 'mixture', 'vamp'; got 'laplace'"),
    (lambda: make_prior("mixture", 2, n_components=0), ValueError, r"`n_components` must be an integer >= 1, got 0"),
    (lambda: MixturePrior(2, 0), ValueError, r"`n_components` must be an integer >= 1, got 0"),
    (lambda: MixturePrior(0, 2), ValueError, r"`latent_dim` must be an integer >= 1, got 0"),
    (lambda: MixturePrior(2, 2.5), TypeError, r"`n_components` must be an integer"),
    (lambda: MixturePrior(2, 2, learn="yes"), TypeError, r"`learn` must be True or False"),
    (lambda: make_prior("vamp", 2), ValueError, r"needs the VAE's `encoder` and `data_dim`"),
    (lambda: make_prior("vamp", 3, encoder=nn.Linear(4, 4), data_dim=4), ValueError, r"latent of size 2, but latent_dim=3"),
    (lambda: VampPrior("encoder", 3, 4), TypeError, r"`encoder` must be a torch.nn.Module"),
    (lambda: VampPrior(nn.Linear(4, 5), 3, 4), ValueError, r"must map \(n_pseudo, data_dim\) to \(n_pseudo, 2\*latent_dim\)"),
    (lambda: VampPrior(nn.Linear(4, 6), 0, 4), ValueError, r"`n_pseudo` must be an integer >= 1, got 0"),
    (lambda: VampPrior(nn.Linear(4, 6), 3, 4, init=torch.zeros(2, 4)), ValueError, r"`init` must have n_pseudo=3 rows, got 2"),
    (lambda: VampPrior(nn.Linear(4, 6), 3, 4, init=torch.zeros(3, 5)), ValueError, r"`init` must have 4 features"),
    (lambda: MixturePrior(2, 2).sample(0), ValueError, r"`n` must be an integer >= 1, got 0"),
])
def test_bad_input_is_a_clear_error(call, error, msg):
    with pytest.raises(error, match=msg):
        call()


def test_priors_plug_into_the_vae_and_are_trained_with_it():
    torch.manual_seed(4)
    x = torch.rand(16, 6)
    mixture = VAE.mlp(6, 2, hidden=(8,), prior=MixturePrior(2, 3))
    vamp = VAE.mlp(6, 2, hidden=(8,))
    vamp.prior = VampPrior(vamp.encoder, 4, 6)
    for model in (mixture, vamp):
        loss = -model.elbo(x).mean()
        assert torch.isfinite(loss)
        loss.backward()
        grads = [p.grad for p in model.prior.parameters()]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert model.sample(3).shape == (3, 6)
        assert torch.isfinite(model.iwae(x, 5)).all()


def test_mixture_prior_survives_a_config_round_trip():
    model = VAE.mlp(6, 2, hidden=(8,), prior=MixturePrior(2, 3, learn=False))
    rebuilt = VAE.from_config(model.config)
    assert type(rebuilt.prior) is MixturePrior and rebuilt.prior.n_components == 3
    assert list(rebuilt.prior.parameters()) == []
