"""EPCIS 2.0: the index's events as one EPCIS JSON-LD document (see `provenance.epcis.export`).

No token, like the other reads. Times filter by block: `from` and `to` become the first block at or
after each (by the block timestamps the index stores), as the mass balance does. Nothing here asks
the node: a read answers as fast, and as available, as the index.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import RuntimeDep
from api.routers.reads import ERRORS, Reads, TimeParam, freshness_headers
from provenance.domain.trace import parse_time
from provenance.epcis.export import Corrected, blocks_of, document, events_of
from provenance.errors import DomainError, IndexStateError
from provenance.index.epcis_facts import EpcisFacts, EpcisFilter

EPCIS_MEDIA_TYPE = "application/ld+json"
MAX_EVENTS = 10_000

router = APIRouter(tags=["epcis"], responses=ERRORS)


@router.get(
    "/epcis/events",
    summary="Registrations, transformations, handovers and assays as an EPCIS 2.0 document",
    response_class=Response,
    responses={200: {"content": {EPCIS_MEDIA_TYPE: {}}, "description": "An EPCISDocument."}},
)
def epcis_events(
    runtime: RuntimeDep,
    reads: Reads,
    lot: Annotated[
        str | None, Query(min_length=1, max_length=66, description="Only events about this lot.")
    ] = None,
    site: Annotated[
        str | None,
        Query(min_length=1, max_length=66, description="Only events at this site or about its lots."),
    ] = None,
    from_time: Annotated[
        str | None, Query(alias="from", description="Start (included): " + str(TimeParam.description))
    ] = None,
    to_time: Annotated[
        str | None, Query(alias="to", description="End (excluded), same forms as `from`.")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_EVENTS, description=f"At most this many events (422 beyond), ≤ {MAX_EVENTS}.")
    ] = 1_000,
) -> Response:
    """Each event's `eventID` is its CBV 2.0 event hash; `mp:chain` holds its chain coordinates;
    `eventTime` is its block's timestamp."""
    with reads:
        indexed = reads.block_seen
        facts = EpcisFacts(reads.engine)
        chain = facts.chain()
        deployed = runtime.deployment.block_number
        head = deployed if indexed is None else indexed
        first = None if from_time is None else parse_time("from", from_time)
        end = None if to_time is None else parse_time("to", to_time)
        where = EpcisFilter(
            lot_id=lot,
            site=site,
            from_block=None if first is None else reads.first_block_at_or_after(first, deployed, head),
            to_block=None if end is None else reads.first_block_at_or_after(end, deployed, head) - 1,
        )
        found = [] if chain is None else facts.facts(where, limit + 1)
        # a correction is two events: the error declaration and the corrective event
        if sum(2 if isinstance(fact, Corrected) else 1 for fact in found) > limit:
            raise DomainError("limit", f"more than {limit} events match; narrow the filters or raise `limit`")
        times = reads.block_timestamps(blocks_of(found))

        def timestamp_of(number: int) -> int:
            if number not in times:
                raise IndexStateError(
                    f"the index holds events of block {number} but not its time; restart the indexer"
                )
            return times[number]

        names = facts.names(runtime.settings.epcis_identifiers(), found)
    events = [] if chain is None else events_of(found, chain, timestamp_of, names)
    body = document(events, int(time.time()))
    return Response(
        json.dumps(body, separators=(",", ":")),
        media_type=EPCIS_MEDIA_TYPE,
        headers=freshness_headers(indexed, reads.head, reads.source),
    )
