"""Source rules (HOUSE_STYLE): import layering and the enforced clock.

Every module of the package belongs to one layer (the longest matching prefix
in LAYERS). A layer may import itself, the aaad layers listed for it, the
standard library, and the third-party packages listed for it. Relative
imports are resolved before they are judged, and imports inside functions
count like the ones at the top.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = next(p / "aaad" for p in Path(__file__).resolve().parents if (p / "aaad").is_dir())

# layer (a module prefix) → (aaad layers it may import, third-party packages)
LAYERS: dict[str, tuple[set[str], set[str]]] = {
    "aaad.core": (set(), set()),
    "aaad.core.units": (set(), set()),
    "aaad.core.accounting": ({"aaad.core.units"}, set()),
    "aaad.core.quotas": ({"aaad.core.accounting", "aaad.core.units"}, set()),
    "aaad.core.telephony": ({"aaad.core.accounting", "aaad.core.quotas", "aaad.core.units"},
                            set()),
    "aaad.core.billing": ({"aaad.core.accounting", "aaad.core.quotas", "aaad.core.units"}, set()),
    # OpenSSL, cryptography: RadSec (RADIUS over TLS, aaad.radius.tls); Crypto
    # (pycryptodome): MD4 and DES for MS-CHAP (aaad.radius.mschap).
    "aaad.radius": ({"aaad.core"}, {"pyrad", "twisted", "OpenSSL", "cryptography", "zope",
                                    "Crypto"}),
    "aaad.store": ({"aaad.core"}, {"sqlalchemy", "alembic"}),
    "aaad.migrations": ({"aaad.store"}, {"sqlalchemy", "alembic"}),
    # The dictionaries check attribute names in the configuration.
    "aaad.config": ({"aaad.core", "aaad.radius"}, {"yaml"}),
    "aaad.credentials": (set(), {"argon2", "Crypto"}),
    "aaad.ops": (set(), set()),
    # yaml: the API serves its OpenAPI document, aaad/daemon/api/openapi.yaml;
    # zope: Twisted's interfaces (daemon.pg_statement declares the ones it
    # implements).
    "aaad.daemon": ({"aaad.core", "aaad.radius", "aaad.store", "aaad.config",
                     "aaad.credentials", "aaad.ops"},
                    {"pyrad", "twisted", "sqlalchemy", "alembic", "prometheus_client",
                     "yaml", "zope"}),
    "aaad.cli": ({"aaad.core", "aaad.radius",
                  "aaad.store", "aaad.config", "aaad.credentials", "aaad.ops",
                  "aaad.daemon", "aaad.migrations"},
                 {"click", "pyrad", "twisted", "sqlalchemy", "alembic", "yaml",
                  "prometheus_client"}),
    "aaad.__main__": ({"aaad.cli"}, set()),
    "aaad": (set(), set()),
}
CLOCK_CALLS = ("time.time(", "datetime.now(", "date.today(", "datetime.utcnow(")


def modules() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    return max((layer for layer in LAYERS
                if module == layer or module.startswith(layer + ".")), key=len)


def imports(path: Path, text: str | None = None) -> set[str]:
    """Every module this file imports, relative imports made absolute."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                prefix = ".".join(base)
                if node.module:
                    found.add(f"{prefix}.{node.module}")
                else:
                    found |= {f"{prefix}.{a.name}" for a in node.names}
            elif node.module:
                found.add(node.module)
    return found


def test_every_module_has_a_layer() -> None:
    for path in modules():
        assert layer_of(module_name(path)) != "aaad" or path.parent == ROOT, path


@pytest.mark.parametrize("path", modules(), ids=lambda p: module_name(p))
def test_layers_import_only_downwards(path: Path) -> None:
    own = layer_of(module_name(path))
    allowed_aaad, third_party = LAYERS[own]
    for name in imports(path):
        top = name.split(".")[0]
        if top == "aaad":
            target = layer_of(name)
            ok = (target == own or any(target == a or target.startswith(a + ".")
                                       for a in allowed_aaad))
            assert ok, f"{module_name(path)} ({own}) imports {name} ({target})"
        else:
            assert top in sys.stdlib_module_names or top in third_party \
                or top == "__future__", f"{module_name(path)} imports {name}"


def test_relative_imports_are_resolved() -> None:
    # The layer check must see through "from . import x" and "from .. import y".
    fake = ROOT / "core" / "accounting" / "usage.py"
    text = "from .sessions import Totals\nfrom .. import units\nfrom ...store import calls\n"
    assert imports(fake, text) == {"aaad.core.accounting.sessions", "aaad.core.units",
                                   "aaad.store"}


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
    for path in (ROOT / "core").rglob("*.py"):
        assert "logging" not in imports(path), path
