"""What a study records about each model at init: its :class:`InitRecord` (what
:func:`initlab.apply` did, and :func:`initlab.check`'s verdicts on the result) and a
signal-propagation probe of each group's model.

The init record of a cell is built right after ``apply``, on the freshly initialized
model: ``initlab.check(model, scheme, data=batch)`` runs there (the same batch LSUV was
fitted on), so the report's "conformance at init" section shows ``check``'s own verdicts
and nothing re-judges them. A check that raises never fails the study: its error line is
kept in :attr:`InitRecord.check_error` instead. The store keeps the apply report and the
check in tables of their own (``init_reports``, ``init_checks``).

The probe (:func:`initlab.probe`) runs on the group's ``MLPSpec`` under each distinct
scheme of the group, on the first ``lsuv_batch`` training images and their labels, with
the group's smallest seed: exactly the weights of that seed's cells at init (LSUV is
fitted on the same images). Each probe call appends one row (``ProbeResult.to_dict()``)
to the store's ``probes`` table under the group's ``(model label, dataset)``; a group
split by ``max_group_size``, or a resumed study, probes only the schemes that the stored
probe lacks (with that probe's seed), so a model already probed is not probed again, and
:meth:`~initlab.study.store.Store.probes` reads the rows of a model back as one
``ProbeResult``. A probe never fails the study: its error is stored as one line in the
``probe_errors`` table (removed once a later run probes that group) and training goes on.
The probe measures the network with dropout switched off (see :mod:`initlab.probe.runner`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from initlab.errors import InitlabError
from initlab.study.cell import Cell

if TYPE_CHECKING:
    from initlab.apply import InitReport
    from initlab.check import CheckReport
    from initlab.study.executor import StoreSink

__all__ = ["InitRecord", "init_record", "record_probe"]

#: Whether the recorded probe includes the input-output Jacobian spectrum (``None``: the
#: probe's rule, in * out <= JACOBIAN_MAX_ENTRIES; the calibrated score reads its spread).
PROBE_JACOBIAN: bool | None = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _build(cls: type, d: Any, what: str) -> Any:
    """Dataclass *cls* from its ``to_dict()`` (``shape`` lists become tuples); unknown keys
    are ignored, a missing one is a one-line error."""
    if not isinstance(d, dict):
        raise InitlabError(f"{what} is read from a dict, got {type(d).__name__}; give what to_dict() wrote")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in d:
            v = d[f.name]
            kwargs[f.name] = tuple(v) if f.name == "shape" else v
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InitlabError(f"{what} lacks {f.name!r}; give what to_dict() wrote")
    return cls(**kwargs)


def _unsupported(rows: Any) -> list[tuple[str, str, str]]:
    return [(str(u["name"]), str(u["type"]), str(u["reason"])) for u in rows or ()]


def init_report_from_dict(d: dict[str, Any]) -> InitReport:
    """The :class:`~initlab.apply.InitReport` that ``InitReport.to_dict()`` wrote."""
    from initlab.apply import InitReport, LayerRecord
    from initlab.schemes.lsuv import LSUVStep
    from initlab.schemes.optimized import OptimizedRecord

    if not isinstance(d, dict) or "scheme" not in d:
        raise InitlabError("an init report is read from the dict InitReport.to_dict() wrote; "
                           "this one lacks 'scheme'")
    return InitReport(
        scheme=str(d["scheme"]), seed=d.get("seed"),
        layers=[_build(LayerRecord, r, "an init report's layer") for r in d.get("layers", ())],
        unsupported=_unsupported(d.get("unsupported")),
        lsuv=[_build(LSUVStep, s, "an init report's LSUV step") for s in d.get("lsuv", ())],
        notes=[str(n) for n in d.get("notes", ())],
        optimized=None if d.get("optimized") is None else _build(OptimizedRecord, d["optimized"],
                                                                  "an init report's optimized-scheme record"),
    )


def check_report_from_dict(d: dict[str, Any], unsupported: Sequence[tuple[str, str, str]] = ()) -> CheckReport:
    """The :class:`~initlab.check.CheckReport` that ``CheckReport.to_dict()`` wrote.
    ``to_dict`` leaves the unchecked layers out; they are apply's (*unsupported*): both
    walk the same model with the same ``include``."""
    from initlab.check import CheckReport, CheckRow

    if not isinstance(d, dict) or "scheme" not in d or "sigmas" not in d:
        raise InitlabError("a check report is read from the dict CheckReport.to_dict() wrote; "
                           "this one lacks 'scheme' or 'sigmas'")
    looks = d.get("looks_like")
    return CheckReport(
        scheme=str(d["scheme"]), sigmas=float(d["sigmas"]),
        layers=[_build(CheckRow, r, "a check report's layer") for r in d.get("layers", ())],
        unsupported=list(unsupported), looks_like=None if looks is None else [str(x) for x in looks],
    )


@dataclass
class InitRecord:
    """One cell's model at init: what :func:`initlab.apply` did (:class:`~initlab.apply.InitReport`,
    one :class:`~initlab.apply.LayerRecord` per weight) and what :func:`initlab.check` found
    on the result (:class:`~initlab.check.CheckReport`, one :class:`~initlab.check.CheckRow`
    verdict per weight). ``check`` is ``None`` when the check raised (``check_error`` says
    why) or for a store written before studies checked at init."""

    report: InitReport
    check: CheckReport | None = None
    check_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"report": self.report.to_dict(),
                "check": None if self.check is None else self.check.to_dict(),
                "check_error": self.check_error}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InitRecord:
        if not isinstance(d, dict) or "report" not in d:
            raise InitlabError("an init record is read from the dict InitRecord.to_dict() wrote; "
                               "this one lacks 'report'")
        report = init_report_from_dict(d["report"])
        check = d.get("check")
        return cls(report, None if check is None else check_report_from_dict(check, report.unsupported),
                   str(d.get("check_error", "") or ""))

    def same(self, other: Any) -> bool:
        """The same type and :meth:`to_dict` (NaN equal to NaN)."""
        from initlab.records import _same

        return type(other) is type(self) and _same(self.to_dict(), other.to_dict())


def init_record(report: InitReport, model: Any, data: Any = None) -> InitRecord:
    """The init record of a model just initialized by ``report = initlab.apply(model, ...)``:
    the report and ``initlab.check(model, report.scheme, data=data)`` (*data*: the batch a
    data-dependent scheme was fitted on). Call it before the model trains."""
    from initlab.check import check

    try:
        return InitRecord(report, check(model, report.scheme, data=data))
    except Exception as exc:  # noqa: BLE001 - the check is a side measurement
        return InitRecord(report, None, _one_line(exc))


def _probe(cells: Sequence[Cell], data: Any, n_inputs: int, stored: Any) -> Any:
    """The ``ProbeResult`` of the group's schemes that *stored* (a ``ProbeResult`` or
    ``None``) lacks, with *stored*'s seed; ``None`` when it lacks none."""
    from initlab.probe import probe
    from initlab.schemes import get_scheme

    done = {s.scheme for s in stored.schemes} if stored is not None else set()
    schemes = [s for s in dict.fromkeys(get_scheme(c.scheme).spec for c in cells) if s not in done]
    if not schemes:
        return None
    seed = stored.seed if stored is not None else min(c.seed for c in cells)
    spec = cells[0].model_spec
    x, y = data.train_x[:n_inputs], data.train_y[:n_inputs].long()
    if spec.kind != "mlp":  # an MLP flattens the images itself (and its probes record them so)
        x = spec.as_input(x)
    return probe(spec, (x, y), schemes, n_inputs=max(len(x), 2),
                 seed=seed, jacobian=PROBE_JACOBIAN)


def record_probe(cells: Sequence[Cell], sink: StoreSink, data: Any, n_inputs: int) -> None:
    """Probe the group's model on its first *n_inputs* training images and store it (see
    the module docstring). Never raises an ``Exception``: a failure is stored as one line
    in the store's ``probe_errors`` table instead."""
    store = sink.store
    label, dataset = cells[0].model_label, cells[0].dataset
    try:
        result = _probe(cells, data, n_inputs, store.probe(label, dataset))
        if result is not None:
            store.record_probe(label, dataset, result)
    except Exception as exc:  # noqa: BLE001 - the probe is a side measurement
        store.record_probe_error(label, dataset, _one_line(exc))
