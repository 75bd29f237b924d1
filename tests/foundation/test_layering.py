"""The tree's imports run one way, without cycles; an import inside a function is for cold start only.

Two maps a maintainer reads first. ``PACKAGES``: the tree's packages and the
others each may import; production (what ships to Azure) sees none of the tools
around it. ``LAYERS``: inside production, each capability may import only what
stands below it (and its own package). Every import counts, those inside
functions too, so a cycle cannot hide behind a deferred import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

PRODUCTION = ("function_app", "handlers", "shared")
TOOLS = ("emulator", "rehearsal", "cli", "bench", "tests")
# Each package of the tree and the other packages it may import. The emulator copies Azure, not our code, so it
# imports nothing of ours; the rehearsal runs production on the emulator; the command line and the benchmarks stand
# on the rehearsal (and `verify` reads which functions function_app defines, to find each in the deployed app);
# the tests may use everything, and nothing uses them.
PACKAGES: dict[str, frozenset[str]] = {
    "tests": frozenset({"bench", "cli", "rehearsal", "function_app", "handlers", "shared", "emulator"}),
    "bench": frozenset({"rehearsal", "shared", "emulator"}),
    "cli": frozenset({"rehearsal", "function_app", "shared"}),
    "rehearsal": frozenset({"function_app", "handlers", "shared", "emulator"}),
    "function_app": frozenset({"handlers", "shared"}),
    "handlers": frozenset({"shared"}),
    "shared": frozenset(),
    "emulator": frozenset(),
}
# The rules the map keeps whatever else changes in it: (importers, packages they never import, why).
NEVER: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (PRODUCTION, TOOLS, "production ships alone"),
    (("emulator",), PRODUCTION, "the emulator copies Azure, not our code"),
    (("rehearsal",), ("cli", "bench"), "the command line stands on the rehearsal, not under it"),
]

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
    """Every module of the tree's packages, by dotted name."""
    paths = [root / "function_app.py"]
    for package in PACKAGES:
        if package != "function_app":
            paths += sorted((root / package).rglob("*.py"))
    return {module_name(path, root): path for path in paths}


def python_folders(root: Path) -> list[str]:
    """The folders at the root that hold Python (a venv or node_modules excepted)."""
    return sorted(
        folder.name for folder in root.iterdir()
        if folder.is_dir() and not folder.name.startswith(".") and folder.name != "node_modules" and any(folder.rglob("*.py"))
    )


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
                found.append(Import(name, target, path, getattr(child, "lineno", 0), in_function))
            visit(child, nested)

    visit(tree, False)
    return found


@cache
def all_imports() -> tuple[Import, ...]:
    """Every import in the tree, read once per test process."""
    modules = project_modules(PROJECT_ROOT)
    known = set(modules)
    return tuple(imp for name, path in modules.items() for imp in imports_of(name, path, known))


def unit_of(module: str) -> tuple[int, str] | None:
    """(layer index, unit) of a project module; None for anything else."""
    best: tuple[int, str] | None = None
    for index, layer in enumerate(LAYERS):
        for unit in layer:
            if (module == unit or module.startswith(unit + ".")) and (best is None or len(unit) > len(best[1])):
                best = (index, unit)
    return best


def package_of(module: str) -> str | None:
    """The tree's package a module belongs to; None for anything else (the standard library, the SDKs)."""
    top = module.split(".")[0]
    return top if top in PACKAGES else None


def is_production(module: str) -> bool:
    return package_of(module) in PRODUCTION


def package_violations(imports: Iterable[Import]) -> list[str]:
    """Imports of another package of the tree that ``PACKAGES`` does not allow."""
    problems = []
    for imp in imports:
        source, target = package_of(imp.importer), package_of(imp.imported)
        if source is None or target is None or source == target or target in PACKAGES[source]:
            continue
        problems.append(f"{imp.path.relative_to(PROJECT_ROOT)}:{imp.line}: {imp.importer} imports {imp.imported} ({source} may not import {target})")
    return problems


def broken_rules(packages: dict[str, frozenset[str]]) -> list[str]:
    """Where a package map allows what ``NEVER`` forbids."""
    return [
        f"{importer} may import {imported}, but {why}"
        for importers, forbidden, why in NEVER for importer in importers for imported in forbidden if imported in packages.get(importer, ())
    ]


def layering_violations(imports: Iterable[Import]) -> list[str]:
    """Production imports that go up, sideways into another unit of the same layer, or into a module no layer names."""
    problems = []
    for imp in imports:
        if not (is_production(imp.importer) and is_production(imp.imported)):
            continue
        source, target = unit_of(imp.importer), unit_of(imp.imported)
        where = f"{imp.path.relative_to(PROJECT_ROOT)}:{imp.line}: {imp.importer} imports {imp.imported}"
        if source is None or target is None:
            problems.append(f"{where} (a module missing from LAYERS)")
        elif source[1] != target[1] and target[0] <= source[0]:
            problems.append(f"{where} ({target[1]} does not stand below {source[1]})")
    return problems


def cycles(imports: Iterable[Import]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), over every import inside the tree."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if package_of(imp.imported) is not None and imp.imported != imp.importer:
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


def unmarked_deferred_imports(imports: Iterable[Import]) -> list[str]:
    """Production imports inside functions that are not for cold start: of the project's own modules in ``shared``, or unmarked.

    The tools (the command line, the rehearsal, the benchmarks) defer imports freely: they start faster for it.
    """
    problems = []
    for imp in imports:
        if not imp.in_function or not is_production(imp.importer):
            continue
        where = f"{imp.path.relative_to(PROJECT_ROOT)}:{imp.line}: {imp.imported}"
        if imp.importer.startswith("shared") and is_production(imp.imported):
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
    def test_every_folder_of_python_is_a_package_in_the_map(self):
        assert [folder for folder in python_folders(PROJECT_ROOT) if folder not in PACKAGES] == []

    def test_the_package_map_keeps_the_standing_rules(self):
        assert broken_rules(PACKAGES) == []

    def test_packages_import_only_what_the_map_allows(self):
        found = package_violations(all_imports())
        assert found == [], "\n".join(found)

    def test_every_production_module_has_a_place_in_the_layers(self):
        # The ``shared`` package itself holds only the map of its parts (a docstring).
        production = [name for name in project_modules(PROJECT_ROOT) if is_production(name)]
        assert [name for name in production if unit_of(name) is None and name != "shared"] == []

    def test_imports_only_go_down_the_layers(self):
        assert layering_violations(all_imports()) == []

    def test_no_module_imports_itself_back_through_others(self):
        found = cycles(all_imports())
        assert found == [], "\n".join("a cycle through " + ", ".join(group) for group in found)

    def test_imports_inside_functions_are_for_cold_start_only_and_say_so(self):
        assert unmarked_deferred_imports(all_imports()) == []


class TestTheCheckItself:
    """The checks above would fail on the faults they exist for."""

    @pytest.mark.parametrize(("importer", "path", "imported", "rule"), [
        ("shared.naming", "shared/naming.py", "emulator.clock", "shared may not import emulator"),
        ("handlers.pool_requests", "handlers/pool_requests.py", "rehearsal.runner", "handlers may not import rehearsal"),
        ("function_app", "function_app.py", "cli.output", "function_app may not import cli"),
        ("shared.guard.sweep", "shared/guard/sweep.py", "bench.fleet", "shared may not import bench"),
        ("emulator.servicebus.models", "emulator/servicebus/models.py", "shared.messaging", "emulator may not import shared"),
        ("rehearsal.report", "rehearsal/report.py", "cli.output", "rehearsal may not import cli"),
        ("bench.pipeline", "bench/pipeline.py", "tests.support", "bench may not import tests"),
    ])
    def test_an_import_the_package_map_forbids_is_reported(self, importer, path, imported, rule):
        planted = Import(importer, imported, PROJECT_ROOT / path, 7, True)
        assert package_violations([planted]) == [f"{path}:7: {importer} imports {imported} ({rule})"]

    def test_a_package_map_loosened_against_a_standing_rule_is_reported(self):
        loosened = {**PACKAGES, "shared": frozenset({"emulator"}), "rehearsal": PACKAGES["rehearsal"] | {"cli"}}
        assert broken_rules(loosened) == [
            "shared may import emulator, but production ships alone",
            "rehearsal may import cli, but the command line stands on the rehearsal, not under it",
        ]

    def test_a_folder_of_python_outside_the_map_is_reported(self, tmp_path):
        (tmp_path / "tools").mkdir()
        (tmp_path / "tools" / "deploy.py").write_text("")
        (tmp_path / "infra").mkdir()
        (tmp_path / "infra" / "main.bicep").write_text("")
        assert [folder for folder in python_folders(tmp_path) if folder not in PACKAGES] == ["tools"]

    def test_a_route_table_importing_its_router_back_inside_a_function_is_a_cycle(self, tmp_path):
        # The shape the emulator once had: the router's dispatch read the table that imports the router's Route.
        (tmp_path / "emulator" / "compute").mkdir(parents=True)
        router, urls, compute = tmp_path / "emulator" / "router.py", tmp_path / "emulator" / "urls.py", tmp_path / "emulator" / "compute" / "urls.py"
        router.write_text("class Route: ...\n\ndef dispatch(emulator, request):\n    from .urls import ROUTES\n")
        urls.write_text("from .compute.urls import ROUTES as COMPUTE_ROUTES\nfrom .router import RouteTable\n")
        compute.write_text("from ..router import Route\n")
        known = {"emulator.router", "emulator.urls", "emulator.compute.urls"}
        found = [*imports_of("emulator.router", router, known), *imports_of("emulator.urls", urls, known),
                 *imports_of("emulator.compute.urls", compute, known)]
        assert cycles(found) == [["emulator.compute.urls", "emulator.router", "emulator.urls"]]

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
