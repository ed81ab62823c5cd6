"""Running suites: finding suite files, resolving cells, the tasks, records and the summary."""

from .resolve import ConfigError, ResolvedCell, config_hash, resolve_cells
from .run import execute, resolve_device, run_suite
from .suite import SuiteError, available_suites, find_suite, load_suite, register_suites, suite_dirs
from .tasks import TASKS, RunContext, TaskResult

__all__ = [
    "TASKS",
    "ConfigError",
    "ResolvedCell",
    "RunContext",
    "SuiteError",
    "TaskResult",
    "available_suites",
    "config_hash",
    "execute",
    "find_suite",
    "load_suite",
    "register_suites",
    "resolve_cells",
    "resolve_device",
    "run_suite",
    "suite_dirs",
]
