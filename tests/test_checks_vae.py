import math

import pytest
import torch
from torch.distributions import Normal

from vaelab import checks
from vaelab.checks import ExerciseError

# ------------------------------------------------------------------ reparameterized sample


def reparameterize(mu, logvar):
    std = torch.exp(0.5 * logvar)
    return mu + torch.randn_like(std) * std


def test_reparameterize_accepts_the_reference(capsys):
    checks.reparameterized_sample(reparameterize)
    assert capsys.readouterr().out == "Correct: reparameterize passes every check.\n"


@pytest.mark.parametrize("wrong, msg", [
    (lambda mu, logvar: mu + torch.randn_like(mu) * logvar, "you used logvar itself as the standard deviation"),
    (lambda mu, logvar: mu + torch.randn_like(mu) * torch.exp(logvar), r"you used exp\(logvar\), the variance"),
    (lambda mu, logvar: (mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)).detach(), "z is not differentiable"),
    (lambda mu, logvar: Normal(mu, torch.exp(0.5 * logvar)).sample(), "z is not differentiable"),
    (lambda mu, logvar: torch.randn_like(mu) * torch.exp(0.5 * logvar), r"z should have mean mu = \(1, -2\)"),
    (lambda mu, logvar: mu + torch.randn_like(mu) * torch.exp(0.5 * logvar.detach()), "no gradient reaches logvar"),
    (lambda mu, logvar: torch.normal(mu, torch.exp(0.5 * logvar)), "dz/dmu is off by up to 1"),
    (lambda mu, logvar: mu[:, :1] + torch.randn_like(mu[:, :1]), "z should have the shape of mu"),
    (lambda mu, logvar: (mu + torch.exp(0.5 * logvar)).tolist(), "z is not differentiable"),
])
def test_reparameterize_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.reparameterized_sample(wrong)


# ------------------------------------------------------------------ Gaussian KL


def gaussian_kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


def test_gaussian_kl_accepts_the_reference_and_the_seeds_form(capsys):
    checks.gaussian_kl(gaussian_kl)
    checks.gaussian_kl(lambda mu, logvar: -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=-1))
    assert capsys.readouterr().out.count("Correct: gaussian_kl passes every check.") == 2


@pytest.mark.parametrize("wrong, msg", [
    (lambda mu, logvar: -gaussian_kl(mu, logvar), "sign error: a KL divergence is never negative"),
    (lambda mu, logvar: 2 * gaussian_kl(mu, logvar), "missing the factor ½"),
    (lambda mu, logvar: 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(0), "summed over the wrong axis"),
    (lambda mu, logvar: 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(), "got one number for the whole batch"),
    (lambda mu, logvar: 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar), "got one KL per latent dimension"),
    (lambda mu, logvar: 0.5 * (mu.pow(2) + logvar - 1 - logvar.log()).sum(-1), "the KL contains .*NaN"),
])
def test_gaussian_kl_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.gaussian_kl(wrong)


# ------------------------------------------------------------------ IWAE bound


def iwae_bound(log_weights):
    return torch.logsumexp(log_weights, dim=0) - math.log(log_weights.shape[0])


def test_iwae_accepts_the_reference(capsys):
    checks.iwae_bound(iwae_bound)
    assert capsys.readouterr().out == "Correct: iwae_bound passes every check.\n"


@pytest.mark.parametrize("wrong, msg", [
    (lambda w: w.mean(0), "you averaged the log-weights: that is the ELBO's estimate"),
    (lambda w: torch.logsumexp(w, 0), "forgot −log k"),
    (lambda w: w.exp().mean(0).log(), "not finite for log-weights near −1000"),
    (lambda w: torch.logsumexp(w, 1) - math.log(w.shape[1]), "averaged over the wrong axis"),
    (lambda w: w.max(0).values, "the bound is off by up to"),
])
def test_iwae_rejects_typical_mistakes(wrong, msg):
    with pytest.raises(ExerciseError, match=msg):
        checks.iwae_bound(wrong)
