"""The layers import only downward — channels < brain < gateway < workers — and no modules
import each other in a loop. Read from the source with ``ast``: every ``import`` counts, also
one inside a function (a lazy import hides a dependency; it does not remove it) or under
``TYPE_CHECKING``. The wiring modules that start the whole system may import anything."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("channels", "brain", "gateway", "workers")  # bottom first
WIRING = frozenset({"gateway.cli", "gateway.runner"})


@dataclass(frozen=True)
class Import:
    """``source`` (a module of the project) imports ``target`` at ``line``."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source.replace('.', '/')}.py:{self.line} imports {self.target}"


def modules(root: Path) -> dict[str, Path]:
    """Every module of the layer packages under ``root``, by dotted name."""
    found = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports(root: Path) -> list[Import]:
    """Every import of one project module by another, wherever in the file it stands."""
    known = modules(root)
    found = []
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                # ``from pkg import mod`` imports the module pkg.mod; ``from mod import name``
                # imports mod.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]  # ``import a.b.c`` of a package a.b
                if target and target != name:
                    found.append(Import(name, target, node.lineno))
    return sorted(set(found), key=lambda i: (i.source, i.line, i.target))


def layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def upward(root: Path) -> list[Import]:
    """Imports from a lower layer of a higher one (wiring modules excepted)."""
    return [
        i for i in imports(root) if i.source not in WIRING and layer(i.target) > layer(i.source)
    ]


def cycles(root: Path) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others (Tarjan)."""
    graph: dict[str, set[str]] = {name: set() for name in modules(root)}
    for i in imports(root):
        graph[i.source].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_every_layer_imports_only_the_layers_below_it() -> None:
    found = upward(ROOT)
    assert not found, (
        "upward imports (layers: " + " < ".join(LAYERS) + "):\n" + "\n".join(map(str, found))
    )


def test_no_modules_import_each_other_in_a_loop() -> None:
    assert cycles(ROOT) == []


# --- the checker itself, on a house of three rooms ---------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in LAYERS:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    return tmp_path


def test_a_lazy_import_inside_a_function_is_an_upward_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "brain/shop.py": "def build():\n    from gateway.settings import Settings\n",
            "gateway/settings.py": "",
        },
    )
    assert [str(i) for i in upward(root)] == ["brain/shop.py:2 imports gateway.settings"]


def test_a_wiring_module_may_import_any_layer(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"gateway/cli.py": "import workers.tasks\n", "workers/tasks.py": ""})
    assert upward(root) == []


def test_two_modules_that_import_each_other_are_a_cycle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "workers/handoff.py": "from workers import timeout\n",
            "workers/timeout.py": "def run():\n    from workers.handoff import route\n",
        },
    )
    assert cycles(root) == [["workers.handoff", "workers.timeout"]]
