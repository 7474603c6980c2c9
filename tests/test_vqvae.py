import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy
from torch import nn

import vaelab
from vaelab import data
from vaelab.models import VQVAE
from vaelab.models.vqvae import (code_usage, dead_codes, nearest_code, perplexity, quantize, squared_distances,
                                 straight_through, vq_losses)


CODEBOOK = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
# three vectors near code 0, one near code 2, none near code 1
Z_E = torch.tensor([[0.5, -0.2], [-1.0, 0.3], [0.2, 1.1], [0.4, 9.0]])


def identity_model(codebook=CODEBOOK, **kwargs):
    """A VQ-VAE whose encoder is the identity on 2-D data: z_e = x."""
    encoder, decoder = nn.Linear(2, 2), nn.Linear(2, 2)
    with torch.no_grad():
        encoder.weight.copy_(torch.eye(2))
        encoder.bias.zero_()
    model = VQVAE(encoder, decoder, n_codes=len(codebook), likelihood="gaussian", obs_scale=1.0, **kwargs)
    with torch.no_grad():
        model.codebook.copy_(codebook)
    return model


# ------------------------------------------------------------------ the quantizer


def test_quantization_returns_codebook_rows_of_the_nearest_codes():
    g = torch.Generator().manual_seed(0)
    codebook, z_e = torch.randn(7, 3, generator=g), torch.randn(5, 4, 3, generator=g)  # (K, D), (B, M, D)
    z_q, indices = quantize(z_e, codebook)
    assert z_q.shape == z_e.shape and indices.shape == (5, 4) and indices.dtype == torch.int64
    brute = torch.cdist(z_e.reshape(-1, 3), codebook).argmin(1).reshape(5, 4)  # an independent argmin
    assert torch.equal(indices, brute) and torch.equal(nearest_code(z_e, codebook), brute)
    assert all(any(torch.equal(row, code) for code in codebook) for row in z_q.reshape(-1, 3))  # exact rows
    torch.testing.assert_close(squared_distances(z_e, codebook), torch.cdist(z_e, codebook).pow(2), atol=1e-5, rtol=0)


def test_nearest_code_breaks_ties_toward_the_lower_index():
    assert nearest_code(torch.tensor([[0.5, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]])).item() == 0


def test_straight_through_passes_the_gradient_unchanged_to_the_encoder():
    z_e = torch.randn(6, 2, requires_grad=True)
    codebook = CODEBOOK.clone().requires_grad_(True)
    z_q, _ = quantize(z_e, codebook)
    out = straight_through(z_e, z_q)
    torch.testing.assert_close(out, z_q)  # the decoder sees the quantized value
    upstream = torch.randn(6, 2)
    out.backward(upstream)
    torch.testing.assert_close(z_e.grad, upstream, rtol=0, atol=0)  # exactly, the identity Jacobian
    assert codebook.grad is None or codebook.grad.abs().sum() == 0


def test_straight_through_inside_the_model_reaches_the_encoder_weights():
    model = VQVAE.mlp(4, n_codes=5, code_dim=2, hidden=(8,), commitment=0.0)
    x = torch.rand(10, 4)
    terms = model.terms(x)
    (-terms.reconstruction.sum()).backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0  # the decoder's gradient crossed the argmin
    assert model.codebook.grad is None  # EMA codes: the optimizer never moves them


def test_vq_losses_values_and_where_their_gradients_go():
    z_e = Z_E.clone().requires_grad_(True)
    codebook = CODEBOOK.clone().requires_grad_(True)
    z_q, indices = quantize(z_e, codebook)
    codebook_loss, commitment_loss = vq_losses(z_e[:, None], z_q[:, None])
    expected = (Z_E - CODEBOOK[indices]).pow(2).sum(1)
    torch.testing.assert_close(codebook_loss, expected)
    torch.testing.assert_close(commitment_loss, expected)
    codebook_loss.sum().backward(retain_graph=True)
    assert z_e.grad is None and codebook.grad.abs().sum() > 0  # moves the codes only
    codebook.grad = None
    commitment_loss.sum().backward()
    assert z_e.grad.abs().sum() > 0 and (codebook.grad is None or codebook.grad.abs().sum() == 0)


# ------------------------------------------------------------------ usage, perplexity, dead codes


def test_usage_counts_perplexity_and_dead_codes_on_a_constructed_case():
    counts = code_usage(nearest_code(Z_E, CODEBOOK), 3)
    assert counts.tolist() == [3, 0, 1]
    assert dead_codes(counts) == 1
    assert perplexity(counts) == pytest.approx(math.exp(entropy([3, 0, 1])), rel=1e-12)
    model = identity_model()
    assert model.usage(Z_E).tolist() == [3, 0, 1] and model.codes(Z_E).flatten().tolist() == [0, 0, 0, 2]


def test_perplexity_is_one_for_one_code_and_k_for_even_use():
    assert perplexity(torch.tensor([0, 9, 0])) == pytest.approx(1.0)
    assert perplexity(np.array([4, 4, 4, 4, 4])) == pytest.approx(5.0)


# ------------------------------------------------------------------ the model


def test_ema_step_is_the_m_step_of_hard_em():
    model = identity_model(decay=0.9)
    model.train()
    model.loss(Z_E)  # one training step: the codes become the means of their assigned vectors
    torch.testing.assert_close(model.codebook[0], Z_E[:3].mean(0))
    torch.testing.assert_close(model.codebook[2], Z_E[3])
    torch.testing.assert_close(model.codebook[1], CODEBOOK[1])  # a code nobody chose stays where it was
    model.eval()
    before = model.codebook.clone()
    model.loss(Z_E + 1.0)  # evaluation never moves the codes
    assert torch.equal(model.codebook, before)


def test_codebook_update_by_loss_trains_the_codes_with_the_optimizer():
    model = identity_model(codebook_update="loss")
    assert model.codebook.requires_grad
    loss, _ = model.loss(Z_E)
    loss.backward()
    # the codebook loss pulls each used code toward its vectors: gradient 2 (e_k − z) / B per vector
    expected = torch.zeros(3, 2)
    for z, k in zip(Z_E, [0, 0, 0, 2]):
        expected[k] += 2 * (CODEBOOK[k] - z) / len(Z_E)
    torch.testing.assert_close(model.codebook.grad, expected)
    assert not identity_model().codebook.requires_grad  # "ema" (the default): no gradient


def test_elbo_is_reconstruction_minus_the_kl_of_a_one_hot_posterior():
    model = identity_model()
    terms = model.terms(Z_E)
    torch.testing.assert_close(model.elbo(Z_E), terms.reconstruction - math.log(3))  # uniform prior: log K
    model.fit_prior(Z_E, pseudocount=1.0)
    pi = torch.tensor([4.0, 1.0, 2.0]) / 7.0  # (counts + 1) / (N + K)
    torch.testing.assert_close(model.prior_probs[0], pi)
    torch.testing.assert_close(model.elbo(Z_E), terms.reconstruction + pi[[0, 0, 0, 2]].log())


def test_sample_draws_codes_from_the_fitted_prior():
    model = identity_model()
    model.fit_prior(Z_E, pseudocount=0.0)  # π = (3/4, 0, 1/4): code 1 is never drawn
    torch.manual_seed(0)
    x = model.sample(4000, mean=True)
    decoded = model.decode_codes(torch.arange(3))  # (3, 2): E[x|e_k]
    which = torch.cdist(x, decoded).argmin(1)
    # exact differences, not the |a|² − 2a·b + |b|² shortcut cdist takes for large inputs (1e-3 off in float32)
    assert torch.cdist(x, decoded, compute_mode="donot_use_mm_for_euclid_dist").min(1).values.max() < 1e-5  # every sample is a component
    freq = torch.bincount(which, minlength=3).float() / len(x)
    assert freq[1] == 0 and abs(freq[0] - 0.75) < 0.03


def test_several_codes_per_example_and_the_loss_metrics():
    model = VQVAE.mlp(6, n_codes=4, code_dim=2, hidden=(8,), n_latents=3)
    x = torch.rand(5, 6)
    assert model.encode(x).shape == (5, 3, 2) and model.codes(x).shape == (5, 3)
    torch.testing.assert_close(model.elbo(x), model.terms(x).reconstruction - 3 * math.log(4))
    _, metrics = model.loss(x)
    assert set(metrics) == {"loss", "elbo", "reconstruction", "kl", "codebook", "commitment", "perplexity"}
    assert 1.0 <= metrics["perplexity"] <= 4.0
    assert model.sample(7).shape == (7, 6)


def test_fit_trains_a_vqvae_on_digits_and_resetting_dead_codes_revives_them():
    X, _ = data.digits("test")
    model = VQVAE.mlp(64, n_codes=8, code_dim=2, hidden=(32,))
    history = vaelab.fit(model, X, epochs=5, batch_size=60, lr=5e-3, X_valid=X, progress=False, seed=0, device="cpu")
    assert history.valid_reconstruction[-1] > history.valid_reconstruction[0] + 3  # nats per image
    before = model.usage(X)
    assert before.sum() == len(X)
    g = torch.Generator().manual_seed(0)
    for round in range(3):  # index collapse: a few codes take everything; restart the others where data is
        model.reset_dead_codes(X, generator=g)
        vaelab.fit(model, X, epochs=5, batch_size=60, lr=5e-3, progress=False, seed=round + 1, device="cpu")
    after = model.usage(X)
    assert dead_codes(after) < dead_codes(before) and perplexity(after) > perplexity(before) + 2


def test_dead_codes_are_reset_onto_encoder_outputs():
    model = identity_model(torch.tensor([[0.0, 0.0], [100.0, 100.0], [0.0, 10.0]]))
    assert dead_codes(model.usage(Z_E)) == 1
    assert model.reset_dead_codes(Z_E, generator=torch.Generator().manual_seed(0)) == 1
    assert any(torch.equal(model.codebook[1], z) for z in Z_E)
    model.init_codebook(Z_E, generator=torch.Generator().manual_seed(0))
    assert all(any(torch.equal(code, z) for z in Z_E) for code in model.codebook)


def test_a_reset_code_is_not_pulled_back_by_its_old_running_mean():
    model = identity_model(decay=0.5)
    model.train()
    model.loss(Z_E)  # code 0 now holds the running mean of its three vectors
    far = Z_E + torch.tensor([0.0, 100.0])  # new data: every vector goes to code 2, code 0 dies
    assert model.usage(far)[0] == 0
    model.reset_dead_codes(far, generator=torch.Generator().manual_seed(0))
    restarted = model.codebook[0].clone()
    assert any(torch.equal(restarted, z) for z in far)
    model.loss(torch.tensor([[10.0, 0.5]]))  # a step in which only code 1 is chosen
    torch.testing.assert_close(model.codebook[0], restarted)


def test_config_rebuilds_the_same_model_with_its_prior(tmp_path):
    model = VQVAE.mlp(4, n_codes=3, code_dim=2, hidden=(5,), n_latents=2)
    x = torch.rand(20, 4)
    model.fit_prior(x)
    vaelab.train.save(model, tmp_path / "m.pt")
    loaded = vaelab.train.load(tmp_path / "m.pt", device="cpu")
    assert type(loaded) is VQVAE and loaded.n_latents == 2
    torch.testing.assert_close(loaded.prior_probs, model.prior_probs)
    assert torch.equal(loaded.codes(x), model.codes(x))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("build, exc, msg", [
    (lambda: VQVAE.mlp(4, n_codes=0, code_dim=2), ValueError, "`n_codes` must be an integer >= 1, got 0"),
    (lambda: VQVAE.mlp(4, n_codes=2.5, code_dim=2), TypeError, "`n_codes` must be an integer >= 1, got 2.5"),
    (lambda: VQVAE.mlp(4, n_codes=3, code_dim=2, n_latents=0), ValueError, "`n_latents` must be an integer >= 1, got 0"),
    (lambda: VQVAE.mlp(4, n_codes=3, code_dim=2, commitment=-1), ValueError,
     "`commitment` must be a finite number >= 0, got -1"),
    (lambda: VQVAE.mlp(4, n_codes=3, code_dim=2, decay=1.0), ValueError, r"`decay` must be a number in \(0, 1\), got 1.0"),
    (lambda: VQVAE.mlp(4, n_codes=3, code_dim=2, codebook_update="adam"), ValueError,
     "`codebook_update` must be one of 'ema', 'loss'; got 'adam'"),
    (lambda: VQVAE.mlp(4, n_codes=3, code_dim=2, obs_scale=0.1), ValueError,
     "`obs_scale` applies to likelihood='gaussian' only"),
    (lambda: VQVAE(nn.Linear(4, 5), nn.Linear(4, 4), n_codes=3, n_latents=2), ValueError,
     r"`code_dim` could not be read off the encoder"),
    (lambda: VQVAE(nn.Linear(4, 4), nn.Linear(6, 4), n_codes=3, n_latents=2), ValueError,
     r"`decoder` must take n_latents · code_dim = 4 inputs, its first nn.Linear takes 6"),
    (lambda: VQVAE(nn.Linear(4, 4), nn.Linear(4, 3), n_codes=3), ValueError,
     r"`decoder` must output data_dim = 4 numbers per example, its last nn.Linear outputs 3"),
])
def test_bad_construction(build, exc, msg):
    with pytest.raises(exc, match=msg):
        build()


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: quantize(torch.zeros(3, 2), torch.zeros(0, 2)), ValueError,
     r"`codebook` must be 2-D of shape \(n_codes, code_dim\) with n_codes >= 1, got shape \(0, 2\)"),
    (lambda: quantize(torch.zeros(3, 2), torch.zeros(4)), ValueError, r"`codebook` must be 2-D"),
    (lambda: nearest_code(torch.zeros(3, 5), torch.zeros(4, 2)), ValueError,
     r"`z_e` must end in code_dim = 2 numbers \(the codebook's width\), got shape \(3, 5\)"),
    (lambda: nearest_code(torch.tensor([[float("nan"), 0.0]]), torch.zeros(4, 2)), ValueError,
     "`z_e` must contain only finite values"),
    (lambda: straight_through(torch.zeros(3, 2), torch.zeros(3, 3)), ValueError,
     r"`z_e` and `z_q` must have the same shape, got \(3, 2\) and \(3, 3\)"),
    (lambda: code_usage(torch.tensor([0, 3]), 3), ValueError, r"`indices` must lie in 0 … n_codes − 1 = 2, got values from 0 to 3"),
    (lambda: code_usage(torch.tensor([0.0, 1.0]), 3), TypeError, "`indices` must hold integers"),
    (lambda: code_usage(torch.tensor([0]), 0), ValueError, "`n_codes` must be an integer >= 1, got 0"),
    (lambda: perplexity(torch.tensor([0, 0])), ValueError, "`counts` must be a 1-D array of non-negative counts with a positive total"),
    (lambda: perplexity(torch.tensor([-1, 3])), ValueError, "`counts` must be a 1-D array of non-negative counts"),
    (lambda: dead_codes(torch.zeros(2, 2)), ValueError, r"`counts` must be 1-D of shape \(n_codes,\), got shape \(2, 2\)"),
    (lambda: identity_model().usage(torch.zeros(3, 5)), ValueError, r"`x` must have 2 features \(columns\), got 5"),
    (lambda: identity_model().decode_codes(torch.tensor([[0, 1]])), ValueError,
     r"`indices` must have shape \(B, n_latents = 1\), got \(1, 2\)"),
    (lambda: identity_model().decode_codes(torch.tensor([5])), ValueError, "`indices` must lie in 0 … n_codes − 1 = 2"),
    (lambda: identity_model().fit_prior(Z_E, pseudocount=-1), ValueError, "`pseudocount` must be a finite number >= 0"),
    (lambda: identity_model().sample(0), ValueError, "`n` must be an integer >= 1, got 0"),
    (lambda: identity_model().init_codebook(Z_E[:2]), ValueError,
     "`x` must give at least n_codes = 3 encoder outputs, got 2"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_log_prob_is_the_finite_mixture_log_sum_exp_and_bounds_the_elbo():
    torch.manual_seed(0)
    x = torch.bernoulli(torch.full((20, 6), 0.4))
    model = VQVAE.mlp(6, n_codes=5, code_dim=2, hidden=(8,)).fit_prior(x)
    pi = model.prior_probs[0]
    brute = torch.stack([torch.logsumexp(torch.stack([pi[k].log() + model.decode(model.codebook[k]).log_prob(xi)
                                                      for k in range(5)]), 0) for xi in x])
    torch.testing.assert_close(model.log_prob(x), brute)
    gap = model.log_prob(x) - model.elbo(x)
    assert (gap >= -1e-5).all()  # the ELBO of a one-hot q is a lower bound on log p(x)
    log_joint = model.decode(model.codebook[:, None]).log_prob(x).T + pi.log()  # (B, K)
    chosen = model.codes(x)[:, 0]
    resp = log_joint.log_softmax(-1)[torch.arange(20), chosen]
    torch.testing.assert_close(gap, -resp)  # the gap is −log γ of the chosen code


def test_log_prob_refuses_several_codes_per_example():
    model = VQVAE.mlp(6, n_codes=5, code_dim=2, hidden=(8,), n_latents=2)
    with pytest.raises(ValueError, match=r"n_codes\*\*n_latents = 5\*\*2 here; it is computed for n_latents = 1 only"):
        model.log_prob(torch.zeros(2, 6))
