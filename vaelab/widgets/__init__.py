"""ipywidgets dashboards for the lessons (the only part of vaelab that imports ipywidgets).

One submodule per lesson topic, re-exported here.
"""
__all__: list[str] = []
# topic modules (one line each; each module defines __all__)
from .em import *
from .dashboard import *
from .continuous import *
from .conditional import *
