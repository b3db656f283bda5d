"""The record vocabulary (initlab.records): one type per fact, to_dict/from_dict inverses."""

from __future__ import annotations

import json
import math

import pytest

from initlab.errors import InitlabError
from initlab.records import CellStatus, Divergence, EpochRecord, ParamStats, SchemeSummary, StepRecord

from _records import divergence, epoch_record, init_record, param_stats, step_record


def _summary() -> SchemeSummary:
    return SchemeSummary(dataset="fashion-mnist", model="m", scheme="he_normal", planned=3, finished=2,
                         done=2, n=2, diverged=0, val_acc=0.8, val_acc_ci=0.01, val_loss=0.5,
                         val_loss_ci=math.nan, epochs_to=math.nan, reached=0, best_epoch=None,
                         best_acc=math.nan, final_accs=(0.79, 0.81), is_best=True)


@pytest.mark.parametrize("record", [param_stats(1), param_stats(2, "bias", nan=True), epoch_record(0, 0),
                                    epoch_record(3, 2, diverged=True), step_record(1, 4), divergence(),
                                    _summary()], ids=lambda r: type(r).__name__)
def test_every_record_reads_back_through_json_as_the_same_type(record) -> None:
    d = json.loads(json.dumps(record.to_dict()))  # what a store keeps: plain JSON
    back = type(record).from_dict(d)
    assert type(back) is type(record) and back.same(record) and back.to_dict().keys() == d.keys()
    assert all(type(getattr(back, k)) is type(getattr(record, k)) for k in d)  # tuples stay tuples
    if isinstance(record, EpochRecord):
        assert all(type(p) is ParamStats for p in back.params)
    assert not back.same(type(record).from_dict({**d, **{next(iter(d)): "other"}}))


def test_from_dict_ignores_unknown_keys_and_names_a_missing_one() -> None:
    s = step_record(0, 2)
    assert StepRecord.from_dict({**s.to_dict(), "newer": 1}) == s
    d = s.to_dict()
    del d["loss"]
    with pytest.raises(InitlabError, match="a StepRecord needs 'loss'"):
        StepRecord.from_dict(d)
    with pytest.raises(InitlabError, match="read from a dict"):
        Divergence.from_dict([1, 2])  # type: ignore[arg-type]
    # defaulted fields may be missing (an older record's dict)
    e = epoch_record(0, 1).to_dict()
    del e["activations"]
    assert EpochRecord.from_dict(e).activations == ()


def test_cell_status_is_one_enum_with_its_final_statuses() -> None:
    assert [s.value for s in CellStatus] == ["pending", "running", "done", "diverged", "failed"]
    assert CellStatus.FINAL == (CellStatus.DONE, CellStatus.DIVERGED)
    assert [s.final for s in CellStatus] == [False, False, True, True, False]
    assert CellStatus.DONE == "done" and f"{CellStatus.FAILED}" == "failed"
    assert CellStatus.parse("running") is CellStatus.RUNNING
    with pytest.raises(InitlabError, match="unknown cell status 'finished'; statuses are pending, running"):
        CellStatus.parse("finished")


def test_the_summary_row_counts_unfinished_cells() -> None:
    assert _summary().unfinished == 1


def test_the_init_record_holds_apply_and_checks_own_reports() -> None:
    from initlab.apply import InitReport
    from initlab.check import CheckReport
    from initlab.study.init_records import InitRecord

    rec = init_record("he_normal")
    assert type(rec.report) is InitReport and type(rec.check) is CheckReport and rec.check.ok
    back = InitRecord.from_dict(json.loads(json.dumps(rec.to_dict())))
    assert back.same(rec) and back.report == rec.report and back.check == rec.check
    # a check that raises is kept as its error line, never failing the study
    import torch

    import initlab
    from initlab.study.init_records import init_record as make

    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    report = initlab.apply(model, "lsuv", seed=0, data=torch.rand(8, 4))
    broken = make(report, model, data=None)  # lsuv's check needs the batch
    assert broken.check is None and broken.check_error.startswith("InitlabError: scheme 'lsuv'")
    assert InitRecord.from_dict(broken.to_dict()).same(broken)
