"""Digits on demand (lesson 05), driven by changing its controls the way a browser would, and the
lesson's figures drawn from small models."""
import pytest
import torch

import matplotlib.pyplot as plt  # noqa: E402

from vaelab import plot  # noqa: E402
from vaelab.models import CVAE, SequenceVAE, VQVAE  # noqa: E402
from vaelab.widgets import DigitsOnDemand, digits_on_demand  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CVAE.mlp(16, 10, 2, hidden=(8,))  # 4×4 "images"


def test_controls_draw_and_every_change_redraws(model):
    dash = digits_on_demand(model, digit=3)
    assert isinstance(dash, DigitsOnDemand)
    assert not dash.z1_slider.continuous_update and not dash.z2_slider.continuous_update
    assert list(dash.digit_buttons.options) == list(range(10))
    first = bytes(dash.image.value)
    assert first.startswith(PNG) and "c = 3" in dash.text.value
    dash.digit_buttons.value = 7  # as a click would
    assert "c = 7" in dash.text.value and bytes(dash.image.value) != first
    before = bytes(dash.image.value)
    dash.z1_slider.value = 1.5
    assert "z = (1.50, 0.00)" in dash.text.value and bytes(dash.image.value) != before
    plt.close("all")


def test_draw_shows_the_model_s_own_decodings(model):
    dash = DigitsOnDemand(model)
    fig = dash.draw(4, 0.5, -1.0)
    left = fig.axes[0].images[0].get_array()
    expected = model.decode(torch.tensor([[0.5, -1.0]]), model.check_condition([4], 1)).mean.detach()
    torch.testing.assert_close(torch.as_tensor(left.data, dtype=torch.float32), expected.reshape(4, 4))


def test_a_one_dimensional_latent_disables_the_second_slider():
    dash = DigitsOnDemand(CVAE.mlp(16, 3, 1, hidden=(4,)))
    assert dash.z2_slider.disabled and dash.image.value


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(digit=10), ValueError, r"`digit` must be a class of the model, 0 … 9, got 10"),
    (dict(span=0), ValueError, "`span` must be a finite number > 0, got 0"),
    (dict(n_grid=1), ValueError, "`n_grid` must be an integer >= 2, got 1"),
])
def test_bad_input(model, kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        DigitsOnDemand(model, **kwargs)


def test_a_model_without_a_condition_is_refused():
    with pytest.raises(TypeError, match=r"`model` must be a conditional VAE \(vaelab.CVAE\), got VQVAE"):
        DigitsOnDemand(VQVAE.mlp(16, n_codes=4, code_dim=2, hidden=(4,)))


def test_discrete_figures_draw():
    torch.manual_seed(0)
    vq = VQVAE.mlp(16, n_codes=4, code_dim=2, hidden=(4,))
    x = torch.rand(30, 16)
    counts = vq.usage(x)
    ax = plot.codebook_map(vq.encode(x), vq.codebook, labels=torch.arange(30) % 10, means=torch.zeros(2, 2),
                           counts=counts, ax=plt.figure().gca())
    assert len(ax.collections) >= 3
    ax = plot.usage_bars(torch.tensor([3, 0, 5]), ax=plt.figure().gca())
    assert len(ax.patches) == 3 and "2 of 3 codes used" in ax.get_title()
    seq = SequenceVAE.gru(length=8, latent_dim=2, hidden=4)
    series = torch.randn(6, 8, 1)
    fig = plot.series_grid(series, seq.decode(seq.encode_params(series)[0]).mean, n_cols=4)
    assert len([a for a in fig.axes if a.lines]) == 6
    ax = plot.series_interpolation(seq.interpolate(series[0], series[1], steps=5), ax=plt.figure().gca())
    assert len(ax.lines) == 5
    plt.close("all")
