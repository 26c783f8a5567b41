"""Storing writes: a command becomes an operation with its planned transaction, once per
idempotency key."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from provenance.domain.commands import Command
from provenance.domain.operations import (
    OperationStatus,
    OperationView,
    TransactionView,
    fingerprint,
    new_operation_id,
)
from provenance.errors import CredentialInactive, DomainError, IdempotencyConflict
from provenance.index.outbox.base import OutboxBase
from provenance.index.outbox.rows import (
    ACTIVE_CREDENTIAL,
    BY_KEY,
    INSERT_OPERATION,
    INSERT_TRANSACTION,
    check_sender,
    timestamp,
    utc_now,
)
from provenance.index.wakeups import announce_work

MAX_IDEMPOTENCY_KEY = 255
T = TypeVar("T")


class Submissions(OutboxBase):
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
        check_sender(sender)
        plain = command.to_payload()
        request = fingerprint(kind, plain)
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise DomainError("Idempotency-Key", f"must have 1 to {MAX_IDEMPOTENCY_KEY} characters")
        if operation_id is None:
            operation_id = new_operation_id()
        now = utc_now()

        def store(connection: Connection) -> tuple[str, str] | None:
            # in the write's own transaction: a credential revoked a moment ago writes nothing,
            # whatever the API remembered of its token (api.known_tokens)
            if connection.execute(ACTIVE_CREDENTIAL, {"credential_id": credential_id}).first() is None:
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
            created_at=timestamp(now),
            updated_at=timestamp(now),
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
        check_sender(sender)
        now = utc_now()
        with self._writing() as connection:
            if connection.execute(ACTIVE_CREDENTIAL, {"credential_id": credential_id}).first() is None:
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
            INSERT_OPERATION,
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
            INSERT_TRANSACTION,
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

    def holds_key(self, credential_id: str, idempotency_key: str) -> bool:
        """Whether an operation is stored under this credential's `Idempotency-Key` (a retry)."""
        return self._by_key(credential_id, idempotency_key) is not None

    def _by_key(
        self, credential_id: str, idempotency_key: str, connection: Connection | None = None
    ) -> tuple[str, str] | None:
        """(operation id, request fingerprint) of the operation stored under this key."""
        key = {"credential_id": credential_id, "idempotency_key": idempotency_key}
        if connection is not None:
            row = connection.execute(BY_KEY, key).first()
        else:
            with self.engine.connect() as reading:
                row = reading.execute(BY_KEY, key).first()
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
