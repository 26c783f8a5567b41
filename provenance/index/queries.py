"""The read side of the index: lots, lineage walks, lists, timelines and mass balances.

Answers are frozen dataclasses from `provenance.domain.trace`, never ORM rows. Lineage walks go
breadth first, one query per depth over an IN-list of the frontier (the same SQL on SQLite and
PostgreSQL, each step an index lookup on `lineage_edges`); the share arithmetic is the domain's.

Lists and timelines page by keyset, never by offset: lots by (creation block, lot id), events by
(block, transaction index, log index). New rows only ever come in later blocks, so a page boundary
stays put while the index grows: no duplicates and no gaps across pages.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Self

from sqlalchemy import Connection, Engine, Integer, String, case, func, literal, or_, select, tuple_
from sqlalchemy.sql.elements import ColumnElement

from provenance.domain.devices import DeviceFact
from provenance.domain.site_balance import (
    ChangeKind,
    LotChange,
    LotCustody,
    Moment,
    Period,
    SiteAccount,
    SiteRoles,
    StockCheck,
    outside_stock,
)
from provenance.domain.trace import (
    AssayFact,
    Coordinates,
    CorrectionFact,
    CustodyFact,
    Descendants,
    DocumentFact,
    LineageLink,
    LotDetail,
    LotFacts,
    LotFilter,
    MassBalance,
    Provenance,
    TimelineEvent,
    TraceNode,
    descendants,
    provenance,
)
from provenance.index.models import (
    AssayRecord,
    BlockTime,
    ChainMirror,
    Correction,
    CustodyMove,
    Device,
    Document,
    Event,
    IndexCursor,
    LineageEdge,
    Lot,
    RoleChange,
    StockCount,
    Transformation,
    TransformInput,
)

IN_LIST_CHUNK = 500
"""Ids per IN-list: well under SQLite's bound-parameter limit, small enough for a fast plan."""

lots = Lot.__table__
edges = LineageEdge.__table__
inputs = TransformInput.__table__
corrections = Correction.__table__
moves = CustodyMove.__table__
events = Event.__table__
block_times = BlockTime.__table__

LotKey = tuple[int, str]
"""A lot's place in a list: (creation block, lot id)."""
EventKey = tuple[int, int, int]
"""An event's place in a timeline: (block, transaction index, log index)."""


def _coordinates(row: Any) -> Coordinates:
    return Coordinates(row.block_number, row.block_hash, row.tx_hash, row.tx_index, row.log_index)


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for lot_id in ids:
        batch.append(lot_id)
        if len(batch) == IN_LIST_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _lot_facts(row: Any) -> LotFacts:
    return LotFacts(
        lot_id=row.lot_id,
        origin=row.origin,
        site=row.site,
        face=row.face,
        commodity=row.commodity,
        mass_g=row.mass_g,
        grade_ppm=row.grade_ppm,
        extracted_at=row.extracted_at,
        record_hash=row.record_hash,
        transform_id=row.transform_id,
        creator=row.creator,
        custodian=row.custodian,
        pending_custodian=row.pending_custodian,
        remaining_g=row.remaining_g,
        status=row.status,
        created=_coordinates(row),
    )


_NODE_COLUMNS = (
    lots.c.lot_id,
    lots.c.origin,
    lots.c.site,
    lots.c.commodity,
    lots.c.mass_g,
    lots.c.extracted_at,
    lots.c.custodian,
    lots.c.status,
)
_EDGE_COLUMNS = (
    edges.c.input_lot_id,
    edges.c.output_lot_id,
    edges.c.transform_id,
    edges.c.mass_g,
    edges.c.block_number,
    edges.c.block_hash,
    edges.c.tx_hash,
    edges.c.tx_index,
    edges.c.log_index,
)


def _link(row: Any) -> LineageLink:
    return LineageLink(row.input_lot_id, row.output_lot_id, row.transform_id, row.mass_g, _coordinates(row))


def _event(row: Any) -> TimelineEvent:
    return TimelineEvent(row.name, row.lot_id, dict(row.args), _coordinates(row))


class ReadQueries:
    """Read-only queries over one index database; each method is one short read transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None
        """Set by `RequestReads` for the length of a request: every query then runs on it."""

    def _connect(self) -> AbstractContextManager[Connection]:
        if self._connection is not None:
            return nullcontext(self._connection)
        return self._engine.connect()

    def index_block(self) -> int | None:
        """The last block whose events are all in the index (None before the first range)."""
        with self._connect() as connection:
            block: int | None = connection.scalar(select(IndexCursor.block_number))
            return block

    # ------------------------------------------------------------------ block times

    def block_timestamps(self, numbers: Iterable[int]) -> dict[int, int]:
        """The stored header timestamps of these blocks (those with indexed events)."""
        found: dict[int, int] = {}
        wanted = sorted(set(numbers))
        with self._connect() as connection:
            for start in range(0, len(wanted), IN_LIST_CHUNK):
                chunk = wanted[start : start + IN_LIST_CHUNK]
                rows = connection.execute(
                    select(block_times.c.number, block_times.c.timestamp).where(
                        block_times.c.number.in_(chunk)
                    )
                )
                found.update((row[0], row[1]) for row in rows)
        return found

    def first_block_at_or_after(self, timestamp: int, first: int, last: int) -> int:
        """A block in first..last + 1 that splits the events of first..last by time exactly where
        the chain's first block at or after `timestamp` does: the block after the last event block
        older than `timestamp` (`first` if none). Block timestamps never decrease, and only blocks
        with events are dated, so this is the bisection of the chain's headers without the node."""
        with self._connect() as connection:
            older: int | None = connection.scalar(
                select(func.max(block_times.c.number)).where(
                    block_times.c.number.between(first, last), block_times.c.timestamp < timestamp
                )
            )
        return first if older is None else older + 1

    # ------------------------------------------------------------------ one lot

    def lot(self, lot_id: str) -> LotDetail | None:
        with self._connect() as connection:
            row = connection.execute(select(lots).where(lots.c.lot_id == lot_id)).one_or_none()
            if row is None:
                return None
            facts = _lot_facts(row)
            assays = tuple(
                AssayFact(
                    a.lab,
                    a.grade_ppm,
                    a.method,
                    a.certificate_hash,
                    a.assayed_at,
                    a.submitter,
                    _coordinates(a),
                )
                for a in connection.execute(
                    select(AssayRecord.__table__)
                    .where(AssayRecord.lot_id == lot_id)
                    .order_by(AssayRecord.block_number, AssayRecord.tx_index, AssayRecord.log_index)
                )
            )
            documents = tuple(
                DocumentFact(d.document_hash, d.kind, d.anchored_by, _coordinates(d))
                for d in connection.execute(
                    select(Document.__table__)
                    .where(Document.lot_id == lot_id)
                    .order_by(Document.block_number, Document.tx_index, Document.log_index)
                )
            )
            pending = None
            if facts.pending_custodian is not None:
                offers = self._custody(connection, lot_id)
                pending = next((move for move in reversed(offers) if move.action == "offered"), None)
            corrected = tuple(
                CorrectionFact(
                    c.reason, c.adjustment_g, c.remaining_g, c.corrected_by, c.record_hash, _coordinates(c)
                )
                for c in connection.execute(
                    select(corrections)
                    .where(corrections.c.lot_id == lot_id)
                    .order_by(corrections.c.block_number, corrections.c.tx_index, corrections.c.log_index)
                )
            )
            return LotDetail(facts, assays, documents, pending, corrected)

    def exists(self, connection: Connection, lot_id: str) -> bool:
        return connection.scalar(select(lots.c.lot_id).where(lots.c.lot_id == lot_id)) is not None

    def custody(self, lot_id: str) -> tuple[CustodyFact, ...] | None:
        """Every handover step of a lot, oldest first; None for an unknown lot."""
        with self._connect() as connection:
            if not self.exists(connection, lot_id):
                return None
            return self._custody(connection, lot_id)

    @staticmethod
    def _custody(connection: Connection, lot_id: str) -> tuple[CustodyFact, ...]:
        rows = connection.execute(
            select(moves)
            .where(moves.c.lot_id == lot_id)
            .order_by(moves.c.block_number, moves.c.tx_index, moves.c.log_index)
        )
        return tuple(
            CustodyFact(row.lot_id, row.action, row.from_address, row.to_address, _coordinates(row))
            for row in rows
        )

    # ------------------------------------------------------------------ lineage

    def _walk(
        self, connection: Connection, lot_id: str, max_depth: int, *, backward: bool
    ) -> tuple[list[TraceNode], list[LineageLink], bool] | None:
        """Every lot within `max_depth` edges of `lot_id` along lineage edges (towards inputs when
        `backward`), each at its shortest distance, the links between them, and whether the walk
        reached the end. One recursive query finds the lots (an index lookup per step) and reads
        their rows; one more tallies their corrections, one more reads their links."""
        near, far = (
            (edges.c.output_lot_id, edges.c.input_lot_id)
            if backward
            else (edges.c.input_lot_id, edges.c.output_lot_id)
        )
        start = select(literal(lot_id, String()).label("lot_id"), literal(0, Integer()).label("depth"))
        walk = start.cte("walk", recursive=True)
        walk = walk.union(
            select(far.label("lot_id"), (walk.c.depth + 1).label("depth"))
            .join_from(edges, walk, near == walk.c.lot_id)
            .where(walk.c.depth < max_depth)
        )
        reached = (
            select(walk.c.lot_id, func.min(walk.c.depth).label("depth"))
            .group_by(walk.c.lot_id)
            .cte("reached")
        )
        rows = connection.execute(
            select(*_NODE_COLUMNS, reached.c.depth).join_from(
                lots, reached, lots.c.lot_id == reached.c.lot_id
            )
        ).all()
        tally = self._corrections_tally(connection, [row.lot_id for row in rows])
        depth_of: dict[str, int] = {}
        nodes: list[TraceNode] = []
        for row in rows:
            depth_of[row.lot_id] = row.depth
            count, corrected_g, did_not_occur = tally.get(row.lot_id, (0, 0, False))
            nodes.append(
                TraceNode(
                    row.lot_id,
                    row.origin,
                    row.site,
                    row.commodity,
                    row.mass_g,
                    row.extracted_at,
                    row.custodian,
                    row.status,
                    row.depth,
                    count,
                    corrected_g,
                    did_not_occur,
                )
            )
        if lot_id not in depth_of:
            return None
        nodes.sort(key=lambda node: (node.depth, node.lot_id))
        expanded = [lot for lot, depth in depth_of.items() if depth < max_depth]
        edge_order = (edges.c.block_number, edges.c.log_index, edges.c.input_lot_id)
        links: list[LineageLink] = []
        for chunk in _chunks(expanded):
            links.extend(
                _link(row)
                for row in connection.execute(
                    select(*_EDGE_COLUMNS).where(near.in_(chunk)).order_by(*edge_order)
                )
            )
        links.sort(
            key=lambda link: (link.coordinates.block_number, link.coordinates.log_index, link.input_lot_id)
        )
        edge_of_frontier = [lot for lot, depth in depth_of.items() if depth == max_depth]
        complete = True
        for chunk in _chunks(edge_of_frontier):
            if connection.scalar(select(far).where(near.in_(chunk)).limit(1)) is not None:
                complete = False
                break
        return nodes, links, complete

    @staticmethod
    def _corrections_tally(connection: Connection, ids: Sequence[str]) -> dict[str, tuple[int, int, bool]]:
        """Per lot with corrections among `ids`: how many, their net adjustment, whether one voided it.
        An IN-list on the corrections' lot_id index: corrections are rare, most lots have none."""
        tally: dict[str, tuple[int, int, bool]] = {}
        voids = func.max(case((corrections.c.reason == "did_not_occur", 1), else_=0))
        for chunk in _chunks(ids):
            for row in connection.execute(
                select(corrections.c.lot_id, func.count(), func.sum(corrections.c.adjustment_g), voids)
                .where(corrections.c.lot_id.in_(chunk))
                .group_by(corrections.c.lot_id)
            ):
                tally[row[0]] = (int(row[1]), int(row[2]), bool(row[3]))
        return tally

    def provenance(self, lot_id: str, max_depth: int) -> Provenance | None:
        """The backward trace of a lot, at most `max_depth` transformations deep; None if unknown."""
        with self._connect() as connection:
            walked = self._walk(connection, lot_id, max_depth, backward=True)
        if walked is None:
            return None
        nodes, links, complete = walked
        # Past a cut, the deepest lots reached have no links in the walk: they stand in for origins.
        return provenance(lot_id, nodes, links, complete=complete)

    def descendants(self, lot_id: str, max_depth: int) -> Descendants | None:
        """Every lot that received mass from `lot_id`, with the grams, and who held each; None if unknown."""
        with self._connect() as connection:
            walked = self._walk(connection, lot_id, max_depth, backward=False)
            if walked is None:
                return None
            nodes, links, complete = walked
            ids = [node.lot_id for node in nodes]
            custodians = self._custodians(connection, ids)
        return descendants(lot_id, nodes, links, custodians, complete=complete)

    @staticmethod
    def _custodians(connection: Connection, ids: Sequence[str]) -> dict[str, list[str]]:
        held: dict[str, list[str]] = defaultdict(list)
        for chunk in _chunks(ids):
            for row in connection.execute(
                select(lots.c.lot_id, lots.c.creator).where(lots.c.lot_id.in_(chunk))
            ):
                held[row.lot_id].append(row.creator)
            for row in connection.execute(
                select(moves.c.lot_id, moves.c.to_address)
                .where(moves.c.lot_id.in_(chunk), moves.c.action == "accepted")
                .order_by(moves.c.block_number, moves.c.tx_index, moves.c.log_index)
            ):
                if held[row.lot_id][-1] != row.to_address:
                    held[row.lot_id].append(row.to_address)
        return held

    # ------------------------------------------------------------------ lists

    def list_lots(self, where: LotFilter, after: LotKey | None, limit: int) -> list[LotFacts]:
        """A page of lots matching `where`, ordered by (creation block, lot id), after `after`."""
        conditions: list[ColumnElement[bool]] = []
        if where.site is not None:
            conditions.append(lots.c.site == where.site)
        if where.commodity is not None:
            conditions.append(lots.c.commodity == where.commodity)
        if where.custodian is not None:
            conditions.append(lots.c.custodian == where.custodian)
        if where.status is not None:
            conditions.append(lots.c.status == where.status)
        if where.extracted_from is not None:
            conditions.append(lots.c.extracted_at >= where.extracted_from)
        if where.extracted_to is not None:
            conditions.append(lots.c.extracted_at < where.extracted_to)
        if after is not None:
            conditions.append(tuple_(lots.c.block_number, lots.c.lot_id) > tuple_(*after))
        query = select(lots).where(*conditions).order_by(lots.c.block_number, lots.c.lot_id).limit(limit)
        with self._connect() as connection:
            return [_lot_facts(row) for row in connection.execute(query)]

    # ------------------------------------------------------------------ timelines

    def lot_timeline(self, lot_id: str, after: EventKey | None, limit: int) -> list[TimelineEvent] | None:
        """A lot's events in chain order (creation, consumptions, custody, assays, documents,
        corrections; the transformations that made or used it); None for an unknown lot."""
        with self._connect() as connection:
            if not self.exists(connection, lot_id):
                return None
            transforms = (
                select(Lot.transform_id)
                .where(Lot.lot_id == lot_id, Lot.transform_id.is_not(None))
                .union(select(TransformInput.transform_id).where(TransformInput.lot_id == lot_id))
            )
            transform_events = select(Transformation.tx_hash, Transformation.log_index).where(
                Transformation.transform_id.in_(transforms)
            )
            condition = or_(
                events.c.lot_id == lot_id,
                tuple_(events.c.tx_hash, events.c.log_index).in_(transform_events),
            )
            return self._timeline(connection, condition, after, limit)

    def site_timeline(self, site: str, after: EventKey | None, limit: int) -> list[TimelineEvent]:
        """Events about a site's lots, its transformations and its stock counts, in chain order."""
        site_lots = select(Lot.lot_id).where(Lot.site == site)
        keyed = (
            select(Transformation.tx_hash, Transformation.log_index)
            .where(Transformation.site == site)
            .union(select(StockCount.tx_hash, StockCount.log_index).where(StockCount.site == site))
        )
        condition = or_(
            events.c.lot_id.in_(site_lots),
            tuple_(events.c.tx_hash, events.c.log_index).in_(keyed),
        )
        with self._connect() as connection:
            return self._timeline(connection, condition, after, limit)

    @staticmethod
    def _timeline(
        connection: Connection, condition: ColumnElement[bool], after: EventKey | None, limit: int
    ) -> list[TimelineEvent]:
        order = (events.c.block_number, events.c.tx_index, events.c.log_index)
        query = select(events).where(condition)
        if after is not None:
            query = query.where(tuple_(*order) > tuple_(*after))
        rows = connection.execute(query.order_by(*order).limit(limit))
        return [_event(row) for row in rows]

    # ------------------------------------------------------------------ mass balance

    def mass_balance(self, site: str, from_block: int, to_block: int, roles: SiteRoles) -> MassBalance:
        """The site's account over blocks from_block..to_block (see `site_balance`). Sums over all
        the site's lots come from SQL; the few lots whose custody ever left the site are replayed
        in plain Python (`LotCustody`) to take out what happened to them while outside."""
        site_lot = select(lots.c.lot_id).where(lots.c.site == site)
        transforms = Transformation.__table__

        def total(column: Any, *where: ColumnElement[bool]) -> Any:
            return select(func.coalesce(func.sum(column), 0)).where(*where)

        def created(first: int | None, last: int | None, origin: str | None = None) -> Any:
            where = [lots.c.site == site]
            if origin is not None:
                where.append(lots.c.origin == origin)
            return total(lots.c.mass_g, *where, *_between(lots.c.block_number, first, last))

        def consumed(first: int | None, last: int | None, *where: ColumnElement[bool]) -> Any:
            return total(inputs.c.mass_g, *where, *_between(inputs.c.block_number, first, last))

        def processed_at(here: bool) -> ColumnElement[bool]:
            at_site = select(transforms.c.transform_id).where(transforms.c.site == site)
            return inputs.c.transform_id.in_(at_site) if here else inputs.c.transform_id.not_in(at_site)

        def adjusted(first: int | None, last: int | None) -> Any:
            return total(
                corrections.c.adjustment_g,
                corrections.c.lot_id.in_(site_lot),
                *_between(corrections.c.block_number, first, last),
            )

        with self._connect() as connection:

            def value(query: Any) -> int:
                return int(connection.scalar(query) or 0)

            outside = self._custody_left(connection, site, roles)
            before, later = from_block - 1, to_block + 1
            own = inputs.c.lot_id.in_(site_lot)
            opening = (
                value(created(None, before))
                - value(consumed(None, before, own))
                + value(adjusted(None, before))
                - outside_stock(outside, (from_block, 0))
            )
            closing = (
                value(total(lots.c.remaining_g, lots.c.site == site))
                - value(created(later, None))
                + value(consumed(later, None, own))
                - value(adjusted(later, None))
                - outside_stock(outside, (later, 0), from_state=True)
            )
            flows = [lot.outside_flows(from_block, to_block) for lot in outside]
            processed = value(consumed(from_block, to_block, processed_at(here=True)))
            processed_own = value(consumed(from_block, to_block, processed_at(here=True), own)) - sum(
                flow.processed_here_g for flow in flows
            )
            transferred = value(consumed(from_block, to_block, processed_at(here=False), own)) - sum(
                flow.processed_elsewhere_g for flow in flows
            )
            returned = sum(flow.returned_g for flow in flows)
            handed_out = sum(flow.shipped_g for flow in flows)
            return MassBalance(
                site=site,
                from_block=from_block,
                to_block=to_block,
                opening_g=opening,
                extracted_g=value(created(from_block, to_block, "registered")),
                received_g=processed - processed_own + returned,
                shipped_g=handed_out + transferred,
                lost_g=value(
                    total(
                        transforms.c.loss_g,
                        transforms.c.site == site,
                        *_between(transforms.c.block_number, from_block, to_block),
                    )
                ),
                corrected_g=value(adjusted(from_block, to_block)) - sum(flow.corrected_g for flow in flows),
                closing_g=closing,
                processed_g=processed,
                produced_g=value(created(from_block, to_block, "transformed")),
                returned_g=returned,
                transferred_g=transferred,
                shipments=sum(flow.shipments for flow in flows),
            )

    @staticmethod
    def _custody_left(connection: Connection, site: str, roles: SiteRoles) -> list[LotCustody]:
        """The site's lots that an account outside the site accepted at least once, with their
        acceptances and mass changes. An account is the site's at an acceptance when the latest
        change (before that transaction) of its registrar or processor role was a grant."""
        changes = RoleChange.__table__

        def held(role: str) -> Any:
            latest = (
                select(changes.c.granted)
                .where(
                    changes.c.role == role,
                    changes.c.account == moves.c.to_address,
                    tuple_(changes.c.block_number, changes.c.tx_index)
                    < tuple_(moves.c.block_number, moves.c.tx_index),
                )
                .order_by(
                    changes.c.block_number.desc(), changes.c.tx_index.desc(), changes.c.log_index.desc()
                )
                .limit(1)
                .scalar_subquery()
            )
            return func.coalesce(latest, False)

        by_site = or_(held(roles.registrar.lower()), held(roles.processor.lower()))
        site_moves = (
            select(moves.c.lot_id, moves.c.block_number, moves.c.tx_index, by_site.label("by_site"))
            .join(lots, lots.c.lot_id == moves.c.lot_id)
            .where(lots.c.site == site, moves.c.action == "accepted")
        ).subquery()
        left = sorted(
            connection.scalars(select(site_moves.c.lot_id).where(site_moves.c.by_site.is_(False)).distinct())
        )
        if not left:
            return []
        acceptances: dict[str, list[tuple[Moment, bool]]] = defaultdict(list)
        mass_changes: dict[str, list[LotChange]] = defaultdict(list)
        facts: dict[str, Any] = {}
        transforms = Transformation.__table__
        for chunk in _chunks(left):
            for row in connection.execute(
                select(site_moves)
                .where(site_moves.c.lot_id.in_(chunk))
                .order_by(site_moves.c.block_number, site_moves.c.tx_index)
            ):
                acceptances[row.lot_id].append(((row.block_number, row.tx_index), bool(row.by_site)))
            for row in connection.execute(
                select(
                    inputs.c.lot_id,
                    inputs.c.block_number,
                    inputs.c.tx_index,
                    inputs.c.mass_g,
                    transforms.c.site,
                )
                .join(transforms, transforms.c.transform_id == inputs.c.transform_id)
                .where(inputs.c.lot_id.in_(chunk))
            ):
                kind: ChangeKind = "processed_here" if row.site == site else "processed_elsewhere"
                mass_changes[row.lot_id].append(
                    LotChange((row.block_number, row.tx_index), -row.mass_g, kind)
                )
            for row in connection.execute(
                select(
                    corrections.c.lot_id,
                    corrections.c.block_number,
                    corrections.c.tx_index,
                    corrections.c.adjustment_g,
                ).where(corrections.c.lot_id.in_(chunk))
            ):
                mass_changes[row.lot_id].append(
                    LotChange((row.block_number, row.tx_index), row.adjustment_g, "corrected")
                )
            for row in connection.execute(
                select(
                    lots.c.lot_id, lots.c.block_number, lots.c.tx_index, lots.c.mass_g, lots.c.remaining_g
                ).where(lots.c.lot_id.in_(chunk))
            ):
                facts[row.lot_id] = row
        return [
            LotCustody(
                lot_id,
                (facts[lot_id].block_number, facts[lot_id].tx_index),
                facts[lot_id].mass_g,
                facts[lot_id].remaining_g,
                tuple(acceptances[lot_id]),
                tuple(sorted(mass_changes[lot_id], key=lambda change: change.at)),
            )
            for lot_id in left
        ]

    def site_account(
        self,
        site: str,
        from_block: int,
        to_block: int,
        period: Period | None,
        tolerance_ppm: int,
        roles: SiteRoles,
    ) -> SiteAccount:
        """The site's account over the blocks, with every stock count recorded in them compared
        with the book stock just before the count's transaction."""
        balance = self.mass_balance(site, from_block, to_block, roles)
        counts = StockCount.__table__
        with self._connect() as connection:
            rows = connection.execute(
                select(counts)
                .where(counts.c.site == site, *_between(counts.c.block_number, from_block, to_block))
                .order_by(counts.c.block_number, counts.c.tx_index, counts.c.log_index)
            ).all()
            outside = self._custody_left(connection, site, roles) if rows else []
            checks = tuple(
                StockCheck(
                    counted_g=row.counted_g,
                    book_g=self._stock_before(connection, site, row.block_number, row.tx_index)
                    - outside_stock(outside, (row.block_number, row.tx_index)),
                    counted_at=row.counted_at,
                    counted_by=row.counted_by,
                    record_hash=row.record_hash,
                    tolerance_ppm=tolerance_ppm,
                    coordinates=_coordinates(row),
                )
                for row in rows
            )
        return SiteAccount.of(balance, period, checks, tolerance_ppm)

    @staticmethod
    def _stock_before(connection: Connection, site: str, block: int, tx_index: int) -> int:
        """What every lot of the site held after every transaction before (block, tx_index)."""
        site_lot = select(lots.c.lot_id).where(lots.c.site == site)

        def total(column: Any, table: Any, *where: ColumnElement[bool]) -> int:
            before = tuple_(table.c.block_number, table.c.tx_index) < tuple_(
                literal(block, Integer()), literal(tx_index, Integer())
            )
            return int(
                connection.scalar(select(func.coalesce(func.sum(column), 0)).where(before, *where)) or 0
            )

        return (
            total(lots.c.mass_g, lots, lots.c.site == site)
            - total(inputs.c.mass_g, inputs, inputs.c.lot_id.in_(site_lot))
            + total(corrections.c.adjustment_g, corrections, corrections.c.lot_id.in_(site_lot))
        )

    def device(self, address: str) -> DeviceFact | None:
        """A device by its address (any case), active or revoked; None if never added."""
        with self._connect() as connection:
            row = connection.execute(
                select(Device.__table__).where(func.lower(Device.device) == address.lower())
            ).one_or_none()
        return None if row is None else _device(row)

    def devices(self, site: str) -> list[DeviceFact]:
        """Every device ever added at a site, in the order added."""
        table = Device.__table__
        with self._connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.site == site).order_by(table.c.block_number, table.c.log_index)
            )
            return [_device(row) for row in rows]

    def deployment_block(self) -> int | None:
        """The block the mirrored registry was deployed in (None before the indexer's first run)."""
        with self._connect() as connection:
            block: int | None = connection.scalar(select(ChainMirror.deployment_block))
            return block


class RequestReads(ReadQueries):
    """Queries on the one connection that `with reads:` opens (and closes), refusing to run
    outside it: a request's reads take one pool checkout, and (on SQLite) one snapshot."""

    def __enter__(self) -> Self:
        connection = self._engine.connect()
        if connection.dialect.name == "postgresql":
            # at READ COMMITTED each statement reads its own snapshot, in a transaction or not:
            # one around a read's statements added only its BEGIN and ROLLBACK round trips
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        self._connection = connection
        return self

    def __exit__(self, *_exc: object) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _connect(self) -> AbstractContextManager[Connection]:
        if self._connection is None:
            raise RuntimeError("these reads run inside `with reads:` only")
        return super()._connect()


def _device(row: Any) -> DeviceFact:
    revoked = (
        None
        if row.revoked_block_number is None
        else Coordinates(
            row.revoked_block_number,
            row.revoked_block_hash,
            row.revoked_tx_hash,
            row.revoked_tx_index,
            row.revoked_log_index,
        )
    )
    return DeviceFact(
        row.device, row.site, row.kind, row.added_by, row.active, _coordinates(row), row.revoked_by, revoked
    )


def _between(column: Any, first: int | None, last: int | None) -> list[ColumnElement[bool]]:
    bounds: list[ColumnElement[bool]] = []
    if first is not None:
        bounds.append(column >= first)
    if last is not None:
        bounds.append(column <= last)
    return bounds
