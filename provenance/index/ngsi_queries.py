"""What the NGSI-LD views need from the index: lots as `LotState`s (with parents, assays and their
newest fact), a page of them filtered by an NGSI-LD `q`, sites, one fact's receipt, a lot's facts
in chain order (the temporal view), and a lot's origin and parents (the hub publisher's creation
messages). Reads only the index, never the node."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, not_, select
from sqlalchemy.sql.elements import ColumnElement

from provenance.domain.ngsi_ld import Assay, Fact, LotOrigin, LotState, Parent, grams
from provenance.domain.ngsi_ld_query import Term
from provenance.index.models import AssayRecord, BlockTime, ChainMirror, Event, LineageEdge, Lot

lots = Lot.__table__
edges = LineageEdge.__table__
assays = AssayRecord.__table__
events = Event.__table__
block_times = BlockTime.__table__
CHUNK = 500

_COLUMNS = {
    "commodity": lots.c.commodity,
    "status": lots.c.status,
    "custodian": lots.c.custodian,
    "face": lots.c.face,
    "origin": lots.c.origin,
    "site": lots.c.site,
    "mass": lots.c.mass_g,
    "remainingMass": lots.c.remaining_g,
    "grade": lots.c.grade_ppm,
}


def _scaled(term: Term, value: str | float) -> Any:
    """Kilograms in a query, grams in the index."""
    return grams(float(value)) if term.attribute in ("mass", "remainingMass") else value


def _condition(term: Term) -> ColumnElement[bool]:
    column: Any = _COLUMNS[term.attribute]
    if term.attribute == "custodian":
        column = func.lower(column)
    values = [
        str(value).lower() if term.attribute == "custodian" else _scaled(term, value) for value in term.values
    ]
    if term.is_range:
        return and_(column >= values[0], column <= values[1])
    if len(values) > 1:
        inside: ColumnElement[bool] = column.in_(values)
        return inside if term.operator == "==" else not_(inside)
    value = values[0]
    operators: dict[str, ColumnElement[bool]] = {
        "==": column == value,
        "!=": column != value,
        ">": column > value,
        ">=": column >= value,
        "<": column < value,
        "<=": column <= value,
    }
    chosen: ColumnElement[bool] = operators[term.operator]
    return chosen


_ORIGIN = select(lots).where(lots.c.lot_id == bindparam("lot"))
_PARENTS = (
    select(edges.c.input_lot_id, edges.c.mass_g, lots.c.site)
    .join(lots, lots.c.lot_id == edges.c.input_lot_id)
    .where(edges.c.output_lot_id == bindparam("lot"))
    .order_by(edges.c.input_lot_id)
)
_SITE = select(lots.c.site).where(lots.c.lot_id == bindparam("lot"))


def _origin(row: Any) -> LotOrigin:
    return LotOrigin(
        lot_id=row.lot_id,
        site=row.site,
        face=row.face,
        commodity=row.commodity,
        mass_g=row.mass_g,
        grade_ppm=row.grade_ppm,
        extracted_at=row.extracted_at,
        creator=row.creator,
        record_hash=row.record_hash,
        origin=row.origin,
    )


class NgsiQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._chain: tuple[int, str] | None = None

    def chain(self, connection: Connection) -> tuple[int, str]:
        """The chain id and the registry's address the index mirrors (fixed once it exists)."""
        if self._chain is None:
            row = connection.execute(select(ChainMirror.chain_id, ChainMirror.registry_address)).first()
            if row is None:
                return (0, "")
            self._chain = (int(row.chain_id), str(row.registry_address))
        return self._chain

    # ------------------------------------------------------------------ lots

    def lot(self, lot_id: str) -> LotState | None:
        with self.engine.connect() as connection:
            states = self._states(
                connection, list(connection.execute(select(lots).where(lots.c.lot_id == lot_id)))
            )
            return states[0] if states else None

    def lots(self, terms: Sequence[Term], ids: Sequence[str], limit: int, offset: int) -> list[LotState]:
        """A page of lots (creation order) for which every term holds; `ids` limits to those lots."""
        query = select(lots).where(*(_condition(term) for term in terms))
        if ids:
            query = query.where(lots.c.lot_id.in_(ids))
        query = query.order_by(lots.c.block_number, lots.c.lot_id).limit(limit).offset(offset)
        with self.engine.connect() as connection:
            return self._states(connection, list(connection.execute(query)))

    def count_lots(self, terms: Sequence[Term], ids: Sequence[str]) -> int:
        query = select(func.count()).select_from(lots).where(*(_condition(term) for term in terms))
        if ids:
            query = query.where(lots.c.lot_id.in_(ids))
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def _states(self, connection: Connection, rows: list[Any]) -> list[LotState]:
        if not rows:
            return []
        ids = [row.lot_id for row in rows]
        parents = self._parents(connection, ids)
        tested: dict[str, list[Assay]] = defaultdict(list)
        newest: dict[str, Any] = {}
        for chunk in _chunks(ids):
            for row in connection.execute(
                select(assays)
                .where(assays.c.lot_id.in_(chunk))
                .order_by(assays.c.block_number, assays.c.tx_index, assays.c.log_index)
            ):
                tested[row.lot_id].append(
                    Assay(row.lab, row.grade_ppm, row.method, row.certificate_hash, row.assayed_at)
                )
            ranked = select(
                events,
                func.row_number()
                .over(
                    partition_by=events.c.lot_id,
                    order_by=(
                        events.c.block_number.desc(),
                        events.c.tx_index.desc(),
                        events.c.log_index.desc(),
                    ),
                )
                .label("rank"),
            ).where(events.c.lot_id.in_(chunk))
            newest_of = ranked.subquery()
            for row in connection.execute(select(newest_of).where(newest_of.c.rank == 1)):
                newest[row.lot_id] = row
        blocks = {row.block_number for row in rows} | {row.block_number for row in newest.values()}
        times = self._times(connection, blocks)
        return [
            LotState(
                origin=_origin(row),
                custodian=row.custodian,
                pending_custodian=row.pending_custodian,
                remaining_g=row.remaining_g,
                status=row.status,
                parents=tuple(parents.get(row.lot_id, ())),
                assays=tuple(tested.get(row.lot_id, ())),
                last=self._fact(connection, newest[row.lot_id], times) if row.lot_id in newest else None,
                created_at=times.get(row.block_number),
            )
            for row in rows
        ]

    def _parents(self, connection: Connection, ids: Sequence[str]) -> dict[str, list[Parent]]:
        found: dict[str, list[Parent]] = defaultdict(list)
        for chunk in _chunks(ids):
            query = (
                select(edges.c.output_lot_id, edges.c.input_lot_id, edges.c.mass_g, lots.c.site)
                .join(lots, lots.c.lot_id == edges.c.input_lot_id)
                .where(edges.c.output_lot_id.in_(chunk))
                .order_by(edges.c.output_lot_id, edges.c.input_lot_id)
            )
            for row in connection.execute(query):
                found[row.output_lot_id].append(Parent(row.input_lot_id, row.site, row.mass_g))
        return found

    def origin(self, lot_id: str) -> tuple[LotOrigin, tuple[Parent, ...]] | None:
        """A lot's origin and parents (both fixed once the lot exists). Statements built once: the
        hub publisher asks this for every lot it publishes the creation of."""
        with self.engine.connect() as connection:
            row = connection.execute(_ORIGIN, {"lot": lot_id}).one_or_none()
            if row is None:
                return None
            parents = tuple(
                Parent(p.input_lot_id, p.site, p.mass_g)
                for p in connection.execute(_PARENTS, {"lot": lot_id})
            )
            return _origin(row), parents

    def site(self, lot_id: str) -> str | None:
        with self.engine.connect() as connection:
            found = connection.execute(_SITE, {"lot": lot_id}).scalar_one_or_none()
            return None if found is None else str(found)

    def site_of(self, lot_ids: Iterable[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(list(lot_ids)):
                for row in connection.execute(
                    select(lots.c.lot_id, lots.c.site).where(lots.c.lot_id.in_(chunk))
                ):
                    found[row.lot_id] = row.site
        return found

    # ------------------------------------------------------------------ sites and receipts

    def sites(self, names: Sequence[str], limit: int, offset: int) -> list[str]:
        query = select(lots.c.site).distinct()
        if names:
            query = query.where(lots.c.site.in_(names))
        with self.engine.connect() as connection:
            return list(connection.scalars(query.order_by(lots.c.site).limit(limit).offset(offset)))

    def count_sites(self, names: Sequence[str]) -> int:
        inner = select(lots.c.site).distinct()
        if names:
            inner = inner.where(lots.c.site.in_(names))
        with self.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(inner.subquery())) or 0)

    def receipt(self, tx_hash: str, log_index: int) -> tuple[Fact, str | None] | None:
        """The fact at (transaction, log index) and the lot it is about."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(events).where(
                    func.lower(events.c.tx_hash) == tx_hash.lower(), events.c.log_index == log_index
                )
            ).one_or_none()
            if row is None:
                return None
            return self._fact(connection, row, self._times(connection, [row.block_number])), row.lot_id

    # ------------------------------------------------------------------ history

    def history(self, lot_id: str) -> list[tuple[Fact, dict[str, Any]]]:
        """The lot's own facts in chain order, each with its arguments."""
        order = (events.c.block_number, events.c.tx_index, events.c.log_index)
        with self.engine.connect() as connection:
            rows = list(connection.execute(select(events).where(events.c.lot_id == lot_id).order_by(*order)))
            times = self._times(connection, {row.block_number for row in rows})
            return [(self._fact(connection, row, times), dict(row.args)) for row in rows]

    def _fact(self, connection: Connection, row: Any, times: dict[int, int]) -> Fact:
        chain_id, registry = self.chain(connection)
        return Fact(
            name=row.name,
            chain_id=chain_id,
            registry=registry,
            block_number=row.block_number,
            block_hash=row.block_hash,
            tx_hash=row.tx_hash,
            tx_index=row.tx_index,
            log_index=row.log_index,
            block_time=times.get(row.block_number),
        )

    @staticmethod
    def _times(connection: Connection, numbers: Iterable[int]) -> dict[int, int]:
        wanted = sorted(set(numbers))
        found: dict[int, int] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            query = select(block_times.c.number, block_times.c.timestamp).where(
                block_times.c.number.in_(chunk)
            )
            found.update({row.number: row.timestamp for row in connection.execute(query)})
        return found


def _chunks(ids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])
