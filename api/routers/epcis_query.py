"""EPCIS 2.0 REST query binding (GS1's OpenAPI, mounted at `/epcis` by `api.epcis_rest`): events
and their top-level resources, named queries. Reads need no token (public chain facts); creating
and deleting a named query needs this system's API token (any role), and so do query subscriptions
(`provenance.deliveries.query_subscriptions`; each account sees and ends its own).

Each endpoint parses its request with `provenance.epcis.query` and answers through
`api.epcis_rest.EpcisRequest`; the SQL is in `provenance.index.epcis_queries`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import Caller, RuntimeDep
from api.epcis_rest import Epcis
from api.routers.reads import Reads
from provenance.bootstrap import Runtime
from provenance.deliveries.query_subscriptions import (
    QuerySubscriptions,
    subscription_document,
    subscription_request,
)
from provenance.epcis.query import (
    BIZ_STEPS,
    DISPOSITIONS,
    EVENT_TYPES,
    TOP_LEVEL,
    collection_after,
    collection_token,
    event_id_of,
    event_type_of,
    list_page,
    named_query_events,
    page_parameters,
    parse_query,
    query_definition,
    vocabulary_word,
)
from provenance.index.delivery_store import DeliveryStore
from provenance.index.epcis_queries import NamedQueries

router = APIRouter()


@router.get("/", summary="The top-level resources of this repository")
def top_level(epcis: Epcis) -> Response:
    return epcis.members(TOP_LEVEL, None)


# ------------------------------------------------------------------------------- events


@router.get("/events", summary="Events matching the EPCIS query parameters, a page at a time")
def events(epcis: Epcis, reads: Reads) -> Response:
    return epcis.events(reads, parse_query(epcis.parameters))


@router.get("/events/{eventID:path}", summary="One event, with its error declarations")
def event(eventID: str, epcis: Epcis, reads: Reads) -> Response:  # noqa: N803 - GS1's name
    return epcis.event(reads, parse_query([], fixed={"EQ_eventID": event_id_of(eventID, epcis.parameters)}))


@router.get("/eventTypes", summary="The EPCIS event types")
def event_types(epcis: Epcis) -> Response:
    return epcis.listing(list_page(EVENT_TYPES, epcis.parameters, "eventTypes"))


@router.get("/eventTypes/{eventType}/events", summary="Events of one type")
def events_of_type(eventType: str, epcis: Epcis, reads: Reads) -> Response:  # noqa: N803
    fixed = {"eventType": event_type_of(eventType)}
    return epcis.events(reads, parse_query(epcis.parameters, fixed=fixed))


@router.get("/epcs/{epc:path}/events", summary="Events naming an identifier in any of their lists")
def events_of_epc(epc: str, epcis: Epcis, reads: Reads) -> Response:
    return epcis.events(reads, parse_query(epcis.parameters, fixed={"epc": epc}))


@router.get("/bizSteps", summary="CBV business steps")
def biz_steps(epcis: Epcis) -> Response:
    return epcis.listing(list_page(BIZ_STEPS, epcis.parameters, "bizSteps"))


@router.get("/bizSteps/{bizStep}/events", summary="Events of one business step")
def events_of_step(bizStep: str, epcis: Epcis, reads: Reads) -> Response:  # noqa: N803
    fixed = {"EQ_bizStep": vocabulary_word(bizStep, "BizStep", "bizstep")}
    return epcis.events(reads, parse_query(epcis.parameters, fixed=fixed))


@router.get("/dispositions", summary="CBV dispositions")
def dispositions(epcis: Epcis) -> Response:
    return epcis.listing(list_page(DISPOSITIONS, epcis.parameters, "dispositions"))


@router.get("/dispositions/{disposition}/events", summary="Events of one disposition")
def events_of_disposition(disposition: str, epcis: Epcis, reads: Reads) -> Response:
    fixed = {"EQ_disposition": vocabulary_word(disposition, "Disp", "disp")}
    return epcis.events(reads, parse_query(epcis.parameters, fixed=fixed))


@router.get("/bizLocations", summary="The business locations of this repository's events (sites)")
def biz_locations(epcis: Epcis, reads: Reads) -> Response:
    return epcis.locations(reads, *page_parameters(epcis.parameters, "bizLocations"))


@router.get("/bizLocations/{bizLocation:path}/events", summary="Events at one business location")
def events_at(bizLocation: str, epcis: Epcis, reads: Reads) -> Response:  # noqa: N803
    return epcis.events(reads, parse_query(epcis.parameters, fixed={"EQ_bizLocation": bizLocation}))


@router.get("/readPoints", summary="Read points (none: no event of this repository has one)")
def read_points(epcis: Epcis) -> Response:
    return epcis.listing(list_page((), epcis.parameters, "readPoints"))


@router.get("/readPoints/{readPoint:path}/events", summary="Events at one read point")
def events_read_at(readPoint: str, epcis: Epcis, reads: Reads) -> Response:  # noqa: N803
    return epcis.events(reads, parse_query(epcis.parameters, fixed={"EQ_readPoint": readPoint}))


# ------------------------------------------------------------------------------- named queries


@router.post("/queries", status_code=201, summary="Create a named query (needs an API token)")
async def create_query(request: Request, epcis: Epcis, caller: Caller, runtime: RuntimeDep) -> Response:
    name, query = query_definition(request.headers.get("content-type"), await request.body())
    NamedQueries(runtime.engine).create(name, query, caller.account)
    return epcis.created(f"{epcis.base}/queries/{name}")


@router.get("/queries", summary="Named queries, a page at a time")
def list_queries(epcis: Epcis, runtime: RuntimeDep) -> Response:
    return epcis.queries(NamedQueries(runtime.engine), *page_parameters(epcis.parameters, "queries"))


@router.get("/queries/{queryName}", summary="A named query's definition")
def get_query(queryName: str, epcis: Epcis, runtime: RuntimeDep) -> Response:  # noqa: N803
    return epcis.query(NamedQueries(runtime.engine), queryName)


@router.delete("/queries/{queryName}", status_code=204, summary="Delete a named query (its creator's token)")
def delete_query(queryName: str, epcis: Epcis, caller: Caller, runtime: RuntimeDep) -> Response:  # noqa: N803
    answer = epcis.delete(NamedQueries(runtime.engine), queryName, caller.account)
    _subscriptions(runtime).end_all(queryName)
    return answer


@router.get("/queries/{queryName}/events", summary="The events of a named query, a page at a time")
def query_events(queryName: str, epcis: Epcis, reads: Reads, runtime: RuntimeDep) -> Response:  # noqa: N803
    stored = epcis.stored(NamedQueries(runtime.engine), queryName)
    return epcis.events(reads, named_query_events(stored.query, epcis.parameters), stored.name)


# ------------------------------------------------------------------------------- query subscriptions


def _subscriptions(runtime: Runtime) -> QuerySubscriptions:
    return QuerySubscriptions(DeliveryStore(runtime.engine), NamedQueries(runtime.engine), runtime.settings)


@router.post("/queries/{queryName}/subscriptions", status_code=201, summary="Subscribe to a named query")
async def subscribe(
    queryName: str,  # noqa: N803
    request: Request,
    epcis: Epcis,
    caller: Caller,
    runtime: RuntimeDep,
) -> Response:
    """`stream: true`: each new matching event POSTed to `dest` as it is indexed."""
    body = subscription_request(request.headers.get("content-type"), await request.body())
    destination = _subscriptions(runtime).subscribe(
        queryName,
        body,
        account=caller.account,
        credential_id=caller.id,
        epc_format=request.headers.get("gs1-epc-format"),
    )
    location = f"{epcis.base}/queries/{queryName}/subscriptions/{destination.id}"
    return epcis.answer(subscription_document(destination), {**epcis.headers(), "Location": location}, 201)


@router.get("/queries/{queryName}/subscriptions", summary="The caller's subscriptions to a named query")
def list_subscriptions(queryName: str, epcis: Epcis, caller: Caller, runtime: RuntimeDep) -> Response:  # noqa: N803
    per_page, token = page_parameters(epcis.parameters, "subscriptions")
    found = _subscriptions(runtime).of(
        queryName, caller.account, collection_after(token, "subscriptions"), per_page + 1
    )
    more = len(found) > per_page
    next_token = collection_token(found[per_page - 1].id, "subscriptions") if more else None
    return epcis.members([subscription_document(item) for item in found[:per_page]], next_token, plain=True)


@router.get("/queries/{queryName}/subscriptions/{subscriptionID}", summary="One subscription")
def get_subscription(
    queryName: str,  # noqa: N803
    subscriptionID: str,  # noqa: N803
    epcis: Epcis,
    caller: Caller,
    runtime: RuntimeDep,
) -> Response:
    destination = _subscriptions(runtime).get(queryName, subscriptionID, caller.account)
    return epcis.answer(subscription_document(destination), epcis.headers())


@router.delete(
    "/queries/{queryName}/subscriptions/{subscriptionID}",
    status_code=204,
    summary="Unsubscribe (its creator)",
)
def unsubscribe(
    queryName: str,  # noqa: N803
    subscriptionID: str,  # noqa: N803
    epcis: Epcis,
    caller: Caller,
    runtime: RuntimeDep,
) -> Response:
    _subscriptions(runtime).unsubscribe(queryName, subscriptionID, caller.account)
    return Response(status_code=204, headers=epcis.headers())
