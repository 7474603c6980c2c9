"""vaelab.fit against the pytorch/examples VAE loop, side by side in one run.

The same 784-400-20 model, batch 128, Adam(lr=1e-3), on 60,000 MNIST-shaped binary vectors (real
MNIST when it is already in vaelab's cache, else generated). Prints seconds per epoch of each, their
ratio, the final loss of each (nats per example), and the achieved GFLOP/s against a float32 matmul
measured here, with the same threads.

    python benchmarks/bench_train.py            # 60,000 rows, 3 epochs each
    python benchmarks/bench_train.py --quick    # 10,000 rows, 2 epochs each
    python benchmarks/bench_train.py --device cuda

Adam is invariant to the scale of the loss (up to its eps), so the examples' loss summed over the batch
and our mean over the batch follow the same path with the same learning rate.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import vaelab
from vaelab import data

DATA_DIM, HIDDEN, LATENT, BATCH, LR = 784, 400, 20, 128, 1e-3


class ExamplesVAE(nn.Module):
    """pytorch/examples vae/main.py, as written there."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(DATA_DIM, HIDDEN)
        self.fc21 = nn.Linear(HIDDEN, LATENT)
        self.fc22 = nn.Linear(HIDDEN, LATENT)
        self.fc3 = nn.Linear(LATENT, HIDDEN)
        self.fc4 = nn.Linear(HIDDEN, DATA_DIM)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def decode(self, z):
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z))))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, DATA_DIM))
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar


def examples_loss(recon_x, x, mu, logvar):
    bce = F.binary_cross_entropy(recon_x, x.view(-1, DATA_DIM), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


class ExamplesLoop:
    """The pytorch/examples training loop: DataLoader over a TensorDataset, loss.item() every step."""

    def __init__(self, X: torch.Tensor, device: torch.device):
        self.model = ExamplesVAE().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=LR)
        self.loader = DataLoader(TensorDataset(X), batch_size=BATCH, shuffle=True)
        self.device, self.n = device, len(X)

    def epoch(self) -> tuple[float, float]:
        """Train one epoch; return (seconds, mean loss per example)."""
        self.model.train()
        start, train_loss = time.perf_counter(), 0.0
        for (x,) in self.loader:
            x = x.to(self.device)
            self.optimizer.zero_grad()
            recon, mu, logvar = self.model(x)
            loss = examples_loss(recon, x, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            self.optimizer.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, train_loss / self.n


def training_flops_per_example() -> float:
    """Matrix-product FLOPs of one training step per example: forward, weight and input gradients."""
    layers = [(DATA_DIM, HIDDEN), (HIDDEN, 2 * LATENT), (LATENT, HIDDEN), (HIDDEN, DATA_DIM)]
    forward = sum(2 * i * o for i, o in layers)
    # backward: a weight gradient for every layer, an input gradient for all but the first (x needs none)
    return 3 * forward - 2 * DATA_DIM * HIDDEN


def matmul_peak(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """Measured float32 GFLOP/s of a large square matrix product: the ceiling to compare against."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm up
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / min(times) / 1e9


_MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addmv", "aten::mv")


def matmul_seconds_in_a_real_epoch(model: nn.Module, X: torch.Tensor, optimizer, device: torch.device) -> tuple[float, float]:
    """(seconds in matrix products, seconds in all) of one more real epoch of vaelab.fit, under torch.profiler.

    The products are timed where they run: on the real, shuffled batches, with the model's own weights
    and gradients (the self time of aten::mm/addmm/…). Timing the same few random tensors over and
    over instead measured far more than a whole epoch on some machines (11.5 s of products in a
    1.4 s epoch): a repeated batch is not what training does (shared/PERFORMANCE.md).
    """
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        history = vaelab.fit(model, X, epochs=1, batch_size=BATCH, device=device, progress=False, optimizer=optimizer)
    events = [e for e in prof.key_averages() if e.key in _MATMUL_OPS]
    if device.type == "cuda":
        micros = sum(e.self_device_time_total for e in events)
    else:
        micros = sum(e.self_cpu_time_total for e in events)
    return micros / 1e6, history.seconds[0]


def mnist_shaped(n: int, seed: int = 0) -> tuple[torch.Tensor, str]:
    """Real MNIST (binarized at 0.5) when it is in the cache, else binary vectors with low-rank structure."""
    folder = data.cache_dir() / "mnist"
    if (folder / "train-images-idx3-ubyte.gz").exists():
        X, _ = data.mnist("train")
        return (X[:n] > 0.5).float(), "MNIST (cached), binarized"
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 10, generator=g)
    W = 2.0 * torch.randn(10, DATA_DIM, generator=g)
    bias = torch.randn(DATA_DIM, generator=g) - 2.0  # mostly-off pixels, like digits
    return torch.bernoulli(torch.sigmoid(z @ W + bias), generator=g), "generated low-rank binary vectors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows and 2 epochs instead of 60,000 and 3")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: vaelab.get_device())")
    parser.add_argument("--threads", type=int, default=None, help="torch threads on the CPU (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n, epochs = (10_000, 2) if args.quick else (60_000, 3)
    epochs = args.epochs or epochs
    device = vaelab.get_device(args.device)
    X, source = mnist_shaped(n)
    print(f"data: {n} x {DATA_DIM} {source}; model {DATA_DIM}-{HIDDEN}-{LATENT}; batch {BATCH}; "
          f"device {device}; threads {torch.get_num_threads()}; torch {torch.__version__}")

    torch.manual_seed(0)
    examples = ExamplesLoop(X, device)
    torch.manual_seed(0)
    model = vaelab.VAE.mlp(DATA_DIM, LATENT, hidden=(HIDDEN,)).to(device)
    optimizer = vaelab.train.adam(model, lr=LR)  # the optimizer fit would make, kept across calls
    base_seconds, ours_seconds = [], []
    # alternate epochs, so that a change in the machine's load hits both loops alike
    for _ in range(epochs):
        seconds, base_loss = examples.epoch()
        base_seconds.append(seconds)
        history = vaelab.fit(model, X, epochs=1, batch_size=BATCH, device=device, progress=False,
                             optimizer=optimizer)
        ours_seconds.append(history.seconds[0])
        ours_loss = history.train_loss[0]

    # the first epoch pays for warm-up (allocations, kernel selection): compare the rest when there is a rest
    def typical(s):
        return statistics.median(s[1:] if len(s) > 1 else s)

    peak = matmul_peak(device)
    flops = training_flops_per_example() * n
    rows = [("pytorch/examples loop", typical(base_seconds), base_loss),
            ("vaelab.fit", typical(ours_seconds), ours_loss)]
    print(f"\n{'':24}{'s/epoch':>9}{'final loss':>12}{'GFLOP/s':>9}{'% of peak':>11}")
    for name, sec, loss in rows:
        print(f"{name:24}{sec:9.2f}{loss:12.2f}{flops / sec / 1e9:9.1f}{100 * flops / sec / 1e9 / peak:10.0f}%")
    print(f"\nvaelab.fit is {typical(base_seconds) / typical(ours_seconds):.2f}x the examples loop per epoch "
          f"(medians of epochs 2..{epochs}, alternated); float32 matmul peak here: {peak:.0f} GFLOP/s; "
          f"{training_flops_per_example() / 1e6:.2f} MFLOP per example per step.")
    matmuls, profiled = matmul_seconds_in_a_real_epoch(model, X, optimizer, device)
    print(f"matrix products inside one more real epoch of vaelab.fit (torch.profiler): {matmuls:.2f} s of its "
          f"{profiled:.2f} s ({100 * matmuls / profiled:.0f}%; {flops / matmuls / 1e9:.0f} GFLOP/s, "
          f"{100 * flops / matmuls / 1e9 / peak:.0f}% of peak); the other {profiled - matmuls:.2f} s are "
          "elementwise ops, the likelihood, Adam and dispatch (the profiler itself adds some).")
    print("per-epoch seconds  examples:", " ".join(f"{s:.2f}" for s in base_seconds),
          "  vaelab:", " ".join(f"{s:.2f}" for s in ours_seconds))


if __name__ == "__main__":
    main()
