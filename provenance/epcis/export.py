"""The index's facts as an EPCIS 2.0 JSON-LD document, each event named by its CBV 2.0 event hash.

Mapping (every lot is a class-level identifier with its mass as a quantity in KGM; lots, sites,
accounts and methods are named by the deployment's identifier scheme, `provenance.epcis.ids`: GS1
keys when the operator has a company prefix, URIs under its public URL otherwise; `Names` carries
the scheme and the lots' commodities an LGTIN needs):

* a registration is an ObjectEvent, action ADD, bizStep commissioning, at the lot's site;
* a transformation is a TransformationEvent, bizStep creating_class_instance, at its site, with
  what it consumed of each input (inputQuantityList) and each output's mass (outputQuantityList);
* a handover offer is an ObjectEvent OBSERVE, bizStep shipping (disposition in_transit), and an
  acceptance one with bizStep receiving (disposition in_progress), both with the two custodians
  as possessing_party source and destination (cancelled offers are left out);
* an assay is an ObjectEvent OBSERVE, bizStep inspecting, with a sensor report of the grade
  (type Dimensionless, uom 59 = parts per million) whose metadata names the lab and method, and
  the time the lab signed (in `mp:assayedAt` instead when it is after the block's: EPCIS 2.0
  7.3.5.5.1 wants a sensor's time at or before the eventTime);
* a correction (CBV 2.0 error declaration) gives two events: a copy of the event that made the lot
  (its registration or transformation, same eventID) with an `errorDeclaration` (declarationTime
  the correction's block time, reason did_not_occur or incorrect_data, correctiveEventIDs), and the
  corrective event: an ObjectEvent DELETE, bizStep decommissioning, disposition inactive for a lot
  that did not occur; an ObjectEvent OBSERVE, bizStep inspecting, with the mass the lot holds
  after the correction for incorrect data; both with the adjustment, the account that corrected
  and the correction's record hash as extension fields.

Every event's `eventTime` is the timestamp of its block (UTC), and it carries its chain
coordinates in the extension field `mp:chain` (chain id, registry, tx hash, block, log index).

What the chain records beyond EPCIS's own fields is written as extension fields, so that a capture
(`provenance.epcis.capture`) can record an exported event again: a registration's `mp:face`,
`mp:commodity`, `mp:gradePpm`, `mp:extractedAt` and `mp:recordHash`; a transformation's
`mp:recordHash` and, per output, `mp:outputs` (`mp:epcClass` and the output's own fields); an
assay's `mp:labSignature` (the lab's EIP-712 signature). `parse_lot_uri` and its siblings are the
inverses of `lot_uri` and its siblings: the only way a capture reads an identifier.

The event hash (`eventID`): the CBV 2.0 event hash ID (CBV 2.0 section 8.9), computed by
`provenance.epcis.hash`, which says where it follows the standard's text rather than GS1's
reference tool; `pre_hash` and `event_hash` here default to our extension namespace.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from provenance.domain.trace import Coordinates
from provenance.epcis import hash as epcis_hash
from provenance.epcis.ids import LOCAL_SCHEME, IdentifierScheme

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EXTENSION_PREFIX = "mp"
EXTENSION_NAMESPACE = "urn:mineral-provenance:epcis:"
"""The namespace of our extension fields: the project's own URN, the same in every deployment (an
extension field means the same wherever it comes from; a deployment's URL would make each mine's
`mp:chain` a different field to a reader of several), and no domain that someone else may own."""
NAMESPACES = {EXTENSION_PREFIX: EXTENSION_NAMESPACE}

CBV_VOCABULARY = epcis_hash.CBV_VOCABULARY
GS1_VOCABULARY = epcis_hash.GS1_VOCABULARY

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
class LotRecord:
    """What a registration or transformation output records of a lot beyond its mass: written as
    extension fields so that a capture (`provenance.epcis.capture`) can register the lot again."""

    commodity: str
    grade_ppm: int
    record_hash: str
    face: str | None = None
    extracted_at: int | None = None


@dataclass(frozen=True)
class Registered:
    lot_id: str
    site: str
    mass_g: int
    at: Coordinates
    record: LotRecord | None = None
    """None: the event carries only what EPCIS itself names (older callers)."""


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
    record_hash: str | None = None
    output_records: tuple[LotRecord, ...] = ()
    """Per output, in the order of `outputs` (empty: not written)."""


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
    signature: str | None = None
    """The lab's EIP-712 signature (0x-hex), written so that a capture can submit the assay again."""


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


def lot_uri(lot_id: str, scheme: IdentifierScheme = LOCAL_SCHEME, commodity: str | None = None) -> str:
    return scheme.lot(lot_id, commodity)


def site_uri(site: str, scheme: IdentifierScheme = LOCAL_SCHEME) -> str:
    return scheme.site(site)


def account_uri(address: str, scheme: IdentifierScheme = LOCAL_SCHEME) -> str:
    return scheme.party(address)


def method_uri(method: str, scheme: IdentifierScheme = LOCAL_SCHEME) -> str:
    return scheme.method(method)


def parse_lot_uri(uri: str, scheme: IdentifierScheme = LOCAL_SCHEME) -> str | None:
    """The lot id a lot URI of `scheme` names, in any form a client may send (None for any other
    URI, and for a GS1 lot number that only a look-up in the index resolves: `scheme.parse_lot`)."""
    found = scheme.parse_lot(uri)
    return found if isinstance(found, str) else None


def parse_site_uri(uri: str, scheme: IdentifierScheme = LOCAL_SCHEME) -> str | None:
    found = scheme.parse_site(uri)
    return found if isinstance(found, str) else None


def parse_account_uri(uri: str, scheme: IdentifierScheme = LOCAL_SCHEME) -> str | None:
    return scheme.parse_party(uri)


def parse_method_uri(uri: str, scheme: IdentifierScheme = LOCAL_SCHEME) -> str | None:
    return scheme.parse_method(uri)


def transformation_uri(chain: Chain, transform_id: int, scheme: IdentifierScheme = LOCAL_SCHEME) -> str:
    return scheme.transformation(chain.chain_id, chain.registry, transform_id)


@dataclass(frozen=True)
class Names:
    """How the events of one deployment name things: its identifier scheme, and the commodity of
    each lot an LGTIN needs (`lots_named` says which; empty when the scheme has no GTINs)."""

    scheme: IdentifierScheme = LOCAL_SCHEME
    commodities: Mapping[str, str] = field(default_factory=dict)

    def lot(self, lot_id: str) -> str:
        return self.scheme.lot(lot_id, self.commodities.get(lot_id))


def lots_named(facts: Iterable[Fact]) -> set[str]:
    """The lots the events of `facts` name (whose commodities `Names` needs for GS1 identifiers)."""
    found: set[str] = set()
    for fact in facts:
        if isinstance(fact, Corrected):
            found |= lots_named([fact.original])
        if isinstance(fact, Transformed):
            found.update(lot for lot, _ in (*fact.inputs, *fact.outputs))
        else:
            found.add(fact.lot_id)
    return found


def kilograms(grams: int) -> int | float:
    """Grams as kilograms, an integer when whole (JSON numbers; exact to the gram below 2^53 g)."""
    if grams % 1000 == 0:
        return grams // 1000
    return grams / 1000


@lru_cache(maxsize=8192)
def utc_time(timestamp: int) -> str:
    """Unix seconds as an EPCIS time stamp in its canonical form: UTC, milliseconds, `Z` (kept:
    a page's events share few block times, and strftime was a tenth of building one)."""
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


def _quantity(names: Names, lot_id: str, grams: int | None = None) -> dict[str, Any]:
    if grams is None:
        return {"epcClass": names.lot(lot_id)}
    return {"epcClass": names.lot(lot_id), "quantity": kilograms(grams), "uom": "KGM"}


def _base(event_type: str, timestamp: int) -> dict[str, Any]:
    return {"type": event_type, "eventTime": utc_time(timestamp), "eventTimeZoneOffset": "+00:00"}


def event_of(
    fact: Fact, chain: Chain, timestamp: int, names: Names = Names(), event_id: str | None = None
) -> dict[str, Any]:
    """The EPCIS event of one fact (recorded in a block with `timestamp`), with its eventID: its
    hash, or `event_id` when the index stored it (computed the same way, with the same names)."""
    event: dict[str, Any]
    scheme = names.scheme
    if isinstance(fact, Registered):
        event = _base("ObjectEvent", timestamp) | {
            "action": "ADD",
            "bizStep": "commissioning",
            "quantityList": [_quantity(names, fact.lot_id, fact.mass_g)],
            "bizLocation": {"id": scheme.site(fact.site)},
        }
        if fact.record is not None:
            event |= _lot_record(fact.record)
    elif isinstance(fact, Transformed):
        event = _base("TransformationEvent", timestamp) | {
            "inputQuantityList": [_quantity(names, lot, grams) for lot, grams in fact.inputs],
            "outputQuantityList": [_quantity(names, lot, grams) for lot, grams in fact.outputs],
            "transformationID": transformation_uri(chain, fact.transform_id, scheme),
            "bizStep": TRANSFORMATION_STEP,
            "bizLocation": {"id": scheme.site(fact.site)},
            "mp:transformKind": fact.kind,
        }
        if fact.record_hash is not None:
            event["mp:recordHash"] = fact.record_hash
        if fact.output_records:
            event["mp:outputs"] = [
                {"mp:epcClass": names.lot(lot)} | _lot_record(record)
                for (lot, _), record in zip(fact.outputs, fact.output_records, strict=True)
            ]
    elif isinstance(fact, CustodyStep):
        shipping = fact.action == "offered"
        event = _base("ObjectEvent", timestamp) | {
            "action": "OBSERVE",
            "bizStep": "shipping" if shipping else "receiving",
            "disposition": "in_transit" if shipping else "in_progress",
            "quantityList": [_quantity(names, fact.lot_id)],
            "sourceList": [{"type": "possessing_party", "source": scheme.party(fact.from_address)}],
            "destinationList": [{"type": "possessing_party", "destination": scheme.party(fact.to_address)}],
        }
    elif isinstance(fact, Corrected):
        event = _base("ObjectEvent", timestamp) | _correction(fact, names)
    else:
        event = _base("ObjectEvent", timestamp) | {
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "quantityList": [_quantity(names, fact.lot_id)],
            "sensorElementList": [
                {
                    "sensorMetadata": {
                        "time": utc_time(fact.assayed_at),
                        "deviceID": scheme.party(fact.lab),
                        "dataProcessingMethod": scheme.method(fact.method),
                    },
                    "sensorReport": [{"type": "Dimensionless", "value": fact.grade_ppm, "uom": PPM}],
                }
            ],
            "mp:certificateHash": fact.certificate_hash,
        }
        if fact.assayed_at > timestamp:
            # EPCIS 2.0 7.3.5.5.1 (GS1's mandatory requirement M122): a sensor's time is at or before
            # the eventTime. The registry accepts a lab's time after its block's, so that time goes
            # in our own field, where a capture still finds what the lab signed
            del event["sensorElementList"][0]["sensorMetadata"]["time"]
            event["mp:assayedAt"] = utc_time(fact.assayed_at)
        if fact.signature is not None:
            event["mp:labSignature"] = fact.signature
    event |= _coordinates(chain, fact.at)
    return {"eventID": event_id or event_hash(event)} | event


def _lot_record(record: LotRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {"mp:commodity": record.commodity, "mp:gradePpm": record.grade_ppm}
    if record.face is not None:
        fields["mp:face"] = record.face
    if record.extracted_at is not None:
        fields["mp:extractedAt"] = utc_time(record.extracted_at)
    return fields | {"mp:recordHash": record.record_hash}


def _correction(fact: Corrected, names: Names) -> dict[str, Any]:
    """The corrective event's fields: a lot that never was is decommissioned; a lot whose record
    was wrong is observed with the mass it holds after the correction."""
    if fact.reason == "did_not_occur":
        fields: dict[str, Any] = {
            "action": "DELETE",
            "bizStep": "decommissioning",
            "disposition": "inactive",
            "quantityList": [_quantity(names, fact.lot_id)],
        }
    else:
        fields = {
            "action": "OBSERVE",
            "bizStep": "inspecting",
            "quantityList": [_quantity(names, fact.lot_id, fact.remaining_g)],
        }
    return fields | {
        # the CBV 2.0 error reason's web URI, not its bare word: GS1's hash tool rewrites a bare
        # word anywhere in a document once a standard field (the declaration's reason) uses it
        "mp:correctionReason": CBV_VOCABULARY + "ER-" + fact.reason,
        "mp:adjustmentG": fact.adjustment_g,
        "mp:correctedBy": names.scheme.party(fact.corrected_by),
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
    facts: Iterable[Fact], chain: Chain, timestamp_of: Callable[[int], int], names: Names = Names()
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
        event = event_of(fact, chain, time_of(fact.at.block_number), names)
        if isinstance(fact, Corrected):
            original = event_of(fact.original, chain, time_of(fact.original.at.block_number), names)
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


def pre_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The CBV 2.0 pre-hash string of an event (`provenance.epcis.hash`), our extension prefix by
    default."""
    return epcis_hash.pre_hash(event, NAMESPACES if namespaces is None else namespaces)


def event_hash(event: Mapping[str, Any], namespaces: Mapping[str, str] | None = None) -> str:
    """The event's CBV 2.0 event hash ID, `ni:///sha-256;<hex>?ver=CBV2.0`."""
    return epcis_hash.event_hash(event, NAMESPACES if namespaces is None else namespaces)
