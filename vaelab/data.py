"""Data for the lessons: 2-D toy sets, scikit-learn's bundled 8×8 digits (offline), and MNIST /
Fashion-MNIST downloaded once into a verified cache.

Every loader returns torch tensors: ``X`` float32 of shape (n_samples, n_features), ``y`` int64.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._validation import check_choice, check_nonnegative, check_positive, check_positive_int

__all__ = ["TOY_SETS", "toy", "digits", "mnist", "fashion_mnist", "fetch", "read_idx", "cache_dir", "sines"]

TOY_SETS = ("blobs", "moons", "ring", "spiral", "pinwheel")
_DEFAULT_NOISE = {"blobs": 0.35, "moons": 0.08, "ring": 0.1, "spiral": 0.05, "pinwheel": 0.3}


def _blobs(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    centers = np.array([[-2.0, -1.0], [0.0, 2.0], [2.0, -1.0]])
    labels = rng.integers(0, len(centers), size=n)
    return centers[labels] + noise * rng.standard_normal((n, 2))


def _moons(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    upper = rng.random(n) < 0.5
    t = rng.uniform(0.0, math.pi, size=n)
    x = np.where(upper, np.cos(t), 1.0 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x - 0.5, y - 0.25], axis=1) * 1.5
    return pts + noise * rng.standard_normal((n, 2))


def _ring(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0.0, 2 * math.pi, size=n)
    pts = 2.0 * np.stack([np.cos(t), np.sin(t)], axis=1)
    return pts + noise * rng.standard_normal((n, 2))


def _spiral(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    t = np.sqrt(rng.random(n)) * 3 * math.pi  # sqrt: even density along the arm
    arm = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
    pts = arm * np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (1.5 * math.pi)
    return pts + noise * rng.standard_normal((n, 2))


def _pinwheel(n: int, noise: float, rng: np.random.Generator, arms: int = 5, rate: float = 0.25) -> np.ndarray:
    # Johnson et al. (2016): stretched Gaussians, each rotated by an angle that grows with radius
    labels = rng.integers(0, arms, size=n)
    pts = rng.standard_normal((n, 2)) * np.array([noise, 0.05]) + np.array([1.0, 0.0])
    angle = 2 * math.pi * labels / arms + rate * np.exp(pts[:, 0])
    c, s = np.cos(angle), np.sin(angle)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (n, 2, 2)
    return 2.0 * np.einsum("nij,nj->ni", rot, pts)


_TOY = {"blobs": _blobs, "moons": _moons, "ring": _ring, "spiral": _spiral, "pinwheel": _pinwheel}


def toy(name: str, n: int, *, noise: float | None = None, seed: int = 0) -> torch.Tensor:
    """Draw ``n`` points of a 2-D toy set, of shape (n, 2), float32, roughly within [-3, 3]².

    Parameters
    ----------
    name : one of "blobs", "moons", "ring", "spiral", "pinwheel"
    n : number of points
    noise : standard deviation of the Gaussian noise (each set has its own default)
    seed : the same seed gives the same points

    >>> toy("moons", 5).shape
    torch.Size([5, 2])
    """
    check_choice(name, "name", TOY_SETS)
    n = check_positive_int(n, "n")
    noise = _DEFAULT_NOISE[name] if noise is None else check_nonnegative(noise, "noise")
    seed = check_positive_int(seed, "seed", minimum=0)
    pts = _TOY[name](n, noise, np.random.default_rng(seed))
    with np.errstate(over="ignore"):
        pts = pts.astype(np.float32)
    if not np.isfinite(pts).all():
        raise ValueError(f"`noise` = {noise:g} is too large: the points overflow float32 (largest "
                         f"{np.finfo(np.float32).max:.3g}); the sets live in about [-3, 3]², so noise of order 1 or less")
    return torch.from_numpy(pts)


_DIGITS_TEST_SIZE = 360


def _binarize(X: torch.Tensor, binarize, seed: int) -> torch.Tensor:
    if binarize is False:
        return X
    # "static": one fixed Bernoulli draw (the same on every call); "dynamic": a fresh draw per call
    generator = torch.Generator().manual_seed(seed) if binarize == "static" else None
    return torch.bernoulli(X, generator=generator)


def digits(split: str = "train", *, binarize: bool | str = False, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return scikit-learn's bundled 8×8 digits, (X, y): X of shape (n, 64) in [0, 1], y of shape (n,).

    A fixed stratified split: 1437 train and 360 test images. ``binarize`` is False (grey levels),
    "static" (one Bernoulli draw with ``seed``, identical every call) or "dynamic" (a fresh
    Bernoulli draw every call, from torch's global generator). Works offline.

    >>> X, y = digits("test")
    >>> tuple(X.shape), tuple(y.shape), float(X.max())
    ((360, 64), (360,), 1.0)
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    check_choice(split, "split", ("train", "test"))
    check_choice(binarize, "binarize", (False, "static", "dynamic"))
    seed = check_positive_int(seed, "seed", minimum=0)
    data = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=_DIGITS_TEST_SIZE, stratify=data.target, random_state=0)
    X, y = (X_train, y_train) if split == "train" else (X_test, y_test)
    X = torch.from_numpy((X / 16.0).astype(np.float32))
    return _binarize(X, binarize, seed), torch.from_numpy(y.astype(np.int64))


# ---------------------------------------------------------------- MNIST and Fashion-MNIST

_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}


def cache_dir(root: str | os.PathLike | None = None) -> Path:
    """The download cache: ``root`` if given, else ``$VAELAB_DATA``, else ``~/.cache/vaelab``."""
    if root is None:
        root = os.environ.get("VAELAB_DATA") or Path.home() / ".cache" / "vaelab"
    return Path(root)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(url: str, dest: str | os.PathLike, sha256: str, *, timeout: float = 30.0,
          total_timeout: float = 600.0) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right sha256 is already there.

    The bytes go to a temporary file in the same folder, are verified, and only then renamed
    onto ``dest``: a killed or corrupted download never leaves a file that looks complete.
    ``timeout`` bounds the wait for each network operation, ``total_timeout`` the whole download
    (a server that trickles bytes would otherwise never time out).
    Raises ``ConnectionError`` when the server cannot be reached, the transfer is cut short or
    takes longer than ``total_timeout`` seconds, ``ValueError`` when the checksum does not match.
    """
    timeout = check_positive(timeout, "timeout")
    total_timeout = check_positive(total_timeout, "total_timeout")
    dest = Path(dest)
    if dest.exists() and _sha256(dest) == sha256:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            too_slow = False
            deadline = time.monotonic() + total_timeout
            try:
                with urllib.request.urlopen(url, timeout=min(timeout, total_timeout)) as response:
                    expected = response.headers.get("Content-Length")
                    written = 0
                    # read1: at most one network read per call, so the deadline is checked between reads
                    for block in iter(lambda: response.read1(1 << 16), b""):
                        out.write(block)
                        written += len(block)
                        if time.monotonic() > deadline:
                            too_slow = True
                            break
            except (urllib.error.URLError, OSError, EOFError, http.client.HTTPException) as err:
                # HTTPException: e.g. IncompleteRead, a chunked transfer cut in the middle of a chunk
                raise ConnectionError(f"could not download {url}: {type(err).__name__}: {err}") from err
            if too_slow:
                raise ConnectionError(f"download of {url} took longer than total_timeout={total_timeout:g} s "
                                      f"({written} bytes so far): the server is too slow")
            if expected is not None and written != int(expected):
                raise ConnectionError(f"download of {url} was cut short: got {written} of {expected} bytes")
        got = _sha256(Path(tmp))
        if got != sha256:
            raise ValueError(f"checksum mismatch for {url}: expected sha256 {sha256}, got {got}; "
                             "the file was not kept, try again or another mirror")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return dest


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a (gzipped) IDX file, the format of MNIST, into a numpy array of unsigned bytes."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number {data[:4]!r})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != math.prod(shape):
        raise ValueError(f"{path} should hold {math.prod(shape)} values for shape {shape}, "
                         f"got {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _mirrors(mirrors: Any, kind: str) -> tuple[str, ...]:
    """The base URLs to try, in order; one string is one mirror (not a sequence of characters)."""
    if mirrors is None:
        return MIRRORS[kind]
    if isinstance(mirrors, str):
        mirrors = (mirrors,)
    mirrors = tuple(mirrors)
    if not mirrors or not all(isinstance(m, str) and m for m in mirrors):
        raise TypeError(f"`mirrors` must be a base URL or a sequence of base URLs, got {mirrors!r}")
    return tuple(m if m.endswith("/") else m + "/" for m in mirrors)


def mnist(split: str = "train", *, kind: str = "mnist", root: str | os.PathLike | None = None,
          mirrors: str | tuple[str, ...] | None = None, timeout: float = 30.0,
          total_timeout: float = 600.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Return MNIST or Fashion-MNIST as (X, y): X of shape (n, 784) in [0, 1], y of shape (n,).

    The four IDX files are downloaded once into ``cache_dir(root)/<kind>/``, verified by sha256,
    and read from there afterwards; each file is tried on every mirror in turn (``mirrors``: one
    base URL or several). ``timeout`` and ``total_timeout`` as in :func:`fetch`. Offline, the
    error suggests ``vaelab.data.digits()``, which needs no network.
    """
    check_choice(split, "split", ("train", "test"))
    check_choice(kind, "kind", ("mnist", "fashion"))
    mirrors = _mirrors(mirrors, kind)
    folder = cache_dir(root) / kind
    arrays = []
    for name in _FILES[split]:
        errors = []
        for mirror in mirrors:
            try:
                path = fetch(mirror + name, folder / name, SHA256[kind][name], timeout=timeout,
                             total_timeout=total_timeout)
                break
            except (ConnectionError, ValueError) as err:
                errors.append(str(err))
        else:
            raise ConnectionError(
                f"could not get {kind} file {name} from any mirror ({'; '.join(errors)}). "
                "Offline? vaelab.data.digits() gives 8x8 digits with no network.")
        arrays.append(read_idx(path))
    images, labels = arrays
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{kind} {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    X = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    return X, torch.from_numpy(labels.astype(np.int64))


def fashion_mnist(split: str = "train", *, root: str | os.PathLike | None = None,
                  mirrors: str | tuple[str, ...] | None = None, timeout: float = 30.0,
                  total_timeout: float = 600.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST, the same format as :func:`mnist`: ``mnist(split, kind="fashion")``."""
    return mnist(split, kind="fashion", root=root, mirrors=mirrors, timeout=timeout, total_timeout=total_timeout)


# ---------------------------------------------------------------- toy time series (lesson 05)


def sines(n: int, length: int, *, noise: float = 0.1, seed: int = 0) -> torch.Tensor:
    """Draw ``n`` noisy sine waves of ``length`` steps, of shape (n, length, 1), float32.

    x_t = a · sin(2π f t / length + φ) + noise · ε_t,  t = 0 … length − 1, with per-series amplitude
    a ~ U(0.5, 1.5), frequency f ~ U(1, 3) cycles per series, phase φ ~ U(0, 2π) and ε_t ~ N(0, 1).
    Three numbers explain each series, so a latent space of 2–3 dimensions can hold it (lesson 05).

    Parameters
    ----------
    n : number of series
    length : number of time steps per series (at least 2)
    noise : standard deviation of the Gaussian noise added to every step
    seed : the same seed gives the same series

    >>> x = sines(4, 50, noise=0.0)
    >>> tuple(x.shape), bool(x.abs().max() <= 1.5)
    ((4, 50, 1), True)
    """
    n = check_positive_int(n, "n")
    length = check_positive_int(length, "length", minimum=2)
    noise = check_nonnegative(noise, "noise")
    seed = check_positive_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    amplitude = rng.uniform(0.5, 1.5, size=(n, 1))
    frequency = rng.uniform(1.0, 3.0, size=(n, 1))
    phase = rng.uniform(0.0, 2 * math.pi, size=(n, 1))
    t = np.arange(length)[None, :] / length  # (1, T): time in units of the whole window
    x = amplitude * np.sin(2 * math.pi * frequency * t + phase) + noise * rng.standard_normal((n, length))
    return torch.from_numpy(x.astype(np.float32)).unsqueeze(-1)  # (n, T, 1): one channel
