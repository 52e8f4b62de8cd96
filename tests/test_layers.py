"""Source rules (HOUSE_STYLE): import layering and the enforced clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "aaad"

# package → the aaad packages it may import (besides itself and aaad.units)
ALLOWED = {
    "accounting": set(),
    "quotas": {"accounting"},
    "radius": {"accounting", "quotas"},
    "store": {"accounting", "quotas", "telephony"},
    "telephony": {"accounting", "quotas"},
}
THIRD_PARTY = {
    "accounting": set(),
    "quotas": set(),
    "radius": {"pyrad", "twisted"},
    "store": {"sqlalchemy", "alembic"},
    "telephony": set(),
}
CLOCK_CALLS = ("time.time(", "datetime.now(", "date.today(", "datetime.utcnow(")


def modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py"))


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layers_import_only_downwards(package: str) -> None:
    import sys
    stdlib = sys.stdlib_module_names
    for path in (ROOT / package).rglob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            if top == "aaad":
                parts = name.split(".")
                sub = parts[1] if len(parts) > 1 else ""
                assert sub in ALLOWED[package] | {package, "units"}, \
                    f"{path.relative_to(ROOT.parent)} imports {name}"
            else:
                assert top in stdlib or top in THIRD_PARTY[package] or top == "__future__", \
                    f"{path.relative_to(ROOT.parent)} imports {name}"


def test_store_never_imports_twisted() -> None:
    for path in (ROOT / "store").rglob("*.py"):
        assert not any(n.split(".")[0] == "twisted" for n in imports(path)), path


def test_clock_is_read_only_in_daemon_main() -> None:
    for path in modules():
        text = path.read_text()
        rel = path.relative_to(ROOT.parent).as_posix()
        if rel == "aaad/daemon/main.py":
            continue
        for call in CLOCK_CALLS:
            assert call not in text, f"{rel} calls {call}"
        assert "from twisted.internet import reactor" not in text, rel


def test_core_never_logs() -> None:
    for package in ("accounting", "quotas"):
        for path in (ROOT / package).rglob("*.py"):
            assert "logging" not in imports(path), path
