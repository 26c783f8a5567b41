"""The committed registry artifacts: what deploying and talking to the contract need, with no compiler."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_utils.crypto import keccak

from provenance.chain.compiler import ARTIFACT_PATH, INPUT_PATH


@dataclass(frozen=True)
class RegistryArtifact:
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    immutable_references: dict[str, list[dict[str, int]]]
    compiler_version: str
    settings: dict[str, Any]

    @property
    def errors_by_selector(self) -> dict[bytes, dict[str, Any]]:
        """Custom errors (the registry's and OpenZeppelin's) by their 4-byte selector."""
        return {
            keccak(text=f"{entry['name']}({','.join(item['type'] for item in entry['inputs'])})")[:4]: entry
            for entry in self.abi
            if entry["type"] == "error"
        }


@cache
def registry_artifact() -> RegistryArtifact:
    data = json.loads(ARTIFACT_PATH.read_text(encoding="utf-8"))
    return RegistryArtifact(
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        immutable_references=data["immutableReferences"],
        compiler_version=data["compiler"]["version"],
        settings=data["settings"],
    )


def standard_input_text() -> str:
    """The exact compiler input the artifacts were built from."""
    return INPUT_PATH.read_text(encoding="utf-8")
