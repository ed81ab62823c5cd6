"""The `vaebench` command: run suites (Hydra), list what exists, leaderboards, compare, env.

    vaebench run suite=iaf [budget=smoke] [key=value ...]     one suite (quick budget by default)
    vaebench run -m suite=iaf seed=0,1,2                      a sweep (Hydra multirun)
    vaebench run -m suite=iaf seed=0,1 hydra/launcher=submitit_slurm   ... on Slurm
    vaebench list | datasets | leaderboard | compare A B | env

`run` hands everything after the word `run` to a `@hydra.main` function, so overrides,
`-m`, `--cfg job`, `--help` and launchers behave as in any Hydra application. Known errors
print one paragraph and exit non-zero; VAEBENCH_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["main"]

DEBUG_ENV = "VAEBENCH_DEBUG"


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _known_errors() -> tuple[type[BaseException], ...]:
    """Error classes whose message is the whole story (no traceback needed)."""
    from omegaconf.errors import OmegaConfBaseException

    from .registry import UnknownNameError
    from .results import RecordError
    from .runner.resolve import ConfigError
    from .runner.suite import SuiteError

    known: list[type[BaseException]] = [
        UnknownNameError, SuiteError, ConfigError, RecordError, OmegaConfBaseException,
        FileNotFoundError, ValueError,  # bad config values and missing files (DatasetNotFound)
    ]
    from .estimators.base import NonFiniteError as EstimateNotFinite
    from .trainer import NonFiniteError as TrainingNotFinite

    known += [EstimateNotFinite, TrainingNotFinite]
    return tuple(known)


def explain(exc: BaseException) -> str:
    """The one-paragraph message the CLI prints for an error."""
    if isinstance(exc, _known_errors()):
        kind = type(exc).__name__
        return f"vaebench: error ({kind}): {exc}"
    return (
        f"vaebench: internal error ({type(exc).__name__}: {exc}). This is a bug in vaebench or "
        f"in a component it runs; rerun with {DEBUG_ENV}=1 for the traceback and report it."
    )


@contextmanager
def _friendly_errors() -> Iterator[None]:
    try:
        yield
    except (SystemExit, KeyboardInterrupt):
        raise
    except Exception as exc:
        if _debug():
            raise
        print(explain(exc), file=sys.stderr)
        raise SystemExit(2) from None


# ---- run (Hydra) --------------------------------------------------------------------------------


def _suite_dirs_from_args(args: Sequence[str]) -> list[str]:
    """`suite_dirs=` must be known before Hydra composes (it decides which suites exist)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    dirs: list[str] = []
    for arg in args:
        if arg.lstrip("+~").startswith("suite_dirs="):
            ov = OverridesParser.create().parse_overrides([arg])[0]
            value = ov.value()
            if isinstance(value, str):
                dirs.append(value)
            elif isinstance(value, list):
                dirs.extend(str(v) for v in value)
    return dirs


def register_groups(extra_suite_dirs: Sequence[str] = ()) -> None:
    """Fill Hydra's ConfigStore: the schema, the suites, and one choice per registry entry."""
    from hydra.core.config_store import ConfigStore

    from .config import register_configs
    from .runner.registries import registries
    from .runner.suite import register_suites

    store = ConfigStore.instance()
    register_configs(store)
    register_suites(extra_suite_dirs, store)
    for group, registry in registries().items():
        for name in registry.names():
            store.store(group=group, name=name, node={"name": name})


def _hydra_task(cfg: DictConfig) -> object:
    """The @hydra.main body: run the composed suite config (the command line's overrides win)."""
    from hydra.core.hydra_config import HydraConfig

    from .runner.run import run_suite

    overrides = list(HydraConfig.get().overrides.task)
    with _friendly_errors():
        return run_suite(cfg, overrides)


def _run(args: list[str]) -> int:
    import hydra

    from .runner.suite import SUITE_DIRS_ENV

    extra = _suite_dirs_from_args(args)
    if extra:  # jobs started by a launcher (submitit) inherit the environment, not argv
        old = os.environ.get(SUITE_DIRS_ENV, "")
        os.environ[SUITE_DIRS_ENV] = os.pathsep.join(
            [os.path.abspath(d) for d in extra] + ([old] if old else [])
        )
    if _debug():
        os.environ["HYDRA_FULL_ERROR"] = "1"
    with _friendly_errors():
        register_groups()
    if any(a in ("--help", "-h") for a in args) and not any(a.startswith("suite=") for a in args):
        args = [*args, "suite=iaf"]  # help composes a config; show it for a real suite
    entry = hydra.main(config_path="conf", config_name="config", version_base="1.3")(_hydra_task)
    saved = sys.argv
    sys.argv = ["vaebench run", *args]
    try:
        with _friendly_errors():  # what Hydra does not report itself (e.g. during --help)
            entry()
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved
    return 0


# ---- the other commands -------------------------------------------------------------------------


def _cmd_list(ns: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .runner.registries import registries
    from .runner.suite import available_suites, load_suite

    console = Console()
    if not console.is_terminal:  # pipes and logs: do not wrap into 80 columns
        console = Console(width=200)
    table = Table(title="suites", show_lines=False)
    for col in ("name", "task", "budgets", "description"):
        table.add_column(col)
    for name, path in available_suites().items():
        try:
            suite = load_suite(path)
            table.add_row(name, suite.task, ", ".join(suite.budgets), " ".join(suite.description.split()))
        except Exception as exc:  # noqa: BLE001 - list what is broken instead of stopping
            table.add_row(name, "?", "?", f"[red]broken: {exc}[/red]")
    console.print(table)
    for group, registry in registries().items():
        table = Table(title=f"{group}s")
        table.add_column("name")
        table.add_column("description")
        for entry in registry:
            table.add_row(entry.name, entry.description)
        console.print(table)
    return 0


def _cmd_datasets(ns: argparse.Namespace) -> int:
    from .runner.adapters import dataset_card
    from .runner.registries import registries

    names = ns.names or registries()["dataset"].names()
    for name in names:
        card = dataset_card(name)
        print(card.render() if hasattr(card, "render") else card)
        print()
    return 0


def _cmd_leaderboard(ns: argparse.Namespace) -> int:
    from .leaderboard import build_leaderboard

    written = build_leaderboard(ns.results, out_dir=ns.out, suites=ns.suite or None)
    for board in written.values():
        print(board.markdown)
        print(f"written: {', '.join(str(p) for p in board.paths)}\n")
    if written:
        index = next(iter(written.values())).paths[-1]
        print(f"site: {index.resolve()}")
    if not written:
        print(f"no records under {ns.results}; run `vaebench run suite=NAME` first")
    return 0


def _cmd_compare(ns: argparse.Namespace) -> int:
    from .compare import compare, render

    rows = compare(ns.a, ns.b, suite=ns.suite, threshold=ns.threshold)
    print(render(rows, ns.a, ns.b, threshold=ns.threshold, only_moved=not ns.all))
    return 0


def _cmd_env(ns: argparse.Namespace) -> int:
    from .environment import environment

    env = environment(ns.device)
    if ns.json:
        print(json.dumps(env, indent=2, default=str))
    else:
        width = max(map(len, env))
        for key, value in env.items():
            print(f"{key:<{width}}  {value}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vaebench",
        description="Benchmark and evaluation suite for VAE posterior families and gradient estimators.",
        epilog="`vaebench run --help` shows the run config groups (Hydra).",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run a suite: vaebench run suite=NAME [budget=smoke|quick|paper] [key=value ...]")
    s = sub.add_parser("list", help="suites, datasets, models, posteriors and estimators")
    s.set_defaults(func=_cmd_list)
    s = sub.add_parser("datasets", help="dataset cards")
    s.add_argument("names", nargs="*", help="datasets to show (default: all)")
    s.set_defaults(func=_cmd_datasets)
    s = sub.add_parser("leaderboard", help="aggregate records into a static site and tables (html, md, tex, csv)")
    s.add_argument("--results", default="local-results",
                   help="results folder (default ./local-results, where `vaebench run` writes; the project's own "
                        "records: --results results)")
    s.add_argument("--out", default=None, help="where the site and tables go (default RESULTS/tables)")
    s.add_argument("--suite", action="append", help="only this suite (repeatable)")
    s.set_defaults(func=_cmd_leaderboard)
    s = sub.add_parser("compare", help="compare two result sets: which metrics moved")
    s.add_argument("a", help="results folder, records folder or record file (baseline)")
    s.add_argument("b", help="results folder, records folder or record file (candidate)")
    s.add_argument("--suite", default=None)
    s.add_argument("--threshold", type=float, default=2.0,
                   help="a metric moved when |difference| > threshold x its standard error (default 2)")
    s.add_argument("--all", action="store_true", help="show unchanged metrics too")
    s.set_defaults(func=_cmd_compare)
    s = sub.add_parser("env", help="what a run records about the environment")
    s.add_argument("--device", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_env)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vaebench` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "run":
        try:
            return _run(args[1:])
        except SystemExit as exc:
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        except KeyboardInterrupt:
            if _debug():
                raise
            print("vaebench: interrupted. Run the same command again to resume: finished runs are kept "
                  "(records) and an unfinished one restarts from its last checkpoint.", file=sys.stderr)
            return 130
    parser = _parser()
    try:
        ns = parser.parse_args(args)
        if ns.command is None:
            parser.print_help()
            return 0
        with _friendly_errors():
            return int(ns.func(ns))
    except SystemExit as exc:  # argparse errors and _friendly_errors
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)


if __name__ == "__main__":
    sys.exit(main())
