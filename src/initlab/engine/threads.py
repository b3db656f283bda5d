"""Models trained side by side on the CPU: a team of worker threads, one intra-op thread each.

The generic trainer's one-model-at-a-time path (``mode="each"``) runs K independent
forward and backward passes per step.  On the CPU each pass is a chain of kernels that
torch splits over its intra-op threads (OpenMP), and every kernel ends at a barrier where
the threads wait for each other.  Two passes of two different models share nothing, so
they can instead run at the same time, each on one thread, with no barrier between them:
torch's kernels release the GIL, and the Python around them (``functional_call``,
autograd's bookkeeping) is a few percent of a convolutional step.  Measured on the 6 x 32
``cnn`` on 2 cores (``benchmarks/bench_trainer.py``, README "Performance"), two models at a
time on one thread each beat one model at a time on two threads; on a machine shared with
other processes, where one of the two threads of a kernel is often descheduled while the
other waits at the barrier, by a wide margin.

:class:`Team` holds ``n`` worker threads (a :class:`concurrent.futures.ThreadPoolExecutor`)
whose intra-op thread count is fixed once, when they start, to ``per`` (OpenMP's and MKL's
thread counts are per-thread settings; ``torch.set_num_threads`` also sets the default of
threads started later, which the team sets back to what it was).  :func:`team_size` says
how many workers a step of K models uses: ``min(K, torch.get_num_threads())`` on the CPU,
none (one model at a time, all threads) with one thread, one model or another device.

Numerics: a model's pass on one thread sums its convolutions' and products' terms in
another order than on two, so it agrees with the one-at-a-time pass to float32 rounding,
not bit for bit (the same kind of difference as between two thread counts); two runs with
the same K and thread count give the same bits (model ``k`` always runs on the same kind
of thread: see :func:`assignment`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import torch

__all__ = ["Team", "team_size", "assignment", "run_split"]

T = TypeVar("T")


def team_size(K: int, device: torch.device, workers: int | None = None) -> int:
    """Worker threads for a step of *K* models on *device*: ``workers`` if given (at most
    K), else ``min(K, torch.get_num_threads())`` on the CPU; ``0`` (no team: one model at
    a time on the calling thread) for CUDA, one model, or a single thread."""
    if device.type != "cpu" or K < 2:
        return 0
    n = torch.get_num_threads() if workers is None else int(workers)
    n = min(n, K)
    return n if n >= 2 else 0


def assignment(K: int, n: int) -> tuple[list[list[int]], list[int]]:
    """Which models the *n* workers train (worker ``w``: ``w, w + n, w + 2n, ...``, the first
    ``n * (K // n)`` models) and which the calling thread trains afterwards, on all its
    threads (the remainder ``K mod n``, so that no worker idles while another trains one
    more model than it)."""
    full = n * (K // n)
    return [list(range(w, full, n)) for w in range(n)], list(range(full, K))


class Team:
    """*n* worker threads with *per* intra-op threads each (see the module docstring)."""

    def __init__(self, n: int, per: int = 1) -> None:
        if n < 1 or per < 1:
            raise ValueError(f"a team needs n >= 1 workers of per >= 1 threads, got {n}, {per}")
        self.n, self.per = n, per
        self._pool = ThreadPoolExecutor(n, thread_name_prefix="initlab-model")
        before = torch.get_num_threads()
        started = threading.Barrier(n)

        def start() -> None:
            torch.set_num_threads(per)
            torch.get_num_threads()  # fixes this thread's count now (torch reads it lazily)
            started.wait()  # every worker is a thread of its own

        try:
            for f in [self._pool.submit(start) for _ in range(n)]:
                f.result()
        finally:
            torch.set_num_threads(before)  # the default for threads started later, as it was

    def run(self, fn: Callable[[int], T], n: int | None = None) -> list[T]:
        """``[fn(0), ..., fn(n-1)]`` (``n`` at most the team's size, default all), at the
        same time on the workers (share ``w`` on whichever worker is free: all are alike);
        re-raises the first worker's error after all have finished."""
        n = self.n if n is None else n
        if not 1 <= n <= self.n:
            raise ValueError(f"a team of {self.n} cannot run {n} shares at once")
        futures = [self._pool.submit(fn, w) for w in range(n)]
        for f in futures:
            f.exception()  # wait for all: none may still be writing when this returns
        return [f.result() for f in futures]

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> "Team":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_split(team: Team | None, K: int, one: Callable[[int, int], None],
              main: Callable[[int], None]) -> None:
    """Run ``one(k, w)`` for every model ``k`` of share ``w`` (:func:`assignment` over
    ``min(K, team.n)`` workers) on the workers, then ``main(k)`` for the remainder on the
    calling thread; without a team, or for fewer than two models, ``main(k)`` for all K."""
    n = 0 if team is None else min(K, team.n)
    if n < 2:
        for k in range(K):
            main(k)
        return
    shares, rest = assignment(K, n)

    def work(w: int) -> None:
        for k in shares[w]:
            one(k, w)

    team.run(work, n)
    for k in rest:
        main(k)
