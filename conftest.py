"""Settings shared by unit tests, doctests and the notebook kernels nbval starts (kernels inherit the environment)."""
import os

import matplotlib

os.environ.setdefault("TQDM_DISABLE", "1")
# a trained number outside the band its lesson states fails the cell (vaelab.trained.about)
os.environ["VAELAB_STRICT"] = "1"
# the stored outputs are CPU outputs: lessons run on the CPU under the tests whatever the machine has
# (the GPU path is covered by the unit tests marked `gpu`, which ask for "cuda" by name)
os.environ["VAELAB_DEVICE"] = "cpu"
# kernels must draw inline, as when the stored outputs were made, whatever the caller's backend ...
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
# ... while this process draws off-screen
matplotlib.use("Agg")
