"""Imports only flow down (docs/ARCHITECTURE.md, *Layers*): a new upward import fails here.

Every import between project modules counts, at module top, inside a function or under
TYPE_CHECKING. An exception would be listed with its reason; one that no longer occurs must be
removed from the list, so it only ever shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("foresight", "features", "connectors", "simulator", "models", "dashboards", "response", "streaming",
            "flows", "bench")
# The roof: the command line and the local development stack it starts (foresight/cli/, the stack
# in foresight/cli/local_stack/), which may import everything below them and are imported by nothing.
ROOF = {"foresight.cli"}
# Layer -> the layers it may import (its own included).
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "features": {"core", "features"},
    "connectors": {"core", "connectors"},
    "simulator": {"core", "connectors", "simulator"},
    "models": {"core", "features", "models"},
    "dashboards": {"core", "connectors", "dashboards"},
    # Automated response: its pure decisions (models.response) wired to executors and the audit log.
    "response": {"core", "features", "connectors", "models", "response"},
    # The stream processor: Kafka I/O, log features and the incident engine wired per partition.
    "streaming": {"core", "features", "connectors", "models", "response", "streaming"},
    "flows": {"core", "features", "connectors", "simulator", "models", "dashboards", "response", "streaming", "flows"},
    "bench": {"core", "features", "connectors", "simulator", "models", "dashboards", "response", "streaming", "flows",
              "bench"},
    "roof": {"core", "features", "connectors", "simulator", "models", "dashboards", "response", "streaming", "flows",
             "bench", "roof"},
}
# (importer, imported module) -> why it must go up. None today: add one only with its reason.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}


def layer(module: str) -> str:
    if module in ROOF or any(module.startswith(r + ".") for r in ROOF):
        return "roof"
    top = module.split(".")[0]
    return "core" if top == "foresight" else top


def project_imports() -> list[tuple[str, str]]:
    """``(importer, imported)`` for every import of a project module by a project module."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            importer = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                found += [(importer, name) for name in names if name.split(".")[0] in PACKAGES]
    return found


def test_imports_only_flow_down_apart_from_the_known_exceptions() -> None:
    imports = project_imports()
    assert len(imports) > 300  # the walk found the project
    upward = sorted({(a, b) for a, b in imports if layer(b) not in ALLOWED[layer(a)]})
    new = [f"{a} imports {b} ({layer(a)} -> {layer(b)})" for a, b in upward if (a, b) not in KNOWN_UPWARD]
    assert not new, "upward imports (docs/ARCHITECTURE.md, Layers):\n" + "\n".join(new)
    stale = sorted(set(KNOWN_UPWARD) - set(upward))
    assert not stale, f"no longer imported, remove from KNOWN_UPWARD: {stale}"


def test_nothing_imports_the_benchmarks_or_the_command_line() -> None:
    for importer, imported in project_imports():
        if layer(importer) not in ("bench", "roof") and (importer, imported) not in KNOWN_UPWARD:
            assert layer(imported) not in ("bench", "roof"), f"{importer} imports {imported}"


def test_the_rule_catches_an_upward_import() -> None:
    assert layer("models.incidents.pipeline") == "models" and layer("foresight.cli") == "roof"
    assert "flows" not in ALLOWED["models"] and "models" not in ALLOWED["connectors"]
    assert "bench" not in ALLOWED["flows"] and "roof" not in ALLOWED["bench"]
    assert "flows" not in ALLOWED["streaming"] and "streaming" not in ALLOWED["models"]
