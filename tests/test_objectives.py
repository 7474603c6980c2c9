import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, Normal, kl_divergence

from vaelab import objectives


def test_gaussian_kl_equals_torch_kl_divergence_per_dimension():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(7, 5, generator=g) * 2, torch.randn(7, 5, generator=g)
    q = Normal(mu, torch.exp(0.5 * logvar))
    expected = kl_divergence(q, Normal(torch.zeros(5), torch.ones(5)))  # (7, 5)
    torch.testing.assert_close(objectives.gaussian_kl(mu, logvar), expected)
    total = kl_divergence(Independent(q, 1), Independent(Normal(torch.zeros(5), torch.ones(5)), 1))
    torch.testing.assert_close(objectives.gaussian_kl(mu, logvar).sum(-1), total)


def test_gaussian_kl_is_zero_only_at_the_prior_and_positive_elsewhere():
    assert objectives.gaussian_kl(torch.zeros(3), torch.zeros(3)).abs().max() == 0
    kl = objectives.gaussian_kl(torch.linspace(-2, 2, 9), torch.linspace(-3, 3, 9))
    assert (kl[torch.arange(9) != 4] > 0).all()


def test_reparameterize_has_the_right_moments_and_passes_gradients():
    torch.manual_seed(0)
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.log(torch.tensor([[0.25, 4.0]])).requires_grad_()
    z = objectives.reparameterize(mu.expand(200_000, 2), logvar.expand(200_000, 2))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 2.0]), atol=0.02, rtol=0)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None


def test_reparameterize_with_given_noise_is_exact_and_broadcasts_over_k():
    mu, logvar, eps = torch.tensor([[1.0]]), torch.tensor([[math.log(9.0)]]), torch.full((4, 1, 1), 2.0)
    torch.testing.assert_close(objectives.reparameterize(mu, logvar, eps), torch.full((4, 1, 1), 7.0))


def test_reparameterized_gradient_agrees_with_score_function_gradient_and_the_known_answer():
    # f(z) = z², z ~ N(mu, σ²): E f = mu² + σ², so d/dmu = 2 mu and d/dlogvar = σ²
    torch.manual_seed(0)
    n = 400_000
    mu = torch.tensor(0.7, requires_grad=True)
    logvar = torch.tensor(math.log(0.5), requires_grad=True)
    z = objectives.reparameterize(mu.expand(n), logvar.expand(n))
    reparam = torch.autograd.grad(z.pow(2).mean(), (mu, logvar))
    # score function (REINFORCE): E[f(z) ∇ log q(z)], z held fixed
    z = z.detach()
    log_q = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z)
    score = torch.autograd.grad((z.pow(2) * log_q).mean(), (mu, logvar))
    known = (2 * 0.7, 0.5)
    for r, s, k in zip(reparam, score, known):
        assert abs(float(r) - k) < 0.01
        assert abs(float(s) - k) < 0.03  # the score-function estimator is noisier: a wider tolerance
        assert abs(float(r) - float(s)) < 0.04


def test_log_mean_exp_is_stable_and_correct():
    x = torch.tensor([[0.0, 1.0], [2.0, -1.0], [-3.0, 0.5]])
    torch.testing.assert_close(objectives.log_mean_exp(x, dim=0), x.exp().mean(0).log())
    big = torch.tensor([-1000.0, -1000.0 + math.log(3.0)])
    assert float(objectives.log_mean_exp(big)) == pytest.approx(-1000.0 + math.log(2.0))


def test_iwae_of_equal_weights_is_that_weight_and_k1_is_the_weight():
    w = torch.full((5, 3), -7.0)
    torch.testing.assert_close(objectives.iwae(w), torch.full((3,), -7.0))
    one = torch.tensor([[-1.0, -2.0]])
    torch.testing.assert_close(objectives.iwae(one), one[0])


def test_iwae_is_at_least_the_mean_log_weight():  # Jensen: log mean w >= mean log w
    w = torch.randn(10, 4, generator=torch.Generator().manual_seed(1)) * 3
    assert (objectives.iwae(w) >= w.mean(0)).all()


def test_elbo_weights_the_kl_by_beta_and_sums_per_dimension_kl():
    rec, kl = torch.tensor([-10.0, -5.0]), torch.tensor([[1.0, 2.0], [0.5, 0.5]])
    torch.testing.assert_close(objectives.elbo(rec, kl), torch.tensor([-13.0, -6.0]))
    torch.testing.assert_close(objectives.elbo(rec, kl.sum(-1), beta=0.0), rec)
    torch.testing.assert_close(objectives.elbo(rec, kl, beta=2.0), torch.tensor([-16.0, -7.0]))


def test_free_bits_floors_each_dimension_of_the_batch_mean_kl():
    kl = torch.tensor([[0.1, 2.0, 0.0], [0.3, 4.0, 0.0]])  # per-dim means 0.2, 3.0, 0.0
    assert float(objectives.free_bits_kl(kl)) == pytest.approx(3.2)
    assert float(objectives.free_bits_kl(kl, 0.5)) == pytest.approx(0.5 + 3.0 + 0.5)
    assert float(objectives.free_bits_kl(kl.sum(-1), 4.0)) == pytest.approx(4.0)  # total: (2.1+4.3)/2 = 3.2 < 4


def test_free_bits_stops_the_gradient_of_dimensions_under_the_floor():
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]], requires_grad=True)
    objectives.free_bits_kl(kl, 0.5).backward()
    torch.testing.assert_close(kl.grad, torch.tensor([[0.0, 0.5], [0.0, 0.5]]))


def test_negative_elbo_loss_is_the_batch_mean_of_minus_elbo():
    rec, kl = torch.tensor([-10.0, -20.0]), torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    loss = objectives.negative_elbo_loss(rec, kl)
    torch.testing.assert_close(loss, -objectives.elbo(rec, kl).mean())
    torch.testing.assert_close(objectives.negative_elbo_loss(rec, kl, beta=3.0), torch.tensor(15.0 + 3.0 * 2.0))


def test_seed_vae_loss_is_batch_size_times_our_mean_negative_elbo():
    """The seed's loss: BCE on probabilities plus KLD, both summed over the batch."""
    g = torch.Generator().manual_seed(0)
    B, D, L = 16, 10, 3
    x = torch.rand(B, D, generator=g)
    logits, mu, logvar = torch.randn(B, D, generator=g), torch.randn(B, L, generator=g), torch.randn(B, L, generator=g)
    bce = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    reconstruction = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)  # (B,)
    ours = objectives.negative_elbo_loss(reconstruction, objectives.gaussian_kl(mu, logvar))
    torch.testing.assert_close(bce + kld, B * ours)


def test_kl_weight_ramps_linearly_then_stays_at_one():
    assert [objectives.kl_weight(t, 4) for t in (0, 1, 2, 3, 4, 10)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert objectives.kl_weight(2.5, 5) == 0.5
    assert objectives.kl_weight(0, 0) == 1.0


@pytest.mark.parametrize("call, msg", [
    (lambda: objectives.elbo(torch.zeros(2), torch.zeros(2), beta=-1.0), "`beta` must be a finite number >= 0, got -1.0"),
    (lambda: objectives.negative_elbo_loss(torch.zeros(2), torch.zeros(2), beta=-0.5), "`beta` must be a finite number >= 0"),
    (lambda: objectives.free_bits_kl(torch.zeros(2, 2), -0.1), "`free_bits` must be a finite number >= 0, got -0.1"),
    (lambda: objectives.iwae(torch.zeros(0, 3)), "`k` must be an integer >= 1, got 0"),
    (lambda: objectives.kl_weight(-1, 3), "`epoch` must be a finite number >= 0, got -1"),
    (lambda: objectives.kl_weight(1, -3), "`warmup` must be a finite number >= 0, got -3"),
])
def test_bad_input(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_elbo_refuses_shapes_that_would_broadcast():
    """elbo(zeros(3, 1), ones(3)) silently broadcast to shape (3, 3)."""
    with pytest.raises(ValueError, match=r"`kl` must have the shape of `reconstruction`, \(3, 1\), or that shape plus "
                                         r"a last latent_dim axis \(summed\), got shape \(3,\)"):
        objectives.elbo(torch.zeros(3, 1), torch.ones(3))
    assert objectives.elbo(torch.zeros(3), torch.ones(3, 2)).shape == (3,)  # (B, latent_dim) is summed


def test_numpy_arrays_are_taken_as_tensors():
    """gaussian_kl(numpy) raised "'numpy.ndarray' object has no attribute 'pow'"; log_mean_exp, iwae and
    reparameterize raised torch's "argument 'input' must be Tensor"; elbo returned a numpy array."""
    import numpy as np

    mu, logvar = np.array([[0.0, 1.0]]), np.zeros((1, 2))
    torch.testing.assert_close(objectives.gaussian_kl(mu, logvar), torch.tensor([[0.0, 0.5]], dtype=torch.float64))
    torch.testing.assert_close(objectives.reparameterize(mu, logvar, np.ones((1, 2))), torch.tensor([[1.0, 2.0]], dtype=torch.float64))
    assert objectives.reparameterize(mu, logvar).shape == (1, 2)
    assert float(objectives.log_mean_exp(np.array([1000.0, 1000.0]))) == 1000.0
    torch.testing.assert_close(objectives.iwae(np.log([[1.0], [3.0]])), torch.tensor([math.log(2.0)], dtype=torch.float64))
    assert isinstance(objectives.elbo(np.zeros(3), np.ones(3)), torch.Tensor)
    assert float(objectives.negative_elbo_loss(np.array([-10.0, -20.0]), np.array([1.0, 3.0]))) == 17.0
    assert float(objectives.free_bits_kl(np.array([[0.1, 2.0], [0.3, 4.0]]), free_bits=0.5)) == 3.5
    with pytest.raises(TypeError, match=r"`mu` must be a numpy array or a torch tensor, got str"):
        objectives.gaussian_kl("mu", logvar)


def test_tensors_pass_through_with_their_gradients():
    mu = torch.zeros(2, 3, requires_grad=True)
    objectives.gaussian_kl(mu, torch.zeros(2, 3)).sum().backward()
    assert mu.grad is not None
