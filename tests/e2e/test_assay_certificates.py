"""Assays with analytes over HTTP, on SQLite and PostgreSQL: the lab signs the hash of their
certificate, the certificate is stored, and the lot shows the analytes only while the certificate
held here is what the chain committed."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import pytest
from pypdf import PdfReader

from provenance.chain.deployment import Deployment
from provenance.chain.logsource import RpcLogSource
from provenance.index.indexer import Indexer
from tests.dbs import empty_database
from tests.e2e.conftest import EXTRACTED_AT, Stack, digest, error_of, start_stack

ANALYTES = [
    {"analyte": "gross_calorific_value", "value": "5710", "unit": "kcal/kg", "method": "ISO 1928, air-dried"},
    {"analyte": "ash", "value": "24.8", "unit": "%", "method": "ISO 1171, air-dried"},
]


def hand_written_certificate(lot_id: str) -> bytes:
    """The canonical certificate of ANALYTES, written out here by hand (docs/api.md)."""
    return (
        b'{"analytes":['
        b'{"analyte":"ash","method":"ISO 1171, air-dried","unit":"%","value":"24.8"},'
        b'{"analyte":"gross_calorific_value","method":"ISO 1928, air-dried","unit":"kcal/kg","value":"5710"}'
        b'],"format":"mineral-provenance/assay-certificate/1","lot_id":"' + lot_id.encode() + b'"}'
    )


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("certificates")
    with empty_database(request.param, directory) as url:
        yield from start_stack(directory, "CERT", database_url=url)


def index(stack: Stack) -> None:
    deployment = Deployment.load(stack.settings.deployment_path)
    Indexer(stack.runtime.engine, RpcLogSource(stack.w3, deployment.registry), deployment).sync()


def assay_body(lot_id: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "lot_id": lot_id,
        "grade_ppm": 661_000,
        "method": "ISO-17246",
        "assayed_at": EXTRACTED_AT + 3600,
        "analytes": ANALYTES,
    }
    body.update(changes)
    return body


def assayed_lot(stack: Stack, **changes: Any) -> tuple[str, dict[str, Any]]:
    """A lot with a recorded assay of `assay_body(**changes)`, indexed; (lot id, signed assay)."""
    lot = stack.register()
    signing = stack.post("/v1/assays/sign", stack.lab, assay_body(lot, **changes))
    assert signing.status_code == 200, signing.text
    signed: dict[str, Any] = signing.json()
    operation = stack.write(
        "/v1/assays", stack.buyer, {"assay": signed["assay"], "signature": signed["signature"]}
    )
    assert operation["status"] == "confirmed", operation
    index(stack)
    return lot, signed


def lot_assay(stack: Stack, lot_id: str) -> dict[str, Any]:
    response = stack.http.get(f"/v1/lots/{lot_id}")
    assert response.status_code == 200, response.text
    assays: list[dict[str, Any]] = response.json()["assays"]
    assert len(assays) == 1
    return assays[0]


def test_the_lab_signs_the_hash_of_the_analytes_certificate_and_the_lot_returns_them(stack: Stack) -> None:
    lot, signed = assayed_lot(stack)
    certificate = hand_written_certificate(lot)
    certificate_hash = "0x" + hashlib.sha256(certificate).hexdigest()

    assert signed["assay"]["certificate_hash"] == certificate_hash
    assay = lot_assay(stack, lot)
    assert assay["certificate_hash"] == certificate_hash  # what the chain holds, signed by the lab
    assert assay["certificate"]["status"] == "matches"
    assert assay["certificate"]["analytes"] == [
        {"analyte": "ash", "value": "24.8", "unit": "%", "method": "ISO 1171, air-dried"},
        {
            "analyte": "gross_calorific_value",
            "value": "5710",
            "unit": "kcal/kg",
            "method": "ISO 1928, air-dried",
        },
    ]
    download = stack.http.get(assay["certificate"]["url"], headers=stack.buyer.auth)
    assert download.status_code == 200
    assert download.content == certificate

    checked = stack.http.post("/v1/verify/document", files={"file": ("certificate.json", certificate)})
    assert checked.status_code == 200, checked.text
    assert [(a["lot_id"], a["lab"], a["confirmed"]) for a in checked.json()["assays"]] == [
        (lot, signed["lab"], True)
    ]
    other = stack.http.post("/v1/verify/document", files={"file": ("x.json", certificate + b" ")})
    assert other.json()["assays"] == []


def test_a_certificate_hash_that_is_not_the_analytes_is_refused_naming_it(stack: Stack) -> None:
    lot = stack.register()
    wrong = digest("some other certificate")

    signing = stack.post("/v1/assays/sign", stack.lab, assay_body(lot, certificate_hash=wrong))
    assert signing.status_code == 422
    assert error_of(signing)["field"] == "certificate_hash"

    good = stack.post("/v1/assays/sign", stack.lab, assay_body(lot)).json()
    forged = {**good["assay"], "certificate_hash": wrong}
    submitting = stack.post("/v1/assays", stack.buyer, {"assay": forged, "signature": good["signature"]})
    assert submitting.status_code == 422
    assert error_of(submitting)["field"] == "assay.certificate_hash"


@pytest.mark.parametrize(
    ("analyte", "field"),
    [
        ({"analyte": "ash", "value": "24.8", "unit": "kg", "method": "ISO 1171"}, "analytes[0].unit"),
        ({"analyte": "ash", "value": "1e400", "unit": "%", "method": "ISO 1171"}, "analytes[0].value"),
        ({"analyte": "ash", "value": 24.8, "unit": "%", "method": "ISO 1171"}, "analytes[0].value"),
        ({"analyte": "mystery", "value": "1", "unit": "%", "method": "ISO 1171"}, "analytes[0].analyte"),
    ],
)
def test_a_bad_analyte_is_a_422_naming_it(stack: Stack, analyte: dict[str, Any], field: str) -> None:
    response = stack.post("/v1/assays/sign", stack.lab, assay_body("CERT-ANY", analytes=[analyte]))

    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field


def test_without_analytes_a_certificate_hash_is_required(stack: Stack) -> None:
    response = stack.post("/v1/assays/sign", stack.lab, assay_body("CERT-ANY", analytes=None))

    assert response.status_code == 422
    assert error_of(response)["field"] == "certificate_hash"


def test_a_certificate_not_held_here_is_said_so_without_analytes(stack: Stack) -> None:
    lot, _ = assayed_lot(stack, analytes=None, certificate_hash=digest("a PDF the lab keeps"))

    certificate = lot_assay(stack, lot)["certificate"]
    assert certificate["status"] == "not_held"
    assert certificate["message"] == "certificate not held here"
    assert certificate["analytes"] is None


def test_a_certificate_tampered_in_the_store_does_not_match_and_its_analytes_are_not_shown(
    stack: Stack,
) -> None:
    lot, signed = assayed_lot(stack)
    path = stack.runtime.documents.find(signed["assay"]["certificate_hash"])
    assert path is not None
    path.write_bytes(path.read_bytes().replace(b'"24.8"', b'"14.8"'))

    certificate = lot_assay(stack, lot)["certificate"]
    assert certificate["status"] == "does_not_match"
    assert certificate["message"] == "certificate does not match the chain"
    assert certificate["analytes"] is None
    page = stack.http.get(f"/lots/{lot}?lang=en")
    assert page.status_code == 200
    assert "does not match the chain" in page.text
    assert "14.8" not in page.text
    assert 'data-analyte="ash"' not in page.text


def test_the_lot_page_and_passport_show_the_analytes_committed_by_the_signed_hash(stack: Stack) -> None:
    lot, signed = assayed_lot(stack)
    short = signed["assay"]["certificate_hash"][:8]  # the page shortens hashes to 0x123456…abcd

    english = stack.http.get(f"/lots/{lot}?lang=en").text
    row = english[english.index('data-analyte="ash"') :]
    row = row[: row.index("</tr>")]
    assert "Ash" in row
    assert "24.8 %" in row
    assert "ISO 1171, air-dried" in row
    assert "committed on chain by certificate hash" in row
    assert short in row
    assert "Gross calorific value" in english
    assert "5710 kcal/kg" in english

    korean = stack.http.get(f"/lots/{lot}?lang=ko").text
    assert "회분" in korean
    assert "총발열량" in korean

    passport = stack.http.get(f"/lots/{lot}/passport.pdf?lang=en")
    assert passport.status_code == 200
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(passport.content)).pages)
    assert "Ash" in text
    assert "24.8 %" in text
    assert "5710 kcal/kg" in text
    assert "committed on chain by certificate hash" in text
