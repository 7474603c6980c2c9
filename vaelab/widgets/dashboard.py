"""The β / prior dashboard of lesson 04: turn β, pick p(z) and its K, see what the VAE does with its latent space.

On every change it shows the encoded data over the prior's density (a learned prior's components
marked), samples decoded from the prior, reconstructions, the rate–distortion plane with the current
model marked, and the rate / distortion / active units as text. A setting seen for the first time is
trained live (a lesson-quality model trains in a fraction of a second: benchmarks/bench_widgets.py
measures it); models and pictures are kept, and models trained beforehand can be handed in.
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

__all__ = ["BETAS", "KS", "PRIOR_LABELS", "BetaPriorDashboard", "KnobsTrainer", "beta_prior_dashboard"]

BETAS = (0.0, 0.1, 0.3, 1.0, 3.0, 10.0)
KS = (1, 2, 5, 10, 20)  # components of a learned prior (Gaussians or pseudo-inputs); K = 1 is one Gaussian
PRIOR_LABELS = {"standard": "standard normal", "mixture": "learned mixture", "vamp": "VampPrior"}
# what a student meets at β = 0 with a learned prior, said where they meet it
BETA_ZERO_NOTE = {
    "mixture": "At β = 0 the KL has weight 0, so the learned mixture gets no gradient: it stays where it "
               "started (its K random means) while the codes go wherever reconstruction wants them.",
    "vamp": "At β = 0 the VampPrior's pseudo-inputs get no gradient, but its components are the encoder's "
            "posteriors q(z|u_k), which shrink to points as nothing charges for precision: the prior becomes "
            "K spikes and the rate KL(q(z|x) ‖ p(z)) explodes. The number is right; the model is not meant "
            "to be scored against that prior.",
}


def _beta_label(beta: float) -> str:
    return f"{beta:g}"


@dataclass
class KnobsTrainer:
    """Train one small VAE on ``X`` for a (prior name, β, K) setting: the dashboard's default trainer.

    ``KnobsTrainer(X)("mixture", 3.0, n_components=5)`` builds ``VAE.mlp(data_dim, latent_dim, hidden)``
    with the named prior (K Gaussians or pseudo-inputs, default ``n_components``; the VampPrior's start
    as random rows of X) and fits it for ``epochs`` with that β, seeded, without a progress bar.
    Ctrl-C during the fit raises ``KeyboardInterrupt`` (no half-trained model is handed back).

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

    def build(self, prior: str, n_components: int | None = None) -> VAE:
        """An untrained VAE with the named prior (seeded: the same call gives the same weights)."""
        check_choice(prior, "prior", PRIORS)
        k = self.n_components if n_components is None else check_positive_int(n_components, "n_components")
        if prior == "vamp" and k > self.X.shape[0]:
            raise ValueError(f"`n_components` must be at most the {self.X.shape[0]} rows of X for a VampPrior "
                             f"(its pseudo-inputs start as rows of X), got {k}")
        seed_everything(self.seed)
        model = VAE.mlp(self.X.shape[1], self.latent_dim, hidden=tuple(self.hidden))
        init = self.X[torch.randperm(self.X.shape[0])[:k]] if prior == "vamp" else None
        model.prior = make_prior(prior, self.latent_dim, n_components=k, encoder=model.encoder,
                                 data_dim=self.X.shape[1], init=init)
        return model

    def __call__(self, prior: str, beta: float, n_components: int | None = None) -> VAE:
        beta = check_nonnegative(beta, "beta")
        model = self.build(prior, n_components)
        history = fit(model, self.X, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, beta=beta,
                      device=self.device, progress=False, seed=self.seed)
        if history.interrupted:  # fit keeps the weights it has; a dashboard must not show them as trained
            raise KeyboardInterrupt(f"training ({prior}, β = {beta:g}) was interrupted after "
                                    f"{len(history)} of {self.epochs} epochs")
        return model.eval()


Key = tuple[str, float, int]


class BetaPriorDashboard:
    """A β slider (log-spaced values from 0), a prior dropdown and a K slider over trained VAEs.

    Parameters
    ----------
    X : data shown (codes, reconstructions) and scored (rate, distortion, active units), of shape
        (n_samples, data_dim) — typically held-out data
    y : optional labels of X (one per row), colouring the codes
    train : callable ``train(prior_name, beta, n_components) -> VAE`` (e.g. a :class:`KnobsTrainer`)
    betas, priors, ks : the values the controls offer; β ≥ 0, priors from "standard", "mixture",
        "vamp", K ≥ 1 components of a learned prior (the K slider is off for the standard normal)
    models : already trained models, ``{(prior_name, beta): model}`` (at the starting K) or
        ``{(prior_name, beta, K): model}``, used instead of training
    pretrain : train every (prior, β) at the starting K now; False (default) trains a setting live
        the first time it is shown
    cache : keep trained models and pictures; False trains a fresh model on every change
    beta, prior, k : the starting position of the controls
    anchor : distortion of independent pixels (a model with no code, R = 0) to mark in the plane
    threshold : activity threshold for counting active units (Burda et al., 2016 use 0.01)
    dpi : resolution of the figure

    A training that fails (e.g. diverges) is reported in the text for its setting, and the other
    models are kept; Ctrl-C during pretraining stops it with ``KeyboardInterrupt``.
    Use ``display(dashboard)`` (or leave it last in a cell); ``dashboard.update()`` redraws and
    ``dashboard.text.value`` / ``dashboard.image.value`` hold what is shown.

    >>> x = torch.rand(20, 4).round()  # 2×2 "images"
    >>> dash = BetaPriorDashboard(x, train=KnobsTrainer(x, hidden=(4,), epochs=1), betas=(0, 10), beta=0,
    ...                           priors=("standard",))
    >>> dash.beta_slider.value = 10.0  # what moving the slider does
    >>> "β = 10, prior: standard normal" in dash.text.value
    True
    """

    def __init__(self, X: Any, y: Any = None, *, train: Callable[..., VAE],
                 betas: Iterable[float] = BETAS, priors: Iterable[str] = PRIORS, ks: Iterable[int] = KS,
                 models: Mapping[tuple, VAE] | None = None, pretrain: bool = False, cache: bool = True,
                 beta: float = 1.0, prior: str = "standard", k: int = 10, anchor: float | None = None,
                 threshold: float = 0.01, dpi: int = 100):
        self.X = check_2d(X, "X")
        self.y = None
        if y is not None:
            self.y = torch.as_tensor(y)
            if self.y.ndim != 1 or self.y.shape[0] != self.X.shape[0]:
                raise ValueError(f"`y` must hold one label per row of `X` ({self.X.shape[0]} rows), got shape "
                                 f"{tuple(self.y.shape)}")
        if not callable(train):
            raise TypeError(f"`train` must be a callable train(prior_name, beta, n_components) -> VAE, got "
                            f"{type(train).__name__}")
        self.train = train
        self.betas = tuple(sorted({check_nonnegative(b, "betas") for b in betas}))
        self.priors = tuple(dict.fromkeys(check_choice(p, "priors", PRIORS) for p in priors))
        self.ks = tuple(sorted({check_positive_int(v, "ks") for v in ks}))
        if not self.betas or not self.priors or not self.ks:
            raise ValueError("`betas`, `priors` and `ks` must each offer at least one value")
        beta = check_nonnegative(beta, "beta")
        if beta not in self.betas:
            raise ValueError(f"`beta` must be one of the offered betas {self.betas}, got {beta:g}")
        check_choice(prior, "prior", self.priors)
        k = check_positive_int(k, "k")
        if k not in self.ks:
            raise ValueError(f"`k` must be one of the offered ks {self.ks}, got {k}")
        self.cache = bool(cache)
        self.anchor = None if anchor is None else float(anchor)
        self.threshold = check_positive(threshold, "threshold")
        self.dpi = check_positive_int(dpi, "dpi")
        self._models: dict[Key, VAE] = {}
        self._summaries: dict[Key, Any] = {}
        self.failures: dict[Key, str] = {}
        for key, model in (models or {}).items():
            if not isinstance(key, tuple) or len(key) not in (2, 3):
                raise ValueError(f"`models` keys must be (prior_name, beta) or (prior_name, beta, K), got {key!r}")
            name, b = check_choice(key[0], "models key", PRIORS), check_nonnegative(key[1], "models key beta")
            self._models[self._key(name, b, key[2] if len(key) == 3 else k)] = model

        self.beta_slider = widgets.SelectionSlider(
            options=[(_beta_label(b), b) for b in self.betas], value=beta, description="β",
            continuous_update=False, layout=widgets.Layout(width="380px"))
        self.prior_dropdown = widgets.Dropdown(
            options=[(PRIOR_LABELS[p], p) for p in self.priors], value=prior, description="prior p(z)")
        self.k_slider = widgets.SelectionSlider(
            options=[(str(v), v) for v in self.ks], value=k, description="K", continuous_update=False,
            layout=widgets.Layout(width="260px"))
        self.text = widgets.HTML()
        self.image = widgets.Image(format="png")
        # stable handles for the browser test and for styling
        for w, name in ((self.beta_slider, "beta"), (self.prior_dropdown, "prior"), (self.k_slider, "k"),
                        (self.text, "text"), (self.image, "figure")):
            w.add_class(f"vaelab-knobs-{name}")
        self.widget = widgets.VBox([widgets.HBox([self.beta_slider, self.prior_dropdown, self.k_slider]),
                                    self.text, self.image])
        figure = Figure(figsize=(13, 4.0))
        FigureCanvasAgg(figure)  # drawn off-screen: nothing reaches the notebook's inline backend
        self._view = KnobsFigure(figure, plane=True)
        self._shown: dict[Key, tuple[str, bytes]] = {}
        if pretrain:
            self.pretrain(k=k)
        for control in (self.beta_slider, self.prior_dropdown, self.k_slider):
            control.observe(self._on_change, names="value")
        self.update()

    # ---------------------------------------------------------------- models

    def _key(self, prior: str, beta: float, k: int) -> Key:
        # K means nothing for N(0, I): one model per β there, whatever the slider says
        return (prior, float(beta), 1 if prior == "standard" else int(k))

    def model(self, prior: str, beta: float, k: int | None = None) -> VAE:
        """The trained VAE for (prior, β, K), from memory or trained now (K: the slider's value by default)."""
        check_choice(prior, "prior", PRIORS)
        beta = check_nonnegative(beta, "beta")
        k = self.k_slider.value if k is None else check_positive_int(k, "k")
        key = self._key(prior, beta, k)
        model = self._models.get(key)
        if model is None:
            model = self.train(*key)
            if self.cache:
                self._models[key] = model
        return model

    def pretrain(self, k: int | None = None) -> None:
        """Train every (prior, β) at K = ``k`` now; a failure is kept as text, Ctrl-C stops (and raises)."""
        k = self.k_slider.value if k is None else k
        for name in self.priors:
            for b in self.betas:
                key = self._key(name, b, k)
                if key in self._models or key in self.failures:
                    continue
                try:
                    self.model(name, b, k)
                except Exception as error:  # one diverging fit must not cost the others
                    self.failures[key] = f"{type(error).__name__}: {error}"

    @property
    def models(self) -> dict[Key, VAE]:
        """The trained models held in memory, ``{(prior_name, beta, K): model}`` (K = 1 for the standard normal)."""
        return dict(self._models)

    # ---------------------------------------------------------------- drawing

    def _title(self, key: Key) -> str:
        prior, beta, k = key
        return f"β = {_beta_label(beta)}, prior: {PRIOR_LABELS[prior]}" + ("" if prior == "standard" else f", K = {k}")

    def render(self, prior: str, beta: float, k: int | None = None) -> tuple[str, bytes]:
        """The text and the PNG figure for (prior, β, K): what the dashboard shows (kept when ``cache``)."""
        key = self._key(prior, beta, self.k_slider.value if k is None else k)
        if key in self._shown:
            return self._shown[key]
        if key in self.failures:
            raise RuntimeError(self.failures[key])
        model = self.model(*key)
        x = self.X.to(next(model.parameters()).device)
        summary = diagnose(model, x, threshold=self.threshold)
        if self.cache:
            self._summaries[key] = summary
        title = self._title(key)
        same = sorted((b, s) for (p, b, kk), s in self._summaries.items() if (p, kk) == (key[0], key[2]))
        points = [(s.rate, s.distortion, f"β={_beta_label(b)}") for b, s in same]
        self._view.draw(model, x, self.y, title=title, points=points, current=(summary.rate, summary.distortion),
                        anchor=self.anchor)
        png = _png(self._view.fig, self.dpi)
        note = BETA_ZERO_NOTE.get(prior, "") if key[1] == 0 else ""
        text = (f"<pre style='margin:0'>{html.escape(title)}\n{html.escape(str(summary))}\n"
                f"(averages per example of X; rate + distortion = −ELBO)</pre>"
                + (f"<p style='margin:2px 0;max-width:60em'>{html.escape(note)}</p>" if note else ""))
        if self.cache:
            self._shown[key] = (text, png)
        return text, png

    def update(self) -> None:
        """Redraw for the controls' current values."""
        prior, beta, k = self.prior_dropdown.value, self.beta_slider.value, self.k_slider.value
        self.k_slider.disabled = prior == "standard"
        try:
            text, png = self.render(prior, beta, k)
        except Exception as error:  # a failed fit must not kill the dashboard; say what happened instead
            key = self._key(prior, beta, k)
            message = self.failures.get(key) or f"{type(error).__name__}: {error}"
            if self.cache:
                self.failures[key] = message
            self.text.value = (f"<pre style='margin:0'>{html.escape(self._title(key))}: could not be shown, "
                               f"the other settings still work.\n{html.escape(message)}</pre>")
            return
        self.text.value, self.image.value = text, png

    def _on_change(self, change: dict) -> None:
        try:
            self.update()
        except KeyboardInterrupt:  # Ctrl-C while a setting trains live: keep nothing, say so
            self.text.value = ("<pre style='margin:0'>training interrupted: nothing was kept for this setting; "
                               "move a control to try again</pre>")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def beta_prior_dashboard(X_train: Any, X: Any, y: Any = None, *, epochs: int = 40, latent_dim: int = 2,
                         hidden: Sequence[int] = (64,), **kwargs) -> BetaPriorDashboard:
    """A :class:`BetaPriorDashboard` whose models are trained on ``X_train`` by a :class:`KnobsTrainer`.

    ``X`` (and its labels ``y``) is what the dashboard shows and scores; other keyword arguments go to
    :class:`BetaPriorDashboard` (``betas``, ``priors``, ``ks``, ``models``, ``pretrain``, …).
    """
    trainer = KnobsTrainer(X_train, latent_dim=latent_dim, hidden=tuple(hidden), epochs=epochs)
    return BetaPriorDashboard(X, y, train=trainer, **kwargs)
