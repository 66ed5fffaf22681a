"""Imports sit at module top (docs/ARCHITECTURE.md, *Conventions*): one inside a function or method
hides the real import graph, so it is allowed only with a ``# lazy: <why>`` comment on the
statement (a heavy or optional library, ``foresight --help`` kept fast).

The comment may sit on any line of a wrapped statement, as ruff's import sorting wraps it.
Module-level imports (``if TYPE_CHECKING:``, ``try: ... except ImportError``) are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "foresight",
    "features",
    "connectors",
    "simulator",
    "models",
    "dashboards",
    "response",
    "flows",
    "bench",
    "tests/support",
)
MARK = "# lazy:"


def unmarked_function_imports(source: str, filename: str) -> list[str]:
    """``filename:line`` of every import inside a function or method body whose statement carries
    no ``# lazy:`` comment."""
    lines = source.splitlines()
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function:
                statement = lines[child.lineno - 1 : (child.end_lineno or child.lineno)]
                if not any(MARK in line for line in statement):
                    found.append(f"{filename}:{child.lineno}")
            visit(
                child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            )

    visit(ast.parse(source, filename), False)
    return found


def project_files() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]


def test_imports_inside_functions_say_why_they_are_lazy() -> None:
    files = project_files()
    assert len(files) > 150  # the walk found the project
    unmarked = [
        hit
        for path in files
        for hit in unmarked_function_imports(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not unmarked, (
        "imports inside a function: move them to the module top, or say why they must be lazy with "
        "a '# lazy: <why>' comment on the import line:\n" + "\n".join(unmarked)
    )


def test_the_check_flags_an_unmarked_import_in_a_function_or_method() -> None:
    source = """
import os


def f():
    import json

    return json


class C:
    def m(self):
        if os.name:
            from pathlib import (
                Path,
            )
        return Path

    async def a(self):
        import re
"""
    assert unmarked_function_imports(source, "x.py") == ["x.py:6", "x.py:14", "x.py:20"]


def test_the_check_accepts_a_marked_lazy_import_and_module_level_ones() -> None:
    source = """
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

try:
    import fcntl
except ImportError:
    fcntl = None


def f():
    import mlflow  # lazy: MLflow takes ~2 s
    from kafka.admin import (  # lazy: kafka-python is optional
        KafkaAdminClient,
    )
    from mlflow.tracking._model_registry import (
        utils,  # lazy: MLflow takes ~2 s
    )
    return mlflow, KafkaAdminClient, utils
"""
    assert unmarked_function_imports(source, "x.py") == []
