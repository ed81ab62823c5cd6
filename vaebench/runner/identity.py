"""Run identity: which records measure the same protocol, and how a run differs from its suite.

A protocol is (suite, suite version, budget, dataset, cell, protocol hash), the protocol hash
being the sha256 of the record's stored `config` with the seed and everything that does not
change the numbers removed (NON_SEMANTIC_KEYS, the budget's description, where the data lives).
It is derived from the stored config when the records are read, so records of any schema
version need no migration. Records of one protocol differ only in their seed: they are the
seeds of one row.

Overrides are derived, not recorded: a record's overrides are the keys where its config
differs from the suite file's own resolution of that cell and budget (resolve.py without a
command line). A suite file edited since the run shows up the same way, which is the
point: the row then no longer measures what the suite file says.

It is the runner's (it re-resolves suite files), so the run summary, the leaderboard and
`vaebench compare` all read it from here without the runner importing the leaderboard.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..config import NON_SEMANTIC_KEYS, RunConfig, without_added_defaults
from ..results import RunRecord
from .resolve import ConfigError, resolve_cells
from .suite import SuiteError, find_suite, load_suite

__all__ = ["Protocol", "flatten", "overrides", "protocol_hash", "protocol_of", "suite_resolution"]

# Keys that name where or how things are stored, not what is computed (dotted paths).
_NOT_PROTOCOL = {*NON_SEMANTIC_KEYS, "seed", "budget.description", "dataset.data_dir", "dataset.download"}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists stay values (an empty mapping stays a value too)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


# Config sections a task never reads: they cannot change its numbers, so they are not part of its
# protocol (a new default there, e.g. one more op in kernels.ops, must not split a train_eval row).
UNREAD_SECTIONS: dict[str, tuple[str, ...]] = {
    "train_eval": ("kernels", "gradients", "exact"),
    "gradients": ("kernels", "exact"),
    "exact": ("kernels", "gradients"),
}


def _protocol_items(config: Mapping[str, Any], task: str | None = None) -> dict[str, Any]:
    """Flattened keys that decide the numbers of `task` (None: every section); an empty mapping
    (no kwargs) is the same as none."""
    skip = {*_NOT_PROTOCOL, *UNREAD_SECTIONS.get(task or "", ())}
    # a key added to the schema since older records were written counts only off its default
    flat = flatten(without_added_defaults(config))
    return {k: v for k, v in flat.items() if k not in skip and k.split(".")[0] not in skip and v != {}}


def protocol_hash(config: Mapping[str, Any], task: str | None = None) -> str:
    """sha256 (hex) of the config's protocol keys for `task`: equal for the seeds of one protocol."""
    blob = json.dumps(_protocol_items(config, task), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@lru_cache(maxsize=64)
def _task_of(suite: str) -> str | None:
    """The task of a suite file (None when there is no such suite file)."""
    try:
        return str(load_suite(suite).task)
    except SuiteError:
        return None


@dataclass(frozen=True)
class Protocol:
    """What one row of a leaderboard measures; `label` is the cell with its overrides."""

    suite: str
    suite_version: int
    budget: str
    dataset: str
    cell: str
    hash: str
    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.cell} [{', '.join(self.overrides)}]" if self.overrides else self.cell

    @property
    def block(self) -> tuple[str, int, str, str]:
        """The table block the row belongs to: suite, version, budget, dataset."""
        return (self.suite, self.suite_version, self.budget, self.dataset)


@lru_cache(maxsize=256)
def _resolution(path: str, mtime_ns: int, budget: str, cell: str) -> tuple[int, str] | None:
    """(suite version, JSON of the resolved cell config) of the suite file at `path` (as of mtime_ns)."""
    try:
        spec = load_suite(path)
    except SuiteError:
        return None
    if budget not in spec.budgets or cell not in [c.name for c in spec.cells]:
        return None
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), {"suite": spec, "budget": {"name": budget}})
    assert isinstance(cfg, DictConfig)  # a structured config merged with a mapping
    cfg.seed = 0
    cfg.cells = [cell]
    try:
        (resolved,) = resolve_cells(cfg)
    except ConfigError:
        return None
    return int(spec.version), json.dumps(resolved.plain_config(), default=str)


def suite_resolution(suite: str, budget: str, cell: str) -> tuple[int, dict[str, Any]] | None:
    """The suite file's own config for (budget, cell), or None when the suite or cell is unknown.

    The suite is found as `vaebench run` finds it (suite folders, VAEBENCH_SUITE_DIRS); the
    resolution is cached per file and modification time, so an edited suite file is re-read.
    """
    try:
        path = find_suite(suite)
        mtime = path.stat().st_mtime_ns
    except (SuiteError, OSError):
        return None
    found = _resolution(str(path), mtime, budget, cell)
    return None if found is None else (found[0], json.loads(found[1]))


def _show(value: Any) -> str:
    """A value as the command line writes it: true/false/null, lists as JSON, the rest as is."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def overrides(record: RunRecord) -> tuple[str, ...]:
    """The record's `key=value` differences from its suite file's resolution (sorted by key).

    "~key" marks a key the suite sets and the record lacks. A record whose suite version is not
    the suite file's version gets ("suite file now vN",) instead: its overrides are unknown.
    """
    found = suite_resolution(record.suite, record.budget, record.cell)
    if found is None:
        return ()
    version, expected = found
    if version != record.suite_version:
        return (f"suite file now v{version}",)
    task = _task_of(record.suite)
    have, want = _protocol_items(record.config, task), _protocol_items(expected, task)
    out = [f"{k}={_show(have[k])}" for k in sorted(have) if k not in want or want[k] != have[k]]
    out += [f"~{k}" for k in sorted(want) if k not in have]
    return tuple(out)


def protocol_of(record: RunRecord) -> Protocol:
    """The protocol (row identity) of a record, from its stored config."""
    dataset = str((record.config.get("dataset") or {}).get("name", ""))
    return Protocol(
        record.suite,
        int(record.suite_version),
        record.budget,
        dataset,
        record.cell,
        protocol_hash(record.config, _task_of(record.suite)),
        overrides(record),
    )
