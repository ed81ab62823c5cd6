"""Finding and loading suite files: versioned YAML in the suite folders, checked by SuiteConfig.

Suite folders, first match wins: the folders in `suite_dirs=` and in the environment variable
`VAEBENCH_SUITE_DIRS` (os.pathsep-separated), then the suites shipped inside the installed
package (`vaebench/suites`), then the top-level `suites/` of a source checkout. A suite named
`X` is the file `X.yaml` in one of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config import SuiteConfig
from ..errors import SuiteError

__all__ = [
    "SUITE_DIRS_ENV",
    "SuiteError",
    "available_suites",
    "default_suite_dirs",
    "find_suite",
    "load_suite",
    "register_suites",
    "suite_dirs",
]

SUITE_DIRS_ENV = "VAEBENCH_SUITE_DIRS"
_PACKAGE = Path(__file__).resolve().parent.parent



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


def load_suite(name_or_path: str | os.PathLike[str], extra: Sequence[str] = ()) -> DictConfig:
    """Load a suite by name (or from a .yaml path) and check it against SuiteConfig."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = find_suite(str(name_or_path), extra)
    if not path.is_file():
        raise SuiteError(f"suite file {path} does not exist")
    try:
        raw = OmegaConf.load(path)
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
            raise SuiteError(
                f"suite '{suite.name}' budget '{budget}' names unknown cells {unknown}; "
                f"cells: {cells}"
            )
    return suite


def register_suites(extra: Iterable[str | os.PathLike[str]] = (), store: ConfigStore | None = None) -> None:
    """Make every suite a choice of the Hydra config group `suite` (`suite=NAME`).

    Files are stored as loaded (unchecked): Hydra checks them against RunConfig.suite when it
    composes, naming any unknown key; a broken file stops only the runs that choose it.
    """
    store = store or ConfigStore.instance()
    for name, path in available_suites(extra).items():
        try:
            node = OmegaConf.load(path)
        except Exception as exc:  # noqa: BLE001 - a broken user file must not break the CLI
            node = OmegaConf.create({"name": name, "description": f"unreadable: {exc}"})
        store.store(group="suite", name=name, node=node)
