"""Sphinx configuration of nncore's documentation.

The API pages import the installed ``nncore`` (in a source checkout, put ``python/`` on
``PYTHONPATH``); build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``.
"""

import nncore

project = "nncore"
author = "the nncore authors"
release = nncore.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "sphinxarg.ext",
]

exclude_patterns = ["_build", "lab/*/*.csv", "lab/*/*.json"]
root_doc = "index"

# Defaults come from the signatures autodoc shows; each parameter is described once, in its own
# docstring. Class members are listed by autodoc's :members:, not by numpydoc's tables.
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False

# Option names stay as typed: smart quotes would turn the help texts' "--csv" into "–csv".
smartquotes = False

html_theme = "alabaster"
html_theme_options = {"description": "Fast, exact multilayer perceptrons", "fixed_sidebar": True}
html_static_path = []
