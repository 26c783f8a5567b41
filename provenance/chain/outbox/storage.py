"""What the worker needs of the outbox's storage (`provenance.index.outbox_store.OutboxStore`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from provenance.domain.outbox import (
    ChainConflict,
    OutboxTransaction,
    PendingOperation,
    SignedTransaction,
    TransactionUpdate,
)

log = logging.getLogger(__name__)


class OutboxStorage(Protocol):
    def pending_operations(
        self, limit: int = ..., exclude_senders: Collection[str] = ...
    ) -> list[PendingOperation]: ...

    def split_transaction(self, operation_id: str, sequence: int, cuts: Sequence[int]) -> None: ...

    def sign_and_record(
        self,
        operation_id: str,
        sequences: Sequence[int],
        chain_nonce: int,
        sign: Callable[[int, int], SignedTransaction],
    ) -> list[OutboxTransaction]: ...

    def sign_and_record_shared(
        self,
        members: Sequence[tuple[str, int]],
        chain_nonce: int,
        sign: Callable[[int], SignedTransaction],
    ) -> list[OutboxTransaction]: ...

    def mark_sent(self, tx_hash: str) -> None: ...

    def in_flight(self) -> list[OutboxTransaction]: ...

    def recently_mined(self, since_block: int) -> list[OutboxTransaction]: ...

    def lost_and_unfinished(self) -> list[OutboxTransaction]: ...

    def apply(self, updates: Sequence[TransactionUpdate]) -> None: ...

    def work_generation(self) -> int: ...

    def wait_for_work(self, timeout_s: float, since: int | None = None) -> None: ...

    def hold(self, conflict: ChainConflict, update: TransactionUpdate | None) -> None: ...

    def open_conflicts(self) -> list[ChainConflict]: ...

    def mark_stuck(self, operation_id: str, reason: str) -> None: ...


def record_stuck(store: OutboxStorage, operation_id: str, reason: str) -> None:
    """Says why an operation stays pending (/health and the operation show it), if the database lets."""
    try:
        store.mark_stuck(operation_id, reason)
    except Exception as error:  # the reason is also in the log; the database may be what fails
        log.debug("could not record why operation %s is stuck: %s", operation_id, error)
