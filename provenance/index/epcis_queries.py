"""The EPCIS query interface's reads: events chosen by a parsed `EventQuery`
(`provenance.epcis.query`), in keyset pages in chain order; business locations; named queries.

Each kind of event (`epcis_query.KINDS`) is one indexed SELECT over the table its facts come from,
ordered by chain coordinates and limited to a page (and one more, to know whether a next page
exists); the kinds' pages are merged by (block, transaction, log, part). Times become block bounds
through the stored block times (which never decrease with the block number), so a time window is
an index range; record times are the blocks' `record_times`. Nothing here asks the node.

While the events the indexer stored (`epcis_ids_store`) were made with this deployment's
identifiers and this code's mapping, each kind's SELECT joins them by key: a page is index lookups
and the stored texts, with nothing built or hashed; otherwise every event is built from its facts
and hashed, slower and never stale. EventIDs are chosen through the stored ones' index; without
them, a query naming eventIDs reads in larger batches and keeps the events whose hash matches.
"""

from __future__ import annotations

import datetime
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
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
    error_declaration,
    event_of,
    lots_named,
)
from provenance.epcis.ids import LOCAL_SCHEME, IdentifierScheme, LotNumber
from provenance.epcis.query import (
    ACCEPTED,
    ASSAYED,
    DECLARED_REGISTRATION,
    KINDS,
    OFFERED,
    REGISTERED,
    TRANSFORMED,
    VOIDED,
    EventQuery,
    Key,
    Kind,
    ResourceAlreadyExistsException,
    interpret,
)
from provenance.index.epcis_documents import current_fingerprints, event_text, with_record_time
from provenance.index.epcis_facts import (
    assays,
    corrections,
    inputs,
    lot_record,
    lots,
    moves,
    transformations,
)
from provenance.index.epcis_models import EpcisEventId, EpcisIdScheme, NamedQuery, RecordTime
from provenance.index.models import (
    BlockTime,
    ChainMirror,
)

block_times = BlockTime.__table__
record_times = RecordTime.__table__
named_queries = NamedQuery.__table__
event_ids = EpcisEventId.__table__
id_schemes = EpcisIdScheme.__table__

_chains: dict[str, Chain] = {}
SCAN_BATCH = 500
"""Events read at a time while looking for eventIDs."""
IN_CHUNK = 500


class Found(NamedTuple):
    """An event a query found (a tuple: a page makes a hundred of them)."""

    key: Key
    kind: Kind
    fact: Fact | None
    """None when the event was read as the indexer stored it (`text`)."""
    text: str | None = None
    """The stored event as the answer writes it (with its recordTime)."""


@dataclass(frozen=True)
class EventPage:
    texts: list[str]
    """Each event as the answer writes it (compact JSON, with its recordTime)."""
    next_key: Key | None
    """Where the next page starts (None on the last page)."""
    keys: tuple[Key, ...] = ()
    """Each event's key in chain order (a declaration's is its correction's): what a query
    subscription delivers by (`provenance.deliveries.epcis_stream`)."""

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(text) for text in self.texts]


@dataclass(frozen=True)
class _Bounds:
    """A query's times as blocks: `first` included, `before` excluded; `empty` when none can match."""

    first: int | None = None
    before: int | None = None
    empty: bool = False


def _coordinates(row: Any, prefix: str = "") -> Coordinates:
    return Coordinates(
        getattr(row, prefix + "block_number"),
        getattr(row, prefix + "block_hash"),
        getattr(row, prefix + "tx_hash"),
        getattr(row, prefix + "tx_index"),
        getattr(row, prefix + "log_index"),
    )


def _after(table: Any, key: Key | None, part: int) -> list[ColumnElement[bool]]:
    """Rows after `key` in chain order, for a kind whose events have `part`."""
    if key is None:
        return []
    block, tx_index, log_index, key_part = key
    # the same coordinates come after the key only for a later part of the same correction
    later_log = table.c.log_index >= log_index if part > key_part else table.c.log_index > log_index
    return [
        table.c.block_number >= block,
        or_(
            table.c.block_number > block,
            table.c.tx_index > tx_index,
            and_(table.c.tx_index == tx_index, later_log),
        ),
    ]


def _within(column: Any, bounds: _Bounds) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if bounds.first is not None:
        found.append(column >= bounds.first)
    if bounds.before is not None:
        found.append(column < bounds.before)
    return found


class EpcisQueries:
    """Reads on one connection (the request's)."""

    def __init__(self, connection: Connection, scheme: IdentifierScheme = LOCAL_SCHEME) -> None:
        self._connection = connection
        self._scheme = scheme
        self._stored_current: bool | None = None
        self._short = False
        """Whether a SELECT of stored events found fewer rows than its limit."""

    # ------------------------------------------------------------------ events

    def chain(self) -> Chain | None:
        """The chain the index mirrors; kept once known (a database never mirrors another one:
        the indexer refuses it), so a read does not ask for it again."""
        database = self._connection.engine.url.render_as_string(hide_password=True)
        known = _chains.get(database)
        if known is not None:
            return known
        row = self._connection.execute(
            select(ChainMirror.chain_id, ChainMirror.registry_address)
        ).one_or_none()
        if row is None:
            return None
        found = _chains[database] = Chain(int(row.chain_id), str(row.registry_address))
        return found

    def page(self, query: EventQuery, *, per_page: int | None = None) -> EventPage:
        """A page of the events matching `query`, after `query.after`, in chain order."""
        size = query.per_page if per_page is None else per_page
        query = interpret(query, self._scheme, self.resolve)
        kinds = query.kinds()
        chain = self.chain() if kinds else None
        if chain is None:
            return EventPage([], None)
        event_blocks = self._bounds(query.event_from, query.event_before)
        declared_blocks = self._bounds(query.declared_from, query.declared_before)
        if event_blocks.empty or declared_blocks.empty:
            return EventPage([], None)
        # the stored events' SELECTs check their fingerprints themselves (`_joined`); a query
        # choosing by eventID looks them up first, so it checks first
        stored = self.stored_current() if query.post_filtered else self._stored_current is not False
        keys = _Bounds()
        if stored and query.post_filtered:
            # the eventIDs are stored: the blocks that hold them bound the candidates
            blocks = self._blocks_of(query)
            if not blocks:
                return EventPage([], None)
            keys = _Bounds(min(blocks), max(blocks) + 1)
        batch = max(size + 1, SCAN_BATCH) if query.post_filtered else size + 1
        kept: list[tuple[Key, str]] = []
        after = query.after
        while len(kept) <= size:
            self._short = False
            found = self._candidates(query, kinds, after, batch, event_blocks, declared_blocks, keys, stored)
            if stored and self._short and not self.stored_current(again=True):
                # a SELECT found fewer than it asked for, and the stored events are not this
                # deployment's (or are being stored anew): build them. (A refresh that records
                # this deployment's fingerprints between two of a page's SELECTs could leave one
                # kind out of that one page; never an event of other identifiers in it.)
                stored = False
                found = self._candidates(query, kinds, after, batch, event_blocks, declared_blocks, keys)
            texts = (
                [_text_of(item) for item in found]
                if stored
                else [event_text(event) for event in self._events(found, chain)]
            )
            for item, text in zip(found, texts, strict=True):
                if not query.post_filtered or query.keeps(json.loads(text)):
                    kept.append((item.key, text))
            if len(found) < batch or not query.post_filtered:
                break
            after = found[-1].key
        if len(kept) > size:
            return EventPage(
                [text for _, text in kept[:size]], kept[size - 1][0], tuple(key for key, _ in kept[:size])
            )
        return EventPage([text for _, text in kept], None, tuple(key for key, _ in kept))

    def _bounds(self, first_time: int | None, before_time: int | None) -> _Bounds:
        """Times as blocks: the first dated block at or after each time (block times never
        decrease, and only blocks with events are dated), both in one SELECT."""
        times = [time_ for time_ in (first_time, before_time) if time_ is not None]
        if not times:
            return _Bounds()
        found = iter(self._connection.execute(select(*(_first_block_at(time_) for time_ in times))).one())
        first = next(found) if first_time is not None else None
        before = next(found) if before_time is not None else None
        if first_time is not None and first is None:
            return _Bounds(empty=True)
        return _Bounds(first, before)

    def _candidates(
        self,
        query: EventQuery,
        kinds: Sequence[Kind],
        after: Key | None,
        limit: int,
        event_blocks: _Bounds,
        declared_blocks: _Bounds,
        keys: _Bounds | None = None,
        stored: bool = False,
    ) -> list[Found]:
        """One SELECT per table the kinds come from (custody steps and corrections carry several
        kinds each), merged in chain order; `keys` bounds the block of each event's key (a
        correction's two events are at the correction's block). `stored`: each SELECT joins the
        stored events instead of reading facts."""
        found: list[Found] = []
        chosen = set(kinds)
        keyed = event_blocks if keys is None else _both(event_blocks, keys)
        for kind in (REGISTERED, TRANSFORMED, ASSAYED):
            if kind in chosen:
                found.extend(self._kind(kind, query, after, limit, keyed, stored))
        steps = [kind for kind in (OFFERED, ACCEPTED) if kind in chosen]
        if steps:
            found.extend(self._custody(steps, query, after, limit, keyed, stored))
        corrective = [kind for kind in kinds if kind.declaration or kind.part]
        if corrective:
            # a declaration's event time is the declared event's: `event_blocks` still bounds
            # that; the keys bound the correction's own block
            correction_blocks = declared_blocks if keys is None else _both(declared_blocks, keys)
            found.extend(
                self._corrections(corrective, query, after, limit, event_blocks, correction_blocks, stored)
            )
        found.sort(key=lambda item: item.key)
        return found[:limit]

    def _recorded(self, column: Any, query: EventQuery) -> list[ColumnElement[bool]]:
        if query.record_from_ms is None and query.record_before_ms is None:
            return []
        bounds = []
        if query.record_from_ms is not None:
            bounds.append(record_times.c.recorded_ms >= query.record_from_ms)
        if query.record_before_ms is not None:
            bounds.append(record_times.c.recorded_ms < query.record_before_ms)
        return [column.in_(select(record_times.c.number).where(*bounds))]

    @staticmethod
    def _lot_filters(column: Any, query: EventQuery) -> list[ColumnElement[bool]]:
        """An ObjectEvent's one lot (its quantityList) against MATCH_epcClass / MATCH_anyEPCClass."""
        return [column.in_(sorted(lots_)) for lots_ in (query.lots, query.any_lots) if lots_ is not None]

    def _transformation_filters(self, column: Any, query: EventQuery) -> list[ColumnElement[bool]]:
        """A transformation (its id in `column`) against the MATCH_ parameters on its lists. The
        transformations that consumed or made the lots are looked up first, by the lots' indexes:
        an OR of subqueries in the page's own SELECT made PostgreSQL scan every transformation."""
        chosen: set[int] | None = None

        def narrow(found: set[int]) -> None:
            nonlocal chosen
            chosen = found if chosen is None else chosen & found

        if query.input_lots is not None:
            narrow(self._touching(query.input_lots, consumed=True, made=False))
        if query.output_lots is not None:
            narrow(self._touching(query.output_lots, consumed=False, made=True))
        if query.any_lots is not None:
            narrow(self._touching(query.any_lots, consumed=True, made=True))
        if query.transform_ids is not None:
            narrow(set(query.transform_ids))
        return [] if chosen is None else [column.in_(sorted(chosen))]

    def _touching(self, lot_ids: frozenset[str], *, consumed: bool, made: bool) -> set[int]:
        """The transformations that consumed or made (or either) some lots, in one SELECT."""
        if not lot_ids:
            return set()
        wanted = sorted(lot_ids)
        parts = []
        if consumed:
            parts.append(select(inputs.c.transform_id).where(inputs.c.lot_id.in_(wanted)))
        if made:
            parts.append(
                select(lots.c.transform_id).where(lots.c.lot_id.in_(wanted), lots.c.transform_id.is_not(None))
            )
        statement = parts[0] if len(parts) == 1 else union_all(*parts)
        return {row[0] for row in self._connection.execute(statement)}

    def _kind(
        self,
        kind: Kind,
        query: EventQuery,
        after: Key | None,
        limit: int,
        event_blocks: _Bounds,
        stored: bool = False,
    ) -> list[Found]:
        table = {REGISTERED: lots, TRANSFORMED: transformations, ASSAYED: assays}[kind]
        conditions = [
            *_after(table, after, kind.part),
            *_within(table.c.block_number, event_blocks),
            *self._recorded(table.c.block_number, query),
        ]
        if kind is REGISTERED:
            conditions.append(lots.c.origin == "registered")
        if kind.located and query.sites is not None:
            conditions.append(table.c.site.in_(sorted(query.sites)))
        if kind.transformation:
            conditions.extend(self._transformation_filters(table.c.transform_id, query))
        else:
            conditions.extend(self._lot_filters(table.c.lot_id, query))
        if stored:
            return [_stored(row, kind) for row in self._joined(table, conditions, limit, kind.part)]
        rows = self._ordered(table, conditions, limit)
        if kind is TRANSFORMED:
            facts: list[Fact] = list(self._transformations(rows))
        else:
            facts = [self._fact(kind, row) for row in rows]
        return [Found((*_key(fact.at), kind.part), kind, fact) for fact in facts]

    def _ordered(self, table: Any, conditions: list[ColumnElement[bool]], limit: int) -> Sequence[Any]:
        return self._connection.execute(
            select(table)
            .where(*conditions)
            .order_by(table.c.block_number, table.c.tx_index, table.c.log_index)
            .limit(limit)
        ).all()

    def _joined(
        self,
        table: Any,
        conditions: list[ColumnElement[bool]],
        limit: int,
        part: int | ColumnElement[bool],
        *columns: Any,
        joined: Any = None,
    ) -> Sequence[Any]:
        """The rows of `table` matching `conditions` in chain order, each as its key, the stored
        event of its key and `part` (a number, or a condition on `event_ids.c.part`) and when its
        block was recorded, with `columns`; `joined` is `table` with what the conditions join.

        None unless the stored events are this deployment's (`stored_fingerprints`), checked in
        the same statement: the indexer deletes the fingerprints with the events it stores anew,
        and records them only once all are stored, so a statement that finds them finds only
        events made with them."""
        fingerprint, mapping = current_fingerprints(self._scheme)
        current = (
            exists()
            .where(
                id_schemes.c.id == 1, id_schemes.c.fingerprint == fingerprint, id_schemes.c.mapping == mapping
            )
            .correlate(None)
        )
        on_part = event_ids.c.part == part if isinstance(part, int) else part
        source = (table if joined is None else joined).join(
            event_ids,
            and_(
                event_ids.c.block_number == table.c.block_number,
                event_ids.c.tx_index == table.c.tx_index,
                event_ids.c.log_index == table.c.log_index,
                on_part,
            ),
        )
        # a lookup per row: as a join, PostgreSQL merged it from the table's first block
        recorded = (
            select(record_times.c.recorded_ms)
            .where(record_times.c.number == table.c.block_number)
            .scalar_subquery()
        )
        rows = self._connection.execute(
            select(
                table.c.block_number,
                table.c.tx_index,
                table.c.log_index,
                event_ids.c.part,
                event_ids.c.document,
                recorded,
                *columns,
            )
            .select_from(source)
            .where(current, *conditions)
            .order_by(table.c.block_number, table.c.tx_index, table.c.log_index, event_ids.c.part)
            .limit(limit)
        ).all()
        self._short |= len(rows) < limit
        return rows

    def _custody(
        self,
        kinds: Sequence[Kind],
        query: EventQuery,
        after: Key | None,
        limit: int,
        event_blocks: _Bounds,
        stored: bool = False,
    ) -> list[Found]:
        """Handover offers (shipping) and acceptances (receiving), from one table."""
        actions = {OFFERED: "offered", ACCEPTED: "accepted"}
        conditions = [
            moves.c.action.in_([actions[kind] for kind in kinds]),
            *_after(moves, after, 0),
            *_within(moves.c.block_number, event_blocks),
            *self._recorded(moves.c.block_number, query),
            *self._lot_filters(moves.c.lot_id, query),
        ]
        kind_of = {"offered": OFFERED, "accepted": ACCEPTED}
        if stored:
            rows = self._joined(moves, conditions, limit, 0, moves.c.action)
            return [_stored(row, kind_of[row.action]) for row in rows]
        rows = self._ordered(moves, conditions, limit)
        return [
            Found((*_key(_coordinates(row)), 0), kind_of[row.action], self._fact(OFFERED, row))
            for row in rows
        ]

    @staticmethod
    def _fact(kind: Kind, row: Any) -> Fact:
        at = _coordinates(row)
        if kind is REGISTERED:
            return Registered(row.lot_id, row.site, row.mass_g, at, lot_record(row))
        if kind is ASSAYED:
            return Assayed(
                row.lot_id,
                row.lab,
                row.grade_ppm,
                row.method,
                row.certificate_hash,
                row.assayed_at,
                at,
                row.signature,
            )
        return CustodyStep(row.lot_id, row.action, row.from_address, row.to_address, at)

    def _corrections(
        self,
        kinds: Sequence[Kind],
        query: EventQuery,
        after: Key | None,
        limit: int,
        event_blocks: _Bounds,
        declared_blocks: _Bounds,
        stored: bool = False,
    ) -> list[Found]:
        """A correction's two events, from one SELECT that says which kinds each row gives: the
        declaration (a copy of the event that made the lot, at that event's time) and the
        corrective event (at the correction's time). Stored events are joined by part, a row for
        each event a wanted kind gives."""
        made = lots.alias("made")
        wanted = {
            kind: and_(*self._correction_conditions(kind, made, query, after, event_blocks)) for kind in kinds
        }
        labels = [case((condition, 1), else_=0).label(kind.name) for kind, condition in wanted.items()]
        if stored:
            joined = self._joined(
                corrections,
                [
                    *self._recorded(corrections.c.block_number, query),
                    *_within(corrections.c.block_number, declared_blocks),
                ],
                limit,
                or_(*(and_(event_ids.c.part == kind.part, condition) for kind, condition in wanted.items())),
                *labels,
                joined=corrections.join(made, made.c.lot_id == corrections.c.lot_id),
            )
            return [
                _stored(
                    row, next(kind for kind in kinds if kind.part == row.part and getattr(row, kind.name))
                )
                for row in joined
            ]
        rows = self._connection.execute(
            select(corrections, *labels)
            .join(made, made.c.lot_id == corrections.c.lot_id)
            .where(
                or_(*wanted.values()),
                *self._recorded(corrections.c.block_number, query),
                *_within(corrections.c.block_number, declared_blocks),
            )
            .order_by(corrections.c.block_number, corrections.c.tx_index, corrections.c.log_index)
            .limit(limit)
        ).all()
        found = []
        for row, fact in zip(rows, self._corrected(rows), strict=True):
            for kind in kinds:
                if getattr(row, kind.name):
                    found.append(Found((*_key(fact.at), kind.part), kind, fact))
        return found

    def _correction_conditions(
        self, kind: Kind, made: Any, query: EventQuery, after: Key | None, event_blocks: _Bounds
    ) -> list[ColumnElement[bool]]:
        conditions = _after(corrections, after, kind.part)
        if not kind.declaration:
            reason = "did_not_occur" if kind is VOIDED else "incorrect_data"
            return [
                *conditions,
                corrections.c.reason == reason,
                *_within(corrections.c.block_number, event_blocks),
                *self._lot_filters(corrections.c.lot_id, query),
            ]
        conditions.extend(_within(made.c.block_number, event_blocks))
        if query.error_reasons is not None:
            conditions.append(corrections.c.reason.in_(sorted(query.error_reasons)))
        if kind is DECLARED_REGISTRATION:
            conditions.append(made.c.transform_id.is_(None))
            conditions.extend(self._lot_filters(corrections.c.lot_id, query))
            if query.sites is not None:
                conditions.append(made.c.site.in_(sorted(query.sites)))
            return conditions
        conditions.append(made.c.transform_id.is_not(None))
        conditions.extend(self._transformation_filters(made.c.transform_id, query))
        if query.sites is not None:
            conditions.append(
                made.c.transform_id.in_(
                    select(transformations.c.transform_id).where(
                        transformations.c.site.in_(sorted(query.sites))
                    )
                )
            )
        return conditions

    def _corrected(self, rows: Sequence[Any]) -> list[Corrected]:
        if not rows:
            return []
        made = {
            row.lot_id: row
            for row in self._connection.execute(
                select(lots).where(lots.c.lot_id.in_(sorted({row.lot_id for row in rows})))
            )
        }
        transform_ids = sorted({lot.transform_id for lot in made.values() if lot.transform_id is not None})
        by_id = {
            fact.transform_id: fact
            for fact in self._transformations(
                self._connection.execute(
                    select(transformations).where(transformations.c.transform_id.in_(transform_ids))
                ).all()
                if transform_ids
                else []
            )
        }
        found = []
        for row in rows:
            lot = made[row.lot_id]
            original: Registered | Transformed = (
                Registered(lot.lot_id, lot.site, lot.mass_g, _coordinates(lot), lot_record(lot))
                if lot.transform_id is None
                else by_id[lot.transform_id]
            )
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

    def _transformations(self, rows: Sequence[Any]) -> list[Transformed]:
        ids = [row.transform_id for row in rows]
        consumed: dict[int, list[tuple[str, int]]] = defaultdict(list)
        produced: dict[int, list[tuple[str, int]]] = defaultdict(list)
        records: dict[int, list[LotRecord]] = defaultdict(list)
        if ids:
            # inputs and outputs in one SELECT: `side` 0 for what was consumed, 1 for what was made
            both = union_all(
                select(
                    literal(0).label("side"),
                    inputs.c.transform_id,
                    inputs.c.lot_id,
                    inputs.c.mass_g,
                    inputs.c.log_index,
                    cast(null(), String).label("commodity"),
                    cast(null(), Integer).label("grade_ppm"),
                    cast(null(), String).label("record_hash"),
                ).where(inputs.c.transform_id.in_(ids)),
                select(
                    literal(1).label("side"),
                    lots.c.transform_id,
                    lots.c.lot_id,
                    lots.c.mass_g,
                    lots.c.log_index,
                    lots.c.commodity,
                    lots.c.grade_ppm,
                    lots.c.record_hash,
                ).where(lots.c.transform_id.in_(ids)),
            ).subquery()
            for row in self._connection.execute(select(both).order_by(both.c.side, both.c.log_index)):
                (produced if row.side else consumed)[row.transform_id].append((row.lot_id, row.mass_g))
                if row.side:
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

    def names(self, facts: Iterable[Fact]) -> Names:
        """The deployment's names for the events of `facts` (with the lots' commodities when its
        GS1 identifiers need them: one SELECT)."""
        if not self._scheme.needs_commodities:
            return Names(self._scheme)
        wanted = sorted(lots_named(facts))
        commodities: dict[str, str] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            rows = self._connection.execute(
                select(lots.c.lot_id, lots.c.commodity).where(
                    lots.c.lot_id.in_(wanted[start : start + IN_CHUNK])
                )
            )
            commodities.update({row.lot_id: row.commodity for row in rows})
        return Names(self._scheme, commodities)

    def resolve(self, numbers: Iterable[LotNumber], kind: str) -> dict[LotNumber, set[str]]:
        """The lots (or, `kind` "site", sites) whose GS1 lot number (GLN extension) is each of
        `numbers`: the ids starting with one of a number's prefixes, hashed to compare."""
        found: dict[LotNumber, set[str]] = {}
        for number in numbers:
            column = lots.c.lot_id if kind == "lot" else lots.c.site
            candidates: set[str] = set()
            for prefix in number.prefixes():
                columns = [column] if kind == "lot" else [lots.c.site, transformations.c.site]
                for searched in columns:
                    statement = (
                        select(searched).distinct().where(searched.startswith(prefix, autoescape=True))
                    )
                    candidates.update(row[0] for row in self._connection.execute(statement))
            found[number] = {label for label in candidates if number.names(label)}
        return found

    def _events(self, found: Sequence[Found], chain: Chain, *, recorded: bool = True) -> list[dict[str, Any]]:
        """The EPCIS events of `found`, built from their facts and hashed, each with its
        `recordTime` where the index has it (`recorded`)."""
        facts = [_fact_of(item) for item in found]
        blocks = {fact.at.block_number for fact in facts}
        blocks |= {fact.original.at.block_number for fact in facts if isinstance(fact, Corrected)}
        times, recorded_at = self._times(blocks)
        names = self.names(facts)
        events = []
        for item, fact in zip(found, facts, strict=True):
            block = fact.at.block_number
            event = event_of(fact, chain, times[block], names)
            if item.kind.declaration:
                assert isinstance(fact, Corrected)
                original = event_of(fact.original, chain, times[fact.original.at.block_number], names)
                event = error_declaration(original, times[block], fact.reason, [event["eventID"]])
            if recorded and block in recorded_at:
                event["recordTime"] = record_time(recorded_at[block])
            events.append(event)
        return events

    # ------------------------------------------------------------------ stored events

    def stored_current(self, *, again: bool = False) -> bool:
        """Whether the stored events were made with this deployment's identifiers and this code's
        mapping (never serve others: with other fingerprints, or none yet, every read builds and
        hashes); read once per connection unless `again`."""
        if self._stored_current is None or again:
            self._stored_current = stored_fingerprints(self._connection) == current_fingerprints(self._scheme)
        return self._stored_current

    def _blocks_of(self, query: EventQuery) -> set[int]:
        """The blocks whose events carry the eventIDs (or corrective eventIDs) a query names."""
        chosen: set[int] | None = None
        for wanted in (query.event_ids, query.corrective_ids):
            if wanted is None:
                continue
            blocks = {
                row[0]
                for row in self._connection.execute(
                    select(event_ids.c.block_number)
                    .distinct()
                    .where(event_ids.c.event_id.in_(sorted(wanted)))
                )
            }
            chosen = blocks if chosen is None else chosen & blocks
        return chosen or set()

    def found_in_blocks(self, first: int, last: int) -> list[Found]:
        """Every event whose key is in blocks `first`..`last` (a correction's two at its block):
        what the indexer stores the eventIDs of."""
        query = EventQuery(interpreted=True)
        blocks = _Bounds(first, last + 1)
        every = 1 << 62
        found: list[Found] = []
        for kind in (REGISTERED, TRANSFORMED, ASSAYED):
            found.extend(self._kind(kind, query, None, every, blocks))
        found.extend(self._custody([OFFERED, ACCEPTED], query, None, every, blocks))
        corrective = [kind for kind in KINDS if kind.declaration or kind.part]
        found.extend(self._corrections(corrective, query, None, every, _Bounds(), blocks))
        found.sort(key=lambda item: item.key)
        return found

    def events_with_ids(self, found: Sequence[Found], chain: Chain) -> list[dict[str, Any]]:
        """The events of `found` as the indexer stores them: built, hashed, no recordTime."""
        return self._events(found, chain, recorded=False)

    def _times(self, blocks: Iterable[int]) -> tuple[dict[int, int], dict[int, int]]:
        """Block times and record times of `blocks`, in one SELECT per chunk."""
        wanted = sorted(blocks)
        times: dict[int, int] = {}
        recorded: dict[int, int] = {}
        for chosen in _block_sets(block_times.c.number, wanted):
            rows = self._connection.execute(
                select(block_times.c.number, block_times.c.timestamp, record_times.c.recorded_ms)
                .outerjoin(record_times, record_times.c.number == block_times.c.number)
                .where(chosen)
            )
            for number, timestamp, recorded_ms in rows:
                times[number] = timestamp
                if recorded_ms is not None:
                    recorded[number] = recorded_ms
        return times, recorded

    # ------------------------------------------------------------------ collections

    def sites(self, after: str | None, limit: int) -> list[str]:
        """Sites of lots and transformations (the business locations of our events), in order:
        one index probe per site, so a page costs the same at a million lots."""
        found: list[str] = []
        last = after
        while len(found) < limit:
            candidates = [
                self._connection.scalar(
                    select(func.min(table.c.site)).where(*([] if last is None else [table.c.site > last]))
                )
                for table in (lots, transformations)
            ]
            present = [site for site in candidates if site is not None]
            if not present:
                break
            last = min(present)
            found.append(last)
        return found


def stored_fingerprints(connection: Connection) -> tuple[str, str] | None:
    """The fingerprints (identifiers, mapping) the stored events were made with; None if none."""
    row = connection.execute(
        select(id_schemes.c.fingerprint, id_schemes.c.mapping).where(id_schemes.c.id == 1)
    ).one_or_none()
    return None if row is None else (str(row.fingerprint), str(row.mapping))


def _stored(row: Any, kind: Kind) -> Found:
    """A row of `EpcisQueries._joined` as the stored event it found, with its recordTime."""
    block, tx_index, log_index, part, document, recorded_ms = row[:6]
    text = document if recorded_ms is None else with_record_time(document, record_time(recorded_ms))
    return Found((block, tx_index, log_index, part), kind, None, text)


def _text_of(item: Found) -> str:
    assert item.text is not None, "an event built from facts has no stored text"
    return item.text


def _first_block_at(timestamp: int) -> Any:
    # block times never decrease with the number: the first by time is the first by number,
    # and (timestamp, number) order walks the timestamp index from its first match only
    return (
        select(block_times.c.number)
        .where(block_times.c.timestamp >= timestamp)
        .order_by(block_times.c.timestamp, block_times.c.number)
        .limit(1)
        .scalar_subquery()
    )


def _fact_of(item: Found) -> Fact:
    assert item.fact is not None, "an event read as stored has no facts to build it from"
    return item.fact


DENSE = 8
"""Blocks read per block wanted, at most, for a range to beat a list of numbers (a page's blocks
are mostly close together: a range binds two parameters, not a hundred)."""


def _block_sets(column: Any, wanted: Sequence[int]) -> list[ColumnElement[bool]]:
    """Conditions that together select the blocks `wanted` (sorted), and maybe some beside."""
    if not wanted:
        return []
    if wanted[-1] - wanted[0] + 1 <= DENSE * len(wanted):
        return [column.between(wanted[0], wanted[-1])]
    return [column.in_(wanted[start : start + IN_CHUNK]) for start in range(0, len(wanted), IN_CHUNK)]


def _both(first: _Bounds, second: _Bounds) -> _Bounds:
    """Blocks within both bounds."""
    if first.empty or second.empty:
        return _Bounds(empty=True)
    starts = [bound for bound in (first.first, second.first) if bound is not None]
    ends = [bound for bound in (first.before, second.before) if bound is not None]
    return _Bounds(max(starts) if starts else None, min(ends) if ends else None)


@lru_cache(maxsize=8192)
def record_time(milliseconds: int) -> str:
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{milliseconds % 1000:03d}Z"


def _key(at: Coordinates) -> tuple[int, int, int]:
    return at.block_number, at.tx_index, at.log_index


# ---------------------------------------------------------------------- named queries


@dataclass(frozen=True)
class StoredQuery:
    name: str
    query: dict[str, Any]
    created_by: str


class NamedQueries:
    """Named queries in SQL; each method is one short transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, name: str, query: dict[str, Any], created_by: str) -> None:
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(NamedQuery).values(
                        name=name, query=query, created_by=created_by, created_at=time.time()
                    )
                )
        except IntegrityError:
            raise ResourceAlreadyExistsException(f"a query named {name!r} exists", "name") from None

    def get(self, name: str) -> StoredQuery | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(named_queries).where(named_queries.c.name == name)).one_or_none()
        return None if row is None else StoredQuery(row.name, dict(row.query), row.created_by)

    def page(self, after: str | None, limit: int) -> list[StoredQuery]:
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(named_queries)
                .where(*([] if after is None else [named_queries.c.name > after]))
                .order_by(named_queries.c.name)
                .limit(limit)
            ).all()
        return [StoredQuery(row.name, dict(row.query), row.created_by) for row in rows]

    def delete(self, name: str) -> bool:
        with self._engine.begin() as connection:
            deleted = connection.execute(delete(NamedQuery).where(named_queries.c.name == name))
        return bool(deleted.rowcount)
