"""EPCIS 2.0 capture: which events of a document this registry can record, as the write operations
the JSON API would store for them (`provenance.domain.operations`).

A document (an `EPCISDocument`, an `EPCISQueryDocument` as the query interface answers, or one
event for `POST /events`) is checked against GS1's JSON schema, then each event is mapped, the
inverse of `provenance.epcis.event_of`:

* ObjectEvent ADD commissioning, one `quantityList` entry (`epcClass` a lot URI, `quantity` in
  GRM, KGM or TNE), `bizLocation` a site: `register_lots`, with the lot's `mp:face`,
  `mp:commodity`, `mp:gradePpm`, `mp:extractedAt` and `mp:recordHash`;
* TransformationEvent creating_class_instance at a site, `mp:transformKind`, `mp:recordHash` and
  `mp:outputs` (each output's `mp:commodity`, `mp:gradePpm`, `mp:recordHash`): `transform`, whose
  loss is what the inputs consume beyond the outputs;
* ObjectEvent OBSERVE shipping (in_transit), possessing_party source and destination: `hand_over`
  from the source to the destination; receiving (in_progress): `accept_handover` by the
  destination;
* ObjectEvent OBSERVE inspecting with one sensor report (Dimensionless, uom 59 = ppm, metadata
  time, deviceID the lab, dataProcessingMethod the method), `mp:certificateHash` and
  `mp:labSignature`: `submit_assay`.

Anything else, any field the chain cannot keep (a read point, instance-level EPCs, business
transactions, another vocabulary's extension field, ...) refuses the event: a `CaptureRefused`
naming the event (its index and eventID) and the field. What the chain assigns itself is read and
dropped: `eventID`, `recordTime`, `transformationID`, `mp:chain`; `eventTime` becomes the block's.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import cache, partial
from importlib import resources
from typing import Any

import jsonschema_rs

from provenance.domain.commands import MAX_BATCH_LOTS, Command, SubmitAssay, command_of
from provenance.domain.credentials import Credential
from provenance.domain.operations import OperationKind, OperationStatus, OperationView
from provenance.epcis.export import (
    CBV_VOCABULARY,
    EXTENSION_NAMESPACE,
    PPM,
    TRANSFORMATION_STEP,
    parse_account_uri,
    parse_lot_uri,
    parse_method_uri,
    parse_site_uri,
)
from provenance.epcis.ids import IdentifierScheme
from provenance.epcis.query import EpcisException, ValidationException
from provenance.errors import DomainError
from provenance.index.capture_store import CaptureRecord, CaptureStore, NewWrite
from provenance.services.access import (
    AttestationReader,
    MissingRole,
    RoleGate,
    lab_of_signature,
    refuse_replayed_assay,
)

CAPTURE_LIMIT = MAX_BATCH_LOTS
"""Events per capture (`GS1-EPCIS-Capture-Limit`): one job's operations are stored in one
database transaction."""
CAPTURE_FILE_SIZE_LIMIT = 4 * 1024 * 1024
"""Bytes per capture (`GS1-EPCIS-Capture-File-Size-Limit`): our events are 0.8 to 1.5 KB each
with their extension fields, so 1,000 fit with room."""
ERROR_BEHAVIOURS = ("rollback", "proceed")


def capture_limit_headers() -> dict[str, str]:
    """The limits, announced on every answer of the EPCIS interface."""
    return {
        "GS1-EPCIS-Capture-Limit": str(CAPTURE_LIMIT),
        "GS1-EPCIS-Capture-File-Size-Limit": str(CAPTURE_FILE_SIZE_LIMIT),
    }


GRAMS_PER_UNIT = {"GRM": 1, "KGM": 1_000, "TNE": 1_000_000}
"""UN/CEFACT units of mass a quantity may be in."""

_NOT_RECORDED = {
    "epcList": "instance-level EPCs: this registry's lots are classes with quantities (quantityList)",
    "parentID": "aggregation: this registry has none",
    "childEPCs": "aggregation: this registry has none",
    "childQuantityList": "aggregation: this registry has none",
    "inputEPCList": "instance-level EPCs: transformations here consume classes (inputQuantityList)",
    "outputEPCList": "instance-level EPCs: transformations here make classes (outputQuantityList)",
    "readPoint": "the chain records no read points",
    "bizTransactionList": "the chain records no business transactions",
    "ilmd": "lot master data here are this registry's extension fields (mp:face, mp:commodity, ...)",
    "certificationInfo": "the chain records no certification information",
    "persistentDisposition": "the chain records no persistent dispositions",
}
"""Standard fields with no counterpart on chain, and why."""

_IGNORED = frozenset({"type", "eventID", "recordTime", "eventTime", "eventTimeZoneOffset", "@context"})
"""Read (or checked by the schema) and not kept: the chain assigns the event's time and ID."""


class CaptureRefused(ValidationException):
    """An event (or the document) this registry cannot record, naming the event and the field."""

    def __init__(self, field_name: str, message: str, index: int | None = None, event_id: str | None = None):
        where = "the document" if index is None else f"event {index}" + (f" ({event_id})" if event_id else "")
        super().__init__(f"{where}: {field_name}: {message}", field_name)
        self.field = field_name
        self.message = message
        self.index = index
        self.event_id = event_id

    def problem(self) -> dict[str, Any]:
        body = super().problem()
        if self.index is not None:
            body["eventIndex"] = self.index
        if self.event_id is not None:
            body["eventID"] = self.event_id
        return body


class CaptureLimitExceededException(EpcisException):
    status, kind, title = 413, "CaptureLimitExceededException", "Capture limit exceeded"


class CaptureConflict(EpcisException):
    """An Idempotency-Key already names a capture of another document."""

    status, kind, title = 409, "ResourceAlreadyExistsException", "Idempotency-Key reused"


# ---------------------------------------------------------------------- the document


@cache
def schema_validator() -> jsonschema_rs.Draft7Validator:
    """GS1's EPCIS 2.0 JSON schema (package data, copied unchanged), formats (`date-time`, `uri`)
    checked. jsonschema-rs, not the Python `jsonschema`, which is three orders of magnitude slower
    on GS1's schema (docs/benchmarks.md, "Profiles behind the code")."""
    text = resources.files("provenance").joinpath("data/epcis/EPCIS-JSON-Schema.json").read_text()
    return jsonschema_rs.Draft7Validator(json.loads(text), validate_formats=True)


def read_document(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise CaptureRefused("body", "is not JSON") from None


def events_of_document(document: Any) -> tuple[list[Any], dict[str, str]]:
    """The document's events and its `@context`'s namespace prefixes; a single event is a document
    of one (`POST /events`)."""
    if not isinstance(document, dict):
        raise CaptureRefused("body", "must be an EPCISDocument, an EPCISQueryDocument or one event")
    namespaces = _namespaces(document.get("@context"))
    kind = document.get("type")
    body = document.get("epcisBody")
    if kind == "EPCISDocument" and isinstance(body, dict):
        events = body.get("eventList", [])
    elif kind == "EPCISQueryDocument" and isinstance(body, dict):
        results = body.get("queryResults", {})
        events = results.get("resultsBody", {}).get("eventList", []) if isinstance(results, dict) else []
    elif kind in (
        "ObjectEvent",
        "TransformationEvent",
        "AggregationEvent",
        "TransactionEvent",
        "AssociationEvent",
    ):
        events = [document]
    else:
        raise CaptureRefused("type", "must be EPCISDocument, EPCISQueryDocument or an EPCIS event type")
    if not isinstance(events, list):
        raise CaptureRefused("eventList", "must be a list")
    return events, namespaces


def _namespaces(context: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, dict):
            found |= {prefix: iri for prefix, iri in entry.items() if isinstance(iri, str)}
    return found


def schema_problems(
    document: Any, single_event: bool
) -> tuple[dict[int, CaptureRefused], CaptureRefused | None]:
    """GS1's schema's first complaint about each event (by index), and about the rest of the
    document (None if it has none)."""
    by_event: dict[int, CaptureRefused] = {}
    rest: CaptureRefused | None = None
    for error in schema_validator().iter_errors(document):
        path = list(error.instance_path)
        where = "/".join(str(part) for part in path) or "document"
        if single_event:
            path = ["epcisBody", "eventList", 0, *path]
        index = _event_index(path)
        if index is None:
            rest = rest or CaptureRefused(where, f"GS1's EPCIS schema: {error.message}")
            continue
        inner = "/".join(str(part) for part in path[path.index(index, 2) + 1 :]) or "event"
        by_event.setdefault(
            index, CaptureRefused(inner, f"GS1's EPCIS schema: {_short(error.message)}", index)
        )
    return by_event, rest


def _event_index(path: list[Any]) -> int | None:
    for position, part in enumerate(path):
        if part == "eventList" and position + 1 < len(path) and isinstance(path[position + 1], int):
            return int(path[position + 1])
    return None


def _short(message: str) -> str:
    return message if len(message) <= 300 else message[:297] + "..."


# ---------------------------------------------------------------------- one event


@dataclass(frozen=True)
class IdentifierReaders:
    """How a capture reads identifiers back into labels and addresses (None: not one of ours): by
    default `provenance.epcis.export`'s inverses of the identifiers it writes; a deployment with other
    identifiers passes its own (the same functions bound to its scheme)."""

    lot: Callable[[str], str | None] = parse_lot_uri
    site: Callable[[str], str | None] = parse_site_uri
    account: Callable[[str], str | None] = parse_account_uri
    method: Callable[[str], str | None] = parse_method_uri


DEFAULT_READERS = IdentifierReaders()


def readers_of(scheme: IdentifierScheme) -> IdentifierReaders:
    """The readers of a deployment's identifiers: what its exports write, its captures read."""
    return IdentifierReaders(
        partial(parse_lot_uri, scheme=scheme),
        partial(parse_site_uri, scheme=scheme),
        partial(parse_account_uri, scheme=scheme),
        partial(parse_method_uri, scheme=scheme),
    )


@dataclass(frozen=True)
class PlannedWrite:
    """What one event becomes: an operation, and what its sender must be allowed to do."""

    index: int
    event_id: str | None
    kind: OperationKind
    payload: dict[str, Any]
    registrar_of: str | None = None
    """The site whose registrar role the sender needs."""
    role: str | None = None
    """Another role the sender needs (PROCESSOR_ROLE)."""
    sender: str | None = None
    """The account that must send it (a custody step's party), else anyone allowed."""
    lab: str | None = None
    """The lab the assay names, whose signature it must carry."""
    field_names: Mapping[str, str] = field(default_factory=dict)
    """The event's field for each payload field, to name in a refusal."""
    command: Command | None = None
    """The payload parsed (by `plan_event`, which refuses the event if it does not parse)."""

    @property
    def parsed(self) -> Command:
        assert self.command is not None, "planned writes are parsed by plan_event"
        return self.command

    def refusal(self, error: DomainError) -> CaptureRefused:
        name = error.field
        for prefix, event_field in self.field_names.items():
            if name == prefix or name.startswith(prefix):
                name = event_field
                break
        return CaptureRefused(name, error.message, self.index, self.event_id)


class _Event:
    """An event's fields, each read once and named in a refusal."""

    def __init__(
        self, event: Mapping[str, Any], index: int, namespaces: Mapping[str, str], ids: IdentifierReaders
    ) -> None:
        self.event = event
        self.ids = ids
        self.index = index
        eid = event.get("eventID")
        self.event_id = eid if isinstance(eid, str) else None
        self.ours: dict[str, tuple[str, Any]] = {}
        self.foreign: list[str] = []
        self.standard: dict[str, Any] = {}
        for name, value in event.items():
            prefix, colon, local = name.partition(":")
            if colon and prefix in namespaces and namespaces[prefix] == EXTENSION_NAMESPACE:
                self.ours[local] = (name, value)
            elif colon:
                self.foreign.append(name)
            else:
                self.standard[name] = value
        self.read: set[str] = set()
        self.our_prefixes = {prefix for prefix, iri in namespaces.items() if iri == EXTENSION_NAMESPACE}

    def canonical(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A nested object's keys with our namespace's prefix written `mp:` (whatever the document
        calls it)."""
        named = {}
        for name, value in record.items():
            prefix, colon, local = name.partition(":")
            named[f"mp:{local}" if colon and prefix in self.our_prefixes else name] = value
        return named

    def refuse(self, field_name: str, message: str) -> CaptureRefused:
        return CaptureRefused(field_name, message, self.index, self.event_id)

    def get(self, name: str) -> Any:
        self.read.add(name)
        return self.standard.get(name)

    def need(self, name: str) -> Any:
        value = self.get(name)
        if value is None:
            raise self.refuse(name, "is required for this kind of event")
        return value

    def ours_need(self, local: str, kind: type | tuple[type, ...] = str) -> Any:
        if local not in self.ours:
            raise self.refuse(f"mp:{local}", f"is required (extension field in {EXTENSION_NAMESPACE})")
        name, value = self.ours[local]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise self.refuse(name, "has the wrong type")
        return value

    def expect(self, name: str, *accepted: str) -> None:
        value = self.get(name)
        if value not in accepted:
            raise self.refuse(
                name, f"must be {' or '.join(accepted[:1])} for this kind of event, got {value!r}"
            )

    def finish(self, ours: Sequence[str]) -> None:
        """Refuses whatever the mapping did not read: the chain would not keep it."""
        for name in self.standard:
            if name not in self.read and name not in _IGNORED:
                raise self.refuse(name, "this registry cannot record it on chain")
        for name in self.foreign:
            raise self.refuse(name, "an extension field this registry cannot record on chain")
        for local, (name, _) in self.ours.items():
            if local not in ours and local != "chain":
                raise self.refuse(name, "not one of this registry's extension fields for this event")


def _cbv(value: Any, vocabulary: str) -> Any:
    """A CBV value as its bare word (`shipping` for its web URI or URN)."""
    if not isinstance(value, str):
        return value
    for prefix in (f"{CBV_VOCABULARY}{vocabulary}-", f"urn:epcglobal:cbv:{vocabulary.lower()}:"):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _moment(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds(event: _Event, name: str, text: Any) -> int:
    if not isinstance(text, str):
        raise event.refuse(name, "must be an xsd:dateTime")
    try:
        moment = _moment(text)
    except ValueError:
        raise event.refuse(name, "must be an xsd:dateTime") from None
    if moment.tzinfo is None:
        raise event.refuse(name, "must carry a time zone offset")
    if moment.microsecond:
        raise event.refuse(name, "the chain records whole seconds")
    return int(moment.timestamp())


def _grams(event: _Event, name: str, entry: Mapping[str, Any]) -> int:
    if "quantity" not in entry or "uom" not in entry:
        raise event.refuse(name, "needs quantity and uom (bulk ore is a class with a quantity)")
    unit = entry["uom"]
    if unit not in GRAMS_PER_UNIT:
        raise event.refuse(f"{name}.uom", f"must be one of {', '.join(GRAMS_PER_UNIT)} (mass)")
    try:
        grams = Decimal(str(entry["quantity"])) * GRAMS_PER_UNIT[unit]
    except InvalidOperation:
        raise event.refuse(f"{name}.quantity", "is not a number") from None
    if grams != grams.to_integral_value() or grams <= 0:
        raise event.refuse(f"{name}.quantity", "must be a positive whole number of grams")
    return int(grams)


def _lot(event: _Event, name: str, entry: Any, *, quantity: bool) -> str:
    if not isinstance(entry, Mapping):
        raise event.refuse(name, "must be a quantity element")
    extra = set(entry) - {"epcClass", "quantity", "uom"}
    if extra:
        raise event.refuse(f"{name}.{sorted(extra)[0]}", "this registry cannot record it on chain")
    lot = event.ids.lot(str(entry.get("epcClass", "")))
    if lot is None:
        raise event.refuse(f"{name}.epcClass", "is not a lot of this registry (see provenance.epcis.lot_uri)")
    if not quantity and ("quantity" in entry or "uom" in entry):
        raise event.refuse(f"{name}.quantity", "a custody step or assay concerns the whole lot: leave it out")
    return lot


def _site(event: _Event) -> str:
    location = event.need("bizLocation")
    site = event.ids.site(str(location.get("id", ""))) if isinstance(location, Mapping) else None
    if site is None or set(location) != {"id"}:
        raise event.refuse("bizLocation.id", "is not a site of this registry (see provenance.epcis.site_uri)")
    return site


def _party(event: _Event, name: str, key: str) -> str:
    entries = event.need(name)
    if not isinstance(entries, list) or len(entries) != 1 or not isinstance(entries[0], Mapping):
        raise event.refuse(name, "needs exactly one possessing_party")
    entry = entries[0]
    if _cbv(entry.get("type"), "SDT") != "possessing_party":
        raise event.refuse(f"{name}[0].type", "must be possessing_party")
    account = event.ids.account(str(entry.get(key, "")))
    if account is None:
        raise event.refuse(f"{name}[0].{key}", "is not an account URI of this registry")
    return account


def _hex(event: _Event, local: str, length: int) -> str:
    value: str = event.ours_need(local)
    if not value.startswith("0x") or len(value) != 2 + 2 * length:
        raise event.refuse(f"mp:{local}", f"must be 0x followed by {2 * length} hex digits")
    return value


def _whole(event: _Event, local: str) -> int:
    value: int = event.ours_need(local, int)
    return value


def _lot_ids(event: _Event) -> list[str]:
    entries = event.need("quantityList")
    if not isinstance(entries, list) or not entries:
        raise event.refuse("quantityList", "must name at least one lot")
    return [_lot(event, f"quantityList[{n}]", entry, quantity=False) for n, entry in enumerate(entries)]


def _commissioning(event: _Event) -> PlannedWrite:
    event.expect("action", "ADD")
    entries = event.need("quantityList")
    if not isinstance(entries, list) or len(entries) != 1:
        raise event.refuse("quantityList", "a commissioning event registers exactly one lot")
    lot = _lot(event, "quantityList[0]", entries[0], quantity=True)
    site = _site(event)
    extracted_at = _seconds(event, "mp:extractedAt", event.ours_need("extractedAt"))
    item = {
        "lot_id": lot,
        "face": event.ours_need("face"),
        "commodity": event.ours_need("commodity"),
        "mass_g": _grams(event, "quantityList[0]", entries[0]),
        "grade_ppm": _whole(event, "gradePpm"),
        "extracted_at": extracted_at,
        "record_hash": _hex(event, "recordHash", 32),
    }
    event.finish(("face", "commodity", "gradePpm", "extractedAt", "recordHash"))
    names = {
        "lots[0].lot_id": "quantityList[0].epcClass",
        "lots[0].mass_g": "quantityList[0].quantity",
        "lots[0].face": "mp:face",
        "lots[0].commodity": "mp:commodity",
        "lots[0].grade_ppm": "mp:gradePpm",
        "lots[0].extracted_at": "mp:extractedAt",
        "lots[0].record_hash": "mp:recordHash",
        "site": "bizLocation.id",
    }
    return PlannedWrite(
        event.index,
        event.event_id,
        OperationKind.REGISTER_LOTS,
        {"site": site, "lots": [item]},
        registrar_of=site,
        field_names=names,
    )


def _transformation(event: _Event) -> PlannedWrite:
    event.expect("bizStep", TRANSFORMATION_STEP)
    event.get("transformationID")  # the chain numbers transformations itself
    site = _site(event)
    inputs = event.need("inputQuantityList")
    outputs = event.need("outputQuantityList")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or not inputs or not outputs:
        raise event.refuse("inputQuantityList", "a transformation needs inputs and outputs")
    consumed = [
        {
            "lot_id": _lot(event, f"inputQuantityList[{n}]", e, quantity=True),
            "mass_g": _grams(event, f"inputQuantityList[{n}]", e),
        }
        for n, e in enumerate(inputs)
    ]
    records = event.ours_need("outputs", list)
    by_lot: dict[str, Mapping[str, Any]] = {}
    for n, raw_record in enumerate(records):
        record = event.canonical(raw_record) if isinstance(raw_record, Mapping) else raw_record
        lot = event.ids.lot(str(record.get("mp:epcClass", ""))) if isinstance(record, Mapping) else None
        if lot is None:
            raise event.refuse(f"mp:outputs[{n}].mp:epcClass", "is not a lot of this registry")
        by_lot[lot] = record
    produced = []
    for n, entry in enumerate(outputs):
        lot = _lot(event, f"outputQuantityList[{n}]", entry, quantity=True)
        record = by_lot.pop(lot, None)
        if record is None:
            raise event.refuse("mp:outputs", f"has no entry for output {n} ({entry.get('epcClass')})")
        unknown = set(record) - {"mp:epcClass", "mp:commodity", "mp:gradePpm", "mp:recordHash"}
        if unknown:
            raise event.refuse(
                f"mp:outputs[{n}].{sorted(unknown)[0]}", "this registry cannot record it on chain"
            )
        produced.append(
            {
                "lot_id": lot,
                "commodity": record.get("mp:commodity"),
                "mass_g": _grams(event, f"outputQuantityList[{n}]", entry),
                "grade_ppm": record.get("mp:gradePpm"),
                "record_hash": record.get("mp:recordHash"),
            }
        )
    if by_lot:
        raise event.refuse("mp:outputs", f"names {sorted(by_lot)[0]}, which is not an output")
    loss = sum(_grams(event, f"inputQuantityList[{n}]", e) for n, e in enumerate(inputs)) - sum(
        _grams(event, f"outputQuantityList[{n}]", e) for n, e in enumerate(outputs)
    )
    if loss < 0:
        raise event.refuse("outputQuantityList", "the outputs weigh more than the inputs")
    kind = event.ours_need("transformKind")
    record_hash = _hex(event, "recordHash", 32)
    event.finish(("transformKind", "recordHash", "outputs"))
    names = {"kind": "mp:transformKind", "record_hash": "mp:recordHash", "loss_g": "outputQuantityList"}
    names |= {f"inputs[{n}].": f"inputQuantityList[{n}]" for n in range(len(consumed))}
    names |= {f"outputs[{n}].": f"mp:outputs[{n}]" for n in range(len(produced))}
    return PlannedWrite(
        event.index,
        event.event_id,
        OperationKind.TRANSFORM,
        {
            "kind": kind,
            "site": site,
            "inputs": consumed,
            "outputs": produced,
            "loss_g": loss,
            "record_hash": record_hash,
        },
        role="PROCESSOR_ROLE",
        field_names=names | {"site": "bizLocation.id"},
    )


def _custody(event: _Event, shipping: bool) -> PlannedWrite:
    event.expect("action", "OBSERVE")
    disposition = _cbv(event.get("disposition"), "Disp")
    wanted = "in_transit" if shipping else "in_progress"
    if disposition != wanted:
        raise event.refuse("disposition", f"must be {wanted} for {'shipping' if shipping else 'receiving'}")
    lot_ids = _lot_ids(event)
    source = _party(event, "sourceList", "source")
    destination = _party(event, "destinationList", "destination")
    event.finish(())
    if shipping:
        return PlannedWrite(
            event.index,
            event.event_id,
            OperationKind.HAND_OVER,
            {"lot_ids": lot_ids, "to": destination},
            sender=source,
            field_names={"lot_ids": "quantityList", "to": "destinationList[0].destination"},
        )
    return PlannedWrite(
        event.index,
        event.event_id,
        OperationKind.ACCEPT_HANDOVER,
        {"lot_ids": lot_ids},
        sender=destination,
        field_names={"lot_ids": "quantityList"},
    )


DIMENSIONLESS = ("Dimensionless", "gs1:Dimensionless")
"""A grade's measurement type as GS1's JSON schema lets a document write it (bare or compact; the
schema refuses the expanded IRI before the mapping reads it)."""


def _inspecting(event: _Event) -> PlannedWrite:
    event.expect("action", "OBSERVE")
    lot_ids = _lot_ids(event)
    if len(lot_ids) != 1:
        raise event.refuse("quantityList", "an assay is of exactly one lot")
    elements = event.get("sensorElementList")
    if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], Mapping):
        raise event.refuse("sensorElementList", "an assay is one sensor element with one report of the grade")
    element = elements[0]
    metadata = element.get("sensorMetadata")
    reports = element.get("sensorReport")
    if set(element) != {"sensorMetadata", "sensorReport"} or not isinstance(metadata, Mapping):
        raise event.refuse("sensorElementList[0]", "needs sensorMetadata and sensorReport, nothing else")
    # A lab's time after the block's travels in mp:assayedAt (EPCIS 2.0 7.3.5.5.1: a sensor's time is
    # at or before the eventTime), so the metadata has the time or the event has that field
    late = "assayedAt" in event.ours
    if set(metadata) != {"deviceID", "dataProcessingMethod"} | (set() if late else {"time"}):
        raise event.refuse(
            "sensorElementList[0].sensorMetadata",
            "must hold exactly deviceID, dataProcessingMethod and time (unless mp:assayedAt gives it)",
        )
    if not isinstance(reports, list) or len(reports) != 1 or not isinstance(reports[0], Mapping):
        raise event.refuse("sensorElementList[0].sensorReport", "must be one report of the grade")
    report = reports[0]
    where = "sensorElementList[0].sensorReport[0]"
    if set(report) != {"type", "value", "uom"}:
        raise event.refuse(where, "must hold exactly type, value and uom")
    if report["type"] not in DIMENSIONLESS or report["uom"] != PPM:
        raise event.refuse(where, f"the grade is type Dimensionless in uom {PPM} (ppm)")
    grade = report["value"]
    if isinstance(grade, float) and grade.is_integer():
        grade = int(grade)
    lab = event.ids.account(str(metadata["deviceID"]))
    if lab is None:
        raise event.refuse(
            "sensorElementList[0].sensorMetadata.deviceID", "is not an account URI of this registry"
        )
    method = event.ids.method(str(metadata["dataProcessingMethod"]))
    if method is None:
        raise event.refuse(
            "sensorElementList[0].sensorMetadata.dataProcessingMethod", "is not a method URI of this registry"
        )
    time_field = "mp:assayedAt" if late else "sensorElementList[0].sensorMetadata.time"
    assayed_at = _seconds(event, time_field, event.ours_need("assayedAt") if late else metadata["time"])
    assay = {
        "lot_id": lot_ids[0],
        "grade_ppm": grade,
        "method": method,
        "certificate_hash": _hex(event, "certificateHash", 32),
        "assayed_at": assayed_at,
    }
    signature = _hex(event, "labSignature", 65)
    event.finish(("certificateHash", "labSignature", "assayedAt"))
    return PlannedWrite(
        event.index,
        event.event_id,
        OperationKind.SUBMIT_ASSAY,
        {"assay": assay, "signature": signature},
        lab=lab,
        field_names={
            "assay.lot_id": "quantityList[0].epcClass",
            "assay.grade_ppm": f"{where}.value",
            "assay.method": "sensorElementList[0].sensorMetadata.dataProcessingMethod",
            "assay.certificate_hash": "mp:certificateHash",
            "assay.assayed_at": time_field,
            "signature": "mp:labSignature",
        },
    )


def plan_event(
    raw: Any, index: int, namespaces: Mapping[str, str], ids: IdentifierReaders = DEFAULT_READERS
) -> PlannedWrite:
    """The write one event becomes; CaptureRefused naming the field if it cannot be recorded."""
    if not isinstance(raw, Mapping):
        raise CaptureRefused("event", "must be an object", index)
    event = _Event(raw, index, namespaces, ids)
    if "errorDeclaration" in raw:
        raise event.refuse("errorDeclaration", "capture a correction through POST /v1/corrections")
    kind = event.get("type")
    if kind not in ("ObjectEvent", "TransformationEvent"):
        raise event.refuse(
            "type", f"{kind} has no counterpart in this registry (Object and Transformation events only)"
        )
    for name, why in _NOT_RECORDED.items():
        if name in raw:
            raise event.refuse(name, why)
    if kind == "TransformationEvent":
        planned = _transformation(event)
    else:
        step = _cbv(event.get("bizStep"), "BizStep")
        if step == "commissioning":
            planned = _commissioning(event)
        elif step in ("shipping", "receiving"):
            planned = _custody(event, step == "shipping")
        elif step == "inspecting" and "sensorElementList" in raw:
            planned = _inspecting(event)
        else:
            raise event.refuse(
                "bizStep",
                "an ObjectEvent here is commissioning, shipping, receiving or inspecting (with a sensor report)",
            )
    try:
        return replace(planned, command=command_of(planned.kind, planned.payload))
    except DomainError as error:
        raise planned.refusal(error) from None


@dataclass(frozen=True)
class CapturePlan:
    writes: tuple[PlannedWrite, ...]
    refused: tuple[CaptureRefused, ...]
    events: int
    fingerprint: str
    """Of the writes the document asks for (and its error behaviour): a retry is the same plan."""


def plan_capture(
    body: bytes, behaviour: str, *, single_event: bool = False, ids: IdentifierReaders = DEFAULT_READERS
) -> CapturePlan:
    """Every event's write, or why not; raises CaptureRefused for a document that is not one and
    CaptureLimitExceededException for one with too many events."""
    document = read_document(body)
    events, namespaces = events_of_document(document)
    if len(events) > CAPTURE_LIMIT:
        raise CaptureLimitExceededException(
            f"{len(events)} events: at most {CAPTURE_LIMIT} per capture (GS1-EPCIS-Capture-Limit)"
        )
    if single_event and document.get("type") in ("EPCISDocument", "EPCISQueryDocument"):
        raise CaptureRefused("type", "POST /events takes one event; send documents to /capture")
    by_event, rest = schema_problems(document, single_event)
    if rest is not None:
        raise rest
    writes: list[PlannedWrite] = []
    refused: list[CaptureRefused] = []
    for index, raw in enumerate(events):
        try:
            if index in by_event:
                raise by_event[index]
            writes.append(plan_event(raw, index, namespaces, ids))
        except CaptureRefused as error:
            if error.event_id is None and isinstance(raw, Mapping) and isinstance(raw.get("eventID"), str):
                error = CaptureRefused(error.field, error.message, index, raw["eventID"])
            refused.append(error)
    if not events:
        raise CaptureRefused("eventList", "holds no event")
    asked = [[str(w.kind), w.payload] for w in writes] + [[r.field, r.index] for r in refused]
    canonical = json.dumps({"behaviour": behaviour, "writes": asked}, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return CapturePlan(tuple(writes), tuple(refused), len(events), digest)


def error_behaviour(header: str | None) -> str:
    value = (header or "rollback").strip().lower()
    if value not in ERROR_BEHAVIOURS:
        raise CaptureRefused(
            "GS1-Capture-Error-Behaviour",
            f"must be rollback or proceed (got {header!r}; 'all' is not offered)",
        )
    return value


# ---------------------------------------------------------------------- the use case


class CaptureService:
    """Plans a document, checks each write's preconditions (the sender's role, the custody party,
    the lab's signature) as the JSON API would, and stores the job with its operations at once."""

    def __init__(
        self,
        store: CaptureStore,
        roles: RoleGate,
        client: AttestationReader,
        chain_id: int,
        registry: str,
        ids: IdentifierReaders = DEFAULT_READERS,
    ) -> None:
        self._store = store
        self._roles = roles
        self._client = client
        self._chain_id = chain_id
        self._registry = registry
        self._ids = ids

    def capture(
        self,
        caller: Credential,
        body: bytes,
        behaviour: str,
        idempotency_key: str | None,
        *,
        single_event: bool = False,
    ) -> CaptureRecord:
        """The job (a retry's: the first one); raises CaptureRefused (400), MissingRole (403) or,
        with `rollback`, the first event's refusal before anything is stored (a SecurityException,
        403, for a role the token's account lacks)."""
        plan = plan_capture(body, behaviour, single_event=single_event, ids=self._ids)
        retry_key = idempotency_key if idempotency_key is not None else f"document:{plan.fingerprint}"
        earlier = self._store.find(caller.id, retry_key, plan.fingerprint)
        if earlier is not None:
            return earlier
        refused = list(plan.refused)
        writes: list[NewWrite] = []
        for planned in plan.writes:
            try:
                self._check(planned, caller.account)
            except (CaptureRefused, MissingRole) as error:
                refusal = error if isinstance(error, CaptureRefused) else _denied(planned, error)
                if behaviour == "rollback":
                    raise refusal from None
                refused.append(refusal)
                continue
            writes.append(NewWrite(planned.index, planned.event_id, planned.parsed))
        if behaviour == "rollback" and refused:
            raise min(refused, key=lambda error: error.index if error.index is not None else -1)
        refused.sort(key=lambda error: error.index if error.index is not None else -1)
        record, _ = self._store.create(
            credential_id=caller.id,
            sender=caller.account,
            retry_key=retry_key,
            fingerprint=plan.fingerprint,
            behaviour=behaviour,
            event_count=plan.events,
            writes=writes,
            refused=[error.problem() for error in refused],
        )
        return record

    def _check(self, planned: PlannedWrite, sender: str) -> None:
        if planned.registrar_of is not None:
            self._roles.require(sender, self._roles.registrar(planned.registrar_of))
        if planned.role is not None:
            self._roles.require(sender, self._roles.named(planned.role))
        if planned.sender is not None and planned.sender.lower() != sender.lower():
            party = (
                "sourceList[0].source"
                if planned.kind is OperationKind.HAND_OVER
                else "destinationList[0].destination"
            )
            raise CaptureRefused(
                party,
                f"names {planned.sender}, but this token's account is {sender}: the chain takes a "
                "custody step only from that party",
                planned.index,
                planned.event_id,
            )
        command = planned.parsed
        if isinstance(command, SubmitAssay):
            assay, signature = command.assay, command.signature
            try:
                signer = lab_of_signature(self._roles, self._chain_id, self._registry, assay, signature)
                refuse_replayed_assay(self._client, assay)
            except DomainError as error:
                raise planned.refusal(error) from None
            if planned.lab is not None and signer.lower() != planned.lab.lower():
                raise CaptureRefused(
                    "sensorElementList[0].sensorMetadata.deviceID",
                    f"names {planned.lab}, but mp:labSignature was made by {signer}",
                    planned.index,
                    planned.event_id,
                )


def _denied(planned: PlannedWrite, error: MissingRole) -> CaptureRefused:
    refusal = CaptureRefused("Authorization", str(error), planned.index, planned.event_id)
    refusal.status, refusal.kind, refusal.title = 403, "SecurityException", "Not allowed"
    return refusal


def job_document(record: CaptureRecord, views: Mapping[str, OperationView]) -> dict[str, Any]:
    """GS1's CaptureJob of a job: running while an operation is not final; success once every
    event's operation is confirmed and none was refused; errors the refusals (at capture) and the
    chain's (later); our `operations` name each event's operation (`/v1/operations/{id}`)."""
    errors = [dict(problem) for problem in record.refused]
    running = False
    finished: str | None = None
    operations = []
    for event in record.events:
        view = views.get(event.operation_id)
        status = OperationStatus.PENDING if view is None else view.status
        operations.append(
            {
                "eventIndex": event.index,
                "eventID": event.event_id,
                "operation": f"/v1/operations/{event.operation_id}",
                "status": status.value,
            }
        )
        if view is None or not status.is_final:
            running = True
            continue
        finished = view.updated_at if finished is None else max(finished, view.updated_at)
        if status is OperationStatus.FAILED:
            where = f"event {event.index}" + (f" ({event.event_id})" if event.event_id else "")
            errors.append(
                {
                    "type": "epcisException:ValidationException",
                    "title": "The chain refused an event",
                    "detail": f"{where}: operation {event.operation_id} failed on chain: "
                    f"{view.error_name} {json.dumps(view.error_args or {}, sort_keys=True)}",
                    "eventIndex": event.index,
                    **({"eventID": event.event_id} if event.event_id else {}),
                }
            )
    created = record.created_at.astimezone(datetime.UTC).isoformat(timespec="milliseconds")
    document: dict[str, Any] = {
        "captureID": record.id,
        "createdAt": created.replace("+00:00", "Z"),
        "running": running,
        "success": not errors,
        "captureErrorBehaviour": record.error_behaviour,
        "errors": errors,
        "operations": operations,
    }
    if not running:
        document["finishedAt"] = _utc(finished) if finished is not None else document["createdAt"]
    return document


def _utc(text: str) -> str:
    moment = _moment(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
