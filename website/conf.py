"""Sphinx configuration of the course website (``make site``; website/build.py stages the sources).

Pages come from the committed, executed notebooks as they are: MyST-NB renders their stored
outputs and never runs them. Everything a page loads is served from the site itself (MathJax,
the theme's CSS and JS, the widget frames), so it reads offline, from a USB stick or a disk.
"""
from pathlib import Path

project = "vaelab"
author = "the vaelab authors"
copyright = "vaelab authors, MIT licence"

extensions = ["myst_nb"]
# the stored outputs are what the tests check (nbval): show them, never re-execute
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3  # INSTRUCTORS.md links to its own sections by their slugs
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

exclude_patterns = ["_static", "_extra"]
html_theme = "furo"
html_title = "vaelab: from a finite mixture to the VAE"
html_copy_source = False
html_show_sourcelink = False
html_static_path: list[str] = []  # the staged _static folder, added below once the source folder is known
html_css_files = ["vaelab-site.css"]
html_js_files = ["vaelab-frames.js"]
html_extra_path: list[str] = []
# MathJax 3 from the site itself (website/build.py copies it under _static/mathjax)
mathjax_path = "mathjax/tex-chtml.js"
# furo serves its own CSS/JS and uses the system's fonts: nothing is fetched from elsewhere
html_theme_options = {"navigation_with_keys": True}


def _static_from_source(app, config):
    source = Path(app.srcdir)
    config.html_static_path = [str(source / "_static")]
    if (source / "_extra").is_dir():
        config.html_extra_path = [str(source / "_extra")]


def setup(app):
    app.connect("config-inited", _static_from_source)
