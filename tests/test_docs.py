"""The documentation site's generated pages (docs/site/_ext/initlab_docgen.py).

The site itself is built with warnings as errors in .ci/run (``sphinx -W``); these tests
check what the generator writes: the scheme catalogue lists every registered scheme with
its formula, source, law and aliases; the CLI reference has every command; each notebook
has its tutorial page.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import initlab

SITE = Path(__file__).parent.parent / "docs" / "site"


def _docgen():
    spec = importlib.util.spec_from_file_location("initlab_docgen", SITE / "_ext" / "initlab_docgen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _sections(text: str, underline: str) -> list[str]:
    lines = text.splitlines()
    return [lines[i - 1] for i in range(1, len(lines))
            if lines[i] and set(lines[i]) == {underline} and len(lines[i]) == len(lines[i - 1])]


def test_the_scheme_catalogue_lists_every_registered_scheme() -> None:
    text = _docgen().scheme_catalogue()
    assert _sections(text, "-") == initlab.scheme_names()
    # each with its formula, source, law and aliases (e.g. He's normal and its dialects)
    he = text.split("\nhe_normal\n---------\n", 1)[1].split("\n.. _scheme-", 1)[0]
    s = initlab.get_scheme("he_normal")
    assert " ".join(s.formula.split()) in he and s.source.split()[0] in he
    assert s.law((256, 784)).describe() in he and "torch:kaiming_normal" in he


def test_a_registered_plugin_scheme_joins_the_catalogue(tmp_path) -> None:
    from initlab.schemes.registry import _ALIASES, _REGISTRY

    plugin = Path(__file__).parent.parent / "examples" / "plugins" / "scaled_normal.py"
    before = dict(_REGISTRY), dict(_ALIASES)
    try:
        initlab.load_plugin(plugin)
        names = _sections(_docgen().scheme_catalogue(), "-")
        assert names == initlab.scheme_names() and "scaled_normal" in names
    finally:
        _REGISTRY.clear(), _REGISTRY.update(before[0])
        _ALIASES.clear(), _ALIASES.update(before[1])


def test_the_cli_reference_has_every_command() -> None:
    from initlab.cli import COMMANDS

    text = _docgen().cli_reference()
    assert _sections(text, "-") == ["initlab", *(f"initlab {c}" for c in COMMANDS)]
    assert "--limit-train" in text and "usage: initlab run" in text


def test_every_notebook_has_its_tutorial_page() -> None:
    docgen = _docgen()
    notebooks = sorted(p.name for p in (SITE.parent.parent / "examples" / "notebooks").glob("*.ipynb"))
    assert sorted(docgen.TUTORIALS.values()) == notebooks
    page = docgen.tutorial("why-it-wont-train")
    assert page.count(".. code-block:: python") >= 5 and "initlab.probe" in page
    assert re.search(r"^Why won't it train\?\n=+$", page, re.M)
    toc = (SITE / "tutorials.rst").read_text()
    assert all(f"generated/tutorial-{name}" in toc for name in docgen.TUTORIALS)
