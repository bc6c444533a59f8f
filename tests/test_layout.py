"""The shape of the source: no import cycles, layers that only look down, domain packages
reached through their public surface, and files and functions small enough to read.

The source is read as text (ast), never imported, so a broken module fails here with its name.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "models")
# What the size limits also cover: the benchmarks and migrations are code a newcomer reads.
SIZED = (*PACKAGES, "bench", "migrations")
# A migration's `upgrade` is one long list of schema operations, written once and never changed.
FUNCTIONS_SIZED = (*PACKAGES, "bench")
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 80
MAX_FOLDER_SHARE = 0.25
# Third-party packages imported where they are used, not at the top of the module: slow to
# import and needed by few processes (tests/test_startup.py checks that the command line and
# the bot start without them). Our own modules are never imported inside a function: that is
# how an import cycle hides.
LAZY_IMPORTS = {
    "matplotlib": "≈ 0.6 s to import; only the processes drawing a chart need it",
    "fpdf": "≈ 0.25 s (fontTools, NumPy, Pillow); only the processes drawing letters need it",
    "pypdf": "≈ 0.06 s; only the processes cutting, protecting or reading letters need it",
}

# Lower layers never import higher ones. A module's layer is its longest matching prefix.
LAYERS = {
    "models": 0,
    "bot.config": 1,
    "bot.i18n": 1,
    "bot.db": 1,
    "bot.services": 2,
    "bot.jobs": 3,
    "bot.context": 3,
    "bot.persistence": 3,
    "handlers": 4,
    "bot.portal": 4,
    "bot.app": 5,
    "bot.runner": 6,
    "bot.sandbox": 6,
    "bot.cli": 7,
    "bot.__main__": 8,
    "bot": 8,
}
# Third-party packages a layer must not know about.
FORBIDDEN = {
    "models": ("bot", "handlers", "telegram", "starlette"),
    "bot.services": ("handlers", "telegram", "starlette", "uvicorn"),
    "bot.jobs": ("handlers", "starlette"),
    "handlers": ("sqlmodel", "sqlalchemy", "starlette"),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it names, resolved to a module of ours when it is one
    line: int
    in_function: bool
    type_checking: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _resolve(name: str) -> str | None:
    """The module of ours `name` is or lies in (`bot.services.accounts.verify_password` →
    `bot.services.accounts`), or None for a third-party name."""
    modules = _sources()
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(node: ast.Import | ast.ImportFrom, module: str, package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        origin = ".".join([*base, *([node.module] if node.module else [])])
    else:
        origin = node.module or ""
    return [origin, *(f"{origin}.{alias.name}" for alias in node.names)]


def _walk(
    node: ast.AST, module: str, package: bool, in_function: bool, type_checking: bool
) -> Iterator[Import]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            seen: set[str] = set()
            for name in _imported_names(child, module, package):
                target = _resolve(name) or name
                # `from bot.services import accounts` names the package and its module: keep
                # the most precise one.
                if target in seen or target == module:
                    continue
                seen.add(target)
                yield Import(module, target, child.lineno, in_function, type_checking)
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _walk(child, module, package, True, type_checking)
        elif isinstance(child, ast.If) and _is_type_checking(child):
            yield from _walk(child, module, package, in_function, True)
        else:
            yield from _walk(child, module, package, in_function, type_checking)


@cache
def _imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for module, path in _sources().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        found += _walk(tree, module, path.name == "__init__.py", False, False)
    return tuple(found)


def _layer(module: str) -> tuple[str, int]:
    prefix = max(
        (p for p in LAYERS if module == p or module.startswith(p + ".")), key=len, default=""
    )
    return prefix, LAYERS.get(prefix, 8)


def _is_ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for found in _imports():
        if _is_ours(found.target) and not found.type_checking:
            graph[found.module].add(found.target)
            # Importing `a.b.c` runs `a.b`'s `__init__` first.
            parent = found.target.rpartition(".")[0]
            while parent and not found.module.startswith(parent + "."):
                if parent in _sources():
                    graph[found.module].add(parent)
                parent = parent.rpartition(".")[0]
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def test_the_source_has_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "modules importing each other:\n" + "\n".join(map(" ↔ ".join, cycles))


def test_no_import_hides_inside_a_function() -> None:
    hidden = [
        f"{_sources()[i.module].relative_to(ROOT)}:{i.line} imports {i.target}"
        for i in _imports()
        if i.in_function and i.target.split(".")[0] not in LAZY_IMPORTS
    ]
    assert not hidden, "imports inside functions:\n" + "\n".join(hidden)


def test_slow_packages_are_imported_only_where_they_are_used() -> None:
    eager = [
        f"{_sources()[i.module].relative_to(ROOT)}:{i.line} imports {i.target}"
        for i in _imports()
        if not i.in_function and not i.type_checking and i.target.split(".")[0] in LAZY_IMPORTS
    ]
    assert not eager, "imported at the top of a module, so by every process:\n" + "\n".join(eager)


def test_layers_only_import_downwards() -> None:
    upward = []
    for found in _imports():
        if not _is_ours(found.target):
            continue
        (source, level), (target, target_level) = _layer(found.module), _layer(found.target)
        if target_level > level:
            upward.append(f"{found.module} ({source}) → {found.target} ({target})")
    assert not upward, "imports of a higher layer:\n" + "\n".join(upward)


def test_layers_do_not_know_what_is_not_theirs() -> None:
    wrong = [
        f"{found.module}:{found.line} imports {found.target}"
        for found in _imports()
        for layer, banned in FORBIDDEN.items()
        if (found.module == layer or found.module.startswith(layer + "."))
        and found.target.split(".")[0] in {b.split(".")[0] for b in banned}
        and any(found.target == b or found.target.startswith(b + ".") for b in banned)
    ]
    assert not wrong, "imports a layer must not make:\n" + "\n".join(wrong)


def test_service_packages_are_reached_through_their_public_surface() -> None:
    """Outside a domain package (and `bot.jobs`), code imports `bot.services.<domain>`, not
    its modules."""
    domains = {
        module
        for module, path in _sources().items()
        if path.name == "__init__.py" and module.count(".") == 2
        if module.startswith("bot.services.")
    } | {"bot.jobs"}
    reached_inside = []
    for found in _imports():
        for domain in domains:
            inside = found.target.startswith(domain + ".")
            if inside and not (found.module == domain or found.module.startswith(domain + ".")):
                reached_inside.append(f"{found.module}:{found.line} imports {found.target}")
    assert not reached_inside, "past a package's surface:\n" + "\n".join(reached_inside)


def _python_files(folders: tuple[str, ...]) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


def test_no_source_file_is_longer_than_800_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in _python_files(SIZED)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_FILE_LINES
    }
    assert not long, "too long:\n" + "\n".join(f"{k}: {v} lines" for k, v in long.items())


def test_no_function_is_longer_than_80_lines() -> None:
    long = {}
    for path in _python_files(FUNCTIONS_SIZED):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert not long, "too long:\n" + "\n".join(f"{k}: {v} lines" for k, v in long.items())


def test_no_folder_holds_more_than_a_quarter_of_the_source() -> None:
    per_folder: dict[str, int] = defaultdict(int)
    for path in _python_files(SIZED):
        per_folder[str(path.parent.relative_to(ROOT))] += len(
            path.read_text(encoding="utf-8").splitlines()
        )
    total = sum(per_folder.values())
    crowded = {
        folder: f"{lines / total:.0%}"
        for folder, lines in per_folder.items()
        if lines > MAX_FOLDER_SHARE * total
    }
    assert not crowded, f"folders with too much of the source: {crowded}"


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"c"}}, [["a", "b"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    graph: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert _cycles(graph) == expected
