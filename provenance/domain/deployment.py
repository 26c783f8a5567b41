"""The deployment record: which registry on which chain. A plain record, so the index can check
its mirror against it without importing the chain adapter that checks it against a node."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

from provenance.errors import DeploymentError


@dataclass(frozen=True)
class DeploymentRecord:
    chain_id: int
    genesis_hash: str
    registry: str
    block_number: int
    block_hash: str
    tx_hash: str
    deployer: str
    compiler_version: str

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> Self:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as error:
            raise DeploymentError(f"cannot read deployment record {path}: {error}") from None
