"""The β / prior dashboard of lesson 04: time from a control change to the finished figure, per control.

Two strategies, side by side in one run, on the lesson's data (binarized digits; the dashboard shows
the 360 test images):

* **grid** — every (prior, β) model trained once up front and kept in memory; a change only scores
  the model (rate, distortion, active units) and draws the PNG, which is then kept too, so a second
  view of the same setting only swaps bytes. The lesson uses this.
* **live** — a fresh model trained on every change (``cache=False``), either with the lesson's
  training budget (same quality as the grid) or a tiny one (5 epochs) to try to fit the 0.5 s budget.

A change is timed from setting the control's value (the observer runs synchronously, as it does in the
kernel when the browser sends the new value) to the moment the new PNG and text are in the widgets.
One torch thread, as in the lesson. Prints median and worst per control and strategy, and the held-out
−ELBO of the model each strategy shows at β = 1 (standard prior), so speed is compared with quality.

    python benchmarks/bench_widgets.py            # grid: 2 sweeps of each control at every
                                                  # value of the other; live: 1 sweep
    python benchmarks/bench_widgets.py --quick    # fewer repeats, live tiny only
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from vaelab import data, diagnostics
from vaelab.priors import PRIORS
from vaelab.widgets import BETAS, BetaPriorDashboard, KnobsTrainer


def time_changes(dash: BetaPriorDashboard, control, values, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds per change, cycling ``control`` through ``values`` ``repeats`` times: (first visits, revisits)."""
    first, again = [], []
    for _ in range(repeats):
        for value in values:
            if control.value == value:
                continue
            key = (dash.prior_dropdown.value, dash.beta_slider.value)
            key = (value, key[1]) if control is dash.prior_dropdown else (key[0], value)
            seen = key in dash._shown
            start = time.perf_counter()
            control.value = value
            (again if seen else first).append(time.perf_counter() - start)
            assert bytes(dash.image.value).startswith(b"\x89PNG") and "rate" in dash.text.value
    return first, again


def row(name: str, control: str, times: list[float]) -> str:
    return (f"{name:<27} {control:<6} {len(times):>3} changes   median {1000 * statistics.median(times):7.0f} ms"
            f"   worst {1000 * max(times):7.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    X_train, _ = data.digits("train", binarize="static")
    X_test, y_test = data.digits("test", binarize="static", seed=1)
    lesson = KnobsTrainer(X_train)  # latent 2, hidden 64, 40 epochs, batch 256: the lesson's models
    tiny = KnobsTrainer(X_train, epochs=5)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread; timings include scoring and PNG drawing")

    start = time.perf_counter()
    grid = BetaPriorDashboard(X_test, y_test, train=lesson)
    print(f"grid: {len(grid.models)} models trained up front in {time.perf_counter() - start:.1f} s "
          "(once per session; the lesson reuses the models of its sections 1 and 2)\n")
    repeats = 1 if args.quick else 2
    rows, medians = [], {}
    for control, values, others in (("beta", list(BETAS), PRIORS), ("prior", list(PRIORS), BETAS)):
        # a fresh dashboard over the same trained models: nothing drawn yet
        dash = BetaPriorDashboard(X_test, y_test, train=lesson, models=grid.models)
        widget, other = ((dash.beta_slider, dash.prior_dropdown) if control == "beta"
                         else (dash.prior_dropdown, dash.beta_slider))
        first, again = [], []
        for value in others:  # sweep this control at every setting of the other one
            other.value = value
            f, a = time_changes(dash, widget, values, repeats)
            first += f
            again += a
        medians["grid", control] = statistics.median(first)
        rows.append(row("grid, first view (draws)", control, first))
        rows.append(row("grid, view again (kept)", control, again))
    strategies = [("live, tiny (5 epochs)", tiny)] + ([] if args.quick else [("live, lesson (40 epochs)", lesson)])
    for name, trainer in strategies:
        dash = BetaPriorDashboard(X_test, y_test, train=trainer, pretrain=False, cache=False)
        for control, values in (("beta", [0.0, 0.1, 1.0, 10.0]), ("prior", ["mixture", "vamp", "standard"])):
            widget = dash.beta_slider if control == "beta" else dash.prior_dropdown
            t, _ = time_changes(dash, widget, values, 1)
            medians[name, control] = statistics.median(t)
            rows.append(row(name, control, t))
    print("\n".join(rows))
    print()
    for name, _ in strategies:
        for control in ("beta", "prior"):
            ratio = medians[name, control] / medians["grid", control]
            print(f"{name} / grid first view, {control}: {ratio:.1f}x slower (median)")
    print()
    for name, trainer in [("grid / live, lesson", lesson), ("live, tiny", tiny)]:
        d = diagnostics.diagnose(trainer("standard", 1.0), X_test)
        print(f"model shown at β = 1, standard prior, {name:<20}: held-out -ELBO {-d.elbo:.2f} nats")
    print("\nbudget: 500 ms median per change")


if __name__ == "__main__":
    main()
