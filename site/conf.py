"""Sphinx configuration of the course website (`make site`; staging and build: tools/site.py).

Everything a page needs is served by the site itself: the theme's CSS, JavaScript and icon fonts come with
sphinx-book-theme / pydata-sphinx-theme, and MathJax 3.2.2 with sphinx-mathjax-offline (all pinned in
pyproject.toml's [site] extra).  No page loads anything from a CDN (tests/test_site.py checks it).

Accessibility (WCAG 2.1 AA, checked with axe-core by tests/test_site.py): MathJax writes assistive MathML next to
each formula (screen readers read the MathML; the drawn formula is hidden from them); figures carry the alt text
of their cell (``mystnb.image.alt``, see tools/marking.py); _templates/ fixes the theme's search button's name.
The handout (tools/handout.py) builds this configuration with the singlehtml builder and prints it: print.css.
"""

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import colab  # noqa: E402

_meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

project = "Parameter initialization: vanishing and exploding gradients"
author = "the course authors"
copyright = author
html_title = project
html_short_title = "Parameter initialization"

extensions = ["myst_nb", "sphinx-mathjax-offline"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "student-notebooks"]

# Notebooks are shown with the outputs they have: the committed ones (`make site`) or a fresh full run
# (`make lecture`).  Never executed here.
nb_execution_mode = "off"
# No widget JavaScript from a CDN: tools/site.py replaces widget outputs before the build.
nb_ipywidgets_js = {}
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
# Notebooks write display math inside a paragraph ("... products:\n$$ ... $$\nWith ReLU, ..."), as Jupyter allows.
myst_dmath_double_inline = True
myst_heading_anchors = 3
# Markdown headings inside notebooks may skip a level (## after a title with a link); not a build error.
suppress_warnings = ["myst.header"]

# Screen readers: MathML beside every formula (MathJax's default, stated here so that no update turns it off).
mathjax3_config = {"options": {"menuOptions": {"settings": {"assistiveMml": True}}}}

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
templates_path = ["_templates"]
html_css_files = ["course.css", ("print.css", {"media": "print"})]
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": colab.repository_url(),
    "repository_branch": "main",
    "path_to_docs": "notebooks",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
