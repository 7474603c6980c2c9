"""The course website (``make site``) read in a real Chromium with the network off.

The site is built once for the session into a temporary folder (or taken from ``$VAELAB_SITE_DIR``
when that names a built site, as the Pages workflow does). Pages are opened from disk, as from a USB
stick; a browser context that is offline, plus a route that refuses anything but files, proves that
no page reaches for the network: every lesson loads, its math is typeset, its figures load, and the
dashboard of lesson 04, the K slider of lesson 02 and the EM stepper of lesson 01 move.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PAGES = ["index", *LESSONS, "instructors"]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
BUILD_TIMEOUT_S = 900  # a cold build trains lesson 04's models for the dashboard's frames
PAGE_BUDGET_BYTES = 4_000_000  # what one page may load on first view (MathJax is about 1.2 MB of it)
SCHEMES_ALLOWED = ("file:", "data:", "blob:", "about:")


def _required(message: str) -> None:
    if os.environ.get("VAELAB_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " (VAELAB_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """A built site: $VAELAB_SITE_DIR if it holds one, else ``website/build.py`` run now."""
    given = os.environ.get("VAELAB_SITE_DIR")
    if given and (Path(given) / "index.html").exists():
        return Path(given).resolve()
    if importlib.util.find_spec("myst_nb") is None or importlib.util.find_spec("sphinx") is None:
        _required("the website tools are missing; install them with pip install -e '.[site]' (make setup does)")
    out = tmp_path_factory.mktemp("site") / "site"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "website" / "build.py"), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert done.returncode == 0, f"website/build.py failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    print(f"\nsite built in {time.perf_counter() - start:.0f} s:\n{done.stdout}")
    return out


@pytest.fixture(scope="session")
def browser():
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        _required("Debian's Chromium is not installed at /usr/bin/chromium; `sudo apt-get install -y chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _required("Python Playwright is missing; install the test extra: pip install -e '.[test]'")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


class Visit:
    """An offline page that records every request it makes and every one that fails."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1300, "height": 900}, offline=True)
        self.requests: list[str] = []
        self.failed: list[str] = []
        self.refused: list[str] = []

        def only_files(route):
            if route.request.url.startswith(SCHEMES_ALLOWED):
                route.continue_()
            else:
                self.refused.append(route.request.url)
                route.abort()

        self.context.route("**/*", only_files)
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))

    def open(self, path: Path):
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")
        # MathJax typesets after load: wait for its promise (absent on a page with no math at all)
        self.page.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
        return self.page

    def weight(self) -> int:
        """Bytes this page loaded from the site: the files behind its file:// requests."""
        files = {Path(unquote(urlparse(u).path)) for u in self.requests if u.startswith("file:")}
        return sum(f.stat().st_size for f in files if f.is_file())

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser):
    v = Visit(browser)
    yield v
    v.close()


def test_every_lesson_notebook_has_a_page(site):
    for name in PAGES:
        assert (site / f"{name}.html").is_file(), f"{name}.html is missing from the site"
    for name in LESSONS:
        assert (site / "notebooks" / f"{name}.ipynb").is_file(), f"the download of {name}.ipynb is missing"


@pytest.mark.parametrize("name", PAGES)
def test_page_reads_offline_with_math_typeset_and_figures_loaded(site, visit, name):
    page = visit.open(site / f"{name}.html")
    assert not visit.refused, f"{name} reached for the network: {visit.refused[:5]}"
    assert not visit.failed, f"{name}: requests failed: {visit.failed[:5]}"
    # the prose, without code, outputs and typeset math: TeX delimiters left there were not typeset
    text = page.evaluate("""() => { const a = document.querySelector('article').cloneNode(true);
        a.querySelectorAll('pre, code, script, style, mjx-container, .cell_output').forEach(e => e.remove());
        return a.textContent; }""")
    raw = re.findall(r"\$\$|\\\(|\\\[|\$[^$\s][^$]*\$", text)
    assert not raw, f"{name}: TeX left untypeset on the page: {raw[:5]}"
    math_sources = page.locator("article .math").count()
    typeset = page.locator("article mjx-container").count()
    if math_sources:
        assert typeset >= math_sources, f"{name}: {math_sources} formulas, {typeset} typeset"
    assert page.locator("mjx-merror").count() == 0, f"{name}: MathJax could not read a formula"
    figures = page.evaluate("""() => [...document.querySelectorAll('article img')]
        .filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'))""")
    assert not figures, f"{name}: figures that did not load: {figures}"
    if name in LESSONS and name != LESSONS[0]:
        assert page.locator("article img").count() > 0, f"{name}: a lesson page without a figure"
    weight = visit.weight()
    print(f"{name}: {weight / 1e6:.2f} MB on first view")
    assert weight < PAGE_BUDGET_BYTES, f"{name} loads {weight / 1e6:.1f} MB on first view"


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_page_links_binder_and_its_notebook(site, visit, name):
    page = visit.open(site / f"{name}.html")
    hrefs = page.eval_on_selector_all(".vaelab-badges a", "links => links.map(a => a.getAttribute('href'))")
    assert any("mybinder.org" in h and f"notebooks/{name}.ipynb" in h for h in hrefs), hrefs
    assert any("mybinder.org" in h and f"student/{name}.ipynb" in h for h in hrefs), hrefs
    assert any("github.com" in h and f"notebooks/{name}.ipynb" in h for h in hrefs), hrefs
    assert (site / f"notebooks/{name}.ipynb").is_file() and f"notebooks/{name}.ipynb" in hrefs
    # a widget that needs a kernel says so and links to Binder
    for note in page.locator(".vaelab-widget-note").all():
        assert "mybinder.org" in note.locator("a").first.get_attribute("href")


def _live(page, lesson: str):
    box = page.locator(f".vaelab-live[data-widget^='{lesson}']")
    assert box.count() == 1, f"{lesson}: expected one live widget, found {box.count()}"
    page.wait_for_selector(f".vaelab-live[data-widget^='{lesson}'].vaelab-live-ready", timeout=10_000)
    return box


def _shown(box) -> dict:
    """What a live widget shows: its text and its figure (the file name is the PNG's digest)."""
    return box.evaluate("""b => {
        const img = b.querySelector('img.vaelab-live-figure');
        return {text: b.querySelector('.vaelab-live-text').textContent, src: img.getAttribute('src'),
                loaded: img.complete && img.naturalWidth > 0};
    }""")


def _settled(page, box, before: dict) -> dict:
    page.wait_for_function("""([b, src]) => {
        const img = b.querySelector('img.vaelab-live-figure');
        return img.getAttribute('src') !== src && img.complete && img.naturalWidth > 0;
    }""", arg=[box.element_handle(), before["src"]], timeout=10_000)
    return _shown(box)


def test_dashboard_beta_slider_and_prior_change_the_picture_offline(site, visit):
    from vaelab.widgets.dashboard import PRIOR_LABELS

    page = visit.open(site / "04_beta_and_priors.html")
    box = _live(page, "04_")
    first = _shown(box)
    assert first["loaded"] and "β = " in first["text"]
    beta = box.locator("input[type=range][data-description='β']")
    readout = box.locator("label[data-description='β'] output")
    old_beta = readout.text_content()
    beta.focus()
    page.keyboard.press("ArrowLeft")  # one step down the β values, as a reader moves it
    moved = _settled(page, box, first)
    new_beta = readout.text_content()
    assert new_beta != old_beta and f"β = {new_beta}," in moved["text"] and moved["text"] != first["text"]
    box.locator("select[data-description='prior p(z)']").select_option(label=PRIOR_LABELS["vamp"])
    vamp = _settled(page, box, moved)
    assert PRIOR_LABELS["vamp"] in vamp["text"] and vamp["src"] not in (first["src"], moved["src"])
    assert not visit.refused and not visit.failed, (visit.refused, visit.failed)


def test_k_slider_of_lesson_02_grows_k_offline(site, visit):
    page = visit.open(site / "02_infinite_mixtures.html")
    box = _live(page, "02_")
    first = _shown(box)
    slider = box.locator("input[type=range][data-description='K']")
    slider.focus()
    page.keyboard.press("End")  # the largest K offered
    last = _settled(page, box, first)
    k_max = box.locator("label[data-description='K'] output").text_content()
    assert f"K = {k_max} components" in last["text"]
    assert not visit.refused and not visit.failed, (visit.refused, visit.failed)


def test_em_stepper_of_lesson_01_plays_offline(site, visit):
    page = visit.open(site / "01_finite_mixtures_em.html")
    box = _live(page, "01_")
    first = _shown(box)
    readout = box.locator("label[data-description='iteration'] output")
    assert readout.text_content() == "0"
    box.locator("button.vaelab-live-play").click()
    page.wait_for_function("o => Number(o.textContent) >= 2", arg=readout.element_handle(), timeout=10_000)
    box.locator("button.vaelab-live-play").click()  # pause
    now = _shown(box)
    assert now["src"] != first["src"] and now["loaded"]
    assert f"iteration {readout.text_content()} of" in now["text"]
