"""The index's facts as an EPCIS 2.0 JSON-LD document, each event named by its CBV 2.0 event hash.

Mapping (every lot is a class-level identifier, `urn:mineral-provenance:lot:<lot id>`, with its
mass as a quantity in KGM; accounts and sites are `urn:mineral-provenance:account:<address>` and
`urn:mineral-provenance:site:<site>`; the URN namespace is private, not a registered one):

* a registration is an ObjectEvent, action ADD, bizStep commissioning, at the lot's site;
* a transformation is a TransformationEvent, bizStep creating_class_instance, at its site, with
  what it consumed of each input (inputQuantityList) and each output's mass (outputQuantityList);
* a handover offer is an ObjectEvent OBSERVE, bizStep shipping (disposition in_transit), and an
  acceptance one with bizStep receiving (disposition in_progress), both with the two custodians
  as possessing_party source and destination (cancelled offers are left out);
* an assay is an ObjectEvent OBSERVE, bizStep inspecting, with a sensor report of the grade
  (type Dimensionless, uom 59 = parts per million) whose metadata names the lab and method;
* a correction (CBV 2.0 error declaration) gives two events: a copy of the event that made the lot
  (its registration or transformation, same eventID) with an `errorDeclaration` (declarationTime
  the correction's block time, reason did_not_occur or incorrect_data, correctiveEventIDs), and the
  corrective event: an ObjectEvent DELETE, bizStep decommissioning, disposition inactive for a lot
  that did not occur; an ObjectEvent OBSERVE, bizStep inspecting, with the mass the lot holds
  after the correction for incorrect data; both with the adjustment, the account that corrected
  and the correction's record hash as extension fields.

Every event's `eventTime` is the timestamp of its block (UTC), and it carries its chain
coordinates in the extension field `mp:chain` (chain id, registry, tx hash, block, log index).

The event hash (`eventID`): the CBV 2.0 event hash ID, as the GS1 reference implementation
(github.com/RalphTro/epcis-event-hash-generator) computes it: a pre-hash string of
`eventType=<type>`, then the event's standard fields in the canonical property order (`key=value`
for a value, a container's name followed by its children, list entries sorted), then the user
extension fields (namespace prefix replaced by `{namespace IRI}`, sorted), all concatenated
without separators; `ni:///sha-256;<hex>?ver=CBV2.0` of its UTF-8 bytes. `eventID` and
`recordTime` are not hashed. Implemented here only for the fields this module emits:
time stamps are converted to UTC at millisecond precision (this module emits them so), numbers are written
without trailing zeros, bare CBV words are expanded to their CBV 2.0 web-vocabulary URIs
(`https://ref.gs1.org/cbv/BizStep-…`, `…/Disp-…`, `…/SDT-…`, `https://ref.gs1.org/voc/MT-…`).
Not implemented, because nothing here emits them: the GS1 Digital Link normalisation of EPC
URIs (our identifiers are private URNs, left as they are), certificationInfo, ilmd, bizTransaction
and persistentDisposition. Checked by the tests: the pre-hash of
an inspecting ObjectEvent against the one the reference's current source publishes as its CBV 2.0
expectation; and the eventIDs of registrations and a transformation (nested `mp:chain` extension
included) against what the reference's PyPI release 1.9.3 computes for them. For shipping,
receiving and inspecting events that release disagrees with the current source (it puts
destinationList before sourceList, names sensor elements differently and expands measurement
types to older URIs); we follow the current source, whose order is the property order it documents.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from provenance.domain.trace import Coordinates

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EXTENSION_PREFIX = "mp"
EXTENSION_NAMESPACE = "https://ns.mineral-provenance.example/epcis/"
"""The namespace of our extension fields (a placeholder domain: .example is reserved)."""
URN = "urn:mineral-provenance"

CBV_VOCABULARY = "https://ref.gs1.org/cbv/"
GS1_VOCABULARY = "https://ref.gs1.org/voc/"

TRANSFORMATION_STEP = "creating_class_instance"
PPM = "59"
"""UN/CEFACT common code for parts per million."""


# ---------------------------------------------------------------------- facts


@dataclass(frozen=True)
class Chain:
    """The chain and registry the facts come from."""

    chain_id: int
    registry: str


@dataclass(frozen=True)
class Registered:
    lot_id: str
    site: str
    mass_g: int
    at: Coordinates


@dataclass(frozen=True)
class Transformed:
    transform_id: int
    kind: str
    site: str
    inputs: tuple[tuple[str, int], ...]
    """(lot id, grams consumed) per input."""
    outputs: tuple[tuple[str, int], ...]
    """(lot id, grams) per output."""
    at: Coordinates


@dataclass(frozen=True)
class CustodyStep:
    lot_id: str
    action: str
    """offered or accepted."""
    from_address: str
    to_address: str
    at: Coordinates


@dataclass(frozen=True)
class Assayed:
    lot_id: str
    lab: str
    grade_ppm: int
    method: str
    certificate_hash: str
    assayed_at: int
    at: Coordinates


@dataclass(frozen=True)
class Corrected:
    """A correction (LotCorrected) of a lot, with the fact that made the lot: the event it declares
    in error."""

    lot_id: str
    reason: str
    """did_not_occur or incorrect_data (the CBV 2.0 error reasons)."""
    adjustment_g: int
    remaining_g: int
    corrected_by: str
    record_hash: str
    original: Registered | Transformed
    at: Coordinates


Fact = Registered | Transformed | CustodyStep | Assayed | Corrected


def order_key(fact: Fact) -> tuple[int, int, int]:
    return fact.at.block_number, fact.at.tx_index, fact.at.log_index


# ---------------------------------------------------------------------- identifiers and values


def _urn(kind: str, value: str) -> str:
    return f"{URN}:{kind}:{quote(value, safe='-._~')}"


def lot_uri(lot_id: str) -> str:
    return _urn("lot", lot_id)


def site_uri(site: str) -> str:
    return _urn("site", site)


def account_uri(address: str) -> str:
    return _urn("account", address)


def method_uri(method: str) -> str:
    return _urn("method", method)


def transformation_uri(chain: Chain, transform_id: int) -> str:
    return _urn("transformation", f"{chain.chain_id}-{chain.registry}-{transform_id}")


def kilograms(grams: int) -> int | float:
    """Grams as kilograms, an integer when whole (JSON numbers; exact to the gram below 2^53 g)."""
    if grams % 1000 == 0:
        return grams // 1000
    return grams / 1000


def utc_time(timestamp: int) -> str:
    """Unix seconds as an EPCIS time stamp in its canonical form: UTC, milliseconds, `Z`."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# ---------------------------------------------------------------------- events


def _coordinates(chain: Chain, at: Coordinates) -> dict[str, Any]:
    return {
        "mp:chain": {
            "mp:chainId": chain.chain_id,
            "mp:registry": chain.registry,
            "mp:txHash": at.tx_hash,
            "mp:blockNumber": at.block_number,
            "mp:logIndex": at.log_index,
        }
    }


def _quantity(lot_id: str, grams: int | None = None) -> dict[str, Any]:
    if grams is None:
        return {"epcClass": lot_uri(lot_id)}
    return {"epcClass": lot_uri(lot_id), "quantity": kilograms(grams), "uom": "KGM"}


def _base(event_type: str, timestamp: int) -> dict[str, Any]:
    return {"type": event_type, "eventTime": utc_time(timestamp), "eventTimeZoneOffset": "+00:00"}


def event_of(fact: Fact, chain: Chain, timestamp: int) -> dict[str, Any]:
    """The EPCIS event of one fact (recorded in a block with `timestamp`), with its eventID."""
    event: dict[str, Any]
    if isinstance(fact, Registered):
        event = _base("ObjectEvent", timestamp) | {
            "action": "ADD",
            "bizStep": "commissioning",
            "quantityList": [_quantity(fact.lot_id, fact.mass_g)],
            "bizLocation": {"id": site_uri(fact.site)},
        }
    elif isinstance(fact, Transformed):
        event = _base("TransformationEvent", timestamp) | {
            "inputQuantityList": [_quantity(lot, grams) for lot, grams in fact.inputs],
            "outputQuantityList": [_quantity(lot, grams) for lot, grams in fact.outputs],
            "transformationID": transformation_uri(chain, fact.transform_id),
            "bizStep": TRANSFORMATION_STEP,
            "bizLocation": {"id": site_uri(fact.site)},
            "mp:transformKind": fact.kind,
        }
    elif isinstance(fact, CustodyStep):
        shipping = fact.action == "offered"
        event = _base("ObjectEvent", timestamp) | {
            "action": "OBSERVE",
            "bizStep": "shipping" if shipping else "receiving",
            "disposition": "in_transit" if shipping else "in_progress",
            "quantityList": [_quantity(fact.lot_id)],
            "sourceList": [{"type": "possessing_party", "source": account_uri(fact.from_address)}],
            "destinationList": [{"type": "possessing_party", "destination": account_uri(fact.to_address)}],
        }
    elif isinstance(fact, Corrected):
        event = _base("ObjectEvent", timestamp) | _correction(fact)
    else:
        event = _base("ObjectEvent", timestamp) | {
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "quantityList": [_quantity(fact.lot_id)],
            "sensorElementList": [
                {
                    "sensorMetadata": {
                        "time": utc_time(fact.assayed_at),
                        "deviceID": account_uri(fact.lab),
                        "dataProcessingMethod": method_uri(fact.method),
                    },
                    "sensorReport": [{"type": "Dimensionless", "value": fact.grade_ppm, "uom": PPM}],
                }
            ],
            "mp:certificateHash": fact.certificate_hash,
        }
    event |= _coordinates(chain, fact.at)
    return {"eventID": event_hash(event)} | event


def _correction(fact: Corrected) -> dict[str, Any]:
    """The corrective event's fields: a lot that never was is decommissioned; a lot whose record
    was wrong is observed with the mass it holds after the correction."""
    if fact.reason == "did_not_occur":
        fields: dict[str, Any] = {
            "action": "DELETE",
            "bizStep": "decommissioning",
            "disposition": "inactive",
            "quantityList": [_quantity(fact.lot_id)],
        }
    else:
        fields = {
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "quantityList": [_quantity(fact.lot_id, fact.remaining_g)],
        }
    return fields | {
        "mp:correctionReason": fact.reason,
        "mp:adjustmentG": fact.adjustment_g,
        "mp:correctedBy": account_uri(fact.corrected_by),
        "mp:recordHash": fact.record_hash,
    }


def error_declaration(
    original: Mapping[str, Any], declared_at: int, reason: str, corrective_ids: Sequence[str]
) -> dict[str, Any]:
    """A copy of `original` (same eventID) declaring it in error, as EPCIS 2.0 §7.4.1.4 has it: the
    original stays as it was captured; the copy adds `errorDeclaration`."""
    return dict(original) | {
        "errorDeclaration": {
            "declarationTime": utc_time(declared_at),
            "reason": reason,
            "correctiveEventIDs": list(corrective_ids),
        }
    }


def blocks_of(facts: Iterable[Fact]) -> set[int]:
    """The blocks whose times `events_of` needs for `facts`."""
    blocks: set[int] = set()
    for fact in facts:
        blocks.add(fact.at.block_number)
        if isinstance(fact, Corrected):
            blocks.add(fact.original.at.block_number)
    return blocks


def events_of(
    facts: Iterable[Fact], chain: Chain, timestamp_of: Callable[[int], int]
) -> list[dict[str, Any]]:
    """The EPCIS events of `facts` in chain order; `timestamp_of(block)` gives a block's time.

    A correction gives two events at its place in the chain: the error declaration (a copy of the
    event that made the lot, with its eventID and an `errorDeclaration` naming the reason and the
    corrective event), then the corrective event itself."""
    times: dict[int, int] = {}

    def time_of(block: int) -> int:
        if block not in times:
            times[block] = timestamp_of(block)
        return times[block]

    events = []
    for fact in sorted(facts, key=order_key):
        event = event_of(fact, chain, time_of(fact.at.block_number))
        if isinstance(fact, Corrected):
            original = event_of(fact.original, chain, time_of(fact.original.at.block_number))
            declared_at = time_of(fact.at.block_number)
            events.append(error_declaration(original, declared_at, fact.reason, [event["eventID"]]))
        events.append(event)
    return events


def document(events: Sequence[Mapping[str, Any]], created_at: int) -> dict[str, Any]:
    """An EPCISDocument holding `events`, created at `created_at` (Unix seconds)."""
    return {
        "@context": [EPCIS_CONTEXT, {EXTENSION_PREFIX: EXTENSION_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_time(created_at),
        "epcisBody": {"eventList": list(events)},
    }


# ---------------------------------------------------------------------- the CBV 2.0 event hash

Order = Sequence[tuple[str, "Order | None"]]

_QUANTITY: Order = (("quantityElement", (("epcClass", None), ("quantity", None), ("uom", None))),)
_SENSOR_METADATA: Order = tuple(
    (name, None)
    for name in (
        "time",
        "startTime",
        "endTime",
        "deviceID",
        "deviceMetadata",
        "rawData",
        "dataProcessingMethod",
        "bizRules",
    )
)
_SENSOR_REPORT: Order = tuple(
    (name, None)
    for name in (
        "type",
        "exception",
        "deviceID",
        "deviceMetadata",
        "rawData",
        "dataProcessingMethod",
        "time",
        "microorganism",
        "chemicalSubstance",
        "value",
        "component",
        "stringValue",
        "booleanValue",
        "hexBinaryValue",
        "uriValue",
        "minValue",
        "maxValue",
        "meanValue",
        "sDev",
        "percRank",
        "percValue",
        "uom",
        "coordinateReferenceSystem",
    )
)
PROPERTY_ORDER: Order = (
    ("eventTime", None),
    ("eventTimeZoneOffset", None),
    ("epcList", (("epc", None),)),
    ("parentID", None),
    ("inputEPCList", (("epc", None),)),
    ("childEPCs", (("epc", None),)),
    ("quantityList", _QUANTITY),
    ("childQuantityList", _QUANTITY),
    ("inputQuantityList", _QUANTITY),
    ("outputEPCList", (("epc", None),)),
    ("outputQuantityList", _QUANTITY),
    ("action", None),
    ("transformationID", None),
    ("bizStep", None),
    ("disposition", None),
    ("readPoint", (("id", None),)),
    ("bizLocation", (("id", None),)),
    ("sourceList", (("type", None), ("source", None))),
    ("destinationList", (("type", None), ("destination", None))),
    ("sensorElementList", (("sensorMetadata", _SENSOR_METADATA), ("sensorReport", _SENSOR_REPORT))),
)
"""The canonical order of the standard fields (as the reference implementation lists it)."""

_LIST_ENTRY = {
    "epcList": "epc",
    "inputEPCList": "epc",
    "childEPCs": "epc",
    "outputEPCList": "epc",
    "quantityList": "quantityElement",
    "childQuantityList": "quantityElement",
    "inputQuantityList": "quantityElement",
    "outputQuantityList": "quantityElement",
}
"""Lists whose entries are named (as in the XML binding) in the pre-hash string."""

_VOCABULARY = {
    "bizStep": CBV_VOCABULARY + "BizStep-",
    "disposition": CBV_VOCABULARY + "Disp-",
    "sourceList.type": CBV_VOCABULARY + "SDT-",
    "destinationList.type": CBV_VOCABULARY + "SDT-",
    "sensorReport.type": GS1_VOCABULARY + "MT-",
}
"""Where a bare word stands for a CBV web-vocabulary URI (which it is expanded to)."""

_TIME_FIELDS = frozenset({"eventTime", "time", "startTime", "endTime"})

_NOT_HASHED = frozenset({"type", "eventID", "recordTime", "@context"})


def _text(value: object) -> str:
    """A value's canonical text: numbers without trailing zeros, strings trimmed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        number = Decimal(str(value))
        if number == number.to_integral_value():
            return str(int(number))
        return str(float(value))
    return str(value).strip()


def _expand(path: str, value: str) -> str:
    prefix = _VOCABULARY.get(path)
    if prefix is None or ":" in value:
        return value
    return prefix + value


def _canonical_time(text: str) -> str:
    """An ISO 8601 time stamp in UTC at millisecond precision (truncated), with `Z`."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    utc = moment.astimezone(datetime.UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _value(name: str, value: object, path: str) -> str:
    text = _text(value)
    if name in _TIME_FIELDS:
        text = _canonical_time(text)
    text = _expand(path, text)
    return f"{name}={text}" if text else ""


def _children(container: Mapping[str, Any], order: Order, parent: str) -> str:
    """A container's fields in `order`: a value as `name=text`, a list's entries sorted."""
    out = []
    for name, child_order in order:
        if name not in container:
            continue
        value = container[name]
        path = f"{parent}.{name}" if parent else name
        if isinstance(value, list):
            entries = sorted(filter(None, (_entry(name, item, child_order) for item in value)))
            if entries:
                # A sensor element's reports and the elements themselves are not wrapped in a
                # list name (they are repeated elements in the XML binding the algorithm follows).
                wrapper = "" if name in ("sensorElementList", "sensorReport") else name
                out.append(wrapper + "".join(entries))
        elif isinstance(value, Mapping):
            body = _children(value, child_order or (), name)
            if body:
                out.append(name + body)
        else:
            out.append(_value(name, value, path))
    return "".join(out)


def _entry(list_name: str, item: object, order: Order | None) -> str:
    entry = _LIST_ENTRY.get(list_name)
    if list_name == "sensorElementList":
        entry = "sensorElement"
    elif list_name == "sensorReport":
        entry = "sensorReport"
    if isinstance(item, Mapping):
        if entry is not None and order is not None and len(order) == 1 and entry == order[0][0]:
            order = order[0][1]
        body = _children(item, order or (), list_name if entry is None else entry)
        return (entry or "") + body if body else ""
    return _value(entry or list_name, item, list_name)


def _extension_name(name: str, namespaces: Mapping[str, str]) -> str:
    prefix, _, local = name.partition(":")
    if local and prefix in namespaces:
        return "{" + namespaces[prefix] + "}" + local
    return name


def _extensions(container: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    spaces = {EXTENSION_PREFIX: EXTENSION_NAMESPACE} if namespaces is None else namespaces
    parts = []
    for name, value in container.items():
        key = _extension_name(name, spaces)
        if isinstance(value, Mapping):
            parts.append(key + _extensions(value, spaces))
        elif isinstance(value, list):
            parts.extend(
                key + _extensions(item, spaces) if isinstance(item, Mapping) else f"{key}={_text(item)}"
                for item in value
            )
        else:
            parts.append(f"{key}={_text(value)}")
    return "".join(sorted(parts))


def pre_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 pre-hash string of an event (for the fields this module emits)."""
    standard = {name for name, _ in PROPERTY_ORDER}
    extensions = {
        name: value for name, value in event.items() if name not in standard and name not in _NOT_HASHED
    }
    return (
        f"eventType={event['type']}"
        + _children(event, PROPERTY_ORDER, "")
        + _extensions(extensions, namespaces)
    )


def event_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The event's CBV 2.0 event hash, `ni:///sha-256;<hex>?ver=CBV2.0`."""
    digest = hashlib.sha256(pre_hash(event, namespaces).encode()).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"
