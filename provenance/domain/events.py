"""The registry's events as plain records: the chain decodes them, the index stores and replays
them, verification and audit compare them, and none of those needs the others to name one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DecodedEvent:
    """One registry event with its chain coordinates."""

    name: str
    args: Mapping[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    address: str
