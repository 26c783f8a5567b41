"""The outbox as the worker sees it: pending work, splits, nonces and signed bytes, what it
learnt, stuck operations and chain conflicts."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, select, tuple_

from provenance.domain.operations import (
    OperationKind,
    OperationStatus,
)
from provenance.domain.outbox import (
    NOT_SENT,
    ChainConflict,
    OutboxTransaction,
    PendingOperation,
    SignedTransaction,
    TransactionState,
    TransactionUpdate,
    operation_outcome,
)
from provenance.index.outbox.base import OutboxBase
from provenance.index.outbox.rows import (
    CONFLICTS,
    NONCES,
    OPERATIONS,
    TRANSACTIONS,
    timestamp,
    transaction_of,
    utc_now,
)
from provenance.index.wakeups import announce_final


class WorkerStorage(OutboxBase):
    def pending_operations(
        self, limit: int = 50, exclude_senders: Collection[str] = ()
    ) -> list[PendingOperation]:
        """Oldest first: operations with a transaction still to sign, with all their transactions;
        none of `exclude_senders` (whose keys the worker cannot open just now)."""
        with self.engine.connect() as connection:
            waiting = select(TRANSACTIONS.c.operation_id).where(
                TRANSACTIONS.c.status == OperationStatus.PENDING.value
            )
            if exclude_senders:
                waiting = waiting.where(
                    TRANSACTIONS.c.sender.not_in([sender.lower() for sender in exclude_senders])
                )
            waiting = waiting.distinct()
            operations = connection.execute(
                select(OPERATIONS)
                .where(OPERATIONS.c.id.in_(waiting))
                .order_by(OPERATIONS.c.created_at, OPERATIONS.c.id)
                .limit(limit)
            ).all()
            if not operations:
                return []
            ids = [row.id for row in operations]
            rows = connection.execute(
                select(TRANSACTIONS)
                .where(TRANSACTIONS.c.operation_id.in_(ids))
                .order_by(TRANSACTIONS.c.operation_id, TRANSACTIONS.c.sequence)
            ).all()
        by_operation: dict[str, list[Row[Any]]] = {operation_id: [] for operation_id in ids}
        for row in rows:
            by_operation[row.operation_id].append(row)
        result = []
        for operation in operations:
            kind = OperationKind(operation.kind)
            result.append(
                PendingOperation(
                    id=operation.id,
                    kind=kind,
                    sender=operation.sender,
                    payload=operation.payload,
                    transactions=tuple(transaction_of(row, kind) for row in by_operation[operation.id]),
                )
            )
        return result

    def split_transaction(self, operation_id: str, sequence: int, cuts: Sequence[int]) -> None:
        """Splits a pending batch transaction at the item indexes `cuts`; later ones move up."""
        with self._writing() as connection:
            row = connection.execute(
                select(TRANSACTIONS).where(
                    TRANSACTIONS.c.operation_id == operation_id, TRANSACTIONS.c.sequence == sequence
                )
            ).one()
            if row.status != OperationStatus.PENDING.value or row.item_start is None:
                raise ValueError(f"transaction {sequence} of {operation_id} is not a pending batch")
            bounds = sorted(set(cuts))
            if not bounds or bounds[0] <= row.item_start or bounds[-1] >= row.item_end:
                raise ValueError(f"cuts {list(cuts)} are not inside [{row.item_start}, {row.item_end})")
            later = connection.execute(
                select(TRANSACTIONS.c.sequence)
                .where(TRANSACTIONS.c.operation_id == operation_id, TRANSACTIONS.c.sequence > sequence)
                .order_by(TRANSACTIONS.c.sequence.desc())
            ).scalars()
            for number in list(later):  # highest first, so no two rows ever share a sequence
                connection.execute(
                    TRANSACTIONS.update()
                    .where(TRANSACTIONS.c.operation_id == operation_id, TRANSACTIONS.c.sequence == number)
                    .values(sequence=number + len(bounds))
                )
            connection.execute(
                TRANSACTIONS.update()
                .where(TRANSACTIONS.c.operation_id == operation_id, TRANSACTIONS.c.sequence == sequence)
                .values(item_end=bounds[0])
            )
            ends = [*bounds[1:], row.item_end]
            for offset, (start, end) in enumerate(zip(bounds, ends, strict=True), start=1):
                connection.execute(
                    TRANSACTIONS.insert().values(
                        operation_id=operation_id,
                        sequence=sequence + offset,
                        sender=row.sender,
                        item_start=start,
                        item_end=end,
                        status=OperationStatus.PENDING.value,
                        attempts=0,
                    )
                )
            self._touch(connection, operation_id)

    def sign_and_record(
        self,
        operation_id: str,
        sequences: Sequence[int],
        chain_nonce: int,
        sign: Callable[[int, int], SignedTransaction],
    ) -> list[OutboxTransaction]:
        """Gives the pending transactions `sequences` the sender's next nonces, in order, and
        records the bytes `sign(sequence, nonce)` returns, all in one database transaction.

        The next nonce is the larger of the stored one and `chain_nonce` (the node's pending
        count), so a key also used outside the outbox does not collide. Nothing is sent here: the
        caller sends after this returns, so every nonce handed out belongs to stored bytes.
        """
        with self._writing() as connection:
            operation = connection.execute(
                select(OPERATIONS.c.sender, OPERATIONS.c.kind).where(OPERATIONS.c.id == operation_id)
            ).one()
            key = operation.sender.lower()
            stored = connection.execute(
                select(NONCES.c.next_nonce).where(NONCES.c.sender == key).with_for_update()
            ).scalar()
            nonce = max(stored or 0, chain_nonce)
            for sequence in sorted(sequences):
                where = (TRANSACTIONS.c.operation_id == operation_id, TRANSACTIONS.c.sequence == sequence)
                status = connection.execute(select(TRANSACTIONS.c.status).where(*where)).scalar_one()
                if status != OperationStatus.PENDING.value:
                    raise ValueError(f"transaction {sequence} of {operation_id} is {status}, not pending")
                signed = sign(sequence, nonce)
                connection.execute(TRANSACTIONS.update().where(*where).values(**_signed_with(nonce, signed)))
                nonce += 1
            if stored is None:
                connection.execute(NONCES.insert().values(sender=key, next_nonce=nonce))
            else:
                connection.execute(NONCES.update().where(NONCES.c.sender == key).values(next_nonce=nonce))
            self._refresh(connection, [operation_id])
            rows = connection.execute(
                select(TRANSACTIONS)
                .where(
                    TRANSACTIONS.c.operation_id == operation_id,
                    TRANSACTIONS.c.sequence.in_(list(sequences)),
                )
                .order_by(TRANSACTIONS.c.sequence)
            ).all()
        self.signal.notify()
        kind = OperationKind(operation.kind)
        return [transaction_of(row, kind) for row in rows]

    def sign_and_record_shared(
        self,
        members: Sequence[tuple[str, int]],
        chain_nonce: int,
        sign: Callable[[int], SignedTransaction],
    ) -> list[OutboxTransaction]:
        """Gives the pending transactions `members` ((operation id, sequence), all of one sender)
        *one* nonce and the one transaction `sign(nonce)` returns, which carries them all; each
        row keeps its place in it as `share`. One database transaction, like `sign_and_record`."""
        if not members:
            return []
        with self._writing() as connection:
            rows = connection.execute(
                select(
                    TRANSACTIONS.c.operation_id,
                    TRANSACTIONS.c.sequence,
                    TRANSACTIONS.c.sender,
                    TRANSACTIONS.c.status,
                ).where(tuple_(TRANSACTIONS.c.operation_id, TRANSACTIONS.c.sequence).in_(list(members)))
            ).all()
            found = {(row.operation_id, row.sequence): row for row in rows}
            senders = {row.sender for row in rows}
            if len(found) != len(members) or len(senders) != 1:
                raise ValueError(f"{list(members)} are not transactions of one sender")
            for member, row in found.items():
                if row.status != OperationStatus.PENDING.value:
                    raise ValueError(f"transaction {member[1]} of {member[0]} is {row.status}, not pending")
            (key,) = senders
            stored = connection.execute(
                select(NONCES.c.next_nonce).where(NONCES.c.sender == key).with_for_update()
            ).scalar()
            nonce = max(stored or 0, chain_nonce)
            signed = sign(nonce)
            connection.execute(
                TRANSACTIONS.update()
                .where(
                    TRANSACTIONS.c.operation_id == bindparam("b_operation_id"),
                    TRANSACTIONS.c.sequence == bindparam("b_sequence"),
                )
                .values(share=bindparam("b_share"), **_signed_with(nonce, signed)),
                [
                    {"b_operation_id": operation_id, "b_sequence": sequence, "b_share": share}
                    for share, (operation_id, sequence) in enumerate(members)
                ],
            )
            if stored is None:
                connection.execute(NONCES.insert().values(sender=key, next_nonce=nonce + 1))
            else:
                connection.execute(NONCES.update().where(NONCES.c.sender == key).values(next_nonce=nonce + 1))
            self._refresh(connection, dict.fromkeys(operation_id for operation_id, _ in members))
            recorded = connection.execute(
                select(TRANSACTIONS, OPERATIONS.c.kind)
                .join(OPERATIONS, OPERATIONS.c.id == TRANSACTIONS.c.operation_id)
                .where(TRANSACTIONS.c.tx_hash == signed.tx_hash)
                .order_by(TRANSACTIONS.c.share)
            ).all()
        self.signal.notify()
        return [transaction_of(row, OperationKind(row.kind)) for row in recorded]

    def mark_sent(self, tx_hash: str) -> None:
        """One more send of the transaction `tx_hash`, on every row it carries (its status is
        already sent: nothing else changes, so no operation needs recomputing)."""
        with self._writing() as connection:
            connection.execute(
                TRANSACTIONS.update()
                .where(TRANSACTIONS.c.tx_hash == tx_hash)
                .values(sent_at=utc_now(), attempts=TRANSACTIONS.c.attempts + 1)
            )

    def in_flight(self) -> list[OutboxTransaction]:
        """Signed transactions not yet confirmed (sent, or mined but not deep enough), by sender and nonce."""
        return self._transactions(TRANSACTIONS.c.status == OperationStatus.SENT.value)

    def lost_and_unfinished(self) -> list[OutboxTransaction]:
        """Transactions a reorg or a restored node took back and that are not confirmed again yet
        (pending a new signature, or sent: in the pool, or mined but not deep enough)."""
        unfinished = (OperationStatus.PENDING.value, OperationStatus.SENT.value)
        return self._transactions(
            TRANSACTIONS.c.status.in_(unfinished), TRANSACTIONS.c.lost_block.is_not(None)
        )

    def recently_mined(self, since_block: int) -> list[OutboxTransaction]:
        """Confirmed or failed transactions mined at or above `since_block`: what a node that
        restarted from an older state, or a reorg, may have taken back.

        Selected by block number alone, the status checked here: with the status in the query,
        SQLite (no statistics) took the status index and read every confirmed row the outbox ever
        held, on every step of the worker."""
        mined = (OperationStatus.CONFIRMED, OperationStatus.FAILED)
        return [
            tx for tx in self._transactions(TRANSACTIONS.c.block_number >= since_block) if tx.status in mined
        ]

    def apply(self, updates: Sequence[TransactionUpdate]) -> None:
        """Records what the worker learnt, in one database transaction, and recomputes the
        status of each operation touched. Updates of the same shape go as one executemany: the
        rows of a coalesced transaction all change at once."""
        if not updates:
            return
        now = utc_now()
        shapes: dict[tuple[bool, bool, bool, bool], list[dict[str, Any]]] = {}
        for update in updates:
            shape = (update.release_nonce, update.sent, update.solo, update.lost_block is not None)
            shapes.setdefault(shape, []).append(
                {
                    "b_operation_id": update.operation_id,
                    "b_sequence": update.sequence,
                    "b_status": update.status.value,
                    "b_block_number": update.block_number,
                    "b_block_hash": update.block_hash,
                    "b_gas_used": update.gas_used,
                    "b_error_name": update.error_name,
                    "b_error_args": None if update.error_args is None else dict(update.error_args),
                    "b_lost_block": update.lost_block,
                }
            )
        with self._writing() as connection:
            for (release_nonce, sent, solo, lost), parameters in shapes.items():
                values: dict[str, Any] = {
                    "status": bindparam("b_status"),
                    "block_number": bindparam("b_block_number"),
                    "block_hash": bindparam("b_block_hash"),
                    "gas_used": bindparam("b_gas_used"),
                    "error_name": bindparam("b_error_name"),
                    "error_args": bindparam("b_error_args", type_=TRANSACTIONS.c.error_args.type),
                }
                if release_nonce:
                    values.update(nonce=None, share=0, raw_tx=None, tx_hash=None, sent_at=None, attempts=0)
                if sent:
                    values.update(sent_at=now, attempts=TRANSACTIONS.c.attempts + 1)
                if solo:
                    values.update(solo=True)
                if lost:
                    values.update(lost_block=bindparam("b_lost_block"))
                connection.execute(
                    TRANSACTIONS.update()
                    .where(
                        TRANSACTIONS.c.operation_id == bindparam("b_operation_id"),
                        TRANSACTIONS.c.sequence == bindparam("b_sequence"),
                    )
                    .values(**values),
                    parameters,
                )
            final = self._refresh(connection, dict.fromkeys(update.operation_id for update in updates))
            announce_final(connection, final, self.origin)
        self.signal.notify(final)
        if final and self.on_final is not None:
            self.on_final(final)

    def mark_stuck(self, operation_id: str, reason: str) -> None:
        """Records why the worker cannot send `operation_id` (the node's answer); kept until it is sent."""
        with self._writing() as connection:
            connection.execute(
                OPERATIONS.update()
                .where(OPERATIONS.c.id == operation_id)
                .values(
                    stuck_reason=reason[:1000],
                    stuck_since=func.coalesce(OPERATIONS.c.stuck_since, utc_now()),
                )
            )

    def clear_stuck(self, operation_ids: Collection[str]) -> None:
        if not operation_ids:
            return
        with self._writing() as connection:
            connection.execute(
                OPERATIONS.update()
                .where(OPERATIONS.c.id.in_(list(operation_ids)))
                .values(stuck_reason=None, stuck_since=None)
            )

    def hold(self, conflict: ChainConflict, update: TransactionUpdate | None) -> None:
        """Records `conflict`, then what the worker learnt of its transaction (the operation stays
        unfinished: it is held, never failed)."""
        with self._writing() as connection:
            connection.execute(
                CONFLICTS.insert().values(
                    operation_id=conflict.operation_id,
                    sequence=conflict.sequence,
                    tx_hash=conflict.tx_hash,
                    lost_block=conflict.lost_block,
                    error_name=conflict.error_name,
                    error_args=None if conflict.error_args is None else dict(conflict.error_args),
                    detected_at=utc_now(),
                )
            )
        if update is not None:
            self.apply([update])

    def open_conflicts(self) -> list[ChainConflict]:
        """Conflicts no one has resolved yet, oldest first: while there is one, nothing is sent."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(CONFLICTS).where(CONFLICTS.c.resolved_at.is_(None)).order_by(CONFLICTS.c.id)
            ).all()
        return [
            ChainConflict(
                id=row.id,
                operation_id=row.operation_id,
                sequence=row.sequence,
                tx_hash=row.tx_hash,
                lost_block=row.lost_block,
                error_name=row.error_name,
                error_args=row.error_args,
                detected_at=timestamp(row.detected_at),
            )
            for row in rows
        ]

    def resolve_conflicts(self, *, fail_held: bool) -> list[ChainConflict]:
        """A person's decision on every open conflict, after looking (`provenance audit`): either
        the held operations fail with the error the chain gave, or they are tried once more as
        new (a refusal then fails them like any other). Returns the conflicts resolved."""
        conflicts = self.open_conflicts()
        if not conflicts:
            return []
        held = list(dict.fromkeys(conflict.operation_id for conflict in conflicts))
        with self._writing() as connection:
            connection.execute(
                CONFLICTS.update()
                .where(CONFLICTS.c.id.in_([conflict.id for conflict in conflicts]))
                .values(resolved_at=utc_now(), resolution="failed" if fail_held else "retried")
            )
            unfinished = TRANSACTIONS.c.status.in_(
                [OperationStatus.PENDING.value, OperationStatus.SENT.value]
            )
            if fail_held:
                for conflict in conflicts:
                    connection.execute(
                        TRANSACTIONS.update()
                        .where(
                            TRANSACTIONS.c.operation_id == conflict.operation_id,
                            TRANSACTIONS.c.sequence == conflict.sequence,
                            unfinished,
                        )
                        .values(
                            status=OperationStatus.FAILED.value,
                            error_name=conflict.error_name,
                            error_args=None if conflict.error_args is None else dict(conflict.error_args),
                        )
                    )
            else:
                connection.execute(
                    TRANSACTIONS.update().where(TRANSACTIONS.c.operation_id.in_(held)).values(lost_block=None)
                )
            final = self._refresh(connection, held)
            announce_final(connection, final, self.origin)
        self.signal.notify(final)
        if final and self.on_final is not None:
            self.on_final(final)
        return conflicts

    def _transactions(self, *conditions: Any) -> list[OutboxTransaction]:
        """The transactions meeting `conditions`, by sender, nonce and share. Sorted here: asked
        to sort, SQLite walked the whole table along the (sender, nonce, share) index instead of
        using the index of the condition."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(TRANSACTIONS, OPERATIONS.c.kind)
                .join(OPERATIONS, OPERATIONS.c.id == TRANSACTIONS.c.operation_id)
                .where(*conditions)
            ).all()
        found = [transaction_of(row, OperationKind(row.kind)) for row in rows]
        found.sort(key=lambda tx: (tx.sender, -1 if tx.nonce is None else tx.nonce, tx.share))
        return found

    def _touch(self, connection: Connection, operation_id: str) -> None:
        connection.execute(
            OPERATIONS.update().where(OPERATIONS.c.id == operation_id).values(updated_at=utc_now())
        )

    def _refresh(self, connection: Connection, operation_ids: Iterable[str]) -> list[str]:
        """Records each operation's outcome (`operation_outcome`) from its transactions. Reads and
        writes in bulk: a coalesced transaction touches dozens of operations at once. Returns the
        operations that are final now."""
        now = utc_now()
        ids = list(operation_ids)
        final: list[str] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = connection.execute(
                select(
                    TRANSACTIONS.c.operation_id,
                    TRANSACTIONS.c.sequence,
                    TRANSACTIONS.c.status,
                    TRANSACTIONS.c.error_name,
                    TRANSACTIONS.c.error_args,
                )
                .where(TRANSACTIONS.c.operation_id.in_(chunk))
                .order_by(TRANSACTIONS.c.operation_id, TRANSACTIONS.c.sequence)
            ).all()
            by_operation: dict[str, list[Any]] = {operation_id: [] for operation_id in chunk}
            for row in rows:
                by_operation[row.operation_id].append(row)
            changes = []
            for operation_id, transactions in by_operation.items():
                outcome = operation_outcome(
                    [
                        TransactionState(
                            row.sequence, OperationStatus(row.status), row.error_name, row.error_args
                        )
                        for row in transactions
                    ]
                )
                status = outcome.status
                if outcome.failed_sequence is not None:
                    connection.execute(
                        TRANSACTIONS.update()
                        .where(
                            TRANSACTIONS.c.operation_id == operation_id,
                            TRANSACTIONS.c.status == OperationStatus.PENDING.value,
                        )
                        .values(
                            status=OperationStatus.FAILED.value,
                            error_name=NOT_SENT,
                            error_args={"failed_sequence": outcome.failed_sequence},
                        )
                    )
                if status.is_final:
                    final.append(operation_id)
                changes.append(
                    {
                        "b_id": operation_id,
                        "b_status": status.value,
                        "b_error_name": outcome.error_name,
                        "b_error_args": outcome.error_args,
                    }
                )
            if changes:
                connection.execute(
                    OPERATIONS.update()
                    .where(OPERATIONS.c.id == bindparam("b_id"))
                    .values(
                        status=bindparam("b_status"),
                        error_name=bindparam("b_error_name"),
                        error_args=bindparam("b_error_args", type_=OPERATIONS.c.error_args.type),
                        updated_at=now,
                    ),
                    changes,
                )
            moved = [
                change["b_id"] for change in changes if change["b_status"] != OperationStatus.PENDING.value
            ]
            if moved:  # sent (or final): whatever held it before let go
                connection.execute(
                    OPERATIONS.update()
                    .where(OPERATIONS.c.id.in_(moved), OPERATIONS.c.stuck_since.is_not(None))
                    .values(stuck_reason=None, stuck_since=None)
                )
        return final


def _signed_with(nonce: int, signed: SignedTransaction) -> dict[str, Any]:
    """A transaction's row once its bytes are signed with `nonce`: sent, and nothing of an earlier
    attempt left (a released nonce's block, error or send count)."""
    return {
        "nonce": nonce,
        "raw_tx": signed.raw_tx,
        "tx_hash": signed.tx_hash,
        "status": OperationStatus.SENT.value,
        "block_number": None,
        "block_hash": None,
        "gas_used": None,
        "error_name": None,
        "error_args": None,
        "sent_at": None,
        "attempts": 0,
    }
