"""Arrows point one way (STYLE 15): no import cycle among videomae's modules, and nothing
outside `videomae/cli/` imports the CLI. Imports inside functions count too: a lazy import
hides a cycle from Python, not from the reader."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "videomae"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The videomae modules `name` imports (a package counts as its __init__)."""
    is_package = path.name == "__init__.py"
    base = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = ".".join(base[: len(base) - node.level + 1])
                module = f"{anchor}.{node.module}" if node.module else anchor
            else:
                module = node.module or ""
            # `from . import x` imports the submodule x when there is one
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in known else module for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # videomae.a.b.func -> videomae.a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle, as a path that starts and ends at the same module, or None. A package's
    __init__ importing its own submodules (to re-export them) is not a cycle."""
    def edges(node: str) -> set[str]:
        return {t for t in graph[node] if not (t.startswith(node + ".") or node.startswith(t + "."))}

    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges(node)):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_graph_sees_relative_and_lazy_imports() -> None:
    graph = import_graph()
    assert "videomae.config" in graph["videomae.modeling"]
    assert "videomae.modeling" in graph["videomae.loading"]  # imported inside functions


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_module_imports(name: str) -> None:
    importlib.import_module(name)


def test_no_import_cycle() -> None:
    assert _cycle(import_graph()) is None, " -> ".join(_cycle(import_graph()) or [])


def test_a_cycle_is_found() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_the_cli_imports_the_cli() -> None:
    graph = import_graph()
    offenders = sorted(name for name, targets in graph.items()
                       if not name.startswith("videomae.cli") and name != "videomae.__main__"
                       and any(t == "videomae.cli" or t.startswith("videomae.cli.") for t in targets))
    assert offenders == []


def test_imagenet_statistics_have_one_home() -> None:
    """STYLE 16: the numbers are typed once, in videomae/constants.py."""
    typed = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if "0.485" in p.read_text() or "0.229" in p.read_text())
    assert typed == ["constants.py"]


def test_helpers_have_one_home() -> None:
    """STYLE 16: one definition of each shared helper."""
    for helper in ("resolve_device", "plot_curves"):
        homes = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                       if f"def {helper}(" in p.read_text())
        assert len(homes) == 1, (helper, homes)


def test_an_alias_names_one_module() -> None:
    """`ckpt` once stood for both videomae.checkpoint (weight layouts) and
    videomae.train.checkpointing (training state): an alias must mean one module everywhere."""
    meanings: dict[str, set[str]] = {}
    for name, path in _modules().items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                anchor = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{anchor}.{node.module}" if node.module else anchor
                for alias in node.names:
                    if alias.asname:
                        meanings.setdefault(alias.asname, set()).add(f"{module}.{alias.name}")
    assert {alias: sorted(m) for alias, m in meanings.items() if len(m) > 1} == {}
