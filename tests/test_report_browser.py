"""The report of a small real run renders in headless Chromium: no console errors, a
non-blank screenshot, every section present, the layer selector working.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped without it. Errors are
caught two ways: the page's own capture script counts ``window.onerror``, failed image
loads and ``console.error`` into ``<html data-errors>`` (read back with ``--dump-dom``),
and Chromium's log on stderr is searched for uncaught exceptions. A deliberately broken
page checks that the capture works in this browser.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from initlab.report import build_report
from initlab.report import html as H
from initlab.report.build import SECTIONS

from test_report import real_run

CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run([CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _uncaught(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "Uncaught" in line or ("CONSOLE" in line and "error" in line.lower())]


def rendered_dom(page: Path, profile: Path) -> str:
    """The DOM of *page* after Chromium loaded it, asserting that it loaded without an
    error: exit 0, the page's ``load`` fired, its error capture counted none, and no
    uncaught exception or console error on stderr."""
    res = _chromium(page, profile, "--dump-dom", "--virtual-time-budget=5000")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-ready="1"' in root, "the page never fired 'load'"
    assert 'data-errors="0"' in root, re.search(r'data-error-messages="([^"]*)"', root)
    assert not _uncaught(res.stderr), _uncaught(res.stderr)
    return dom


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rd = real_run(tmp_path_factory.mktemp("browser") / "run")
    return build_report(rd)


def test_report_renders_without_errors(report: Path, tmp_path: Path) -> None:
    dom = rendered_dom(report, tmp_path / "p1")
    for section in SECTIONS:
        assert re.search(rf'<section id="{section}" data-section="{section}">', dom), section
    # the selector script ran: of the 3 layers' figure blocks exactly one is visible
    blocks = re.findall(r'<div data-layer-group="g1-weights" data-layer="(\d)"( hidden="")?>', dom)
    assert [layer for layer, _ in blocks] == ["1", "2", "3"]
    assert [bool(h) for _, h in blocks] == [False, True, True]
    assert re.search(r'<div class="selector">', dom)  # un-hidden by the script


def test_report_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    res = _chromium(report, tmp_path / "p2", f"--screenshot={shot}", "--window-size=1400,3000",
                    "--virtual-time-budget=5000")
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    img = mpimg.imread(shot)
    assert img.shape[:2] == (3000, 1400)
    gray = img[..., :3].mean(axis=2)
    assert float(gray.std()) > 0.05
    # figures, not just text: a good share of the page is non-white, in several colours
    assert float(np.mean(gray < 0.9)) > 0.05
    q = (img[..., :3] * 15).round().astype(int)
    assert np.unique(q[..., 0] * 256 + q[..., 1] * 16 + q[..., 2]).size > 50


def test_error_capture_detects_a_broken_page(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    body = ('<img src="data:image/png;base64,AAAA" alt="broken">'
            "<script>console.error('boom'); undefinedFunction();</script>")
    page.write_text(H.page("broken", "<h1>broken</h1>", [], body), encoding="utf-8")
    res = _chromium(page, tmp_path / "p3", "--dump-dom", "--virtual-time-budget=2000")
    root = re.search(r"<html[^>]*>", res.stdout).group(0)
    n = int(re.search(r'data-errors="(\d+)"', root).group(1))
    assert n >= 3, root  # console.error, the ReferenceError and the broken image
    assert "undefinedFunction" in root and "failed to load" in root
    assert _uncaught(res.stderr)
