"""Latent-variable models: one model per submodule, re-exported here."""
__all__: list[str] = []
# model modules (one line each; each module defines __all__)
from .vae import *
from .cvae import *
from .vqvae import *
from .sequence import *
from .made import *
