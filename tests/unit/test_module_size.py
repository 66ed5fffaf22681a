"""No project module over 400 lines unless its docstring says why (issue 14, "one house plan").

A long module usually holds several things a reader has to tell apart; one that is genuinely one
piece (a state machine, a long table) says so in its docstring with a sentence starting
"Longer than 400 lines because". Tests are not counted. Modules still waiting for their split are
listed below; one that is no longer too long must leave the list, so it only ever shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("foresight", "features", "connectors", "simulator", "models", "dashboards", "response", "streaming",
            "flows", "bench")
MAX_LINES = 400
REASON = "Longer than 400 lines because"
# Module (path from the repository root) -> why it is over the limit without a reason yet.
AWAITING_SPLIT: dict[str, str] = {
}


def line_count(path: Path) -> int:
    """Lines as ``wc -l`` counts them."""
    return path.read_bytes().count(b"\n")


def says_why(path: Path) -> bool:
    """Whether the module's docstring gives the reason it is long."""
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return REASON in " ".join(docstring.split())  # wrapped lines read as one


def too_long(root: Path, packages: tuple[str, ...] = PACKAGES, limit: int = MAX_LINES) -> list[str]:
    """Modules under ``root``'s ``packages`` longer than ``limit`` lines whose docstring does not say why."""
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if line_count(path) > limit and not says_why(path):
                found.append(path.relative_to(root).as_posix())
    return found


def test_no_project_module_is_long_without_a_reason() -> None:
    offenders = [m for m in too_long(ROOT) if m not in AWAITING_SPLIT]
    assert not offenders, (
        f"over {MAX_LINES} lines with no {REASON!r} in the docstring (split the module into parts named "
        f"for what they hold, or say why it is one piece): {', '.join(offenders)}"
    )


def test_the_awaiting_split_list_only_shrinks() -> None:
    listed_but_fine = sorted(set(AWAITING_SPLIT) - set(too_long(ROOT)))
    assert not listed_but_fine, f"no longer too long, remove from AWAITING_SPLIT: {listed_but_fine}"


def _module(path: Path, docstring: str, body_lines: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"X{i} = {i}\n" for i in range(body_lines))
    path.write_text(f'"""{docstring}"""\n\n{body}', encoding="utf-8")


def test_the_checker_names_a_long_module_without_a_reason(tmp_path: Path) -> None:
    _module(tmp_path / "models" / "long.py", "Many things.", MAX_LINES)
    _module(tmp_path / "models" / "short.py", "One thing.", MAX_LINES - 5)
    _module(tmp_path / "flows" / "deep" / "long_too.py", "Also many.", MAX_LINES + 50)
    assert too_long(tmp_path, ("models", "flows")) == ["models/long.py", "flows/deep/long_too.py"]


@pytest.mark.parametrize(
    "docstring",
    [
        "A state machine.\n\nLonger than 400 lines because it is one state machine.",
        "A table.\n\nLonger than 400\nlines because it is one table.",  # wrapped mid-phrase
    ],
)
def test_the_checker_accepts_a_reason_in_the_docstring(tmp_path: Path, docstring: str) -> None:
    _module(tmp_path / "models" / "long.py", docstring, MAX_LINES + 10)
    assert too_long(tmp_path, ("models",)) == []


def test_a_reason_outside_the_docstring_does_not_count(tmp_path: Path) -> None:
    path = tmp_path / "models" / "long.py"
    _module(path, "Many things.", MAX_LINES + 10)
    path.write_text(path.read_text() + "# Longer than 400 lines because reasons\n", encoding="utf-8")
    assert too_long(tmp_path, ("models",)) == ["models/long.py"]
