import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaelab import plot  # noqa: E402
from vaelab.models import VAE  # noqa: E402


@pytest.fixture
def digits_vae():
    torch.manual_seed(0)
    return VAE.mlp(64, 2, hidden=(16,))


def test_image_figures_tile_the_right_images(digits_vae):
    x = torch.rand(5, 64).round()
    ax = plot.reconstructions(digits_vae, x)
    tiles = ax.images[0].get_array()
    assert tiles.shape == (2 * 8 + 1, 5 * 9 - 1)  # originals above reconstructions, one pixel of padding
    np.testing.assert_allclose(tiles[:8, :8], x[0].view(8, 8).numpy())
    plt.close("all")
    ax = plot.interpolation(digits_vae, x[0], x[1], steps=7)
    with torch.no_grad():
        mu = digits_vae.encode_params(x[:2])[0]
        ends = digits_vae.decode(mu).mean.numpy()
    tiles = ax.images[0].get_array()
    np.testing.assert_allclose(tiles[:, :8], ends[0].reshape(8, 8), rtol=1e-5)   # starts at x_start's code
    np.testing.assert_allclose(tiles[:, -8:], ends[1].reshape(8, 8), rtol=1e-5)  # ends at x_end's code
    plt.close("all")


def test_latent_map_puts_each_point_at_its_posterior_mean(digits_vae):
    x, labels = torch.rand(20, 64), torch.arange(20) % 10
    ax = plot.latent_map(digits_vae, x, labels)
    with torch.no_grad():
        mu = digits_vae.encode_params(x)[0].numpy()
    np.testing.assert_allclose(ax.collections[0].get_offsets(), mu, rtol=1e-5)
    plt.close("all")


def test_infinite_mixture_draws_components_at_the_decoder_means():
    torch.manual_seed(0)
    model = VAE.mlp(2, 1, hidden=(8,), likelihood="gaussian", obs_scale=0.2)
    ax = plot.infinite_mixture(model, torch.randn(30, 2), n_components=11)
    assert len(ax.patches) == 11 and ax.patches[0].width == pytest.approx(4 * 0.2)
    with torch.no_grad():
        centres = model.decode(torch.linspace(-2.5, 2.5, 11)[:, None]).mean.numpy()
    np.testing.assert_allclose(ax.collections[-1].get_offsets(), centres, rtol=1e-5)
    plt.close("all")


def test_infinite_mixture_needs_a_1d_latent_gaussian_on_2d_data(digits_vae):
    with pytest.raises(ValueError, match="`model` must be a Gaussian VAE with latent_dim=1 and data_dim=2, got "
                                         "latent_dim=2, data_dim=64, likelihood='bernoulli'"):
        plot.infinite_mixture(digits_vae)


def test_density_draws_the_log_density_on_a_grid():
    log_prob = lambda g: -0.5 * g.pow(2).sum(-1)  # noqa: E731
    ax = plot.density(log_prob, bounds=(-1.0, 1.0, -2.0, 2.0), resolution=5)
    image = ax.images[0]
    np.testing.assert_allclose(image.get_array()[2, 2], 0.0)  # the grid's centre is the origin
    assert image.get_extent() == [-1.0, 1.0, -2.0, 2.0]
    plt.close("all")
    with pytest.raises(ValueError, match="`bounds` is needed when no data `X` is given"):
        plot.density(log_prob)
