import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from vaelab.models import VAE
from vaelab.plot import kl_bars, knobs_figure, latent_panel, rate_distortion_plane
from vaelab.plot.knobs import image_grid


def test_image_grid_places_each_image_and_pads_between():
    images = torch.arange(3 * 4, dtype=torch.float32).reshape(3, 4)  # three 2×2 images
    grid = image_grid(images, 2, pad=-1)
    assert grid.shape == (5, 5)
    np.testing.assert_array_equal(grid[:2, :2], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(grid[:2, 3:], [[4, 5], [6, 7]])
    np.testing.assert_array_equal(grid[3:, :2], [[8, 9], [10, 11]])
    assert (grid[2] == -1).all() and (grid[3:, 3:] == -1).all()
    with pytest.raises(ValueError, match="square images"):
        image_grid(torch.zeros(2, 5), 2)


@pytest.mark.parametrize("latent_dim", [1, 2, 3])
def test_knobs_figure_draws_three_panels_for_any_latent_size(latent_dim):
    torch.manual_seed(0)
    model = VAE.mlp(16, latent_dim, hidden=(8,))
    fig = knobs_figure(model, torch.rand(30, 16), torch.arange(30) % 10, title="t")
    assert len(fig.axes) == 3 and fig.axes[1].images and fig.axes[2].images
    assert bool(fig.axes[0].collections) is True
    plt.close(fig)


def test_latent_panel_frames_far_codes_and_leaves_global_rng_alone():
    torch.manual_seed(0)
    model = VAE.mlp(4, 2, hidden=(4,))
    with torch.no_grad():
        model.encoder[-1].bias[:2] = 50.0  # codes far from the prior, as with β = 0
    x = torch.rand(20, 4)
    state = torch.get_rng_state()
    fig, ax = plt.subplots()
    latent_panel(model, x, ax=ax)
    assert ax.get_xlim()[1] > 50
    knobs_figure(model, x, fig=fig)
    assert torch.equal(state, torch.get_rng_state())
    plt.close(fig)


def test_rate_distortion_plane_draws_the_best_elbo_line():
    fig, ax = plt.subplots()
    rate_distortion_plane([0.0, 2.0, 20.0], [27.0, 23.0, 22.0], ["10", "1", "0"], ax=ax)
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert dashed and np.allclose(np.sum(dashed[0].get_xydata(), axis=1), 25.0)
    assert "R + D = 25.0 nats (best −ELBO)" in [t.get_text() for t in ax.get_legend().get_texts()]
    with pytest.raises(ValueError, match="must be 1-D of one length"):
        rate_distortion_plane([1.0, 2.0], [1.0], ax=ax)
    kl_bars(torch.tensor([0.1, 1.0, 0.0]), ax=ax, threshold=0.1, label="x")
    plt.close(fig)


def test_redrawing_in_place_gives_the_same_picture_as_a_fresh_figure():
    import io

    from matplotlib.figure import Figure

    from vaelab.plot import KnobsFigure

    def png(fig):
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=40)
        return buffer.getvalue()

    torch.manual_seed(0)
    a, b = VAE.mlp(16, 2, hidden=(8,)), VAE.mlp(16, 2, hidden=(8,))
    x, y = torch.rand(30, 16), torch.arange(30) % 10
    view = KnobsFigure(Figure(figsize=(6, 2)))
    view.draw(a, x, y, title="a")
    first = png(view.fig)
    view.draw(b, x, y, title="b")
    assert png(view.fig) != first
    assert png(view.fig) == png(KnobsFigure(Figure(figsize=(6, 2))).draw(b, x, y, title="b"))


def test_rate_distortion_plane_marks_the_anchor_two_series_and_zooms():
    fig, ax = plt.subplots()
    rate_distortion_plane([0.0, 2.0, 20.0], [27.0, 23.0, 22.0], ["10", "1", "0"], ax=ax, anchor=27.3,
                          label="held-out", max_rate=6.0)
    rate_distortion_plane([0.1, 2.1, 21.0], [26.5, 22.5, 21.0], ax=ax, elbo_lines=False, label="training",
                          marker="s", max_rate=6.0)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {"held-out", "training", "independent pixels (R = 0)"} <= set(legend)
    assert ax.get_xlim()[1] == 6.0 and [t.get_text() for t in ax.texts] == ["10", "1"]  # β = 0 is off the zoom
    assert ax.get_ylim()[0] < 22.5 < 27.3 < ax.get_ylim()[1]  # the second series widened the frame
    with pytest.raises(ValueError, match=r"`labels` must name each of the 3 points, got 2"):
        rate_distortion_plane([0.0, 1.0, 2.0], [3.0, 2.0, 1.0], ["a", "b"], ax=ax)
    with pytest.raises(ValueError, match=r"`max_rate` must be a number > 0, got 0"):
        rate_distortion_plane([0.0], [1.0], ax=ax, max_rate=0)
    plt.close(fig)


def test_prior_centres_are_the_mixture_means_or_the_pseudo_inputs_codes():
    from vaelab.plot.knobs import prior_centres
    from vaelab.priors import MixturePrior, VampPrior

    torch.manual_seed(0)
    assert prior_centres(VAE.mlp(4, 2, hidden=(4,))) is None
    mixture = VAE.mlp(4, 2, hidden=(4,), prior=MixturePrior(2, 3))
    np.testing.assert_array_equal(prior_centres(mixture), mixture.prior.means.detach().numpy())
    vamp = VAE.mlp(4, 2, hidden=(4,))
    vamp.prior = VampPrior(vamp.encoder, 5, 4)
    with torch.no_grad():
        expected = vamp.encode_params(vamp.prior.pseudo_inputs)[0].numpy()
    np.testing.assert_allclose(prior_centres(vamp), expected)
