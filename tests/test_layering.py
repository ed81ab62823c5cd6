"""The import layering of docs/architecture.md: imports go down the layers, no module cycles,
imports at the top unless heavy or optional, and a bad key on the command line stays light."""

from __future__ import annotations

import ast
import graphlib
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vaebench"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Third-party modules that may be imported inside a function (docs/architecture.md, "Imports at
# the top"): slow to import, or not always installed. Matched by the import's top-level name.
HEAVY_OR_OPTIONAL = {
    "matplotlib",
    "pandas",
    "jinja2",
    "scipy",
    "sklearn",
    "mlxtend",
    "hydra_plugins",
    "ray",
    "submitit",
    "hypothesis",
}
# Modules whose function-level imports are their design: each command imports only what it runs.
LAZY_BY_DESIGN = {"vaebench.cli"}


@dataclass(frozen=True)
class Import:
    """One import statement's target inside vaebench (or a third-party module), where it is written."""

    module: str  # the importing module, e.g. vaebench.runner.run
    target: str  # the imported module, e.g. vaebench.leaderboard or matplotlib.pyplot
    path: Path
    line: int
    nested: bool  # inside a function (not at the module's top)
    commented: bool  # a comment says why it is lazy (see imports_of)
    optional: bool  # inside a `try` that catches ImportError


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _guards_import_error(node: ast.Try) -> bool:
    return any(h.type is not None and "ImportError" in ast.unparse(h.type) for h in node.handlers)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import, root: Path) -> list[str]:
    """The modules a statement imports; `from pkg import sub` names pkg.sub when sub is a module."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
    else:
        target = node.module or ""
    out = []
    for alias in node.names:
        sub = Path(root.parent, *f"{target}.{alias.name}".split("."))
        is_module = sub.is_dir() or sub.with_suffix(".py").is_file()
        out.append(f"{target}.{alias.name}" if is_module else target)
    return out


def imports_of(path: Path, root: Path) -> Iterator[Import]:
    """Every import of the file, except those under `if TYPE_CHECKING:` (annotations only).

    A function-level import is commented when its line or the nearest non-blank line above
    holds a comment, or an earlier import of the same function is (one comment per lazy block);
    optional when a `try` around it catches ImportError.
    """
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source, str(path))
    module = module_name(path, root)

    def commented(node: ast.stmt) -> bool:
        above = next((line for line in reversed(lines[: node.lineno - 1]) if line.strip()), "")
        return "#" in lines[node.lineno - 1] or "#" in above

    def walk(nodes: Sequence[ast.stmt], nested: bool, guarded: bool, block: list[bool]) -> Iterator[Import]:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                has_comment = commented(node) or any(block)
                block.append(has_comment)
                for target in _resolve(module, path.name == "__init__.py", node, root):
                    yield Import(module, target, path, node.lineno, nested, has_comment, guarded)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                yield from walk(node.orelse, nested, guarded, block)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or nested
                yield from walk(node.body, inner, False, [])
            elif isinstance(node, ast.Try):
                yield from walk(node.body, nested, guarded or _guards_import_error(node), block)
                for handler in node.handlers:
                    yield from walk(handler.body, nested, guarded, block)
                yield from walk(node.orelse + node.finalbody, nested, guarded, block)
            else:
                for field in ("body", "orelse", "finalbody"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        yield from walk([c for c in children if isinstance(c, ast.stmt)], nested, guarded, block)

    yield from walk(tree.body, False, False, [])


def all_imports(root: Path = PACKAGE) -> list[Import]:
    return [imp for path in sorted(root.rglob("*.py")) for imp in imports_of(path, root)]


def where(imp: Import) -> str:
    """path:line of an import, relative to the repository when inside it."""
    path = imp.path.relative_to(ROOT) if imp.path.is_relative_to(ROOT) else imp.path
    return f"{path}:{imp.line}"


def unit(module: str) -> str:
    """The layer unit of a module: vaebench.runner.tasks.base -> runner, vaebench -> vaebench."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def read_layers(text: str) -> list[list[str]]:
    """The layers block of docs/architecture.md, top first: each line `a | b | c`."""
    found = re.search(r"<!-- layers: top to bottom -->\s*```text\n(.*?)```", text, re.DOTALL)
    if found is None:
        raise AssertionError("docs/architecture.md: no '<!-- layers: top to bottom -->' block followed by ```text")
    return [[u.strip() for u in line.split("|")] for line in found.group(1).splitlines() if line.strip()]


def layer_violations(imports: Sequence[Import], layers: Sequence[Sequence[str]]) -> list[str]:
    """Every import from one unit into another that is not strictly below it."""
    level = {u: i for i, line in enumerate(layers) for u in line}
    out = []
    for imp in imports:
        if not imp.target.startswith("vaebench"):
            continue
        src, dst = unit(imp.module), unit(imp.target)
        if src == dst or src not in level or dst not in level:
            continue
        if level[dst] <= level[src]:
            below = sorted(u for u, i in level.items() if i > level[src])
            relation = "on the same line as" if level[dst] == level[src] else "above"
            out.append(
                f"{where(imp)} imports {imp.target}: '{dst}' is {relation} '{src}' in "
                f"docs/architecture.md; '{src}' may import only {', '.join(below) or 'nothing of vaebench'} "
                "(move the shared code down a layer, or the call up)"
            )
    return out


def module_cycle(imports: Sequence[Import]) -> list[str] | None:
    """A cycle of modules importing each other (explicit imports anywhere in a module), or None."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.module, set())
        if imp.target.startswith("vaebench") and imp.target != imp.module:
            graph[imp.module].add(imp.target)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def unjustified_lazy_imports(imports: Sequence[Import]) -> list[str]:
    out = []
    for imp in imports:
        if not imp.nested or imp.optional or imp.module in LAZY_BY_DESIGN:
            continue
        heavy = imp.target.split(".")[0] in HEAVY_OR_OPTIONAL
        if heavy and imp.commented:
            continue
        why = (
            "needs a comment on the import or the line above saying why it is lazy"
            if heavy
            else "is not heavy or optional (docs/architecture.md): move it to the module's top"
        )
        out.append(f"{where(imp)}: the function-level import of {imp.target} {why}")
    return out


# ---- the checks on vaebench itself ----------------------------------------------------------------


def test_every_import_goes_down_the_layers() -> None:
    problems = layer_violations(all_imports(), read_layers(ARCHITECTURE.read_text()))
    assert not problems, "\n".join(problems)


def test_every_package_has_a_layer() -> None:
    layers = read_layers(ARCHITECTURE.read_text())
    drawn = [u for line in layers for u in line]
    assert len(drawn) == len(set(drawn)), f"docs/architecture.md names a unit twice: {sorted(drawn)}"
    present = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    # packages with modules (vaebench/conf is Hydra's config folder: YAML and an __init__.py)
    present |= {p.parent.name for p in PACKAGE.glob("*/*.py") if p.name != "__init__.py"}
    present.add("vaebench")
    assert set(drawn) == present, (
        f"docs/architecture.md's layers lack {sorted(present - set(drawn))} and name {sorted(set(drawn) - present)}, "
        "which do not exist: put every package and top-level module of vaebench/ on a layer"
    )


def test_no_two_modules_import_each_other() -> None:
    cycle = module_cycle(all_imports())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)} (a function-level import hides it, not breaks it)"


def test_function_level_imports_are_heavy_or_optional() -> None:
    problems = unjustified_lazy_imports(all_imports())
    assert not problems, "\n".join(problems)


def test_a_bad_key_fails_without_the_heavy_modules() -> None:
    """`vaebench run ... budget=paper` with a misspelt key: exit 2, and no matplotlib/pandas/jinja2 loaded."""
    code = (
        "import sys\n"
        "from vaebench.cli import main\n"
        "rc = main(['run', 'suite=iwae', 'budget=paper', 'train.no_such_key=1'])\n"
        "print(rc, sorted(m for m in ('matplotlib', 'pandas', 'jinja2') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.stdout.strip().splitlines()[-1] == "2 []", done.stdout + done.stderr
    assert "no_such_key" in done.stderr


# ---- the checker itself, on a package made for it ---------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "vaebench" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "vaebench"


def test_checker_finds_an_upward_import_a_hidden_cycle_and_an_unjustified_lazy_import(tmp_path: Path) -> None:
    pkg = _write(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": "def f():\n    from .high import g\n    import torch\n    return g, torch\n",
            "high.py": "from . import low\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import other\n",
            "other.py": (
                "def plot():\n    # lazy: matplotlib is slow to import\n    import matplotlib\n    import matplotlib.pyplot\n"
                "\n\ndef frame():\n    import pandas\n"
            ),
        },
    )
    imports = all_imports(pkg)
    layers = [["high"], ["other"], ["low"]]
    up = layer_violations(imports, layers)
    assert len(up) == 1 and "low.py:2 imports vaebench.high: 'high' is above 'low'" in up[0]
    assert "may import only nothing of vaebench" in up[0]
    assert module_cycle(imports) in (
        ["vaebench.low", "vaebench.high", "vaebench.low"],
        ["vaebench.high", "vaebench.low", "vaebench.high"],
    )
    lazy = unjustified_lazy_imports(imports)
    assert [line.split(": ", 1)[0].rsplit("/", 1)[-1] for line in lazy] == ["low.py:2", "low.py:3", "other.py:8"]
    assert "move it to the module's top" in lazy[0] and "needs a comment" in lazy[2]
    # TYPE_CHECKING imports are annotations, not dependencies: other -> high would be upward
    assert not any(imp.target == "vaebench.other" for imp in imports)


def test_checker_sees_siblings_and_optional_imports(tmp_path: Path) -> None:
    pkg = _write(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from .b import x\n",
            "b.py": "x = 1\n\n\ndef f():\n    try:\n        import mlxtend\n    except ImportError:\n        return None\n",
        },
    )
    imports = all_imports(pkg)
    (sideways,) = layer_violations(imports, [["a", "b"]])
    assert "a.py:1 imports vaebench.b: 'b' is on the same line as 'a'" in sideways
    assert layer_violations(imports, [["a"], ["b"]]) == []
    assert unjustified_lazy_imports(imports) == []  # guarded by except ImportError: optional
