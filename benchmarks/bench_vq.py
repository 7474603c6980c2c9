"""Nearest-code quantization: vaelab's one-matrix-product distances against the obvious alternatives.

``vaelab.models.vqvae.nearest_code`` expands ||z − e||² = ||z||² − 2 z·e + ||e||² and drops ||z||², the
same for every code: argmin_k (||e_k||² − 2 z·e_k), one fused (N, D)×(D, K) product (``torch.addmm``).
The obvious version broadcasts (N, 1, D) − (1, K, D), which builds an (N, K, D) tensor; ``torch.cdist``
is the library call (it computes the full distances and their square roots). Prints milliseconds per call (median of interleaved runs), the
ratios, and whether every method picks the same codes, for a few sizes, with the same threads.

    python benchmarks/bench_vq.py               # one thread: stable numbers on a shared machine
    python benchmarks/bench_vq.py --threads 2
    python benchmarks/bench_vq.py --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from vaelab import get_device
from vaelab.models.vqvae import nearest_code


def broadcast(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    return (z_e[:, None, :] - codebook[None, :, :]).pow(2).sum(-1).argmin(1)  # builds (N, K, D)


def cdist(z_e: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    return torch.cdist(z_e, codebook).argmin(1)


def timed(fn, *args, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn(*args)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = get_device(args.device)
    methods = {"vaelab (expanded)": nearest_code, "broadcast (N,K,D)": broadcast, "torch.cdist": cdist}
    print(f"device {device}, {torch.get_num_threads()} thread(s); milliseconds per call, median of {args.repeats}")
    print(f"{'N':>6} {'K':>5} {'D':>4} " + " ".join(f"{m:>18}" for m in methods) + "   broadcast/vaelab  cdist/vaelab  same codes")
    g = torch.Generator().manual_seed(0)
    for n, k, d in [(1437, 64, 2), (4096, 512, 64), (16384, 512, 64), (16384, 1024, 64)]:
        z_e = torch.randn(n, d, generator=g).to(device)
        codebook = torch.randn(k, d, generator=g).to(device)
        codes = {name: fn(z_e, codebook) for name, fn in methods.items()}  # warm-up, and the answers
        same = all(torch.equal(c, codes["vaelab (expanded)"]) for c in codes.values())
        times = {name: [] for name in methods}
        for _ in range(args.repeats):  # interleaved: load on the machine hits every method alike
            for name, fn in methods.items():
                times[name].append(timed(fn, z_e, codebook, device=device))
        ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
        base = ms["vaelab (expanded)"]
        print(f"{n:6d} {k:5d} {d:4d} " + " ".join(f"{ms[m]:18.3f}" for m in methods)
              + f"   {ms['broadcast (N,K,D)'] / base:16.1f}x {ms['torch.cdist'] / base:12.1f}x  {same}")


if __name__ == "__main__":
    main()
