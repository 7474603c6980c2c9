"""The β / prior dashboard, driven by calling its controls the way a browser would (value changes)."""
import pytest
import torch

from vaelab.models import VAE
from vaelab.priors import MixturePrior, StandardNormal, VampPrior
from vaelab.widgets import BETAS, BetaPriorDashboard, KnobsTrainer, beta_prior_dashboard

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    X = (torch.rand(80, 16, generator=g) < torch.rand(1, 16, generator=g)).float()  # 4×4 binary "images"
    y = torch.arange(80) % 10
    return X, y


class CountingTrainer(KnobsTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def __call__(self, prior, beta, n_components=None):
        self.calls.append((prior, beta))
        return super().__call__(prior, beta, n_components)


def tiny(X, **kwargs):
    return CountingTrainer(X, hidden=(8,), epochs=1, batch_size=40, n_components=3, **kwargs)


def test_controls_offer_beta_from_zero_on_a_log_scale_and_every_prior(data):
    X, y = data
    dash = BetaPriorDashboard(X, y, train=tiny(X), priors=("standard",), betas=(0, 1))
    full = BetaPriorDashboard(X, y, train=tiny(X), pretrain=False)
    labels = [label for label, _ in full.beta_slider.options]
    assert labels[0] == "0" and float(labels[-1]) >= 10 and BETAS == (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
    assert [v for _, v in full.prior_dropdown.options] == ["standard", "mixture", "vamp"]
    assert not dash.beta_slider.continuous_update
    assert bytes(dash.image.value).startswith(PNG) and "active units" in dash.text.value


def test_grid_is_trained_once_and_a_change_only_draws(data):
    X, y = data
    trainer = tiny(X)
    dash = BetaPriorDashboard(X, y, train=trainer, betas=(0, 1, 10), priors=("standard", "mixture"), pretrain=True,
                              k=10)
    assert sorted(trainer.calls) == sorted((p, b) for p in ("standard", "mixture") for b in (0.0, 1.0, 10.0))
    assert set(dash.models) == {(p, b, 1 if p == "standard" else 10) for p, b in trainer.calls}
    text, png = dash.text.value, dash.image.value
    dash.beta_slider.value = 10.0
    assert dash.text.value != text and dash.image.value != png and "β = 10" in dash.text.value
    text, png = dash.text.value, dash.image.value
    dash.prior_dropdown.value = "mixture"
    assert dash.text.value != text and dash.image.value != png and "learned mixture" in dash.text.value
    assert len(trainer.calls) == 6  # no training after construction
    shown = dash.text.value, bytes(dash.image.value)
    dash.prior_dropdown.value = "standard"
    dash.prior_dropdown.value = "mixture"  # a second visit shows the same picture (drawn once, kept)
    assert (dash.text.value, bytes(dash.image.value)) == shown


def test_live_strategy_trains_on_every_change_and_lazy_strategy_once(data):
    X, _ = data
    live = tiny(X)
    dash = BetaPriorDashboard(X, train=live, betas=(0, 1), priors=("standard",), cache=False)
    dash.beta_slider.value = 0.0
    dash.beta_slider.value = 1.0
    assert live.calls == [("standard", 1.0), ("standard", 0.0), ("standard", 1.0)] and dash.models == {}
    lazy = tiny(X)
    dash = BetaPriorDashboard(X, train=lazy, betas=(0, 1), priors=("standard",))
    dash.beta_slider.value = 0.0
    dash.beta_slider.value = 1.0
    assert lazy.calls == [("standard", 1.0), ("standard", 0.0)]


def test_models_given_are_used_instead_of_training(data):
    X, _ = data
    trainer = tiny(X)
    given = trainer("standard", 1.0)
    trainer.calls.clear()
    dash = BetaPriorDashboard(X, train=trainer, betas=(1,), priors=("standard",), models={("standard", 1): given})
    assert trainer.calls == [] and dash.model("standard", 1.0) is given


@pytest.mark.parametrize("prior", ["standard", "mixture", "vamp"])
def test_survives_extreme_settings_for_every_prior(data, prior):
    X, y = data
    dash = BetaPriorDashboard(X, y, train=tiny(X), betas=(0.0, 1000.0), priors=(prior,), beta=0.0, prior=prior)
    for beta in (1000.0, 0.0):
        dash.beta_slider.value = beta
        assert bytes(dash.image.value).startswith(PNG)
        assert "rate" in dash.text.value and "Error" not in dash.text.value and "nan" not in dash.text.value


def test_a_failed_training_is_reported_not_raised(data):
    X, _ = data

    def broken(prior, beta, k):
        if beta > 1:
            raise FloatingPointError("the loss is no longer finite")
        return tiny(X)(prior, beta, k)

    dash = BetaPriorDashboard(X, train=broken, betas=(1, 10), priors=("standard",))
    png = dash.image.value
    dash.beta_slider.value = 10.0
    assert "FloatingPointError: the loss is no longer finite" in dash.text.value and dash.image.value == png
    assert "the other settings still work" in dash.text.value
    dash.beta_slider.value = 1.0  # the good model is still there and shown
    assert "β = 1, prior: standard normal" in dash.text.value and "rate" in dash.text.value


def test_trainer_builds_each_prior_reproducibly(data):
    X, _ = data
    trainer = KnobsTrainer(X, hidden=(8,), epochs=1, n_components=3)
    kinds = {p: type(trainer.build(p).prior) for p in ("standard", "mixture", "vamp")}
    assert kinds == {"standard": StandardNormal, "mixture": MixturePrior, "vamp": VampPrior}
    a, b = trainer("vamp", 1.0), trainer("vamp", 1.0)
    assert isinstance(a, VAE) and not a.training
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q)
    assert a.prior.encoder is a.encoder  # the VampPrior follows the encoder being trained


def test_convenience_builder(data):
    X, y = data
    dash = beta_prior_dashboard(X, X[:20], y[:20], epochs=1, hidden=(8,), betas=(1,), priors=("standard",))
    assert isinstance(dash.train, KnobsTrainer) and bytes(dash.image.value).startswith(PNG)


@pytest.mark.parametrize("kwargs, error, msg", [
    ({"betas": (-1, 1)}, ValueError, r"`betas` must be a finite number >= 0, got -1"),
    ({"betas": (1, float("inf"))}, ValueError, r"`betas` must be a finite number >= 0, got inf"),
    ({"betas": ()}, ValueError, r"`betas`, `priors` and `ks` must each offer at least one value"),
    ({"ks": (0, 1)}, ValueError, r"`ks` must be an integer >= 1, got 0"),
    ({"k": 3}, ValueError, r"`k` must be one of the offered ks \(1, 2, 5, 10, 20\), got 3"),
    ({"models": {("standard",): None}}, ValueError, r"`models` keys must be \(prior_name, beta\)"),
    ({"priors": ("laplace",)}, ValueError, r"`priors` must be one of 'standard', 'mixture', 'vamp'; got 'laplace'"),
    ({"beta": 2.0}, ValueError, r"`beta` must be one of the offered betas"),
    ({"beta": -1.0}, ValueError, r"`beta` must be a finite number >= 0"),
    ({"prior": "vamp", "priors": ("standard",)}, ValueError, r"`prior` must be one of 'standard'; got 'vamp'"),
    ({"train": "fit"}, TypeError, r"`train` must be a callable train\(prior_name, beta, n_components\) -> VAE"),
    ({"models": {("laplace", 1.0): None}}, ValueError, r"`models key` must be one of"),
    ({"threshold": 0.0}, ValueError, r"`threshold` must be a finite number > 0, got 0.0"),
])
def test_bad_input_is_a_clear_error(data, kwargs, error, msg):
    X, _ = data
    kwargs = {"train": tiny(X), **kwargs}
    with pytest.raises(error, match=msg):
        BetaPriorDashboard(X, **kwargs)


@pytest.mark.parametrize("kwargs, msg", [
    ({"epochs": 0}, r"`epochs` must be an integer >= 1, got 0"),
    ({"n_components": 0}, r"`n_components` must be an integer >= 1, got 0"),
    ({"latent_dim": 0}, r"`latent_dim` must be an integer >= 1, got 0"),
])
def test_trainer_bad_input(data, kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        KnobsTrainer(data[0], **kwargs)
    with pytest.raises(ValueError, match=r"`beta` must be a finite number >= 0, got -0.5"):
        KnobsTrainer(data[0])("standard", -0.5)


def test_y_of_the_wrong_length_is_a_clear_error(data):
    X, y = data
    with pytest.raises(ValueError, match=r"`y` must hold one label per row of `X` \(80 rows\), got shape \(79,\)"):
        BetaPriorDashboard(X, y[:79], train=tiny(X))
    with pytest.raises(ValueError, match=r"`y` must hold one label per row of `X` \(80 rows\), got shape \(80, 1\)"):
        BetaPriorDashboard(X, y[:, None], train=tiny(X))


def test_k_control_trains_a_learned_prior_with_k_components_and_is_off_for_the_standard_normal(data):
    X, y = data
    trainer = tiny(X)
    dash = BetaPriorDashboard(X, y, train=trainer, betas=(1,), priors=("standard", "mixture", "vamp"), ks=(1, 3), k=3)
    assert dash.k_slider.disabled and [v for _, v in dash.k_slider.options] == [1, 3]
    dash.prior_dropdown.value = "mixture"
    assert not dash.k_slider.disabled and "K = 3" in dash.text.value
    assert dash.model("mixture", 1.0).prior.n_components == 3
    dash.k_slider.value = 1  # K = 1: the mixture is one learned Gaussian
    assert "K = 1" in dash.text.value and dash.model("mixture", 1.0, 1).prior.n_components == 1
    dash.prior_dropdown.value = "vamp"
    assert dash.model("vamp", 1.0, 1).prior.n_pseudo == 1 and "VampPrior, K = 1" in dash.text.value
    dash.prior_dropdown.value = "standard"
    dash.k_slider.value = 3  # K means nothing for N(0, I): no new model
    assert trainer.calls.count(("standard", 1.0)) == 1


def test_the_figure_marks_the_current_model_the_prior_components_and_the_classes(data):
    X, y = data
    dash = BetaPriorDashboard(X, y, train=tiny(X), betas=(0, 1), priors=("mixture",), prior="mixture", ks=(3,), k=3,
                              anchor=11.0)
    dash.beta_slider.value = 0.0
    view = dash._view
    legend = [t.get_text() for t in view.ax_plane.get_legend().get_texts()]
    assert legend == ["independent pixels (R = 0)", "this model"]
    labels = [t.get_text() for t in view.ax_plane.texts]
    assert labels == ["β=0", "β=1"]  # both models seen so far, in the plane
    assert view._centres is not None and len(view._centres.get_offsets()) == 3  # the mixture's three means
    assert [t.get_text() for t in view.ax_latent.get_legend().get_texts()] == [str(c) for c in range(10)]
    assert dash.dpi >= 100 and "At β = 0 the KL has weight 0" in dash.text.value


def test_pretraining_keeps_the_other_models_when_one_fit_fails(data):
    X, _ = data

    def sometimes(prior, beta, k):
        if beta == 10:
            raise FloatingPointError("diverged")
        return tiny(X)(prior, beta, k)

    dash = BetaPriorDashboard(X, train=sometimes, betas=(0, 1, 10), priors=("standard",), pretrain=True)
    assert set(dash.models) == {("standard", 0.0, 1), ("standard", 1.0, 1)}
    assert dash.failures == {("standard", 10.0, 1): "FloatingPointError: diverged"}
    dash.beta_slider.value = 10.0
    assert "FloatingPointError: diverged" in dash.text.value


def test_ctrl_c_stops_pretraining_and_keeps_no_half_trained_model(data, monkeypatch):
    X, _ = data
    import vaelab.widgets.dashboard as dashboard_module

    from vaelab.train import History

    def interrupted_fit(model, X, **kwargs):  # what fit returns when Ctrl-C arrives before an epoch ends
        history = History()
        history.interrupted = True
        return history

    monkeypatch.setattr(dashboard_module, "fit", interrupted_fit)
    trainer = KnobsTrainer(X, hidden=(8,), epochs=3)
    with pytest.raises(KeyboardInterrupt, match=r"interrupted after 0 of 3 epochs"):
        trainer("standard", 1.0)
    with pytest.raises(KeyboardInterrupt):
        BetaPriorDashboard(X, train=trainer, betas=(1,), priors=("standard",), pretrain=True)
    dash = BetaPriorDashboard.__new__(BetaPriorDashboard)  # a live change interrupted: reported, nothing kept
    dash.text = type("T", (), {"value": ""})()
    dash.update = lambda: (_ for _ in ()).throw(KeyboardInterrupt())
    dash._on_change({})
    assert "training interrupted: nothing was kept" in dash.text.value
