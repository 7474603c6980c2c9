"""vaelab.GaussianMixture against scikit-learn's, side by side in one process, on the same data and
from the same initial parameters, for a fixed number of EM iterations.

For every (N, D, covariance type) row it prints scikit-learn's time in float64, vaelab's time in
float64 and float32, the speed-up (scikit-learn time / vaelab time) and the difference in the final
mean log-likelihood per sample (vaelab − scikit-learn; float64 should agree to ~1e-14).
Runs alternate between the libraries and the median is reported.

    python benchmarks/bench_gmm.py              # the full grid: N ∈ {10k, 100k, 1M}, D ∈ {2, 16, 64}, full and diag
    python benchmarks/bench_gmm.py --quick      # N = 100k, D = 64, full only (the headline row)
    python benchmarks/bench_gmm.py --n 10000 100000 --d 16 --types diag --repeat 5
    python benchmarks/bench_gmm.py --device cuda --n 1000000 --d 64   # vaelab on a GPU (scikit-learn on the CPU)
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import vaelab

K = 10


def make_data(n: int, d: int, seed: int = 0) -> np.ndarray:
    """K Gaussian clusters with random means and random full covariances."""
    rng = np.random.RandomState(seed)
    centers = 4.0 * rng.randn(K, d)
    mixing = rng.randn(K, d, d) / np.sqrt(d)
    labels = rng.randint(K, size=n)
    x = np.empty((n, d))
    for k in range(K):
        idx = np.flatnonzero(labels == k)
        x[idx] = centers[k] + rng.randn(len(idx), d) @ (mixing[k] + 0.5 * np.eye(d))
    return x


def initial_parameters(x: np.ndarray, covariance_type: str, seed: int = 1) -> dict:
    """The same start for both libraries: means at K random points, the data's (co)variance, equal weights."""
    return vaelab.gmm.start_at_points(x[:20000], K, covariance_type, random_state=seed)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_sklearn(x: np.ndarray, covariance_type: str, init: dict, n_iter: int):
    model = SklearnGaussianMixture(K, covariance_type=covariance_type, tol=0.0, max_iter=n_iter, **init)
    start = time.perf_counter()
    model.fit(x)
    return time.perf_counter() - start, model


def time_vaelab(x: torch.Tensor, covariance_type: str, init: dict, n_iter: int, device: str):
    model = vaelab.GaussianMixture(K, covariance_type=covariance_type, tol=0.0, max_iter=n_iter,
                                   dtype=x.dtype, device=device, **init)
    _sync(device)
    start = time.perf_counter()
    model.fit(x)
    _sync(device)
    return time.perf_counter() - start, model


def bench_row(n: int, d: int, covariance_type: str, args) -> str:
    x = make_data(n, d)
    init = initial_parameters(x, covariance_type)
    x64 = torch.from_numpy(x).to(args.device)
    x32 = x64.float()
    times = {"sklearn": [], "fp64": [], "fp32": []}
    models = {}
    for _ in range(args.repeat):  # alternate, so that a slow moment of the machine hits everyone
        t, models["sklearn"] = time_sklearn(x, covariance_type, init, args.iter)
        times["sklearn"].append(t)
        t, models["fp64"] = time_vaelab(x64, covariance_type, init, args.iter, args.device)
        times["fp64"].append(t)
        if not args.no_float32:
            t, models["fp32"] = time_vaelab(x32, covariance_type, init, args.iter, args.device)
            times["fp32"].append(t)
    sk = statistics.median(times["sklearn"])
    ll_sk = models["sklearn"].lower_bound_
    cells = [f"{n:>9,d} {d:>3d} {covariance_type:>5}", f"{sk:8.3f}s"]
    for kind in ("fp64", "fp32"):
        if not times[kind]:
            cells.append(" " * 34)
            continue
        t = statistics.median(times[kind])
        cells.append(f"{t:8.3f}s {sk / t:6.2f}x  Δll {models[kind].lower_bound_ - ll_sk:+9.1e}")
    return "  ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only N=100k, D=64, full covariances")
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--d", type=int, nargs="+", default=[2, 16, 64])
    parser.add_argument("--types", nargs="+", default=["full", "diag"], choices=["full", "diag", "spherical"])
    parser.add_argument("--iter", type=int, default=10, help="EM iterations per fit (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per row; the median is shown")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="vaelab's device (default cpu)")
    parser.add_argument("--no-float32", action="store_true", help="skip the float32 runs")
    args = parser.parse_args()
    if args.quick:
        args.n, args.d, args.types = [100_000], [64], ["full"]
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*did not converge.*")  # tol=0: a fixed number of iterations
    print(f"K = {K}, {args.iter} EM iterations, median of {args.repeat}; torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads on {args.device}, {os.cpu_count()} CPUs visible")
    print("speed-up = scikit-learn time / vaelab time; Δll = vaelab − scikit-learn final mean log-likelihood (nats)")
    print(f"{'N':>9} {'D':>3} {'type':>5}  {'sklearn':>9}  {'vaelab float64':^34}  {'vaelab float32':^34}")
    for covariance_type in args.types:
        for d in args.d:
            for n in args.n:
                print(bench_row(n, d, covariance_type, args), flush=True)


if __name__ == "__main__":
    main()
