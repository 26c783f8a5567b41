"""A read-only NGSI-LD interface (ETSI GS CIM 009) over the index, so that a data hub's pull
adapter reads us without custom code: entities, one entity, one entity's history, and our JSON-LD
@context. What it does not answer (OR queries, geo-queries, other types, other options) is a 400
BadRequestData naming it, never silently ignored. docs/ngsi-ld.md lists the subset.

Content negotiation follows clause 6.3.6: `Accept: application/ld+json` gets the @context in the
body; `application/json` (or none) gets it as a `Link` header. Paging is `limit` and `offset`,
with `Link: <...>; rel="next"` (and `prev`) and, with `count=true`, `NGSILD-Results-Count`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from api.deps import RuntimeDep
from provenance.domain.ngsi_ld import (
    CONTEXT_PATH,
    CORE_CONTEXT,
    MINING_SITE,
    ORE_LOT,
    context_document,
    iso_time,
    key_values,
)
from provenance.domain.ngsi_ld_query import UnsupportedQuery, parse_q
from provenance.domain.trace import parse_time
from provenance.errors import DomainError
from provenance.ngsi_ld import EntityNotFound, NgsiLdReads, NotTemporal

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
JSON_LD = "application/ld+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
RESULTS_COUNT = "NGSILD-Results-Count"

router = APIRouter(tags=["ngsi-ld"])

_PROBLEM = {
    "description": "NGSI-LD ProblemDetails (type https://uri.etsi.org/ngsi-ld/errors/...)",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["type", "title"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "detail": {"type": "string"},
                },
            }
        }
    },
}
_ENTITY_JSON = {
    "description": "NGSI-LD (application/json with the @context Link, or application/ld+json)",
    "content": {"application/json": {"schema": {}}, "application/ld+json": {"schema": {}}},
}


def _documented(*names: tuple[str, str]) -> dict[str, Any]:
    """The query parameters as OpenAPI shows them (read from the request itself, so that one we do
    not apply is refused by name rather than dropped)."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": text,
            }
            for name, text in names
        ]
    }


_TYPE = ("type", "OreLot or MiningSite (required)")
_ATTRS = ("attrs", "comma-separated attribute names to keep")
_OPTIONS = ("options", "keyValues for the simplified representation")


class Problem(Exception):
    """An NGSI-LD error (clause 5.5.2 error types, ProblemDetails of IETF RFC 7807)."""

    def __init__(self, status: int, kind: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail

    def response(self) -> Response:
        body = {"type": ERRORS + self.kind, "title": self.title, "detail": self.detail}
        return Response(json.dumps(body), status_code=self.status, media_type="application/json")


def bad(detail: str) -> Problem:
    return Problem(400, "BadRequestData", "Bad request data", detail)


def _base_url(request: Request, runtime: RuntimeDep) -> str:
    configured = runtime.settings.public_url
    return (configured or str(request.base_url)).rstrip("/")


def context_url(request: Request, runtime: RuntimeDep) -> str:
    return _base_url(request, runtime) + CONTEXT_PATH


def vocabulary(request: Request, runtime: RuntimeDep) -> str:
    return runtime.settings.ngsi_ld_vocabulary or _base_url(request, runtime) + "/ngsi-ld/vocab#"


def _reads(request: Request, runtime: RuntimeDep) -> NgsiLdReads:
    """The use cases, made once per app (and again if the runtime's engine changed)."""
    cached = getattr(request.app.state, "ngsi_ld_reads", None)
    if cached is None or cached.queries.engine is not runtime.engine:
        cached = NgsiLdReads(runtime.engine, runtime.settings.data_dir, runtime.documents)
        request.app.state.ngsi_ld_reads = cached
    return cached


# ---------------------------------------------------------------------- negotiation and answers


def _wants_ld(request: Request) -> bool:
    """Clause 6.3.6: application/ld+json if asked for, else application/json; 406 for neither."""
    accept = request.headers.get("accept", "")
    if not accept.strip():
        return False
    kinds = [part.split(";", 1)[0].strip().lower() for part in accept.split(",")]
    if JSON_LD in kinds:
        return True
    if any(kind in ("application/json", "application/*", "*/*") for kind in kinds):
        return False
    raise Problem(
        406, "InvalidRequest", "Not acceptable", "answers are application/json or application/ld+json"
    )


def _check_link(request: Request, ours: str) -> None:
    """A request's Link header names the @context its terms are in: we understand ours and ETSI's
    core one only, and say so rather than read terms in another context as ours."""
    link = request.headers.get("link")
    if not link:
        return
    for part in link.split(","):
        target = part.split(";", 1)[0].strip().strip("<>")
        if target and target not in (ours, CORE_CONTEXT):
            raise Problem(
                503,
                "LdContextNotAvailable",
                "@context not available",
                f"this server reads terms in its own @context ({ours}) only, not in {target}",
            )


def _answer(
    request: Request,
    body: Any,
    *,
    ld: bool,
    context: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    extra = dict(headers or {})
    if ld:
        if isinstance(body, list):
            body = [{**entity, "@context": context} for entity in body]
        else:
            body = {**body, "@context": context}
        media = JSON_LD
    else:
        extra["Link"] = ", ".join(
            filter(None, [f'<{context}>; rel="{CONTEXT_REL}"; type="{JSON_LD}"', extra.get("Link")])
        )
        media = "application/json"
    return Response(json.dumps(body, separators=(",", ":")), media_type=media, headers=extra)


def _params(request: Request, allowed: Sequence[str]) -> dict[str, str]:
    """The query parameters, each once; a parameter we do not apply is a 400 naming it."""
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise bad(f"query parameter {key} is not supported here; supported: {', '.join(allowed)}")
        if key in params:
            raise bad(f"query parameter {key} is given more than once")
        params[key] = value
    return params


def _short(name: str, vocab: str) -> str:
    """A type or attribute given as its full IRI under our vocabulary, as its short term."""
    return name.removeprefix(vocab) if name.startswith(vocab) else name


def _options(params: Mapping[str, str]) -> bool:
    """Whether keyValues (simplified) was asked for; other options are refused."""
    options = {item.strip() for item in params.get("options", "").split(",") if item.strip()}
    unknown = options - {"keyValues", "normalized"}
    if unknown:
        raise bad(f"options {', '.join(sorted(unknown))} are not supported (keyValues and normalized are)")
    if {"keyValues", "normalized"} <= options:
        raise bad("options keyValues and normalized exclude each other")
    return "keyValues" in options


def _project(entity: dict[str, Any], attrs: Sequence[str] | None, simple: bool) -> dict[str, Any]:
    if attrs is not None:
        entity = {key: value for key, value in entity.items() if key in ("id", "type") or key in attrs}
    return key_values(entity) if simple else entity


def _attrs(params: Mapping[str, str], vocab: str) -> list[str] | None:
    if "attrs" not in params:
        return None
    return [_short(item.strip(), vocab) for item in params["attrs"].split(",") if item.strip()]


def _int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise bad(f"{name} must be a whole number from {low} to {high}, not {raw!r}")
    return int(raw)


# ---------------------------------------------------------------------- endpoints


@router.get(CONTEXT_PATH, summary="Our JSON-LD @context (NGSI-LD core, our terms, Smart Data Models')")
def json_ld_context(request: Request, runtime: RuntimeDep) -> Response:
    document = context_document(vocabulary(request, runtime))
    return Response(
        json.dumps(document, indent=1),
        media_type=JSON_LD,
        headers={"Cache-Control": "public, max-age=3600"},
    )


ENTITY_PARAMS = ("type", "id", "q", "attrs", "options", "limit", "offset", "count")


@router.get(
    BASE + "/entities",
    summary="Query entities (NGSI-LD, a documented subset)",
    responses={200: _ENTITY_JSON, 400: _PROBLEM, 406: _PROBLEM, 503: _PROBLEM},
    openapi_extra=_documented(
        _TYPE,
        ("id", "comma-separated entity ids"),
        ("q", 'the q subset of docs/ngsi-ld.md, e.g. commodity=="COAL";mass>=10'),
        _ATTRS,
        _OPTIONS,
        ("limit", f"page size, 0 to {MAX_LIMIT} (default {DEFAULT_LIMIT})"),
        ("offset", "entities to skip"),
        ("count", "true: NGSILD-Results-Count"),
    ),
)
def query_entities(request: Request, runtime: RuntimeDep) -> Response:
    try:
        return _query_entities(request, runtime)
    except Problem as problem:
        return problem.response()


def _query_entities(request: Request, runtime: RuntimeDep) -> Response:
    ld = _wants_ld(request)
    context, vocab = context_url(request, runtime), vocabulary(request, runtime)
    _check_link(request, context)
    params = _params(request, ENTITY_PARAMS)
    if "type" not in params:
        raise bad(f"give type ({ORE_LOT} or {MINING_SITE}): queries without a type are not supported")
    entity_type = _short(params["type"], vocab)
    if entity_type not in (ORE_LOT, MINING_SITE):
        raise bad(f"type {params['type']} cannot be queried here; {ORE_LOT} and {MINING_SITE} can")
    limit = _int(params, "limit", DEFAULT_LIMIT, 0, MAX_LIMIT)
    offset = _int(params, "offset", 0, 0, 10**9)
    simple = _options(params)
    attrs = _attrs(params, vocab)
    count_wanted = params.get("count", "false")
    if count_wanted not in ("true", "false"):
        raise bad("count must be true or false")
    ids = [item.strip() for item in params.get("id", "").split(",") if item.strip()]
    try:
        terms = parse_q(params["q"]) if "q" in params else ()
    except UnsupportedQuery as error:
        raise bad(f"q: {error.message}") from None
    reads = _reads(request, runtime)
    if entity_type == ORE_LOT:
        entities, total = reads.lots(terms, ids, limit, offset, count=count_wanted == "true")
    else:
        if terms:
            raise bad("q applies to OreLot only")
        entities, total = reads.sites(ids, limit, offset, count=count_wanted == "true")
    headers: dict[str, str] = {}
    if count_wanted == "true":
        headers[RESULTS_COUNT] = str(total or 0)
    links = _page_links(request, params, limit, offset, len(entities))
    if links:
        headers["Link"] = links
    body = [_project(entity, attrs, simple) for entity in entities]
    return _answer(request, body, ld=ld, context=context, headers=headers)


def _page_links(request: Request, params: Mapping[str, str], limit: int, offset: int, got: int) -> str:
    def at(start: int) -> str:
        query = {**params, "offset": str(start), "limit": str(limit)}
        return f"<{request.url.path}?{urlencode(query)}>"

    links = []
    if limit and got == limit:
        links.append(f'{at(offset + limit)}; rel="next"; type="application/json"')
    if offset > 0 and limit:
        links.append(f'{at(max(0, offset - limit))}; rel="prev"; type="application/json"')
    return ", ".join(links)


@router.get(
    BASE + "/entities/{entity_id}",
    summary="One entity (NGSI-LD)",
    responses={200: _ENTITY_JSON, 400: _PROBLEM, 404: _PROBLEM, 406: _PROBLEM, 503: _PROBLEM},
    openapi_extra=_documented(_ATTRS, _OPTIONS, ("type", "the entity's type, if known")),
)
def retrieve_entity(entity_id: str, request: Request, runtime: RuntimeDep) -> Response:
    try:
        ld = _wants_ld(request)
        context, vocab = context_url(request, runtime), vocabulary(request, runtime)
        _check_link(request, context)
        params = _params(request, ("attrs", "options", "type"))
        _check_uri(entity_id)
        try:
            entity = _reads(request, runtime).entity(entity_id)
        except EntityNotFound:
            raise _not_found(entity_id) from None
        if "type" in params and _short(params["type"], vocab) != entity["type"]:
            raise _not_found(entity_id)
        return _answer(
            request, _project(entity, _attrs(params, vocab), _options(params)), ld=ld, context=context
        )
    except Problem as problem:
        return problem.response()


def _check_uri(entity_id: str) -> None:
    """An entity id is a URI (clause 4.6.1): anything else is bad data, not an unknown entity."""
    scheme = entity_id.split(":", 1)[0]
    if ":" not in entity_id or not scheme or not scheme[0].isalpha():
        raise bad(f"{entity_id} is not a URI (an entity id is one)")


def _not_found(entity_id: str) -> Problem:
    return Problem(404, "ResourceNotFound", "Entity not found", f"no entity {entity_id}")


TEMPORAL_PARAMS = ("attrs", "timerel", "timeAt", "endTimeAt", "lastN", "timeproperty", "options")


@router.get(
    BASE + "/temporal/entities/{entity_id}",
    summary="One lot's history (NGSI-LD temporal)",
    responses={200: _ENTITY_JSON, 400: _PROBLEM, 404: _PROBLEM, 406: _PROBLEM, 503: _PROBLEM},
    openapi_extra=_documented(
        _ATTRS,
        ("timerel", "before, after or between (observedAt)"),
        ("timeAt", "ISO 8601 date-time"),
        ("endTimeAt", "ISO 8601 date-time, with between"),
        ("lastN", "the newest N instances of each attribute"),
        ("timeproperty", "observedAt only"),
        ("options", "normalized only"),
    ),
)
def retrieve_temporal(entity_id: str, request: Request, runtime: RuntimeDep) -> Response:
    try:
        return _temporal(entity_id, request, runtime)
    except Problem as problem:
        return problem.response()


def _temporal(entity_id: str, request: Request, runtime: RuntimeDep) -> Response:
    ld = _wants_ld(request)
    context, vocab = context_url(request, runtime), vocabulary(request, runtime)
    _check_link(request, context)
    params = _params(request, TEMPORAL_PARAMS)
    if params.get("timeproperty", "observedAt") != "observedAt":
        raise bad("timeproperty: only observedAt is kept")
    if params.get("options", "") not in ("", "normalized"):
        raise bad("options: only the normalized temporal representation is served")
    window = _time_window(params)
    last_n = _int(params, "lastN", 0, 1, 10_000) if "lastN" in params else None
    attrs = _attrs(params, vocab)
    _check_uri(entity_id)
    try:
        instances = _reads(request, runtime).history(entity_id)
    except EntityNotFound:
        raise _not_found(entity_id) from None
    except NotTemporal as error:
        raise bad(f"{error.message}: GET {BASE}/entities/{entity_id}") from None
    entity: dict[str, Any] = {"id": entity_id, "type": ORE_LOT}
    for name, values in instances.items():
        if attrs is not None and name not in attrs:
            continue
        chosen = [value for value in values if window(value["observedAt"])]
        if last_n is not None:
            chosen = chosen[-last_n:]
        if chosen:
            entity[name] = chosen
    return _answer(request, entity, ld=ld, context=context)


def _time_window(params: Mapping[str, str]) -> Callable[[str], bool]:
    """timerel before/after/between over observedAt (clause 4.11); ISO 8601 UTC times compare as text
    once normalised, which `_iso` does."""
    relation = params.get("timerel")
    if relation is None:
        if "timeAt" in params or "endTimeAt" in params:
            raise bad("timeAt needs timerel (before, after or between)")
        return lambda _: True
    if relation not in ("before", "after", "between"):
        raise bad(f"timerel must be before, after or between, not {relation}")
    start = _iso(params.get("timeAt"), "timeAt")
    if relation == "between":
        end = _iso(params.get("endTimeAt"), "endTimeAt")
        return lambda value: start <= value < end
    if "endTimeAt" in params:
        raise bad("endTimeAt goes with timerel=between only")
    if relation == "before":
        return lambda value: value < start
    return lambda value: value > start


def _iso(raw: str | None, name: str) -> str:
    if raw is None:
        raise bad(f"{name} is needed with this timerel")
    try:
        return iso_time(parse_time(name, raw))
    except DomainError:
        raise bad(f"{name} must be an ISO 8601 date-time, not {raw!r}") from None
