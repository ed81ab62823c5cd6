"""The `vaebench` command: run suites (Hydra), list what exists, leaderboards, compare, env.

    vaebench run suite=iaf [budget=smoke] [key=value ...]     one suite (quick budget by default)
    vaebench run -m suite=iaf seed=0,1,2                      a sweep (Hydra multirun)
    vaebench run -m suite=iaf seed=0,1 hydra/launcher=submitit_slurm   ... on Slurm
    vaebench run suite=iaf budget=paper --dry-run             validate, print the runs and a time estimate
    vaebench validate suite=iaf budget=paper                  the same
    vaebench list | datasets | leaderboard | compare A B | records check [FOLDER] | env

`run` hands everything after the word `run` to a `@hydra.main` function, so overrides,
`-m`, `--cfg job`, `--help` and launchers behave as in any Hydra application. Known errors
print one paragraph: exit code 2 for the user's input or data (config, paths, permissions, a full
disk, damaged records, Ctrl-C), 1 for a bug ("internal error"); VAEBENCH_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import argparse
import errno
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
    """Error classes whose message is the whole story (no traceback needed): the user's input."""
    from omegaconf.errors import OmegaConfBaseException

    from .registry import UnknownNameError
    from .results import RecordError
    from .runner.resolve import ConfigError
    from .runner.suite import SuiteError
    from .trainer import CheckpointError

    known: list[type[BaseException]] = [
        UnknownNameError,
        SuiteError,
        ConfigError,
        RecordError,
        CheckpointError,
        OmegaConfBaseException,
        FileNotFoundError,
        ValueError,  # bad config values and missing files (DatasetNotFound)
    ]
    from .estimators.base import NonFiniteError as EstimateNotFinite
    from .trainer import NonFiniteError as TrainingNotFinite

    known += [EstimateNotFinite, TrainingNotFinite]
    return tuple(known)


# errno -> (cause, fix) of an OSError that is the user's: a path, a permission, a full disk.
_OS_CAUSES = {
    errno.ENOSPC: (
        "the disk is full",
        (
            "free some space or choose results_dir=PATH on another disk; a record or "
            "checkpoint is written atomically, so no torn file was left and the same command resumes"
        ),
    ),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space or choose results_dir=PATH elsewhere"),
    errno.EACCES: ("permission denied", "choose a folder you can write (results_dir=PATH) or fix its permissions"),
    errno.EPERM: ("operation not permitted", "choose a folder you can write (results_dir=PATH) or fix its permissions"),
    errno.EROFS: ("the file system is read-only", "choose results_dir=PATH on a writable disk"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path or move that file away"),
    errno.EISDIR: ("the path is a folder where a file was expected", "choose another path"),
    errno.ENOENT: ("no such file or folder", "check the path"),
}


def _explain_os_error(exc: OSError) -> str | None:
    if exc.errno not in _OS_CAUSES:
        return None
    cause, fix = _OS_CAUSES[exc.errno]
    where = f" ({exc.filename})" if exc.filename else ""
    return f"vaebench: error: {cause}{where}: {fix}."


def explain(exc: BaseException) -> str:
    """The one-paragraph message the CLI prints for an error."""
    if isinstance(exc, KeyboardInterrupt):
        return (
            "vaebench: interrupted (Ctrl-C). Run the same command again to resume: finished runs are kept "
            "(records) and an unfinished one restarts from its last checkpoint."
        )
    if isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError):
        message = _explain_os_error(exc)
        if message is not None:
            return message
    if isinstance(exc, _known_errors()):
        kind = type(exc).__name__
        return f"vaebench: error ({kind}): {exc}"
    return (
        f"vaebench: internal error ({type(exc).__name__}: {exc}). This is a bug in vaebench or "
        f"in a component it runs; rerun with {DEBUG_ENV}=1 for the traceback and report it."
    )


def is_user_error(exc: BaseException) -> bool:
    """Whether `exc` is the user's (config, paths, data, Ctrl-C) rather than a bug in vaebench."""
    return not explain(exc).startswith("vaebench: internal error")


@contextmanager
def _friendly_errors() -> Iterator[None]:
    try:
        yield
    except SystemExit:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        if _debug():
            raise
        message = explain(exc)
        print(message, file=sys.stderr)
        # 2: the user's input or data (the message says the fix); 1: a bug in vaebench
        raise SystemExit(2 if is_user_error(exc) else 1) from None


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


def _suites_from_args(args: Sequence[str]) -> list[str] | None:
    """The suites a command line chooses: `suite=a`, or a sweep `suite=a,b` (None: it names none,
    or a glob, which needs every suite to match against)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    names: list[str] | None = None
    for arg in args:
        if not arg.startswith("suite="):
            continue
        try:
            ov = OverridesParser.create().parse_overrides([arg])[0]
        except Exception:  # noqa: BLE001 - a malformed override: Hydra reports it itself
            return None
        if ov.value_type == ValueType.GLOB_CHOICE_SWEEP or (ov.is_sweep_override() and not ov.is_discrete_sweep()):
            return None
        if ov.is_sweep_override():
            names = list(ov.sweep_string_iterator())
        else:
            value = ov.value()
            if not isinstance(value, str):
                return None
            names = [value]
    return names


def register_groups(extra_suite_dirs: Sequence[str] = (), suites: Sequence[str] | None = None) -> None:
    """Fill Hydra's ConfigStore: the schema, the suites (`suites`, or every one), and one choice
    per registry entry."""
    from hydra.core.config_store import ConfigStore

    from .config import register_configs
    from .runner.registries import registries
    from .runner.suite import register_suites

    store = ConfigStore.instance()
    register_configs(store)
    register_suites(extra_suite_dirs, store, names=suites)
    for group, registry in registries().items():
        for name in registry.names():
            store.store(group=group, name=name, node={"name": name})


def _hydra_task(cfg: DictConfig) -> object:
    """The @hydra.main body: run the composed suite config (the command line's overrides win)."""
    from hydra.core.hydra_config import HydraConfig

    from .runner.run import run_suite

    overrides = list(HydraConfig.get().overrides.task)
    with _friendly_errors():
        records = run_suite(cfg, overrides)
        if not cfg.dry_run:  # the CLI calls the leaderboard, the runner does not (docs/architecture.md)
            # lazy: pandas and jinja2 load only once the runs are done, never for a config error
            from .leaderboard import build_leaderboard

            for board in build_leaderboard(cfg.results_dir, suites=[cfg.suite.name]).values():
                print(f"tables:  {', '.join(str(p) for p in board.paths)}")
                print(f"site:    {board.paths[-1].resolve()}")
        return records


def _override_value(args: Sequence[str], key: str) -> object:
    """The value a command line gives `key=` (the last one wins, as in Hydra), or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    value = None
    for arg in args:
        if arg.startswith(f"{key}="):
            try:
                value = OverridesParser.create().parse_overrides([arg])[0].value()
            except Exception:  # noqa: BLE001 - a malformed override: Hydra reports it itself
                return None
    return value


def _precheck(args: Sequence[str]) -> None:
    """What must be right before Hydra composes: keys of the schema, and the results folder
    (Hydra writes its own logs there first, and would fail with a raw traceback)."""
    from .runner.validate import ValidationError, check_override_keys, check_writable

    problems = check_override_keys(args)
    results_dir = _override_value(args, "results_dir")
    if results_dir is None and not any(a.startswith("results_dir=") for a in args):
        from .config import RunConfig

        results_dir = RunConfig.results_dir  # the schema's default (conf/config.yaml repeats it)
    if isinstance(results_dir, str):  # a sweep over folders is checked per job
        problems += check_writable("results_dir", results_dir)
    if problems:
        raise ValidationError([(p, []) for p in problems])


def _run(args: list[str]) -> int:
    import hydra

    from .runner.suite import SUITE_DIRS_ENV

    args = ["dry_run=true" if a == "--dry-run" else a for a in args]
    extra = _suite_dirs_from_args(args)
    if extra:  # jobs started by a launcher (submitit) inherit the environment, not argv
        old = os.environ.get(SUITE_DIRS_ENV, "")
        os.environ[SUITE_DIRS_ENV] = os.pathsep.join([os.path.abspath(d) for d in extra] + ([old] if old else []))
    if _debug():
        os.environ["HYDRA_FULL_ERROR"] = "1"
    if any(a in ("--help", "-h") for a in args) and not any(a.startswith("suite=") for a in args):
        args = [*args, "suite=iaf"]  # help composes a config; show it for a real suite
    with _friendly_errors():
        # only the chosen suites: the others are never composed (--help and --info list them all)
        listing = any(a in ("--help", "-h", "--info", "-i") for a in args)
        register_groups(suites=None if listing else _suites_from_args(args))
        if not any(a in ("--help", "-h", "--cfg", "-c", "--info", "-i") for a in args):
            _precheck(args)
    entry = hydra.main(config_path="conf", config_name="config", version_base="1.3")(_hydra_task)
    saved = sys.argv
    sys.argv = ["vaebench run", *args]
    try:
        with _friendly_errors(), _compose_once(args):  # _friendly_errors: what Hydra does not report itself
            entry()
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved
    return 0


@contextmanager
def _compose_once(args: Sequence[str]) -> Iterator[None]:
    """Let Hydra compose the run config once, not twice.

    Hydra 1.3 composes the whole config a first time only to read `hydra.mode` (`Hydra.get_mode`,
    which returns None when it is unset or the composition fails), then again to run: about a
    third of the time before a config error prints. vaebench's config never sets `hydra.mode`,
    so unless the command line does, that answer is None (Hydra then runs, or sweeps with -m),
    and the first composition is skipped. A Hydra without `get_mode` is left as it is.
    """
    from hydra._internal.hydra import Hydra

    if any(a.lstrip("+~").startswith("hydra.mode") for a in args) or not hasattr(Hydra, "get_mode"):
        yield
        return
    original = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Hydra.get_mode = original  # type: ignore[method-assign]


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

    written = build_leaderboard(ns.results, out_dir=ns.out, suites=ns.suite or None, strict=ns.strict)
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

    rows = compare(ns.a, ns.b, suite=ns.suite, threshold=ns.threshold, strict=ns.strict)
    print(render(rows, ns.a, ns.b, threshold=ns.threshold, only_moved=not ns.all))
    return 0


def _cmd_records_check(ns: argparse.Namespace) -> int:
    from .results import scan_records

    records, problems = scan_records(ns.folder)
    for problem in problems:
        print(f"{problem.path}: {problem.reason}")
    print(f"{len(records)} readable record(s), {len(problems)} problem(s) under {ns.folder}")
    if problems:
        print(
            "Move or delete the damaged files (`vaebench run` recomputes a run whose record is damaged).",
            file=sys.stderr,
        )
    return 2 if problems else 0


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
    sub.add_parser(
        "run", help="run a suite: vaebench run suite=NAME [budget=smoke|quick|paper] [key=value ...] [--dry-run]"
    )
    sub.add_parser("validate", help="check the whole config and print the runs and a time estimate (run --dry-run)")
    s = sub.add_parser("list", help="suites, datasets, models, posteriors and estimators")
    s.set_defaults(func=_cmd_list)
    s = sub.add_parser("datasets", help="dataset cards")
    s.add_argument("names", nargs="*", help="datasets to show (default: all)")
    s.set_defaults(func=_cmd_datasets)
    s = sub.add_parser("leaderboard", help="aggregate records into a static site and tables (html, md, tex, csv)")
    s.add_argument(
        "--results",
        default="local-results",
        help="results folder (default ./local-results, where `vaebench run` writes; the project's own "
        "records: --results results)",
    )
    s.add_argument("--out", default=None, help="where the site and tables go (default RESULTS/tables)")
    s.add_argument("--suite", action="append", help="only this suite (repeatable)")
    s.add_argument("--strict", action="store_true", help="a damaged or foreign record file is an error (CI)")
    s.set_defaults(func=_cmd_leaderboard)
    s = sub.add_parser("compare", help="compare two result sets: which metrics moved")
    s.add_argument("a", help="results folder, records folder or record file (baseline)")
    s.add_argument("b", help="results folder, records folder or record file (candidate)")
    s.add_argument("--suite", default=None)
    s.add_argument(
        "--threshold",
        type=float,
        default=2.0,
        help="a metric moved when |difference| > threshold x its standard error (default 2)",
    )
    s.add_argument("--all", action="store_true", help="show unchanged metrics too")
    s.add_argument("--strict", action="store_true", help="a damaged or foreign record file is an error (CI)")
    s.set_defaults(func=_cmd_compare)
    s = sub.add_parser("records", help="records tools: `records check [FOLDER]` lists every damaged file")
    rsub = s.add_subparsers(dest="records_command", metavar="ACTION", required=True)
    r = rsub.add_parser("check", help="every file under FOLDER that is not a readable run record, and why")
    r.add_argument(
        "folder", nargs="?", default="local-results", help="results or records folder (default ./local-results)"
    )
    r.set_defaults(func=_cmd_records_check)
    s = sub.add_parser("env", help="what a run records about the environment")
    s.add_argument("--device", default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_env)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `vaebench` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("run", "validate"):
        try:
            return _run(args[1:] + (["--dry-run"] if args[0] == "validate" else []))
        except SystemExit as exc:
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        except KeyboardInterrupt as exc:  # outside the friendly-error blocks (e.g. while Hydra starts)
            if _debug():
                raise
            print(explain(exc), file=sys.stderr)
            return 2
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
