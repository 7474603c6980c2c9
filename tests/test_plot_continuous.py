import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch.distributions import Normal

from vaelab import plot
from vaelab.continuous import ContinuousMixture, LinearDecoder, example_prior

@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_components_figure_draws_k_centres_with_area_growing_with_weight(mixture, arc):
    fig = plot.components_figure(mixture, 7, nodes="quadrature")
    ax_z, ax_x = fig.axes
    centres = ax_x.collections[-1]
    np.testing.assert_allclose(centres.get_offsets(), arc(mixture.components(7)[0]).numpy())
    _, w = mixture.components(7)
    assert np.argmax(centres.get_sizes()) == int(w.argmax())
    assert "K = 7" in ax_x.get_title()


def test_the_continuum_image_is_a_normalised_density(mixture):
    extent = plot.mixture_extent(mixture)
    ax = plot.curve_mixture(mixture, None, extent=extent, resolution=100)
    image = ax.images[0].get_array()
    cell = (extent[1] - extent[0]) / 99 * (extent[3] - extent[2]) / 99
    assert 0.97 < float(image.sum() * cell) < 1.03
    assert len(ax.collections) == 0  # no centres for the continuum


def test_latent_stems_follow_the_prior_density(mixture):
    ax = plot.latent_weights(mixture, 200, nodes="grid")
    heights = ax.collections[-1].get_offsets()  # (z_k, π_k / Δz_k)
    z = torch.as_tensor(np.asarray(heights[:, 0]), dtype=torch.float64)
    np.testing.assert_allclose(heights[:, 1], Normal(0.0, 1.0).log_prob(z).exp().numpy(), atol=1e-3)


@pytest.mark.parametrize("kind", ["normal", "uniform", "two-bump"])
def test_prior_figure_for_every_prior_shape(kind, arc):
    mix = ContinuousMixture(arc, obs_scale=0.25, prior=example_prior(kind, 1.5))
    fig = plot.prior_figure(mix, z_lim=(-4.5, 4.5), resolution=40)
    ax_z, ax_x = fig.axes
    assert ax_z.get_xlim() == (-4.5, 4.5)
    assert np.isfinite(ax_x.images[0].get_array()).all()


def test_figures_need_a_1d_latent_and_2d_data(arc):
    with pytest.raises(ValueError, match=r"these figures draw a 1-D latent and 2-D data, got latent_dim=2 and data_dim=2"):
        plot.curve_mixture(ContinuousMixture(LinearDecoder(torch.eye(2)), obs_scale=1.0), 4)
    with pytest.raises(TypeError, match=r"`mixture` must be a vaelab.ContinuousMixture, got function"):
        plot.components_figure(arc, 4)
