"""The transaction outbox in SQL: operations, their transactions and the nonces of their senders.

`submit` is what the write service calls with a command it has parsed and checked: it writes the
operation, its idempotency record (the `(credential_id, idempotency_key)` unique key and the request's
fingerprint) and its planned transaction in one database transaction. Nothing is sent yet; what
is acknowledged is durable.

The rest is what the outbox worker (`provenance.chain.outbox.OutboxWorker`) calls, one worker per
database: find pending work, split a batch, allocate nonces and record the signed bytes (one
database transaction, committed before the bytes are sent), list what is in flight or recently
mined, and record what it learnt. Every write runs as `BEGIN IMMEDIATE` on SQLite, so the API's
writers and the worker queue instead of failing half-way; on PostgreSQL the nonce row is locked
(`SELECT ... FOR UPDATE`) and `UNIQUE(sender, nonce)` refuses a second write with one nonce.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, Row, bindparam, func, select, tuple_
from sqlalchemy.exc import IntegrityError

from provenance.domain.commands import Command
from provenance.domain.operations import (
    OperationKind,
    OperationStatus,
    OperationView,
    TransactionView,
    fingerprint,
    new_operation_id,
)
from provenance.domain.outbox import (
    NOT_SENT,
    ChainConflict,
    OutboxStorage,
    OutboxTransaction,
    PendingOperation,
    SignedTransaction,
    TransactionState,
    TransactionUpdate,
    operation_outcome,
)
from provenance.errors import CredentialInactive, DomainError, IdempotencyConflict
from provenance.index.db import writer_lock
from provenance.index.group_commit import GroupCommit
from provenance.index.models import Base
from provenance.index.wakeups import announce_final, announce_work, new_origin
from provenance.index.write_models import AccountNonce, ApiCredential, Operation
from provenance.index.write_models import ChainConflict as ConflictRow
from provenance.index.write_models import OutboxTransaction as OutboxRow
from provenance.services.outbox_signal import OutboxSignal

MAX_IDEMPOTENCY_KEY = 255
T = TypeVar("T")

_operations = Base.metadata.tables[Operation.__tablename__]
_transactions = Base.metadata.tables[OutboxRow.__tablename__]
_nonces = Base.metadata.tables[AccountNonce.__tablename__]
_credentials = Base.metadata.tables[ApiCredential.__tablename__]
_conflicts = Base.metadata.tables[ConflictRow.__tablename__]

# Statements of every API write, built once: building one per call (`.values(...)`, `.where(...)`)
# and computing its cache key again was a tenth of a write's time in the API (py-spy).
_INSERT_OPERATION = _operations.insert()
_INSERT_TRANSACTION = _transactions.insert()
_ACTIVE_CREDENTIAL = select(_credentials.c.id).where(
    _credentials.c.id == bindparam("credential_id"), _credentials.c.revoked_at.is_(None)
)
_BY_KEY = select(_operations.c.id, _operations.c.request_fingerprint).where(
    _operations.c.credential_id == bindparam("credential_id"),
    _operations.c.idempotency_key == bindparam("idempotency_key"),
)


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp(value: datetime) -> str:
    """ISO 8601 in UTC (SQLite hands timestamps back without their zone)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_sender(sender: str) -> None:
    hex_digits = sender[2:] if sender.startswith("0x") else ""
    if len(sender) != 42 or not all(c in "0123456789abcdefABCDEF" for c in hex_digits):
        raise DomainError("sender", "must be a 0x-prefixed 20-byte address")


def _transaction(row: Row[Any], kind: OperationKind) -> OutboxTransaction:
    return OutboxTransaction(
        operation_id=row.operation_id,
        sequence=row.sequence,
        kind=kind,
        sender=row.sender,
        status=OperationStatus(row.status),
        item_start=row.item_start,
        item_end=row.item_end,
        nonce=row.nonce,
        raw_tx=row.raw_tx,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        block_hash=row.block_hash,
        attempts=row.attempts,
        share=row.share,
        solo=row.solo,
        sent_at=row.sent_at,
        lost_block=row.lost_block,
    )


def _transaction_view(row: Row[Any]) -> TransactionView:
    return TransactionView(
        sequence=row.sequence,
        nonce=row.nonce,
        tx_hash=row.tx_hash,
        status=OperationStatus(row.status),
        block_number=row.block_number,
        block_hash=row.block_hash,
        gas_used=row.gas_used,
        error_name=row.error_name,
        error_args=row.error_args,
    )


def _operation_view(row: Row[Any], transactions: Iterable[Row[Any]]) -> OperationView:
    return OperationView(
        id=row.id,
        kind=OperationKind(row.kind),
        status=OperationStatus(row.status),
        sender=row.sender,
        created_at=_timestamp(row.created_at),
        updated_at=_timestamp(row.updated_at),
        transactions=tuple(_transaction_view(tx) for tx in transactions),
        error_name=row.error_name,
        error_args=row.error_args,
        payload=row.payload,
        stuck_reason=row.stuck_reason,
    )


class OutboxStore:
    """Operations and their transactions in the database behind `engine` (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, origin: str | None = None) -> None:
        """`origin`: this process tree's name in PostgreSQL wake-ups (wakeups.py); default new."""
        self.engine = engine
        self.origin = origin if origin is not None else new_origin()
        self._one_writer = writer_lock(engine)
        self._group = GroupCommit(self._writing)
        """Submissions from many request threads share transactions (see group_commit)."""
        self.signal = OutboxSignal()
        """Wakes this process's worker and tells its waiters (see `OutboxSignal`)."""
        self.on_submit: Callable[[], None] | None = None
        """Called after an operation is stored: tells a worker in another process there is work."""
        self.on_final: Callable[[Sequence[str]], None] | None = None
        """Called with the operations a commit made final: tells waiters in another process."""

    # ---------------------------------------------------------------- the API's side

    def submit(
        self,
        *,
        credential_id: str,
        sender: str,
        command: Command,
        idempotency_key: str | None,
        operation_id: str | None = None,
    ) -> tuple[OperationView, bool]:
        """Stores a write; returns its operation and whether it was created now.

        A retry with the same `idempotency_key` (per credential) and the same request returns the
        original operation (`False`); with a different request it raises IdempotencyConflict.
        `operation_id` (from `new_operation_id`) lets a caller wait for the operation before it
        exists.
        """
        kind = command.operation_kind
        _check_sender(sender)
        plain = command.to_payload()
        request = fingerprint(kind, plain)
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise DomainError("Idempotency-Key", f"must have 1 to {MAX_IDEMPOTENCY_KEY} characters")
        if operation_id is None:
            operation_id = new_operation_id()
        now = _now()

        def store(connection: Connection) -> tuple[str, str] | None:
            # in the write's own transaction: a credential revoked a moment ago writes nothing,
            # whatever the API remembered of its token (api.known_tokens)
            if connection.execute(_ACTIVE_CREDENTIAL, {"credential_id": credential_id}).first() is None:
                raise CredentialInactive(f"credential {credential_id} is revoked or unknown")
            if idempotency_key is not None:
                # SQLite: BEGIN IMMEDIATE serialises writers, so a twin request committed before
                # us (or queued before us in this group) is visible here; PostgreSQL: the unique
                # key catches it below
                raced = self._by_key(credential_id, idempotency_key, connection)
                if raced is not None:
                    return raced
            self._insert(
                connection, operation_id, credential_id, sender, command, plain, request, idempotency_key, now
            )
            announce_work(
                connection, self.origin
            )  # delivered only if this commits (a worker on another host)
            return None

        try:
            raced = self._group.run(store)
        except IntegrityError:
            if idempotency_key is None:
                raise
            raced = self._by_key(credential_id, idempotency_key)
            if raced is None:
                raise
        if raced is not None:
            assert idempotency_key is not None
            return self._replay(raced, request, idempotency_key)
        self.signal.notify()
        if self.on_submit is not None:
            self.on_submit()
        # what was just stored, without reading it back (a tenth of a POST's time, py-spy)
        view = OperationView(
            id=operation_id,
            kind=kind,
            status=OperationStatus.PENDING,
            sender=sender,
            created_at=_timestamp(now),
            updated_at=_timestamp(now),
            transactions=(
                TransactionView(sequence=0, nonce=None, tx_hash=None, status=OperationStatus.PENDING),
            ),
            payload=plain,
        )
        return view, True

    def submit_together(
        self,
        *,
        credential_id: str,
        sender: str,
        commands: Sequence[Command],
        before: Callable[[Connection], T | None],
        after: Callable[[Connection, list[str]], T],
    ) -> tuple[T, bool]:
        """Stores `commands` as operations in one database transaction, all or none, in their order
        (each created a microsecond after the one before it, which is the order the worker sends a
        sender's operations in). `before(connection)` runs first in that transaction: a result (a
        retry's earlier one) stores nothing and is returned with False; else `after(connection,
        operation ids)` records what the operations belong to, and its result comes with True.
        Not group-committed: a refusal here must not roll back other requests' writes."""
        _check_sender(sender)
        now = _now()
        with self._writing() as connection:
            if connection.execute(_ACTIVE_CREDENTIAL, {"credential_id": credential_id}).first() is None:
                raise CredentialInactive(f"credential {credential_id} is revoked or unknown")
            found = before(connection)
            if found is not None:
                return found, False
            ids = []
            for offset, command in enumerate(commands):
                plain = command.to_payload()
                operation_id = new_operation_id()
                moment = now + timedelta(microseconds=offset)
                request = fingerprint(command.operation_kind, plain)
                self._insert(
                    connection, operation_id, credential_id, sender, command, plain, request, None, moment
                )
                ids.append(operation_id)
            if ids:
                announce_work(connection, self.origin)
            result = after(connection, ids)
        if ids:
            self.signal.notify()
            if self.on_submit is not None:
                self.on_submit()
        return result, True

    def _insert(
        self,
        connection: Connection,
        operation_id: str,
        credential_id: str,
        sender: str,
        command: Command,
        plain: dict[str, Any],
        request: str,
        idempotency_key: str | None,
        now: datetime,
    ) -> None:
        """The operation and its one planned transaction (the worker splits batches later)."""
        items = command.items
        kind = command.operation_kind
        connection.execute(
            _INSERT_OPERATION,
            {
                "id": operation_id,
                "credential_id": credential_id,
                "idempotency_key": idempotency_key,
                "request_fingerprint": request,
                "kind": kind.value,
                "payload": plain,
                "sender": sender,
                "status": OperationStatus.PENDING.value,
                "error_name": None,
                "error_args": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        connection.execute(
            _INSERT_TRANSACTION,
            {
                "operation_id": operation_id,
                "sequence": 0,
                "sender": sender.lower(),
                "item_start": None if items is None else 0,
                "item_end": items,
                "status": OperationStatus.PENDING.value,
                "attempts": 0,
            },
        )

    def get(self, operation_id: str) -> OperationView | None:
        with self.engine.connect() as connection:
            return self._view(connection, operation_id)

    def final_views(self, operation_ids: Collection[str]) -> list[OperationView]:
        """Those of `operation_ids` that are final, whole, in two reads however many they are:
        what the API's waiters need after each of the worker's commits."""
        ids = list(operation_ids)
        final = [OperationStatus.CONFIRMED.value, OperationStatus.FAILED.value]
        with self.engine.connect() as connection:
            return [
                view
                for start in range(0, len(ids), 500)
                for view in self._views(
                    connection,
                    _operations.c.id.in_(ids[start : start + 500]),
                    _operations.c.status.in_(final),
                )
            ]

    def views(self, operation_ids: Collection[str]) -> dict[str, OperationView]:
        """`operation_ids`' operations as they stand, in two reads per 500 (a capture job's)."""
        ids = list(operation_ids)
        with self.engine.connect() as connection:
            return {
                view.id: view
                for start in range(0, len(ids), 500)
                for view in self._views(connection, _operations.c.id.in_(ids[start : start + 500]))
            }

    # ---------------------------------------------------------------- the worker's side

    def pending_operations(
        self, limit: int = 50, exclude_senders: Collection[str] = ()
    ) -> list[PendingOperation]:
        """Oldest first: operations with a transaction still to sign, with all their transactions;
        none of `exclude_senders` (whose keys the worker cannot open just now)."""
        with self.engine.connect() as connection:
            waiting = select(_transactions.c.operation_id).where(
                _transactions.c.status == OperationStatus.PENDING.value
            )
            if exclude_senders:
                waiting = waiting.where(
                    _transactions.c.sender.not_in([sender.lower() for sender in exclude_senders])
                )
            waiting = waiting.distinct()
            operations = connection.execute(
                select(_operations)
                .where(_operations.c.id.in_(waiting))
                .order_by(_operations.c.created_at, _operations.c.id)
                .limit(limit)
            ).all()
            if not operations:
                return []
            ids = [row.id for row in operations]
            rows = connection.execute(
                select(_transactions)
                .where(_transactions.c.operation_id.in_(ids))
                .order_by(_transactions.c.operation_id, _transactions.c.sequence)
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
                    transactions=tuple(_transaction(row, kind) for row in by_operation[operation.id]),
                )
            )
        return result

    def split_transaction(self, operation_id: str, sequence: int, cuts: Sequence[int]) -> None:
        """Splits a pending batch transaction at the item indexes `cuts`; later ones move up."""
        with self._writing() as connection:
            row = connection.execute(
                select(_transactions).where(
                    _transactions.c.operation_id == operation_id, _transactions.c.sequence == sequence
                )
            ).one()
            if row.status != OperationStatus.PENDING.value or row.item_start is None:
                raise ValueError(f"transaction {sequence} of {operation_id} is not a pending batch")
            bounds = sorted(set(cuts))
            if not bounds or bounds[0] <= row.item_start or bounds[-1] >= row.item_end:
                raise ValueError(f"cuts {list(cuts)} are not inside [{row.item_start}, {row.item_end})")
            later = connection.execute(
                select(_transactions.c.sequence)
                .where(_transactions.c.operation_id == operation_id, _transactions.c.sequence > sequence)
                .order_by(_transactions.c.sequence.desc())
            ).scalars()
            for number in list(later):  # highest first, so no two rows ever share a sequence
                connection.execute(
                    _transactions.update()
                    .where(_transactions.c.operation_id == operation_id, _transactions.c.sequence == number)
                    .values(sequence=number + len(bounds))
                )
            connection.execute(
                _transactions.update()
                .where(_transactions.c.operation_id == operation_id, _transactions.c.sequence == sequence)
                .values(item_end=bounds[0])
            )
            ends = [*bounds[1:], row.item_end]
            for offset, (start, end) in enumerate(zip(bounds, ends, strict=True), start=1):
                connection.execute(
                    _transactions.insert().values(
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
                select(_operations.c.sender, _operations.c.kind).where(_operations.c.id == operation_id)
            ).one()
            key = operation.sender.lower()
            stored = connection.execute(
                select(_nonces.c.next_nonce).where(_nonces.c.sender == key).with_for_update()
            ).scalar()
            nonce = max(stored or 0, chain_nonce)
            for sequence in sorted(sequences):
                where = (_transactions.c.operation_id == operation_id, _transactions.c.sequence == sequence)
                status = connection.execute(select(_transactions.c.status).where(*where)).scalar_one()
                if status != OperationStatus.PENDING.value:
                    raise ValueError(f"transaction {sequence} of {operation_id} is {status}, not pending")
                signed = sign(sequence, nonce)
                connection.execute(
                    _transactions.update()
                    .where(*where)
                    .values(
                        nonce=nonce,
                        raw_tx=signed.raw_tx,
                        tx_hash=signed.tx_hash,
                        status=OperationStatus.SENT.value,
                        block_number=None,
                        block_hash=None,
                        gas_used=None,
                        error_name=None,
                        error_args=None,
                        sent_at=None,
                        attempts=0,
                    )
                )
                nonce += 1
            if stored is None:
                connection.execute(_nonces.insert().values(sender=key, next_nonce=nonce))
            else:
                connection.execute(_nonces.update().where(_nonces.c.sender == key).values(next_nonce=nonce))
            self._refresh(connection, [operation_id])
            rows = connection.execute(
                select(_transactions)
                .where(
                    _transactions.c.operation_id == operation_id,
                    _transactions.c.sequence.in_(list(sequences)),
                )
                .order_by(_transactions.c.sequence)
            ).all()
        self.signal.notify()
        kind = OperationKind(operation.kind)
        return [_transaction(row, kind) for row in rows]

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
                    _transactions.c.operation_id,
                    _transactions.c.sequence,
                    _transactions.c.sender,
                    _transactions.c.status,
                ).where(tuple_(_transactions.c.operation_id, _transactions.c.sequence).in_(list(members)))
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
                select(_nonces.c.next_nonce).where(_nonces.c.sender == key).with_for_update()
            ).scalar()
            nonce = max(stored or 0, chain_nonce)
            signed = sign(nonce)
            connection.execute(
                _transactions.update()
                .where(
                    _transactions.c.operation_id == bindparam("b_operation_id"),
                    _transactions.c.sequence == bindparam("b_sequence"),
                )
                .values(
                    nonce=nonce,
                    share=bindparam("b_share"),
                    raw_tx=signed.raw_tx,
                    tx_hash=signed.tx_hash,
                    status=OperationStatus.SENT.value,
                    block_number=None,
                    block_hash=None,
                    gas_used=None,
                    error_name=None,
                    error_args=None,
                    sent_at=None,
                    attempts=0,
                ),
                [
                    {"b_operation_id": operation_id, "b_sequence": sequence, "b_share": share}
                    for share, (operation_id, sequence) in enumerate(members)
                ],
            )
            if stored is None:
                connection.execute(_nonces.insert().values(sender=key, next_nonce=nonce + 1))
            else:
                connection.execute(
                    _nonces.update().where(_nonces.c.sender == key).values(next_nonce=nonce + 1)
                )
            self._refresh(connection, dict.fromkeys(operation_id for operation_id, _ in members))
            recorded = connection.execute(
                select(_transactions, _operations.c.kind)
                .join(_operations, _operations.c.id == _transactions.c.operation_id)
                .where(_transactions.c.tx_hash == signed.tx_hash)
                .order_by(_transactions.c.share)
            ).all()
        self.signal.notify()
        return [_transaction(row, OperationKind(row.kind)) for row in recorded]

    def mark_sent(self, tx_hash: str) -> None:
        """One more send of the transaction `tx_hash`, on every row it carries (its status is
        already sent: nothing else changes, so no operation needs recomputing)."""
        with self._writing() as connection:
            connection.execute(
                _transactions.update()
                .where(_transactions.c.tx_hash == tx_hash)
                .values(sent_at=_now(), attempts=_transactions.c.attempts + 1)
            )

    def in_flight(self) -> list[OutboxTransaction]:
        """Signed transactions not yet confirmed (sent, or mined but not deep enough), by sender and nonce."""
        return self._transactions(_transactions.c.status == OperationStatus.SENT.value)

    def lost_and_unfinished(self) -> list[OutboxTransaction]:
        """Transactions a reorg or a restored node took back and that are not confirmed again yet
        (pending a new signature, or sent: in the pool, or mined but not deep enough)."""
        unfinished = (OperationStatus.PENDING.value, OperationStatus.SENT.value)
        return self._transactions(
            _transactions.c.status.in_(unfinished), _transactions.c.lost_block.is_not(None)
        )

    def recently_mined(self, since_block: int) -> list[OutboxTransaction]:
        """Confirmed or failed transactions mined at or above `since_block`: what a node that
        restarted from an older state, or a reorg, may have taken back.

        Selected by block number alone, the status checked here: with the status in the query,
        SQLite (no statistics) took the status index and read every confirmed row the outbox ever
        held, on every step of the worker."""
        mined = (OperationStatus.CONFIRMED, OperationStatus.FAILED)
        return [
            tx for tx in self._transactions(_transactions.c.block_number >= since_block) if tx.status in mined
        ]

    def apply(self, updates: Sequence[TransactionUpdate]) -> None:
        """Records what the worker learnt, in one database transaction, and recomputes the
        status of each operation touched. Updates of the same shape go as one executemany: the
        rows of a coalesced transaction all change at once."""
        if not updates:
            return
        now = _now()
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
                    "error_args": bindparam("b_error_args", type_=_transactions.c.error_args.type),
                }
                if release_nonce:
                    values.update(nonce=None, share=0, raw_tx=None, tx_hash=None, sent_at=None, attempts=0)
                if sent:
                    values.update(sent_at=now, attempts=_transactions.c.attempts + 1)
                if solo:
                    values.update(solo=True)
                if lost:
                    values.update(lost_block=bindparam("b_lost_block"))
                connection.execute(
                    _transactions.update()
                    .where(
                        _transactions.c.operation_id == bindparam("b_operation_id"),
                        _transactions.c.sequence == bindparam("b_sequence"),
                    )
                    .values(**values),
                    parameters,
                )
            final = self._refresh(connection, dict.fromkeys(update.operation_id for update in updates))
            announce_final(connection, final, self.origin)
        self.signal.notify(final)
        if final and self.on_final is not None:
            self.on_final(final)

    def backlog(self) -> int:
        """How many operations are not final yet (pending or sent): one COUNT, cheap for a health probe."""
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(_operations)
                    .where(
                        _operations.c.status.in_([OperationStatus.PENDING.value, OperationStatus.SENT.value])
                    )
                ).scalar_one()
            )

    # ---------------------------------------------------------------- stuck operations

    def mark_stuck(self, operation_id: str, reason: str) -> None:
        """Records why the worker cannot send `operation_id` (the node's answer); kept until it is sent."""
        with self._writing() as connection:
            connection.execute(
                _operations.update()
                .where(_operations.c.id == operation_id)
                .values(
                    stuck_reason=reason[:1000],
                    stuck_since=func.coalesce(_operations.c.stuck_since, _now()),
                )
            )

    def clear_stuck(self, operation_ids: Collection[str]) -> None:
        if not operation_ids:
            return
        with self._writing() as connection:
            connection.execute(
                _operations.update()
                .where(_operations.c.id.in_(list(operation_ids)))
                .values(stuck_reason=None, stuck_since=None)
            )

    def stuck(self, limit: int = 5) -> tuple[int, list[tuple[str, str]]]:
        """How many unfinished operations the node will not take, and the oldest `limit` of them
        with their reasons: a probe for /health, by the index on `stuck_since`."""
        unfinished = _operations.c.status.in_([OperationStatus.PENDING.value, OperationStatus.SENT.value])
        with self.engine.connect() as connection:
            count = connection.execute(
                select(func.count())
                .select_from(_operations)
                .where(_operations.c.stuck_since.is_not(None), unfinished)
            ).scalar_one()
            rows = connection.execute(
                select(_operations.c.id, _operations.c.stuck_reason)
                .where(_operations.c.stuck_since.is_not(None), unfinished)
                .order_by(_operations.c.stuck_since)
                .limit(limit)
            ).all()
        return int(count), [(row.id, row.stuck_reason or "") for row in rows]

    # ---------------------------------------------------------------- conflicts

    def hold(self, conflict: ChainConflict, update: TransactionUpdate | None) -> None:
        """Records `conflict`, then what the worker learnt of its transaction (the operation stays
        unfinished: it is held, never failed)."""
        with self._writing() as connection:
            connection.execute(
                _conflicts.insert().values(
                    operation_id=conflict.operation_id,
                    sequence=conflict.sequence,
                    tx_hash=conflict.tx_hash,
                    lost_block=conflict.lost_block,
                    error_name=conflict.error_name,
                    error_args=None if conflict.error_args is None else dict(conflict.error_args),
                    detected_at=_now(),
                )
            )
        if update is not None:
            self.apply([update])

    def open_conflicts(self) -> list[ChainConflict]:
        """Conflicts no one has resolved yet, oldest first: while there is one, nothing is sent."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_conflicts).where(_conflicts.c.resolved_at.is_(None)).order_by(_conflicts.c.id)
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
                detected_at=_timestamp(row.detected_at),
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
                _conflicts.update()
                .where(_conflicts.c.id.in_([conflict.id for conflict in conflicts]))
                .values(resolved_at=_now(), resolution="failed" if fail_held else "retried")
            )
            unfinished = _transactions.c.status.in_(
                [OperationStatus.PENDING.value, OperationStatus.SENT.value]
            )
            if fail_held:
                for conflict in conflicts:
                    connection.execute(
                        _transactions.update()
                        .where(
                            _transactions.c.operation_id == conflict.operation_id,
                            _transactions.c.sequence == conflict.sequence,
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
                    _transactions.update()
                    .where(_transactions.c.operation_id.in_(held))
                    .values(lost_block=None)
                )
            final = self._refresh(connection, held)
            announce_final(connection, final, self.origin)
        self.signal.notify(final)
        if final and self.on_final is not None:
            self.on_final(final)
        return conflicts

    def nonce_of(self, sender: str) -> int | None:
        """The next nonce the outbox will give `sender`, if it has given any."""
        with self.engine.connect() as connection:
            value = connection.execute(
                select(_nonces.c.next_nonce).where(_nonces.c.sender == sender.lower())
            ).scalar()
        return None if value is None else int(value)

    # ---------------------------------------------------------------- internals

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._one_writer, self.engine.connect() as connection:
            connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                yield connection

    def holds_key(self, credential_id: str, idempotency_key: str) -> bool:
        """Whether an operation is stored under this credential's `Idempotency-Key` (a retry)."""
        return self._by_key(credential_id, idempotency_key) is not None

    def _by_key(
        self, credential_id: str, idempotency_key: str, connection: Connection | None = None
    ) -> tuple[str, str] | None:
        """(operation id, request fingerprint) of the operation stored under this key."""
        key = {"credential_id": credential_id, "idempotency_key": idempotency_key}
        if connection is not None:
            row = connection.execute(_BY_KEY, key).first()
        else:
            with self.engine.connect() as reading:
                row = reading.execute(_BY_KEY, key).first()
        return None if row is None else (row.id, row.request_fingerprint)

    def _replay(
        self, existing: tuple[str, str], request: str, idempotency_key: str
    ) -> tuple[OperationView, bool]:
        operation_id, stored_request = existing
        if stored_request != request:
            raise IdempotencyConflict(idempotency_key, operation_id)
        view = self.get(operation_id)
        assert view is not None
        return view, False

    def _view(self, connection: Connection, operation_id: str) -> OperationView | None:
        views = self._views(connection, _operations.c.id == operation_id)
        return views[0] if views else None

    def _views(self, connection: Connection, *conditions: Any) -> list[OperationView]:
        """The operations meeting `conditions`, each with its transactions (two reads)."""
        rows = connection.execute(select(_operations).where(*conditions)).all()
        if not rows:
            return []
        transactions: dict[str, list[Row[Any]]] = {row.id: [] for row in rows}
        for tx in connection.execute(
            select(_transactions)
            .where(_transactions.c.operation_id.in_(list(transactions)))
            .order_by(_transactions.c.operation_id, _transactions.c.sequence)
        ):
            transactions[tx.operation_id].append(tx)
        return [_operation_view(row, transactions[row.id]) for row in rows]

    def _transactions(self, *conditions: Any) -> list[OutboxTransaction]:
        """The transactions meeting `conditions`, by sender, nonce and share. Sorted here: asked
        to sort, SQLite walked the whole table along the (sender, nonce, share) index instead of
        using the index of the condition."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_transactions, _operations.c.kind)
                .join(_operations, _operations.c.id == _transactions.c.operation_id)
                .where(*conditions)
            ).all()
        found = [_transaction(row, OperationKind(row.kind)) for row in rows]
        found.sort(key=lambda tx: (tx.sender, -1 if tx.nonce is None else tx.nonce, tx.share))
        return found

    def _touch(self, connection: Connection, operation_id: str) -> None:
        connection.execute(
            _operations.update().where(_operations.c.id == operation_id).values(updated_at=_now())
        )

    def _refresh(self, connection: Connection, operation_ids: Iterable[str]) -> list[str]:
        """Records each operation's outcome (`operation_outcome`) from its transactions. Reads and
        writes in bulk: a coalesced transaction touches dozens of operations at once. Returns the
        operations that are final now."""
        now = _now()
        ids = list(operation_ids)
        final: list[str] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = connection.execute(
                select(
                    _transactions.c.operation_id,
                    _transactions.c.sequence,
                    _transactions.c.status,
                    _transactions.c.error_name,
                    _transactions.c.error_args,
                )
                .where(_transactions.c.operation_id.in_(chunk))
                .order_by(_transactions.c.operation_id, _transactions.c.sequence)
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
                        _transactions.update()
                        .where(
                            _transactions.c.operation_id == operation_id,
                            _transactions.c.status == OperationStatus.PENDING.value,
                        )
                        .values(
                            status=OperationStatus.FAILED.value,
                            error_name=NOT_SENT,
                            error_args={"failed_sequence": outcome.failed_sequence},
                        )
                    )
                if status.final:
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
                    _operations.update()
                    .where(_operations.c.id == bindparam("b_id"))
                    .values(
                        status=bindparam("b_status"),
                        error_name=bindparam("b_error_name"),
                        error_args=bindparam("b_error_args", type_=_operations.c.error_args.type),
                        updated_at=now,
                    ),
                    changes,
                )
            moved = [
                change["b_id"] for change in changes if change["b_status"] != OperationStatus.PENDING.value
            ]
            if moved:  # sent (or final): whatever held it before let go
                connection.execute(
                    _operations.update()
                    .where(_operations.c.id.in_(moved), _operations.c.stuck_since.is_not(None))
                    .values(stuck_reason=None, stuck_since=None)
                )
        return final


if TYPE_CHECKING:

    def _is_the_workers_storage(store: OutboxStore) -> OutboxStorage:
        return store  # mypy checks that the store is what the worker needs
