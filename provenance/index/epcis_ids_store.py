"""Each EPCIS event, stored whole with its eventID when the indexer stores the event, so that reads
take it from the index instead of building and hashing it (`epcis_event_ids`, migrations 0012 and
0013).

An event is written with the deployment's identifiers (its eventID is the CBV 2.0 hash of the
event so written), and by this version of the mapping's code, so the events are stored with the
fingerprint of those identifiers and one of the mapping's output (`epcis_id_scheme`). The indexer
checks both at start-up (`current`): another fingerprint, or none (an empty index, or one from
before migration 0013), and it stops reads using them (`forget`), indexes up to the head without
storing events (a backfill's core rows do not wait for the hashing), then stores every event
(`refresh`) and records its fingerprints; until then reads find they are not theirs and build and
hash on the fly. From then on each range stores its events in its own transaction. A reorg's
rollback deletes the events of the blocks it undoes with the rest of their rows
(`store.DELETE_ORDER`), and the blocks indexed again get theirs in the same transaction.

A refresh stores the blocks in ascending order, each transaction a whole range of blocks, under a
row that names the fingerprints it stores for (`PENDING`), so one that was stopped (a crash, a
restart: at a million lots it takes a quarter of an hour) resumes after the last block it stored
instead of starting again; a rollback meanwhile deleted the events of the blocks it undid, so what
is left is still whole up to its last block. An index far behind the head at start-up catches up
the same way (`suspend`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from provenance.epcis.ids import IdentifierScheme
from provenance.index.epcis_documents import current_fingerprints, event_text
from provenance.index.epcis_models import EpcisEventId, EpcisIdScheme
from provenance.index.epcis_queries import EpcisQueries, stored_fingerprints
from provenance.index.models import BlockTime

log = logging.getLogger(__name__)

event_ids = EpcisEventId.__table__
id_schemes = EpcisIdScheme.__table__
block_times = BlockTime.__table__

COMPLETE = 1
"""The row of `epcis_id_scheme` that reads trust: every event is stored, with these fingerprints."""
PENDING = 2
"""The row of a refresh under way: the fingerprints it stores with (reads ignore it)."""

REFRESH_BLOCKS = 5_000
REFRESH_FIRST_BLOCKS = 64
REFRESH_EVENTS = 20_000
"""Blocks stored per transaction by `refresh`: from REFRESH_FIRST_BLOCKS, doubling while a
transaction holds fewer than a quarter of REFRESH_EVENTS events, shrinking when it holds more, at
most REFRESH_BLOCKS (as the indexer's ranges: a history that packs many events into each block is
stored in transactions of bounded size, memory)."""


def write_event_ids(connection: Connection, scheme: IdentifierScheme, first: int, last: int) -> int:
    """Stores the events of blocks `first`..`last`, with their eventIDs (replacing any stored
    there); returns how many."""
    queries = EpcisQueries(connection, scheme)
    found = queries.found_in_blocks(first, last)
    connection.execute(delete(EpcisEventId).where(EpcisEventId.block_number.between(first, last)))
    if not found:
        return 0
    chain = queries.chain()
    if chain is None:
        return 0
    made = queries.events_with_ids(found, chain)
    connection.execute(
        insert(EpcisEventId),
        [
            {
                "block_number": item.key[0],
                "tx_index": item.key[1],
                "log_index": item.key[2],
                "part": item.key[3],
                "event_id": event["eventID"],
                "document": event_text(event),
            }
            for item, event in zip(found, made, strict=True)
        ],
    )
    return len(found)


def current(engine: Engine, scheme: IdentifierScheme) -> bool:
    """Whether the stored events were made with `scheme` and this code's mapping."""
    with engine.connect() as connection:
        return stored_fingerprints(connection) == current_fingerprints(scheme)


def forget(engine: Engine, scheme: IdentifierScheme) -> None:
    """Stops reads using the stored events (they build and hash until `refresh`): deletes the
    events and their fingerprints, but keeps those of a refresh for `scheme` that was stopped, so
    that it resumes."""
    with engine.begin() as connection:
        connection.execute(delete(EpcisIdScheme).where(id_schemes.c.id == COMPLETE))
        if _fingerprints(connection, PENDING) != current_fingerprints(scheme):
            connection.execute(delete(EpcisIdScheme))
            connection.execute(delete(EpcisEventId))


def suspend(engine: Engine) -> None:
    """Makes the stored events a stopped refresh's: reads stop trusting them, and the next
    `refresh` goes on after the last block stored (an index far behind the head catches up
    without storing events range by range)."""
    with engine.begin() as connection:
        connection.execute(update(EpcisIdScheme).where(id_schemes.c.id == COMPLETE).values(id=PENDING))


def _fingerprints(connection: Connection, row_id: int) -> tuple[str, str] | None:
    row = connection.execute(
        select(id_schemes.c.fingerprint, id_schemes.c.mapping).where(id_schemes.c.id == row_id)
    ).one_or_none()
    return None if row is None else (str(row.fingerprint), str(row.mapping))


def refresh(
    engine: Engine, scheme: IdentifierScheme, progress: Callable[[int, int], None] | None = None
) -> int | None:
    """Stores every event anew if they were made with other identifiers or by another mapping (or
    none are stored yet), a few thousand blocks per transaction, then records the fingerprints;
    returns the events stored by this call (None when the stored ones are current). A refresh for
    the same fingerprints that was stopped is resumed after the last block it stored."""
    wanted = current_fingerprints(scheme)
    with engine.begin() as connection:
        if stored_fingerprints(connection) == wanted:
            return None
        bounds = connection.execute(
            # every block with an event is dated (an EPCIS event time is its block's)
            select(func.min(block_times.c.number), func.max(block_times.c.number))
        ).one()
        resumed_after = None
        if _fingerprints(connection, PENDING) == wanted:
            resumed_after = connection.scalar(select(func.max(event_ids.c.block_number)))
            log.info("resuming the storing of EPCIS events after block %s", resumed_after)
        else:
            connection.execute(delete(EpcisIdScheme))
            connection.execute(delete(EpcisEventId))
            connection.execute(
                insert(EpcisIdScheme), [{"id": PENDING, "fingerprint": wanted[0], "mapping": wanted[1]}]
            )
    total = 0
    if bounds[0] is not None:
        first, last = int(bounds[0]), int(bounds[1])
        start, span = first, REFRESH_FIRST_BLOCKS
        if resumed_after is not None:
            start = max(first, int(resumed_after) + 1)
        while start <= last:
            end = min(start + span - 1, last)
            with engine.begin() as connection:
                stored = write_event_ids(connection, scheme, start, end)
            total += stored
            if stored > REFRESH_EVENTS:
                span = max(1, span * REFRESH_EVENTS // stored)
            elif stored < REFRESH_EVENTS // 4:
                span = min(REFRESH_BLOCKS, span * 2)
            if progress is not None:
                progress(end - first + 1, last - first + 1)
            start = end + 1
    with engine.begin() as connection:
        connection.execute(delete(EpcisIdScheme))
        connection.execute(
            insert(EpcisIdScheme), [{"id": COMPLETE, "fingerprint": wanted[0], "mapping": wanted[1]}]
        )
    log.info("stored %d EPCIS events for identifiers %s", total, wanted[0][:12])
    return total
