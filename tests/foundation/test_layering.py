"""The project's own imports run one way, without cycles; an import inside a function is for cold start only.

``LAYERS`` is the map a maintainer reads first: each capability may import
only what stands below it (and its own package). Every import counts, those
inside functions too, so a cycle cannot hide behind a deferred import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.support import PROJECT_ROOT

# Top to bottom. A unit is a package or a module; a module belongs to the longest unit its name starts with.
LAYERS: list[list[str]] = [
    ["function_app"],
    ["handlers"],
    ["shared.bootstrap"],
    ["shared.intake", "shared.guard"],
    ["shared.refresh"],
    ["shared.pipeline"],
    ["shared.protection"],
    ["shared.eventfacts"],
    ["shared.gateway"],
    ["shared.alerts", "shared.clients"],
    ["shared.settings"],
    ["shared.store"],
    ["shared.model"],
    ["shared.arm", "shared.messaging"],
    ["shared.naming", "shared.errors"],
]
PROJECT_PACKAGES = ("function_app", "handlers", "shared")
# Said next to every import inside a function, which exists only to keep the host's indexing cheap.
COLD_START_MARK = "cold start"


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int
    in_function: bool


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    paths = [root / "function_app.py", *sorted((root / "handlers").rglob("*.py")), *sorted((root / "shared").rglob("*.py"))]
    return {module_name(path, root): path for path in paths}


def imports_of(name: str, path: Path, known: set[str]) -> list[Import]:
    """Every import of a project module in ``path``, relative ones resolved; ``from x import y`` counts y if y is a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets: list[str] = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in child.names]
            for target in targets:
                found.append(Import(name, target, path, child.lineno, in_function))
            visit(child, nested)

    visit(tree, False)
    return found


def all_imports() -> list[Import]:
    modules = project_modules(PROJECT_ROOT)
    known = set(modules)
    return [imp for name, path in modules.items() for imp in imports_of(name, path, known)]


def unit_of(module: str) -> tuple[int, str] | None:
    """(layer index, unit) of a project module; None for anything else."""
    best: tuple[int, str] | None = None
    for index, layer in enumerate(LAYERS):
        for unit in layer:
            if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best[1])):
                best = (index, unit)
    return best


def is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT_PACKAGES


def layering_violations(imports: list[Import]) -> list[str]:
    """Imports that go up, sideways into another unit of the same layer, or into a module no layer names."""
    problems = []
    for imp in imports:
        if not is_project(imp.imported):
            continue
        source, target = unit_of(imp.importer), unit_of(imp.imported)
        where = f"{imp.path.relative_to(PROJECT_ROOT)}:{imp.line}: {imp.importer} imports {imp.imported}"
        if source is None or target is None:
            problems.append(f"{where} (a module missing from LAYERS)")
        elif source[1] != target[1] and target[0] <= source[0]:
            problems.append(f"{where} ({target[1]} does not stand below {source[1]})")
    return problems


def cycles(imports: list[Import]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), over every project import."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if is_project(imp.imported) and imp.imported != imp.importer:
            graph.setdefault(imp.importer, set()).add(imp.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                connect(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def unmarked_deferred_imports(imports: list[Import]) -> list[str]:
    """Imports inside functions that are not for cold start: of the project's own modules in ``shared``, or unmarked."""
    problems = []
    for imp in imports:
        if not imp.in_function:
            continue
        where = f"{imp.path.relative_to(PROJECT_ROOT)}:{imp.line}: {imp.imported}"
        if imp.importer.startswith("shared") and is_project(imp.imported):
            problems.append(f"{where} (a project module imported inside a function: import it at the top)")
            continue
        lines = imp.path.read_text().splitlines()
        # The mark stands in the import's block of imports, or in a comment just above it.
        at = imp.line - 1
        while at > 0 and lines[at - 1].strip().startswith(("from ", "import ")):
            at -= 1
        context = "".join(lines[max(at - 1, 0):imp.line])
        if COLD_START_MARK not in context:
            problems.append(f"{where} (an import inside a function must say it is there for {COLD_START_MARK})")
    return problems


class TestLayering:
    def test_every_project_module_has_a_place_in_the_layers(self):
        # The ``shared`` package itself holds only the map of its parts (a docstring).
        assert [name for name in project_modules(PROJECT_ROOT) if unit_of(name) is None and name != "shared"] == []

    def test_imports_only_go_down_the_layers(self):
        assert layering_violations(all_imports()) == []

    def test_no_module_imports_itself_back_through_others(self):
        assert cycles(all_imports()) == []

    def test_imports_inside_functions_are_for_cold_start_only_and_say_so(self):
        assert unmarked_deferred_imports(all_imports()) == []


class TestTheCheckItself:
    """The checks above would fail on the faults they exist for."""

    def test_an_upward_import_is_reported(self, tmp_path):
        planted = Import("shared.store.ledger", "shared.pipeline.stages", PROJECT_ROOT / "shared/store/ledger.py", 1, False)
        assert layering_violations([planted]) == [
            "shared/store/ledger.py:1: shared.store.ledger imports shared.pipeline.stages "
            "(shared.pipeline does not stand below shared.store)"
        ]

    def test_a_cycle_hidden_inside_a_function_is_reported(self):
        down = Import("shared.pipeline.stages", "shared.guard.sweep", PROJECT_ROOT / "shared/pipeline/stages.py", 1, True)
        up = Import("shared.guard.sweep", "shared.pipeline.stages", PROJECT_ROOT / "shared/guard/sweep.py", 1, False)
        assert cycles([down, up]) == [["shared.guard.sweep", "shared.pipeline.stages"]]
        assert unmarked_deferred_imports([down]) == [
            "shared/pipeline/stages.py:1: shared.guard.sweep (a project module imported inside a function: import it at the top)"
        ]

    def test_relative_imports_resolve_to_the_modules_they_name(self, tmp_path):
        module = tmp_path / "shared" / "pipeline" / "stages.py"
        module.parent.mkdir(parents=True)
        module.write_text("from ..store.ledger import Stage\nfrom . import routing\n\ndef f():\n    from ..guard import sweep\n")
        known = {"shared.store.ledger", "shared.pipeline.routing", "shared.guard.sweep", "shared.guard"}
        found = [(i.imported, i.in_function) for i in imports_of("shared.pipeline.stages", module, known)]
        assert found == [("shared.store.ledger", False), ("shared.pipeline.routing", False), ("shared.guard.sweep", True)]
