"""Figures for lesson 06 (finite or infinite?): held-out log-likelihood against parameter count."""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

__all__ = ["loglik_vs_parameters"]

# one look per family, so the same model reads the same in every figure of the lesson
_STYLE = {
    "GMM full": dict(color="tab:blue", marker="s", linestyle="-"),
    "GMM diag": dict(color="tab:cyan", marker="D", linestyle="-"),
    "Bernoulli mixture": dict(color="tab:blue", marker="s", linestyle="-"),
    "VAE shared σ": dict(color="tab:orange", marker="o", linestyle="--"),
    "VAE per-pixel σ(z)": dict(color="tab:red", marker="o", linestyle="-"),
    "VAE Bernoulli": dict(color="tab:red", marker="o", linestyle="-"),
    # lesson 02's linear infinite mixtures: x = W z + b + noise
    "pPCA": dict(color="tab:gray", marker="^", linestyle=":"),
    "factor analysis": dict(color="tab:olive", marker="P", linestyle=":"),
}


def loglik_vs_parameters(results: Iterable[Mapping[str, Any]], *, ax: Axes | None = None,
                         ylim: tuple[float, float] | None = None, ylabel: str = "held-out log p(x), nats per image",
                         title: str | None = None) -> Axes:
    """Held-out log-likelihood against the number of parameters, one line per model family.

    ``results`` is a sequence of mappings with keys "family" (str), "n_parameters" (int), "test"
    (nats per example) and optionally "label" (written next to the point) and "test_err" (the
    half-length of an error bar, e.g. the standard deviation over seeds; drawn where given). Points
    of a family are joined in order of their parameter count (log scale). With ``ylim``, a point
    below the axis is drawn on its lower edge as ▼ with its value, so an overfit model stays
    visible without squashing the others.

    >>> ax = loglik_vs_parameters([dict(family="GMM diag", n_parameters=128, test=30.8, test_err=0.5)])
    >>> ax.get_xscale(), len(ax.containers)  # one error-bar container
    ('log', 1)
    """
    ax = ax or plt.gca()
    rows = list(results)
    families = list(dict.fromkeys(r["family"] for r in rows))
    for family in families:
        pts = sorted((r for r in rows if r["family"] == family), key=lambda r: r["n_parameters"])
        style = dict(_STYLE.get(family, {}))
        xs = [r["n_parameters"] for r in pts]
        ys = [r["test"] for r in pts]
        low = ylim[0] if ylim else None
        shown = [y if low is None else max(y, low) for y in ys]
        ax.plot(xs, shown, label=family, markersize=5, **style)
        bars = [(x, y, r["test_err"]) for r, x, y in zip(pts, xs, shown) if r.get("test_err") is not None]
        if bars:
            bx, by, berr = zip(*bars)
            ax.errorbar(bx, by, yerr=berr, fmt="none", ecolor=style.get("color", "k"), capsize=3, linewidth=1)
        for r, x, y in zip(pts, xs, ys):
            if low is not None and y < low:
                ax.plot([x], [low], marker="v", color=style.get("color", "k"), markersize=9, clip_on=False)
                ax.annotate(f"{y:.0f}", (x, low), textcoords="offset points", xytext=(0, 7), ha="center",
                            fontsize=7, color=style.get("color", "k"))
            elif r.get("label"):
                ax.annotate(r["label"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                            color=style.get("color", "k"))
    ax.set_xscale("log")
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_xlabel("parameters of the model p(x)")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
