"""The one training loop: ``fit(model, X, epochs=...)`` for every model in vaelab, on any device.

A model that ``fit`` can train provides

* ``loss(batch, *, beta, free_bits) -> (loss, metrics)``: a 0-d loss to minimise and a dict of 0-d
  batch-mean metrics (for a VAE: "loss", "elbo", "reconstruction", "kl"); models without a KL
  accept and ignore ``beta``/``free_bits``;
* optionally ``check_data(X, name) -> X``: checks the whole data set once (width, range, NaN) and
  returns it on the model's device and dtype.

``X`` is a tensor (or numpy array), a tuple of tensors such as ``(x, c)`` for conditional models
(batches are then tuples), or a ``torch.utils.data.Dataset`` for data that does not fit in memory.
In-memory data is moved to the device once and batches are indexed there: no DataLoader, no copies
through the host on every step (lesson 03 and benchmarks/bench_train.py measure it).
"""
from __future__ import annotations

import copy
import io
import math
import numbers
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ._validation import as_tensor, check_nonnegative, check_positive, check_positive_int
from .device import get_device, seed_everything
from .objectives import kl_weight

__all__ = ["History", "TrainingDiverged", "adam", "evaluate", "fit", "load", "save"]

# on a GPU every .item() waits for the device; check the loss (and refresh the progress bar) only
# every this many batches there, and after every batch on the CPU where it costs nothing
_CUDA_SYNC_EVERY = 50
_CHECKPOINT_FORMAT = "vaelab-checkpoint-1"


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; ``history`` holds the finished epochs, the model their weights."""

    def __init__(self, message: str, history: "History"):
        super().__init__(message)
        self.history = history


@dataclass(repr=False)
class History:
    """What ``fit`` measured, one entry per finished epoch.

    ``train`` and ``valid`` map a metric name ("elbo", "reconstruction", "kl", "loss", …) to its
    per-epoch mean in nats per example; they read as attributes too: ``history.train_elbo``,
    ``history.valid_kl``. ``valid`` is the plain ELBO (β = 1, no free bits) on ``X_valid``.

    >>> h = History()
    >>> h.append(1, 0.5, {"elbo": -30.0, "kl": 4.0}, {"elbo": -31.0, "kl": 4.1})
    >>> h.train_elbo, h.valid_kl, len(h)
    ([-30.0], [4.1], 1)
    """

    epoch: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=dict)
    valid: dict[str, list[float]] = field(default_factory=dict)
    interrupted: bool = False

    def append(self, epoch: int, seconds: float, train: dict[str, float], valid: dict[str, float] | None = None) -> None:
        """Record one finished epoch."""
        self.epoch.append(int(epoch))
        self.seconds.append(float(seconds))
        for store, values in ((self.train, train), (self.valid, valid or {})):
            for name, value in values.items():
                store.setdefault(name, []).append(float(value))

    def __getattr__(self, name: str) -> list[float]:
        # only reached when normal lookup fails: train_<metric> / valid_<metric>
        for prefix in ("train", "valid"):
            store = self.__dict__.get(prefix)
            if store is not None and name.startswith(prefix + "_") and name[len(prefix) + 1:] in store:
                return store[name[len(prefix) + 1:]]
        raise AttributeError(f"History has no attribute {name!r}")

    def __len__(self) -> int:
        return len(self.epoch)

    def as_dict(self) -> dict[str, list]:
        """Columns: "epoch", "train_<metric>"…, "valid_<metric>"…, "seconds" (e.g. for pandas.DataFrame)."""
        columns: dict[str, list] = {"epoch": list(self.epoch)}
        columns.update({f"train_{k}": list(v) for k, v in self.train.items()})
        columns.update({f"valid_{k}": list(v) for k, v in self.valid.items()})
        columns["seconds"] = list(self.seconds)
        return columns

    def table(self, digits: int = 2, *, seconds: bool = False) -> str:
        """The history as a plain-text table (``seconds=False`` leaves out the timings, which vary)."""
        columns = self.as_dict()
        if not seconds:
            columns.pop("seconds")
        names = list(columns)
        rows = [[str(v) if n == "epoch" else f"{v:.{digits}f}" for n, v in zip(names, row)]
                for row in zip(*columns.values())]
        widths = [max(len(n), *(len(r[i]) for r in rows)) if rows else len(n) for i, n in enumerate(names)]
        lines = ["  ".join(n.rjust(w) for n, w in zip(names, widths))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        last = ", ".join(f"{p}_{k}={v[-1]:.2f}" for p, store in (("train", self.train), ("valid", self.valid))
                         for k, v in store.items() if k == "elbo" and v)
        note = ", interrupted" if self.interrupted else ""
        return f"History({len(self)} epochs{', ' + last if last else ''}{note})"


# ---------------------------------------------------------------- data


def _is_dataset(X: Any) -> bool:
    return isinstance(X, Dataset) and not isinstance(X, torch.Tensor)


def _prepare(model: nn.Module, X: Any, name: str) -> Any:
    """Check the whole in-memory data set once and put it on the model's device and dtype."""
    if isinstance(X, tuple):  # (x, c) for a conditional model; a list is one array of rows
        X = tuple(as_tensor(t, f"{name}[{i}]") for i, t in enumerate(X))
        if len({int(t.shape[0]) if t.ndim else -1 for t in X}) != 1:
            raise ValueError(f"`{name}` is a tuple of arrays, which must all have the same number of rows, "
                             f"got shapes {[tuple(t.shape) for t in X]}")
    if hasattr(model, "check_data"):
        return model.check_data(X, name)
    ref = next(model.parameters())
    if isinstance(X, tuple):
        return tuple(t.to(ref.device) for t in X)
    return as_tensor(X, name, device=ref.device, dtype=ref.dtype)


def _n_rows(X: Any) -> int:
    return int(X[0].shape[0]) if isinstance(X, tuple) else int(X.shape[0])


def _take(X: Any, idx: torch.Tensor) -> Any:
    return tuple(t[idx] for t in X) if isinstance(X, tuple) else X[idx]


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, (tuple, list)) and len(batch) == 1:  # TensorDataset(x) yields 1-tuples
        batch = batch[0]
    if isinstance(batch, (tuple, list)):
        return tuple(t.to(device, non_blocking=True) for t in batch)
    return batch.to(device, non_blocking=True)


class _RecordedBatches:
    """DataLoader(shuffle=True)'s own batch sampler (the same random draws), remembering the last batch's rows."""

    def __init__(self, n: int, batch_size: int, shuffle: bool):
        from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

        rows = range(n)
        self.sampler = BatchSampler(RandomSampler(rows) if shuffle else SequentialSampler(rows), batch_size, False)
        self.last: list[int] = []

    def __iter__(self) -> Iterator[list[int]]:
        for rows in self.sampler:
            self.last = rows
            yield rows

    def __len__(self) -> int:
        return len(self.sampler)


class _Batches:
    """Shuffled minibatches: indexed on the device for in-memory data, a DataLoader for a Dataset."""

    def __init__(self, model: nn.Module, X: Any, name: str, batch_size: int, device: torch.device):
        self.model, self.name, self.batch_size, self.device = model, name, batch_size, device
        if _is_dataset(X):
            if not hasattr(X, "__len__"):
                raise TypeError(f"`{name}` must be a map-style Dataset with __len__ and __getitem__, "
                                f"got a {type(X).__name__} without __len__")
            if len(X) == 0:
                raise ValueError(f"`{name}` is an empty Dataset (len {name} == 0): there is nothing to train on")
            self.dataset, self.X, self.n = X, None, len(X)
        else:
            self.dataset, self.X = None, _prepare(model, X, name)
            self.n = _n_rows(self.X)
        self.n_batches = math.ceil(self.n / batch_size)

    def _from(self, batch_size: int, shuffle: bool) -> Iterator[Any]:
        # a Dataset is checked batch by batch, as it arrives; a bad row is named by its index in the Dataset
        rows = _RecordedBatches(self.n, batch_size, shuffle)
        loader = DataLoader(self.dataset, batch_sampler=rows, pin_memory=self.device.type == "cuda")
        for batch in loader:
            batch = _to_device(batch, self.device)
            _check_dataset_batch(batch, rows.last, self.name)
            yield self.model.check_data(batch, self.name) if hasattr(self.model, "check_data") else batch

    def __iter__(self) -> Iterator[Any]:
        if self.dataset is not None:
            yield from self._from(self.batch_size, shuffle=True)
            return
        perm = torch.randperm(self.n, device=self.device)
        for start in range(0, self.n, self.batch_size):
            yield _take(self.X, perm[start:start + self.batch_size])

    def in_order(self, batch_size: int) -> Iterator[Any]:
        """The data unshuffled, for evaluation."""
        if self.dataset is not None:
            yield from self._from(batch_size, shuffle=False)
            return
        for start in range(0, self.n, batch_size):
            yield _take(self.X, slice(start, start + batch_size))


def _check_dataset_batch(batch: Any, rows: list[int], name: str) -> None:
    """Raise on NaN or infinity, naming the row of the Dataset (not of the shuffled batch) that holds it."""
    for i, t in enumerate(batch if isinstance(batch, tuple) else (batch,)):
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            bad = ~torch.isfinite(t.reshape(len(t), -1)).all(1)
            if bool(bad.any()):
                row = rows[int(bad.nonzero()[0])]
                part = f" (element {i} of each item)" if isinstance(batch, tuple) else ""
                raise ValueError(f"`{name}` must contain only finite values, got NaN or infinity in row {row} of "
                                 f"the Dataset{part}: {name}[{row}]")


class _Running:
    """Example-weighted sums of a model's batch-mean metrics; they stay on the device until read."""

    def __init__(self):
        self.names, self.total, self.n = None, None, 0

    def add(self, metrics: dict[str, torch.Tensor], batch: Any) -> None:
        size = _batch_len(batch)
        self.names = self.names or list(metrics)
        values = torch.stack([metrics[k].detach().float() for k in self.names]) * size
        self.total = values if self.total is None else self.total + values
        self.n += size

    def mean(self) -> dict[str, float]:
        return dict(zip(self.names, (self.total / self.n).tolist()))


def _batch_len(batch: Any) -> int:
    return int(batch[0].shape[0]) if isinstance(batch, tuple) else int(batch.shape[0])


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)


@torch.no_grad()
def _evaluate(model: nn.Module, batches: _Batches, batch_size: int, amp: bool) -> dict[str, float]:
    was_training = model.training
    model.eval()
    running = _Running()
    for batch in batches.in_order(batch_size):
        with _autocast(batches.device, amp):
            _, metrics = model.loss(batch, beta=1.0, free_bits=0.0)
        running.add(metrics, batch)
    model.train(was_training)
    return running.mean()


def evaluate(model: nn.Module, X: Any, *, batch_size: int = 1024, device: str | torch.device | None = None
             ) -> dict[str, float]:
    """The model's metrics on ``X`` with β = 1 and no free bits, averaged over the examples.

    For a VAE: {"loss", "elbo", "reconstruction", "kl"} in nats per example (one sample of z each).

    >>> from vaelab.models import VAE
    >>> sorted(evaluate(VAE.mlp(4, 2, hidden=(8,)), torch.rand(10, 4)))
    ['elbo', 'kl', 'loss', 'reconstruction']
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    device = _model_device(model) if device is None else get_device(device)
    model.to(device)
    return _evaluate(model, _Batches(model, X, "X", batch_size, device), batch_size, amp=False)


def _model_device(model: nn.Module) -> torch.device:
    ref = next(model.parameters(), None)
    return ref.device if ref is not None else torch.device("cpu")


def adam(model: nn.Module, lr: float = 1e-3) -> torch.optim.Optimizer:
    """The optimizer ``fit`` uses: Adam over the trainable parameters, fused where the device supports it.

    Create one yourself and pass it to successive ``fit(..., optimizer=opt)`` calls to carry Adam's
    moment estimates from one call to the next. Build it after moving the model to its device.

    >>> from vaelab.models import VAE
    >>> type(adam(VAE.mlp(4, 2, hidden=(8,)))).__name__
    'Adam'
    """
    lr = check_positive(lr, "lr")
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        # one fused kernel for the whole update: 1.25x per epoch on CPU (PERFORMANCE.md), more on GPU
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # a device or dtype without a fused Adam
        return torch.optim.Adam(params, lr=lr)


def _progress_bar(progress: bool, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not progress, unit="batch", dynamic_ncols=True, leave=True)


def fit(model: nn.Module, X: Any, *, epochs: int, batch_size: int = 128, lr: float = 1e-3, beta: float = 1.0,
        free_bits: float = 0.0, kl_warmup: float = 0, X_valid: Any = None,
        device: str | torch.device | None = None, progress: bool = True, seed: int | None = None,
        amp: bool | None = None, optimizer: torch.optim.Optimizer | None = None) -> History:
    """Train ``model`` with Adam on minibatches of ``X`` for ``epochs`` passes; return the ``History``.

    Minimises mean_b[−log p(x_b|z_b)] + β·w(t)·Σ_j max(free_bits, mean_b KL_bj) where w(t) ramps from
    0 to 1 over the first ``kl_warmup`` epochs (``objectives.kl_weight``) — the negative ELBO when
    β = 1, free_bits = 0, kl_warmup = 0.

    Parameters
    ----------
    model : a vaelab model (anything with ``loss(batch, *, beta, free_bits)``; see the module doc)
    X : tensor or array of shape (n_samples, data_dim), a tuple of such tensors ``(x, c)``, or a Dataset
    epochs, batch_size, lr : passes over X, examples per step, Adam's learning rate
    beta, free_bits, kl_warmup : weight on the KL, per-dimension KL floor in nats, annealing epochs
    X_valid : held-out data, evaluated (β = 1) after every epoch
    device : where to train; default ``vaelab.get_device()``. The model stays there afterwards.
    progress : show a tqdm bar with the running ELBO and KL (TQDM_DISABLE=1 hides it too)
    seed : seeds every generator first, so a CPU run is reproducible
    amp : bfloat16 autocast for the networks' matrix products; default on for CUDA, off elsewhere
    optimizer : continue with this optimizer (e.g. from :func:`adam`), keeping its state; ``lr`` is then
        the optimizer's own. Default: a new ``adam(model, lr)`` on every call.

    Returns
    -------
    History with one entry per finished epoch. Ctrl-C (KeyboardInterrupt) stops training where it is
    and returns the history so far (``interrupted=True``); a NaN or infinite loss raises
    ``TrainingDiverged`` with the weights of the last finished epoch restored.

    >>> from vaelab.models import VAE
    >>> history = fit(VAE.mlp(4, 2, hidden=(8,)), torch.rand(64, 4), epochs=2, progress=False, seed=0)
    >>> len(history), sorted(history.train)
    (2, ['elbo', 'kl', 'loss', 'reconstruction'])
    """
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    lr = check_positive(lr, "lr")
    beta = check_nonnegative(beta, "beta")
    free_bits = check_nonnegative(free_bits, "free_bits")
    kl_warmup = check_nonnegative(kl_warmup, "kl_warmup")
    if not isinstance(model, nn.Module) or not callable(getattr(model, "loss", None)):
        raise TypeError(f"`model` must be a torch.nn.Module with a loss(batch, *, beta, free_bits) method "
                        f"(e.g. vaelab.VAE), got {type(model).__name__}")
    if seed is not None:
        seed_everything(seed)
    device = get_device(device)
    amp = device.type == "cuda" and torch.cuda.is_bf16_supported() if amp is None else bool(amp)
    model.to(device)
    train = _Batches(model, X, "X", batch_size, device)
    valid = None if X_valid is None else _Batches(model, X_valid, "X_valid", batch_size, device)
    optimizer_given = optimizer is not None
    if optimizer is None:
        optimizer = adam(model, lr)
    elif not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"`optimizer` must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    lr = optimizer.param_groups[0]["lr"]  # for the advice if training diverges
    sync_every = _CUDA_SYNC_EVERY if device.type == "cuda" else 1
    history = History()
    # a diverged step leaves NaN in Adam's moments as well as in the weights: a caller's optimizer,
    # which lives on after fit, is restored with them (fit's own optimizer is discarded anyway)
    last_good = _snapshot(model)
    last_good_optimizer = _snapshot_optimizer(optimizer) if optimizer_given else None
    bar = _progress_bar(progress, epochs * train.n_batches)
    try:
        for epoch in range(epochs):
            model.train()
            start, epoch_metrics = time.perf_counter(), _Running()
            for i, batch in enumerate(train):
                weight = beta * kl_weight(epoch + i / train.n_batches, kl_warmup)
                with _autocast(device, amp):
                    loss, metrics = model.loss(batch, beta=weight, free_bits=free_bits)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                epoch_metrics.add(metrics, batch)
                bar.update(1)
                if (i + 1) % sync_every == 0 or i + 1 == train.n_batches:
                    running = epoch_metrics.mean()
                    if not all(math.isfinite(v) for v in running.values()):
                        model.load_state_dict(last_good)
                        if last_good_optimizer is not None:
                            optimizer.load_state_dict(last_good_optimizer)
                        raise TrainingDiverged(_diverged_message(epoch, i, running, lr, history), history)
                    bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
                    bar.set_postfix({k: f"{v:.2f}" for k, v in running.items() if k in ("elbo", "kl")}, refresh=False)
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # honest timings: wait for the queued kernels
            seconds = time.perf_counter() - start
            scores = None if valid is None else _evaluate(model, valid, max(batch_size, 1024), amp)
            history.append(epoch + 1, seconds, running, scores)
            if scores is not None and "elbo" in scores:
                bar.set_postfix({**{k: f"{v:.2f}" for k, v in running.items() if k in ("elbo", "kl")},
                                 "valid_elbo": f"{scores['elbo']:.2f}"}, refresh=False)
            last_good = _snapshot(model)
            if optimizer_given:
                last_good_optimizer = _snapshot_optimizer(optimizer)
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"Interrupted during epoch {len(history) + 1}: the model keeps its current weights and the "
              f"history its {len(history)} finished epoch(s).", file=sys.stderr)
    finally:
        bar.close()
        model.eval()
    return history


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _snapshot_optimizer(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return copy.deepcopy(optimizer.state_dict())  # state_dict() shares the moment tensors; keep copies


def _diverged_message(epoch: int, batch: int, running: dict[str, float], lr: float, history: History) -> str:
    bad = ", ".join(f"{k}={v}" for k, v in running.items() if not math.isfinite(v))
    kept = f"epoch {len(history)}" if len(history) else "before training"
    return (f"Training diverged in epoch {epoch + 1} (by batch {batch + 1}): the loss is no longer finite ({bad}). "
            f"The model keeps its weights from {kept}. Try a lower learning rate (lr={lr:g} now, e.g. lr={lr / 10:g}), "
            "check the data for extreme values, or, for a Gaussian likelihood, a larger fixed obs_scale.")


# ---------------------------------------------------------------- checkpoints


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain Python data (numpy scalars and arrays become numbers and lists), or raise."""
    if isinstance(value, np.generic):  # np.float32(0.3), np.int64(16), even np.float64 (a float subclass)
        return value.item()              # would be pickled as numpy objects, which weights_only refuses
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, numbers.Integral):  # an int or bool subclass (an IntEnum …)
        return bool(value) if isinstance(value, bool) else int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {_plain(k, where): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(f"cannot save {where} = {value!r} of type {type(value).__name__} as plain data "
                    "(numbers, strings, lists, dicts, tensors); build the model from plain values, "
                    "or save only its weights with torch.save(model.state_dict(), path)")


def _checkpoint_bytes(model: nn.Module) -> bytes:
    checkpoint = {"format": _CHECKPOINT_FORMAT, "class": type(model).__name__,
                  "config": _plain(getattr(model, "config", None), "model.config"),
                  "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    data = buffer.getvalue()
    try:  # what load will do: a checkpoint that saves but cannot be loaded safely is refused here
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = next((line.strip() for line in str(error).splitlines() if "Unsupported" in line), str(error))
        raise TypeError(f"{type(model).__name__} cannot be saved as a checkpoint that loads with "
                        f"torch.load(weights_only=True): {reason}") from None
    return data


def save(model: nn.Module, path: Any) -> None:
    """Save ``model``'s weights and the plain-data config that rebuilds it, to ``path``.

    Builder arguments are stored as plain Python data (a numpy ``obs_scale`` or ``n_codes`` becomes a
    number), and the checkpoint is read back with ``torch.load(weights_only=True)`` before it is
    written, so what saves also loads: no pickled code, only tensors and plain data. The file is
    written to a temporary name beside ``path`` and then renamed, so a failed save leaves an
    earlier checkpoint at ``path`` intact.

    >>> import tempfile, pathlib
    >>> from vaelab.models import VAE
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "vae.pt"
    >>> save(VAE.mlp(4, 2, hidden=(8,), likelihood="gaussian", obs_scale=np.float32(0.5)), path)
    >>> load(path).config["obs_scale"]
    0.5
    """
    data = _checkpoint_bytes(model)
    if hasattr(path, "write"):  # an open binary file or buffer
        path.write(data)
        return
    path = Path(os.fspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one, never half of one
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read_checkpoint(path: Any) -> Any:
    """``torch.load(path, weights_only=True)``, with a ``ValueError`` naming the file and what is wrong with it."""
    if not hasattr(path, "read"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"no checkpoint at {path!s}: check the path (vaelab.train.save writes one)")
        if os.path.getsize(path) == 0:
            raise ValueError(f"{path!s} is empty (0 bytes), not a checkpoint: was the save interrupted?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise ValueError(f"{path!s} holds objects other than tensors and plain data, which vaelab does not "
                             "load (unpickling them could run code). A vaelab checkpoint never does: was this "
                             "file written by vaelab.train.save?") from None
        raise ValueError(f"{path!s} is not a torch checkpoint (it could not be unpickled: {error})") from None
    except Exception as error:  # torch's loaders fail in many ways on a bad file (KeyError, RuntimeError, EOFError…)
        raise ValueError(f"{path!s} is not a readable checkpoint: {_what_is_wrong(path, error)}") from None


def _what_is_wrong(path: Any, error: Exception) -> str:
    head = b""
    if not hasattr(path, "read"):
        with open(path, "rb") as f:
            head = f.read(64)
    if head.startswith(b"PK"):  # torch.save writes a zip archive
        return f"the zip archive torch.save writes is truncated or corrupted ({str(error).splitlines()[0]})"
    text = head.decode("utf-8", errors="replace")
    if head and "\ufffd" not in text and all(c.isprintable() or c.isspace() for c in text):
        return f"it is a text file (it starts with {text[:30]!r}), not what torch.save writes"
    return f"it does not start like what torch.save writes ({type(error).__name__}: {error})"


def load(path: Any, *, model: nn.Module | None = None, device: str | torch.device | None = None) -> nn.Module:
    """Load a checkpoint written by :func:`save`; the model is rebuilt from its config, or pass ``model``.

    A model built from your own encoder and decoder has no plain-data config: build the same model
    again and pass it as ``model=``; its weights are replaced by the saved ones. A file that is empty,
    truncated or not a vaelab checkpoint raises ``ValueError`` naming the file and what is wrong.
    """
    checkpoint = _read_checkpoint(path)
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path!s} is not a vaelab checkpoint (written by vaelab.train.save)")
    if model is None:
        from . import models

        cls = getattr(models, checkpoint["class"], None)
        if checkpoint["config"] is None or cls is None or not hasattr(cls, "from_config"):
            raise ValueError(f"{path!s} holds a {checkpoint['class']} built from custom modules, which cannot be "
                             "rebuilt from plain data: build the same model and pass it, load(path, model=model)")
        model = cls.from_config(checkpoint["config"])
    elif type(model).__name__ != checkpoint["class"]:
        raise ValueError(f"{path!s} holds a {checkpoint['class']}, got a model of type {type(model).__name__}")
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(get_device(device)).eval()
