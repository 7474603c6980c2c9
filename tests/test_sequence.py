import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal, kl_divergence

import vaelab
from vaelab import data
from vaelab.models import ARGRUDecoder, GRUDecoder, GRUEncoder, SequenceVAE


def test_elbo_terms_match_torch_distributions_over_every_step():
    torch.manual_seed(0)
    model = SequenceVAE.gru(length=12, latent_dim=2, hidden=6, obs_scale=0.3)
    x = torch.randn(5, 12, 1)
    torch.manual_seed(1)
    terms = model.elbo_terms(x)
    torch.manual_seed(1)
    _, h = model.encoder.gru(x.flip(1))  # the encoder reads from the last step to the first
    mu, logvar = model.encoder.head(h[-1]).chunk(2, -1)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    mean = model.decoder(z)  # (5, 12, 1)
    reconstruction = Normal(mean, 0.3).log_prob(x).sum((1, 2))  # every step and channel
    kl = kl_divergence(Independent(Normal(mu, (0.5 * logvar).exp()), 1), Independent(Normal(0 * mu, 1 + 0 * mu), 1))
    torch.testing.assert_close(terms.reconstruction, reconstruction)
    torch.testing.assert_close(terms.kl, kl)


def test_decoder_is_a_function_of_z_alone_unrolled_step_by_step():
    torch.manual_seed(0)
    decoder = GRUDecoder(latent_dim=2, n_channels=3, length=7, hidden=5)
    z = torch.randn(4, 2)
    out = decoder(z)
    h = torch.tanh(decoder.init(z))  # unroll by hand with a GRUCell holding the same weights
    cell = nn.GRUCell(2, 5)
    cell.load_state_dict({k.replace("_l0", ""): v for k, v in decoder.gru.state_dict().items()})
    steps = []
    for _ in range(7):
        h = cell(z, h)
        steps.append(decoder.head(h))
    torch.testing.assert_close(out, torch.stack(steps, 1))
    assert decoder(z, length=11).shape == (4, 11, 3)  # the same recurrence runs past the training length
    assert decoder(torch.randn(6, 4, 2)).shape == (6, 4, 7, 3)  # a leading sample axis (IWAE)


@pytest.mark.parametrize("reverse", [True, False])
def test_encoder_reads_the_whole_series_in_the_order_asked(reverse):
    torch.manual_seed(0)
    encoder = GRUEncoder(n_channels=1, latent_dim=2, hidden=6, reverse=reverse)
    x = torch.randn(3, 10, 1)
    for t in (0, 9):  # a change at either end reaches the summary
        changed = x.clone()
        changed[:, t] += 1.0
        assert not torch.allclose(encoder(x), encoder(changed))
    _, h = encoder.gru(x.flip(1) if reverse else x)
    torch.testing.assert_close(encoder(x), encoder.head(h[-1]))


def test_iwae_with_one_sample_and_sampling_shapes():
    model = SequenceVAE.gru(length=9, latent_dim=2, hidden=4)
    x = torch.randn(3, 9, 1)
    assert model.iwae(x, 4).shape == (3,)
    assert model.sample(5, mean=True).shape == (5, 9, 1) and model.sample(2).shape == (2, 9, 1)
    path = model.interpolate(x[0], x[1], steps=4)
    assert path.shape == (4, 9, 1)
    mu, _ = model.encode_params(x[:2])
    torch.testing.assert_close(path[[0, -1]], model.decode(mu).mean)  # it starts and ends at the two series


def test_reconstructs_held_out_series_far_better_than_the_mean_series():
    x, x_test = data.sines(512, 16, seed=0), data.sines(128, 16, seed=1)
    model = SequenceVAE.gru(length=16, latent_dim=3, hidden=32, obs_scale=0.1)
    vaelab.fit(model, x, epochs=40, batch_size=128, lr=2e-2, progress=False, seed=0, device="cpu")
    with torch.no_grad():
        mu, _ = model.encode_params(x_test)
        error = (model.decode(mu).mean - x_test).pow(2).mean()
    baseline = (x.mean(0) - x_test).pow(2).mean()  # predict every held-out series by the training mean
    assert error < 0.4 * baseline


def test_config_rebuilds_the_same_model(tmp_path):
    model = SequenceVAE.gru(length=8, latent_dim=2, hidden=4, obs_scale=0.5)
    vaelab.train.save(model, tmp_path / "m.pt")
    loaded = vaelab.train.load(tmp_path / "m.pt", device="cpu")
    x = torch.randn(2, 8, 1)
    assert type(loaded) is SequenceVAE
    torch.testing.assert_close(loaded.encode(x).mean, model.encode(x).mean)


@pytest.fixture
def small():
    return SequenceVAE.gru(length=10, latent_dim=2, hidden=4)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda m: m.elbo(torch.randn(3, 10)), ValueError,
     r"`x` must be 3-D of shape \(n_series, 10, 1\), got shape \(3, 10\); add the channel axis: x.unsqueeze\(-1\)"),
    (lambda m: m.elbo(torch.randn(3, 12, 1)), ValueError, r"`x` must be 3-D of shape \(n_series, 10, 1\), got shape \(3, 12, 1\)"),
    (lambda m: m.elbo(torch.randn(3, 10, 2)), ValueError, r"`x` must be 3-D of shape \(n_series, 10, 1\), got shape \(3, 10, 2\)"),
    (lambda m: m.elbo(torch.randn(10)), ValueError, r"`x` must be 3-D of shape \(n_series, 10, 1\), got shape \(10,\)"),
    (lambda m: m.elbo(torch.full((2, 10, 1), float("nan"))), ValueError, "`x` must contain only finite values"),
    (lambda m: vaelab.fit(m, torch.randn(4, 9, 1), epochs=1, progress=False), ValueError,
     r"`X` must be 3-D of shape \(n_series, 10, 1\), got shape \(4, 9, 1\)"),
    (lambda m: m.interpolate(torch.randn(10, 1), torch.randn(10, 1), steps=1), ValueError,
     "`steps` must be an integer >= 2, got 1"),
])
def test_bad_input(small, call, exc, msg):
    with pytest.raises(exc, match=msg):
        call(small)


@pytest.mark.parametrize("build, exc, msg", [
    (lambda: SequenceVAE.gru(length=1, latent_dim=2), ValueError, "`length` must be an integer >= 2, got 1"),
    (lambda: SequenceVAE.gru(length=10, latent_dim=0), ValueError, "`latent_dim` must be an integer >= 1, got 0"),
    (lambda: SequenceVAE.gru(length=10, latent_dim=2, n_channels=0), ValueError, "`n_channels` must be an integer >= 1, got 0"),
    (lambda: SequenceVAE.gru(length=10, latent_dim=2, likelihood="poisson"), ValueError,
     "`likelihood` must be one of 'bernoulli', 'gaussian'; got 'poisson'"),
    (lambda: SequenceVAE.mlp(10, 2), TypeError, r"SequenceVAE is built with SequenceVAE.gru"),
    (lambda: SequenceVAE(GRUEncoder(1, 2), GRUDecoder(2, 3, 10), length=10), ValueError,
     "`decoder` must output data_dim = 1 numbers per example, its last nn.Linear outputs 3"),
])
def test_bad_construction(build, exc, msg):
    with pytest.raises(exc, match=msg):
        build()


# ------------------------------------------------------------------ the autoregressive decoder


def test_autoregressive_decoder_reads_only_the_past_and_runs_free_on_its_own_output():
    torch.manual_seed(0)
    decoder = ARGRUDecoder(latent_dim=2, n_channels=1, length=9, hidden=5).eval()
    z, x = torch.randn(3, 2), torch.randn(3, 9, 1)
    changed = x.clone()
    changed[:, 4] += 1.0
    before, after = decoder(z, x), decoder(z, changed)
    torch.testing.assert_close(before[:, :5], after[:, :5])  # f_t depends on x_{<t} only: t ≤ 4 unchanged
    assert not torch.allclose(before[:, 5], after[:, 5])
    free = decoder.generate(z)  # each mean is the next input: teacher forcing on its own output gives it back
    torch.testing.assert_close(decoder(z, free), free)
    assert decoder(torch.randn(4, 3, 2), x).shape == (4, 3, 9, 1)  # a leading sample axis (IWAE)


def test_input_dropout_zeroes_past_inputs_in_training_only():
    torch.manual_seed(0)
    decoder = ARGRUDecoder(latent_dim=2, n_channels=1, length=6, hidden=4, input_dropout=0.999999)
    z, x = torch.randn(3, 2), torch.randn(3, 6, 1)
    decoder.train()
    torch.testing.assert_close(decoder(z, x), decoder(z, torch.zeros_like(x)))  # every input dropped
    decoder.eval()
    assert not torch.allclose(decoder(z, x), decoder(z, torch.zeros_like(x)))


def test_autoregressive_elbo_is_teacher_forced_and_iwae_1_matches():
    torch.manual_seed(0)
    model = SequenceVAE.gru(length=8, latent_dim=2, hidden=5, obs_scale=0.3, autoregressive=True)
    x = torch.randn(4, 8, 1)
    torch.manual_seed(1)
    terms = model.elbo_terms(x)
    torch.manual_seed(1)
    mu, logvar = model.encode_params(x)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    expected = Normal(model.decoder(z, x), 0.3).log_prob(x).sum((1, 2))
    torch.testing.assert_close(terms.reconstruction, expected)
    assert model.iwae(x, 3).shape == (4,) and model.sample(2).shape == (2, 8, 1)
    assert model.sample(2, mean=True).shape == (2, 8, 1) and model.interpolate(x[0], x[1], 3).shape == (3, 8, 1)


def test_autoregressive_decoder_collapses_and_free_bits_revive_z():
    x = data.sines(256, 16, seed=0)
    kls = {}
    for free_bits in (0.0, 1.0):  # a learned σ, which starts at 1: at first z is worth less than its KL
        model = SequenceVAE.gru(length=16, latent_dim=2, hidden=16, autoregressive=True)
        h = vaelab.fit(model, x, epochs=15, lr=1e-2, batch_size=64, free_bits=free_bits, X_valid=x, progress=False,
                       seed=0, device="cpu")
        kls[free_bits] = h.valid_kl[-1]
    assert kls[0.0] < 0.5 and kls[1.0] > 1.2  # nats: z unused without the floor, used with it (≈ 0.15 and ≈ 2)


@pytest.mark.parametrize("build, msg", [
    (lambda: SequenceVAE.gru(length=8, latent_dim=2, likelihood="bernoulli", autoregressive=True),
     "`autoregressive=True` feeds the decoder's means back as inputs, so it needs likelihood='gaussian'"),
    (lambda: SequenceVAE.gru(length=8, latent_dim=2, input_dropout=0.5),
     "`input_dropout` drops the past inputs of an autoregressive decoder"),
    (lambda: ARGRUDecoder(2, 1, 8, input_dropout=1.0), r"`input_dropout` must be a probability in \[0, 1\), got 1.0"),
    (lambda: ARGRUDecoder(2, 1, 8, input_dropout=-0.1), "`input_dropout` must be a finite number >= 0, got -0.1"),
])
def test_bad_autoregressive_construction(build, msg):
    with pytest.raises(ValueError, match=msg):
        build()


def test_autoregressive_config_rebuilds_the_same_model(tmp_path):
    model = SequenceVAE.gru(length=8, latent_dim=2, hidden=4, obs_scale=0.5, autoregressive=True, input_dropout=0.2)
    vaelab.train.save(model, tmp_path / "m.pt")
    loaded = vaelab.train.load(tmp_path / "m.pt", device="cpu")
    assert loaded.autoregressive and loaded.decoder.input_dropout == 0.2
