"""The ``ray`` executor: one Ray task per group, streaming its records back to the driver.

The only module of initlab that imports Ray, and only inside functions (``pip install
'initlab[ray]'``). :class:`RayExecutor` implements :class:`~initlab.study.executor.Executor`:

* **Where**: ``address=None`` starts an embedded Ray on this machine (``ray.init()``),
  so the same command works on a laptop; ``"auto"``, ``"HOST:PORT"`` or
  ``"ray://HOST:PORT"`` joins an existing cluster (``ray start --head`` ...).
* **What is shipped**: per group, one task with its declared resources (``num_cpus`` CPUs,
  which are also its torch threads, and ``gpus_per_task`` GPUs: then it trains on
  ``cuda``) gets the cells as dicts (``Cell.to_dict``), a snapshot of what the trainer
  reads from the store (:func:`~initlab.study.events.store_snapshot`) and the engine
  options. The worker loads the data itself from ``data_dir`` (the nodes share it, or each
  has a copy: the IDX files are checked against their checksums), or, with
  ``ship_data=True``, gets it from Ray's object store, where the driver put each dataset
  once (Ray copies an object to a node once, whatever the number of tasks there).
* **The stream**: the task is a generator (``num_returns="streaming"``): the worker
  trains in a thread with an :class:`~initlab.study.events.EventSink` and yields each
  event as it happens; the driver waits on all the tasks in flight (``ray.wait``) and
  writes each event into the store as it arrives (:func:`~initlab.study.events.apply_event`),
  so the store and the progress display advance live. At most ``max_in_flight`` groups
  are in flight (default: as many as the cluster can run at once).
* **Faults**: Ray's own task retries are off (``max_retries=0``): the driver retries a
  group whose worker died (process killed, node lost: a Ray system error) up to
  ``max_retries`` times, after deleting the dead attempt's rows and keeping its cells
  ``running`` in one transaction (:meth:`~initlab.study.executor.GroupDriver.restart`), so
  no epoch is recorded twice. An exception inside a group's training fails that group's
  unfinished cells with its one-line message; the other groups go on. A killed driver
  leaves its cells ``running`` in the store and the next run restarts them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from initlab.errors import InitlabError
from initlab.study.cell import Cell
from initlab.study.events import Event, apply_event, one_line, store_snapshot

if TYPE_CHECKING:
    from initlab.study.executor import GroupDriver, TrainGroup

__all__ = ["RAY_INSTALL", "RayExecutor", "check_address", "require_ray"]

#: How to install what ``--executor ray`` needs.
RAY_INSTALL = "pip install 'initlab[ray]'"


def require_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InitlabError(f"--executor ray needs Ray, which is not installed; install it with "
                           f"{RAY_INSTALL} (or pip install 'ray>=2.9')") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT``; ``None`` for ``auto``."""
    if address == "auto":
        return None
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InitlabError(f"--address {address!r} is not auto, HOST:PORT or ray://HOST:PORT; "
                           f"use the address `ray start --head` printed")
    return host.strip("[]"), int(port)


def check_address(address: str | None, timeout: float = 3.0) -> None:
    """Fail in one line, before anything is written, when ``address`` is malformed or
    nothing listens there (a TCP connection within ``timeout`` seconds)."""
    if address is None:
        return
    where = _host_port(address)
    if where is None:
        return
    try:
        with socket.create_connection(where, timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise InitlabError(f"cannot reach a Ray cluster at --address {address!r} ({why}); start one "
                           f"with `ray start --head` or pass the address it printed") from None


def _slots(resources: dict[str, float], num_cpus: float, gpus: float) -> int:
    """How many tasks of ``num_cpus`` CPUs and ``gpus`` GPUs the cluster runs at once."""
    n = int(resources.get("CPU", 1) // num_cpus) if num_cpus > 0 else 1 << 30
    if gpus > 0:
        n = min(n, int(resources.get("GPU", 0) // gpus))
    return max(n, 1)


class RayExecutor:
    """Train a study's groups as Ray tasks (module docstring).

    Args:
        address: ``None`` (embedded Ray here), ``"auto"``, ``"HOST:PORT"`` or ``"ray://HOST:PORT"``.
        num_cpus: CPUs each task reserves; its torch threads.
        gpus_per_task: GPUs each task reserves (> 0: it trains on ``cuda``).
        max_in_flight: groups submitted and not yet finished (default: the cluster's slots).
        max_retries: times a group whose worker died is started again.
        ship_data: put each dataset in Ray's object store once, instead of each worker
            loading it from ``data_dir``.
        device, data_dir, probe, eval_batch_size, lsuv_batch, adam: the engine options of
            :func:`~initlab.study.local.engine_train_group`, built on the worker.
        train_group: ship this ``train_group(cells, sink)`` (cloudpickled) instead of the
            engine's (tests, custom trainers).
        init_options: more keyword arguments for ``ray.init`` (an embedded Ray's
            ``num_cpus``, ``_temp_dir``, ...).
        log: one-line messages (worker notes, retries).
    """

    name = "ray"

    def __init__(self, *, address: str | None = None, num_cpus: float = 1, gpus_per_task: float = 0,
                 max_in_flight: int | None = None, max_retries: int = 3, ship_data: bool = False,
                 device: str = "cpu", data_dir: str | os.PathLike[str] | None = None, probe: bool = True,
                 eval_batch_size: int | None = None, lsuv_batch: int = 256, adam: str = "auto",
                 train_group: TrainGroup | None = None, init_options: dict[str, Any] | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        if num_cpus <= 0:
            raise InitlabError(f"--num-cpus must be > 0, got {num_cpus}")
        if gpus_per_task < 0:
            raise InitlabError(f"--gpus-per-task must be >= 0, got {gpus_per_task}")
        if max_in_flight is not None and max_in_flight < 1:
            raise InitlabError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self.address = address
        self.num_cpus = num_cpus
        self.gpus_per_task = gpus_per_task
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.ship_data = ship_data
        if data_dir is None and os.environ.get("INITLAB_DATA_DIR"):
            data_dir = os.environ["INITLAB_DATA_DIR"]
        self.data_dir = os.path.abspath(data_dir) if data_dir is not None else None
        self.engine_options = {"device": "cuda" if gpus_per_task > 0 else device, "data_dir": self.data_dir,
                               "probe": probe, "eval_batch_size": eval_batch_size,
                               "lsuv_batch": lsuv_batch, "adam": adam}
        self.train_group = train_group
        self.init_options = dict(init_options or {})
        self.log = log or (lambda line: None)
        self._started = False

    # -- connecting ----------------------------------------------------------------------

    def check(self) -> None:
        """What can be checked without connecting: Ray importable, the address reachable,
        CUDA here for ``gpus_per_task`` on an embedded Ray. One-line errors."""
        require_ray()
        check_address(self.address)
        if self.gpus_per_task > 0 and self.address is None:
            import torch

            if not torch.cuda.is_available():
                raise InitlabError("--gpus-per-task asked for, but torch sees no CUDA device here; drop "
                                   "it, or pass --address of a Ray cluster with GPUs")

    def connect(self) -> Any:
        """Join (or start) Ray; returns the ``ray`` module. Reuses a session already
        initialized in this process. Fails in one line when the cluster cannot be
        reached or has fewer GPUs than a task asks for."""
        self.check()
        ray = require_ray()
        if not ray.is_initialized():
            client = (self.address or "").startswith("ray://")  # Ray Client takes fewer options
            options = {**({} if client else {"include_dashboard": False, "log_to_driver": False}),
                       **self.init_options}
            try:
                ray.init(address=self.address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise InitlabError(f"cannot join the Ray cluster at --address {self.address!r} "
                                   f"({' '.join(str(exc).split())[:200]}); check the address") from None
            self._started = True
        if self.gpus_per_task > 0:
            have = ray.cluster_resources().get("GPU", 0)
            if have < self.gpus_per_task:
                raise InitlabError(f"--gpus-per-task {self.gpus_per_task:g} asked for, but the Ray "
                                   f"cluster has {have:g} GPU(s); drop it or add GPU nodes")
        return ray

    def close(self) -> None:
        """Shut down the Ray this executor started (a joined session is left alone)."""
        if self._started:
            require_ray().shutdown()
            self._started = False

    # -- running -------------------------------------------------------------------------

    def execute(self, driver: GroupDriver) -> None:
        ray = self.connect()
        task = ray.remote(_group_task).options(
            num_returns="streaming", max_retries=0, retry_exceptions=False,
            num_cpus=self.num_cpus, num_gpus=self.gpus_per_task)
        slots = _slots(ray.cluster_resources(), self.num_cpus, self.gpus_per_task)
        in_flight = self.max_in_flight or slots
        shipped_group = ray.put(self.train_group) if self.train_group is not None else None
        data_refs: dict[str, Any] = {}
        threads = max(int(self.num_cpus), 1)

        def data_for(cell: Cell) -> Any:
            if not self.ship_data:
                return None
            key = repr((cell.dataset, cell.validation, cell.limit_train, cell.limit_val))
            if key not in data_refs:
                from initlab.study.local import load_train_data

                data_refs[key] = ray.put(load_train_data(cell, self.data_dir))
            return data_refs[key]

        def submit(i: int, *, again: bool = False) -> None:
            driver.restart(i) if again else driver.start(i)
            cells = driver.groups[i]
            gen = task.remote(shipped_group, [c.to_dict() for c in cells], store_snapshot(driver.store, cells),
                              self.engine_options, data_for(cells[0]), threads)
            running[gen] = i

        todo = list(range(len(driver.groups)))
        todo.reverse()
        running: dict[Any, int] = {}
        attempts = dict.fromkeys(todo, 0)
        try:
            while todo or running:
                while todo and len(running) < in_flight:
                    submit(todo.pop())
                ready, _ = ray.wait(list(running), num_returns=1)
                for gen in ready:
                    i = running[gen]
                    try:
                        event: Event = ray.get(next(gen))
                    except StopIteration:  # ended without its end event: a bug, not a crash
                        del running[gen]
                        driver.fail(i, "the worker's task ended before its group had trained")
                        continue
                    except ray.exceptions.RayTaskError as exc:  # raised outside the trainer
                        del running[gen]
                        driver.fail(i, one_line(exc.cause if exc.cause is not None else exc))
                        continue
                    except ray.exceptions.RayError as exc:  # the worker or its node died
                        del running[gen]
                        why = one_line(exc).split(";")[0][:160]
                        if attempts[i] < self.max_retries:
                            attempts[i] += 1
                            self.log(f"group {i + 1}/{len(driver.groups)}: worker lost ({why}); "
                                     f"restarting it (retry {attempts[i]} of {self.max_retries})")
                            submit(i, again=True)
                        else:
                            driver.fail(i, f"worker lost {attempts[i] + 1} times; last: {why}")
                        continue
                    if event["kind"] == "end":
                        del running[gen]
                        if event["error"] is None:
                            driver.complete(i, event["wall"])
                        else:
                            driver.fail(i, event["error"])
                    else:
                        apply_event(driver.sink(i), event, log=self.log)
        finally:
            for gen in running:  # the driver stops (an error, ^C): stop what it would not record
                try:
                    ray.cancel(gen, force=True)
                except Exception:  # noqa: BLE001,S110 - best effort on the way out
                    pass


# -- the worker side -------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _engine_group(options: dict[str, Any], data: Any) -> TrainGroup:
    """The engine's ``train_group`` for ``options``, kept across the tasks this worker
    process runs (its data cache with it); ``data``: the group's shipped data or ``None``."""
    from initlab.study.local import engine_train_group

    _WORKER["data"] = data
    key = repr((sorted(options.items()), data is None))
    if _WORKER.get("key") != key:
        loader = None if data is None else (lambda cell: _WORKER["data"])
        _WORKER["group"] = engine_train_group(
            **options, loader=loader, log=lambda line: _WORKER["emit"]({"kind": "log", "line": line}))
        _WORKER["key"] = key
    return _WORKER["group"]


def _group_task(train_group: TrainGroup | None, cells: Sequence[dict[str, Any]], snapshot: dict[str, Any],
                options: dict[str, Any], data: Any, threads: int) -> Any:
    """The Ray task of one group (a generator): train it in a thread, yield each event
    as it is emitted, the ``end`` event last."""
    import queue
    import threading

    import torch

    from initlab.study.events import stream_group

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    events: queue.SimpleQueue[Event] = queue.SimpleQueue()
    _WORKER["emit"] = events.put
    group = train_group if train_group is not None else _engine_group(options, data)
    worker = threading.Thread(target=stream_group, daemon=True,
                              args=(group, [Cell.from_dict(c) for c in cells], events.put, snapshot))
    worker.start()
    while True:
        event = events.get()
        yield event
        if event["kind"] == "end":
            break
    worker.join()
