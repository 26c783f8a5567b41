"""The NGSI-LD data model and query subset (provenance.domain.ngsi_ld, ngsi_ld_query): ids that
split back, units, what each fact sets on its lot, and the queries we refuse."""

from __future__ import annotations

from typing import Any

import pytest

from provenance.domain.ngsi_ld import (
    NO_OFFER,
    Fact,
    LotOrigin,
    LotState,
    Parent,
    Place,
    context_document,
    key_values,
    kilograms,
    lot_entity,
    lot_entity_id,
    lot_fragment,
    parse_entity_id,
    receipt_entity,
    receipt_entity_id,
    site_entity,
)
from provenance.domain.ngsi_ld_query import UnsupportedQuery, parse_q
from provenance.domain.values import CorrectionReason
from tests.ngsi_ld_checks import NotNgsiLd, check_entity

REGISTRY = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ORIGIN = LotOrigin(
    "L-1", "SH2", "SH2-F1", "COAL", 12_345_678, 4_800, 1_765_000_000, "0xA", "0xfeed", "registered"
)


def fact(name: str, block: int = 10, log_index: int = 0, time: int | None = 1_765_000_100) -> Fact:
    return Fact(name, 31337, REGISTRY, block, "0x" + "ab" * 32, "0x" + "CD" * 32, 1, log_index, time)


def test_ids_split_back_even_with_colons_and_slashes_in_labels() -> None:
    entity_id = lot_entity_id("SITE:2", "lot:7/b")
    assert entity_id == "urn:ngsi-ld:OreLot:SITE%3A2:lot:7/b"
    reference = parse_entity_id(entity_id)
    assert reference is not None
    assert (reference.type, reference.site, reference.lot_id) == ("OreLot", "SITE:2", "lot:7/b")
    receipt = parse_entity_id(receipt_entity_id(31337, "0xABCD", 3))
    assert receipt is not None
    assert (receipt.chain_id, receipt.tx_hash, receipt.log_index) == (31337, "0xabcd", 3)
    for foreign in ("urn:ngsi-ld:Vehicle:1", "urn:ngsi-ld:OreLot:only-site", "https://x.kr/a", "OreLot"):
        assert parse_entity_id(foreign) is None or parse_entity_id(foreign).type != "OreLot"  # type: ignore[union-attr]


def test_masses_are_kilograms_exact_to_the_gram() -> None:
    assert kilograms(12_345_678) == 12_345.678
    assert kilograms(2_000_000) == 2_000
    assert isinstance(kilograms(2_000_000), int)
    assert kilograms(1) == 0.001


def test_a_registration_publishes_the_whole_origin_placed_at_the_face() -> None:
    entity = lot_fragment(
        fact("LotRegistered"), {}, site="SH2", lot_id="L-1", origin=ORIGIN, place=Place(37.205, 129.012)
    )
    check_entity(entity)
    assert entity["id"] == "urn:ngsi-ld:OreLot:SH2:L-1"
    assert entity["mass"] == {
        "type": "Property",
        "value": 12_345.678,
        "unitCode": "KGM",
        "observedAt": "2025-12-06T05:46:40Z",  # the extraction time, not the block's
    }
    assert entity["grade"]["unitCode"] == "59"
    assert entity["location"]["value"] == {"type": "Point", "coordinates": [129.012, 37.205]}
    assert entity["site"] == {"type": "Relationship", "object": "urn:ngsi-ld:MiningSite:SH2"}
    assert entity["custodian"]["value"] == "0xA"
    assert entity["pendingCustodian"]["value"] == NO_OFFER
    assert entity["lastFact"]["object"] == "urn:ngsi-ld:DLTtxReceipt:31337:0x" + "cd" * 32 + ":0"
    assert entity["lastFact"]["chainPosition"]["value"] == [10, 1, 0]
    with pytest.raises(ValueError, match="origin"):
        lot_fragment(fact("LotRegistered"), {}, site="SH2", lot_id="L-1")


def test_later_facts_set_only_what_they_change() -> None:
    consumed = lot_fragment(fact("LotConsumed"), {"remainingG": 0, "massG": 5}, site="SH2", lot_id="L-1")
    assert set(consumed) == {"id", "type", "remainingMass", "status", "lastFact"}
    assert consumed["status"]["value"] == "consumed"
    accepted = lot_fragment(fact("CustodyAccepted"), {"from": "0xA", "to": "0xB"}, site="SH2", lot_id="L-1")
    assert (accepted["custodian"]["value"], accepted["pendingCustodian"]["value"]) == ("0xB", NO_OFFER)
    assay = lot_fragment(
        fact("AssayRecorded"),
        {
            "lab": "0xL",
            "gradePpm": 5_100,
            "method": "XRF",
            "certificateHash": "0x01",
            "assayedAt": 1_765_000_050,
        },
        site="SH2",
        lot_id="L-1",
    )
    assert assay["grade"] == {
        "type": "Property",
        "value": 5_100,
        "unitCode": "59",
        "observedAt": "2025-12-06T05:47:30Z",
    }
    assert "analytes" not in assay["assay"]["value"], "no certificate held: no analytes"
    certified = lot_fragment(
        fact("AssayRecorded"),
        {
            "lab": "0xL",
            "gradePpm": 5_100,
            "method": "XRF",
            "certificateHash": "0x01",
            "assayedAt": 1_765_000_050,
        },
        site="SH2",
        lot_id="L-1",
        analytes=[{"analyte": "ash", "value": "24.8", "unit": "%", "method": "ISO 1171"}],
    )
    assert certified["assay"]["value"]["analytes"] == [
        {"analyte": "ash", "value": "24.8", "unit": "%", "method": "ISO 1171"}
    ]
    documented = lot_fragment(fact("DocumentAnchored"), {}, site="SH2", lot_id="L-1")
    assert set(documented) == {"id", "type", "lastFact"}
    for entity in (consumed, accepted, assay, documented):
        check_entity(entity)


@pytest.mark.parametrize(
    ("reason", "adjustment", "remaining", "status"),
    [
        (CorrectionReason.INCORRECT_DATA, -100, 900, "active"),
        (CorrectionReason.DID_NOT_OCCUR, -1_000, 0, "voided"),
        (CorrectionReason.INCORRECT_DATA, -1_000, 0, "consumed"),
        (CorrectionReason.INCORRECT_DATA, 0, 0, None),  # empty before and after: status unchanged
    ],
)
def test_a_correction_sets_the_status_the_index_would(
    reason: CorrectionReason, adjustment: int, remaining: int, status: str | None
) -> None:
    args = {"reason": int(reason), "adjustmentG": adjustment, "remainingG": remaining}
    entity = lot_fragment(fact("LotCorrected"), args, site="SH2", lot_id="L-1")
    assert entity.get("status", {}).get("value") == status


def test_a_transformed_lot_names_each_parent_once_with_the_mass_it_took() -> None:
    made = LotOrigin("M", "SH2", None, "COAL", 3_000, 5_000, None, "0xP", "0xbeef", "transformed")
    parents = (Parent("A", "SH2", 1_000), Parent("B", "SH9", 2_000))
    entity = lot_fragment(fact("LotCreated"), {}, site="SH2", lot_id="M", origin=made, parents=parents)
    check_entity(entity)
    assert [(p["object"], p["massTaken"]["value"]) for p in entity["parent"]] == [
        ("urn:ngsi-ld:OreLot:SH2:A", 1),
        ("urn:ngsi-ld:OreLot:SH9:B", 2),
    ]
    assert entity["mass"]["observedAt"] == "2025-12-06T05:48:20Z"  # no extraction time: the block's
    assert "location" not in entity
    twins = {**entity, "parent": [entity["parent"][0], entity["parent"][0]]}
    with pytest.raises(NotNgsiLd, match="distinct datasetIds"):
        check_entity(twins)


def test_the_whole_lot_shows_the_newest_assay_and_simplifies_to_key_values() -> None:
    from provenance.domain.ngsi_ld import Assay

    state = LotState(
        ORIGIN,
        custodian="0xB",
        pending_custodian=None,
        remaining_g=1_000,
        status="active",
        parents=(),
        assays=(Assay("0xL", 4_000, "XRF", "0x1", 5), Assay("0xL", 4_400, "FA", "0x2", 6)),
        last=fact("AssayRecorded", block=12),
        created_at=1_765_000_000,
    )
    entity = lot_entity(state, None)
    check_entity(entity)
    simple = key_values(entity)
    assert simple["grade"] == 4_400
    assert simple["remainingMass"] == 1
    assert simple["site"] == "urn:ngsi-ld:MiningSite:SH2"
    assert simple["lastFact"] == "urn:ngsi-ld:DLTtxReceipt:31337:0x" + "cd" * 32 + ":0"


def test_a_receipt_follows_the_smart_data_model_and_a_site_has_its_place() -> None:
    receipt = receipt_entity(fact("LotRegistered", log_index=4), "urn:ngsi-ld:OreLot:SH2:L-1")
    check_entity(receipt)
    assert receipt["type"] == "DLTtxReceipt"
    tx: dict[str, Any] = receipt["TxReceipts"]["value"]
    assert (tx["dltType"], tx["to"], tx["logs"]["logIndex"], tx["logs"]["logAddress"]) == (
        "eth",
        REGISTRY,
        4,
        REGISTRY,
    )
    assert receipt["chainId"]["value"] == 31337
    site = site_entity("SH2", "Jangseong shaft 2", Place(37.2, 129.0))
    check_entity(site)
    assert site["location"]["value"]["coordinates"] == [129.0, 37.2]


def test_the_context_maps_every_term_we_use() -> None:
    context = context_document("https://provenance.city.kr/ngsi-ld/vocab#")["@context"]
    terms = context[1]
    entity = lot_fragment(
        fact("LotCreated"), {}, site="SH2", lot_id="M", origin=ORIGIN, parents=(Parent("A", "SH2", 1),)
    )
    used = {key for key in entity if key not in ("id", "type")} | {"massTaken", "chainPosition", "OreLot"}
    core = {"location"}  # ETSI's core context defines it
    assert used - core <= set(terms)
    receipt = receipt_entity(fact("LotCreated"), "urn:ngsi-ld:OreLot:SH2:M")
    assert {key for key in receipt if key not in ("id", "type")} <= set(terms)


@pytest.mark.parametrize(
    ("q", "terms"),
    [
        ('commodity=="COAL"', [("commodity", "==", ("COAL",), False)]),
        (
            'status!="consumed","voided";grade>4000',
            [("status", "!=", ("consumed", "voided"), False), ("grade", ">", (4000.0,), False)],
        ),
        ("mass==1..2.5", [("mass", "==", (1.0, 2.5), True)]),
        ('site=="urn:ngsi-ld:MiningSite:SH2"', [("site", "==", ("SH2",), False)]),
        ('commodity=="a;b"', [("commodity", "==", ("a;b",), False)]),
    ],
)
def test_the_query_subset_reads_and_and_lists_and_ranges(q: str, terms: list[tuple[Any, ...]]) -> None:
    parsed = parse_q(q)
    assert [(t.attribute, t.operator, t.values, t.is_range) for t in parsed] == terms


@pytest.mark.parametrize(
    ("q", "reason"),
    [
        ('status=="a"|status=="b"', "OR"),
        ('(status=="a")', "parentheses"),
        ('commodity~="C.*"', "cannot read"),
        ('commodity=~"C.*"', "pattern"),
        ("mass.observedAt>1", "attribute paths"),
        ("grade[x]>1", "attribute paths"),
        ("status", "bare attribute"),
        ('colour=="red"', "colour cannot be queried"),
        ("commodity==COAL", "quoted string"),
        ('grade>"high"', "number"),
        ('commodity>"A"', "only == and !="),
        ("mass>1..2", "range needs =="),
        ('site=="SH2"', "MiningSite id"),
        ('commodity=="open', "not closed"),
        ("", "empty"),
    ],
)
def test_queries_we_do_not_answer_are_refused_with_the_reason(q: str, reason: str) -> None:
    with pytest.raises(UnsupportedQuery, match=reason):
        parse_q(q)
