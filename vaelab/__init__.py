"""vaelab: from a finite Gaussian mixture fit by EM to the variational autoencoder as an infinite mixture.

Public names are imported lazily, so ``import vaelab`` stays fast and each lesson pays only
for the modules it uses.
"""
from __future__ import annotations

import importlib

from .device import get_device, seed_everything

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "GaussianMixture": "gmm",
    "ContinuousMixture": "continuous",
    "StandardNormal": "priors",
    "MixturePrior": "priors",
    "VampPrior": "priors",
    "VAE": "models",
    "CVAE": "models",
    "VQVAE": "models",
    "SequenceVAE": "models",
    "fit": "train",
    "History": "train",
    "BernoulliMixture": "bernoulli_mixture",
    "about": "trained",
}
_SUBMODULES = ("data", "gmm", "continuous", "priors", "models", "objectives", "diagnostics",
               "train", "plot", "widgets", "checks", "device", "compare", "bernoulli_mixture", "trained")

__all__ = ["get_device", "seed_everything", *_LAZY, *_SUBMODULES]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'vaelab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
