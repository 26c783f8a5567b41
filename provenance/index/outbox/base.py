"""What every part of the outbox store shares: the engine, one writer at a time, group commits,
the wake-up signal, and reading operations back."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Row, select

from provenance.domain.operations import OperationView
from provenance.index.db import writer_lock
from provenance.index.group_commit import GroupCommit
from provenance.index.outbox.rows import OPERATIONS, TRANSACTIONS, operation_view_of
from provenance.index.wakeups import new_origin
from provenance.services.outbox_signal import OutboxSignal


class OutboxBase:
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

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._one_writer, self.engine.connect() as connection:
            connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                yield connection

    def get(self, operation_id: str) -> OperationView | None:
        with self.engine.connect() as connection:
            return self._view(connection, operation_id)

    def _view(self, connection: Connection, operation_id: str) -> OperationView | None:
        views = self._views(connection, OPERATIONS.c.id == operation_id)
        return views[0] if views else None

    def _views(self, connection: Connection, *conditions: Any) -> list[OperationView]:
        """The operations meeting `conditions`, each with its transactions (two reads)."""
        rows = connection.execute(select(OPERATIONS).where(*conditions)).all()
        if not rows:
            return []
        transactions: dict[str, list[Row[Any]]] = {row.id: [] for row in rows}
        for tx in connection.execute(
            select(TRANSACTIONS)
            .where(TRANSACTIONS.c.operation_id.in_(list(transactions)))
            .order_by(TRANSACTIONS.c.operation_id, TRANSACTIONS.c.sequence)
        ):
            transactions[tx.operation_id].append(tx)
        return [operation_view_of(row, transactions[row.id]) for row in rows]
