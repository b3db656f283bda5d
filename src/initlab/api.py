"""Studies from Python: :func:`run` and :func:`load` (also ``initlab.run`` / ``initlab.load``).

>>> import initlab
>>> res = initlab.run("smoke", out="runs/smoke")          # doctest: +SKIP
>>> res.summary()                                          # doctest: +SKIP
>>> initlab.load("runs/smoke").plot_curves("val_acc")      # doctest: +SKIP

:func:`run` goes through the same steps as ``initlab run`` (:mod:`initlab.study.session`):
the same checks before anything is written, the same store (``OUT/initlab.sqlite``) and run
directory rules (default ``runs/<study name>``; a directory holding this study resumes it,
one holding another study is refused), the same report at the end. A directory made here
resumes with ``initlab run`` and the other way round.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from initlab.errors import InitlabError, UnknownNameError, suggest
from initlab.results import Results

__all__ = ["RUN_OPTIONS", "Results", "load", "run"]

#: The keyword overrides :func:`run` takes besides the train settings (each is the
#: ``initlab run`` flag of the same name).
RUN_OPTIONS: tuple[str, ...] = ("limit_train", "limit_val", "max_group", "data_dir", "download",
                                "probe", "report")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def run(study: Any = "seed", *, seeds: int | None = None, epochs: int | None = None,
        schemes: Any = None, out: str | os.PathLike[str] | None = None, device: str = "cpu",
        executor: str = "local", progress: bool = True, **overrides: Any) -> Results:
    """Run a study (resumably) and return its :class:`~initlab.results.Results`.

    Args:
        study: a preset name (``seed``, ``deep``, ``smoke``), a ``.toml`` spec path, a dict in
            the TOML's shape (``{"study": {"preset": "smoke"}, "train": {"lr": 0.01}}``) or a
            :class:`~initlab.study.config.StudyConfig`.
        seeds: number of seeds (0..N-1), as ``--seeds``.
        epochs: number of epochs, as ``--epochs``.
        schemes: scheme specs (a list, or a comma-separated string), as ``--schemes``.
        out: the run directory (default ``runs/<study name>``); running the same study into
            it again resumes it.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        executor: ``local`` (train here with the batched engine), ``ray`` (an embedded Ray,
            as ``initlab run --executor ray``), or an executor object such as
            ``initlab.study.ray_executor.RayExecutor(address="auto")`` (README: "Running on a
            cluster").
        progress: show progress (a ``tqdm.auto`` bar: a widget in Jupyter, no control
            characters in a cell's output).
        **overrides: ``limit_train``, ``limit_val`` (use only the first N images),
            ``max_group`` (train at most N models at once), ``data_dir``, ``download``
            (default True), ``probe`` (record the probe at init; default True), ``report``
            (write ``report.html`` at the end; default True), and any train setting
            (``lr``, ``batch_size``, ``optimizer``, ...: :func:`~initlab.study.config.train_fields`).

    Raises:
        InitlabError: one line, before anything is written, for an unknown override, a bad
            value, a study that cannot run or a run directory holding another study.
    """
    from initlab.study.config import train_fields
    from initlab.study.session import EXECUTORS, NotebookProgress, execute_plan, plan_run

    known = (*RUN_OPTIONS, *train_fields())
    for key in overrides:
        if key not in known:
            raise UnknownNameError(f"unknown override {key!r}{suggest(key, list(known))}; initlab.run takes "
                                   f"{', '.join(RUN_OPTIONS)} and the train settings {', '.join(train_fields())}")
    names = (*EXECUTORS, "ray")
    if isinstance(executor, str) and executor not in names:
        raise UnknownNameError(f"unknown executor {executor!r}{suggest(executor, list(names))}; "
                               f"initlab.run takes {', '.join(names)} or an executor object")
    if not isinstance(executor, str) and not callable(getattr(executor, "execute", None)):
        raise InitlabError(f"executor must be 'local', 'ray' or an object with execute(driver), "
                           f"got {type(executor).__name__}")
    options = {k: overrides.pop(k) for k in RUN_OPTIONS if k in overrides}
    for flag in ("download", "probe", "report"):
        if flag in options and not isinstance(options[flag], bool):
            raise InitlabError(f"{flag} must be True or False, got {options[flag]!r}")
    plan = plan_run(study, seeds=seeds, epochs=epochs, schemes=schemes,
                    limit_train=options.get("limit_train"), limit_val=options.get("limit_val"),
                    train=overrides or None, out=out, device=device, data_dir=options.get("data_dir"),
                    download=options.get("download", True), max_group=options.get("max_group"))
    notebook = _in_notebook()

    def log(line: str) -> None:
        if progress:
            print(f"initlab.run: {line}", file=sys.stdout if notebook else sys.stderr)

    runner, started = None, False
    if executor == "ray":  # the CLI's --executor ray with its defaults (embedded Ray, 1 CPU a task)
        from initlab.study.ray_executor import RayExecutor

        runner = RayExecutor(device=device, data_dir=options.get("data_dir"), probe=options.get("probe", True),
                             log=log)
        runner.check()
        runner.connect()
        started = True
    elif not isinstance(executor, str):
        runner = executor  # e.g. RayExecutor(address="auto", num_cpus=2)
    try:
        result, _ = execute_plan(
            plan, device=device, data_dir=options.get("data_dir"), probe=options.get("probe", True),
            max_group=options.get("max_group"), log=log, executor=runner,
            progress=lambda total, pending: NotebookProgress(total, enabled=progress, notebook=notebook,
                                                             every=pending))
    finally:
        if started:
            runner.close()  # the Ray started here
    if result.failed:
        log(f"{result.failed} model(s) failed (see res.cells()); run again to retry them")
    if options.get("report", True):
        from initlab.report.build import build_report

        try:
            build_report(plan.out)
        except InitlabError as exc:  # the results stay; say why there is no report
            log(f"report: {exc}")
    return Results(plan.out, run=result)


def load(run_dir: str | os.PathLike[str]) -> Results:
    """The :class:`~initlab.results.Results` of a finished or partial run, opened read-only
    (the store is never changed). A directory that is not a run directory (missing, empty,
    without ``initlab.sqlite``, or whose store cannot be read) is a one-line
    :class:`InitlabError`."""
    if not isinstance(run_dir, (str, os.PathLike)):
        raise InitlabError(f"a run directory is given by its path, got {type(run_dir).__name__}")
    return Results(run_dir)
