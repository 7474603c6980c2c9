"""A throwaway JupyterLab on 127.0.0.1 and a headless Debian Chromium driven by Playwright.

Nothing here touches the user's Jupyter setup: config, data, runtime, settings and workspace folders
are temporary, the server serves a temporary copy of the notebooks, and it stops after the tests.
Chromium is Debian's (``/usr/bin/chromium``); Playwright's own browser download is never used.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
HOW_TO_GET_IT = ("Debian's Chromium is not installed at /usr/bin/chromium; install it with "
                 "`sudo apt-get install -y chromium` (.ci/run does this) to run the browser tests")
SERVER_START_TIMEOUT = 90  # seconds until /lab must answer


def screenshot_dir(name: str) -> Path:
    """Where a failing browser test leaves its screenshots and the server's log."""
    base = Path(os.environ.get("VAELAB_SCREENSHOTS", Path(__import__("tempfile").gettempdir()) / "vaelab-browser-screenshots"))
    folder = base / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def chromium() -> str:
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        if os.environ.get("VAELAB_REQUIRE_BROWSER") == "1":
            pytest.fail(HOW_TO_GET_IT + " (VAELAB_REQUIRE_BROWSER=1 makes this a failure)")
        pytest.skip(HOW_TO_GET_IT)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        message = "Python Playwright is missing; install the test extra: pip install -e '.[test]'"
        if os.environ.get("VAELAB_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return str(CHROMIUM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


class Lab:
    """A running JupyterLab: ``url(path)`` gives an address with the token, ``root`` its notebook folder."""

    def __init__(self, base: str, token: str, root: Path, log: Path, process: subprocess.Popen):
        self.base, self.token, self.root, self.log, self.process = base, token, root, log, process

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}?token={self.token}"


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    """JupyterLab on a free loopback port, with throwaway folders, serving a copy of notebooks/."""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    dirs = {name: home / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
    for folder in dirs.values():
        folder.mkdir()
    # no news or update checks, no announcement toast over the page; every cell in the DOM (no
    # windowing), so the test sees every prompt
    (dirs["config"] / "labconfig").mkdir()
    (dirs["config"] / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ)
    env.update({
        "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]), "IPYTHONDIR": str(dirs["ipython"]),
        "TQDM_DISABLE": "1", "PYTHONUNBUFFERED": "1",
        # the kernelspec says "python": make that the interpreter running these tests
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    })
    env.pop("JUPYTER_PATH", None)
    port, token = _free_port(), uuid.uuid4().hex
    command = [sys.executable, "-m", "jupyter", "lab", "--ServerApp.open_browser=False",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    log = home / "jupyter-lab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Lab(f"http://127.0.0.1:{port}", token, root, log, process)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _answers(server.url("lab")):
            if process.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {process.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer /lab within {SERVER_START_TIMEOUT} s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def page(chromium, lab, request):
    """A fresh Chromium page; on failure, a screenshot and the server log land in ``screenshot_dir``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            folder = screenshot_dir(request.node.name)
            page.screenshot(path=str(folder / "page.png"), full_page=True)
            shutil.copy(lab.log, folder / "jupyter-lab.log")
            print(f"\nscreenshot and server log saved in {folder}")
        context.close()
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
