"""Running a suite: each (cell, seed) once, records written, cached runs reused, a table printed.

A run whose config hash already has a record is not recomputed unless `force=true`; an
interrupted run resumes from the checkpoint in its run folder (same hash, same folder).
"""

from __future__ import annotations

import fnmatch
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
from .identity import protocol_of
from .resolve import ResolvedCell, resolve_cells
from .tasks import TASKS, RunContext
from .validate import validate_cells

__all__ = ["execute", "finished_record", "plan_table", "resolve_device", "run_suite", "summary_table"]


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
    """The newest readable record of this exact config, or None; a damaged one counts as absent.

    A damaged record (torn by a full disk, edited by hand) is named on `console` and skipped,
    so the run is recomputed and a new record written beside it (records are never edited).
    """
    for path in reversed(find_records(results_dir, cell.suite, cell.cell, cell.config_hash)):
        try:
            record = load_record(path)
        except RecordError as exc:
            if console is not None:
                console.print(f"[yellow]damaged record skipped, recomputing:[/yellow] {escape(str(exc))}")
            continue
        if record.config_hash == cell.config_hash:
            return record
    return None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 2 * 3600 else f"{seconds / 3600:.1f} h"


def plan_table(cells: Sequence[ResolvedCell], results_dir: Path, force: bool) -> tuple[Table, float, int]:
    """What `run` would do (cell, seed, hash, cached or new, time estimate), the estimated
    seconds of the runs that have an estimate, and how many new runs have none."""
    earlier, _ = scan_records(results_dir) if (results_dir / "records").is_dir() else ([], [])
    table = Table(title="runs (dry run: nothing is computed)")
    for col in ("cell", "seed", "config hash", "status", "estimate", "from"):
        table.add_column(col)
    total, unknown = 0.0, 0
    for cell in cells:
        cached = not force and finished_record(results_dir, cell) is not None
        est = estimate_seconds(cell, earlier)
        if not cached:
            total += est.seconds or 0.0
            unknown += est.seconds is None
        table.add_row(
            cell.cell,
            str(cell.seed),
            cell.config_hash[:12],
            "cached" if cached else "new",
            "0 s" if cached else _duration(est.seconds),
            "" if cached else est.basis,
        )
    return table, total, unknown


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
    if cfg.dry_run:
        table, total, unknown = plan_table(cells, results_dir, bool(cfg.force))
        console.print(
            f"[bold]vaebench[/bold] suite [cyan]{cfg.suite.name}[/cyan] v{cfg.suite.version}, budget "
            f"[cyan]{cfg.budget.name}[/cyan]: config valid, {len(cells)} run(s) -> {results_dir.resolve()}"
        )
        console.print(table)
        if unknown == 0:
            console.print(f"estimated total: {_duration(total)}")
        elif unknown == len(cells):
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
    records: list[RunRecord] = []
    status: list[str] = []
    suite = cfg.suite
    console.print(
        f"[bold]vaebench[/bold] suite [cyan]{suite.name}[/cyan] v{suite.version}, budget "
        f"[cyan]{cfg.budget.name}[/cyan]: {len(cells)} run(s) -> {results_dir.resolve()}"
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
        task = bar.add_task(f"{suite.name}", total=len(cells))
        for cell in cells:
            bar.update(task, description=f"{suite.name}: {cell.cell} seed {cell.seed}")
            done = None if cfg.force else finished_record(results_dir, cell, console)
            if done is not None:
                records.append(done)
                status.append("cached")
            else:
                record = execute(cell, results_dir, progress=cfg.progress, fresh=bool(cfg.force))
                write_record(record, results_dir)
                records.append(record)
                status.append("new")
            bar.advance(task)
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
