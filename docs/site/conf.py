"""Sphinx configuration of initlab's documentation site.

Build (warnings are errors, as in CI)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs/site docs/site/_build/html

The scheme catalogue, the CLI reference and the tutorials are generated from the code and
the notebooks into ``generated/`` before the build (``_ext/initlab_docgen.py``); the API
reference is autodoc over the public API's docstrings.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import initlab  # noqa: E402
import initlab_docgen  # noqa: E402

initlab_docgen.generate(HERE / "generated")

project = "initlab"
author = "the initlab authors"
copyright = "the initlab authors"  # noqa: A001
release = version = initlab.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build", "_ext"]
html_theme = "alabaster"
html_title = f"initlab {release}"
html_theme_options = {"description": "Study, check and choose weight initialization", "fixed_sidebar": True}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
default_role = "literal"
