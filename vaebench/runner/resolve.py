"""From a composed run config to the list of (cell, seed) runs, each with its own config.

Precedence, lowest first: the package defaults (vaebench/conf), the suite's `common` layer,
the chosen budget's layer, the cell's layer, then what the user set on the command line
(`dataset=...`, `train.epochs=3`): a command-line override always wins over the suite.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config import NON_SEMANTIC_KEYS, RunConfig
from ..errors import ConfigError
from .suite import check_cells

__all__ = ["ConfigError", "ResolvedCell", "config_hash", "resolve_cells", "user_keys"]

# Sections a suite may set and a command line may override.
_OVERRIDABLE = (
    "dataset",
    "model",
    "posterior",
    "estimator",
    "train",
    "eval",
    "gradients",
    "kernels",
    "exact",
    "device",
)


@dataclass
class ResolvedCell:
    """One run: suite cell x seed, with its complete config and that config's hash."""

    suite: str
    suite_version: int
    task: str
    cell: str
    budget: str
    seed: int
    config: DictConfig  # typed RunConfig without the suite
    config_hash: str

    def plain_config(self) -> dict[str, Any]:
        """The run's config as plain data, without the suite file (recorded by name and version)."""
        out = OmegaConf.to_container(self.config, resolve=True)
        assert isinstance(out, dict)
        out.pop("suite", None)
        return cast("dict[str, Any]", out)  # a structured config's keys are its field names


def user_keys(overrides: Sequence[str]) -> list[str]:
    """The config paths a list of Hydra override strings sets that the suite could also set."""
    keys = []
    for ov in OverridesParser.create().parse_overrides(list(overrides)):
        key = ov.key_or_group
        if key.split(".")[0] in _OVERRIDABLE and not ov.is_delete():
            keys.append(key)
    return keys


def config_hash(suite: str, suite_version: int, cell: str, config: dict[str, Any]) -> str:
    """sha256 of what determines the numbers: suite, version, cell and the semantic config."""
    semantic = {k: v for k, v in config.items() if k not in NON_SEMANTIC_KEYS}
    blob = json.dumps(
        {"suite": suite, "suite_version": suite_version, "cell": cell, "config": semantic},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _merge(base: DictConfig, layer: Any, where: str) -> DictConfig:
    try:
        merged = OmegaConf.merge(base, layer)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(
            f"{where}: key '{key}' does not fit the run schema: {exc.msg if hasattr(exc, 'msg') else exc}. "
            "Run `vaebench run --cfg job suite=...` to see the valid keys."
        ) from None
    assert isinstance(merged, DictConfig)
    return merged


def resolve_cells(cfg: DictConfig, overrides: Sequence[str] = ()) -> list[ResolvedCell]:
    """Expand a composed config into its runs (cells of the budget x seeds).

    Args:
        cfg: a composed RunConfig (from Hydra, or `OmegaConf.structured(RunConfig)` + layers).
        overrides: the command line's Hydra overrides; the keys they set win over the suite.
    """
    suite = cfg.suite
    check_cells(suite)  # names every misspelt or incompatible cell before any run starts
    budget = cfg.budget.name
    if budget not in suite.budgets:
        raise ConfigError(
            f"suite '{suite.name}' has no budget '{budget}'; it defines {sorted(suite.budgets)}. "
            "Choose one with budget=NAME."
        )
    layer = suite.budgets[budget]
    names = [c.name for c in suite.cells]
    chosen = list(layer.cells) if layer.cells is not None else names
    if cfg.cells is not None:
        unknown = sorted(set(cfg.cells) - set(names))
        if unknown:
            raise ConfigError(f"cells={list(cfg.cells)}: suite '{suite.name}' has no cell {unknown}; cells: {names}")
        chosen = [c for c in names if c in set(cfg.cells)]
    if not chosen:
        raise ConfigError(f"suite '{suite.name}' budget '{budget}' selects no cells")
    seeds = [cfg.seed] if cfg.seed is not None else list(layer.seeds or suite.seeds)
    if not seeds:
        raise ConfigError(f"suite '{suite.name}' budget '{budget}' has no seeds; set seed=N")

    base = OmegaConf.structured(RunConfig)
    plain = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(plain, dict)
    plain.pop("suite")
    base = _merge(base, plain, "composed config")
    base = _merge(base, suite.common, f"suite '{suite.name}' common layer")
    base = _merge(base, layer.config, f"suite '{suite.name}' budget '{budget}'")
    keys = user_keys(overrides)
    cells = {c.name: c for c in suite.cells}
    out = []
    for name in chosen:
        conf = _merge(base, cells[name].config, f"suite '{suite.name}' cell '{name}'")
        for key in keys:  # the command line wins over every suite layer
            OmegaConf.update(conf, key, OmegaConf.select(cfg, key), merge=False)
        for seed in seeds:
            run_cfg = conf.copy()
            run_cfg.seed = int(seed)
            plain_cfg = cast("dict[str, Any]", OmegaConf.to_container(run_cfg, resolve=True))  # keys: field names
            assert isinstance(plain_cfg, dict)
            out.append(
                ResolvedCell(
                    suite=suite.name,
                    suite_version=int(suite.version),
                    task=suite.task,
                    cell=name,
                    budget=budget,
                    seed=int(seed),
                    config=run_cfg,
                    config_hash=config_hash(suite.name, int(suite.version), name, plain_cfg),
                )
            )
    return out
