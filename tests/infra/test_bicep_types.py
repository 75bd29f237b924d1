"""infra/*.bicep against Azure's published resource type definitions (Azure/bicep-types-az).

Every ``resource 'Type@apiVersion'`` must exist in the published definitions, every property the
Bicep sets must exist on that type (and not be read-only), every literal must have the property's
type (a string among the allowed values where the type lists them), and every
``<resource>.properties.<path>`` the Bicep reads must exist. The definitions the Bicep uses are
kept in tests/data/bicep-types (source commit and files in its SOURCES.md; refreshed with
scripts/refresh-bicep-types). This is what the Bicep compiler checks with the same data (it
cannot be installed here).
"""

from __future__ import annotations

import json
import re
from functools import cache

import pytest

from tests.support import PROJECT_ROOT, parsed_bicep

INFRA = PROJECT_ROOT / "infra"
TYPES = PROJECT_ROOT / "tests" / "data" / "bicep-types" / "types.json"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
READ_ONLY = 2
# Envelope properties Bicep handles itself on every resource declaration.
BICEP_KEYWORDS = {"parent", "scope", "dependsOn"}


@cache
def published() -> dict:
    return json.loads(TYPES.read_text())["resources"]


class Graph:
    def __init__(self, key: str) -> None:
        entry = published()[key]
        self.types = entry["types"]
        self.root = self.types[entry["root"]]

    def at(self, ref: dict) -> dict:
        return self.types[int(ref["$ref"].rsplit("/", 1)[-1])]

    def body(self) -> dict:
        return self.at(self.root["body"])


def symbols(document: dict, text: str) -> set[str]:
    """Names that a bare string in pycep's output may be: params, vars, resources, modules, loop items."""
    names = set(document.get("parameters", {})) | set(document.get("variables", {})) | set(document.get("resources", {})) | set(document.get("modules", {}))
    return names | set(re.findall(r"\[for\s+\(?(\w+)", text)) | set(re.findall(r"\[for\s+\(\w+,\s*(\w+)\)", text))


def is_expression(value, names: set[str]) -> bool:
    return (isinstance(value, dict) and bool({"function", "operator"} & set(value))) or (isinstance(value, str) and (value in names or "${" in value))


def check(graph: Graph, node: dict, value, path: str, names: set[str], problems: list[str]) -> None:
    kind = node["$type"]
    if is_expression(value, names) or kind == "AnyType":
        return
    if isinstance(value, dict) and "loop_type" in value:  # [for ...: {...}]
        value = [value["config"]]
    if kind == "UnionType":
        errors_per_option = []
        for option in node["elements"]:
            attempt: list[str] = []
            check(graph, graph.at(option), value, path, names, attempt)
            if not attempt:
                return
            errors_per_option.append(attempt)
        problems.append(f"{path}: {value!r} matches none of the allowed types ({min(errors_per_option, key=len)[0]})")
        return
    if kind == "StringLiteralType":
        if value != node["value"]:
            problems.append(f"{path}: {value!r} is not {node['value']!r}")
    elif kind == "StringType":
        if not isinstance(value, str):
            problems.append(f"{path}: {value!r} is not a string")
    elif kind == "IntegerType":
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not an integer")
    elif kind == "BooleanType":
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a boolean")
    elif kind == "ArrayType":
        if not isinstance(value, list):
            problems.append(f"{path}: {value!r} is not an array")
            return
        for i, item in enumerate(value):
            check(graph, graph.at(node["itemType"]), item, f"{path}[{i}]", names, problems)
    elif kind in ("ObjectType", "DiscriminatedObjectType"):
        if not isinstance(value, dict):
            problems.append(f"{path}: {value!r} is not an object")
            return
        value = {key.strip("'"): item for key, item in value.items()}  # pycep keeps the quotes of 'odata.type'
        properties = dict(node.get("properties") or node.get("baseProperties") or {})
        if kind == "DiscriminatedObjectType":
            chosen = value.get(node["discriminator"])
            element = node["elements"].get(chosen) if isinstance(chosen, str) else None
            if element is None:
                if not is_expression(chosen, names):
                    problems.append(f"{path}.{node['discriminator']}: {chosen!r} is not one of {sorted(node['elements'])}")
                return
            properties.update(graph.at(element).get("properties", {}))
            properties[node["discriminator"]] = {"type": {"$ref": "#/-1"}, "flags": 1}
        for key, item in value.items():
            name = key.strip("'")
            if name in BICEP_KEYWORDS and path.count(".") == 0:
                continue
            found = next((p for n, p in properties.items() if n.lower() == name.lower()), None)
            if found is None:
                extra = node.get("additionalProperties")
                if extra is None:
                    problems.append(f"{path}.{name}: no such property (has: {', '.join(sorted(properties))})")
                else:
                    check(graph, graph.at(extra), item, f"{path}.{name}", names, problems)
                continue
            if found["flags"] & READ_ONLY:
                problems.append(f"{path}.{name}: read-only, cannot be set")
            if found["type"]["$ref"] != "#/-1":
                check(graph, graph.at(found["type"]), item, f"{path}.{name}", names, problems)


def declared_resources() -> list[tuple[str, str, dict, dict, str]]:
    found = []
    for path in BICEP_FILES:
        document = parsed_bicep(path)
        for name, resource in document["resources"].items():
            found.append((str(path.relative_to(INFRA)), name, resource, document, path.read_text()))
    return found


def test_given_the_subset_when_read_then_it_names_its_source():
    document = json.loads(TYPES.read_text())
    assert document["repository"] == "https://github.com/Azure/bicep-types-az" and len(document["commit"]) == 40
    assert (TYPES.parent / "SOURCES.md").read_text().count(document["commit"]) == 1


@pytest.mark.parametrize(("file", "name", "resource", "document", "text"), declared_resources(), ids=lambda v: v if isinstance(v, str) and not v.startswith(("//", "@")) and "\n" not in v else "")
def test_given_a_resource_when_checked_against_the_published_types_then_its_type_and_properties_exist(file, name, resource, document, text):
    key = f"{resource['type']}@{resource['api_version']}"
    assert key in published(), f"{file} {name}: {key} is not a published resource type (run scripts/refresh-bicep-types if infra/ changed)"
    if resource["existing"]:
        return
    graph = Graph(key)
    config = resource["config"]
    if isinstance(config, dict) and "loop_type" in config:
        config = config["config"]
    if isinstance(config, dict) and set(config) == {"condition", "config"}:
        config = config["config"]
    problems: list[str] = []
    check(graph, graph.body(), config, name, symbols(document, text), problems)
    assert problems == [], f"{file}: " + "; ".join(problems)


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_given_a_bicep_file_when_it_reads_resource_properties_then_each_exists(path):
    document = parsed_bicep(path)
    resources = {name: f"{r['type']}@{r['api_version']}" for name, r in document["resources"].items()}
    problems = []
    for symbol, chain in re.findall(r"\b(\w+)\.properties((?:\.\w+)+)", path.read_text()):
        if symbol not in resources:
            continue
        graph = Graph(resources[symbol])
        node = graph.at(graph.body()["properties"]["properties"]["type"])
        for step in chain.strip(".").split("."):
            properties = {n.lower(): p for n, p in (node.get("properties") or {}).items()}
            if step.lower() not in properties:
                problems.append(f"{symbol}.properties{chain}: no property {step}")
                break
            node = graph.at(properties[step.lower()]["type"])
    assert problems == []


def test_given_a_wrong_property_when_checked_then_the_checker_names_it():
    # The checker itself: a misspelt property, a read-only one and a value outside an enum are caught.
    graph = Graph("Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15")
    problems: list[str] = []
    check(graph, graph.body(), {"name": "x", "properties": {"eventDeliverySchema": "Nope", "provisioningState": "Succeeded", "retryPolicyy": {}}}, "sub", set(), problems)
    assert any("eventDeliverySchema" in p for p in problems)
    assert any("provisioningState: read-only" in p for p in problems)
    assert any("retryPolicyy: no such property" in p for p in problems)
