"""EPCIS capture jobs in SQL (`capture_jobs`, migration 0011): a job and the operations its events
became are written in one database transaction (`OutboxStore.submit_together`); a retry under the
same key finds the job instead of writing again."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, or_, select
from sqlalchemy.exc import IntegrityError

from provenance.domain.commands import Command
from provenance.domain.operations import OperationView
from provenance.errors import IdempotencyConflict
from provenance.index.models import Base
from provenance.index.outbox import OutboxStore
from provenance.index.write_models import CaptureJob

jobs = Base.metadata.tables[CaptureJob.__tablename__]


@dataclass(frozen=True)
class CapturedEvent:
    index: int
    event_id: str | None
    operation_id: str


@dataclass(frozen=True)
class CaptureRecord:
    id: str
    credential_id: str
    error_behaviour: str
    event_count: int
    events: tuple[CapturedEvent, ...]
    refused: tuple[Mapping[str, Any], ...]
    created_at: datetime


@dataclass(frozen=True)
class NewWrite:
    index: int
    event_id: str | None
    command: Command


def _record(row: Any) -> CaptureRecord:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return CaptureRecord(
        row.id,
        row.credential_id,
        row.error_behaviour,
        row.event_count,
        tuple(
            CapturedEvent(item["event"], item.get("eventID"), item["operation"]) for item in row.operations
        ),
        tuple(row.refused),
        created,
    )


class CaptureStore:
    def __init__(self, engine: Engine, outbox: OutboxStore) -> None:
        self._engine = engine
        self._outbox = outbox

    def create(
        self,
        *,
        credential_id: str,
        sender: str,
        retry_key: str,
        fingerprint: str,
        behaviour: str,
        event_count: int,
        writes: Sequence[NewWrite],
        refused: Sequence[Mapping[str, Any]],
    ) -> tuple[CaptureRecord, bool]:
        """The new job (True), or the one stored under `retry_key` before (False); raises
        IdempotencyConflict if that one was asked for by another document."""
        job_id = str(uuid.uuid4())

        def before(connection: Connection) -> CaptureRecord | None:
            return self._existing(connection, credential_id, retry_key, fingerprint)

        def after(connection: Connection, operation_ids: list[str]) -> CaptureRecord:
            row = {
                "id": job_id,
                "credential_id": credential_id,
                "retry_key": retry_key,
                "request_fingerprint": fingerprint,
                "error_behaviour": behaviour,
                "event_count": event_count,
                "operations": [
                    {"event": write.index, "eventID": write.event_id, "operation": operation_id}
                    for write, operation_id in zip(writes, operation_ids, strict=True)
                ],
                "refused": [dict(problem) for problem in refused],
                "created_at": datetime.now(UTC),
            }
            connection.execute(jobs.insert(), row)
            return _record(connection.execute(select(jobs).where(jobs.c.id == job_id)).one())

        try:
            return self._outbox.submit_together(
                credential_id=credential_id,
                sender=sender,
                commands=[write.command for write in writes],
                before=before,
                after=after,
            )
        except IntegrityError:  # a twin request committed first (PostgreSQL)
            with self._engine.connect() as connection:
                found = self._existing(connection, credential_id, retry_key, fingerprint)
            if found is None:
                raise
            return found, False

    @staticmethod
    def _existing(
        connection: Connection, credential_id: str, retry_key: str, fingerprint: str
    ) -> CaptureRecord | None:
        row = connection.execute(
            select(jobs).where(jobs.c.credential_id == credential_id, jobs.c.retry_key == retry_key)
        ).first()
        if row is None:
            return None
        if row.request_fingerprint != fingerprint:
            raise IdempotencyConflict(retry_key, row.id)
        return _record(row)

    def find(self, credential_id: str, retry_key: str, fingerprint: str) -> CaptureRecord | None:
        """The job stored under `retry_key`; IdempotencyConflict if another document asked for it."""
        with self._engine.connect() as connection:
            return self._existing(connection, credential_id, retry_key, fingerprint)

    def get(self, job_id: str) -> CaptureRecord | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return None if row is None else _record(row)

    def page(self, credential_id: str, after: str | None, limit: int) -> list[CaptureRecord]:
        """A credential's jobs oldest first, after the job `after` (a keyset on created_at, id)."""
        query = (
            select(jobs)
            .where(jobs.c.credential_id == credential_id)
            .order_by(jobs.c.created_at, jobs.c.id)
            .limit(limit)
        )
        if after is not None:
            moment = select(jobs.c.created_at).where(jobs.c.id == after).scalar_subquery()
            query = query.where(
                or_(jobs.c.created_at > moment, and_(jobs.c.created_at == moment, jobs.c.id > after))
            )
        with self._engine.connect() as connection:
            return [_record(row) for row in connection.execute(query)]

    def operations(self, record: CaptureRecord) -> dict[str, OperationView]:
        return self._outbox.views([event.operation_id for event in record.events])
