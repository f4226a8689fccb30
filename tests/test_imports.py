"""The package's import graph has no cycles: arrows point one way."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "bot"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the bot modules it imports anywhere in its file (top level, functions, TYPE_CHECKING)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                # `from bot.x import y` names module bot.x.y when y is a module, else bot.x.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target != "bot":
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path (first == last), or None."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_sees_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles_in_bot() -> None:
    graph = import_graph()
    assert "bot.devtools.bench" in graph and "bot.telegram.app" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_answering_and_indexing_never_import_a_front_end() -> None:
    graph = import_graph()
    front_ends = ("bot.telegram", "bot.console", "bot.cli", "bot.devtools")
    for module, imports in graph.items():
        if module.startswith(("bot.answering", "bot.indexing")):
            assert not [i for i in imports if i.startswith(front_ends)], module


def test_only_the_cli_reaches_into_devtools() -> None:
    """Developer tools sit beside the front ends, at the top: the library never imports them.

    `bot.cli` is the one exception, as the outermost layer: it dispatches `bench`, `train-reader` and
    `fit-scorer` to them, so its arrows into devtools still point down.
    """
    graph = import_graph()
    upward = {
        module: sorted(i for i in imports if i.startswith("bot.devtools"))
        for module, imports in graph.items()
        if not module.startswith("bot.devtools") and module != "bot.cli"
    }
    assert {module: found for module, found in upward.items() if found} == {}
    assert any(i.startswith("bot.devtools") for i in graph["bot.cli"])  # the check sees real edges
