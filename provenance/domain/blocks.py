"""Blocks as the index sees them: a number, a hash, and the parent hash that chains them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlockRef:
    """One block header, reduced to what reorg detection and event times need (hashes as 0x-hex)."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int
    """Unix seconds, as the block's header states them: the time of every event in the block."""
