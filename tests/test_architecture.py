"""The house holds its shape: no two modules import each other, no file grows past 400 lines, every package says what it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("evalsuite", "training", "analysis", "gates", "reports", "pipeline", "benchmarks", "tests")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (inside functions too), not its own packages."""
    targets = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")[: -node.level + (path.name == "__init__.py") or None]
                base = ".".join(package + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name and not name.startswith(target + "."):
            resolved.add(target)
    return resolved


def import_cycles() -> list[list[str]]:
    """Groups of modules that reach each other through imports (Tarjan's strongly connected components)."""
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in graph[node]:
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def test_no_modules_import_each_other():
    assert import_cycles() == []


def test_the_walk_sees_a_cycle_made_inside_a_function(tmp_path, monkeypatch):
    package = tmp_path / "evalsuite"
    package.mkdir()
    (package / "__init__.py").write_text('"""x"""\n')
    (package / "one.py").write_text("from evalsuite.two import B\nA = 1\n")
    (package / "two.py").write_text("B = 2\n\n\ndef later():\n    from evalsuite.one import A\n    return A\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    monkeypatch.setattr(f"{__name__}.PACKAGES", ("evalsuite",))
    assert import_cycles() == [["evalsuite.one", "evalsuite.two"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_file_is_longer_than_400_lines(name):
    path = modules()[name]
    assert len(path.read_text("utf-8").splitlines()) <= MAX_LINES, path.relative_to(ROOT)


def test_every_package_says_in_one_line_what_it_is():
    for path in sorted(ROOT.glob("*/**/__init__.py")):
        if ".tox" in path.parts or "tests" in path.parts:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text("utf-8")))
        assert doc and "\n" not in doc.strip(), path.relative_to(ROOT)
