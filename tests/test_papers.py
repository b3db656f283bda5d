"""Paper cards: every card's --quick run (through the CLI, once, shared by the tests below),
the CardResult record, the verdict rule, the table / JSON / page outputs, bad input.

The quick runs are how the cards run in CI (.ci/run runs this file through the README's
pytest command). Cards that train need the real data (INITLAB_DATA_DIR); without it only
the cards that run on random inputs are run.
"""

from __future__ import annotations

import json
import math
import os
import pkgutil
from pathlib import Path

import pytest

from initlab import papers
from initlab.cli import main
from initlab.errors import InitlabError, UnknownNameError
from initlab.papers.card import CardResult, Check, verdict_of

DATA = os.environ.get("INITLAB_DATA_DIR")


def _available() -> list[str]:
    return [c.name for c in papers.all_cards() if DATA or not c.needs_data]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, CardResult], str]:
    """``initlab paper <cards> --quick --out DIR --json`` once: (DIR, results by card, stdout)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("papers") / "out"
    buf = io.StringIO()
    argv = ["paper", *_available(), "--quick", "--out", str(out), "--json"]
    if DATA:
        argv += ["--data-dir", DATA]
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    assert rc == 0
    text = buf.getvalue()
    results = {d["card"]: CardResult.from_dict(d) for d in json.loads(text)["cards"]}
    return out, results, text


@pytest.mark.parametrize("name", [c.name for c in papers.all_cards()])
def test_quick_card(name: str, quick_run: tuple[Path, dict[str, CardResult], str]) -> None:
    card = papers.get_card(name)
    if card.needs_data and not DATA:
        pytest.skip("INITLAB_DATA_DIR is not set")
    out, results, _ = quick_run
    r = results[name]
    assert r.quick and r.card == name and r.claim == card.claim and r.criterion == card.criterion
    assert r.settings == dict(card.quick)
    assert r.verdict in papers.VERDICTS and r.checks
    assert r.verdict == verdict_of(r.checks, quick=True)
    # a quick run judges something (its direction checks) and says why it leaves the rest
    assert any(c.passed is not None for c in r.checks), [c.name for c in r.checks]
    assert all(c.note for c in r.checks if c.passed is None)
    assert r.wall_s > 0  # the 60 s budget is benchmarks/bench_papers.py --quick's, not a timed test's
    assert r.figures and all((out / f).is_file() and (out / f).stat().st_size > 1000 for f in r.figures)
    assert r.ours and r.values


def test_quick_outputs(quick_run: tuple[Path, dict[str, CardResult], str]) -> None:
    out, results, text = quick_run
    assert list(results) == _available()  # in card order
    on_disk = json.loads((out / "results.json").read_text())
    assert [d["card"] for d in on_disk["cards"]] == list(results)
    page = (out / "papers.html").read_text()
    for name in results:
        assert f'id="card-{name}"' in page
    assert 'id="summary"' in page and page.count("data:image/png;base64,") >= len(results)


def test_result_round_trip(quick_run: tuple[Path, dict[str, CardResult], str]) -> None:
    for r in quick_run[1].values():
        d = r.to_dict()
        json.dumps(d, allow_nan=False)  # strict JSON: NaN and infinities are strings
        again = CardResult.from_json(r.to_json())
        assert again.to_dict() == d
        assert again.checks == r.checks and again.figures == r.figures


def test_round_trip_keeps_non_finite_numbers() -> None:
    r = CardResult(card="x", title="t", claim="c", citation="s", figure="f", paper_value="p", criterion="k",
                   quick=False, verdict="fail", ours="o",
                   checks=(Check("a", "a < 1", "inf", False), Check("b", "b", "1", True, "n")),
                   values={"t": math.inf, "n": [math.nan, 1.0]}, wall_s=1.5)
    back = CardResult.from_json(r.to_json())
    assert back.values["t"] == math.inf and math.isnan(back.values["n"][0]) and back.values["n"][1] == 1.0
    assert back.checks == r.checks and back.verdict == "fail" and back.wall_s == 1.5


@pytest.mark.parametrize("bad, needle", [
    ({"card": "x", "verdict": "maybe"}, "verdict"),
    ({"card": "x", "bogus": 1}, "unknown field"),
    ([1, 2], "not a card result"),
])
def test_result_from_bad_dict(bad: object, needle: str) -> None:
    with pytest.raises(InitlabError, match=needle):
        CardResult.from_dict(bad)  # type: ignore[arg-type]


def test_verdict_rule() -> None:
    ok, bad, unj = Check("a", "", "", True), Check("b", "", "", False), Check("c", "", "", None, "small")
    assert verdict_of([ok], quick=False) == "pass"
    assert verdict_of([ok, bad], quick=False) == "fail"
    assert verdict_of([ok, unj], quick=True) == "not judged"
    assert verdict_of([bad, unj], quick=True) == "fail"
    assert verdict_of([ok, unj], quick=False) == "fail"  # a full run must judge every check


def test_registry_lists_exactly_the_card_files() -> None:
    from initlab.papers import cards

    files = {m.name for m in pkgutil.iter_modules(cards.__path__) if not m.name.startswith("_")}
    assert set(papers.card_names()) == files
    assert papers.card_names()[:10] == ["article", "he2015", "glorot2010", "saxe2014", "schoenholz2017",
                                        "pennington2017", "lsuv2016", "xiao2018", "fixup2019", "mup2021"]
    for card in papers.all_cards():  # each card states its claim, source and criterion before running
        assert card.claim and card.citation and card.figure and card.criterion and card.scaled_down
        module = __import__(f"initlab.papers.cards.{card.name}", fromlist=["CARD"])
        assert module.__doc__ and ("Quick" in module.__doc__ or "quick" in module.__doc__)
        assert "Fig" in module.__doc__ or "Table" in module.__doc__ or "figure" in module.__doc__


def test_list_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["paper", "--list"]) == 0
    listed = capsys.readouterr().out
    for name in papers.card_names():
        assert name in listed
    from initlab.papers.table import render_table

    r = CardResult(card="he2015", title="t", claim="claim words", citation="s", figure="f", paper_value="~2^-15",
                   criterion="k", quick=True, verdict="not judged", ours="2^-14.6", checks=(), wall_s=3.0)
    table = render_table([r])
    head = table.splitlines()[0].split()
    assert head[:3] == ["card", "claim", "paper's"] and "verdict" in head
    assert "he2015" in table and "~2^-15" in table and "2^-14.6" in table and "not judged" in table


def test_resolve_all_and_order() -> None:
    assert [c.name for c in papers.resolve(["all"])] == papers.card_names()
    assert [c.name for c in papers.resolve(["lsuv2016", "he2015", "lsuv2016"])] == ["lsuv2016", "he2015"]


@pytest.mark.parametrize("argv, needle", [
    (["paper", "he2016"], "did you mean he2015"),
    (["paper", "--list", "he2015"], "--list takes no card names"),
    (["paper", "pennington2017", "--device", "tpu"], "--device"),
])
def test_bad_input_one_line_exit_2(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_out_not_writable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["paper", "pennington2017", "--quick", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root writes anywhere
            pytest.skip("running as root: a read-only directory is writable")
        assert main(["paper", "pennington2017", "--quick", "--out", str(ro / "x")]) == 2
        assert "--out" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)
    assert not any(tmp_path.glob("file/*"))


def test_unknown_name_error_type() -> None:
    with pytest.raises(UnknownNameError, match="choose from article"):
        papers.get_card("nope")


def test_xiao2018_jacobian_is_the_chain_rule() -> None:
    """The card's float64 layer-by-layer Jacobian equals autograd's on a small conv stack
    with non-zero biases (float64 both; 1e-12 absolute on entries of order 0.1)."""
    import torch

    import initlab
    from initlab.papers.cards import xiao2018

    model = xiao2018.conv_stack(4, 2, 3)
    initlab.apply(model, "normal_recipe", seed=0)
    gen = torch.Generator().manual_seed(1)
    for m in model:
        if isinstance(m, torch.nn.Conv2d):
            with torch.no_grad():
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    x = 0.5 * torch.randn(2, 3, 3, generator=gen)
    ours = xiao2018.jacobian(model, x)
    double = model.double()
    ref = torch.autograd.functional.jacobian(lambda z: double(z.unsqueeze(0)).reshape(-1), x.double()).reshape(18, 18)
    assert ours.shape == (18, 18) and float(ref.abs().max()) > 0.01
    assert torch.allclose(ours, ref, atol=1e-12, rtol=0)


def test_training_cards_count_divergence_as_infinite_loss() -> None:
    from types import SimpleNamespace

    from initlab.papers.cards import fixup2019
    from initlab.records import CellStatus

    ep = [SimpleNamespace(epoch=0, train_loss=math.nan), SimpleNamespace(epoch=1, train_loss=1.25)]
    done = SimpleNamespace(status=CellStatus.DONE, epochs=ep)
    gone = SimpleNamespace(status=CellStatus.DIVERGED, epochs=ep[:1])
    f = fixup2019._final_train_loss
    assert f(done) == 1.25 and f(gone) == math.inf


def test_mup2021_is_initlabs_coordinate_check_with_its_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """The card runs initlab's coordcheck (no second implementation) and its checks are the
    coordcheck's own stable / blows-up verdicts."""
    from types import SimpleNamespace

    import torch

    import importlib

    import initlab.data
    from initlab.papers.cards import mup2021

    cc = importlib.import_module("initlab.probe.coordcheck")  # initlab.probe is also a function's name

    x = torch.randn(80, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (80,), generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(initlab.data, "load_dataset",
                        lambda *a, **k: SimpleNamespace(train=SimpleNamespace(x=x, y=y)))
    calls = []
    real = cc.coordcheck

    def spy(*a, **k):
        calls.append((a, k))
        return real(*a, **k)

    monkeypatch.setattr(cc, "coordcheck", spy)
    ctx = SimpleNamespace(data_dir=None, quick=False, figure=lambda fig, name, alt: None)
    m = mup2021.measure({"widths": [4, 8], "steps": 1, "seeds": 1, "n_train": 80}, ctx)
    assert len(calls) == 1 and calls[0][0][0] == "cnn" and calls[0][1]["optimizer"] == "adam"
    r = m.values["coordcheck"]
    assert [c.passed for c in m.checks] == [r["verdict"]["mup_stable"], r["verdict"]["sp_blows_up"]]
    assert m.values["separates"] == r["verdict"]["separates"]
    card = mup2021.CARD
    assert "0.2" in card.criterion and "0.4" in card.criterion and cc.STABLE_SLOPE == 0.2 and cc.GROWTH_SLOPE == 0.4


def test_xiao2018_training_counts_divergence_as_chance() -> None:
    from types import SimpleNamespace

    from initlab.papers.cards import xiao2018
    from initlab.records import CellStatus

    ep = [SimpleNamespace(epoch=0, train_loss=math.nan, val_acc=0.1),
          SimpleNamespace(epoch=1, train_loss=0.75, val_acc=0.7)]
    assert xiao2018._final(SimpleNamespace(status=CellStatus.DONE, epochs=ep)) == (0.75, 0.7)
    assert xiao2018._final(SimpleNamespace(status=CellStatus.DIVERGED, epochs=ep[:1])) == (math.inf, 0.1)
    s = xiao2018._spread_inf([1.0, math.inf])
    assert s.mean == math.inf and math.isnan(s.std) and s.n == 2


def test_fixup2019_spread_of_a_diverged_seed() -> None:
    from initlab.papers.cards import fixup2019

    s = fixup2019._spread([1.0, math.inf])
    assert s.mean == math.inf and math.isnan(s.std) and s.n == 2
    assert fixup2019._spread([1.0, 2.0]).mean == 1.5
