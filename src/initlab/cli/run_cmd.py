"""``initlab run [PRESET | spec.toml] ...``: run a study, resumably, then summarize and report.

With no argument it runs the ``seed`` preset: the article's 7 schemes x 3 seeds, 10 epochs,
on Fashion-MNIST. Results go to ``--out`` (default ``runs/<study name>``); running the same
study into the same directory again resumes it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from initlab.errors import InitlabError


def __getattr__(name: str) -> Any:
    """``Progress`` (the CLI's status line) and ``_ProgressSink`` live in
    :mod:`initlab.study.session`; imported on first use so that ``initlab --help`` stays light."""
    if name in ("Progress", "_ProgressSink"):
        from initlab.study import session

        return session.Progress if name == "Progress" else session.ProgressSink
    raise AttributeError(name)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a study (default: the article's 'seed' preset)",
                       description="Train a grid of schemes x seeds x models x datasets with the batched "
                                   "engine, store results in RUN_DIR/initlab.sqlite (resumable), print a "
                                   "summary and write RUN_DIR/report.html.")
    p.add_argument("study", nargs="?", default="seed", help="a preset name (seed, deep, smoke) or a spec.toml file")
    p.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    p.add_argument("--epochs", type=int, help="number of epochs")
    p.add_argument("--schemes", help="comma-separated scheme specs, e.g. zeros,he_normal,'uniform(a=-1,b=1)'")
    p.add_argument("--out", help="run directory (default runs/<study name>)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--data-dir", help="data root holding fashion-mnist/ and mnist/ (else $INITLAB_DATA_DIR, "
                                      "then the user cache; missing files are downloaded)")
    p.add_argument("--no-download", action="store_true", help="never download missing data files")
    p.add_argument("--limit-train", type=int, help="train on the first N training images only")
    p.add_argument("--limit-val", type=int, help="validate on the first N validation images only")
    p.add_argument("--max-group", type=_max_group, metavar="N|auto",
                   help="train at most N models at once (memory bound); auto: as many as half the "
                        "device's free memory holds by the engine's memory model")
    p.add_argument("--precision", choices=("fp32", "tf32", "bf16"),
                   help="arithmetic of training (default fp32, the article's): tf32 (CUDA TF32 matmuls) or "
                        "bf16 (bfloat16 matrix products, float32 weights and Adam state); a train setting, "
                        "as [train] precision in a spec")
    fast = p.add_mutually_exclusive_group()
    fast.add_argument("--compile", dest="step", action="store_const", const="compile", default="eager",
                      help="run the MLP engine's step through torch.compile (eager where it cannot)")
    fast.add_argument("--cuda-graphs", dest="step", action="store_const", const="cuda-graphs",
                      help="replay the MLP engine's step as a CUDA graph (needs --device cuda; constant lr)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    p.add_argument("--no-probe", action="store_true",
                   help="do not record each model's signal-propagation probe at init (the report's "
                        "'Signal probe' section)")
    p.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard event files to DIR")
    p.add_argument("--wandb", nargs="?", const="initlab", metavar="PROJECT",
                   help="also log every model to Weights & Biases (WANDB_MODE=offline works)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    ray = p.add_argument_group("executor", "where the groups train (README: 'Running on a cluster')")
    ray.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local: here, one group after the other (default); ray: one Ray task per group")
    ray.add_argument("--address", help="with --executor ray: join this cluster (auto, HOST:PORT or "
                                       "ray://HOST:PORT; default: start a Ray on this machine)")
    ray.add_argument("--num-cpus", type=float, help="with --executor ray: CPUs each task reserves (its torch "
                                                    "threads; default 1)")
    ray.add_argument("--gpus-per-task", type=float, help="with --executor ray: GPUs each task reserves "
                                                         "(it then trains on cuda)")
    ray.add_argument("--ship-data", action="store_true", help="with --executor ray: put the data in Ray's "
                                                              "object store once instead of each worker reading it")
    p.set_defaults(func=run)


def _max_group(text: str) -> int | str:
    """``--max-group``'s value: a positive integer or ``auto``."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an integer nor 'auto'") from None


def load_study_config(arg: str) -> Any:
    """A preset by name, or a TOML spec file by path (:func:`initlab.study.session.resolve_study`)."""
    from initlab.study.session import resolve_study

    return resolve_study(arg)


_FLAG_NAMES = {"seeds": "--seeds", "epochs": "--epochs", "limit_train": "--limit-train",
               "limit_val": "--limit-val", "max_group": "--max-group", "out": "--out"}


def validate(args: argparse.Namespace) -> tuple[Any, Any, Path]:
    """Check everything a run needs before anything is written: the flags, the device,
    the optional extras asked for, the study (spec or preset and its overrides), that the
    data loads and every model fits it, the output places (``--out``, ``--tensorboard``)
    and, when ``--out`` holds a store already, that it is readable and holds this study
    (:func:`initlab.study.session.plan_run`, which :func:`initlab.run` shares).
    Returns ``(config, study, out)``; raises a one-line :class:`InitlabError` and leaves
    the file system as it was."""
    from initlab.outputs import check_output_dir
    from initlab.study.session import check_device, check_positive, plan_run

    for flag in ("seeds", "epochs", "limit_train", "limit_val", "max_group"):
        if getattr(args, flag) != "auto":
            check_positive(_FLAG_NAMES[flag], getattr(args, flag))
    check_device(args.device)
    if getattr(args, "step", "eager") == "cuda-graphs" and not args.device.startswith("cuda"):
        raise InitlabError("--cuda-graphs replays CUDA graphs; add --device cuda, or drop it")
    _check_extras(args)
    executor = _check_executor(args)
    plan = plan_run(args.study, seeds=args.seeds, epochs=args.epochs, schemes=args.schemes,
                    limit_train=args.limit_train, limit_val=args.limit_val, out=args.out,
                    device=args.device, data_dir=args.data_dir, download=not args.no_download,
                    max_group=args.max_group, names=_FLAG_NAMES,
                    train={"precision": args.precision} if getattr(args, "precision", None) else None)
    if args.tensorboard:
        check_output_dir(args.tensorboard, "--tensorboard")
    if executor is not None:
        executor.connect()  # joins or starts Ray; a cluster without the GPUs asked for is refused here
    args.executor_obj = executor
    args.plan_obj = plan  # with the group size --max-group auto chose
    return plan.config, plan.study, plan.out


def _check_executor(args: argparse.Namespace) -> Any:
    """The ``--executor ray`` executor, checked (Ray installed, --address reachable,
    --gpus-per-task with CUDA), or ``None`` for ``local``; ray's flags without it are refused."""
    if args.executor != "ray":
        given = [f for f, v in (("--address", args.address), ("--num-cpus", args.num_cpus),
                                ("--gpus-per-task", args.gpus_per_task), ("--ship-data", args.ship_data or None))
                 if v is not None]
        if given:
            raise InitlabError(f"{given[0]} is an option of --executor ray; add --executor ray or drop it")
        return None
    from initlab.study.ray_executor import RayExecutor

    executor = RayExecutor(address=args.address, num_cpus=1 if args.num_cpus is None else args.num_cpus,
                           gpus_per_task=args.gpus_per_task or 0,
                           ship_data=args.ship_data, device=args.device, data_dir=args.data_dir,
                           probe=not args.no_probe, log=lambda line: print(f"initlab run: {line}", file=sys.stderr))
    executor.check()
    return executor


def run(args: argparse.Namespace) -> int:
    from initlab.study import render_table
    from initlab.study.session import Progress, RunPlan, execute_plan

    config, study, out = validate(args)
    plan = getattr(args, "plan_obj", None) or RunPlan(config=config, study=study, out=out)
    executor = getattr(args, "executor_obj", None)
    try:
        result, summary = execute_plan(
            plan, device=args.device, data_dir=args.data_dir, probe=not args.no_probe, max_group=args.max_group,
            progress=lambda total, pending: Progress(total, enabled=not args.quiet, every=pending),
            log=lambda line: print(f"initlab run: {line}", file=sys.stderr), executor=executor,
            step=getattr(args, "step", "eager"))
    finally:
        if executor is not None:
            executor.close()  # the Ray it started here (a joined cluster keeps running)
    if result.failed:
        print(f"initlab run: {result.failed} model(s) failed (see `initlab summary`); run again to retry them",
              file=sys.stderr)
    print(render_table(summary))
    print(f"wall time {result.wall:.1f} s; results in {out}", file=sys.stderr)
    return _after_run(out, args)


def _check_extras(args: argparse.Namespace) -> None:
    """A missing optional package is reported before training, not after it."""
    from initlab.report.extras import require

    if args.tensorboard:
        require("tensorboard.summary.writer.event_file_writer", "tensorboard")
    if args.wandb:
        require("wandb", "wandb")


def _after_run(out: Path, args: argparse.Namespace) -> int:
    """Report and exports after a run (each failure is one line; the results stay)."""
    status = 0
    steps: list[tuple[str, Any]] = []
    if not args.no_report:
        steps.append(("report", lambda: __import__("initlab.report", fromlist=["build_report"]).build_report(out)))
    if args.tensorboard:
        steps.append(("tensorboard", lambda: __import__("initlab.report", fromlist=["export_tensorboard"])
                      .export_tensorboard(out, args.tensorboard)))
    if args.wandb:
        steps.append(("wandb", lambda: __import__("initlab.report", fromlist=["export_wandb"])
                      .export_wandb(out, project=args.wandb)))
    for what, step in steps:
        try:
            result = step()
            if isinstance(result, list):
                result = f"{len(result)} run(s) written" + (f" under {args.tensorboard}" if what == "tensorboard" else "")
            print(f"{what}: {result}", file=sys.stderr)
        except InitlabError as exc:
            print(f"initlab: error: {what}: {exc}", file=sys.stderr)
            status = 2
    return status
