"""Sphinx configuration for skdml's documentation.

Build with ``make docs`` (warnings are errors). The build needs no network: cross-links to
other projects' docs (intersphinx) are fetched only when ``SKDML_DOCS_INTERSPHINX=1`` is set,
and the example gallery is rendered without running the examples (CI runs them separately with
``make examples``).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Import the checkout's skdml even when it is not installed in the build environment.
sys.path.insert(0, str(HERE.parent))

import skdml  # noqa: E402

# -- Project ------------------------------------------------------------------------------------
project = "skdml"
author = "skdml developers"
copyright = "skdml developers"  # noqa: A001 - Sphinx's name
release = skdml.__version__
version = ".".join(release.split(".")[:2])

# -- General ------------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path: list[str] = []
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb"]
default_role = "literal"

# -- autodoc / autosummary / numpydoc -----------------------------------------------------------
autosummary_generate = True  # stubs go to docs/generated/ (git-ignored), per ``:toctree:``
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # signatures show the numpydoc Parameters section, not annotations
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# numpydoc_validation_checks is left unset (no validation during the build); the docstring
# rules live in STYLE.md section 9.

# -- intersphinx (opt-in: it downloads inventories) ---------------------------------------------
if os.environ.get("SKDML_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "dask": ("https://docs.dask.org/en/stable", None),
        "distributed": ("https://distributed.dask.org/en/stable", None),
        "xarray": ("https://docs.xarray.dev/en/stable", None),
    }
else:
    intersphinx_mapping = {}

# -- sphinx-gallery -----------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    # Every .py file in examples/ is rendered; none is executed here (``make examples`` runs
    # them). Override with ``sphinx-build -D plot_gallery=1`` to execute them.
    "plot_gallery": "False",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "write_computation_times": False,
    "min_reported_time": 0,
}

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skdml {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
