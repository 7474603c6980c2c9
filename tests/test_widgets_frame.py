"""The shared widget frame reports a setting it cannot draw in the widget's text (tested through the EM widget)."""
import numpy as np
import pytest

from vaelab import data, widgets


@pytest.fixture(scope="module")
def few_points():
    # six distinct points, each repeated: with reg_covar = 0, EM for K >= 3 collapses a component
    return np.repeat(data.toy("blobs", 6).numpy(), 20, axis=0)


def test_a_k_whose_em_fails_is_reported_in_the_text_not_raised(few_points):
    """Setting the slider raised from the callback, and the slider then disagreed with the figure."""
    w = widgets.em_widget(few_points, n_components=2, n_iter=5, reg_covar=0.0)
    figure = w.image.value
    w.k_slider.value = 5
    assert isinstance(w.error, ValueError) and w.image.value == figure
    assert "Cannot draw K = 5, iteration = 0: ValueError: Fitting the mixture failed" in w.text.value
    assert "Increase reg_covar" in w.text.value and "still shows the last setting that could be drawn" in w.text.value
    w.k_slider.value = 1  # a setting that works clears the report
    assert w.error is None and "K = 1, iteration 0 of 5" in w.text.value and w.image.value != figure


def test_a_widget_built_with_a_setting_it_cannot_draw_raises(few_points):
    with pytest.raises(ValueError, match="Fitting the mixture failed"):
        widgets.em_widget(few_points, n_components=4, n_iter=5, reg_covar=0.0)


def test_em_widget_random_state_is_checked_up_front(few_points):
    """random_state="a" raised numpy's raw error from deep inside the first drawing."""
    with pytest.raises(TypeError, match=r"`random_state` must be an integer >= 0, got 'a' of type str"):
        widgets.em_widget(few_points, random_state="a")
