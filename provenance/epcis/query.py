"""The EPCIS 2.0 query language of the REST binding, as far as this repository's events reach:
parameters parsed once into a typed `EventQuery`, the static fields of each kind of event we emit
(`KINDS`), page tokens, collections, version and format negotiation, and the standard exceptions.

Plain Python: the SQL lives in `provenance.index.epcis_queries`, the HTTP in `api.epcis`.

    EpcisException (ProvenanceError)            an answer in GS1's problem shape (RFC 7807)
    ├── QueryParameterException (ValueError)    400: a parameter unknown, malformed or unsupported
    ├── ValidationException (ValueError)        400: a request body that is not a query definition
    ├── SecurityException                       401/403: a named query's owner only
    ├── NoSuchNameException (LookupError)   404: an event, a query or a resource that is not there
    ├── NotAcceptableException                  406: a media type or version this server does not speak
    ├── ResourceAlreadyExistsException          409: a named query of that name exists
    └── UnsupportedMediaTypeException           415: a query definition that is not JSON

Every parameter a request names is either applied or refused: nothing is ignored. Which fields each
kind of event carries is decided here, statically (`Kind`), so a filter on `bizStep`, `action`,
`disposition`, `eventType` or `readPoint` never reaches SQL: it only chooses the kinds to read.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from provenance.epcis.export import (
    CBV_VOCABULARY,
    EPCIS_CONTEXT,
    EXTENSION_NAMESPACE,
    EXTENSION_PREFIX,
    TRANSFORMATION_STEP,
    utc_time,
)
from provenance.epcis.ids import IdentifierScheme, LotName, LotNumber
from provenance.errors import ProvenanceError

EPCIS_VERSION = "2.0.0"
CBV_VERSION = "2.0.0"
DEFAULT_PER_PAGE = 30
"""GS1's default `perPage`."""
MAX_PER_PAGE = 1_000
MAX_NAME = 200
"""The longest named query name."""
QUERY_NAME = "SimpleEventQuery"
"""The `queryName` of the result document of an ad-hoc query (`/events` and its sub-resources)."""

EPC_FORMATS = ("No_Preference", "Always_GS1_Digital_Link", "Always_EPC_URN", "Never_Translates")
EPC_FORMAT_ANSWERED = "Never_Translates"
"""What a deployment without GS1 identifiers answers whatever the client asks: its URIs are
neither EPC URNs nor GS1 Digital Link URIs, so there is nothing to translate them into
(`IdentifierScheme.translated_form`)."""

MEDIA_TYPES = ("application/ld+json", "application/json")


# ---------------------------------------------------------------------- exceptions


class EpcisException(ProvenanceError):
    """An EPCIS exception; `problem()` is its body in GS1's RFC 7807 shape."""

    status = 500
    kind = "ImplementationException"
    title = "A server-side error occurred"

    def __init__(self, detail: str, parameter: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.parameter = parameter

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"epcisException:{self.kind}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.parameter is not None:
            body["parameter"] = self.parameter
        return body


class QueryParameterException(EpcisException, ValueError):
    status, kind, title = 400, "QueryParameterException", "Invalid query parameter"

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(f"{parameter}: {detail}", parameter)


class ValidationException(EpcisException, ValueError):
    status, kind, title = 400, "ValidationException", "Invalid request"


class SecurityException(EpcisException):
    status, kind, title = 403, "SecurityException", "Not allowed"


class NoSuchNameException(EpcisException, LookupError):
    status, kind, title = 404, "NoSuchNameException", "Resource not found"


class NotAcceptableException(EpcisException):
    status, kind, title = 406, "NotAcceptableException", "Conflicting request and response headers"


class ResourceAlreadyExistsException(EpcisException):
    status, kind, title = 409, "ResourceAlreadyExistsException", "Resource already exists"


class UnsupportedMediaTypeException(EpcisException):
    status, kind, title = 415, "UnsupportedMediaTypeException", "Unsupported media type"


# ---------------------------------------------------------------------- the kinds of event we emit


@dataclass(frozen=True)
class Kind:
    """One kind of EPCIS event this repository emits, with the fields every event of it has."""

    name: str
    event_type: str
    action: str | None
    biz_step: str
    disposition: str | None
    located: bool
    """Has a `bizLocation` (its site)."""
    transformation: bool
    """Its classes are in input and output quantity lists (else one lot in `quantityList`)."""
    declaration: bool = False
    """An error declaration: a copy of the event that made a corrected lot."""
    part: int = 0
    """Orders the two events of one correction (declaration 0, corrective event 1)."""


REGISTERED = Kind("registered", "ObjectEvent", "ADD", "commissioning", None, True, False)
TRANSFORMED = Kind("transformed", "TransformationEvent", None, TRANSFORMATION_STEP, None, True, True)
OFFERED = Kind("offered", "ObjectEvent", "OBSERVE", "shipping", "in_transit", False, False)
ACCEPTED = Kind("accepted", "ObjectEvent", "OBSERVE", "receiving", "in_progress", False, False)
ASSAYED = Kind("assayed", "ObjectEvent", "OBSERVE", "inspecting", None, False, False)
DECLARED_REGISTRATION = replace(REGISTERED, name="declared_registration", declaration=True)
DECLARED_TRANSFORMATION = replace(TRANSFORMED, name="declared_transformation", declaration=True)
VOIDED = Kind("voided", "ObjectEvent", "DELETE", "decommissioning", "inactive", False, False, part=1)
"""The corrective event of a lot that did not occur."""
RECOUNTED = Kind("recounted", "ObjectEvent", "OBSERVE", "inspecting", None, False, False, part=1)
"""The corrective event of a lot whose record was wrong (incorrect data)."""

KINDS = (
    REGISTERED,
    TRANSFORMED,
    OFFERED,
    ACCEPTED,
    ASSAYED,
    DECLARED_REGISTRATION,
    DECLARED_TRANSFORMATION,
    VOIDED,
    RECOUNTED,
)

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
BIZ_STEPS = (
    "accepting", "arriving", "assembling", "collecting", "commissioning", "consigning",
    "creating_class_instance", "cycle_counting", "decommissioning", "departing", "destroying",
    "disassembling", "dispensing", "encoding", "entering_exiting", "holding", "inspecting",
    "installing", "killing", "loading", "other", "packing", "picking", "receiving", "removing",
    "repackaging", "repairing", "replacing", "reserving", "retail_selling", "sampling",
    "sensor_reporting", "shipping", "staging_outbound", "stock_taking", "stocking", "storing",
    "transporting", "unloading", "unpacking", "void_shipping",
)  # fmt: skip
"""CBV 2.0's business steps (as GS1's OpenAPI lists them)."""
DISPOSITIONS = (
    "active", "available", "completeness_inferred", "completeness_verified", "conformant",
    "container_closed", "container_open", "damaged", "destroyed", "dispensed", "disposed", "encoded",
    "expired", "in_progress", "in_transit", "inactive", "mismatch_class", "mismatch_instance",
    "mismatch_quantity", "needs_replacement", "no_pedigree_match", "non_conformant",
    "non_sellable_other", "partially_dispensed", "recalled", "reserved", "retail_sold", "returned",
    "sellable_accessible", "sellable_not_accessible", "stolen", "unavailable", "unknown",
)  # fmt: skip
"""CBV 2.0's dispositions (as GS1's OpenAPI lists them)."""
TOP_LEVEL = (
    "events",
    "eventTypes",
    "bizSteps",
    "bizLocations",
    "readPoints",
    "dispositions",
    "queries",
    "capture",
)
"""The top-level resources this repository serves (the EPC list is not served yet)."""
ERROR_REASONS = ("did_not_occur", "incorrect_data")
ACTIONS = ("ADD", "OBSERVE", "DELETE")


# ---------------------------------------------------------------------- the query


Key = tuple[int, int, int, int]
"""Where an event stands in chain order: block, transaction index, log index, part."""


@dataclass(frozen=True)
class EventQuery:
    """A parsed query. `None` is "no constraint"; an empty set matches nothing."""

    event_types: frozenset[str] | None = None
    event_from: int | None = None
    """Unix seconds, included (GE_eventTime, rounded up to the whole second block times have)."""
    event_before: int | None = None
    """Unix seconds, excluded (LT_eventTime, rounded up likewise)."""
    record_from_ms: int | None = None
    record_before_ms: int | None = None
    actions: frozenset[str] | None = None
    biz_steps: frozenset[str] | None = None
    dispositions: frozenset[str] | None = None
    read_points: frozenset[str] | None = None
    sites: frozenset[str] | None = None
    """EQ_bizLocation / WD_bizLocation: location URIs as given; once `interpreted`, the sites they
    name (URIs that name no site of ours dropped). Likewise the lot and transformation fields
    below: URIs until the index interprets them with the deployment's identifier scheme."""
    instance_epcs: bool = False
    """A MATCH_ parameter on instance-level EPCs was given: none of our events lists any."""
    lots: frozenset[str] | None = None
    """MATCH_epcClass: the lot in a `quantityList`."""
    input_lots: frozenset[str] | None = None
    output_lots: frozenset[str] | None = None
    any_lots: frozenset[str] | None = None
    transform_ids: frozenset[int] | None = None
    event_ids: frozenset[str] | None = None
    corrective_ids: frozenset[str] | None = None
    error_declaration: bool = False
    declared_from: int | None = None
    declared_before: int | None = None
    error_reasons: frozenset[str] | None = None
    per_page: int = DEFAULT_PER_PAGE
    after: Key | None = None
    fingerprint: str = ""
    """Identifies the filters (not the page): a page token is valid only for the query it came from."""
    transformation_uris: frozenset[str] | None = None
    """EQ_transformationID as given (`transform_ids` once interpreted)."""
    interpreted: bool = False

    def kinds(self) -> tuple[Kind, ...]:
        """The kinds of event the static filters let through."""
        if self.instance_epcs or self.read_points is not None:
            return ()
        return tuple(kind for kind in KINDS if self._admits(kind))

    def _admits(self, kind: Kind) -> bool:
        checks = (
            self.event_types is None or kind.event_type in self.event_types,
            self.actions is None or kind.action in self.actions,
            self.biz_steps is None or kind.biz_step in self.biz_steps,
            self.dispositions is None or kind.disposition in self.dispositions,
            self.sites is None or kind.located,
            self.lots is None or not kind.transformation,
            (self.input_lots is None and self.output_lots is None) or kind.transformation,
            self.transform_ids is None or kind.transformation,
            not self.error_declaration or kind.declaration,
            (self.declared_from, self.declared_before, self.error_reasons, self.corrective_ids)
            == (None, None, None, None)
            or kind.declaration,
        )
        return all(checks)

    @property
    def post_filtered(self) -> bool:
        """Whether some events can be chosen only once made (their eventIDs are hashes)."""
        return self.event_ids is not None or self.corrective_ids is not None

    def keeps(self, event: Mapping[str, Any]) -> bool:
        """The filters on what only the event itself holds (eventIDs, corrective eventIDs)."""
        if self.event_ids is not None and event.get("eventID") not in self.event_ids:
            return False
        if self.corrective_ids is not None:
            declared = event.get("errorDeclaration", {}).get("correctiveEventIDs", [])
            if not self.corrective_ids.intersection(declared):
                return False
        return True


# ---------------------------------------------------------------------- parsing


Parameters = Sequence[tuple[str, str]]
"""A request's query parameters in order, names repeated as the client repeated them."""

PAGING = ("perPage", "nextPageToken")
_LISTS = {
    "eventType", "EQ_action", "EQ_bizStep", "EQ_disposition", "EQ_readPoint", "WD_readPoint",
    "EQ_bizLocation", "WD_bizLocation", "EQ_transformationID", "MATCH_epc", "MATCH_parentID",
    "MATCH_inputEPC", "MATCH_outputEPC", "MATCH_anyEPC", "MATCH_epcClass", "MATCH_inputEPCClass",
    "MATCH_outputEPCClass", "MATCH_anyEPCClass", "EQ_eventID", "EQ_errorReason",
    "EQ_correctiveEventID", "EQ_persistentDisposition_set", "EQ_persistentDisposition_unset",
}  # fmt: skip
_TIMES = {
    "GE_eventTime", "LT_eventTime", "GE_recordTime", "LT_recordTime", "GE_errorDeclarationTime",
    "LT_errorDeclarationTime",
}  # fmt: skip
SUPPORTED = frozenset(_LISTS | _TIMES | {"EXISTS_errorDeclaration", *PAGING})
"""Every query parameter this repository applies."""
UNSUPPORTED = frozenset(
    {
        "EQ_quantity", "GT_quantity", "GE_quantity", "LT_quantity", "LE_quantity", "orderBy",
        "orderDirection", "eventCountLimit", "maxEventCount", "GE_startTime", "LT_startTime",
        "GE_endTime", "LT_endTime", "EQ_type", "EQ_deviceID", "EQ_dataProcessingMethod",
        "EQ_microorganism", "EQ_chemicalSubstance", "EQ_bizRules", "EQ_stringValue",
        "EQ_hexBinaryValue", "EQ_uriValue", "EQ_booleanValue",
    }
)  # fmt: skip
"""Standard parameters this repository does not apply yet: refused by name, never ignored."""


def parse_query(parameters: Parameters, *, fixed: Mapping[str, str] | None = None) -> EventQuery:
    """The query of a request's parameters; `fixed`, what the resource's path adds (the bizStep of
    `/bizSteps/{bizStep}/events`, say), ANDed with the rest. A QueryParameterException names the
    first parameter that is unknown, malformed, repeated where it may not be, or not supported."""
    values: dict[str, list[str]] = {}
    for name, value in parameters:
        if name not in SUPPORTED:
            if name in UNSUPPORTED:
                raise QueryParameterException(
                    name, "this standard parameter is not supported by this repository"
                )
            raise QueryParameterException(name, "not a query parameter of EPCIS 2.0 this repository knows")
        if name not in _LISTS and name in values:
            raise QueryParameterException(name, "given more than once")
        if value.strip() == "":
            raise QueryParameterException(name, "empty")
        if name in _LISTS:
            items = value.split("|")
            if any(item.strip() == "" for item in items):
                raise QueryParameterException(name, "an empty entry in a |-separated list")
            values.setdefault(name, []).extend(item.strip() for item in items)
        else:
            values[name] = [value]
    return _query(values, fixed or {})


def query_of_definition(definition: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A named query's `query` object (GS1's query schema: lists for list parameters, strings for
    times, booleans) as request parameters, checked by `parse_query`."""
    parameters: list[tuple[str, str]] = []
    for name, value in definition.items():
        if name in PAGING:
            raise ValidationException(f"query.{name}: paging belongs to the request, not to the query", name)
        if isinstance(value, list):
            if not value or not all(isinstance(item, str) for item in value):
                raise QueryParameterException(name, "a list of strings is expected")
            parameters.append((name, "|".join(value)))
        elif isinstance(value, bool):
            parameters.append((name, "true" if value else "false"))
        elif isinstance(value, str | int) and not isinstance(value, bool):
            parameters.append((name, str(value)))
        else:
            raise QueryParameterException(
                name, "a string, a number, a boolean or a list of strings is expected"
            )
    parse_query(parameters)
    return parameters


def _query(values: dict[str, list[str]], fixed: Mapping[str, str]) -> EventQuery:
    """`fixed` holds what a resource's path adds: `eventType`, `EQ_bizStep`, `EQ_disposition`,
    `EQ_readPoint`, `EQ_bizLocation`, `EQ_eventID` or `epc` (in any list, instance or class level)."""

    def narrowed(name: str, found: frozenset[str] | None) -> frozenset[str] | None:
        if name not in fixed:
            return found
        path = fixed[name]
        return frozenset([path]) if found is None else found & {path}

    event_types = _listed("eventType", values)
    for item in event_types or ():
        if item not in EVENT_TYPES and not _is_uri(item):
            raise QueryParameterException("eventType", f"{item!r} is not an EPCIS event type")
    actions = _listed("EQ_action", values)
    if actions is not None and not actions <= set(ACTIONS):
        raise QueryParameterException("EQ_action", "each value must be ADD, OBSERVE or DELETE")
    biz_steps = _vocabulary("EQ_bizStep", values.get("EQ_bizStep"), "BizStep", "bizstep")
    dispositions = _vocabulary("EQ_disposition", values.get("EQ_disposition"), "Disp", "disp")
    # without master data no location has descendants: WD_ (with descendants) is EQ_
    read_points = _all_of(_uris("EQ_readPoint", values), _uris("WD_readPoint", values))
    locations = _all_of(_uris("EQ_bizLocation", values), _uris("WD_bizLocation", values))
    locations = narrowed("EQ_bizLocation", locations)

    # MATCH_ on instance-level EPCs, and persistent dispositions: no event of ours has any
    nothing = [name for name in ("MATCH_epc", "MATCH_parentID", "MATCH_inputEPC", "MATCH_outputEPC")
               if _uris(name, values) is not None]  # fmt: skip
    for name in ("EQ_persistentDisposition_set", "EQ_persistentDisposition_unset"):
        if _vocabulary(name, values.get(name), "Disp", "disp") is not None:
            nothing.append(name)
    any_lots = _uris("MATCH_anyEPCClass", values)
    if _uris("MATCH_anyEPC", values) is not None:
        any_lots = frozenset()
    if "epc" in fixed:  # /epcs/{epc}/events: the events naming it in any list
        any_lots = _all_of(any_lots, frozenset([fixed["epc"]]))

    times = {name: _time(name, values[name][0]) for name in _TIMES if name in values}
    exists = values.get("EXISTS_errorDeclaration")
    if exists is not None and exists[0] not in ("true", "false"):
        raise QueryParameterException("EXISTS_errorDeclaration", "true or false")
    reasons = _vocabulary("EQ_errorReason", values.get("EQ_errorReason"), "ER", "er")
    fingerprint = _fingerprint(values, fixed)
    token = values.get("nextPageToken")
    return EventQuery(
        event_types=narrowed("eventType", event_types),
        event_from=_whole_seconds(times.get("GE_eventTime")),
        event_before=_whole_seconds(times.get("LT_eventTime")),
        record_from_ms=_millis(times.get("GE_recordTime")),
        record_before_ms=_millis(times.get("LT_recordTime")),
        actions=actions,
        biz_steps=narrowed("EQ_bizStep", biz_steps),
        dispositions=narrowed("EQ_disposition", dispositions),
        read_points=narrowed("EQ_readPoint", read_points),
        sites=locations,
        instance_epcs=bool(nothing),
        lots=_uris("MATCH_epcClass", values),
        input_lots=_uris("MATCH_inputEPCClass", values),
        output_lots=_uris("MATCH_outputEPCClass", values),
        any_lots=any_lots,
        transformation_uris=_uris("EQ_transformationID", values),
        event_ids=narrowed("EQ_eventID", _uris("EQ_eventID", values)),
        corrective_ids=_uris("EQ_correctiveEventID", values),
        error_declaration=exists == ["true"],
        declared_from=_whole_seconds(times.get("GE_errorDeclarationTime")),
        declared_before=_whole_seconds(times.get("LT_errorDeclarationTime")),
        error_reasons=reasons,
        per_page=_per_page(values.get("perPage")),
        after=None if token is None else decode_token(token[0], fingerprint),
        fingerprint=fingerprint,
    )


def _listed(name: str, values: Mapping[str, list[str]]) -> frozenset[str] | None:
    found = values.get(name)
    return None if found is None else frozenset(found)


def _all_of(*sets: frozenset[str] | None) -> frozenset[str] | None:
    """Parameters that must all hold: the intersection of those given."""
    given = [found for found in sets if found is not None]
    if not given:
        return None
    result = given[0]
    for other in given[1:]:
        result &= other
    return result


def event_id_of(path: str, parameters: Parameters) -> str:
    """The eventID of `/events/{eventID}`. A client that did not encode the `?` of `?ver=CBV2.0`
    sent the version as a query parameter: it is put back; anything else is refused."""
    extra = [name for name, _ in parameters if name != "ver"]
    if extra:
        raise QueryParameterException(extra[0], "an event resource takes no query parameters")
    versions = [value for name, value in parameters if name == "ver"]
    event_id = path + "".join(f"?ver={value}" for value in versions[:1])
    if not _is_uri(event_id):
        raise NoSuchNameException(f"{event_id!r} is not an eventID (a URI)", "eventID")
    return event_id


def event_type_of(path: str) -> str:
    """The event type of `/eventTypes/{eventType}/events`: a standard type, or an extension type
    (a URI, which no event of ours has); 404 for anything else."""
    if path in EVENT_TYPES or _is_uri(path):
        return path
    raise NoSuchNameException(f"{path!r} is not an EPCIS event type", "eventType")


def vocabulary_word(value: str, web: str, urn: str) -> str:
    """A path's CBV value as the bare word (`shipping` for its web URI and its URN too)."""
    return cbv_word(value, web, urn)


def query_definition(content_type: str | None, body: bytes) -> tuple[str, dict[str, Any]]:
    """A `POST /queries` body (GS1's QueryDefinition: `name` and `query`), checked."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaTypeException(f"a query definition is JSON, not {media or 'untyped'}")
    try:
        definition = json.loads(body)
    except ValueError:
        raise ValidationException("the body is not JSON") from None
    if not isinstance(definition, dict) or set(definition) != {"name", "query"}:
        raise ValidationException("a query definition is an object with `name` and `query` only")
    name, query = definition["name"], definition["query"]
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= MAX_NAME
        or not all(char.isalnum() or char in "-._~" for char in name)
    ):
        raise ValidationException(
            f"name: 1 to {MAX_NAME} letters, digits or -._~ (it becomes a path segment)", "name"
        )
    if not isinstance(query, dict):
        raise ValidationException("query: an object of EPCIS query parameters", "query")
    query_of_definition(query)
    return name, query


def named_query_events(definition: Mapping[str, Any], parameters: Parameters) -> EventQuery:
    """A named query's events: its stored parameters and the request's paging."""
    for name, _ in parameters:
        if name not in PAGING:
            raise QueryParameterException(name, "a named query's events take only perPage and nextPageToken")
    return parse_query([*query_of_definition(definition), *parameters])


def _is_uri(text: str) -> bool:
    parts = urlsplit(text)
    return bool(parts.scheme) and " " not in text and bool(parts.netloc or parts.path)


def _uris(name: str, values: Mapping[str, list[str]]) -> frozenset[str] | None:
    found = values.get(name)
    if found is None:
        return None
    for item in found:
        if not _is_uri(item):
            raise QueryParameterException(name, f"{item!r} is not a URI")
    return frozenset(found)


def _vocabulary(name: str, found: list[str] | None, web: str, urn: str) -> frozenset[str] | None:
    """CBV values as bare words: `shipping`, `https://ref.gs1.org/cbv/BizStep-shipping` and
    `urn:epcglobal:cbv:bizstep:shipping` are one value; other URIs are custom values (kept)."""
    if found is None:
        return None
    words = set()
    for item in found:
        words.add(cbv_word(item, web, urn))
        if ":" not in item and not item.replace("_", "").isalnum():
            raise QueryParameterException(name, f"{item!r} is neither a CBV word nor a URI")
    return frozenset(words)


def cbv_word(value: str, web: str, urn: str) -> str:
    for prefix in (f"{CBV_VOCABULARY}{web}-", f"urn:epcglobal:cbv:{urn}:"):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _time(name: str, text: str) -> float:
    """An xsd:dateTime with its offset (a `+` read as a space from an unencoded query is mended)."""
    mended = text.strip().replace(" ", "+")
    try:
        moment = datetime.datetime.fromisoformat(mended.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryParameterException(
            name, f"{text!r} is not a date-time (e.g. 2026-11-03T08:00:00.000Z)"
        ) from None
    if moment.tzinfo is None or "T" not in mended.upper():
        raise QueryParameterException(name, f"{text!r} needs a time and an offset (Z or +hh:mm)")
    return moment.timestamp()


def _whole_seconds(seconds: float | None) -> int | None:
    """Block times are whole seconds: `t >= x` iff `t >= ceil(x)`, and `t < x` iff `t < ceil(x)`."""
    return None if seconds is None else math.ceil(seconds)


def _millis(seconds: float | None) -> int | None:
    return None if seconds is None else math.ceil(round(seconds * 1000, 3))


def _per_page(found: list[str] | None) -> int:
    if found is None:
        return DEFAULT_PER_PAGE
    text = found[0]
    if not text.isdigit() or not 1 <= int(text) <= MAX_PER_PAGE:
        raise QueryParameterException("perPage", f"a whole number from 1 to {MAX_PER_PAGE}")
    return int(text)


Resolve = Callable[[Iterable[LotNumber], str], dict[LotNumber, set[str]]]
"""Looks up what GS1 lot numbers (or GLN extensions: "site") name: the index's part."""


def interpret(query: EventQuery, scheme: IdentifierScheme, resolve: Resolve) -> EventQuery:
    """`query` with the URIs it names lots, sites and transformations by read as ours, in any form
    `scheme` may write them (URIs that name nothing of ours drop out: the empty set matches
    nothing, as the standard has it)."""
    if query.interpreted:
        return query
    numbers: list[tuple[str, LotNumber]] = []

    def read(
        uris: frozenset[str] | None, parse: Callable[[str], LotName | None], kind: str
    ) -> frozenset[str] | None:
        if uris is None:
            return None
        found: set[str] = set()
        for uri in uris:
            name = parse(uri)
            if isinstance(name, LotNumber):
                numbers.append((kind, name))
            elif name is not None:
                found.add(name)
        return frozenset(found)

    lots = {
        field_name: read(getattr(query, field_name), scheme.parse_lot, "lot")
        for field_name in ("lots", "input_lots", "output_lots", "any_lots")
    }
    sites = read(query.sites, scheme.parse_site, "site")
    if numbers:
        resolved_lots = resolve([number for kind, number in numbers if kind == "lot"], "lot")
        resolved_sites = resolve([number for kind, number in numbers if kind == "site"], "site")
        for field_name in lots:
            uris = getattr(query, field_name) or frozenset()
            extra = {lot for uri in uris if isinstance(number := scheme.parse_lot(uri), LotNumber)
                     for lot in resolved_lots.get(number, ())}  # fmt: skip
            if extra and lots[field_name] is not None:
                lots[field_name] = frozenset({*(lots[field_name] or ()), *extra})
        if sites is not None:
            extra_sites = {site for _, number in numbers for site in resolved_sites.get(number, ())}
            sites = frozenset({*sites, *extra_sites})
    transform_ids = None
    if query.transformation_uris is not None:
        parsed = (scheme.parse_transformation(uri) for uri in query.transformation_uris)
        transform_ids = frozenset(found for found in parsed if found is not None)
    return replace(
        query,
        sites=sites,
        transform_ids=transform_ids,
        interpreted=True,
        lots=lots["lots"],
        input_lots=lots["input_lots"],
        output_lots=lots["output_lots"],
        any_lots=lots["any_lots"],
    )


def _fingerprint(values: Mapping[str, list[str]], fixed: Mapping[str, str]) -> str:
    canonical = sorted(
        (name, sorted(items)) for name, items in values.items() if name not in PAGING and items
    ) + sorted(fixed.items())
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------- pages


def encode_token(key: Key, fingerprint: str) -> str:
    raw = json.dumps([*key, fingerprint], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, fingerprint: str) -> Key:
    """The key after which the next page starts; refused for a token of another query."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise QueryParameterException("nextPageToken", "not a token this repository handed out") from None
    if (
        not isinstance(raw, list)
        or len(raw) != 5
        or not all(type(part) is int and part >= 0 for part in raw[:4])
        or raw[4] != fingerprint
    ):
        raise QueryParameterException(
            "nextPageToken", "not a token this repository handed out for this query"
        )
    return raw[0], raw[1], raw[2], raw[3]


def next_link(url_without_query: str, parameters: Parameters, token: str) -> str:
    """The `Link` header of a page with a next one: the same request, with the next page's token."""
    kept = [(name, value) for name, value in parameters if name != "nextPageToken"]
    query = urlencode([*kept, ("nextPageToken", token)])
    return f'<{url_without_query}?{query}>; rel="next"'


# ---------------------------------------------------------------------- documents and collections


def context() -> list[Any]:
    return [EPCIS_CONTEXT, {EXTENSION_PREFIX: EXTENSION_NAMESPACE}]


def query_document(
    events: Sequence[Mapping[str, Any]], created_at: int, query_name: str = QUERY_NAME
) -> dict[str, Any]:
    """An EPCISQueryDocument holding `events` (the answer of every events resource)."""
    return {
        "@context": context(),
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_time(created_at),
        "epcisBody": {"queryResults": {"queryName": query_name, "resultsBody": {"eventList": list(events)}}},
    }


def query_document_text(texts: Sequence[str], created_at: int, query_name: str = QUERY_NAME) -> str:
    """`query_document` as compact JSON, from its events already written as JSON (`texts`): the
    answer of every events resource, with no event parsed or written again."""
    empty = json.dumps(query_document((), created_at, query_name), separators=(",", ":"))
    # `eventList` is the document's last member: its empty list is the last `[]` in the text
    head, _, tail = empty.rpartition("[]")
    return head + "[" + ",".join(texts) + "]" + tail


def collection(members: Iterable[str]) -> dict[str, Any]:
    return {"@context": context(), "type": "Collection", "member": list(members)}


@dataclass(frozen=True)
class ListPage:
    """A page of a static list (event types, CBV words), by position."""

    members: tuple[str, ...]
    next_token: str | None


def list_page(items: Sequence[str], parameters: Parameters, name: str) -> ListPage:
    """Pages of a fixed list; a token is the position of the next member."""
    per_page, start = page_parameters(parameters, name)
    start_index = 0 if start is None else _position(start, len(items))
    members = tuple(items[start_index : start_index + per_page])
    more = start_index + per_page < len(items)
    return ListPage(members, encode_token((start_index + per_page, 0, 0, 0), name) if more else None)


def _position(token: str, length: int) -> int:
    position = decode_token(token, _list_fingerprint(token))[0]
    if position > length:
        raise QueryParameterException("nextPageToken", "not a token this repository handed out")
    return position


def _list_fingerprint(token: str) -> str:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(raw[4])
    except (binascii.Error, ValueError, IndexError, TypeError, KeyError):
        raise QueryParameterException("nextPageToken", "not a token this repository handed out") from None


def page_parameters(parameters: Parameters, resource: str) -> tuple[int, str | None]:
    """`perPage` and `nextPageToken` of a collection (the only parameters a collection takes)."""
    seen: dict[str, str] = {}
    for name, value in parameters:
        if name not in PAGING:
            raise QueryParameterException(name, f"{resource} takes only perPage and nextPageToken")
        if name in seen:
            raise QueryParameterException(name, "given more than once")
        seen[name] = value
    return _per_page([seen["perPage"]] if "perPage" in seen else None), seen.get("nextPageToken")


def collection_token(after: str, resource: str) -> str:
    """A page token holding the last member of a page of a collection kept in SQL."""
    raw = json.dumps([after, resource], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def collection_after(token: str | None, resource: str) -> str | None:
    if token is None:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise QueryParameterException("nextPageToken", "not a token this repository handed out") from None
    if not isinstance(raw, list) or len(raw) != 2 or not isinstance(raw[0], str) or raw[1] != resource:
        raise QueryParameterException("nextPageToken", "not a token this repository handed out for this list")
    return raw[0]


# ---------------------------------------------------------------------- negotiation


@dataclass(frozen=True)
class Negotiated:
    media_type: str
    epc_format: str = EPC_FORMAT_ANSWERED
    extras: dict[str, str] = field(default_factory=dict)


def negotiate(accept: str | None, epc_format: str | None, headers: Mapping[str, str]) -> Negotiated:
    """The media type to answer in (JSON-LD unless the client prefers plain JSON); a
    NotAcceptableException for one this server does not speak, or versions it does not."""
    media = _media_type(accept)
    if epc_format is not None and epc_format not in EPC_FORMATS:
        raise NotAcceptableException(
            f"GS1-EPC-Format: {epc_format!r} is not one of {', '.join(EPC_FORMATS)}", "GS1-EPC-Format"
        )
    for name, ours in (("EPCIS", EPCIS_VERSION), ("CBV", CBV_VERSION)):
        low, high = headers.get(f"gs1-{name.lower()}-min"), headers.get(f"gs1-{name.lower()}-max")
        if low is not None and _version(f"GS1-{name}-Min", low) > _version(name, ours):
            raise NotAcceptableException(
                f"GS1-{name}-Min: this server speaks {name} {ours} only", f"GS1-{name}-Min"
            )
        if high is not None and _version(f"GS1-{name}-Max", high) < _version(name, ours):
            raise NotAcceptableException(
                f"GS1-{name}-Max: this server speaks {name} {ours} only", f"GS1-{name}-Max"
            )
    return Negotiated(media)


def _version(name: str, text: str) -> tuple[int, ...]:
    parts = text.strip().split(".")
    if not all(part.isdigit() for part in parts):
        raise NotAcceptableException(f"{name}: {text!r} is not a version such as 2.0.0", name)
    numbers = [int(part) for part in parts]
    return tuple(numbers + [0] * (3 - len(numbers)))


def _media_type(accept: str | None) -> str:
    if accept is None or not accept.strip():
        return MEDIA_TYPES[0]
    offered: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept.split(",")):
        kind, *options = (part.strip() for part in item.split(";"))
        quality = 1.0
        for option in options:
            key, _, value = option.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        kind = kind.lower()
        if kind in MEDIA_TYPES:
            offered.append((quality, -position, kind))
        elif kind in ("*/*", "application/*"):
            offered.append((quality, -position - 1000, MEDIA_TYPES[0]))
    if not offered:
        raise NotAcceptableException(
            f"this repository answers in {' or '.join(MEDIA_TYPES)} only (Accept: {accept})", "Accept"
        )
    return max(offered)[2]


def response_headers(negotiated: Negotiated | None = None) -> dict[str, str]:
    """The GS1 headers every answer of the query interface carries."""
    return {
        "GS1-EPCIS-Version": EPCIS_VERSION,
        "GS1-EPCIS-Min": EPCIS_VERSION,
        "GS1-EPCIS-Max": EPCIS_VERSION,
        "GS1-CBV-Version": CBV_VERSION,
        "GS1-CBV-Min": CBV_VERSION,
        "GS1-CBV-Max": CBV_VERSION,
        "GS1-EPC-Format": EPC_FORMAT_ANSWERED if negotiated is None else negotiated.epc_format,
        "GS1-Extensions": f"{EXTENSION_PREFIX}={EXTENSION_NAMESPACE}",
    }
