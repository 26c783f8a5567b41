"""The outbox as the worker sees it: planned and sent transactions, and the changes it records.

An operation is stored with one planned transaction covering its whole payload; the worker splits
a batch (lots or lot ids) into as many transactions as gas and size allow, each covering the
items `[item_start, item_end)` of the payload's batch list. Sequence numbers order an operation's
transactions, and so the nonces they get.

A transaction's status is an `OperationStatus`: pending (no nonce yet), sent (signed with a
nonce, stored, then sent; `block_number` is set once it is mined but not yet deep enough),
confirmed, failed. An operation's status follows from its transactions (see `operation_status`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

from provenance.domain.commands import Command, RegisterLots, command_of
from provenance.domain.operations import OperationKind, OperationStatus
from provenance.errors import DomainError

NOT_SENT = "NotSent"
"""Error name of a transaction never sent because another of its operation was refused first."""


@dataclass(frozen=True)
class OutboxTransaction:
    operation_id: str
    sequence: int
    kind: OperationKind
    sender: str
    status: OperationStatus
    item_start: int | None = None
    item_end: int | None = None
    nonce: int | None = None
    raw_tx: str | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    block_hash: str | None = None
    attempts: int = 0
    share: int = 0
    """0, or the place of this row among the operations one coalesced transaction carries."""
    solo: bool = False
    """Never coalesced again: a transaction that carried it with others failed on chain."""
    sent_at: datetime | None = None
    """When it was last sent: re-sends go in this order, which is the order the chain had them in."""
    lost_block: int | None = None
    """The block it was once mined in, with success, before the chain lost that block."""

    @property
    def mined(self) -> bool:
        return self.block_number is not None


@dataclass(frozen=True)
class PendingOperation:
    """An operation with at least one transaction still to sign, and all its transactions."""

    id: str
    kind: OperationKind
    sender: str
    payload: Mapping[str, Any]
    transactions: tuple[OutboxTransaction, ...]

    @cached_property
    def command(self) -> Command:
        """The stored payload read back; read when needed, so a row this version cannot read
        troubles its own operation only (the worker marks it stuck), not the whole step."""
        return command_of(self.kind, self.payload)

    @property
    def pending(self) -> tuple[OutboxTransaction, ...]:
        return tuple(tx for tx in self.transactions if tx.status is OperationStatus.PENDING)

    def coalescible_lots(self, limit: int) -> int | None:
        """How many lots this operation would add to a shared `registerLots` transaction, or None
        if it must go alone: only a registration not yet split or signed, of at most `limit` lots,
        never one whose shared transaction failed on chain."""
        if self.kind is not OperationKind.REGISTER_LOTS or len(self.transactions) != 1:
            return None
        (tx,) = self.transactions
        if tx.status is not OperationStatus.PENDING or tx.solo or tx.item_start != 0 or tx.item_end is None:
            return None
        return tx.item_end if 0 < tx.item_end <= limit else None


@dataclass(frozen=True)
class SignedTransaction:
    raw_tx: str
    """0x-hex of the signed transaction, exactly the bytes sent (and re-sent)."""
    tx_hash: str


@dataclass(frozen=True)
class TransactionUpdate:
    """What the worker learnt about one transaction. Block fields describe where it is mined now
    (all None: not mined); `release_nonce` sends it back to pending with its nonce and signed
    bytes dropped (another transaction took the nonce); `sent` counts one more send attempt."""

    operation_id: str
    sequence: int
    status: OperationStatus
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: Mapping[str, Any] | None = None
    release_nonce: bool = False
    sent: bool = False
    solo: bool = False
    """With `release_nonce`: from now on the transaction is sent by itself, never coalesced."""
    lost_block: int | None = None
    """The block the chain lost this transaction from, after it was mined there with success."""


@dataclass(frozen=True)
class ChainConflict:
    """An operation the chain accepted, lost with a block, and then refused. It is held, not
    failed (it was acknowledged, and a consistent chain would accept it again), and the worker
    sends nothing until a person resolves the conflict: the chain changed under an acknowledged
    write (a node restored with state its blocks do not account for, or a reorg that let another
    transaction in first)."""

    id: int
    operation_id: str
    sequence: int
    tx_hash: str | None
    lost_block: int
    error_name: str
    error_args: Mapping[str, Any] | None
    detected_at: str

    def describe(self) -> str:
        return (
            f"operation {self.operation_id} was mined in block {self.lost_block}, lost with that block, "
            f"and is now refused by the chain ({self.error_name})"
        )


def operation_status(statuses: Iterable[OperationStatus]) -> OperationStatus:
    """failed if any transaction failed; confirmed if all are; pending if none was signed yet."""
    seen = list(statuses)
    if any(status is OperationStatus.FAILED for status in seen):
        return OperationStatus.FAILED
    if seen and all(status is OperationStatus.CONFIRMED for status in seen):
        return OperationStatus.CONFIRMED
    if all(status is OperationStatus.PENDING for status in seen):
        return OperationStatus.PENDING
    return OperationStatus.SENT


def coalesce(
    pending: Sequence[PendingOperation], max_lots: int, lots_per_tx: int
) -> dict[str, list[PendingOperation]]:
    """Groups of small registrations that can share one transaction: same sender and site, oldest
    first, at most `lots_per_tx` lots a group. Maps each member's id to its group (of two or more)."""
    open_groups: dict[tuple[str, str], tuple[list[PendingOperation], int]] = {}
    groups: list[list[PendingOperation]] = []
    for operation in pending:
        lots = operation.coalescible_lots(max_lots)
        if lots is None:
            continue
        try:
            command = operation.command
        except DomainError:
            continue  # goes alone, and fails there with its own error
        assert isinstance(command, RegisterLots)
        key = (operation.sender.lower(), command.site)
        group, count = open_groups.get(key, ([], 0))
        if count + lots > lots_per_tx:
            group, count = [], 0
        if not group:
            groups.append(group)
        group.append(operation)
        open_groups[key] = (group, count + lots)
    return {member.id: group for group in groups if len(group) > 1 for member in group}


@dataclass(frozen=True)
class TransactionState:
    """What an operation's status is made of, per transaction."""

    sequence: int
    status: OperationStatus
    error_name: str | None
    error_args: Mapping[str, Any] | None


@dataclass(frozen=True)
class OperationOutcome:
    status: OperationStatus
    error_name: str | None = None
    error_args: Mapping[str, Any] | None = None
    """The cause's error: the first failure that is not NotSent."""
    failed_sequence: int | None = None
    """With a failure: its transactions without a nonce are never sent (NotSent, naming it)."""


def operation_outcome(transactions: Sequence[TransactionState]) -> OperationOutcome:
    """An operation's status and error, from its transactions (in sequence order). Once one
    fails, those of its transactions that hold no nonce yet are never sent; those that hold one
    are still sent and tracked, so that no nonce is left unused."""
    status = operation_status(tx.status for tx in transactions)
    if status is not OperationStatus.FAILED:
        return OperationOutcome(status)
    failed = [tx for tx in transactions if tx.status is OperationStatus.FAILED]
    cause = next((tx for tx in failed if tx.error_name != NOT_SENT), failed[0])
    return OperationOutcome(status, cause.error_name, cause.error_args, cause.sequence)


class WorkSignal(Protocol):
    """How an idle worker learns of new work (`provenance.services.outbox_signal.OutboxSignal`)."""

    def work_generation(self) -> int: ...

    def wait_for_work(self, timeout_s: float, since: int | None = None) -> None: ...


class OutboxStorage(Protocol):
    """What the outbox worker needs of the outbox's storage (`provenance.index.outbox`)."""

    @property
    def signal(self) -> WorkSignal: ...

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

    def hold(self, conflict: ChainConflict, update: TransactionUpdate | None) -> None: ...

    def open_conflicts(self) -> list[ChainConflict]: ...

    def mark_stuck(self, operation_id: str, reason: str) -> None: ...
