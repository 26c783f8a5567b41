"""Compile the registry with a pinned compiler and settings, and write reproducible artifacts.

The standard-JSON input is self-contained (every imported source inlined), so it is kept beside
the artifacts: anyone can recompile it and get the same bytecode, which is how the deployed
contract is verified. The compiler is a native solc of the pinned version when one is installed
(py-solc-x's own or on PATH), otherwise the npm `solc` package through `tools/solcjs`. Nothing
here downloads a compiler.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solcx

from provenance.errors import CompilerError

SOLC_VERSION = "0.8.30"
EVM_VERSION = "prague"
OPTIMIZER_RUNS = 10_000
MAIN_SOURCE = "contracts/OreLotRegistry.sol"
MAIN_CONTRACT = "OreLotRegistry"

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
ARTIFACT_PATH = ARTIFACTS_DIR / f"{MAIN_CONTRACT}.json"
INPUT_PATH = ARTIFACTS_DIR / "standard-input.json"

_IMPORT = re.compile(r'^\s*import\s+(?:\{[^}]*\}\s+from\s+)?"([^"]+)"\s*;', re.MULTILINE)


@dataclass(frozen=True)
class Compiler:
    executable: Path
    version: str
    """The full version with commit, e.g. 0.8.30+commit.73712a01."""


def settings() -> dict[str, Any]:
    """Compiler settings; every field that changes the bytecode is pinned here."""
    return {
        "evmVersion": EVM_VERSION,
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "viaIR": True,
        "metadata": {"bytecodeHash": "ipfs", "useLiteralContent": False},
        "outputSelection": {
            "*": {
                "*": [
                    "abi",
                    "metadata",
                    "evm.bytecode.object",
                    "evm.deployedBytecode.object",
                    "evm.deployedBytecode.immutableReferences",
                    "storageLayout",
                ]
            }
        },
    }


def standard_input(root: Path = REPO_ROOT, main_source: str = MAIN_SOURCE) -> dict[str, Any]:
    """The standard-JSON input with `main_source` and everything it imports inlined."""
    sources: dict[str, dict[str, str]] = {}
    pending = [main_source]
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _read_source(root, unit).read_text(encoding="utf-8")
        sources[unit] = {"content": text}
        for imported in _IMPORT.findall(text):
            pending.append(_resolve(unit, imported))
    return {"language": "Solidity", "sources": dict(sorted(sources.items())), "settings": settings()}


def find_compiler(root: Path = REPO_ROOT) -> Compiler:
    """A native solc of the pinned version if installed, else the npm solc-js wrapper."""
    candidates: list[Path] = []
    try:
        for installed in solcx.get_installed_solc_versions():
            if str(installed) == SOLC_VERSION:
                candidates.append(Path(solcx.install.get_executable(installed)))
    except Exception:  # noqa: S110 - py-solc-x's install folder may not exist; that only means no native solc
        pass
    on_path = shutil.which("solc")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(root / "tools" / "solcjs")
    problems = []
    for executable in candidates:
        try:
            version = solcx.wrapper.get_version_str_from_solc_binary(executable)
        except (OSError, solcx.exceptions.SolcError) as error:
            problems.append(f"{executable}: {error}")
            continue
        if version.split("+")[0] == SOLC_VERSION:
            return Compiler(executable=executable, version=version)
        problems.append(f"{executable}: version {version}, need {SOLC_VERSION}")
    raise CompilerError(
        f"no solc {SOLC_VERSION} found ({'; '.join(problems)}); run `npm ci` to install the npm solc package"
    )


def compile_registry(compiler: Compiler | None = None, root: Path = REPO_ROOT) -> tuple[str, str]:
    """Compiles the registry; returns (artifact JSON text, standard-input JSON text)."""
    compiler = compiler or find_compiler(root)
    input_data = standard_input(root)
    try:
        output = solcx.compile_standard(input_data, solc_binary=compiler.executable)
    except solcx.exceptions.SolcError as error:
        raise CompilerError(str(error)) from error
    contract = output["contracts"][MAIN_SOURCE][MAIN_CONTRACT]
    artifact = {
        "_generated": "by `provenance compile`; do not edit. Reproduce with standard-input.json.",
        "contractName": MAIN_CONTRACT,
        "sourceName": MAIN_SOURCE,
        "compiler": {"name": "solc", "version": compiler.version.split(".Emscripten")[0]},
        "settings": {key: value for key, value in settings().items() if key != "outputSelection"},
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
        "deployedBytecode": "0x" + contract["evm"]["deployedBytecode"]["object"],
        "immutableReferences": contract["evm"]["deployedBytecode"]["immutableReferences"],
        "storageLayout": contract["storageLayout"],
        "metadata": contract["metadata"],
    }
    return _dump(artifact), _dump(input_data)


def write_artifacts(compiler: Compiler | None = None, root: Path = REPO_ROOT) -> Path:
    artifact_text, input_text = compile_registry(compiler, root)
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    ARTIFACT_PATH.write_text(artifact_text, encoding="utf-8")
    INPUT_PATH.write_text(input_text, encoding="utf-8")
    return ARTIFACT_PATH


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def _resolve(importer: str, imported: str) -> str:
    if imported.startswith("."):
        parts: list[str] = importer.split("/")[:-1]
        for piece in imported.split("/"):
            if piece == "..":
                parts.pop()
            elif piece != ".":
                parts.append(piece)
        return "/".join(parts)
    return imported


def _read_source(root: Path, unit: str) -> Path:
    for base in (root, root / "node_modules"):
        candidate = base / unit
        if candidate.is_file():
            return candidate
    raise CompilerError(f"cannot find Solidity source {unit!r} (is `npm ci` done?)")
