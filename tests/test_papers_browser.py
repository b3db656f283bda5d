"""The "Paper cards" page renders in headless Chromium: no console errors, every card's
section present, its figures loaded (the page's capture counts failed image loads).

Built from CardResults made here (one passing, one failing, one quick card not judged)
with a real matplotlib figure, so no card runs. Skipped without Chromium (``.ci/run``
installs it), as tests/test_report_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from initlab.papers.card import CardResult, Check
from initlab.papers.page import build_page

from test_report_browser import CHROMIUM, rendered_dom

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def _result(name: str, verdict: str, out: Path, quick: bool = False) -> CardResult:
    from initlab.report.plotting import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 2.5))
    x = np.arange(1, 31)
    ax.semilogy(x, 0.5 ** x, "o-", color="tab:blue")
    ax.semilogy(x, np.ones_like(x, dtype=float), "o-", color="tab:red")
    rel = f"figures/{name}_fig.png"
    save_png(fig, out / rel, f"{name} figure")
    passed = {"pass": True, "fail": False, "not judged": None}[verdict]
    return CardResult(card=name, title=f"title of {name}", claim=f"the claim of {name} <b>not bold</b>",
                      citation="Someone (2015)", figure="Fig. 3", paper_value="about 2^-15", criterion="x <= 1",
                      quick=quick, verdict=verdict, ours="2^-14.6",
                      checks=(Check("first", "x <= 1", "0.5", True), Check("second", "y", "3", passed,
                                                                           "quick: too small" if passed is None else "")),
                      figures=(rel,), wall_s=12.0)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("paperpage")
    results = [_result("alpha", "pass", out), _result("beta", "fail", out), _result("gamma", "not judged", out, True)]
    return build_page(results, out)


def test_paper_page_renders_without_errors(page: Path, tmp_path: Path) -> None:
    dom = rendered_dom(page, tmp_path / "p1")
    for section in ("summary", "card-alpha", "card-beta", "card-gamma"):
        assert re.search(rf'<section id="{section}" data-section="{section}">', dom), section
    assert dom.count("<img") == 3
    assert "&lt;b&gt;not bold&lt;/b&gt;" in dom  # card text is escaped
    assert 'class="text flag"' in dom or 'class="flag"' in dom  # the failing verdict is marked
