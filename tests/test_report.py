"""initlab.report: reading a run directory, the summary/conformance/histogram maths, and
the HTML report (structure, self-containment, partial studies, bad directories).

The browser rendering test lives in tests/test_report_browser.py; exports in
tests/test_export.py. ``real_run`` (also used there) trains a real 2 schemes x 2 seeds
study for 2 epochs on small synthetic images in about two seconds.
"""

from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from initlab.errors import InitlabError
from initlab.report import build_report, load_run
from initlab.report.build import SECTIONS
from initlab.records import CellStatus, EpochRecord
from initlab.report.fig_curves import needs_log
from initlab.report.histo import common_edges, occupied, pooled, rebin
from initlab.report.summary import final_metric, summarize
from initlab.report.synthetic import synthetic_run
from initlab.report.conformance import conformance
from initlab.report.types import CellData, RunData

SCHEMES = ("ones", "he_normal")


def _images(seed: int = 0):
    """A learnable 10-class problem on 64 features: class prototypes plus noise."""
    import torch

    from initlab.engine.inputs import TrainData

    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(10, 64, generator=g)

    def make(n: int):
        y = torch.randint(0, 10, (n,), generator=g)
        return (protos[y] + 0.3 * torch.rand(n, 64, generator=g)).clamp(0, 1), y

    (tx, ty), (vx, vy) = make(512), make(256)
    return TrainData(tx, ty, vx, vy)


def study_config(epochs: int = 2):
    from initlab.engine.models import MLPSpec
    from initlab.study import StudyConfig

    return StudyConfig(
        name="tiny", schemes=SCHEMES, seeds=(0, 1),
        models=(MLPSpec(in_features=64, hidden=(32, 16), out_features=10),),
        datasets=("fashion-mnist",), validation="test", limit_train=512, limit_val=256,
        train={"epochs": epochs, "batch_size": 64, "log_every": 2, "probe_size": 64, "hist_bins": 20},
    )


def real_run(run_dir: Path, *, interrupt_after_groups: int | None = None) -> Path:
    """Train the tiny study into ``run_dir`` with the study runner and the batched engine.
    With ``interrupt_after_groups`` (groups of 2 cells) the run is stopped by a
    KeyboardInterrupt, as Ctrl-C would, leaving the next group's cells ``running``."""
    from initlab.study import Store, run_study
    from initlab.study.local import engine_train_group

    data = _images()
    train = engine_train_group(loader=lambda cell: data)
    calls = {"n": 0}

    def train_group(cells, sink):
        if interrupt_after_groups is not None and calls["n"] >= interrupt_after_groups:
            raise KeyboardInterrupt
        calls["n"] += 1
        train(cells, sink)

    with Store.create(run_dir) as store:
        try:
            run_study(study_config().expand(), store, train_group,
                      max_group_size=2 if interrupt_after_groups is not None else None)
        except KeyboardInterrupt:
            pass
    return run_dir


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_run(tmp_path_factory.mktemp("tiny") / "run")


# -- reading a run directory -------------------------------------------------------------------


def test_load_run_reads_every_recorded_table(tiny_run: Path) -> None:
    from initlab.study import Store

    run = load_run(tiny_run)
    assert run.name == "tiny" and not run.partial
    assert [(c.scheme, c.seed) for c in run.cells] == [(s, k) for s in SCHEMES for k in (0, 1)]
    with Store.open(tiny_run) as store:
        epochs, inits = store.epoch_records(), store.init_records()
        for cell in run.cells:
            rows = epochs[cell.key]
            assert cell.epochs == tuple(rows) and all(type(r) is EpochRecord for r in cell.epochs)
            assert list(cell.metrics["epoch"]) == [r.epoch for r in rows] == [0, 1, 2]
            np.testing.assert_array_equal(cell.metrics["val_acc"], [r.val_acc for r in rows])
            assert cell.steps == tuple(store.steps(cell.key))
            w1 = cell.param(1, "weight")
            stored = [p for r in rows for p in r.params if p.layer == 1 and p.param == "weight"]
            assert w1.name == stored[0].name == "1.weight"
            np.testing.assert_array_equal(w1.hist_counts[2], stored[2].hist_counts)
            np.testing.assert_array_equal(w1.hist_edges[2], stored[2].hist_edges)
            assert w1.quantiles.shape == (3, len(w1.quantile_levels))
            assert cell.activation(2).stat("post_std", 1) == rows[1].activations[1].post_std
            assert w1.stat("std", 1) == stored[1].std
            # the init record: initlab.apply's report and initlab.check's verdicts at init
            assert cell.init.same(inits[cell.key])
            assert [r.name for r in cell.init.report.layers] == ["1.weight", "4.weight", "7.weight"] or \
                len(cell.init.report.layers) == 3
            assert cell.init.report.layers[0].shape == (32, 64)
            assert cell.init.check is not None and cell.init.check.ok
    assert run.meta["versions"]["torch"] and run.meta["device"]


def test_bad_run_directories_get_one_line_messages(tmp_path: Path) -> None:
    with pytest.raises(InitlabError, match="does not exist"):
        load_run(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InitlabError, match="is empty"):
        build_report(empty)
    (empty / "notes.txt").write_text("x")
    with pytest.raises(InitlabError, match="no results store"):
        load_run(empty)
    with pytest.raises(InitlabError, match="not a directory"):
        load_run(empty / "notes.txt")
    from initlab.study import Store

    with Store.create(tmp_path / "unstarted"):
        pass
    with pytest.raises(InitlabError, match="holds no study") as info:
        load_run(tmp_path / "unstarted")
    assert "\n" not in str(info.value)
    broken = tmp_path / "broken"
    broken.mkdir()
    con = sqlite3.connect(broken / "initlab.sqlite")
    con.execute("CREATE TABLE other (x)")
    con.close()
    with pytest.raises(InitlabError):
        load_run(broken)


def test_interrupted_study_reports_what_finished(tmp_path: Path) -> None:
    rd = real_run(tmp_path / "run", interrupt_after_groups=1)
    run = load_run(rd)
    assert run.partial
    statuses = {(c.scheme, c.seed): c.status for c in run.cells}
    assert sorted(statuses.values()) == ["done", "done", "running", "running"]
    path = build_report(rd)
    text = path.read_text()
    assert 'data-partial="1"' in text and "PARTIAL: 2 of 4 cells finished (2 running)" in text
    rows = {r.scheme: r for r in summarize(run, run.cells[0].model, run.cells[0].dataset)}
    assert rows["ones"].done == 2 and rows["he_normal"].done == 0
    assert rows["he_normal"].unfinished == 2 and math.isnan(rows["he_normal"].val_acc)


# -- the summary -----------------------------------------------------------------------------


def _cell(scheme: str, seed: int, val_acc: list[float], status: str = "done") -> CellData:
    n = len(val_acc)
    nan = math.nan
    return CellData(key=f"{scheme}{seed}", scheme=scheme, seed=seed, model="m", dataset="d", status=status,
                    epochs_planned=n - 1,
                    epochs=tuple(EpochRecord(0, e, e, nan, nan, 1.0 - a, a, nan, 1, False)
                                 for e, a in enumerate(val_acc)))


def test_summary_statistics_match_scipy() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    good = [[0.1, 0.70, 0.81, 0.84], [0.1, 0.75, 0.79, 0.86], [0.1, 0.82, 0.83, 0.85]]
    bad = [[0.1, 0.5, 0.55, 0.60], [0.1, 0.52, 0.6, 0.58], [0.1, 0.4, 0.5, math.nan]]
    cells = [_cell("good", i, a) for i, a in enumerate(good)]
    cells += [_cell("bad", 0, bad[0]), _cell("bad", 1, bad[1]), _cell("bad", 2, bad[2], "diverged"),
              _cell("bad", 3, [0.1], "pending")]
    run = RunData(Path("."), "s", cells=cells)
    rows = {r.scheme: r for r in summarize(run, "m", "d")}
    g, b = rows["good"], rows["bad"]
    finals = [a[-1] for a in good]
    assert g.val_acc == pytest.approx(np.mean(finals))
    half = scipy_stats.t.ppf(0.975, 2) * np.std(finals, ddof=1) / math.sqrt(3)
    assert g.val_acc_ci == pytest.approx(half, rel=1e-9)
    assert g.is_best and not b.is_best
    assert (b.done, b.finished, b.diverged, b.unfinished, b.planned) == (2, 3, 1, 1, 4)
    want_p = scipy_stats.ttest_ind([0.60, 0.58], finals, equal_var=False).pvalue
    assert b.p_vs_best == pytest.approx(want_p, rel=1e-9) and b.significant == (want_p < 0.05)
    # epochs to 80%: first epochs 2, 3, 1 -> mean 2
    assert g.epochs_to == pytest.approx(2.0) and g.reached == 3
    assert math.isnan(b.epochs_to) and b.reached == 0
    # best epoch maximizes the seed mean: epoch 3 (0.85) for good
    assert g.best_epoch == 3 and g.best_acc == pytest.approx(np.mean([0.84, 0.86, 0.85]))
    assert final_metric(cells[0], "val_loss") == pytest.approx(1 - 0.84)


def test_report_and_initlab_summary_feed_the_same_cells_to_one_implementation(
        tiny_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both adapters (RunData here, the SQLite store for ``initlab summary``) hand the same
    per-cell records to initlab.study.summary.scheme_stats and show its rows as they are."""
    from initlab.records import SchemeSummary
    from initlab.study import Store
    from initlab.study import summary as core

    calls: list[tuple[str, list, dict, SchemeSummary]] = []
    real = core.scheme_stats

    def spy(scheme: str, cells: list, **options: float) -> SchemeSummary:
        out = real(scheme, cells, **options)
        calls.append((scheme, list(cells), options, out))
        return out

    monkeypatch.setattr(core, "scheme_stats", spy)
    run = load_run(tiny_run)
    (model, dataset), = run.groups()
    mine = summarize(run, model, dataset, target=0.3)
    from_report, calls[:] = list(calls), []
    with Store.open(tiny_run) as store:
        theirs = core.summarize(store, threshold=0.3).rows
    from_store = calls

    assert [c[0] for c in from_report] == [c[0] for c in from_store] == list(SCHEMES)
    for (_, cells_r, opts_r, _), (_, cells_s, opts_s, _) in zip(from_report, from_store):
        assert opts_r == opts_s == {"threshold": 0.3, "level": 0.95, "dataset": dataset, "model": model, "setting": ""}
        assert [c.status for c in cells_r] == ["done", "done"]
        assert [c.epochs for c in cells_r] == [(0, 1, 2)] * 2
        assert repr(cells_r) == repr(cells_s)  # repr: NaN-aware equality of the curves
    assert any(st.reached for *_, st in from_report)  # the epochs-to column is exercised
    # one row type: the report's rows and initlab summary's are the same records
    assert all(type(r) is SchemeSummary for r in [*mine, *theirs])
    assert [r.to_dict() for r in mine] == [r.to_dict() for r in theirs] or repr(mine) == repr(theirs)
    assert (mine[0].dataset, mine[0].model) == (dataset, model)


def test_report_cell_results_are_the_stored_curves(tiny_run: Path) -> None:
    from initlab.report.summary import cell_results
    from initlab.study import Store

    run = load_run(tiny_run)
    (model, dataset), = run.groups()
    by_scheme = cell_results(run, model, dataset)
    assert list(by_scheme) == list(SCHEMES)
    with Store.open(tiny_run) as store:
        rows = store.epoch_records()
        for scheme, cells in by_scheme.items():
            for res, cell in zip(cells, run.cells_of(model, dataset, scheme)):
                stored = rows[cell.key]
                assert res.epochs == tuple(r.epoch for r in stored)
                assert res.val_acc == tuple(r.val_acc for r in stored)
                assert res.val_loss == tuple(r.val_loss for r in stored)


# -- conformance -----------------------------------------------------------------------------


def test_conformance_shows_checks_own_verdicts_and_catches_a_wrong_initialization() -> None:
    """The report pools initlab.check's stored verdicts; it judges nothing itself."""
    import torch

    import initlab
    from initlab.engine.models import MLPSpec, build_mlp
    from initlab.study.init_records import init_record

    cells = []
    for scheme in ("he_normal", "uniform_recipe", "zeros", "lsuv"):
        model = build_mlp(MLPSpec(in_features=64, hidden=(128, 64), out_features=10))
        data = torch.rand(64, 64, generator=torch.Generator().manual_seed(0)) if scheme == "lsuv" else None
        report = initlab.apply(model, scheme, seed=0, data=data)
        cells.append(CellData(scheme, scheme, 0, "m", "d", "done", init=init_record(report, model, data)))
    # the article's mistake: he_normal intended, the weights left at glorot_uniform
    model = build_mlp(MLPSpec(in_features=64, hidden=(128, 64), out_features=10))
    initlab.apply(model, "glorot_uniform", seed=0)
    intended = initlab.apply(build_mlp(MLPSpec(in_features=64, hidden=(128, 64), out_features=10)),
                             "he_normal", seed=0)
    cells.append(CellData("wrong", "wrong", 0, "m", "d", "done", init=init_record(intended, model)))
    table = conformance(RunData(Path("."), "s", cells=cells), "m", "d")
    assert not any(c.flagged for s in ("he_normal", "uniform_recipe", "zeros", "lsuv")
                   for c in table[s].values())
    assert all(math.isnan(c.expected_std) and math.isnan(c.ratio) for c in table["lsuv"].values())
    wrong = table["wrong"][1]
    assert wrong.flagged and wrong.flagged_seeds == 1 and wrong.ratio == pytest.approx(math.sqrt(64 / (64 + 128)), rel=0.02)  # glorot / he
    # the verdict is check's own, reasons and all
    assert wrong.reasons == (cells[-1].init.check.layers[0].reason,) and "sigma in variance" in wrong.reasons[0]
    assert wrong.worst_z == pytest.approx(abs(cells[-1].init.check.layers[0].z_var))
    # a cell without a stored check (a store from before checks at init) is left out
    cells.append(CellData("old", "old", 0, "m", "d", "done", init=None))
    assert "old" not in conformance(RunData(Path("."), "s", cells=cells), "m", "d")


# -- histogram arithmetic ----------------------------------------------------------------------


def test_rebin_preserves_counts_and_matches_numpy_on_aligned_edges() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=5000)
    counts, edges = np.histogram(x, bins=40)
    coarse = edges[::4]
    np.testing.assert_allclose(rebin(edges, counts, coarse), np.histogram(x, bins=coarse)[0])
    wide = np.linspace(edges[0] - 1, edges[-1] + 1, 17)
    assert rebin(edges, counts, wide).sum() == pytest.approx(5000)
    # a point mass (edges clipped to a constant tensor's [min, max]) lands in one bin
    point = np.full(21, 0.25)
    c = np.zeros(20)
    c[10] = 7
    np.testing.assert_array_equal(rebin(point, c, np.linspace(0, 1, 5)), [0, 7, 0, 0])
    assert occupied(point, c) == (0.25, 0.25)
    e = common_edges([(edges, counts), (point, c)], 10)
    assert e[0] == pytest.approx(edges[0]) and e[-1] == pytest.approx(edges[-1])
    assert pooled([(edges, counts), (point, c)], e).sum() == pytest.approx(5007)


def test_constant_tensor_histograms_become_point_masses(tiny_run: Path) -> None:
    run = load_run(tiny_run)
    ones = next(c for c in run.cells if c.scheme == "ones")
    edges, counts = ones.param(1, "weight").histogram(0)
    assert occupied(edges, counts) == (1.0, 1.0)  # the engine padded it to [0.5, 1.5]
    raw_edges, _ = ones.param(1, "weight").histogram(0, tight=False)
    assert raw_edges[0] == pytest.approx(0.5)


def test_needs_log_only_for_spans_over_two_decades() -> None:
    assert needs_log([np.array([2000.0, 0.3]), np.array([np.nan, 1.0])])
    assert not needs_log([np.array([2.3, 0.3]), np.array([np.nan, -1.0, 0.0])])
    assert not needs_log([])


# -- the HTML report -------------------------------------------------------------------------


def _sections(text: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)" data-section=', text)


def _section(text: str, sid: str) -> str:
    body = text[text.index(f'<section id="{sid}"'):]
    return body[:body.index("</section>")]


def test_report_of_a_real_run_has_every_section_and_is_self_contained(tiny_run: Path) -> None:
    path = build_report(tiny_run)
    assert path == tiny_run / "report.html"
    text = path.read_text(encoding="utf-8")
    assert _sections(text) == [*SECTIONS[:-1], "probe", "recommendation", SECTIONS[-1]]  # the study probed its model
    probe = _section(text, "probe")
    # variance, gradients, and the Jacobian's spectrum (the study's probe takes it for a small model)
    assert probe.count("<img ") == 3 and "g1_probe_variance.png" in probe and "unbroken symmetry" in probe
    assert "g1_probe_jacobian.png" in probe
    # nothing is fetched from anywhere: no external URLs in src/href, no <link> tags
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<link" not in text
    pngs = sorted((tiny_run / "figures").glob("*.png"))
    inlined = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(inlined) == len(pngs) >= 12
    import base64

    assert {base64.b64decode(d) for d in inlined} == {p.read_bytes() for p in pngs}
    # a layer selector with one option per layer, and one block of figures per layer
    assert len(re.findall(r'<option value="\d+">', text)) == 3
    assert len(re.findall(r'data-layer-group="g1-weights" data-layer="\d"', text)) == 3
    # the summary table: both schemes with mean +- CI, the run's versions and device
    assert "he_normal" in text and "±" in text and "vs best (Welch)" in text
    assert "torch" in text and "cpu" in text
    # the 'ones' model starts with a loss in the thousands: conformance says '0' for its
    # constant weights, and nothing is flagged for he_normal
    assert "initlab.check found every layer conforming." in text


def test_report_scales_to_many_schemes_and_flags_nonconforming_layers(tmp_path: Path) -> None:
    schemes = [f"scheme_{i:02d}" for i in range(12)]
    run = synthetic_run(tmp_path, schemes=schemes, seeds=(0, 1), widths=(784, 32, 32, 10), epochs=2,
                        statuses={("scheme_03", 1): "diverged"})
    path = build_report(tmp_path, data=run)
    text = path.read_text(encoding="utf-8")
    assert _sections(text) == list(SECTIONS)
    assert "PARTIAL" not in text
    # every scheme in the summary table, one figure pair per layer
    for s in schemes:
        assert f">{s}</td>" in text
    assert len(list((tmp_path / "figures").glob("g1_hist_L*.png"))) == 3
    assert len(list((tmp_path / "figures").glob("g1_epochs_L*.png"))) == 3
    # synthetic_run makes the last scheme's output layer 1.5x too wide: flagged
    assert "Flagged by initlab.check:" in text and "scheme_11, layer 3" in text
    # the summary row of scheme_03: 1 of 2 seeds done, 1 diverged
    row = re.search(r'<tr><td class="text">scheme_03</td>(.*?)</tr>', text).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[0] == "1/2" and cells[5] == "1"


def test_synthetic_run_with_pending_and_running_cells_reports_them_as_unfinished(
    tmp_path: Path,
) -> None:
    run = synthetic_run(tmp_path, schemes=("zeros", "he_normal"), seeds=(0, 1), widths=(16, 8, 10),
                        epochs=2, statuses={("he_normal", 1): "pending", ("zeros", 0): "running"})
    rows = {r.scheme: r for r in summarize(run, run.cells[0].model, run.cells[0].dataset)}
    assert (rows["he_normal"].done, rows["he_normal"].unfinished) == (1, 1)
    assert (rows["zeros"].done, rows["zeros"].unfinished) == (1, 1)
    text = build_report(tmp_path, data=run).read_text(encoding="utf-8")
    assert "PARTIAL" in text and _sections(text) == list(SECTIONS)


def test_report_options_are_validated(tiny_run: Path) -> None:
    with pytest.raises(InitlabError, match="target accuracy"):
        build_report(tiny_run, target=1.5)
    with pytest.raises(InitlabError, match="significance level"):
        build_report(tiny_run, alpha=0.0)


def test_report_command(tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    import initlab.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", ("report", "export"))
    out = tmp_path / "elsewhere" / "r.html"
    assert cli.main(["report", str(tiny_run), "--out", str(out), "--threshold", "0.5"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert "epochs to 50%" in out.read_text() and (tmp_path / "elsewhere" / "figures" / "g1_curves.png").is_file()
    assert cli.main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("initlab: error: run directory") and err.count("\n") == 1


def test_a_real_run_stores_its_models_probe_for_the_report(tiny_run: Path) -> None:
    from initlab.probe import ProbeResult

    run = load_run(tiny_run)
    (group,) = run.groups()
    assert list(run.probes) == [group] and not run.probe_errors
    assert "probes" not in run.meta  # in a table of its own, not in the run metadata
    result = run.probes[group]
    assert type(result) is ProbeResult
    assert result.model == group[0] and [s.scheme for s in result] == list(SCHEMES)
    # the first 256 training images with their labels, the study's first seed
    assert (result.inputs, result.n_inputs, list(result.input_shape), result.seed) == ("data", 256, [64], 0)
    assert not result["he_normal"].verdicts and result["ones"].verdict("unbroken_symmetry")


def test_report_shows_the_probe_of_each_model_group(tmp_path: Path) -> None:
    import json

    import initlab
    from initlab.engine.models import MLPSpec
    from initlab.probe import ProbeResult
    from initlab.report.build import _Ctx, _section_probe

    run = two_group_run(tmp_path)
    a, b = ("mlp-a", "fashion-mnist"), ("mlp-b", "fashion-mnist")
    probe_a = initlab.probe(MLPSpec(16, (8,), 10, dropout=0.0), schemes=["zeros", "he_normal"], n_inputs=16,
                            jacobian=False)
    # group a: a stored probe; group b: a failure line
    run.probes = {a: ProbeResult.from_dict(json.loads(probe_a.to_json()))}
    run.probe_errors = {b: "RuntimeError: out of memory"}
    text = build_report(tmp_path, data=run).read_text()
    assert _sections(text) == [*SECTIONS[:-1], "probe", "recommendation", SECTIONS[-1]]
    body = _section(text, "probe")
    split = body.index("<h3>mlp-b on fashion-mnist</h3>")
    first, second = body[:split], body[split:]
    assert "<h3>mlp-a on fashion-mnist</h3>" in first and first.count("<img ") == 2
    assert "g1_probe_variance.png" in first and "unbroken symmetry" in first  # zeros: the verdict table
    assert "<img " not in second and "failed (RuntimeError: out of memory)" in second
    assert sorted(p.name for p in (tmp_path / "figures").glob("*probe*")) == [
        "g1_probe_gradients.png", "g1_probe_variance.png"]
    # a group without a probe says so
    run.probes, run.probe_errors = {}, {b: "RuntimeError: out of memory"}
    body = _section_probe(_Ctx(run, tmp_path / "figures"))
    split = body.index("<h3>mlp-b on fashion-mnist</h3>")
    assert "No probe was recorded for this group" in body[:split] and "out of memory" in body[split:]


def two_group_run(run_dir: Path) -> RunData:
    """A synthetic study with two models: each section appears once per model."""
    a = synthetic_run(run_dir, schemes=("zeros", "he_normal"), seeds=(0,), widths=(16, 8, 10), epochs=1,
                      model="mlp-a")
    b = synthetic_run(run_dir, schemes=("zeros", "he_normal"), seeds=(0,), widths=(16, 8, 8, 10), epochs=1,
                      model="mlp-b", seed=1)
    for c in b.cells:
        c.key = "b" + c.key[1:]
    a.cells += b.cells
    return a


def test_report_repeats_sections_per_model_and_dataset(tmp_path: Path) -> None:
    run = two_group_run(tmp_path)
    assert run.groups() == [("mlp-a", "fashion-mnist"), ("mlp-b", "fashion-mnist")]
    text = build_report(tmp_path, data=run).read_text()
    for section in ("summary", "curves", "weights", "activations", "conformance"):
        body = text[text.index(f'<section id="{section}"'):]
        body = body[:body.index("</section>")]
        assert body.count("<h3>mlp-a on fashion-mnist</h3>") == 1
        assert body.count("<h3>mlp-b on fashion-mnist</h3>") == 1
    assert len(re.findall(r'data-layer-group="g1-weights" data-layer=', text)) == 2
    assert len(re.findall(r'data-layer-group="g2-weights" data-layer=', text)) == 3
    assert (tmp_path / "figures" / "g2_hist_L03.png").is_file()


def test_study_that_has_not_started_training_still_gets_a_report(tmp_path: Path) -> None:
    from initlab.study import Store

    with Store.create(tmp_path) as store:
        store.attach(study_config().expand())
    text = build_report(tmp_path).read_text()
    assert _sections(text) == list(SECTIONS)
    assert "PARTIAL: 0 of 4 cells finished (4 pending)" in text
    assert "No cell of this group has finished yet." in text
    assert "No conformance check at init was stored" in text
    assert not list((tmp_path / "figures").glob("*.png"))


# -- where the report goes -------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (directories as None, files with their bytes)."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


def test_report_out_that_cannot_be_written_is_one_line_before_any_work(
        tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import initlab.cli as cli

    monkeypatch.setattr(cli, "COMMANDS", ("report",))
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "afile").write_text("x")
    run_before, tmp_before = _tree(tiny_run), _tree(tmp_path)
    cases = [(target, f"is a directory; give a file name such as {str(target / 'report.html')!r}"),
             (tmp_path / "afile" / "r.html", "is a file, not a directory"),
             (tmp_path / "afile" / "deeper" / "r.html", "is a file, not a directory")]
    for out, fragment in cases:
        assert cli.main(["report", str(tiny_run), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("initlab: error: --out ") and fragment in err, err
        assert err.count("\n") == 1 and "Traceback" not in err
    assert _tree(tiny_run) == run_before and _tree(tmp_path) == tmp_before  # nothing written anywhere


def test_report_that_fails_midway_leaves_nothing_half_written(
        tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import initlab.report.build as build

    out = tmp_path / "new" / "sub" / "report.html"

    def disk_full(ctx):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(build, "_section_activations", disk_full)  # figures are half drawn by then
    with pytest.raises(InitlabError, match=r"cannot write the report .*No space left on device") as info:
        build_report(tiny_run, out=out)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "new").exists()  # the directories it made are gone again
    # over an earlier report: that one stays as it was, figures and all
    good = tmp_path / "old" / "report.html"
    monkeypatch.undo()
    build_report(tiny_run, out=good)
    before = _tree(tmp_path / "old")
    assert "figures/g1_curves.png" in before
    monkeypatch.setattr(build, "_section_activations", disk_full)
    with pytest.raises(InitlabError):
        build_report(tiny_run, out=good)

    def bug(ctx):
        raise RuntimeError("a bug")

    monkeypatch.setattr(build, "_section_activations", bug)
    with pytest.raises(RuntimeError):  # not bad input: raised as it is, and still cleaned up
        build_report(tiny_run, out=good)
    assert _tree(tmp_path / "old") == before


def test_report_of_a_run_directory_without_room_for_it(tiny_run: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import initlab.outputs as outputs

    monkeypatch.setattr(outputs, "_writable", lambda d: False)  # as a read-only directory reads
    with pytest.raises(InitlabError, match=r"the report .* cannot be written: .* is not writable"):
        build_report(tiny_run)
    with pytest.raises(InitlabError, match="does not exist"):  # the run directory is checked first
        build_report(tmp_path / "missing")
