"""Finding and loading suite files: versioned YAML in the suite folders, checked by SuiteConfig.

Loading a suite expands its `grid:` into cells (`expand_grid`) and checks every cell's config
against the registries (`check_cells`): a misspelt dataset or family, an unknown op, or an
estimator the family does not support fails when the suite loads, naming the cell and the key.

Suite folders, first match wins: the folders in `suite_dirs=` and in the environment variable
`VAEBENCH_SUITE_DIRS` (os.pathsep-separated), then the suites shipped inside the installed
package (`vaebench/suites`), then the top-level `suites/` of a source checkout. A suite named
`X` is the file `X.yaml` in one of them.
"""

from __future__ import annotations

import itertools
import os
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from ..config import GridConfig, SuiteConfig, merge_layers
from ..datasets.registry import DATASETS
from ..errors import SuiteError, UnknownNameError
from ..estimators.base import ESTIMATORS
from ..models.architectures import MODELS
from ..ops.catalog import op_names
from ..posteriors.base import POSTERIORS
from ..registry import Registry

__all__ = [
    "SUITE_DIRS_ENV",
    "SuiteError",
    "available_suites",
    "check_cells",
    "default_suite_dirs",
    "expand_grid",
    "find_suite",
    "load_suite",
    "register_suites",
    "suite_dirs",
]

SUITE_DIRS_ENV = "VAEBENCH_SUITE_DIRS"
_PACKAGE = Path(__file__).resolve().parent.parent

# The config sections whose `name` picks a registered component, and their registries.
_NAMED_SECTIONS: dict[str, Registry] = {
    "dataset": DATASETS,
    "model": MODELS,
    "posterior": POSTERIORS,
    "estimator": ESTIMATORS,
}


def default_suite_dirs() -> list[Path]:
    """The built-in suite folders: the installed package's, then a source checkout's."""
    dirs = [_PACKAGE / "suites", _PACKAGE.parent / "suites"]
    return [d for d in dirs if d.is_dir()]


def suite_dirs(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """Every suite folder in search order: `extra`, then $VAEBENCH_SUITE_DIRS, then built-ins."""
    env = [p for p in os.environ.get(SUITE_DIRS_ENV, "").split(os.pathsep) if p]
    out: list[Path] = []
    for d in [*map(Path, extra), *map(Path, env), *default_suite_dirs()]:
        d = d.expanduser().resolve()
        if d not in out:
            out.append(d)
    return out


def available_suites(extra: Iterable[str | os.PathLike[str]] = ()) -> dict[str, Path]:
    """Suite name -> file, the first folder holding a name winning."""
    found: dict[str, Path] = {}
    for d in suite_dirs(extra):
        if not d.is_dir():
            continue
        for f in sorted(d.glob("*.yaml")):
            found.setdefault(f.stem, f)
    return found


def find_suite(name: str, extra: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """The file of suite `name`; SuiteError listing the known suites and folders otherwise."""
    suites = available_suites(extra)
    if name not in suites:
        dirs = ", ".join(str(d) for d in suite_dirs(extra)) or "(none)"
        raise SuiteError(
            f"unknown suite '{name}'; known: {', '.join(sorted(suites)) or '(none)'}. Suite "
            f"folders searched: {dirs}. Add a folder with suite_dirs=[...] or ${SUITE_DIRS_ENV}."
        )
    return suites[name]


def expand_grid(node: DictConfig, where: str = "suite") -> DictConfig:
    """A copy of the suite `node` with its `grid:` expanded into `cells` (after the explicit ones)
    and the `grid` key removed; `node` itself is not changed. Without a grid, `node` is returned.

    Raises SuiteError naming the problem: a template field that is not an axis, an axis the
    template leaves out (its cells would share names), or an empty axis.
    """
    if node.get("grid") is None:
        return node
    try:
        grid = OmegaConf.merge(OmegaConf.structured(GridConfig), node.grid)
        template = str(grid.name)
    except OmegaConfBaseException as exc:
        raise SuiteError(f"{where}: grid does not match the grid schema (name, axes): {exc}") from None
    axes = list(grid.axes)
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    if not axes:
        raise SuiteError(f"{where}: grid has no axes; give axes: {{AXIS: {{LABEL: partial config}}}}")
    if fields != set(axes):
        raise SuiteError(
            f"{where}: grid name {template!r} must name every axis as {{axis}}: its fields are "
            f"{sorted(fields)}, the axes {axes}"
        )
    for axis in axes:
        if not grid.axes[axis]:
            raise SuiteError(f"{where}: grid axis '{axis}' has no labels")
    explicit = node.get("cells")
    cells = list(cast("list[Any]", OmegaConf.to_container(explicit, resolve=False))) if explicit else []  # a ListConfig
    for labels in itertools.product(*(list(grid.axes[axis]) for axis in axes)):
        config = OmegaConf.merge(*(grid.axes[axis][label] for axis, label in zip(axes, labels, strict=True)))
        name = template.format(**dict(zip(axes, labels, strict=True)))
        cells.append({"name": name, "config": OmegaConf.to_container(config, resolve=False)})
    expanded = node.copy()
    with open_dict(expanded):
        del expanded["grid"]
        expanded.cells = cells
    return expanded


def check_cells(suite: DictConfig | dict[str, Any], where: str | None = None) -> None:
    """Check every cell's config, as each budget composes it (common, budget, cell), against the
    registries: dataset, model, posterior and estimator names, `kernels.ops`, and that the
    estimator is one the family supports. Raises SuiteError naming the suite, cell and key.

    `suite` is a loaded suite or its plain data; the layers are merged as plain data (a suite of
    63 cells and 3 budgets is 252 merges, each of which as OmegaConf nodes cost milliseconds).
    """
    spec = _plain(suite)
    where = where or f"suite '{spec['name']}'"
    cells = {c["name"]: c for c in spec.get("cells") or []}
    layers: list[tuple[str, list[str], dict[str, Any]]] = [("", list(cells), {})]
    for budget, layer in (spec.get("budgets") or {}).items():
        layers.append((f" (budget '{budget}')", list(layer.get("cells") or cells), layer.get("config") or {}))
    common = spec.get("common") or {}
    for budget, names, layer_config in layers:
        for name in names:
            config = merge_layers(common, layer_config, cells[name].get("config") or {})
            _check_cell_config(config, f"{where} cell '{name}'{budget}")


def _plain(node: DictConfig | dict) -> dict:
    if isinstance(node, DictConfig):
        return cast("dict[Any, Any]", OmegaConf.to_container(node, resolve=False))  # a DictConfig gives a dict
    return dict(node)


def _select(config: dict[str, Any], key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _check_cell_config(config: dict[str, Any], where: str) -> None:
    for section, registry in _NAMED_SECTIONS.items():
        name = _select(config, f"{section}.name")
        if name is None:
            continue
        try:
            registry.entry(str(name))
        except UnknownNameError as exc:
            raise SuiteError(f"{where}: {section}.name: {exc}") from None
    ops = _select(config, "kernels.ops")
    for op in ops or []:
        if op not in op_names():
            raise SuiteError(f"{where}: kernels.ops='{op}': not a benchmarked op; ops: {', '.join(op_names())}")
    family, estimator = _select(config, "posterior.name"), _select(config, "estimator.name")
    if family is not None and estimator is not None:
        supported = POSTERIORS.get(str(family)).supported_estimators()
        if str(estimator) not in supported:
            raise SuiteError(
                f"{where}: estimator '{estimator}' does not work with the posterior family '{family}'; "
                f"it supports {', '.join(supported)}"
            )


def load_suite(name_or_path: str | os.PathLike[str], extra: Sequence[str] = ()) -> DictConfig:
    """Load a suite by name (or from a .yaml path), expand its grid, check it against SuiteConfig
    and its cells against the registries."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = find_suite(str(name_or_path), extra)
    if not path.is_file():
        raise SuiteError(f"suite file {path} does not exist")
    try:
        raw = OmegaConf.load(path)
    except OmegaConfBaseException as exc:
        raise SuiteError(f"suite file {path} does not match the suite schema: {exc}") from None
    assert isinstance(raw, DictConfig)
    raw = expand_grid(raw, f"suite file {path}")
    try:
        suite = OmegaConf.merge(OmegaConf.structured(SuiteConfig), raw)
    except OmegaConfBaseException as exc:
        raise SuiteError(f"suite file {path} does not match the suite schema: {exc}") from None
    assert isinstance(suite, DictConfig)
    if suite.name != path.stem:
        raise SuiteError(f"suite file {path} declares name '{suite.name}'; it must be '{path.stem}'")
    cells = [c.name for c in suite.cells]
    if len(set(cells)) != len(cells):
        raise SuiteError(f"suite '{suite.name}' ({path}) has duplicate cell names: {cells}")
    for budget, layer in suite.budgets.items():
        unknown = sorted(set(layer.cells or []) - set(cells))
        if unknown:
            raise SuiteError(f"suite '{suite.name}' budget '{budget}' names unknown cells {unknown}; cells: {cells}")
    check_cells(suite, f"suite '{suite.name}' ({path})")
    return suite


def register_suites(
    extra: Iterable[str | os.PathLike[str]] = (),
    store: ConfigStore | None = None,
    names: Iterable[str] | None = None,
) -> list[str]:
    """Make suites choices of the Hydra config group `suite` (`suite=NAME`); returns their names.

    `names`: only these suites (what a command line chose: reading and expanding every suite
    file costs about a second, most of the latency of a config error); None, or a name that no
    suite folder holds, registers every suite, so that Hydra's error lists the known ones.

    Files are stored as loaded with their grid expanded (otherwise unchecked): Hydra checks them
    against RunConfig.suite when it composes, naming any unknown key, and the runner checks the
    cells (`check_cells`); a broken file stops only the runs that choose it.
    """
    store = store or ConfigStore.instance()
    found = available_suites(extra)
    chosen = list(names) if names is not None else list(found)
    if any(name not in found for name in chosen):
        chosen = list(found)
    for name in chosen:
        path = found[name]
        try:
            loaded = OmegaConf.load(path)
            if not isinstance(loaded, DictConfig):
                raise SuiteError(f"suite file {path}: expected a mapping (name, version, cells, ...), got a list")
            node = expand_grid(loaded, f"suite file {path}")
        except Exception as exc:  # noqa: BLE001 - a broken user file must not break the CLI
            node = OmegaConf.create({"name": name, "description": f"unreadable: {exc}"})
        store.store(group="suite", name=name, node=node)
    return chosen
