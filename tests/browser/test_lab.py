"""Lesson 04 in a real browser: JupyterLab runs every cell, then the β slider, the prior dropdown and the K
slider of the dashboard are moved the way a student moves them, and the printed numbers and the figure change.

Runs on a copy of the notebook served by a throwaway JupyterLab (see conftest.py); the stored
notebook is never modified.
"""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

LESSON = "04_beta_and_priors.ipynb"
RUN_ALL_TIMEOUT_MS = 600_000  # the lesson runs in under a minute on 2 cores; generous for loaded machines
CHANGE_TIMEOUT_MS = 60_000  # a new K trains a model live: a fraction of a second alone, more when loaded

# every code cell has run (a number in its prompt) -> "done"; an error output -> its text
PROGRESS_JS = """() => {
  const errors = [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"], [data-mime-type="application/vnd.jupyter.error"]')]
    .filter(e => /Error|Traceback/.test(e.textContent));
  if (errors.length) return 'error: ' + errors[0].textContent.slice(0, 2000);
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
  return prompts.length > 0 && prompts.every(t => /^\\[\\d+\\]:$/.test(t)) ? 'done' : '';
}"""

# what the dashboard shows: its text, and a digest of the PNG behind the <img> (fetched from its blob URL)
SHOWN_JS = """async () => {
  const text = document.querySelector('.vaelab-knobs-text').textContent;
  const img = document.querySelector('img.vaelab-knobs-figure, .vaelab-knobs-figure img');
  const bytes = await (await fetch(img.src)).arrayBuffer();
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  const hex = [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
  return {text, png: hex, size: bytes.byteLength};
}"""


def shown(page) -> dict:
    return page.evaluate(SHOWN_JS)


def wait_for_change(page, before: dict) -> dict:
    """Wait until the dashboard's text differs from ``before``, then return what it shows."""
    page.wait_for_function("old => document.querySelector('.vaelab-knobs-text').textContent !== old",
                           arg=before["text"], timeout=CHANGE_TIMEOUT_MS)
    page.wait_for_timeout(300)  # the image's new value arrives in the same kernel message burst
    return shown(page)


def menu(page, top: str, item: str) -> None:
    """Click ``item`` in the main menu ``top`` (e.g. "Run" -> "Run All Cells")."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()


def accept_kernel_dialog(page) -> None:
    """JupyterLab may ask which kernel to start; take the one it proposes (the notebook's python3)."""
    dialog = page.locator(".jp-Dialog")
    try:
        dialog.wait_for(state="visible", timeout=10_000)
    except Exception:  # no dialog: the kernel started on its own
        return
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    dialog.wait_for(state="hidden", timeout=10_000)


def test_lesson_04_dashboard_answers_its_controls(page, lab):
    # a failure leaves a screenshot and the server log in the folder conftest.screenshot_dir names
    page.goto(lab.url(f"lab/tree/{LESSON}"), wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    accept_kernel_dialog(page)
    # stored outputs have numbered prompts too: clear them, so numbered prompts mean "ran here"
    menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function("() => ![...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]"
                           ".some(e => /\\d/.test(e.textContent))", timeout=CHANGE_TIMEOUT_MS)
    menu(page, "Run", "Run All Cells")
    page.wait_for_function(PROGRESS_JS, timeout=RUN_ALL_TIMEOUT_MS)
    status = page.evaluate(PROGRESS_JS)
    assert status == "done", f"the lesson failed in the browser: {status}"

    page.locator(".vaelab-knobs-text").scroll_into_view_if_needed()
    first = shown(page)
    assert "β = 1, prior: standard normal" in first["text"] and "active units" in first["text"]
    assert first["size"] > 1000

    # the β slider: keyboard on the slider handle, as a student would use it; End = the largest β
    handle = page.locator(".vaelab-knobs-beta .noUi-handle")
    handle.focus()
    page.keyboard.press("End")
    after_beta = wait_for_change(page, first)
    assert "β = 10," in after_beta["text"], after_beta["text"]
    assert after_beta["png"] != first["png"], "the figure did not change with β"
    numbers = re.compile(r"rate ([\d.]+) nats \| distortion ([\d.]+) nats")
    assert numbers.search(after_beta["text"]).groups() != numbers.search(first["text"]).groups()

    # the prior dropdown
    page.locator(".vaelab-knobs-prior select").select_option(label="learned mixture")
    after_prior = wait_for_change(page, after_beta)
    assert "prior: learned mixture" in after_prior["text"], after_prior["text"]
    assert after_prior["png"] != after_beta["png"], "the figure did not change with the prior"

    # the K slider (on for a learned prior): Home = K = 1, a new setting, trained live in the kernel
    k_handle = page.locator(".vaelab-knobs-k .noUi-handle")
    k_handle.focus()
    page.keyboard.press("Home")
    after_k = wait_for_change(page, after_prior)
    assert "prior: learned mixture, K = 1" in after_k["text"], after_k["text"]
    assert after_k["png"] != after_prior["png"], "the figure did not change with K"
