"""Matplotlib figures used by the lessons, one submodule per topic, re-exported here."""
__all__: list[str] = []
# topic modules (one line each; each module defines __all__)
from .mixtures import *
from .knobs import *
from .vae import *
from .continuous import *
from .compare import *
from .discrete import *
