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


def test_latent_map_draws_the_prior_circles_and_a_legend_of_labels(digits_vae):
    x, labels = torch.rand(20, 64), torch.arange(20) % 10
    ax = plot.latent_map(digits_vae, x, labels)
    circles = [p for p in ax.patches if isinstance(p, plt.Circle)]
    assert sorted(c.get_radius() for c in circles) == [1.0, 2.0]
    assert all(tuple(c.center) == (0.0, 0.0) for c in circles)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(legend) == 11 and legend[-1] == "N(0, I): 1, 2 sd"  # ten labels, then the circles
    assert ax.get_aspect() == 1.0
    plt.close("all")


def test_decoder_grid_draws_each_image_at_its_z(digits_vae):
    ax = plot.decoder_grid(digits_vae, n=3, z_range=1.0)
    image = ax.images[0]
    assert image.get_extent() == [-1.5, 1.5, -1.5, 1.5]  # half a spacing (0.5) beyond the outer z
    tiles = image.get_array()
    with torch.no_grad():
        top_left, bottom_right = digits_vae.decode(torch.tensor([[-1.0, 1.0], [1.0, -1.0]])).mean.numpy()
    np.testing.assert_allclose(tiles[:8, :8], top_left.reshape(8, 8), rtol=1e-5)      # z₂ large at the top
    np.testing.assert_allclose(tiles[-8:, -8:], bottom_right.reshape(8, 8), rtol=1e-5)
    plt.close("all")
    with pytest.raises(ValueError, match="`model` must have latent_dim=2 for a grid of z, got latent_dim=1"):
        plot.decoder_grid(VAE.mlp(64, 1, hidden=(4,)))
    with pytest.raises(ValueError, match="`n` must be an integer ≥ 2, got 1"):
        plot.decoder_grid(digits_vae, n=1)


def test_posterior_vs_q_draws_q_at_the_encoder_and_contours_of_the_exact_posterior(digits_vae):
    x = torch.rand(2, 64).round()
    axes = plot.posterior_vs_q(digits_vae, x, n=30, n_grid=80)
    assert len(axes) == 2
    with torch.no_grad():
        mu, logvar = digits_vae.encode_params(x)
        post = digits_vae.exact_posterior(x, 80)
    for i, ax in enumerate(axes):
        ellipses = [p for p in ax.patches if type(p).__name__ == "Ellipse"]
        np.testing.assert_allclose(ellipses[0].center, mu[i].numpy(), rtol=1e-5)
        np.testing.assert_allclose(ellipses[1].width, 4 * torch.exp(0.5 * logvar[i, 0]).item(), rtol=1e-5)  # 2 sd
        # the filled contours enclose the posterior mean: the window holds p(z|x)
        x0, x1 = ax.get_xlim()
        assert x0 < post.mean[i, 0].item() < x1
        assert len(ax.collections) >= 1
    plt.close("all")


def test_mass_levels_hold_the_stated_mass():
    from vaelab.plot.vae import _mass_levels
    density = np.arange(1.0, 101.0)  # masses proportional to 1..100
    levels = _mass_levels(density, masses=(0.5,))
    upper = density[density >= levels[0]]
    assert upper.sum() / density.sum() >= 0.5 and (upper.sum() - upper.min()) / density.sum() < 0.5


def test_posterior_vs_q_needs_a_2d_latent_and_one_axis_per_row(digits_vae):
    with pytest.raises(ValueError, match="`model` must have latent_dim=2 to draw p\\(z\\|x\\) in the plane, got latent_dim=1"):
        plot.posterior_vs_q(VAE.mlp(64, 1, hidden=(4,)), torch.zeros(1, 64))
    _, axes = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="`axes` must hold one axis per row of x \\(2\\), got 3"):
        plot.posterior_vs_q(digits_vae, torch.zeros(2, 64), axes=axes)
    plt.close("all")


def test_infinite_mixture_legend_names_the_circles():
    torch.manual_seed(0)
    model = VAE.mlp(2, 1, hidden=(8,), likelihood="gaussian", obs_scale=0.2)
    ax = plot.infinite_mixture(model, torch.randn(30, 2), n_components=11)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "N(f(z), σ²I): radius 2σ, darker = larger p(z)" in legend and "data" in legend
    plt.close("all")
