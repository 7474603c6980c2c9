import numpy as np
import pytest

from vaelab import data, gmm, widgets


@pytest.fixture(scope="module")
def x():
    return data.toy("pinwheel", 150)


def test_em_widget_callback_draws_each_iteration_and_k(x):
    w = widgets.em_widget(x, n_components=3, n_iter=10)
    assert w.k_slider.continuous_update is False and w.iteration_slider.continuous_update is False
    assert w.iteration_slider.max == 10 and w.k_slider.max == 10
    fig = w.draw(3, 0)
    assert "K = 3, after 0 EM iterations" in fig.axes[0].get_title()
    first_means = fig.axes[0].collections[-1].get_offsets().copy()
    fig = w.draw(3, 10)
    assert "after 10 EM iterations" in fig.axes[0].get_title()
    assert not np.allclose(fig.axes[0].collections[-1].get_offsets(), first_means)  # the means moved
    assert len(w.draw(5, 4).axes[0].collections[-1].get_offsets()) == 5


def test_em_widget_computes_each_path_once(x, monkeypatch):
    w = widgets.em_widget(x, n_components=2, n_iter=5)
    calls = []
    original = widgets.em.em_path
    monkeypatch.setattr(widgets.em, "em_path", lambda *a, **k: calls.append(a[1]) or original(*a, **k))
    for t in range(6):
        w.draw(4, t)
    assert calls == [4]
    path = w.path(4)
    assert np.all(np.diff(path.log_likelihood.numpy()) >= -1e-12)  # EM never goes down
    # the start: means at data points, the data's covariance, equal weights
    start = gmm.start_at_points(x, 4, random_state=0)
    np.testing.assert_allclose(path.means[0].numpy(), start["means_init"], rtol=1e-12)


def test_em_widget_redraws_when_a_slider_moves(x):
    w = widgets.em_widget(x, n_components=3, n_iter=10)
    before, text = w.image.value, w.text.value
    assert "K = 3, iteration 0 of 10" in text and "the initial parameters" in text
    w.iteration_slider.value = 6
    assert "iteration 6 of 10" in w.text.value and "since iteration 5" in w.text.value and w.image.value != before
    w.k_slider.value = 5
    assert "K = 5, iteration 6 of 10" in w.text.value
    assert w.image.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_em_widget_other_starts_and_errors(x):
    w = widgets.em_widget(x, n_components=2, n_iter=3, init_params="kmeans++", covariance_type="diag")
    assert w.path(2).covariances.shape == (4, 2, 2)
    with pytest.raises(ValueError, match=r"`n_components` must be at most max_components=4, got 5"):
        widgets.em_widget(x, n_components=5, max_components=4)
    with pytest.raises(ValueError, match=r"`x` must be 2-D data of shape \(n_samples, 2\), got 3 features"):
        widgets.em_widget(np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"`init_params` must be one of 'points', 'kmeans\+\+', 'random'"):
        widgets.em_widget(x, init_params="kmeans")


def test_em_widget_sentence_counts_the_steps_that_lowered_the_likelihood(x):
    # with a large reg_covar the M-step no longer maximises Q and EM can go down: the text must say so
    w = widgets.em_widget(x, n_components=5, n_iter=40, reg_covar=0.5)
    values = w.path(5).log_likelihood.numpy()
    drops = int((np.diff(values) < -1e-9).sum())
    assert drops > 0
    w.iteration_slider.value = 40
    assert f"steps that lowered it by more than 1e-09: {drops} of 40" in w.text.value
    assert "reg_covar = 0.5 can make EM lower it; with 0 it never does" in w.text.value
    assert "it never goes down" not in w.text.value
    plain = widgets.em_widget(x, n_components=3, n_iter=5, reg_covar=0.0)
    plain.iteration_slider.value = 5
    assert "0 of 5 (with reg_covar = 0 EM never lowers it)" in plain.text.value
