"""Per-scheme summaries (initlab.study.summary: the math on plain records, the store
adapter, the text/JSON outputs) and ``initlab summary``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from initlab.engine.models import MLPSpec
from initlab.errors import InitlabError
from initlab.records import Divergence, EpochRecord, SchemeSummary
from initlab.study import Store, StudyConfig, render_table, summarize, summary_json
from initlab.study.summary import (
    CellResult,
    cell_results,
    final_value,
    first_epoch_reaching,
    mean_curve,
    scheme_stats,
    summarize_schemes,
)

scipy_stats = pytest.importorskip("scipy.stats")

EPOCHS = 5


def _fill(run_dir: Path, *, models: tuple[MLPSpec, ...] = (MLPSpec(hidden=(8,)),), seeds: int = 4,
          leave_pending: int = 1, seed: int = 0) -> tuple[dict, list]:
    """A synthetic store: random learning curves for schemes a=he_normal, b=zeros.

    Returns (curves by cell key, cell list). For zeros: seed 0 diverges, the last
    ``leave_pending`` seeds are not run, seed 1 stays 'running' (interrupted).
    """
    rng = np.random.default_rng(seed)
    study = StudyConfig(name="syn", schemes=("he_normal", "zeros"), seeds=seeds, models=models,
                        train={"epochs": EPOCHS}).expand()
    curves: dict[str, list[tuple[float, float]]] = {}
    with Store.create(run_dir) as store:
        store.attach(study)
        for c in study.cells:
            if c.scheme == "zeros" and c.seed >= seeds - leave_pending:
                continue
            store.mark_running([c.key])
            start = rng.uniform(0.5, 0.75)
            rate = rng.uniform(0.0, 0.06)
            curve = [(float(start + rate * e), float(rng.uniform(0.3, 0.6))) for e in range(EPOCHS + 1)]
            curves[c.key] = curve
            n = EPOCHS + 1
            diverged = c.scheme == "zeros" and c.seed == 0
            if diverged:
                n = 3
                curve[2] = (0.1, math.nan)
            for e in range(n):
                store.record_epoch(c.key, EpochRecord(0, e, e, math.nan, math.nan, curve[e][1], curve[e][0],
                                                      0.0, 1, diverged and e == n - 1))
            if c.scheme == "zeros" and c.seed == 1:
                continue  # interrupted: stays running
            if diverged:
                store.record_divergence(c.key, Divergence(0, 2, 2, 1, math.nan, "loss"))
            store.mark_finished(c.key)
    return curves, list(study.cells)


def _first_reach(curve: list[tuple[float, float]], threshold: float) -> int | None:
    return next((e for e in range(1, len(curve)) if curve[e][0] >= threshold), None)


def test_summary_math_matches_independent_computation(tmp_path: Path) -> None:
    curves, cells = _fill(tmp_path)
    with Store.open(tmp_path) as store:
        s = summarize(store, threshold=0.8, level=0.9)
    assert s.study == "syn" and s.partial and (s.finished, s.total) == (6, 8)
    assert s.statuses == {"pending": 1, "running": 1, "done": 5, "diverged": 1, "failed": 0}
    he, zeros = s.rows
    assert (he.scheme, zeros.scheme) == ("he_normal", "zeros")

    he_cells = [c for c in cells if c.scheme == "he_normal"]
    acc = np.array([curves[c.key][EPOCHS][0] for c in he_cells])
    loss = np.array([curves[c.key][EPOCHS][1] for c in he_cells])
    for value, ci, sample in ((he.val_acc, he.val_acc_ci, acc), (he.val_loss, he.val_loss_ci, loss)):
        lo, hi = scipy_stats.t.interval(0.9, len(sample) - 1, loc=sample.mean(), scale=scipy_stats.sem(sample))
        assert value == pytest.approx(sample.mean(), rel=1e-12)
        assert ci == pytest.approx((hi - lo) / 2, rel=1e-9)
    hits = [_first_reach(curves[c.key], 0.8) for c in he_cells]
    reached = [h for h in hits if h is not None]
    assert he.reached == len(reached)
    assert (he.epochs_to == pytest.approx(np.mean(reached))) if reached else math.isnan(he.epochs_to)
    assert (he.planned, he.finished, he.n, he.diverged) == (4, 4, 4, 0)

    # zeros: seed 0 diverged, seed 1 interrupted, seed 2 done, seed 3 never ran
    assert (zeros.planned, zeros.finished, zeros.n, zeros.diverged) == (4, 2, 1, 1)
    done = next(c for c in cells if c.scheme == "zeros" and c.seed == 2)
    assert zeros.val_acc == curves[done.key][EPOCHS][0] and math.isnan(zeros.val_acc_ci)


def test_threshold_and_never(tmp_path: Path) -> None:
    curves, cells = _fill(tmp_path, leave_pending=0, seed=3)
    with Store.open(tmp_path) as store:
        never = summarize(store, threshold=1.0)
        low = summarize(store, threshold=0.3)
    assert all(r.reached == 0 and math.isnan(r.epochs_to) for r in never.rows)
    assert "never (0/4)" in render_table(never)
    he = low.rows[0]
    assert he.reached == 4 and he.epochs_to == 1.0  # every curve starts above 0.5
    with Store.open(tmp_path) as store:
        with pytest.raises(InitlabError):
            summarize(store, threshold=0.0)
        with pytest.raises(InitlabError):
            summarize(store, level=1.0)


def _columns(table: str) -> list[list[str]]:
    """Split the body of a rendered table by the spans of its dashed rule."""
    lines = table.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    spans, pos = [], 0
    for dashes in lines[rule].split("  "):
        spans.append((pos, pos + len(dashes)))
        pos += len(dashes) + 2
    rows = []
    for line in [lines[rule - 1], *lines[rule + 1:]]:
        if not line.strip():
            break
        padded = line.ljust(pos)
        assert all(padded[b:b + 2] in ("  ", "") for _, b in spans[:-1]), line
        rows.append([padded[a:b].strip() for a, b in spans])
    return rows


def test_text_table_is_aligned_and_flags_partial(tmp_path: Path) -> None:
    _fill(tmp_path)
    with Store.open(tmp_path) as store:
        text = render_table(summarize(store))
    assert text.splitlines()[0].startswith("study 'syn': PARTIAL, 6/8 cells finished (1 pending, 1 running")
    header, he, zeros = _columns(text)
    assert header[:2] == ["scheme", "seeds"] and header[-1] == "diverged"
    assert he[:2] == ["he_normal", "4/4"] and zeros[:2] == ["zeros", "2/4"]
    assert zeros[-1] == "1" and "+/- n/a" in zeros[2]
    assert "did not diverge" in text and "at least two seeds" in text
    text.encode("ascii")


def test_model_column_appears_for_several_models(tmp_path: Path) -> None:
    _fill(tmp_path, models=(MLPSpec(hidden=(8,)), MLPSpec(hidden=(4,), name="tiny")), seeds=2, leave_pending=0)
    with Store.open(tmp_path) as store:
        s = summarize(store)
    assert [(r.model, r.scheme) for r in s.rows] == [
        ("mlp-8-relu-d0.2", "he_normal"), ("mlp-8-relu-d0.2", "zeros"), ("tiny", "he_normal"), ("tiny", "zeros")]
    header = _columns(render_table(s))[0]
    assert header[:3] == ["model", "scheme", "seeds"]


def test_json_output(tmp_path: Path) -> None:
    _fill(tmp_path)
    with Store.open(tmp_path) as store:
        s = summarize(store)
    d = json.loads(summary_json(s))
    assert d["partial"] is True and d["total"] == 8 and d["finished"] == 6
    assert [r["scheme"] for r in d["rows"]] == ["he_normal", "zeros"]
    assert d["rows"][1]["val_acc_ci"] is None  # NaN -> null
    assert d["rows"][0]["val_acc"] == pytest.approx(s.rows[0].val_acc)


# -- the CLI command ------------------------------------------------------------------


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``initlab.cli.main(argv)``; while sibling commands are still being written (so
    ``main`` cannot import them) the same through argparse with this command only."""
    try:
        from initlab.cli import main

        main_available = True
        from initlab.cli import build_parser

        build_parser()
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("initlab.cli."):
            raise
        main_available = False
    if main_available:
        code = main(argv)
    else:
        from initlab.cli import summary_cmd

        parser = argparse.ArgumentParser(prog="initlab")
        summary_cmd.add_parser(parser.add_subparsers(dest="command"))
        args = parser.parse_args(argv)
        try:
            code = args.func(args)
        except InitlabError as exc:
            print(f"initlab: error: {exc}", file=__import__("sys").stderr)
            code = 2
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_summary_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fill(tmp_path)
    code, out, err = _cli(["summary", str(tmp_path)], capsys)
    assert code == 0 and err == ""
    assert "PARTIAL" in out and "he_normal" in out and "zeros" in out
    code, out, _ = _cli(["summary", str(tmp_path), "--json", "--threshold", "0.5"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["threshold"] == 0.5 and d["rows"][0]["reached"] == 4


def test_cli_summary_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for target, words in ((tmp_path / "missing", "does not exist"), (tmp_path, "no results store")):
        code, out, err = _cli(["summary", str(target)], capsys)
        assert code == 2 and out == ""
        assert err.startswith("initlab: error: ") and words in err and err.count("\n") == 1
    with Store.create(tmp_path / "empty"):
        pass
    code, _, err = _cli(["summary", str(tmp_path / "empty")], capsys)
    assert code == 2 and "holds no study" in err


# -- the summary math on plain records (initlab.study.summary.scheme_stats & co) ----------


def _res(acc: list[float], status: str = "done", loss: list[float] | None = None,
         epochs: list[int] | None = None) -> CellResult:
    epochs = list(range(len(acc))) if epochs is None else epochs
    return CellResult(status, epochs, acc, [1.0 - a for a in acc] if loss is None else loss)


def test_scheme_stats_of_plain_records_match_an_independent_computation() -> None:
    cells = [
        _res([0.1, 0.70, 0.81, 0.84]),
        _res([0.1, 0.90, 0.79, 0.86], loss=[2.0, 0.5, 0.4, math.nan]),  # NaN final loss: left out
        _res([0.1, 0.82, 0.83, 0.85], epochs=[0, 3, 1, 2]),  # rows out of order: last is epoch 3
        _res([0.1, 0.5, 0.95, math.nan], "diverged"),  # reaches 0.8 at 2, but no final metrics
        _res([0.1, 0.99], "running"),  # unfinished: counts only in planned
        _res([0.1], "done"),  # done without a trained epoch: in done, not in n
    ]
    st = scheme_stats("s", cells, threshold=0.8, level=0.9)
    finals = [0.84, 0.86, 0.82]
    lo, hi = scipy_stats.t.interval(0.9, 2, loc=np.mean(finals), scale=scipy_stats.sem(finals))
    assert st.val_acc == pytest.approx(np.mean(finals)) and st.val_acc_ci == pytest.approx((hi - lo) / 2)
    assert st.final_accs == pytest.approx(finals)
    losses = [1 - 0.84, 1 - 0.82]
    lo, hi = scipy_stats.t.interval(0.9, 1, loc=np.mean(losses), scale=scipy_stats.sem(losses))
    assert st.val_loss == pytest.approx(np.mean(losses)) and st.val_loss_ci == pytest.approx((hi - lo) / 2)
    assert (st.planned, st.finished, st.done, st.n, st.diverged) == (6, 5, 4, 3, 1)
    # first epochs reaching 0.8: 2, 1, 1 (epoch 1 holds 0.83), 2 (diverged counts); the last done: never
    assert st.reached == 4 and st.epochs_to == pytest.approx(np.mean([2, 1, 1, 2]))
    # seed-mean accuracy of the done cells per epoch: 1 -> (.70+.90+.83)/3, 2 -> (.81+.79+.85)/3, ...
    means = {1: np.mean([0.70, 0.90, 0.83]), 2: np.mean([0.81, 0.79, 0.85]), 3: np.mean([0.84, 0.86, 0.82])}
    best = max(means, key=means.get)
    assert st.best_epoch == best and st.best_acc == pytest.approx(means[best])
    assert not st.is_best and math.isnan(st.p_vs_best)

    none = scheme_stats("z", [_res([0.1, 0.2], "diverged"), _res([], "pending")], threshold=0.8)
    assert (none.n, none.done, none.reached, none.best_epoch, none.final_accs) == (0, 0, 0, None, ())
    assert all(math.isnan(v) for v in (none.val_acc, none.val_acc_ci, none.epochs_to, none.best_acc))


def test_summarize_schemes_tests_each_scheme_against_the_best() -> None:
    good = [[0.1, 0.84], [0.1, 0.86], [0.1, 0.85]]
    bad = [[0.1, 0.60], [0.1, 0.58], [0.1, 0.59]]
    results = {
        "bad": [_res(a) for a in bad],
        "single": [_res([0.1, 0.7]), _res([0.1, 0.9], "diverged")],  # one final value: no test
        "good": [_res(a) for a in good],
        "empty": [_res([], "pending")],
    }
    rows = summarize_schemes(results, alpha=0.01)
    assert [r.scheme for r in rows] == list(results)  # input order is kept
    by = {r.scheme: r for r in rows}
    assert [r.scheme for r in rows if r.is_best] == ["good"]
    want = scipy_stats.ttest_ind([a[-1] for a in bad], [a[-1] for a in good], equal_var=False).pvalue
    assert by["bad"].p_vs_best == pytest.approx(want, rel=1e-9)
    assert by["bad"].significant == (want < 0.01)
    for name in ("single", "empty", "good"):
        assert math.isnan(by[name].p_vs_best) and not by[name].significant
    # the per-scheme statistics are those of scheme_stats
    alone = scheme_stats("bad", results["bad"])
    assert type(alone) is SchemeSummary and all(type(r) is SchemeSummary for r in rows)
    assert by["bad"] == dataclasses.replace(alone, p_vs_best=by["bad"].p_vs_best, significant=by["bad"].significant)
    # nothing scored: no best, no tests
    assert not any(r.is_best for r in summarize_schemes({"x": [_res([0.1, 0.5], "diverged")]}))


def test_summary_math_rejects_bad_inputs() -> None:
    with pytest.raises(InitlabError, match="val_acc has 2 values for 3 epochs"):
        CellResult("done", [0, 1, 2], [0.1, 0.2], [1.0, 1.0, 1.0])
    for kwargs, words in (({"threshold": 0.0}, "threshold"), ({"threshold": 1.5}, "threshold"),
                          ({"level": 1.0}, "confidence level"), ({"alpha": 0.0}, "significance level")):
        with pytest.raises(InitlabError, match=words):
            summarize_schemes({"s": [_res([0.1, 0.9])]}, **kwargs)
    with pytest.raises(InitlabError, match="threshold"):
        scheme_stats("s", [], threshold=-1.0)


def test_record_helpers() -> None:
    assert final_value([0, 2, 1], [0.1, 0.3, 0.2]) == 0.3
    assert math.isnan(final_value([0], [0.1])) and math.isnan(final_value([], []))
    assert first_epoch_reaching([0, 3, 1, 2], [0.9, 0.85, 0.5, 0.8], 0.8) == 2  # epoch 0 never counts
    assert first_epoch_reaching([0, 1], [0.9, math.nan], 0.8) is None
    ep, mean, lo, hi = mean_curve([([0, 1, 2], [0.1, 0.5, math.nan]), ([0, 1, 3], [0.3, math.inf, 0.7]),
                                   ([4], [math.nan])])
    assert ep.tolist() == [0, 1, 3]  # epoch 2 has no finite value, epoch 4 none at all
    np.testing.assert_allclose(mean, [0.2, 0.5, 0.7])
    np.testing.assert_allclose(lo, [0.1, 0.5, 0.7])
    np.testing.assert_allclose(hi, [0.3, 0.5, 0.7])
    assert [a.size for a in mean_curve([])] == [0, 0, 0, 0]


def test_store_cell_results_are_the_recorded_curves(tmp_path: Path) -> None:
    curves, cells = _fill(tmp_path)
    with Store.open(tmp_path) as store:
        groups = cell_results(store)
        statuses = {c.key: c.status for c in store.cells()}
    assert list(groups) == [("fashion-mnist", "mlp-8-relu-d0.2", "", s) for s in ("he_normal", "zeros")]
    flat = [r for rs in groups.values() for r in rs]
    assert len(flat) == len(cells)
    for res, cell in zip(flat, cells):
        assert res.status == statuses[cell.key]
        recorded = curves.get(cell.key, [])[:len(res.epochs)]
        assert res.epochs == tuple(range(len(recorded)))
        assert repr(res.val_acc) == repr(tuple(a for a, _ in recorded))
        assert repr(res.val_loss) == repr(tuple(v for _, v in recorded))
