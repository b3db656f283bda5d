"""initlab coordcheck (initlab.probe.coordcheck): the slope verdict (of std(x_t - x_0), TP5
Figure 5's quantity) separates SP from muP on a small sweep; the CLI writes a figure and JSON
with microsoft/mup's default learning rates; bad input is one line, exit 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from initlab.cli import main
from initlab.errors import InitlabError
from initlab.probe.coordcheck import (
    GROWTH_SLOPE, STABLE_SLOPE, CoordCheckResult, coordcheck, parse_widths, slope,
)


def test_slope_and_widths() -> None:
    assert slope([1, 2, 4, 8], [3.0, 6.0, 12.0, 24.0]) == pytest.approx(1.0)
    assert slope([128, 4096], [2.0, 2.0]) == pytest.approx(0.0)
    assert math.isnan(slope([1, 2], [1.0, 0.0]))
    assert parse_widths("2^7..2^12") == (128, 256, 512, 1024, 2048, 4096)
    assert parse_widths("32, 64,128") == (32, 64, 128)
    for bad in ("", "128", "256,128", "a,b", "0,4", "2^9..2^7", "64,64"):
        with pytest.raises(InitlabError, match="widths"):
            parse_widths(bad)


def test_small_coordcheck_separates_sp_from_mup() -> None:
    """Widths 2^5..2^8, 4 Adam steps: the change of SP's hidden and output coordinates grows
    with width (slope >= 0.4), muP's stays put (|slope| <= 0.2) at every layer."""
    r = coordcheck("mlp", [32, 64, 128, 256], steps=4, lr=0.03, seeds=2, batch_size=128, depth=2)
    assert r.layers == [("1", "input"), ("3", "hidden"), ("5", "output")]
    assert r.mup == "mup(base_width=32)" and r.base == "he_normal"
    assert r.blows_up("sp") and not r.stable("sp")
    assert r.stable("mup") and not r.blows_up("mup")
    assert r.separates and "separates SP from muP" in r.verdict()
    assert all(abs(v) <= STABLE_SLOPE for v in r.slopes["mup"].values())
    assert r.slopes["sp"]["5"] >= GROWTH_SLOPE and r.slopes["sp"]["3"] >= GROWTH_SLOPE
    # the zero readout: muP's logits are exactly 0 at init, SP's are not
    assert all(row[0] == 0.0 for row in r.coords["mup"]["5"])
    assert all(row[0] > 0 for row in r.coords["sp"]["5"])
    # the change: 0 at init; muP's hidden layers do not move in the first step (the zero readout
    # passes them no gradient), its readout does
    assert r.measure == "std(x_t - x_0)"
    assert all(row[0] == 0.0 for p in ("sp", "mup") for rows in r.changes[p].values() for row in rows)
    assert all(row[1] == 0.0 for n in ("1", "3") for row in r.changes["mup"][n])
    assert all(row[1] > 0 for row in r.changes["mup"]["5"]) and all(row[1] > 0 for row in r.changes["sp"]["3"])
    assert all(math.isnan(v[0]) for v in r.slopes_by_step["sp"].values())
    assert r.slopes["sp"] == {n: v[-1] for n, v in r.slopes_by_step["sp"].items()}
    d = r.to_dict()
    assert d["verdict"]["separates"] is True and d["thresholds"] == {"stable": 0.2, "growth": 0.4}
    assert d["measure"] == "std(x_t - x_0)" and d["fix_data"] is False
    assert d["changes"]["sp"]["5"][0][0] == 0.0 and len(d["size_slopes_by_step"]["mup"]["5"]) == 5


def test_fix_data_trains_and_measures_one_batch() -> None:
    """fix_data (microsoft/mup's default): every step trains on the first batch_size inputs and
    the coordinates are taken on that batch, so n_probe does not matter; without it, it does."""
    kw = dict(widths=[8, 16], steps=2, seeds=1, batch_size=16, depth=1, lr=0.01)
    a, b = coordcheck("mlp", fix_data=True, n_probe=32, **kw), coordcheck("mlp", fix_data=True, n_probe=64, **kw)
    assert a.fix_data and a.changes == b.changes and a.coords == b.coords
    c, d = coordcheck("mlp", n_probe=32, **kw), coordcheck("mlp", n_probe=64, **kw)
    assert c.coords != d.coords
    with pytest.raises(InitlabError, match="batch_size"):
        coordcheck("mlp", fix_data=True, data=(torch.zeros(8, 784), torch.zeros(8, dtype=torch.long)), **kw)


def test_verdict_logic() -> None:
    r = CoordCheckResult("mlp", [1, 2], 1, 0.1, "adam", "synthetic", 1, 8, "he_normal", "mup",
                         [("a", "input"), ("b", "hidden"), ("c", "output")])
    r.slopes = {"sp": {"a": 0.0, "b": 0.5, "c": 0.9}, "mup": {"a": 0.0, "b": 0.1, "c": -0.15}}
    assert r.separates
    r.slopes["sp"]["b"] = 0.3  # no hidden layer grows: SP does not blow up
    assert not r.separates
    r.slopes["sp"]["b"] = 0.5
    r.slopes["mup"]["c"] = 0.25  # muP's readout grows: not stable
    assert not r.separates and "does NOT separate" in r.verdict()


def test_cli_synthetic_json_and_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fig = tmp_path / "figs" / "cc.png"
    rc = main(["coordcheck", "--synthetic", "--widths", "16,32", "--steps", "1", "--seeds", "1", "--depth", "1",
               "--batch-size", "16", "--figure", str(fig), "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["widths"] == [16, 32] and d["figure"] == str(fig) and fig.read_bytes()[:4] == b"\x89PNG"
    assert set(d["slopes"]) == {"sp", "mup"} and len(d["coords"]["sp"]["1"]) == 2
    assert d["lr"] == 1e-3 and d["fix_data"] is False  # microsoft/mup get_coord_data's Adam default
    rc = main(["coordcheck", "--synthetic", "--widths", "16,32", "--steps", "1", "--seeds", "1", "--depth", "1",
               "--batch-size", "16", "--optimizer", "sgd", "--fix-data", "--no-figure", "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert d["lr"] == 0.1 and d["optimizer"] == "sgd" and d["fix_data"] is True and d["figure"] is None
    rc = main(["coordcheck", "--synthetic", "--family", "cnn", "--widths", "4,8", "--steps", "1", "--seeds", "1",
               "--depth", "1", "--batch-size", "8", "--no-figure"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "head" in out and "separate" in out


@pytest.mark.parametrize("argv, words", [
    (["--widths", "128"], "widths"),
    (["--widths", "2^9..2^7"], "widths"),
    (["--widths", "a,b"], "widths"),
    (["--family", "mpl"], "mlp"),
    (["--steps", "0"], "--steps"),
    (["--lr", "-1"], "--lr"),
    (["--base", "he_nromal"], "he_normal"),
    (["--base", "zeros"], "base"),
    (["--base-width", "0"], "--base-width"),
    (["--figure", "/"], "directory"),
])
def test_cli_bad_input(argv: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["coordcheck", "--synthetic", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("initlab: error:") and err.count("\n") == 1 and words in err
