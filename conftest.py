"""Settings shared by unit tests, doctests and the notebook kernels nbval starts (kernels inherit the environment)."""
import os

import matplotlib

os.environ.setdefault("TQDM_DISABLE", "1")
# kernels must draw inline, as when the stored outputs were made, whatever the caller's backend ...
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
# ... while this process draws off-screen
matplotlib.use("Agg")
