import pytest
import torch
from torch import nn
from torch.distributions import MixtureSameFamily, Normal, Uniform

from vaelab import widgets

def test_components_widget_callback_gets_closer_to_the_continuum(mixture):
    w = widgets.components_widget(mixture, n_components=3, resolution=40)
    assert w.slider.continuous_update is False and w.slider.max == 100
    gaps = {K: w.draw(K, "grid")[1] for K in (5, 20, 60, 100)}
    assert gaps[5] > gaps[20] > gaps[60] > gaps[100] and gaps[100] < 1e-3
    assert 0 <= w.draw(1, "quadrature")[1] <= 2
    fig, _ = w.draw(9, "quantile")
    assert len(fig.axes[1].collections[-1].get_offsets()) == 9


def test_components_widget_redraws_when_a_control_moves(mixture):
    w = widgets.components_widget(mixture, n_components=3, resolution=40)
    before = w.image.value
    w.slider.value = 7
    assert "K = 7 components at Gauss–Hermite nodes" in w.text.value and w.image.value != before
    w.nodes_dropdown.value = "grid"
    assert "even grid" in w.text.value
    assert w.image.value[:8] == b"\x89PNG\r\n\x1a\n"


def test_prior_widget_callback_draws_each_prior(arc):
    w = widgets.prior_widget(arc, obs_scale=0.25, resolution=40)
    assert w.scale_slider.continuous_update is False
    for kind, family in (("normal", Normal), ("uniform", Uniform), ("two-bump", MixtureSameFamily)):
        fig, mix = w.draw(kind, 0.7)
        base = mix.prior.base_dist  # the 1-D prior, seen as a distribution over z of shape (1,)
        assert isinstance(base, family) and abs(float(base.stddev) - 0.7) < 1e-12
        assert fig.axes[0].get_xlim() == w.z_lim
    w.kind_dropdown.value = "uniform"
    assert "uniform" in w.text.value
    w.scale_slider.value = 2.0
    assert "standard deviation 2.0" in w.text.value


def test_prior_widget_follows_a_float32_decoder():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 2))
    w = widgets.prior_widget(net, obs_scale=0.3, kind="two-bump", resolution=40)
    _, mix = w.draw("two-bump", 1.0)
    assert mix.prior.mean.dtype == torch.float32


def test_widget_arguments_are_checked(mixture, arc):
    with pytest.raises(ValueError, match=r"`n_components` must be at most max_components=10, got 11"):
        widgets.components_widget(mixture, n_components=11, max_components=10)
    with pytest.raises(ValueError, match=r"`nodes` must be one of"):
        widgets.components_widget(mixture, nodes="random")
    with pytest.raises(ValueError, match=r"`kind` must be one of 'normal', 'uniform', 'two-bump'"):
        widgets.prior_widget(arc, obs_scale=0.3, kind="laplace")
    with pytest.raises(ValueError, match=r"`obs_scale` must be a finite number > 0"):
        widgets.prior_widget(arc, obs_scale=0.0)


def test_prior_widget_narrows_two_bumps_without_moving_them(arc):
    w = widgets.prior_widget(arc, obs_scale=0.25, kind="two-bump", resolution=40)
    for width in (0.5, 0.1):
        _, mix = w.draw("two-bump", 1.5, width)
        components = mix.prior.base_dist.component_distribution
        assert components.loc.flatten().tolist() == [-1.5, 1.5] and components.scale.flatten().tolist() == [width, width]
    _, tied = w.draw("two-bump", 1.5, 0.0)               # 0: example_prior's bumps, tied to the spread
    assert abs(float(tied.prior.base_dist.stddev) - 1.5) < 1e-12
    w.scale_slider.value = 1.5
    w.width_slider.value = 0.1
    assert "two bumps at ±1.5, each of width (standard deviation) 0.10" in w.text.value
    w.kind_dropdown.value = "normal"
    assert "normal, standard deviation 1.5" in w.text.value and "for two bumps only" in w.text.value
