"""The β / prior dashboard of lesson 04: turn β and pick p(z), see what the VAE does with its latent space.

On every change it shows the encoded data over the prior's density, samples decoded from the prior,
reconstructions, and the rate / distortion / active units as text. Each (prior, β) model is trained
once and kept in memory, so a change only draws: benchmarks/bench_widgets.py measures that against
training a tiny model on every change, and the lesson reports which answers faster.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import ipywidgets as widgets
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._validation import check_2d, check_choice, check_nonnegative, check_positive, check_positive_int
from ..device import seed_everything
from ..diagnostics import diagnose
from ..models import VAE
from ..plot.knobs import KnobsFigure
from ..priors import PRIORS, make_prior
from ..train import fit
from ._frame import _png

__all__ = ["BETAS", "PRIOR_LABELS", "BetaPriorDashboard", "KnobsTrainer", "beta_prior_dashboard"]

BETAS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
PRIOR_LABELS = {"standard": "standard normal", "mixture": "learned mixture", "vamp": "VampPrior"}


def _beta_label(beta: float) -> str:
    return f"{beta:g}"


@dataclass
class KnobsTrainer:
    """Train one small VAE on ``X`` for a (prior name, β) pair: the dashboard's default trainer.

    ``KnobsTrainer(X)("mixture", 3.0)`` builds ``VAE.mlp(data_dim, latent_dim, hidden)`` with the named
    prior (``n_components`` Gaussians or pseudo-inputs; the VampPrior's start as random rows of X) and
    fits it for ``epochs`` with that β, seeded, without a progress bar.

    >>> trainer = KnobsTrainer(torch.rand(20, 4).round(), hidden=(4,), epochs=1, n_components=3)
    >>> type(trainer("mixture", 1.0).prior).__name__
    'MixturePrior'
    """

    X: torch.Tensor = field(repr=False)
    latent_dim: int = 2
    hidden: Sequence[int] = (64,)
    epochs: int = 40
    batch_size: int = 256
    lr: float = 5e-3
    n_components: int = 10
    seed: int = 0
    device: str | torch.device | None = None

    def __post_init__(self):
        self.X = check_2d(self.X, "X")
        self.latent_dim = check_positive_int(self.latent_dim, "latent_dim")
        self.epochs = check_positive_int(self.epochs, "epochs")
        self.n_components = check_positive_int(self.n_components, "n_components")

    def build(self, prior: str) -> VAE:
        """An untrained VAE with the named prior (seeded: the same call gives the same weights)."""
        check_choice(prior, "prior", PRIORS)
        seed_everything(self.seed)
        model = VAE.mlp(self.X.shape[1], self.latent_dim, hidden=tuple(self.hidden))
        init = self.X[torch.randperm(self.X.shape[0])[:self.n_components]] if prior == "vamp" else None
        model.prior = make_prior(prior, self.latent_dim, n_components=self.n_components, encoder=model.encoder,
                                 data_dim=self.X.shape[1], init=init)
        return model

    def __call__(self, prior: str, beta: float) -> VAE:
        beta = check_nonnegative(beta, "beta")
        model = self.build(prior)
        fit(model, self.X, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, beta=beta,
            device=self.device, progress=False, seed=self.seed)
        return model.eval()


class BetaPriorDashboard:
    """A β slider (log-spaced values from 0) and a prior dropdown over one cache of trained VAEs.

    Parameters
    ----------
    X : data shown (codes, reconstructions) and scored (rate, distortion, active units), of shape
        (n_samples, data_dim) — typically held-out data
    y : optional labels of X, colouring the codes
    train : callable ``train(prior_name, beta) -> VAE`` (e.g. a :class:`KnobsTrainer`)
    betas, priors : the values the controls offer; β ≥ 0, priors from "standard", "mixture", "vamp"
    models : already trained models, ``{(prior_name, beta): model}``, used instead of training
    pretrain : train every (prior, β) pair now (a change then only draws); False trains on first use
    cache : keep trained models; False trains a fresh model on every change (the "live" strategy)
    beta, prior : the starting position of the controls
    threshold : activity threshold for counting active units (Burda et al., 2016 use 0.01)

    Use ``display(dashboard)`` (or leave it last in a cell); ``dashboard.update()`` redraws and
    ``dashboard.text.value`` / ``dashboard.image.value`` hold what is shown.

    >>> x = torch.rand(20, 4).round()  # 2×2 "images"
    >>> dash = BetaPriorDashboard(x, train=KnobsTrainer(x, hidden=(4,), epochs=1), betas=(0, 10), beta=0,
    ...                           priors=("standard",))
    >>> dash.beta_slider.value = 10.0  # what moving the slider does
    >>> "β = 10, prior: standard normal" in dash.text.value
    True
    """

    def __init__(self, X: Any, y: Any = None, *, train: Callable[[str, float], VAE],
                 betas: Iterable[float] = BETAS, priors: Iterable[str] = PRIORS,
                 models: Mapping[tuple[str, float], VAE] | None = None, pretrain: bool = True, cache: bool = True,
                 beta: float = 1.0, prior: str = "standard", threshold: float = 0.01, dpi: int = 72):
        self.X = check_2d(X, "X")
        self.y = None if y is None else torch.as_tensor(y)
        if not callable(train):
            raise TypeError(f"`train` must be a callable train(prior_name, beta) -> VAE, got {type(train).__name__}")
        self.train = train
        self.betas = tuple(sorted({check_nonnegative(b, "betas") for b in betas}))
        self.priors = tuple(dict.fromkeys(check_choice(p, "priors", PRIORS) for p in priors))
        if not self.betas or not self.priors:
            raise ValueError("`betas` and `priors` must each offer at least one value")
        beta = check_nonnegative(beta, "beta")
        if beta not in self.betas:
            raise ValueError(f"`beta` must be one of the offered betas {self.betas}, got {beta:g}")
        check_choice(prior, "prior", self.priors)
        self.cache = bool(cache)
        self.threshold = check_positive(threshold, "threshold")
        self.dpi = check_positive_int(dpi, "dpi")
        self._models: dict[tuple[str, float], VAE] = {}
        for (name, b), model in (models or {}).items():
            self._models[(check_choice(name, "models key", PRIORS), check_nonnegative(b, "models key beta"))] = model
        if pretrain:
            for name in self.priors:
                for b in self.betas:
                    self.model(name, b)

        self.beta_slider = widgets.SelectionSlider(
            options=[(_beta_label(b), b) for b in self.betas], value=beta, description="β",
            continuous_update=False, layout=widgets.Layout(width="420px"))
        self.prior_dropdown = widgets.Dropdown(
            options=[(PRIOR_LABELS[p], p) for p in self.priors], value=prior, description="prior p(z)")
        self.text = widgets.HTML()
        self.image = widgets.Image(format="png")
        # stable handles for the browser test and for styling
        for w, name in ((self.beta_slider, "beta"), (self.prior_dropdown, "prior"), (self.text, "text"),
                        (self.image, "figure")):
            w.add_class(f"vaelab-knobs-{name}")
        self.widget = widgets.VBox([widgets.HBox([self.beta_slider, self.prior_dropdown]), self.text, self.image])
        figure = Figure(figsize=(10, 3.3))
        FigureCanvasAgg(figure)  # drawn off-screen: nothing reaches the notebook's inline backend
        self._view = KnobsFigure(figure)
        self._shown: dict[tuple[str, float], tuple[str, bytes]] = {}
        self.beta_slider.observe(self._on_change, names="value")
        self.prior_dropdown.observe(self._on_change, names="value")
        self.update()

    # ---------------------------------------------------------------- models

    def model(self, prior: str, beta: float) -> VAE:
        """The trained VAE for (prior, β), from the cache or trained now."""
        key = (check_choice(prior, "prior", PRIORS), check_nonnegative(beta, "beta"))
        model = self._models.get(key)
        if model is None:
            model = self.train(*key)
            if self.cache:
                self._models[key] = model
        return model

    @property
    def models(self) -> dict[tuple[str, float], VAE]:
        """The trained models held in memory, ``{(prior_name, beta): model}``."""
        return dict(self._models)

    # ---------------------------------------------------------------- drawing

    def render(self, prior: str, beta: float) -> tuple[str, bytes]:
        """The text and the PNG figure for (prior, β): what the dashboard shows (kept when ``cache``)."""
        key = (prior, float(beta))
        if key in self._shown:
            return self._shown[key]
        model = self.model(prior, beta)
        x = self.X.to(next(model.parameters()).device)
        summary = diagnose(model, x, threshold=self.threshold)
        title = f"β = {_beta_label(beta)}, prior: {PRIOR_LABELS[prior]}"
        self._view.draw(model, x, self.y, title=title)
        png = _png(self._view.fig, self.dpi)
        text = (f"<pre style='margin:0'>{html.escape(title)}\n{html.escape(str(summary))}\n"
                f"(averages per example of X; rate + distortion = −ELBO)</pre>")
        if self.cache:
            self._shown[key] = (text, png)
        return text, png

    def update(self) -> None:
        """Redraw for the controls' current values."""
        prior, beta = self.prior_dropdown.value, self.beta_slider.value
        try:
            text, png = self.render(prior, beta)
        except Exception as error:  # a failed fit must not kill the dashboard; say what happened instead
            self.text.value = (f"<pre style='margin:0'>β = {_beta_label(beta)}, prior {PRIOR_LABELS[prior]}: "
                               f"{html.escape(type(error).__name__)}: {html.escape(str(error))}</pre>")
            return
        self.text.value, self.image.value = text, png

    def _on_change(self, change: dict) -> None:
        self.update()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def beta_prior_dashboard(X_train: Any, X: Any, y: Any = None, *, epochs: int = 40, latent_dim: int = 2,
                         hidden: Sequence[int] = (64,), **kwargs) -> BetaPriorDashboard:
    """A :class:`BetaPriorDashboard` whose models are trained on ``X_train`` by a :class:`KnobsTrainer`.

    ``X`` (and its labels ``y``) is what the dashboard shows and scores; other keyword arguments go to
    :class:`BetaPriorDashboard` (``betas``, ``priors``, ``models``, ``pretrain``, …).
    """
    trainer = KnobsTrainer(X_train, latent_dim=latent_dim, hidden=tuple(hidden), epochs=epochs)
    return BetaPriorDashboard(X, y, train=trainer, **kwargs)
