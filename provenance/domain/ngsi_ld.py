"""The NGSI-LD data model of what the city's data hub is told (ETSI GS CIM 009; docs/ngsi-ld.md).

Three entity types:

* `OreLot` (ours): `urn:ngsi-ld:OreLot:<site>:<lot>`; commodity, mass and remaining mass in
  kilograms (`unitCode` KGM, UN/CEFACT Recommendation 20), grade in parts per million (`59`), the
  extraction time as the mass's `observedAt`, `location` (a GeoJSON Point) from the face's place
  in the operator's directory, `site` a Relationship to its `MiningSite`, one `parent` Relationship
  per input lot (a multi-attribute, one `datasetId` per parent, each carrying `massTaken`),
  custodian, status, and `lastFact`, a Relationship to the `DLTtxReceipt` of the newest fact
  applied to it, with that fact's chain position: a consumer applies a fact only if its position
  is after the one it holds.
* `MiningSite` (ours): `urn:ngsi-ld:MiningSite:<site>`; name and location from the directory.
* `DLTtxReceipt` (Smart Data Models, dataModel.DistributedLedgerTech): one per fact, so that the
  hub's users can check each fact against the chain: `refEntity` names the lot, `TxReceipts` holds
  the transaction's hash, block, index and the log's place, as that model defines them. The chain
  id is not in that model; it is carried as `chainId` (ours).

Everything here is plain data: callers pass the index's facts, places and the vocabulary in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from provenance.domain.lotstatus import LotStatus, status_after_consumption
from provenance.domain.values import CorrectionReason

CONTEXT_PATH = "/ngsi-ld/context.jsonld"
"""Where our API serves our @context (a hub fetches it from <public URL><CONTEXT_PATH>)."""

CORE_CONTEXT = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
"""ETSI's core @context (GS CIM 009 V1.8.1, clause 5.5.8 and annex B)."""

SDM_DLT = "https://smartdatamodels.org/dataModel.DistributedLedgerTech/"
SDM = "https://smartdatamodels.org/"

ORE_LOT = "OreLot"
MINING_SITE = "MiningSite"
DLT_RECEIPT = "DLTtxReceipt"
ENTITY_TYPES = (ORE_LOT, MINING_SITE, DLT_RECEIPT)

NO_OFFER = ""
"""`pendingCustodian` while no handover is open: an upsert cannot delete an attribute, and a
Property's value may not be null (clause 4.5.2), so the attribute stays, empty."""

KILOGRAM = "KGM"
PARTS_PER_MILLION = "59"
"""UN/CEFACT Recommendation 20 common codes: kilogram, part per million."""

OUR_TERMS = (
    ORE_LOT,
    MINING_SITE,
    "commodity",
    "mass",
    "remainingMass",
    "grade",
    "assay",
    "face",
    "site",
    "parent",
    "massTaken",
    "custodian",
    "pendingCustodian",
    "status",
    "origin",
    "recordHash",
    "lastFact",
    "chainPosition",
    "chainId",
    "eventName",
)
"""Terms of our own vocabulary; every other term is ETSI's core or a Smart Data Model's."""

SDM_TERMS: Mapping[str, str] = {
    DLT_RECEIPT: SDM_DLT + DLT_RECEIPT,
    "TxReceipts": SDM_DLT + "TxReceipts",
    "refEntity": SDM_DLT + "refEntity",
    "name": SDM + "name",
    "description": "http://purl.org/dc/terms/description",
}
"""The Smart Data Models' IRIs, as their context.jsonld gives them (DistributedLedgerTech, commons)."""


def context_document(vocabulary: str) -> dict[str, Any]:
    """The JSON-LD @context we serve: ETSI's core context, then our terms under `vocabulary` and
    the Smart Data Models' under theirs (a term's IRI is what a hub stores, so `vocabulary` must
    never change once data was published)."""
    terms: dict[str, Any] = {term: vocabulary + term for term in OUR_TERMS}
    terms.update(SDM_TERMS)
    return {"@context": [CORE_CONTEXT, terms]}


# ---------------------------------------------------------------------- ids


def lot_entity_id(site: str, lot_id: str) -> str:
    """`urn:ngsi-ld:OreLot:<site>:<lot>`; a `:` in the site is %-encoded so the id splits back."""
    return f"urn:ngsi-ld:{ORE_LOT}:{quote(site, safe='')}:{quote(lot_id, safe=':/')}"


def site_entity_id(site: str) -> str:
    return f"urn:ngsi-ld:{MINING_SITE}:{quote(site, safe='')}"


def receipt_entity_id(chain_id: int, tx_hash: str, log_index: int) -> str:
    return f"urn:ngsi-ld:{DLT_RECEIPT}:{chain_id}:{tx_hash.lower()}:{log_index}"


@dataclass(frozen=True)
class EntityRef:
    """What an entity id names: its type and the keys in it (site and lot, site, or a receipt's)."""

    type: str
    site: str | None = None
    lot_id: str | None = None
    chain_id: int | None = None
    tx_hash: str | None = None
    log_index: int | None = None


def parse_entity_id(entity_id: str) -> EntityRef | None:
    """The reference an id of ours makes, or None for an id we never issue."""
    parts = entity_id.split(":")
    if len(parts) < 4 or parts[0].lower() != "urn" or parts[1] != "ngsi-ld":
        return None
    kind, rest = parts[2], parts[3:]
    if kind == ORE_LOT and len(rest) >= 2 and rest[0] and rest[1]:
        return EntityRef(ORE_LOT, site=unquote(rest[0]), lot_id=unquote(":".join(rest[1:])))
    if kind == MINING_SITE and len(rest) == 1 and rest[0]:
        return EntityRef(MINING_SITE, site=unquote(rest[0]))
    if kind == DLT_RECEIPT and len(rest) == 3 and rest[0].isdigit() and rest[2].isdigit():
        return EntityRef(DLT_RECEIPT, chain_id=int(rest[0]), tx_hash=rest[1], log_index=int(rest[2]))
    return None


# ---------------------------------------------------------------------- values


def iso_time(unix_seconds: int) -> str:
    """NGSI-LD DateTime (clause 4.6.3): ISO 8601 in UTC with a Z."""
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def kilograms(grams: int) -> float | int:
    """Grams as kilograms: an integer when whole, else three decimals (exact to the gram)."""
    return grams // 1000 if grams % 1000 == 0 else round(grams / 1000, 3)


def grams(kilograms_value: float) -> int:
    return round(kilograms_value * 1000)


def prop(
    value: Any, *, unit: str | None = None, observed_at: int | None = None, **sub: Any
) -> dict[str, Any]:
    """A Property (clause 4.5.2 / 5.2.5), with its unitCode, observedAt and sub-attributes."""
    attribute: dict[str, Any] = {"type": "Property", "value": value}
    if unit is not None:
        attribute["unitCode"] = unit
    if observed_at is not None:
        attribute["observedAt"] = iso_time(observed_at)
    attribute.update(sub)
    return attribute


def rel(target: str, *, observed_at: int | None = None, **sub: Any) -> dict[str, Any]:
    """A Relationship (clause 4.5.3 / 5.2.6)."""
    attribute: dict[str, Any] = {"type": "Relationship", "object": target}
    if observed_at is not None:
        attribute["observedAt"] = iso_time(observed_at)
    attribute.update(sub)
    return attribute


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float

    def geo_property(self) -> dict[str, Any]:
        """A GeoProperty with a GeoJSON Point, longitude first (RFC 7946, clause 4.7)."""
        return {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [self.longitude, self.latitude]},
        }


@dataclass(frozen=True, order=True)
class ChainPosition:
    block_number: int
    tx_index: int
    log_index: int

    def as_list(self) -> list[int]:
        return [self.block_number, self.tx_index, self.log_index]


@dataclass(frozen=True)
class Fact:
    """One registry event as a fact about a lot: where on chain, and when (its block's time)."""

    name: str
    chain_id: int
    registry: str
    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int
    block_time: int | None

    @property
    def position(self) -> ChainPosition:
        return ChainPosition(self.block_number, self.tx_index, self.log_index)

    @property
    def receipt_id(self) -> str:
        return receipt_entity_id(self.chain_id, self.tx_hash, self.log_index)


def last_fact(fact: Fact) -> dict[str, Any]:
    """`lastFact`: the receipt of the newest fact applied, with its chain position (what a consumer
    compares to apply facts in order)."""
    return rel(fact.receipt_id, chainPosition=prop(fact.position.as_list()))


def receipt_entity(fact: Fact, lot_entity: str) -> dict[str, Any]:
    """Smart Data Models' DLTtxReceipt for one fact (their `TxReceipts` keys; `chainId` is ours)."""
    log = {
        "logIndex": fact.log_index,
        "logAddress": fact.registry,
        "blockHash": fact.block_hash,
        "blockNumber": fact.block_number,
        "transactionHash": fact.tx_hash,
        "transactionIndex": fact.tx_index,
        "removed": False,
    }
    receipt = {
        "dltType": "eth",
        "to": fact.registry,
        "blockHash": fact.block_hash,
        "blockNumber": fact.block_number,
        "transactionHash": fact.tx_hash,
        "transactionIndex": fact.tx_index,
        "status": True,
        "logs": log,
    }
    entity: dict[str, Any] = {
        "id": fact.receipt_id,
        "type": DLT_RECEIPT,
        "refEntity": rel(lot_entity),
        "TxReceipts": prop(receipt, observed_at=fact.block_time),
        "chainId": prop(fact.chain_id),
        "eventName": prop(fact.name),
    }
    return entity


def site_entity(site: str, name: str | None, place: Place | None) -> dict[str, Any]:
    entity: dict[str, Any] = {"id": site_entity_id(site), "type": MINING_SITE, "name": prop(name or site)}
    if place is not None:
        entity["location"] = place.geo_property()
    return entity


# ---------------------------------------------------------------------- lots


@dataclass(frozen=True)
class LotOrigin:
    """A lot as it was made (immutable in the index): what its creation fact says."""

    lot_id: str
    site: str
    face: str | None
    commodity: str
    mass_g: int
    grade_ppm: int
    extracted_at: int | None
    creator: str
    record_hash: str
    origin: str
    """registered or transformed."""


@dataclass(frozen=True)
class Parent:
    """`mass_g` grams of the lot `lot_id` (at `site`) went into this one."""

    lot_id: str
    site: str
    mass_g: int


@dataclass(frozen=True)
class Assay:
    lab: str
    grade_ppm: int
    method: str
    certificate_hash: str
    assayed_at: int
    analytes: Sequence[Mapping[str, str]] | None = None
    """The certificate's analytes ({analyte, value, unit, method}; values decimal text), only when
    the certificate held here is the one the chain committed; None otherwise."""


@dataclass(frozen=True)
class LotState:
    """A lot as the index holds it now (for reads, and to re-state a lot after a reorg)."""

    origin: LotOrigin
    custodian: str
    pending_custodian: str | None
    remaining_g: int
    status: str
    parents: Sequence[Parent]
    assays: Sequence[Assay]
    last: Fact | None
    created_at: int | None
    """The creation block's time."""


def _origin_attributes(origin: LotOrigin, place: Place | None, created_at: int | None) -> dict[str, Any]:
    observed = origin.extracted_at if origin.extracted_at is not None else created_at
    attributes: dict[str, Any] = {
        "commodity": prop(origin.commodity),
        "mass": prop(kilograms(origin.mass_g), unit=KILOGRAM, observed_at=observed),
        "grade": prop(origin.grade_ppm, unit=PARTS_PER_MILLION, observed_at=observed),
        "site": rel(site_entity_id(origin.site)),
        "origin": prop(origin.origin),
        "recordHash": prop(origin.record_hash),
    }
    if origin.face is not None:
        attributes["face"] = prop(origin.face)
    if place is not None:
        attributes["location"] = place.geo_property()
    return attributes


def _parents(parents: Sequence[Parent]) -> list[dict[str, Any]] | dict[str, Any]:
    """One Relationship instance per parent, told apart by datasetId (multi-attribute, clause 4.5.5)."""
    instances = [
        rel(
            lot_entity_id(parent.site, parent.lot_id),
            datasetId=f"urn:ngsi-ld:Dataset:parent:{quote(parent.lot_id, safe=':/')}",
            massTaken=prop(kilograms(parent.mass_g), unit=KILOGRAM),
        )
        for parent in parents
    ]
    return instances[0] if len(instances) == 1 else instances


def lot_entity(state: LotState, place: Place | None) -> dict[str, Any]:
    """The whole OreLot as the index holds it (GET /ngsi-ld/v1/entities/{id}, and the state re-sent
    to a hub after a reorg retracted a fact)."""
    origin = state.origin
    entity: dict[str, Any] = {"id": lot_entity_id(origin.site, origin.lot_id), "type": ORE_LOT}
    entity.update(_origin_attributes(origin, place, state.created_at))
    if state.assays:
        newest = state.assays[-1]
        entity["grade"] = prop(newest.grade_ppm, unit=PARTS_PER_MILLION, observed_at=newest.assayed_at)
        entity["assay"] = _assay(newest)
    entity["remainingMass"] = prop(kilograms(state.remaining_g), unit=KILOGRAM)
    entity["custodian"] = prop(state.custodian)
    entity["pendingCustodian"] = prop(state.pending_custodian or NO_OFFER)
    entity["status"] = prop(state.status)
    if state.parents:
        entity["parent"] = _parents(state.parents)
    if state.last is not None:
        entity["lastFact"] = last_fact(state.last)
    return entity


def _assay(assay: Assay) -> dict[str, Any]:
    value: dict[str, Any] = {
        "lab": assay.lab,
        "method": assay.method,
        "certificateHash": assay.certificate_hash,
    }
    if assay.analytes is not None:
        value["analytes"] = [dict(analyte) for analyte in assay.analytes]
    return prop(value, observed_at=assay.assayed_at)


LOT_FACTS = frozenset(
    {
        "LotRegistered",
        "LotCreated",
        "LotConsumed",
        "CustodyOffered",
        "CustodyOfferCancelled",
        "CustodyAccepted",
        "AssayRecorded",
        "DocumentAnchored",
        "LotCorrected",
        "LoadAttested",
    }
)
"""The events that are facts about one lot: each is published as an upsert of that lot."""


def lot_fragment(
    fact: Fact,
    args: Mapping[str, Any],
    *,
    site: str,
    lot_id: str,
    origin: LotOrigin | None = None,
    parents: Sequence[Parent] = (),
    place: Place | None = None,
    analytes: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """The attributes one fact sets on its lot (an upsert with options=update leaves the others):
    the whole origin for the fact that made the lot (`origin` is then required), the changed
    attributes for the later ones; always `lastFact`. `analytes`: an assay's certificate's, when
    the certificate held here matches the chain's hash."""
    entity: dict[str, Any] = {"id": lot_entity_id(site, lot_id), "type": ORE_LOT}
    name = fact.name
    if name in ("LotRegistered", "LotCreated"):
        if origin is None:
            raise ValueError(f"{name} of {lot_id}: the lot's origin is needed to publish its creation")
        entity.update(_origin_attributes(origin, place, fact.block_time))
        entity["remainingMass"] = prop(kilograms(origin.mass_g), unit=KILOGRAM, observed_at=fact.block_time)
        entity["custodian"] = prop(origin.creator, observed_at=fact.block_time)
        entity["pendingCustodian"] = prop(NO_OFFER, observed_at=fact.block_time)
        entity["status"] = prop(LotStatus.ACTIVE.value, observed_at=fact.block_time)
        if parents:
            entity["parent"] = _parents(parents)
    elif name == "LotConsumed":
        remaining = int(args["remainingG"])
        entity["remainingMass"] = prop(kilograms(remaining), unit=KILOGRAM, observed_at=fact.block_time)
        entity["status"] = prop(status_after_consumption(remaining).value, observed_at=fact.block_time)
    elif name == "LotCorrected":
        remaining = int(args["remainingG"])
        entity["remainingMass"] = prop(kilograms(remaining), unit=KILOGRAM, observed_at=fact.block_time)
        status = _status_after_correction(
            remaining, int(args["adjustmentG"]), CorrectionReason(args["reason"])
        )
        if status is not None:
            entity["status"] = prop(status.value, observed_at=fact.block_time)
    elif name == "CustodyOffered":
        entity["pendingCustodian"] = prop(str(args["to"]), observed_at=fact.block_time)
    elif name == "CustodyOfferCancelled":
        entity["pendingCustodian"] = prop(NO_OFFER, observed_at=fact.block_time)
    elif name == "CustodyAccepted":
        entity["custodian"] = prop(str(args["to"]), observed_at=fact.block_time)
        entity["pendingCustodian"] = prop(NO_OFFER, observed_at=fact.block_time)
    elif name == "AssayRecorded":
        assay = Assay(
            str(args["lab"]),
            int(args["gradePpm"]),
            str(args["method"]),
            str(args["certificateHash"]),
            int(args["assayedAt"]),
            analytes,
        )
        entity["grade"] = prop(assay.grade_ppm, unit=PARTS_PER_MILLION, observed_at=assay.assayed_at)
        entity["assay"] = _assay(assay)
    entity["lastFact"] = last_fact(fact)
    return entity


def _status_after_correction(
    remaining_g: int, adjustment_g: int, reason: CorrectionReason
) -> LotStatus | None:
    """As `provenance.domain.lotstatus.status_after_correction`, from the fact alone: None where the
    status stays what it was (a data correction of a lot that was empty already)."""
    if remaining_g > 0:
        return LotStatus.ACTIVE
    if reason is CorrectionReason.DID_NOT_OCCUR:
        return LotStatus.VOIDED
    return LotStatus.CONSUMED if remaining_g - adjustment_g > 0 else None


def key_values(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The simplified (keyValues) representation (clause 4.5.4): each attribute as its value."""
    simple: dict[str, Any] = {}
    for key, attribute in entity.items():
        if key in ("id", "type", "@context") or not isinstance(attribute, (dict, list)):
            simple[key] = attribute
            continue
        instances = attribute if isinstance(attribute, list) else [attribute]
        values = [_simple(instance) for instance in instances]
        simple[key] = values[0] if len(values) == 1 else values
    return simple


def _simple(attribute: Mapping[str, Any]) -> Any:
    if attribute.get("type") == "Relationship":
        return attribute.get("object")
    return attribute.get("value")
