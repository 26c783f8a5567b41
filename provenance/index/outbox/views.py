"""Read views of the outbox: operations as the API and /health show them."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select

from provenance.domain.operations import (
    OperationStatus,
    OperationView,
)
from provenance.index.outbox.base import OutboxBase
from provenance.index.outbox.rows import NONCES, OPERATIONS


class OperationViews(OutboxBase):
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
                    OPERATIONS.c.id.in_(ids[start : start + 500]),
                    OPERATIONS.c.status.in_(final),
                )
            ]

    def views(self, operation_ids: Collection[str]) -> dict[str, OperationView]:
        """`operation_ids`' operations as they stand, in two reads per 500 (a capture job's)."""
        ids = list(operation_ids)
        with self.engine.connect() as connection:
            return {
                view.id: view
                for start in range(0, len(ids), 500)
                for view in self._views(connection, OPERATIONS.c.id.in_(ids[start : start + 500]))
            }

    def backlog(self) -> int:
        """How many operations are not final yet (pending or sent): one COUNT, cheap for a health probe."""
        with self.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count())
                    .select_from(OPERATIONS)
                    .where(
                        OPERATIONS.c.status.in_([OperationStatus.PENDING.value, OperationStatus.SENT.value])
                    )
                ).scalar_one()
            )

    def stuck(self, limit: int = 5) -> tuple[int, list[tuple[str, str]]]:
        """How many unfinished operations the node will not take, and the oldest `limit` of them
        with their reasons: a probe for /health, by the index on `stuck_since`."""
        unfinished = OPERATIONS.c.status.in_([OperationStatus.PENDING.value, OperationStatus.SENT.value])
        with self.engine.connect() as connection:
            count = connection.execute(
                select(func.count())
                .select_from(OPERATIONS)
                .where(OPERATIONS.c.stuck_since.is_not(None), unfinished)
            ).scalar_one()
            rows = connection.execute(
                select(OPERATIONS.c.id, OPERATIONS.c.stuck_reason)
                .where(OPERATIONS.c.stuck_since.is_not(None), unfinished)
                .order_by(OPERATIONS.c.stuck_since)
                .limit(limit)
            ).all()
        return int(count), [(row.id, row.stuck_reason or "") for row in rows]

    def nonce_of(self, sender: str) -> int | None:
        """The next nonce the outbox will give `sender`, if it has given any."""
        with self.engine.connect() as connection:
            value = connection.execute(
                select(NONCES.c.next_nonce).where(NONCES.c.sender == sender.lower())
            ).scalar()
        return None if value is None else int(value)
