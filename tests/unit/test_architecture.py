"""The layout is the architecture: each third-party framework is imported only by its adapter layer."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# top-level module -> the only package folders allowed to import it
CONFINED = {
    "web3": ("provenance/chain",),
    "eth_account": ("provenance/chain",),
    "eth_abi": ("provenance/chain",),
    "eth_utils": ("provenance/chain",),
    "hexbytes": ("provenance/chain",),
    "solcx": ("provenance/chain",),
    "sqlalchemy": ("provenance/index", "migrations"),
    "alembic": ("provenance/index", "migrations"),
    "psycopg": ("provenance/index",),
    "fastapi": ("api",),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def sources(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]


@pytest.mark.parametrize("path", sources("provenance", "api"), ids=lambda p: str(p.relative_to(ROOT)))
def test_frameworks_stay_in_their_adapter_layer(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    for module in imported_modules(path):
        allowed = CONFINED.get(module)
        if allowed is not None:
            assert relative.startswith(allowed), f"{relative} imports {module}, which belongs in {allowed}"


@pytest.mark.parametrize("path", sources("provenance/domain"), ids=lambda p: p.name)
def test_domain_imports_only_the_standard_library(path: Path) -> None:
    for module in imported_modules(path):
        assert module in sys.stdlib_module_names or module == "provenance", f"{path.name} imports {module}"


def test_the_package_never_imports_the_api() -> None:
    offenders = [path.name for path in sources("provenance") if "api" in imported_modules(path)]

    assert offenders == []


def provenance_imports(path: Path) -> set[str]:
    """The `provenance.*` modules a file imports, type-checking imports included: a seam crossed
    only for mypy is still a seam crossed."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("provenance."))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "provenance":
                names.update(f"provenance.{alias.name}" for alias in node.names)
            elif node.module.startswith("provenance."):
                names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("adapter", "other"), [("provenance/index", "provenance.chain"), ("provenance/chain", "provenance.index")]
)
def test_adapters_do_not_import_each_other(adapter: str, other: str) -> None:
    offenders = [
        (path.relative_to(ROOT).as_posix(), module)
        for path in sources(adapter)
        for module in sorted(provenance_imports(path))
        if (module == other or module.startswith(other + "."))
    ]

    assert offenders == [], f"{adapter} imports {other}; move the shared record to provenance/domain"


def test_the_api_never_reaches_the_node_itself() -> None:
    """Routers ask the runtime's services; the node connection (`Runtime.w3`) is the chain adapters' alone."""
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in sources("api")
        if re.search(r"(?<!www)\.w3\b", path.read_text())
    ]

    assert offenders == [], "the API reaches the node through Runtime.w3; add a service method"


def test_the_api_never_imports_web3() -> None:
    offenders = [
        path.relative_to(ROOT).as_posix() for path in sources("api") if "web3" in imported_modules(path)
    ]

    assert offenders == []


def test_engines_connections_and_deployments_are_opened_by_the_composition_root() -> None:
    """bootstrap.py wires the system; entrypoints and use cases ask it (`index_engine`,
    `node_connection`, `recorded_deployment`) instead of opening their own."""
    opening = re.compile(r"(?<![\w.])(?<!def )(make_engine|connect)\(|\bDeployment\.load\(")
    offenders = [
        path.relative_to(ROOT).as_posix()
        for path in sources("provenance", "api")
        if not path.relative_to(ROOT).as_posix().startswith(("provenance/index/", "provenance/chain/"))
        and path.name != "bootstrap.py"
        and opening.search(path.read_text())
    ]

    assert offenders == [], "open engines, node connections and deployments through provenance.bootstrap"
