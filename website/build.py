"""Build the course as a static, self-contained website: ``python website/build.py`` (``make site``).

1. Stage the sources in ``build/site-src/``: the committed notebooks as they are (outputs included,
   never re-executed), each with links to Binder and to its notebook, and each widget output replaced
   by a live replay (below) or by a note that the widget needs a kernel; an index page made of the
   README's story and lesson 00's map; INSTRUCTORS.md as a page.
2. Meanwhile, in worker processes, precompute the frames of the widgets listed in ``LIVE`` with the
   lessons' own code (website/frames.py), cached in ``build/site-cache/`` while neither the lesson's
   code nor vaelab changes.
3. Sphinx + MyST-NB render the pages into ``build/site/``; MathJax, CSS, JS and the frames are
   copied into the site, and the build fails if a page would fetch anything from elsewhere.

Options: ``--out DIR`` (default build/site), ``--no-frames`` (every widget gets its note),
``--jobs N`` (frame workers, default 2).
"""
from __future__ import annotations

import argparse
import concurrent.futures as futures
import hashlib
import html
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOTEBOOKS = ROOT / "notebooks"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
DEFAULT_REPO, DEFAULT_BRANCH = "vaelab/vaelab", "main"


@dataclass(frozen=True)
class Live:
    """A widget that works on the site: the lesson (its number), how its cell calls it, what to offer."""

    lesson: str
    calls: tuple[str, ...]
    title: str
    choose: dict = field(default_factory=dict)
    max_frames: int = 400


LIVE = (
    # EM: every iteration (the play button steps through them) for a few K, including the lesson's K = 5
    Live("01", ("em_widget(", "EMWidget("), "EM, step by step", choose={"K": (1, 2, 3, 5, 8)}),
    Live("02", ("components_widget(", "ComponentsWidget("), "K → ∞"),
    Live("04", ("BetaPriorDashboard(", "beta_prior_dashboard("), "β × prior dashboard"),
)


# ---------------------------------------------------------------- where the course lives online

def repository() -> tuple[str, str]:
    """(owner/name, branch) for Binder and GitHub links: $GITHUB_REPOSITORY in CI, else the README's badge."""
    if os.environ.get("GITHUB_REPOSITORY"):
        return os.environ["GITHUB_REPOSITORY"], os.environ.get("GITHUB_REF_NAME", DEFAULT_BRANCH)
    m = re.search(r"mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/([\w.-]+)", (ROOT / "README.md").read_text())
    return (m.group(1), m.group(2)) if m else (DEFAULT_REPO, DEFAULT_BRANCH)


def links(name: str, repo: str, branch: str) -> dict[str, str]:
    binder = f"https://mybinder.org/v2/gh/{repo}/{branch}?urlpath=lab/tree"
    return {"binder": f"{binder}/notebooks/{name}", "student": f"{binder}/student/{name}",
            "github": f"https://github.com/{repo}/blob/{branch}/notebooks/{name}", "download": f"notebooks/{name}"}


def badges(name: str, repo: str, branch: str) -> str:
    to = links(name, repo, branch)
    return ("<div class=\"vaelab-badges\">"
            f"<a class=\"vaelab-badge\" href=\"{to['binder']}\">Run on Binder</a>"
            f"<a class=\"vaelab-badge\" href=\"{to['student']}\">Exercises on Binder (student edition)</a>"
            f"<a class=\"vaelab-badge\" href=\"{to['github']}\">Notebook on GitHub</a>"
            f"<a class=\"vaelab-badge\" href=\"{to['download']}\" download>Download the notebook</a>"
            "</div>")


# ---------------------------------------------------------------- staging the pages

def widget_cells(nb: nbformat.NotebookNode, lesson: str) -> list[int]:
    """Indices of the cells whose stored output is an ipywidget, and of the cells that call a widget
    of ``LIVE`` but hold no output (a lesson saved unexecuted still gets its live widget)."""
    def shows_widget(c) -> bool:
        outputs = c.get("outputs", [])
        return any(WIDGET_MIME in o.get("data", {}) for o in outputs) or \
            (not outputs and live_spec(lesson, c.source) is not None)

    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and shows_widget(c)]


def live_spec(lesson: str, source: str) -> Live | None:
    return next((w for w in LIVE if w.lesson == lesson and any(call in source for call in w.calls)), None)


def widget_id(path: Path, cell: int) -> str:
    return f"{path.stem}-cell{cell}"


def live_html(wid: str, spec: Live, binder: str) -> str:
    return (f"<div class=\"vaelab-live\" data-widget=\"{wid}\" data-title=\"{html.escape(spec.title)}\">"
            f"<p class=\"vaelab-live-note\">{html.escape(spec.title)}: this widget replays frames computed when the "
            f"site was built (no kernel needed). Each knob offers the values that were precomputed; "
            f"<a href=\"{binder}\">on Binder</a> the same widget runs live.</p></div>"
            f"<script src=\"_static/frames/{wid}.js\"></script>")


def dead_html(binder: str) -> str:
    return ("<div class=\"vaelab-widget-note\"><p>An interactive widget appears here when the lesson runs in "
            f"JupyterLab; it needs a live Python kernel. <a href=\"{binder}\">Run this lesson on Binder</a> to move "
            "its controls.</p></div>")


def stage_notebook(path: Path, dest: Path, repo: str, branch: str, live: set[int]) -> None:
    """Copy one lesson into the staging folder with its badges and its widget outputs replaced."""
    nb = nbformat.read(path, as_version=4)
    binder = links(path.name, repo, branch)["binder"]
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is not None:
        title, _, rest = first.source.partition("\n")
        first.source = f"{title}\n\n{badges(path.name, repo, branch)}\n\n{rest}" if title.startswith("# ") \
            else f"{badges(path.name, repo, branch)}\n\n{first.source}"
    lesson = path.name[:2]
    for i in widget_cells(nb, lesson):
        cell = nb.cells[i]
        spec = live_spec(lesson, cell.source) if i in live else None
        body = live_html(widget_id(path, i), spec, binder) if spec else dead_html(binder)
        outputs = [o for o in cell.outputs if WIDGET_MIME not in o.get("data", {})]
        outputs.append(nbformat.v4.new_output("display_data", data={"text/html": body}))
        cell.outputs = outputs
    nbformat.write(nb, dest / path.name)


def index_page(lessons: list[Path], repo: str, branch: str) -> str:
    """The README's story, lesson 00's map (linked), and the table of contents."""
    readme = (ROOT / "README.md").read_text()
    title = next(line for line in readme.splitlines() if line.startswith("# "))
    story = readme.split("\n## ", 1)[0].split("\n", 1)[1]
    # the README's badges are images from other hosts: the links below replace them
    story = "\n".join(line for line in story.splitlines() if not line.lstrip().startswith("[![")).strip()
    story = re.sub(r"!\[([^\]]*)\]\((?:https?:)?//[^)]*\)", r"\1", story)
    start = next((p for p in lessons if p.name.startswith("00")), None)
    course_map = ""
    if start is not None:
        cell = next((c for c in nbformat.read(start, as_version=4).cells
                     if c.cell_type == "markdown" and c.source.lstrip().startswith("## The map")), None)
        if cell is not None:
            by_number = {p.name[:2]: p.name for p in lessons}

            def link(m: re.Match) -> str:
                name = by_number.get(m.group(1))
                return f"| {m.group(1)} | [{m.group(2).strip()}]({name}) |" if name else m.group(0)

            course_map = re.sub(r"^\| (\d\d) \| ([^|]+) \|", link, cell.source, flags=re.M)
    to = links(start.name if start else "00_start_here.ipynb", repo, branch)
    toc = "\n".join(p.stem for p in lessons)
    return f"""{title}

{story}

<div class="vaelab-badges"><a class="vaelab-badge" href="{to['binder']}">Run the course on Binder</a><a class="vaelab-badge" href="{to['student']}">Exercises on Binder (student edition)</a><a class="vaelab-badge" href="https://github.com/{repo}">Source on GitHub</a></div>

Every page here is a lesson notebook as it was last run and checked by the tests. Three widgets work
on this site without a kernel, from frames computed when the site was built: the EM stepper of lesson 01,
the "K → ∞" slider of lesson 02 and the β × prior dashboard of lesson 04. To run the code, open a lesson
on Binder or clone the repository and run `make lab`. Teaching it? Read the [instructor guide](instructors.md).

{course_map}

```{{toctree}}
:hidden:
:maxdepth: 1

{toc}
instructors
```
"""


def stage(src: Path, repo: str, branch: str, live: dict[str, set[int]]) -> list[Path]:
    if src.exists():
        shutil.rmtree(src)
    (src / "_static").mkdir(parents=True)
    (src / "_extra" / "notebooks").mkdir(parents=True)
    lessons = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    for path in lessons:
        stage_notebook(path, src, repo, branch, live.get(path.name, set()))
        shutil.copy2(path, src / "_extra" / "notebooks" / path.name)  # "Download the notebook"
    (src / "index.md").write_text(index_page(lessons, repo, branch))
    guide = NOTEBOOKS / "INSTRUCTORS.md"
    if guide.exists():
        shutil.copy2(guide, src / "instructors.md")
    for asset in (HERE / "static").iterdir():
        shutil.copy2(asset, src / "_static" / asset.name)
    copy_mathjax(src / "_static" / "mathjax")
    return lessons


def copy_mathjax(dest: Path) -> None:
    """MathJax 3's TeX → CommonHTML bundle, its web fonts and TeX extensions, from the PyPI package
    sphinx-mathjax-offline (the site extra); only what a page loads, not the whole distribution."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.submodule_search_locations is None:
        raise SystemExit("MathJax is missing: install the site tools with `pip install -e '.[site]'` (make setup does)")
    base = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    dest.mkdir(parents=True)
    shutil.copy2(base / "tex-chtml.js", dest / "tex-chtml.js")
    for part in ("output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y"):
        if (base / part).is_dir():
            shutil.copytree(base / part, dest / part)


# ---------------------------------------------------------------- frames (worker processes)

def _source_digest(notebook: Path, cell: int, spec: Live) -> str:
    """What a widget's frames depend on: the code cells that build it, vaelab's code, the frame recorder."""
    sys.path.insert(0, str(HERE))
    import frames

    nb = nbformat.read(notebook, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    sources = [frames.python_source(nb.cells[i].source) for i in code]
    h = hashlib.sha256()
    for k in frames.needed_cells(sources, code.index(cell)):
        h.update(sources[k].encode())
    for path in sorted((ROOT / "vaelab").rglob("*.py")) + [HERE / "frames.py"]:
        h.update(path.read_bytes())
    h.update(repr((spec.choose, spec.max_frames)).encode())
    return h.hexdigest()[:20]


def small_png(png: bytes) -> bytes:
    """The same figure as a 256-colour palette PNG: about a third of the bytes, no visible change."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    out = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(out, format="PNG")
    return out.getvalue() if out.tell() < len(png) else png


def make_frames(notebook: str, cell: int, spec: Live, cache: str) -> dict:
    """Worker: build the widget with the lesson's code, record its frames into ``cache``; return a summary."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    import frames

    path, cache_dir = Path(notebook), Path(cache)
    key = _source_digest(path, cell, spec)
    done = cache_dir / key / "manifest.json"
    if done.exists():
        summary = json.loads(done.read_text())
        summary["cached"] = True
        return summary
    widget, ran, build_s = frames.run_widget_cell(path, cell)
    recorded = frames.record(widget, choose=spec.choose, max_frames=spec.max_frames)
    folder = cache_dir / key
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    wid = widget_id(path, cell)
    paths = {}
    for k, png in recorded.pngs.items():
        png = small_png(png)
        name = f"{frames.digest(png)}.png"
        (folder / name).write_bytes(png)  # equal frames are one file
        paths[k] = f"_static/frames/{wid}/{name}"
    summary = {"widget": wid, "title": spec.title, "cells_run": ran, "build_s": round(build_s, 1),
               "record_s": round(recorded.seconds, 1), "n_frames": len(recorded.pngs),
               "controls": [f"{c.description}: {len(c.values)}" for c in recorded.controls],
               "manifest": recorded.manifest(paths), "key": key, "cached": False}
    done.write_text(json.dumps(summary))
    return summary


def place_frames(summary: dict, cache: Path, out: Path) -> int:
    """Copy a widget's frames into the site and write the script that hands them to the page; bytes written."""
    key = summary["key"]
    dest = out / "_static" / "frames" / summary["widget"]
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    size = 0
    for png in (cache / key).glob("*.png"):
        shutil.copy2(png, dest / png.name)
        size += png.stat().st_size
    script = f"(window.vaelabFrames = window.vaelabFrames || {{}})[{json.dumps(summary['widget'])}] = " \
             f"{json.dumps(summary['manifest'], ensure_ascii=False)};\n"
    (out / "_static" / "frames" / f"{summary['widget']}.js").write_text(script, encoding="utf-8")
    return size + len(script.encode())


# ---------------------------------------------------------------- checks on the result

EXTERNAL = re.compile(r"""<(?:script|img|iframe|source|audio|video)\b[^>]*\bsrc=["']?(?:https?:)?//"""
                      r"""|<link\b[^>]*\bhref=["']?(?:https?:)?//[^>]*>|url\(\s*["']?(?:https?:)?//|@import\s+["']?(?:https?:)?//""",
                      re.I)


def external_references(out: Path) -> list[str]:
    """Places where a page would load something from another host (a link to click is fine)."""
    found = []
    for path in sorted(out.rglob("*")):
        if path.suffix in (".html", ".css") and path.is_file():
            for m in EXTERNAL.finditer(path.read_text(errors="replace")):
                if path.suffix == ".html" and m.group(0).lower().startswith("<link") and \
                        not re.search(r"rel=[\"']?(stylesheet|preload|icon|modulepreload)", m.group(0), re.I):
                    continue
                found.append(f"{path.relative_to(out)}: {m.group(0)[:120]}")
    return found


def page_weights(out: Path) -> dict[str, int]:
    """Bytes of each page and of the local files it references (scripts, styles, images) on first view."""
    weights = {}
    ref = re.compile(r"""(?:src|href)=["']([^"'#?]+)""")
    for page in sorted(out.glob("*.html")):
        text = page.read_text(errors="replace")
        total, seen = page.stat().st_size, set()
        for m in ref.finditer(text):
            target = (page.parent / m.group(1)).resolve()
            tag_start = text.rfind("<", 0, m.start())
            tag = text[tag_start:m.start()]
            if tag.startswith("<a ") or target in seen or not target.is_file() or target.suffix == ".html":
                continue
            seen.add(target)
            total += target.stat().st_size
        weights[page.name] = total
    return weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "site"))
    parser.add_argument("--no-frames", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    out = Path(args.out).resolve()
    work = ROOT / "build"
    src, doctrees, cache = work / "site-src", work / "site-doctrees", work / "site-cache"
    repo, branch = repository()

    todo = []  # (notebook, cell, spec) of every widget that goes live
    if not args.no_frames:
        for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            for i in widget_cells(nb, path.name[:2]):
                spec = live_spec(path.name[:2], nb.cells[i].source)
                if spec is not None:
                    todo.append((path, i, spec))
    pool = futures.ProcessPoolExecutor(max_workers=max(1, args.jobs)) if todo else None
    jobs = {pool.submit(make_frames, str(p), i, s, str(cache)): (p, i, s) for p, i, s in todo} if pool else {}

    lessons = stage(src, repo, branch, {p.name: {i for q, i, _ in todo if q == p} for p, _, _ in todo})
    if out.exists():
        shutil.rmtree(out)
    from sphinx.cmd.build import build_main

    sphinx_start = time.perf_counter()
    status = build_main(["-b", "html", "-q", "-c", str(HERE), "-d", str(doctrees), str(src), str(out)])
    sphinx_s = time.perf_counter() - sphinx_start
    if status:
        print(f"sphinx-build failed (exit {status})", file=sys.stderr)
        return status

    failed = []
    frame_bytes = {}
    for job in futures.as_completed(jobs):
        path, cell, spec = jobs[job]
        try:
            summary = job.result()
        except Exception as error:  # one widget failing leaves its page with a note, not the whole site down
            failed.append(f"{path.name} cell {cell} ({spec.title}): {type(error).__name__}: {error}")
            continue
        frame_bytes[summary["widget"]] = place_frames(summary, cache, out)
        how = "from the cache" if summary["cached"] else \
            f"built in {summary['build_s']} s (cells {summary['cells_run']}), recorded in {summary['record_s']} s"
        print(f"live widget {summary['widget']} ({summary['title']}): {summary['n_frames']} frames "
              f"[{', '.join(summary['controls'])}], {frame_bytes[summary['widget']] / 1e6:.1f} MB, {how}")
    if pool:
        pool.shutdown()
    (out / ".nojekyll").touch()  # GitHub Pages: serve _static/ as it is

    external = external_references(out)
    if external:
        print("pages would load from another host:\n  " + "\n  ".join(external), file=sys.stderr)
        return 1
    weights = page_weights(out)
    for name, size in weights.items():
        print(f"  {name:<42} {size / 1e6:5.2f} MB on first view")
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"site: {len(lessons)} lessons, {total / 1e6:.1f} MB in {out} | sphinx {sphinx_s:.1f} s, "
          f"total {time.perf_counter() - start:.1f} s")
    if failed:
        print("widgets left without frames (their pages say so):\n  " + "\n  ".join(failed), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
