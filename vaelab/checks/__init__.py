"""Exercise checkers: ``e_step = vaelab.checks.e_step(e_step)`` runs a student's function on cases
with known answers, says specifically what is wrong (a red line) or confirms it is right, and hands
back the function the rest of the lesson should use: the student's when it passes, else vaelab's
reference. ``vaelab.checks.solution("e_step")`` shows a solution, for self-study.

Each lesson's checkers live in a submodule of their own and are re-exported here; what they share
(the safe caller, the report, strict mode under the tests) is in ``_core``.
"""
from ._core import ExerciseError, NotImplementedYet, as_tensor, call, check_close, checker, passed, report
from ._solution import solution

__all__ = ["ExerciseError", "NotImplementedYet", "as_tensor", "call", "check_close", "checker", "passed",
           "report", "solution"]
# lesson checkers (one line per lesson module; each module defines __all__)
from .em import *
from .vae import *
from .continuous import *
from .knobs import *
from .discrete import *
from .compare import *
