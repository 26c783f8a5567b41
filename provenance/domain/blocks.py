"""Blocks as the index sees them: a number, a hash, and the parent hash that chains them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provenance.errors import DomainError

FINALIZED: Literal["finalized"] = "finalized"
Confirmations = int | Literal["finalized"]
"""How deep a block must be before what it holds counts: a number of blocks under the head, or
the node's `finalized` block (a chain with a finality gadget; on BFT chains 0 is final already)."""


def parse_confirmations(value: str, field: str) -> Confirmations:
    """`"finalized"` or a number of blocks, 0 or more."""
    text = value.strip().lower()
    if text == FINALIZED:
        return FINALIZED
    if text.isdigit():
        return int(text)
    raise DomainError(field, f"a number of blocks (0 or more) or `{FINALIZED}`, not {value!r}")


@dataclass(frozen=True)
class BlockRef:
    """One block header, reduced to what reorg detection and event times need (hashes as 0x-hex)."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    """Unix seconds, as the block's header states them: the time of every event in the block."""
