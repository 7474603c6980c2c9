"""The β / prior / K dashboard of lesson 04: time from a control change to the finished figure, per control.

Strategies, side by side in one run, on the lesson's data (binarized digits; the dashboard shows the
360 test images):

* **live** — what the dashboard does: a setting seen for the first time trains a lesson-quality model
  (latent 2, hidden 64, 40 epochs) on the spot, then scores it and draws; the model and its picture are
  kept. This is the "live change" the lesson quotes.
* **draw only** — the same settings with every model already trained (the lesson hands in the 18 models
  of its sections 1 and 2): a first view only scores and draws.
* **view again** — a setting already shown: its picture is kept, so a change only swaps bytes.

A change is timed from setting the control's value (the observer runs synchronously, as it does in the
kernel when the browser sends the new value) to the moment the new PNG and text are in the widgets.
One torch thread, as in the lesson. Prints median and worst per control and strategy, the live-change
median over all controls against the 500 ms budget, and the held-out −ELBO of the model shown at β = 1.

    python benchmarks/bench_widgets.py            # every β at each prior, every K of the mixture, twice
    python benchmarks/bench_widgets.py --quick    # the standard prior's β sweep and the K sweep only
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from vaelab import data, diagnostics
from vaelab.widgets import BETAS, KS, BetaPriorDashboard, KnobsTrainer


def time_changes(dash: BetaPriorDashboard, control, values, repeats: int) -> tuple[list[float], list[float]]:
    """Seconds per change, cycling ``control`` through ``values`` ``repeats`` times: (first visits, revisits)."""
    first, again = [], []
    for _ in range(repeats):
        for value in values:
            if control.value == value:
                continue
            setting = {"prior": dash.prior_dropdown.value, "beta": dash.beta_slider.value, "k": dash.k_slider.value}
            name = {id(dash.prior_dropdown): "prior", id(dash.beta_slider): "beta", id(dash.k_slider): "k"}[id(control)]
            setting[name] = value
            seen = dash._key(setting["prior"], setting["beta"], setting["k"]) in dash._shown
            start = time.perf_counter()
            control.value = value
            (again if seen else first).append(time.perf_counter() - start)
            assert bytes(dash.image.value).startswith(b"\x89PNG") and "rate" in dash.text.value
    return first, again


def row(name: str, control: str, times: list[float]) -> str:
    if not times:
        return f"{name:<24} {control:<6}   0 changes"
    return (f"{name:<24} {control:<6} {len(times):>3} changes   median {1000 * statistics.median(times):7.0f} ms"
            f"   worst {1000 * max(times):7.0f} ms")


def sweeps(dash: BetaPriorDashboard, quick: bool):
    """(control name, widget, values, setting of the other controls) for each sweep the benchmark makes."""
    priors = ["standard"] if quick else ["standard", "mixture", "vamp"]
    for prior in priors:
        yield "beta", dash.beta_slider, list(BETAS), {"prior": prior, "k": 10}
    yield "K", dash.k_slider, list(KS), {"prior": "mixture", "beta": 1.0}
    if not quick:
        # at K = 5, not seen in the sweeps above: each learned prior trains on its first view
        yield "prior", dash.prior_dropdown, ["mixture", "vamp", "standard"], {"beta": 0.3, "k": 5}


def run(dash: BetaPriorDashboard, quick: bool, repeats: int) -> dict[str, tuple[list[float], list[float]]]:
    """Seconds per change for each control: (first views, views again)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for control, widget, values, others in sweeps(dash, quick):
        dash.prior_dropdown.value = others.get("prior", dash.prior_dropdown.value)
        dash.k_slider.value = others.get("k", dash.k_slider.value)
        dash.beta_slider.value = others.get("beta", dash.beta_slider.value)
        first, again = out.setdefault(control, ([], []))
        f, a = time_changes(dash, widget, values, repeats)
        first += f
        again += a
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    X_train, _ = data.digits("train", binarize="static")
    X_test, y_test = data.digits("test", binarize="static", seed=1)
    lesson = KnobsTrainer(X_train)  # latent 2, hidden 64, 40 epochs, batch 256: the lesson's models
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread; timings include training (live), "
          "scoring and PNG drawing at 100 dpi")
    repeats = 1 if args.quick else 2
    live = BetaPriorDashboard(X_test, y_test, train=lesson)
    timed_live = run(live, args.quick, repeats)
    # the same settings again on a fresh dashboard handed the models just trained: drawing only
    drawn = BetaPriorDashboard(X_test, y_test, train=lesson, models=live.models)
    timed_drawn = run(drawn, args.quick, repeats)
    rows, all_live = [], []
    for control, (first, again) in timed_live.items():
        all_live += first
        rows.append(row("live (trains, draws)", control, first))
        rows.append(row("draw only (trained)", control, timed_drawn[control][0]))
        rows.append(row("view again (kept)", control, again + timed_drawn[control][1]))
    print("\n".join(rows))
    median = statistics.median(all_live)
    print(f"\nlive-change median: {1000 * median:.0f} ms over {len(all_live)} changes "
          f"(worst {1000 * max(all_live):.0f} ms); budget 500 ms: {'met' if median <= 0.5 else 'NOT met'}")
    start = time.perf_counter()
    model = lesson("standard", 1.0)
    seconds = time.perf_counter() - start
    d = diagnostics.diagnose(model, X_test)
    print(f"one lesson-quality model (standard prior, β = 1) trains in {seconds:.2f} s; held-out -ELBO "
          f"{-d.elbo:.2f} nats")


if __name__ == "__main__":
    main()
