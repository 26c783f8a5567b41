"""A deployment's EPCIS identifiers (`provenance.epcis.ids`): GS1 keys from the operator's company
prefix as Digital Links or EPC URNs, URIs under its public URL otherwise; every form a client may
send read back; lot numbers within GS1's limits; translation for GS1-EPC-Format."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from provenance.config import Settings
from provenance.epcis.export import EXTENSION_NAMESPACE
from provenance.epcis.hash import check_digit, gs1_digital_link
from provenance.epcis.ids import LOCAL_SCHEME, Gs1Keys, IdentifierScheme, LotNumber, gs1_number, translated

CSET_82 = re.compile(r"""[!"%&'()*+,\-./0-9:;<=>?A-Z_a-z]{1,20}""")
"""GS1 General Specifications figure 7.11-1 (character set 82), at most 20: AI (10) and AI (254)."""

PUBLIC = "https://mine.example.net"
KEYS = Gs1Keys("4012345", (("COAL", "012345"), ("CU", "112345")), "00011", (("0xabc", "4012345000009"),))
GS1 = IdentifierScheme(PUBLIC, KEYS)
GS1_URN = IdentifierScheme(PUBLIC, KEYS, "epc_urn")


def test_gs1_keys_follow_the_company_prefix_with_check_digits() -> None:
    # GS1's own example of the 9.6.2 ObjectEvent: urn:epc:class:lgtin:4012345.012345.998877
    assert GS1_URN.lot("998877", "COAL") == "urn:epc:class:lgtin:4012345.012345.998877"
    # and its canonical Digital Link (the tool's normaliser, GS1's own algorithm, computes it)
    assert GS1.lot("998877", "COAL") == f"{PUBLIC}/01/04012345123456/10/998877"
    assert gs1_digital_link(GS1.lot("998877", "COAL")) == gs1_digital_link(GS1_URN.lot("998877", "COAL"))
    # the tool's README illustration: urn:epc:id:sgln:4012345.00011.987 is GLN 4012345000115
    assert GS1_URN.site("987") == "urn:epc:id:sgln:4012345.00011.987"
    assert GS1.site("987") == f"{PUBLIC}/414/4012345000115/254/987"
    assert GS1.party("0xABC") == f"{PUBLIC}/417/4012345000009"
    assert GS1_URN.party("0xabc") == "urn:epc:id:pgln:4012345.00000"
    assert check_digit("401234500011") == "5"


def test_what_has_no_gs1_key_stays_under_the_public_url() -> None:
    assert GS1.lot("A1", "GOLD") == f"{PUBLIC}/lots/A1"
    assert GS1.lot("A1") == f"{PUBLIC}/lots/A1"
    assert GS1.party("0xdef") == f"{PUBLIC}/id/accounts/0xdef"
    assert GS1.method("ISO 1213") == f"{PUBLIC}/id/methods/ISO%201213"
    assert LOCAL_SCHEME.lot("A 2/x") == "http://127.0.0.1:8000/lots/A%202%2Fx"
    assert LOCAL_SCHEME.site("SH2") == "http://127.0.0.1:8000/id/sites/SH2"


@pytest.mark.parametrize(
    "lot_id",
    ["A1", "SH2-T01-20261207T080", "SH2-T01-20261207T0800", "pit:3/truck-7", "x" * 32, "a/b", "Z" * 19],
)
def test_every_lot_id_has_a_lot_number_gs1_allows_and_reads_back(lot_id: str) -> None:
    number = gs1_number(lot_id)
    assert CSET_82.fullmatch(number)
    for scheme in (GS1, GS1_URN):
        uri = scheme.lot(lot_id, "COAL")
        found = scheme.parse_lot(uri)
        if isinstance(found, LotNumber):
            assert len(lot_id) >= 20 or not re.fullmatch(r"[A-Za-z0-9._-]+", lot_id)
            assert found.names(lot_id)
            assert any(lot_id.startswith(prefix) for prefix in found.prefixes())
        else:
            assert found == lot_id


def test_mapped_lot_numbers_are_never_another_labels_own_number() -> None:
    mapped = gs1_number("SH2-T01-20261207T0800")
    assert "=" in mapped
    assert len(mapped) == 20
    assert gs1_number(mapped.replace("=", "-")) != mapped
    assert gs1_number("SH2-T01-20261207T0801") != mapped


def test_a_lot_is_read_back_from_any_form_a_client_may_send() -> None:
    forms = [
        f"{PUBLIC}/01/04012345123456/10/998877",
        f"{PUBLIC}/01/04012345123456/10/998877?linkType=gs1:pip",
        "https://id.gs1.org/01/04012345123456/10/998877",
        "https://resolver.example.org/some/path/01/04012345123456/10/998877",
        "urn:epc:class:lgtin:4012345.012345.998877",
        f"{PUBLIC}/lots/998877",
    ]
    for uri in forms:
        assert GS1.parse_lot(uri) == "998877", uri
        assert GS1_URN.parse_lot(uri) == "998877", uri
    # another company's GTIN, a GTIN without a lot, an unknown item reference: not ours
    for uri in (
        "urn:epc:class:lgtin:0614141.077777.987",
        "https://id.gs1.org/01/04012345123456",
        "urn:epc:class:lgtin:4012345.099999.998877",
        "http://127.0.0.1:8000/lots/998877",
    ):
        assert GS1.parse_lot(uri) is None, uri


def test_sites_parties_methods_and_transformations_read_back() -> None:
    assert GS1.parse_site("urn:epc:id:sgln:4012345.00011.SH2") == "SH2"
    assert GS1.parse_site(f"{PUBLIC}/414/4012345000115/254/SH2") == "SH2"
    assert GS1.parse_site("urn:epc:id:sgln:4012345.00012.SH2") is None
    assert GS1.parse_party("urn:epc:id:pgln:4012345.00000") == "0xabc"
    assert LOCAL_SCHEME.parse_method(LOCAL_SCHEME.method("ISO 1213")) == "ISO 1213"
    assert LOCAL_SCHEME.parse_transformation(LOCAL_SCHEME.transformation(1, "0xR", 0)) == 0


def test_gs1_epc_format_translates_our_keys_both_ways() -> None:
    event = {
        "quantityList": [{"epcClass": GS1.lot("998877", "COAL"), "quantity": 1}],
        "bizLocation": {"id": GS1.site("SH2")},
        "sourceList": [{"type": "owning_party", "source": GS1.party("0xabc")}],
        "mp:other": "urn:epc:class:lgtin:0614141.077777.987",
    }
    assert GS1.translated_form("Always_EPC_URN") == ("epc_urn", "Always_EPC_URN")
    as_urns = translated(event, GS1, "epc_urn")
    assert as_urns["quantityList"][0]["epcClass"] == "urn:epc:class:lgtin:4012345.012345.998877"
    assert as_urns["bizLocation"]["id"] == "urn:epc:id:sgln:4012345.00011.SH2"
    assert as_urns["sourceList"][0]["source"] == "urn:epc:id:pgln:4012345.00000"
    assert as_urns["mp:other"] == event["mp:other"]  # another company's key is not ours to rewrite
    assert translated(as_urns, GS1, "digital_link") == event
    assert LOCAL_SCHEME.translated_form("Always_EPC_URN") == (None, "Never_Translates")


def test_settings_build_the_scheme_and_refuse_what_gs1_does_not_allow() -> None:
    settings = Settings(
        public_url=PUBLIC + "/",
        epcis_gs1_company_prefix="4012345",
        epcis_gs1_item_references="COAL=012345",
        epcis_gs1_location_reference="00011",
        epcis_gs1_party_glns="0xABC=4012345000009",
    )
    assert settings.epcis_identifiers() == IdentifierScheme(
        PUBLIC, Gs1Keys("4012345", (("COAL", "012345"),), "00011", (("0xabc", "4012345000009"),))
    )
    for wrong, field in (
        ({"epcis_gs1_company_prefix": "40123"}, "epcis_gs1_company_prefix"),
        (
            {"epcis_gs1_company_prefix": "4012345", "epcis_gs1_item_references": "COAL=12"},
            "epcis_gs1_item_references",
        ),
        (
            {"epcis_gs1_company_prefix": "4012345", "epcis_gs1_party_glns": "0xabc=4012345000008"},
            "epcis_gs1_party_glns",
        ),
        ({"epcis_gs1_item_references": "COAL=012345"}, "epcis_gs1_company_prefix"),
        ({"public_url": "mine.example.net"}, "public_url"),
    ):
        with pytest.raises(ValidationError, match=field):
            Settings(**wrong)


def test_no_default_names_a_placeholder_domain() -> None:
    defaults = Settings().epcis_identifiers()
    for text in (defaults.base_url, EXTENSION_NAMESPACE, defaults.lot("A1"), defaults.site("S")):
        assert ".example" not in text
        assert "example." not in text
    assert defaults.fingerprint() != GS1.fingerprint() != GS1_URN.fingerprint()
