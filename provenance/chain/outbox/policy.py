"""How the outbox worker behaves: one frozen policy, its defaults, and the limits they come from."""

from __future__ import annotations

from dataclasses import dataclass

from provenance.domain.blocks import FINALIZED, Confirmations

TX_GAS_CAP = 2**24
"""EIP-7825: no transaction may ask for more gas than this (eth-tester does not enforce it)."""
MAX_TX_BYTES = 120 * 1024
"""Below the 128 KiB that nodes accept in their transaction pool, with room for the signature."""
LOTS_PER_TX = 400
"""~11 M gas and ~90 KB of calldata for registrations (docs/benchmarks.md: ~27.4k gas per lot)."""
SHARED_BASE_GAS = 80_000
SHARED_LOT_GAS = 45_000
"""Gas limit of a coalesced `registerLots` of n lots: base + n × per lot, over 1.5 times what it
uses (bench/gas.py). Unused gas is not paid for; a transaction that ran out anyway fails on
chain, and its operations go again one by one."""
GAS_MARGIN = 1.2
"""Gas limit = estimate × GAS_MARGIN (at most max_tx_gas): the state may change a little by mining."""
COALESCE_LOTS = 10
"""Registrations of at most this many lots are coalesced with others of the same sender and site
into one `registerLots` transaction (0: never). Single-lot POSTs sent one transaction each top out
near 30 lots/s (docs/benchmarks.md); a shared transaction also costs half the gas per lot."""


@dataclass(frozen=True)
class OutboxPolicy:
    confirmations: Confirmations = 0
    """Blocks on top of a transaction's before it is confirmed, or "finalized"."""
    recheck_blocks: int = 64
    """How far back mined transactions are checked for reorgs."""
    lots_per_tx: int = LOTS_PER_TX
    max_tx_gas: int = TX_GAS_CAP
    max_tx_bytes: int = MAX_TX_BYTES
    priority_fee_wei: int = 10**9
    defer_s: float = 30.0
    """How long a refused simulation is retried while other transactions are unmined."""
    operations_per_step: int = 200
    full_recheck_s: float = 60.0
    """How often the whole recheck window is looked at, whatever the blocks' hashes say."""
    key_retry_s: float = 60.0
    """How long a sender without a key is set aside."""
    coalesce_lots: int = COALESCE_LOTS
    nonce_check_s: float = 5.0
    """How often each sender's pending nonce is asked of the node."""

    def __post_init__(self) -> None:
        if (
            (self.confirmations != FINALIZED and self.confirmations < 0)
            or self.recheck_blocks < 1
            or self.lots_per_tx < 1
        ):
            raise ValueError("confirmations >= 0, recheck_blocks >= 1 and lots_per_tx >= 1 are required")
