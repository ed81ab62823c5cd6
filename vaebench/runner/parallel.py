"""Running a suite's runs side by side in worker processes (`jobs=`).

The models of the training suites are small (an MLP step at batch 100 is a few ms), so one run
barely uses a second core: torch's intra-op threads split matmuls too small to split well. Runs
in separate processes, one thread each, keep every core busy instead. Each run is the same
function as in the sequential path (`execute` + `write_record`), so a record, its checkpoint
folder and its resume are the same whichever path wrote it; only `environment.torch_threads`
in the record says how it ran.

Workers are started with "spawn" (a fresh interpreter): forking a process that already holds
torch's thread pools is unsafe. Ctrl-C reaches the workers too (same process group); each
unfinished run then restarts from its last checkpoint on the next invocation.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError
from ..results import RunRecord, write_record
from .resolve import ResolvedCell

__all__ = ["JobPlan", "plan_jobs", "run_in_workers"]


@dataclass(frozen=True)
class JobPlan:
    """How many worker processes run the pending runs, and how many torch threads each has."""

    jobs: int
    threads: int


def _cores() -> int:
    """The cores this process may run on (the affinity mask, which containers and Slurm set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def plan_jobs(requested: int | None, pending: int, device: str, cores: int | None = None) -> JobPlan:
    """The worker count for `pending` new runs.

    Args:
        requested: the `jobs=` key; None chooses: one worker per core on a CPU (at most one per
            pending run), one process on a GPU (runs on one device would only queue for it).
        pending: runs that have no finished record yet.
        device: the `device=` key ("cpu", "cuda", "cuda:N", "auto").
        cores: the cores to share (default: this process's affinity mask).
    Raises:
        ConfigError: `jobs` < 1.
    """
    if requested is not None and requested < 1:
        raise ConfigError(f"jobs={requested}: must be >= 1 (or unset to use one worker per core); set jobs=1")
    cores = cores or _cores()
    if requested is None:
        on_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        requested = 1 if on_gpu else cores
    jobs = max(1, min(requested, pending))
    if jobs == 1:
        return JobPlan(1, torch.get_num_threads())  # the sequential path leaves threads as the user set them
    return JobPlan(jobs, max(1, cores // jobs))


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


# One run as the sequential path does it: execute (given by the caller, runner.run.execute,
# pickled by name) and write the record.
Execute = Callable[..., RunRecord]


def _run_one(execute: Execute, cell: ResolvedCell, results_dir: Path, fresh: bool) -> RunRecord:
    record = execute(cell, results_dir, progress=False, fresh=fresh)
    write_record(record, results_dir)
    return record


def run_in_workers(
    cells: Sequence[ResolvedCell],
    results_dir: Path,
    plan: JobPlan,
    execute: Execute,
    *,
    fresh: bool,
    started: Callable[[ResolvedCell], None] = lambda cell: None,
) -> Iterator[tuple[ResolvedCell, RunRecord]]:
    """Run `cells` in `plan.jobs` worker processes; yield (cell, record) as each finishes.

    `execute(cell, results_dir, progress=, fresh=)` makes one run's record (the runner's own).

    Every record is written by its worker (atomically) before it is yielded, so an interrupted
    suite keeps every finished run. The first failing run stops the others (its exception is
    raised here, unchanged); their checkpoints remain for the next invocation.
    """
    context = multiprocessing.get_context("spawn")
    queue = list(cells)
    with ProcessPoolExecutor(plan.jobs, mp_context=context, initializer=_worker_init, initargs=(plan.threads,)) as pool:
        running: dict[Future[RunRecord], ResolvedCell] = {}
        try:
            while queue or running:
                while queue and len(running) < plan.jobs:
                    cell = queue.pop(0)
                    running[pool.submit(_run_one, execute, cell, results_dir, fresh)] = cell
                    started(cell)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    cell = running.pop(future)
                    yield cell, future.result()
        except BaseException:
            for future in running:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
