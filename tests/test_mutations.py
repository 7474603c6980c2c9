"""The lessons' checks are honest: a material change in what a lesson shows must fail its notebook test.

Each mutation is applied inside the notebook's kernel by an IPython startup file (the lesson's source
is untouched), then nbval runs the lesson and must report a failing cell. Tolerances on trained
numbers (vaelab.about) are about their run-to-run size; these mutations move results by much more.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

MUTATIONS = {
    # every model trained for half its epochs
    "half_epochs": ("03_variational_autoencoder.ipynb", """
import functools, vaelab, vaelab.train
_fit = vaelab.train.fit
@functools.wraps(_fit)
def fit(model, X, *args, epochs, **kwargs):
    return _fit(model, X, *args, epochs=max(1, epochs // 2), **kwargs)
vaelab.train.fit = vaelab.fit = fit
"""),
    # a factor 2 in the Gaussian KL, in the package's closed form and in the standard-normal prior's
    "kl_times_two": ("03_variational_autoencoder.ipynb", """
import vaelab.objectives, vaelab.priors
_kl, _prior_kl = vaelab.objectives.gaussian_kl, vaelab.priors.StandardNormal.kl
vaelab.objectives.gaussian_kl = lambda *a, **k: 2 * _kl(*a, **k)
def kl(self, q):
    out = _prior_kl(self, q)
    return None if out is None else 2 * out
vaelab.priors.StandardNormal.kl = kl
"""),
    # GaussianMixture regularised by another reg_covar than the one asked for
    "reg_covar": ("01_finite_mixtures_em.ipynb", """
import functools, vaelab.gmm
_init = vaelab.gmm.GaussianMixture.__init__
@functools.wraps(_init)
def __init__(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    self.reg_covar = self.reg_covar * 100 + 1e-3
vaelab.gmm.GaussianMixture.__init__ = __init__
"""),
}


def run_lesson(notebook: str, startup: str, tmp_path: Path) -> subprocess.CompletedProcess:
    ipython_dir = tmp_path / "ipython"
    (ipython_dir / "profile_default" / "startup").mkdir(parents=True)
    (ipython_dir / "profile_default" / "startup" / "00-mutation.py").write_text(startup)
    env = {**os.environ, "IPYTHONDIR": str(ipython_dir)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header",
         "-o", "addopts=", "--nbval", "--nbval-current-env", "--nbval-sanitize-with",
         str(ROOT / "notebooks" / "sanitize.cfg"), str(ROOT / "notebooks" / notebook)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_the_startup_hook_reaches_the_kernel(tmp_path):
    """The harness itself: a no-op start-up file leaves lesson 00 passing, one that silences print() fails it."""
    assert run_lesson("00_start_here.ipynb", "pass\n", tmp_path / "a").returncode == 0
    silenced = run_lesson("00_start_here.ipynb", "import builtins\nbuiltins.print = lambda *a, **k: None\n", tmp_path / "b")
    assert silenced.returncode == 1 and "1 failed" in silenced.stdout


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_material_change_fails_a_lesson(name, tmp_path):
    notebook, startup = MUTATIONS[name]
    out = run_lesson(notebook, startup, tmp_path)
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 failed" in out.stdout, out.stdout[-3000:]
