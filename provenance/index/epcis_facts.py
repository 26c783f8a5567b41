"""The index's facts for an EPCIS document (`provenance.epcis.export`): registrations, transformations,
handover offers and acceptances, assays; filtered by lot, site and a range of blocks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, or_, select
from sqlalchemy.sql.elements import ColumnElement

from provenance.domain.trace import Coordinates
from provenance.epcis.export import (
    Assayed,
    Chain,
    Corrected,
    CustodyStep,
    Fact,
    LotRecord,
    Names,
    Registered,
    Transformed,
    lots_named,
)
from provenance.epcis.ids import IdentifierScheme
from provenance.index.models import (
    AssayRecord,
    ChainMirror,
    Correction,
    CustodyMove,
    Lot,
    Transformation,
    TransformInput,
)

lots = Lot.__table__
transformations = Transformation.__table__
inputs = TransformInput.__table__
moves = CustodyMove.__table__
assays = AssayRecord.__table__
corrections = Correction.__table__


@dataclass(frozen=True)
class EpcisFilter:
    lot_id: str | None = None
    site: str | None = None
    from_block: int | None = None
    to_block: int | None = None
    """Included."""


def lot_record(row: Any) -> LotRecord:
    """A `lots` row's record beyond its mass, as the EPCIS events write it."""
    return LotRecord(row.commodity, row.grade_ppm, row.record_hash, row.face, row.extracted_at)


def _coordinates(row: Any) -> Coordinates:
    return Coordinates(row.block_number, row.block_hash, row.tx_hash, row.tx_index, row.log_index)


class EpcisFacts:
    """Read-only: each method is one short read transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def chain(self) -> Chain | None:
        """The chain and registry the index mirrors (None before the indexer's first run)."""
        with self._engine.connect() as connection:
            row = connection.execute(select(ChainMirror.chain_id, ChainMirror.registry_address)).one_or_none()
        return None if row is None else Chain(int(row.chain_id), str(row.registry_address))

    def names(self, scheme: IdentifierScheme, facts: Iterable[Fact]) -> Names:
        """The deployment's names for the events of `facts`, with the lots' commodities when its
        GS1 identifiers need them (an LGTIN is a GTIN per commodity)."""
        if not scheme.needs_commodities:
            return Names(scheme)
        wanted = sorted(lots_named(facts))
        commodities: dict[str, str] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                rows = connection.execute(
                    select(lots.c.lot_id, lots.c.commodity).where(
                        lots.c.lot_id.in_(wanted[start : start + 500])
                    )
                )
                commodities.update({row.lot_id: row.commodity for row in rows})
        return Names(scheme, commodities)

    def facts(self, where: EpcisFilter, limit: int) -> list[Fact]:
        """At most `limit` facts of each kind matching `where`, in chain order."""
        with self._engine.connect() as connection:
            found: list[Fact] = [
                *self._registered(connection, where, limit),
                *self._transformed(connection, where, limit),
                *self._custody(connection, where, limit),
                *self._assayed(connection, where, limit),
                *self._corrected(connection, where, limit),
            ]
        found.sort(key=lambda fact: (fact.at.block_number, fact.at.tx_index, fact.at.log_index))
        return found

    @staticmethod
    def _blocks(table: Any, where: EpcisFilter) -> list[ColumnElement[bool]]:
        bounds: list[ColumnElement[bool]] = []
        if where.from_block is not None:
            bounds.append(table.c.block_number >= where.from_block)
        if where.to_block is not None:
            bounds.append(table.c.block_number <= where.to_block)
        return bounds

    def _registered(self, connection: Connection, where: EpcisFilter, limit: int) -> list[Registered]:
        conditions = [lots.c.origin == "registered", *self._blocks(lots, where)]
        if where.lot_id is not None:
            conditions.append(lots.c.lot_id == where.lot_id)
        if where.site is not None:
            conditions.append(lots.c.site == where.site)
        rows = connection.execute(select(lots).where(*conditions).order_by(lots.c.block_number).limit(limit))
        return [
            Registered(row.lot_id, row.site, row.mass_g, _coordinates(row), lot_record(row)) for row in rows
        ]

    def _transformed(self, connection: Connection, where: EpcisFilter, limit: int) -> list[Transformed]:
        conditions = self._blocks(transformations, where)
        if where.site is not None:
            conditions.append(transformations.c.site == where.site)
        if where.lot_id is not None:
            conditions.append(
                or_(
                    transformations.c.transform_id.in_(
                        select(inputs.c.transform_id).where(inputs.c.lot_id == where.lot_id)
                    ),
                    transformations.c.transform_id.in_(
                        select(lots.c.transform_id).where(lots.c.lot_id == where.lot_id)
                    ),
                )
            )
        rows = connection.execute(
            select(transformations).where(*conditions).order_by(transformations.c.block_number).limit(limit)
        ).all()
        return self._transformations(connection, rows)

    @staticmethod
    def _transformations(connection: Connection, rows: Any) -> list[Transformed]:
        ids = [row.transform_id for row in rows]
        consumed: dict[int, list[tuple[str, int]]] = defaultdict(list)
        produced: dict[int, list[tuple[str, int]]] = defaultdict(list)
        records: dict[int, list[LotRecord]] = defaultdict(list)
        if ids:
            for row in connection.execute(
                select(inputs.c.transform_id, inputs.c.lot_id, inputs.c.mass_g)
                .where(inputs.c.transform_id.in_(ids))
                .order_by(inputs.c.log_index)
            ):
                consumed[row.transform_id].append((row.lot_id, row.mass_g))
            for row in connection.execute(
                select(lots).where(lots.c.transform_id.in_(ids)).order_by(lots.c.log_index)
            ):
                produced[row.transform_id].append((row.lot_id, row.mass_g))
                records[row.transform_id].append(LotRecord(row.commodity, row.grade_ppm, row.record_hash))
        return [
            Transformed(
                row.transform_id,
                row.kind,
                row.site,
                tuple(consumed[row.transform_id]),
                tuple(produced[row.transform_id]),
                _coordinates(row),
                row.record_hash,
                tuple(records[row.transform_id]),
            )
            for row in rows
        ]

    def _custody(self, connection: Connection, where: EpcisFilter, limit: int) -> list[CustodyStep]:
        conditions = [moves.c.action.in_(("offered", "accepted")), *self._blocks(moves, where)]
        if where.lot_id is not None:
            conditions.append(moves.c.lot_id == where.lot_id)
        if where.site is not None:
            conditions.append(moves.c.lot_id.in_(select(lots.c.lot_id).where(lots.c.site == where.site)))
        rows = connection.execute(
            select(moves).where(*conditions).order_by(moves.c.block_number).limit(limit)
        )
        return [
            CustodyStep(row.lot_id, row.action, row.from_address, row.to_address, _coordinates(row))
            for row in rows
        ]

    def _assayed(self, connection: Connection, where: EpcisFilter, limit: int) -> list[Assayed]:
        conditions = self._blocks(assays, where)
        if where.lot_id is not None:
            conditions.append(assays.c.lot_id == where.lot_id)
        if where.site is not None:
            conditions.append(assays.c.lot_id.in_(select(lots.c.lot_id).where(lots.c.site == where.site)))
        rows = connection.execute(
            select(assays).where(*conditions).order_by(assays.c.block_number).limit(limit)
        )
        return [
            Assayed(
                row.lot_id,
                row.lab,
                row.grade_ppm,
                row.method,
                row.certificate_hash,
                row.assayed_at,
                _coordinates(row),
                row.signature,
            )
            for row in rows
        ]

    def _corrected(self, connection: Connection, where: EpcisFilter, limit: int) -> list[Corrected]:
        conditions = self._blocks(corrections, where)
        if where.lot_id is not None:
            conditions.append(corrections.c.lot_id == where.lot_id)
        if where.site is not None:
            conditions.append(
                corrections.c.lot_id.in_(select(lots.c.lot_id).where(lots.c.site == where.site))
            )
        rows = connection.execute(
            select(corrections).where(*conditions).order_by(corrections.c.block_number).limit(limit)
        ).all()
        found = []
        for row in rows:
            lot = connection.execute(select(lots).where(lots.c.lot_id == row.lot_id)).one()
            original: Registered | Transformed
            if lot.transform_id is None:
                original = Registered(lot.lot_id, lot.site, lot.mass_g, _coordinates(lot), lot_record(lot))
            else:
                made = connection.execute(
                    select(transformations).where(transformations.c.transform_id == lot.transform_id)
                ).all()
                (original,) = self._transformations(connection, made)
            found.append(
                Corrected(
                    row.lot_id,
                    row.reason,
                    row.adjustment_g,
                    row.remaining_g,
                    row.corrected_by,
                    row.record_hash,
                    original,
                    _coordinates(row),
                )
            )
        return found
