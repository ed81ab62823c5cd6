"""From a composed run config to the list of (cell, seed) runs, each with its own config.

Precedence, lowest first: the package defaults (vaebench/conf), the suite's `common` layer,
the chosen budget's layer, the cell's layer, then what the user set on the command line
(`dataset=...`, `train.epochs=3`): a command-line override always wins over the suite.

Hydra composes the run config once; the package defaults, the command line and the suite's
common and budget layers are typed against RunConfig once, and each cell adds only its own layer
to a copy of that base (the command line's keys set again on top), so a suite of many cells
costs one small merge per cell and a cheap copy per seed.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config import NON_SEMANTIC_KEYS, RunConfig, merge_layers, without_added_defaults
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
    # Keys added to the schema since records were written are left out at their default
    # (ADDED_KEYS), so those records keep their hash.
    semantic = {k: v for k, v in without_added_defaults(config).items() if k not in NON_SEMANTIC_KEYS}
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
    composed = cast("dict[str, Any]", OmegaConf.to_container(cfg, resolve=True))  # keys: field names
    suite = composed.pop("suite")
    check_cells(suite, f"suite '{suite['name']}'")  # names every misspelt or incompatible cell before any run
    budget = cfg.budget.name
    if budget not in suite["budgets"]:
        raise ConfigError(
            f"suite '{suite['name']}' has no budget '{budget}'; it defines {sorted(suite['budgets'])}. "
            "Choose one with budget=NAME."
        )
    layer = suite["budgets"][budget]
    cells = {c["name"]: c for c in suite["cells"]}
    names = list(cells)
    chosen = list(layer["cells"]) if layer.get("cells") is not None else names
    if cfg.cells is not None:
        unknown = sorted(set(cfg.cells) - set(names))
        if unknown:
            raise ConfigError(f"cells={list(cfg.cells)}: suite '{suite['name']}' has no cell {unknown}; cells: {names}")
        chosen = [c for c in names if c in set(cfg.cells)]
    if not chosen:
        raise ConfigError(f"suite '{suite['name']}' budget '{budget}' selects no cells")
    seeds = [cfg.seed] if cfg.seed is not None else list(layer.get("seeds") or suite["seeds"])
    if not seeds:
        raise ConfigError(f"suite '{suite['name']}' budget '{budget}' has no seeds; set seed=N")

    schema = OmegaConf.structured(RunConfig)
    where = f"suite '{suite['name']}'"
    base = _merge(schema, merge_layers(composed, suite.get("common") or {}), f"{where} common layer")
    base = _merge(base, layer.get("config") or {}, f"{where} budget '{budget}'")
    # A pickled copy of a typed config is ~3x cheaper than DictConfig.copy() or a merge (both
    # deep-copy node by node): each cell starts from the typed base this way, each seed from its cell.
    base_blob = pickle.dumps(base)
    # the command line's values, set after every suite layer (a whole section when a group was chosen)
    user = [(key, OmegaConf.select(cfg, key)) for key in user_keys(overrides)]
    out = []
    for name in chosen:
        conf = pickle.loads(base_blob)
        try:
            conf.merge_with(cells[name].get("config") or {})
        except OmegaConfBaseException:
            _merge(base, cells[name].get("config") or {}, f"{where} cell '{name}'")  # names the key
            raise
        for key, value in user:
            OmegaConf.update(conf, key, value, merge=False)
        typed_plain = cast("dict[str, Any]", OmegaConf.to_container(conf, resolve=True))  # keys: field names
        cell_blob = pickle.dumps(conf)
        for seed in seeds:
            run_cfg = pickle.loads(cell_blob)
            run_cfg.seed = int(seed)
            out.append(
                ResolvedCell(
                    suite=suite["name"],
                    suite_version=int(suite["version"]),
                    task=suite["task"],
                    cell=name,
                    budget=budget,
                    seed=int(seed),
                    config=run_cfg,
                    config_hash=config_hash(
                        suite["name"], int(suite["version"]), name, dict(typed_plain, seed=int(seed))
                    ),
                )
            )
    return out
