"""Running a suite: each (cell, seed) once, records written, cached runs reused, a table printed.

A run whose config hash already has a record is not recomputed unless `force=true`; an
interrupted run resumes from the checkpoint in its run folder (same hash, same folder).
"""

from __future__ import annotations

import fnmatch
import heapq
import random
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ..environment import environment, peak_memory_bytes, resolve_device
from ..results import (
    RecordError,
    RunRecord,
    find_records,
    load_record,
    records_dir,
    run_dir,
    scan_records,
    write_record,
)
from .estimate import estimate_seconds
from .identity import protocol_hash, protocol_of
from .parallel import plan_jobs, run_in_workers
from .resolve import ResolvedCell, resolve_cells
from .tasks import TASKS, RunContext
from .validate import validate_cells

__all__ = ["execute", "finished_record", "makespan", "plan_table", "resolve_device", "run_suite", "summary_table"]


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def execute(cell: ResolvedCell, results_dir: Path, *, progress: bool = True, fresh: bool = False) -> RunRecord:
    """Run one cell for one seed and return its record (not yet written).

    An unfinished run resumes from the checkpoints in its run folder; `fresh` deletes them
    first (force=true: recompute from scratch).
    """
    device = resolve_device(cell.config.device)
    if cell.task not in TASKS:
        raise ValueError(f"suite '{cell.suite}': unknown task '{cell.task}'; known: {', '.join(TASKS.names())}")
    ctx = RunContext(results_dir, run_dir(results_dir, cell.suite, cell.cell, cell.config_hash), device, progress)
    if fresh and ctx.run_dir.exists():
        shutil.rmtree(ctx.run_dir)
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _seed_everything(cell.seed)
    t0 = time.perf_counter()
    result = TASKS.get(cell.task)(cell, ctx)
    wall = time.perf_counter() - t0
    notes = list(result.notes)
    if device.type == "cpu":
        notes.append("peak_memory_bytes is the process's max RSS (includes earlier cells of the same process)")
    return RunRecord(
        suite=cell.suite,
        suite_version=cell.suite_version,
        cell=cell.cell,
        budget=cell.budget,
        seed=cell.seed,
        config=cell.plain_config(),
        config_hash=cell.config_hash,
        metrics=result.metrics,
        curves=result.curves,
        notes=notes,
        artifacts=result.artifacts,
        per_example=result.per_example,
        test_points=result.test_points,
        wall_time_s=wall,
        peak_memory_bytes=peak_memory_bytes(device),
        environment=environment(device),
    )


def summary_table(
    records: Sequence[RunRecord], metrics: Sequence[str], title: str, status: Sequence[str] = ()
) -> Table:
    """A rich table: one row per run, the suite's metrics as `mean ± se`.

    A run's row is labelled with its cell and the overrides that set it apart from the suite
    file (vaebench.runner.identity), e.g. `diagonal [train.epochs=3]`. `metrics` may hold
    shell-style patterns ("*/fused_speedup_vs_reference/*"); with none, the first eight metric
    names are shown.
    """
    present = sorted({m for r in records for m in r.metrics})
    shown = [m for pat in metrics for m in (fnmatch.filter(present, pat) if any(c in pat for c in "*?[") else [pat])]
    shown = list(dict.fromkeys(shown)) or present[:8]
    table = Table(title=title)
    for col in ("row", "seed", *shown, "time (s)", *(["status"] if status else [])):
        table.add_column(col, justify="left" if col in ("row", "status") else "right")
    for i, r in enumerate(records):
        cells = []
        for m in shown:
            v = r.metrics.get(m)
            cells.append("-" if v is None else (f"{v.mean:.4g} ± {v.se:.2g}" if v.se is not None else f"{v.mean:.4g}"))
        row = [escape(protocol_of(r).label), str(r.seed), *cells, f"{r.wall_time_s:.1f}"]
        if status:
            row.append(status[i])
        table.add_row(*row)
    return table


def finished_record(results_dir: Path, cell: ResolvedCell, console: Console | None = None) -> RunRecord | None:
    """The newest readable record of this run, or None; a damaged one counts as absent.

    "This run" is the leaderboard's identity: the same suite version, cell and seed, and the same
    protocol (`protocol_hash`: the config without what cannot change the task's numbers). So a
    new default in a section the task never reads (one more op in `kernels.ops` for a training
    suite) does not make every committed record look unfinished, and a row of the leaderboard
    and a cached run are one notion. A damaged record (torn by a full disk, edited by hand) is
    named on `console` and skipped, so the run is recomputed and a new record written beside it
    (records are never edited).
    """
    want = protocol_hash(cell.plain_config(), cell.task)
    for path in reversed(find_records(results_dir, cell.suite, cell.cell)):
        try:
            record = load_record(path)
        except RecordError as exc:
            if console is not None:
                console.print(f"[yellow]damaged record skipped, recomputing:[/yellow] {escape(str(exc))}")
            continue
        same_run = record.suite_version == cell.suite_version and record.seed == cell.seed
        if same_run and protocol_hash(record.config, cell.task) == want:
            return record
    return None


def _label(cell: ResolvedCell) -> str:
    """How the progress bar and the log name a run."""
    return f"{cell.cell} seed {cell.seed}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 2 * 3600 else f"{seconds / 3600:.1f} h"


def plan_table(cells: Sequence[ResolvedCell], results_dir: Path, force: bool) -> tuple[Table, list[float], int]:
    """What `run` would do (cell, seed, hash, cached or new, time estimate), the estimated
    seconds of each new run that has an estimate (suite order), and how many new runs have none."""
    earlier, _ = scan_records(results_dir) if (results_dir / "records").is_dir() else ([], [])
    table = Table(title="runs (dry run: nothing is computed)")
    for col in ("cell", "seed", "config hash", "status", "estimate", "from"):
        table.add_column(col)
    known: list[float] = []
    unknown = 0
    for cell in cells:
        cached = not force and finished_record(results_dir, cell) is not None
        est = estimate_seconds(cell, earlier)
        if not cached:
            known += [] if est.seconds is None else [est.seconds]
            unknown += est.seconds is None
        table.add_row(
            cell.cell,
            str(cell.seed),
            cell.config_hash[:12],
            "cached" if cached else "new",
            "0 s" if cached else _duration(est.seconds),
            "" if cached else est.basis,
        )
    return table, known, unknown


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Wall time of runs taken in order by the first free of `workers` (how run_in_workers schedules)."""
    free = [0.0] * max(1, workers)
    for s in seconds:
        heapq.heapreplace(free, free[0] + s)
    return max(free)


def run_suite(cfg: DictConfig, overrides: Sequence[str] = (), *, console: Console | None = None) -> list[RunRecord]:
    """Run every (cell, seed) of `cfg.suite` under `cfg.budget`; returns the records.

    Args:
        cfg: a composed RunConfig (Hydra's, or built with OmegaConf for tests).
        overrides: the command line's Hydra overrides (they win over the suite's layers).
    """
    if console is None:
        console = Console()
        if not console.is_terminal:  # logs and CI: do not squeeze the table into 80 columns
            console = Console(width=200)
    cells = resolve_cells(cfg, overrides)
    results_dir = Path(cfg.results_dir)
    validate_cells(cells, results_dir)  # every config problem now, not after hours of training
    plan_jobs(cfg.get("jobs"), len(cells), str(cfg.device))  # jobs= checked before the work, too
    if cfg.dry_run:
        table, known, unknown = plan_table(cells, results_dir, bool(cfg.force))
        plan = plan_jobs(cfg.get("jobs"), len(known) + unknown, str(cfg.device))
        total = makespan(known, plan.jobs)
        console.print(
            f"[bold]vaebench[/bold] suite [cyan]{cfg.suite.name}[/cyan] v{cfg.suite.version}, budget "
            f"[cyan]{cfg.budget.name}[/cyan]: config valid, {len(cells)} run(s) -> {results_dir.resolve()}"
        )
        console.print(table)
        if plan.jobs > 1:
            console.print(
                f"in {plan.jobs} worker processes, {plan.threads} torch thread(s) each (the estimates are "
                "the earlier runs' times at their own thread counts)"
            )
        if unknown == 0:
            console.print(f"estimated total: {_duration(total)}")
        elif not known:
            console.print("estimated total: unknown (no new run has an earlier record of its cell to estimate from)")
        else:
            console.print(
                f"estimated total: {_duration(total)} for the runs with an estimate, plus {unknown} "
                "run(s) with no earlier record of their cell"
            )
        for cell in cells[:1]:
            console.print(f"resolved config of cell '{cell.cell}' (the others differ in their cell layer):")
            console.print(escape(OmegaConf.to_yaml(cell.config)), end="")
        return []
    suite = cfg.suite
    console.print(
        f"[bold]vaebench[/bold] suite [cyan]{suite.name}[/cyan] v{suite.version}, budget "
        f"[cyan]{cfg.budget.name}[/cyan]: {len(cells)} run(s) -> {results_dir.resolve()}"
    )
    done: dict[int, RunRecord] = {}
    for i, cell in enumerate(cells):
        record = None if cfg.force else finished_record(results_dir, cell, console)
        if record is not None:
            done[i] = record
    pending = [i for i in range(len(cells)) if i not in done]
    plan = plan_jobs(cfg.get("jobs"), len(pending), str(cfg.device))
    if plan.jobs > 1:
        console.print(
            f"{len(pending)} new run(s) in {plan.jobs} worker processes, {plan.threads} torch thread(s) each "
            "(jobs=1: one process)"
        )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not cfg.progress,
        transient=False,
    ) as bar:
        task = bar.add_task(f"{suite.name}", total=len(cells), completed=len(done))
        if plan.jobs > 1:
            running: list[ResolvedCell] = []

            def show_running() -> None:
                bar.update(task, description=f"{suite.name}: {', '.join(_label(c) for c in running)}")

            def started(cell: ResolvedCell) -> None:
                running.append(cell)
                show_running()

            order = {id(cells[i]): i for i in pending}  # run_in_workers yields the cells it was given
            for cell, record in run_in_workers(
                [cells[i] for i in pending], results_dir, plan, execute, fresh=bool(cfg.force), started=started
            ):
                done[order[id(cell)]] = record
                running.remove(cell)
                console.print(f"finished {escape(_label(cell))} ({record.wall_time_s:.0f} s)")
                show_running()
                bar.advance(task)
        else:
            for i in pending:
                cell = cells[i]
                bar.update(task, description=f"{suite.name}: {_label(cell)}")
                record = execute(cell, results_dir, progress=cfg.progress, fresh=bool(cfg.force))
                write_record(record, results_dir)
                done[i] = record
                bar.advance(task)
    records = [done[i] for i in range(len(cells))]
    status = ["new" if i in pending else "cached" for i in range(len(cells))]
    console.print(summary_table(records, list(suite.metrics), f"{suite.name} ({cfg.budget.name})", status))
    notes: dict[str, list[str]] = {}
    for r in records:
        for note in r.notes:
            notes.setdefault(note, []).append(r.cell)
    for note, where in notes.items():
        cells_txt = (
            "all cells" if len(set(where)) == len({r.cell for r in records}) else ", ".join(dict.fromkeys(where))
        )
        console.print(f"  note ({escape(cells_txt)}): {escape(note)}")
    console.print(f"records: {records_dir(results_dir, suite.name).resolve()}")
    plots = sorted({str(results_dir / a) for r in records for k, a in r.artifacts.items() if k.startswith("plot")})
    if plots:
        console.print(f"plots:   {', '.join(plots)}")
    return records
