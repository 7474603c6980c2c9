"""Exercise checkers: ``vaelab.checks.e_step(my_e_step)`` runs a student's function on cases with
known answers and says specifically what is wrong, or confirms it is right.

Each lesson's checkers live in a submodule of their own and are re-exported here.
"""
from ._core import ExerciseError, check_close, passed

__all__ = ["ExerciseError", "check_close", "passed"]
# lesson checkers (one line per lesson module; each module defines __all__)
from .em import *
from .vae import *
from .continuous import *
from .knobs import *
from .discrete import *
from .compare import *
