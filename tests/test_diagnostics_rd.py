"""The rate split I(x; z) + KL(q(z) || p(z)) and the independent-pixels anchor of the rate–distortion plane."""
import math

import pytest
import torch

from vaelab import diagnostics
from vaelab.models import VAE
from vaelab.priors import MixturePrior


def encoder_ignoring_x(model):
    with torch.no_grad():
        model.encoder[0].weight.zero_()  # the code no longer depends on x: I(x; z) = 0


def test_information_plus_mismatch_is_the_rate():
    torch.manual_seed(0)
    model = VAE.mlp(6, 2, hidden=(8,))
    X = torch.rand(40, 6)
    split = diagnostics.rate_split(model, X, n_samples=400)
    exact_rate = diagnostics.rate(model, X)  # closed form for N(0, I)
    assert split.rate == pytest.approx(exact_rate, abs=0.03)
    assert split.log_n == pytest.approx(math.log(40))


def test_a_code_that_ignores_x_carries_no_information_and_a_point_code_at_most_log_n():
    torch.manual_seed(0)
    model = VAE.mlp(6, 2, hidden=(8,))
    encoder_ignoring_x(model)
    split = diagnostics.rate_split(model, torch.rand(30, 6))
    assert split.information == pytest.approx(0.0, abs=1e-5)
    with torch.no_grad():  # codes far apart and nearly exact: the code names the row, I -> log n
        model.encoder[0].weight.normal_(0, 30.0)
        model.encoder[-1].bias[2:] = -20.0
    X = torch.eye(6)
    split = diagnostics.rate_split(model, X)
    assert split.information <= split.log_n + 1e-9
    assert split.information == pytest.approx(math.log(6), abs=0.05)
    assert split.rate > 10 * split.log_n  # the rest of such a rate is prior mismatch


def test_rate_split_with_a_learned_prior_matches_the_monte_carlo_rate():
    torch.manual_seed(0)
    model = VAE.mlp(5, 2, hidden=(8,), prior=MixturePrior(2, 3))
    X = torch.rand(25, 5)
    split = diagnostics.rate_split(model, X, n_samples=500, seed=1)
    assert split.rate == pytest.approx(diagnostics.rate(model, X, n_samples=500), abs=0.05)


def test_independent_pixels_against_a_direct_computation():
    g = torch.Generator().manual_seed(0)
    X_fit = (torch.rand(50, 7, generator=g) < 0.3).float()
    X = (torch.rand(20, 7, generator=g) < 0.3).float()
    p = (X_fit.sum(0) + 0.5) / 51
    direct = -torch.distributions.Bernoulli(probs=p).log_prob(X).sum(1).mean()
    assert diagnostics.independent_pixels(X_fit, X) == pytest.approx(float(direct), rel=1e-6)
    # a pixel never on in X_fit costs a finite amount when it is on in X
    assert math.isfinite(diagnostics.independent_pixels(torch.zeros(4, 2), torch.ones(1, 2)))


@pytest.mark.parametrize("call, error, msg", [
    (lambda: diagnostics.independent_pixels(torch.rand(4, 3) * 2, torch.rand(2, 3)), ValueError,
     r"`X_fit` must hold values in \[0, 1\]"),
    (lambda: diagnostics.independent_pixels(torch.rand(4, 3), torch.rand(2, 4)), ValueError, r"`X`"),
    (lambda: diagnostics.rate_split(VAE.mlp(4, 2), torch.rand(3, 4), n_samples=0), ValueError,
     r"`n_samples` must be an integer >= 1, got 0"),
    (lambda: diagnostics.rate_split("model", torch.rand(3, 4)), TypeError, r"`model` must be a vaelab VAE"),
])
def test_bad_input_is_a_clear_error(call, error, msg):
    with pytest.raises(error, match=msg):
        call()
