"""The index's claims about lots, read as plain values for verification against the chain.

Each derived row is turned back into the event it says it comes from (`IndexedEvent`: the event's
name, its fields under the event's argument names, the log's coordinates), so the verifier can
re-read that log from its receipt and compare field by field without knowing the tables.

Reads happen inside one snapshot (`IndexClaimReader.snapshot()`): a repeatable-read transaction on
PostgreSQL, a WAL read transaction on SQLite, so a verification sees one consistent index even
while the indexer writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, select

from provenance.domain.values import CorrectionReason, TransformKind
from provenance.index.models import (
    AssayRecord,
    ChainMirror,
    Correction,
    CustodyMove,
    Document,
    Event,
    IndexCursor,
    LineageEdge,
    LoadAttestationRecord,
    Lot,
    Transformation,
    TransformInput,
)
from provenance.verification.model import EdgeClaim, IndexCheckpoint, IndexedEvent, LotClaims, Where

CUSTODY_EVENTS = {
    "offered": "CustodyOffered",
    "cancelled": "CustodyOfferCancelled",
    "accepted": "CustodyAccepted",
}
CORRECTION_REASONS = {
    "did_not_occur": CorrectionReason.DID_NOT_OCCUR,
    "incorrect_data": CorrectionReason.INCORRECT_DATA,
}


def _where(row: Any) -> Where:
    return Where(row.tx_hash, row.block_number, row.log_index)


def _event(name: str, table: str, row: Any, fields: Mapping[str, Any]) -> IndexedEvent:
    return IndexedEvent(name, table, dict(fields), _where(row), row.block_hash)


class IndexClaimReader:
    """Opens read snapshots of the index behind `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def snapshot(self) -> Iterator[IndexSnapshot]:
        connection = self.engine.connect()
        if self.engine.dialect.name == "postgresql":
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            with connection.begin():
                yield IndexSnapshot(connection)
        finally:
            connection.close()


class IndexSnapshot:
    """The index as one transaction sees it."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def checkpoint(self) -> IndexCheckpoint | None:
        """The mirrored chain and the cursor; None for an index that has indexed nothing yet."""
        mirror = self.connection.execute(select(ChainMirror)).first()
        cursor = self.connection.execute(select(IndexCursor)).first()
        if mirror is None or cursor is None:
            return None
        return IndexCheckpoint(
            chain_id=mirror.chain_id,
            registry=mirror.registry_address,
            deployment_block=mirror.deployment_block,
            block_number=cursor.block_number,
        )

    def lot(self, lot_id: str) -> LotClaims | None:
        c = self.connection
        lot = c.execute(select(Lot).where(Lot.lot_id == lot_id)).first()
        if lot is None:
            return None
        transformation: IndexedEvent | None = None
        if lot.origin == "registered":
            origin = _event(
                "LotRegistered",
                "lots",
                lot,
                {
                    "lotId": lot.lot_id,
                    "face": lot.face,
                    "commodity": lot.commodity,
                    "massG": lot.mass_g,
                    "gradePpm": lot.grade_ppm,
                    "extractedAt": lot.extracted_at,
                    "recordHash": lot.record_hash,
                    "site": lot.site,
                    "custodian": lot.creator,
                },
            )
        else:
            origin = _event(
                "LotCreated",
                "lots",
                lot,
                {
                    "lotId": lot.lot_id,
                    "transformId": lot.transform_id,
                    "custodian": lot.creator,
                    "commodity": lot.commodity,
                    "massG": lot.mass_g,
                    "gradePpm": lot.grade_ppm,
                    "recordHash": lot.record_hash,
                    "site": lot.site,
                },
            )
            if lot.transform_id is not None:
                row = c.execute(
                    select(Transformation).where(Transformation.transform_id == lot.transform_id)
                ).first()
                if row is not None:
                    transformation = _event(
                        "LotsTransformed",
                        "transformations",
                        row,
                        {
                            "transformId": row.transform_id,
                            "operator": row.operator,
                            "kind": int(TransformKind[row.kind.upper()]),
                            "site": row.site,
                            "lossG": row.loss_g,
                            "recordHash": row.record_hash,
                        },
                    )
        records: list[IndexedEvent] = []
        for consumed in c.execute(select(TransformInput).where(TransformInput.lot_id == lot_id)):
            records.append(
                _event(
                    "LotConsumed",
                    "transform_inputs",
                    consumed,
                    {
                        "lotId": lot_id,
                        "transformId": consumed.transform_id,
                        "massG": consumed.mass_g,
                        "remainingG": consumed.remaining_g,
                    },
                )
            )
        for move in c.execute(select(CustodyMove).where(CustodyMove.lot_id == lot_id)):
            records.append(
                _event(
                    CUSTODY_EVENTS.get(move.action, move.action),
                    "custody_moves",
                    move,
                    {"lotId": lot_id, "from": move.from_address, "to": move.to_address},
                )
            )
        for assay in c.execute(select(AssayRecord).where(AssayRecord.lot_id == lot_id)):
            records.append(_assay(assay))
        for document in c.execute(select(Document).where(Document.lot_id == lot_id)):
            records.append(_document(document))
        for load in c.execute(select(LoadAttestationRecord).where(LoadAttestationRecord.lot_id == lot_id)):
            records.append(
                _event(
                    "LoadAttested",
                    "load_attestations",
                    load,
                    {
                        "lotId": lot_id,
                        "device": load.device,
                        "tripId": load.trip_id,
                        "loadedAt": load.loaded_at,
                    },
                )
            )
        for correction in c.execute(select(Correction).where(Correction.lot_id == lot_id)):
            reason = CORRECTION_REASONS.get(correction.reason)
            records.append(
                _event(
                    "LotCorrected",
                    "corrections",
                    correction,
                    {
                        "lotId": lot_id,
                        "by": correction.corrected_by,
                        "reason": int(reason) if reason is not None else correction.reason,
                        "adjustmentG": correction.adjustment_g,
                        "remainingG": correction.remaining_g,
                        "recordHash": correction.record_hash,
                    },
                )
            )
        records.sort(key=lambda event: (event.where.block_number, event.where.tx_hash, event.where.log_index))
        edges = tuple(
            EdgeClaim(edge.input_lot_id, edge.transform_id, edge.mass_g)
            for edge in c.execute(
                select(LineageEdge)
                .where(LineageEdge.output_lot_id == lot_id)
                .order_by(LineageEdge.input_lot_id)
            )
        )
        logged = frozenset(
            (row.name, row.tx_hash, row.log_index)
            for row in c.execute(
                select(Event.name, Event.tx_hash, Event.log_index).where(Event.lot_id == lot_id)
            )
        )
        return LotClaims(
            lot_id=lot.lot_id,
            origin=origin,
            custodian=lot.custodian,
            pending_custodian=lot.pending_custodian,
            remaining_g=lot.remaining_g,
            status=lot.status,
            transformation=transformation,
            records=tuple(records),
            edges_in=edges,
            logged=logged,
        )

    def documents(self, document_hash: str) -> list[IndexedEvent]:
        """The index's anchors of a document (0x-hex SHA-256)."""
        rows = self.connection.execute(
            select(Document).where(Document.document_hash == document_hash.lower())
        )
        return [_document(row) for row in rows]

    def assays_certified_by(self, certificate_hash: str) -> list[IndexedEvent]:
        """The index's assays whose lab signed this certificate hash (0x-hex SHA-256)."""
        rows = self.connection.execute(
            select(AssayRecord).where(AssayRecord.certificate_hash == certificate_hash.lower())
        )
        return [_assay(row) for row in rows]


def _assay(row: Any) -> IndexedEvent:
    return _event(
        "AssayRecorded",
        "assays",
        row,
        {
            "lotId": row.lot_id,
            "lab": row.lab,
            "gradePpm": row.grade_ppm,
            "method": row.method,
            "certificateHash": row.certificate_hash,
            "assayedAt": row.assayed_at,
            "submitter": row.submitter,
            "signature": row.signature,
        },
    )


def _document(row: Any) -> IndexedEvent:
    return _event(
        "DocumentAnchored",
        "documents",
        row,
        {"lotId": row.lot_id, "documentHash": row.document_hash, "by": row.anchored_by, "kind": row.kind},
    )
