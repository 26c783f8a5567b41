"""The assay certificate: canonical bytes, their hash, and the analytes it refuses."""

from __future__ import annotations

import hashlib

import pytest

from provenance.domain.assay_certificate import (
    Analyte,
    CertificateError,
    CertificateStatus,
    analytes_of,
    build_certificate,
    check_certificate,
)

ASH = Analyte("ash", "24.80", "%", "ISO 1171, air-dried")
GCV = Analyte("gross_calorific_value", "5710", "kcal/kg", "ISO 1928, air-dried")
SULPHUR = Analyte("total_sulphur", "0.31", "%", "ASTM D4239")

# written out by hand: keys sorted, no spaces, analytes by name, values as text, no newline
HAND_WRITTEN = (
    b'{"analytes":['
    b'{"analyte":"ash","method":"ISO 1171, air-dried","unit":"%","value":"24.80"},'
    b'{"analyte":"gross_calorific_value","method":"ISO 1928, air-dried","unit":"kcal/kg","value":"5710"},'
    b'{"analyte":"total_sulphur","method":"ASTM D4239","unit":"%","value":"0.31"}'
    b'],"format":"mineral-provenance/assay-certificate/1","lot_id":"SH2-20261103-SHIP-A"}'
)


def test_the_canonical_bytes_are_sorted_compact_json_with_values_as_text() -> None:
    certificate = build_certificate("SH2-20261103-SHIP-A", [SULPHUR, GCV, ASH])

    assert certificate.canonical_bytes() == HAND_WRITTEN
    assert certificate.certificate_hash == "0x" + hashlib.sha256(HAND_WRITTEN).hexdigest()


def test_the_order_given_does_not_change_the_hash_but_a_digit_does() -> None:
    one = build_certificate("L1", [ASH, GCV]).certificate_hash
    assert build_certificate("L1", [GCV, ASH]).certificate_hash == one
    assert build_certificate("L1", [Analyte("ash", "24.8", "%", ASH.method), GCV]).certificate_hash != one
    assert build_certificate("L2", [ASH, GCV]).certificate_hash != one


def test_non_ascii_method_text_is_written_as_utf8() -> None:
    certificate = build_certificate("L1", [Analyte("ash", "24.8", "%", "KS E 3705 회분")])

    assert "KS E 3705 회분".encode() in certificate.canonical_bytes()


def test_analytes_are_read_in_a_buyers_order() -> None:
    certificate = build_certificate("L1", [GCV, SULPHUR, ASH, Analyte("Fe", "1.2", "%", "XRF")])

    assert [a.analyte for a in certificate.for_reading()] == [
        "ash",
        "total_sulphur",
        "gross_calorific_value",
        "Fe",
    ]


@pytest.mark.parametrize(
    ("analyte", "field"),
    [
        (Analyte("ash", "24.8", "kg", "ISO 1171"), "analytes[0].unit"),
        (Analyte("ash", "5710", "kcal/kg", "ISO 1171"), "analytes[0].unit"),
        (Analyte("gross_calorific_value", "5710", "%", "ISO 1928"), "analytes[0].unit"),
        (Analyte("Fe", "62", "kcal/kg", "XRF"), "analytes[0].unit"),
        (Analyte("ash", "NaN", "%", "ISO 1171"), "analytes[0].value"),
        (Analyte("ash", "Infinity", "%", "ISO 1171"), "analytes[0].value"),
        (Analyte("ash", "1e1", "%", "ISO 1171"), "analytes[0].value"),
        (Analyte("ash", "-3", "%", "ISO 1171"), "analytes[0].value"),
        (Analyte("ash", "024.8", "%", "ISO 1171"), "analytes[0].value"),
        (Analyte("ash", "24.", "%", "ISO 1171"), "analytes[0].value"),
        (Analyte("ash", "", "%", "ISO 1171"), "analytes[0].value"),
        (Analyte("ash", "100.1", "%", "ISO 1171"), "analytes[0].value"),
        (Analyte("ash", "24.8", "%", ""), "analytes[0].method"),
        (Analyte("ash", "24.8", "%", "ISO\n1171"), "analytes[0].method"),
        (Analyte("ash", "24.8", "%", "x" * 65), "analytes[0].method"),
        (Analyte("unobtainium", "1", "%", "XRF"), "analytes[0].analyte"),
        (Analyte("fe", "62", "%", "XRF"), "analytes[0].analyte"),
    ],
)
def test_a_bad_analyte_is_refused_naming_its_field(analyte: Analyte, field: str) -> None:
    with pytest.raises(CertificateError) as error:
        build_certificate("L1", [analyte])
    assert error.value.field == field


def test_an_empty_list_or_an_analyte_twice_is_refused() -> None:
    with pytest.raises(CertificateError) as empty:
        build_certificate("L1", [])
    assert empty.value.field == "analytes"
    with pytest.raises(CertificateError) as twice:
        build_certificate("L1", [ASH, GCV, Analyte("ash", "25.0", "%", "ISO 1171")])
    assert twice.value.field == "analytes[2].analyte"


def test_json_items_must_be_four_strings() -> None:
    with pytest.raises(CertificateError) as number:
        analytes_of([{"analyte": "ash", "value": 24.8, "unit": "%", "method": "ISO 1171"}])
    assert number.value.field == "analytes[0].value"
    with pytest.raises(CertificateError) as extra:
        analytes_of([{"analyte": "ash", "value": "24.8", "unit": "%", "method": "ISO 1171", "basis": "ad"}])
    assert extra.value.field == "analytes[0]"


def test_held_bytes_show_analytes_only_when_they_are_what_the_chain_committed() -> None:
    chain_hash = "0x" + hashlib.sha256(HAND_WRITTEN).hexdigest()
    lot = "SH2-20261103-SHIP-A"

    held = check_certificate(HAND_WRITTEN, chain_hash, lot)
    assert held.status is CertificateStatus.MATCHES
    assert [(a.analyte, a.value, a.unit) for a in held.analytes] == [
        ("ash", "24.80", "%"),
        ("total_sulphur", "0.31", "%"),
        ("gross_calorific_value", "5710", "kcal/kg"),
    ]

    tampered = HAND_WRITTEN.replace(b'"24.80"', b'"14.80"')
    assert check_certificate(tampered, chain_hash, lot).status is CertificateStatus.DOES_NOT_MATCH
    assert check_certificate(tampered, chain_hash, lot).analytes == ()
    assert check_certificate(None, chain_hash, lot).status is CertificateStatus.NOT_HELD
    assert check_certificate(HAND_WRITTEN, chain_hash, "SH2-OTHER").status is CertificateStatus.DOES_NOT_MATCH

    pdf = b"%PDF-1.7 a lab's own certificate"
    pdf_hash = "0x" + hashlib.sha256(pdf).hexdigest()
    assert check_certificate(pdf, pdf_hash, lot).status is CertificateStatus.NOT_A_CERTIFICATE
    spaced = HAND_WRITTEN.replace(b'"analytes":[', b'"analytes": [')  # valid JSON, not canonical
    spaced_hash = "0x" + hashlib.sha256(spaced).hexdigest()
    assert check_certificate(spaced, spaced_hash, lot).status is CertificateStatus.NOT_A_CERTIFICATE
