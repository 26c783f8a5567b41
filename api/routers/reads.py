"""The read API: lots, their provenance and descendants, lists, custody, timelines, mass balances.

Reads need no token: buyers, auditors and the public verify provenance, and everything shown is
public on the chain anyway (rate limits are a later issue). Every answer carries `X-Index-Block`,
the last block the index holds, so a client knows how current it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel

from api import timing
from api.chain_head import ChainHead, HeadSeen
from api.deps import RuntimeDep
from api.errors import NotFound
from api.schemas import (
    CustodyMoveOut,
    CustodyOut,
    DescendantsOut,
    ErrorOut,
    EventOut,
    LotDetailOut,
    LotOut,
    LotPageOut,
    ProvenanceOut,
    SiteAccountOut,
    TimelineOut,
)
from provenance.bootstrap import Runtime, brief_error
from provenance.certificates import certificate_checks
from provenance.domain.site_balance import parse_tolerance
from provenance.domain.trace import LotFilter, TimelineEvent, parse_time
from provenance.errors import DomainError
from provenance.index.queries import EventKey, LotKey, RequestReads
from provenance.services.site_accounts import AccountSpan, site_account

INDEX_BLOCK_HEADER = "X-Index-Block"
INDEX_SOURCE_HEADER = "X-Index-Source"
MIN_INDEX_BLOCK_HEADER = "X-Min-Index-Block"
PRIMARY, REPLICA = "primary", "replica"
CHAIN_HEAD_HEADER = "X-Chain-Head"
INDEX_LAG_HEADER = "X-Index-Lag-Blocks"
CHAIN_UNREACHABLE_HEADER = "X-Chain-Unreachable"
DEFAULT_MAX_DEPTH = 50
MAX_DEPTH = 500
MAX_PAGE = 500

log = logging.getLogger("provenance.api")
ERRORS: dict[int | str, dict[str, object]] = {status: {"model": ErrorOut} for status in (404, 422)}
router = APIRouter(tags=["reads"], responses=ERRORS)


class Reading(RequestReads):
    """The index's queries for one request, on the one connection that `with reads:` opens in the
    endpoint's own thread, with the index block (and the chain's head) as they stood then.

    The dependency only builds it (no database, no thread hop); the endpoint, already in a worker
    thread, opens it: one pool checkout and one thread hop per read.

    With a read replica (`Runtime.replica_engine`), the connection is the replica's while it
    answers and holds at least `min_block` (`X-Min-Index-Block`, for reading one's own write), else
    the primary's: the replica's index block is read first anyway, for `X-Index-Block`, so choosing
    costs nothing while the replica is fresh. `source` says which answered (`X-Index-Source`)."""

    def __init__(
        self, runtime: Runtime, chain_head: ChainHead | None = None, min_block: int | None = None
    ) -> None:
        super().__init__(runtime.engine)
        self._replica = runtime.replica_engine
        self._chain_head = chain_head
        self._min_block = min_block
        self.source = PRIMARY
        self.block_seen: int | None = None
        self.head: HeadSeen | None = None
        self.started: float | None = None
        """When the read's queries began, on its thread (for `Server-Timing`)."""

    def __enter__(self) -> Self:
        self.started = timing.mark("wait")
        if self._replica is None or not self._open_replica(self._replica):
            super().__enter__()
            try:
                self.block_seen = self.index_block()
            except BaseException:
                self.__exit__()
                raise
        try:
            primary_block = self.block_seen if self.source == PRIMARY else None
            self.head = self._chain_head.seen(primary_block) if self._chain_head is not None else None
        except BaseException:
            self.__exit__()
            raise
        return self

    def _open_replica(self, replica: Any) -> bool:
        """Opens the replica's connection if it answers and is fresh enough; False leaves none open."""
        primary, self._engine = self._engine, replica
        try:
            super().__enter__()
            block = self.index_block()
        except Exception as error:  # down, or not yet a copy of an index: the primary answers
            self.__exit__()
            self._engine = primary
            replica_trouble.warn(error)
            return False
        if self._min_block is not None and (block is None or block < self._min_block):
            self.__exit__()
            self._engine = primary
            return False
        self.source, self.block_seen = REPLICA, block
        return True

    def __exit__(self, *exc: object) -> None:
        """An error raised inside `with reads:` (a lot not found, say) is answered with the same
        freshness headers: a 404 from an index behind the chain then says so."""
        error = exc[1] if len(exc) > 1 else None
        if isinstance(error, Exception) and self.block_seen is not None:
            error.answer_headers = freshness_headers(  # type: ignore[attr-defined]
                self.block_seen, self.head, self.source
            )
        super().__exit__(*exc)

    @property
    def engine(self) -> Any:
        """The engine this read chose (for readers that open connections of their own)."""
        return self._engine


class _ReplicaTrouble:
    """Logs a failing replica at most once a minute: reads fall back to the primary meanwhile."""

    def __init__(self) -> None:
        self._warned_at: float | None = None

    def warn(self, error: Exception) -> None:
        now = time.monotonic()
        if self._warned_at is None or now - self._warned_at >= 60:
            self._warned_at = now
            log.warning("the read replica does not answer; reading the primary: %s", brief_error(error))


replica_trouble = _ReplicaTrouble()

MinIndexBlock = Annotated[
    int | None,
    Header(
        alias=MIN_INDEX_BLOCK_HEADER,
        ge=0,
        description="Answer from an index that holds at least this block (a write's block, to read "
        "one's own write): a read replica behind it is passed over for the primary. If the primary "
        "is behind it too, the answer is the primary's, and `X-Index-Block` says how far it holds.",
    ),
]


async def read_queries(runtime: RuntimeDep, request: Request, min_block: MinIndexBlock = None) -> Reading:
    return Reading(runtime, getattr(request.app.state, "chain_head", None), min_block)


Reads = Annotated[Reading, Depends(read_queries)]


def freshness_headers(block_seen: int | None, head: HeadSeen | None, source: str = PRIMARY) -> dict[str, str]:
    """`X-Index-Block` and `X-Index-Source` (primary or replica); with the node's last known head,
    `X-Chain-Head` and `X-Index-Lag-Blocks`; `X-Chain-Unreachable: true` while the node does not
    answer (the head is then the last one seen, and the lag a lower bound)."""
    headers = {INDEX_BLOCK_HEADER: "" if block_seen is None else str(block_seen), INDEX_SOURCE_HEADER: source}
    if head is not None and head.block is not None:
        headers[CHAIN_HEAD_HEADER] = str(head.block)
        if block_seen is not None:
            headers[INDEX_LAG_HEADER] = str(max(0, head.block - block_seen))
    if head is not None and not head.reachable:
        headers[CHAIN_UNREACHABLE_HEADER] = "true"
    return headers


def reply(model: BaseModel, reads: Reading) -> Response:
    """The answer as JSON with the freshness headers. Serialised once, straight from the model:
    FastAPI would validate a returned model against `response_model` again (the model is what the
    OpenAPI document shows either way)."""
    body = model.model_dump_json()
    timing.mark("read", reads.started)
    return Response(
        body,
        media_type="application/json",
        headers=freshness_headers(reads.block_seen, reads.head, reads.source),
    )


LotIdPath = Annotated[str, Path(min_length=1, max_length=66, description="The lot's id (its bytes32 label).")]
SitePath = Annotated[str, Path(min_length=1, max_length=66, description="The site's label.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size, at most {MAX_PAGE}.")]
Cursor = Annotated[str | None, Query(max_length=400, description="`next_cursor` of the previous page.")]
Depth = Annotated[
    int, Query(ge=1, le=MAX_DEPTH, description="How many transformations deep to walk (at most 500).")
]
TimeParam = Query(
    description="Unix seconds, or an ISO 8601 date or date-time (UTC unless it says otherwise).",
    max_length=40,
)


def _encode(key: tuple[Any, ...]) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")
    )


def _decode(cursor: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    """The key a cursor holds; 422 naming `cursor` for anything this API did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise DomainError("cursor", "not a cursor this API handed out") from None
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(type(part) is kind for part, kind in zip(key, types, strict=True))
    ):
        raise DomainError("cursor", "not a cursor this API handed out")
    return tuple(key)


def _lot_key(cursor: str | None) -> LotKey | None:
    if cursor is None:
        return None
    block, lot_id = _decode(cursor, (int, str))
    return int(block), str(lot_id)


def _event_key(cursor: str | None) -> EventKey | None:
    if cursor is None:
        return None
    block, tx_index, log_index = _decode(cursor, (int, int, int))
    return int(block), int(tx_index), int(log_index)


def _timeline(events: list[TimelineEvent], limit: int) -> TimelineOut:
    last = events[-1].coordinates if len(events) == limit else None
    return TimelineOut(
        events=[EventOut.of(event) for event in events],
        next_cursor=None if last is None else _encode((last.block_number, last.tx_index, last.log_index)),
    )


def _unknown_lot(lot_id: str) -> NotFound:
    return NotFound(f"no lot {lot_id!r} in the index")


# ------------------------------------------------------------------------------- lots


@router.get("/lots", response_model=LotPageOut, summary="Search and list lots")
def list_lots(
    reads: Reads,
    runtime: RuntimeDep,
    site: Annotated[str | None, Query(max_length=66)] = None,
    commodity: Annotated[str | None, Query(max_length=66)] = None,
    custodian: Annotated[
        str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="An account address (any case).")
    ] = None,
    status: Literal["active", "consumed", "voided"] | None = None,
    extracted_from: Annotated[str | None, TimeParam] = None,
    extracted_to: Annotated[str | None, Query(description="Exclusive; same forms as extracted_from.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Lots in (creation block, lot id) order. A time filter leaves out lots made by
    transformations (they have no extraction time)."""
    with reads:
        where = LotFilter(
            site=site,
            commodity=commodity,
            custodian=None if custodian is None else runtime.checksum_address(custodian),
            status=status,
            extracted_from=None if extracted_from is None else parse_time("extracted_from", extracted_from),
            extracted_to=None if extracted_to is None else parse_time("extracted_to", extracted_to),
        )
        found = reads.list_lots(where, _lot_key(cursor), limit)
        last = found[-1] if len(found) == limit else None
        page = LotPageOut(
            lots=[LotOut.of(lot) for lot in found],
            next_cursor=None if last is None else _encode((last.created.block_number, last.lot_id)),
        )
        return reply(page, reads)


@router.get(
    "/lots/{lot_id}", response_model=LotDetailOut, summary="A lot, with assays, documents and coordinates"
)
def lot_detail(lot_id: LotIdPath, reads: Reads, runtime: RuntimeDep) -> Response:
    """Each assay says whether this server holds its certificate and whether the held bytes hash to
    the certificate hash on chain; its analytes are given only then."""
    with reads:
        detail = reads.lot(lot_id)
        if detail is None:
            raise _unknown_lot(lot_id)
        certificates = certificate_checks(runtime.documents, detail.assays, lot_id)
        return reply(LotDetailOut.of_detail(detail, certificates), reads)


@router.get(
    "/lots/{lot_id}/provenance",
    response_model=ProvenanceOut,
    summary="Backward trace: the lineage back to the extraction lots, with each origin's share",
)
def lot_provenance(lot_id: LotIdPath, reads: Reads, max_depth: Depth = DEFAULT_MAX_DEPTH) -> Response:
    with reads:
        trace = reads.provenance(lot_id, max_depth)
        if trace is None:
            raise _unknown_lot(lot_id)
        return reply(ProvenanceOut.of(trace, max_depth), reads)


@router.get(
    "/lots/{lot_id}/descendants",
    response_model=DescendantsOut,
    summary="Forward trace (recalls): every lot and custodian that received mass from a lot",
)
def lot_descendants(lot_id: LotIdPath, reads: Reads, max_depth: Depth = DEFAULT_MAX_DEPTH) -> Response:
    with reads:
        found = reads.descendants(lot_id, max_depth)
        if found is None:
            raise _unknown_lot(lot_id)
        return reply(DescendantsOut.of(found), reads)


@router.get("/lots/{lot_id}/custody", response_model=CustodyOut, summary="Custody history of a lot")
def lot_custody(lot_id: LotIdPath, reads: Reads) -> Response:
    with reads:
        moves = reads.custody(lot_id)
        if moves is None:
            raise _unknown_lot(lot_id)
        return reply(CustodyOut(lot_id=lot_id, moves=[CustodyMoveOut.of(move) for move in moves]), reads)


@router.get(
    "/lots/{lot_id}/timeline", response_model=TimelineOut, summary="Every event about a lot, in chain order"
)
def lot_timeline(lot_id: LotIdPath, reads: Reads, limit: Limit = 100, cursor: Cursor = None) -> Response:
    with reads:
        events = reads.lot_timeline(lot_id, _event_key(cursor), limit)
        if events is None:
            raise _unknown_lot(lot_id)
        return reply(_timeline(events, limit), reads)


# ------------------------------------------------------------------------------- sites


@router.get(
    "/sites/{site}/timeline", response_model=TimelineOut, summary="Every event about a site, in chain order"
)
def site_timeline(site: SitePath, reads: Reads, limit: Limit = 100, cursor: Cursor = None) -> Response:
    with reads:
        return reply(_timeline(reads.site_timeline(site, _event_key(cursor), limit), limit), reads)


@router.get(
    "/sites/{site}/mass-balance",
    response_model=SiteAccountOut,
    summary="Mass-balance account of a site over a period, with its stock counts",
)
def mass_balance(
    site: SitePath,
    reads: Reads,
    runtime: RuntimeDep,
    period: Annotated[
        str | None,
        Query(
            max_length=20,
            description="A calendar period in UTC: 2026-11 (month), 2026-11-03 (day), 2026-W45 (ISO week) "
            "or 2026 (year). Instead of from/to.",
        ),
    ] = None,
    from_time: Annotated[
        str | None, Query(alias="from", description="Start (included): " + str(TimeParam.description))
    ] = None,
    to_time: Annotated[
        str | None, Query(alias="to", description="End (excluded), same forms as `from`.")
    ] = None,
    from_block: Annotated[int | None, Query(ge=0, description="First block (instead of `from`).")] = None,
    to_block: Annotated[
        int | None, Query(ge=0, description="Last block, included (instead of `to`).")
    ] = None,
    tolerance: Annotated[
        str,
        Query(
            max_length=12,
            description="How far a stock count may differ from the book stock and still agree, in "
            "percent of the book stock (0.5 or 0.5%).",
        ),
    ] = "0.5%",
) -> Response:
    """The period is a range of blocks: given as times (or a calendar `period`), it runs from the
    first block at or after its start to the last block before its end (by the chain's block
    timestamps the index stores); by default, from the registry's deployment to the index's last block."""
    with reads:
        tolerance_ppm = parse_tolerance(tolerance)
        span = AccountSpan.parse(
            period=period, from_time=from_time, to_time=to_time, from_block=from_block, to_block=to_block
        )
        deployed = runtime.deployment.block_number
        account = site_account(
            reads,
            site,
            span,
            deployed=deployed,
            head=deployed if reads.block_seen is None else reads.block_seen,
            tolerance_ppm=tolerance_ppm,
        )
        return reply(SiteAccountOut.of_account(account), reads)
