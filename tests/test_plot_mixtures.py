import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from vaelab import GaussianMixture, data, gmm, plot


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def x():
    return data.toy("blobs", 200)


def png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    return buffer.getvalue()


def test_plot_gmm_draws_ellipses_means_and_responsibility_colours(x):
    model = GaussianMixture(3, random_state=0).fit(x)
    fig, ax = plt.subplots()
    plot.plot_gmm(ax, x, model, title="three blobs")
    assert len(ax.patches) == 6 and ax.get_title() == "three blobs"  # 1 and 2 standard deviations per component
    points, means = ax.collections
    assert len(points.get_offsets()) == 200 and len(means.get_offsets()) == 3
    # each point's colour is its responsibilities' blend of the component colours
    expected = plot.responsibility_colors(model.predict_proba(x))
    np.testing.assert_allclose(points.get_facecolors()[:, :3], expected, atol=1e-6)
    # the 1-sd ellipse of a component has the axes 2·sqrt(eigenvalues) of its covariance
    widths = sorted(2 * np.sqrt(np.linalg.eigvalsh(model.covariances_[0].numpy())))
    first = ax.patches[0]
    np.testing.assert_allclose(sorted([first.width, first.height]), widths, rtol=1e-6)


def test_plot_gmm_changes_with_the_parameters_and_takes_every_covariance_type(x):
    weights, means = torch.full((2,), 0.5), torch.tensor([[-2.0, -1.0], [2.0, -1.0]])
    images = []
    for cov in (torch.eye(2).repeat(2, 1, 1), torch.ones(2, 2) * 0.2, torch.tensor([0.1, 2.0])):
        fig, ax = plt.subplots()
        plot.plot_gmm(ax, x, (weights, means, cov))
        images.append(png(fig))
    assert len(set(images)) == 3
    fig, ax = plt.subplots()
    plot.plot_gmm(ax, x, (weights, means, torch.tensor([0.1, 2.0])), resp=False)
    assert np.allclose(ax.collections[0].get_facecolors()[:, :3], 0.55)


def test_plot_gmm_rejects_bad_input(x):
    fig, ax = plt.subplots()
    with pytest.raises(TypeError, match=r"`gmm_or_params` must be a fitted vaelab.GaussianMixture or a tuple"):
        plot.plot_gmm(ax, x, "model")
    with pytest.raises(ValueError, match=r"not fitted yet"):
        plot.plot_gmm(ax, x, GaussianMixture(2))
    with pytest.raises(ValueError, match=r"`covariances` must have shape \(2, 2, 2\), \(2, 2\) or \(2,\)"):
        plot.plot_gmm(ax, x, ([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"`X` has 2 features but the mixture's means have 3"):
        plot.plot_gmm(ax, x, ([1.0], [[0.0, 0.0, 0.0]], [1.0]))


def test_gmm_ellipses_in_higher_dimensions_draw_the_marginal():
    fig, ax = plt.subplots()
    cov = np.diag([1.0, 4.0, 9.0])[None]
    patches = plot.gmm_ellipses(ax, np.zeros((1, 3)), cov, dims=(0, 2), n_std=(1.0,))
    assert sorted([patches[0].width, patches[0].height]) == pytest.approx([2.0, 6.0])


def test_log_likelihood_curve_and_em_figure(x):
    path = gmm.em_path(x, 3, n_iter=8, init_params="random")
    fig, ax = plt.subplots()
    plot.log_likelihood_curve(ax, path.log_likelihood, current=4)
    line, marker = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(line.get_ydata(), path.log_likelihood.numpy())
    assert marker.get_xdata()[0] == 4
    first = plot.em_figure(path, 0, x)
    before = png(first)
    assert len(first.axes) == 2 and "after 0 EM iterations" in first.axes[0].get_title()
    after = png(plot.em_figure(path, 8, x, fig=first))
    assert before != after and len(first.axes) == 2 and "after 8 EM iterations" in first.axes[0].get_title()
    with pytest.raises(ValueError, match=r"`iteration` must be in \[0, 8\], got 9"):
        plot.em_figure(path, 9, x)


def test_sixteen_components_get_colours_that_can_be_told_apart():
    from itertools import combinations
    ours = plot.component_colors(16)
    tab20 = np.array(plt.get_cmap("tab20").colors)[:16]

    def closest(colors):
        return min(np.linalg.norm(a - b) for a, b in combinations(colors, 2))

    assert len({tuple(c) for c in ours}) == 16
    # tab20 pairs each colour with a pale copy (closest pair 0.11 apart in RGB); the ten extra colours
    # come no closer to anything than tab10's own closest pair (0.26)
    tab10 = np.array(plot.COMPONENT_COLORS)
    assert closest(plot.component_colors(20)) >= closest(tab10) - 1e-12 > 0.2 > closest(tab20)
    np.testing.assert_allclose(plot.component_colors(3), np.array(plot.COMPONENT_COLORS[:3]))


def test_plot_gmm_labels_the_data_axes(x):
    fig, ax = plt.subplots()
    plot.plot_gmm(ax, x, GaussianMixture(2, random_state=0).fit(x))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("$x_1$", "$x_2$")
    # the dot of a component grows with its weight and never vanishes: area 30 + 400 π_k
    sizes = ax.collections[-1].get_sizes()
    np.testing.assert_allclose(sorted(sizes), sorted(30 + 400 * GaussianMixture(2, random_state=0).fit(x).weights_.numpy()))
