"""The autoregressive (MADE) decoder: autoregressive by construction, a proper distribution, a VAE like any other."""
import itertools

import pytest
import torch

from vaelab.models import MADEVAE, VAE, AutoregressiveBernoulli, MADEDecoder, made_masks
from vaelab.train import fit, load, save


def jacobian_support(decoder, data_dim, latent_dim):
    """Which x_j each logit_i depends on, measured by autograd (not read off the masks)."""
    x = torch.rand(1, data_dim, requires_grad=True)
    z = torch.randn(1, latent_dim)
    rows = []
    for i in range(data_dim):
        (grad,) = torch.autograd.grad(decoder(x, z)[0, i], x)
        rows.append(grad[0] != 0)
    return torch.stack(rows)  # (D, D)


@pytest.mark.parametrize("window", [None, 0, 1, 3])
def test_logit_i_depends_on_exactly_the_allowed_earlier_pixels(window):
    torch.manual_seed(0)
    decoder = MADEDecoder(2, 7, hidden=(5,), made_hidden=30, window=window)
    support = jacobian_support(decoder, 7, 2)
    i, j = torch.meshgrid(torch.arange(7), torch.arange(7), indexing="ij")
    allowed = (j < i) if window is None else ((j < i) & (j >= i - window))
    assert torch.equal(support, allowed)


def test_masks_match_their_documented_shapes_and_rule():
    m_in, m_out, direct = made_masks(4, 6)
    assert m_in.shape == (6, 4) and m_out.shape == (4, 6) and direct.shape == (4, 4)
    assert torch.equal(direct, torch.ones(4, 4).tril(-1))
    with pytest.raises(ValueError, match=r"`window` must be None \(every earlier pixel\) or an integer >= 0, got -1"):
        made_masks(4, 6, window=-1)


def test_the_distribution_sums_to_one_over_every_binary_image():
    torch.manual_seed(0)
    model = MADEVAE.made(4, 2, hidden=(6,), made_hidden=10)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # all 16 images
    z = torch.randn(3, 1, 2)                                             # three codes, broadcast over images
    with torch.no_grad():
        log_p = model.decode(z).log_prob(images)                         # (3, 16)
    assert log_p.shape == (3, 16)
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(3))


def test_sampling_draws_from_the_same_distribution_that_log_prob_scores():
    torch.manual_seed(0)
    model = MADEVAE.made(3, 1, hidden=(4,), made_hidden=8)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(3.0)  # sharper conditionals: a wrong sampling order would show
        z = torch.zeros(1)
        dist = model.decode(z)
        draws = dist.sample((20000,))                                     # (20000, 3)
        images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
        probs = dist.log_prob(images).exp()
    freq = torch.stack([(draws == img).all(-1).float().mean() for img in images])
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)


def test_window_zero_is_the_factorised_decoder():
    torch.manual_seed(0)
    model = MADEVAE.made(6, 2, hidden=(5,), made_hidden=8, window=0)
    x, z = torch.rand(4, 6).round(), torch.randn(4, 2)
    torch.testing.assert_close(model.decoder(x, z), model.decoder(torch.zeros_like(x), z))


def test_made_vae_trains_scores_and_round_trips_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    X = (torch.rand(64, 8) < 0.3).float()
    model = MADEVAE.made(8, 2, hidden=(8,), made_hidden=16, window=3)
    history = fit(model, X, epochs=3, batch_size=16, progress=False, seed=0)
    assert len(history) == 3 and history.train_elbo[-1] > history.train_elbo[0]
    with torch.no_grad():
        torch.manual_seed(1)
        elbo = model.elbo(X)
        iwae = model.iwae(X, k=50)
    assert elbo.shape == iwae.shape == (64,) and iwae.mean() >= elbo.mean() - 0.1
    assert model.sample(5).shape == (5, 8) and set(model.sample(5).unique().tolist()) <= {0.0, 1.0}
    path = tmp_path / "made.pt"
    save(model, path)
    again = load(path)
    assert isinstance(again, MADEVAE) and again.decoder.window == 3
    torch.testing.assert_close(again.decoder(X, torch.zeros(64, 2)), model.decoder(X, torch.zeros(64, 2)))


def test_an_autoregressive_decoder_has_no_closed_form_mean():
    model = MADEVAE.made(4, 2, hidden=(4,), made_hidden=4)
    with pytest.raises(NotImplementedError, match="no closed form; draw images with .sample"):
        model.decode(torch.zeros(2)).mean
    with pytest.raises(ValueError, match=r"`mean=True` needs E\[x\|z\]"):
        model.sample(2, mean=True)
    with pytest.raises(TypeError, match="`decoder` must be a MADEDecoder, got Sequential"):
        MADEVAE(VAE.mlp(4, 2).encoder, VAE.mlp(4, 2).decoder)
    assert isinstance(model.decode(torch.zeros(3, 2)), AutoregressiveBernoulli)
