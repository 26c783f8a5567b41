"""Labels and submitted records: what the domain accepts, and the field it names when it refuses."""

from __future__ import annotations

import pytest

from provenance.domain.records import LotRegistration, TransformInput
from provenance.domain.values import decode_label, encode_label
from provenance.errors import DomainError, InvalidLabel


def registration(**changes: object) -> LotRegistration:
    fields: dict[str, object] = {
        "lot_id": "SH2-20261124-T07-00001",
        "site": "SH2",
        "face": "F3",
        "commodity": "COAL",
        "mass_g": 24_500_000,
        "grade_ppm": 12_345,
        "extracted_at": 1_795_000_000,
        "record_hash": b"\x11" * 32,
    }
    fields.update(changes)
    return LotRegistration(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["SH2", "SH2-20261124-T07-00001", "a" * 32, "lot.1:x/y_z"])
def test_labels_round_trip(text: str) -> None:
    raw = encode_label(text)

    assert len(raw) == 32
    assert decode_label(raw) == text


@pytest.mark.parametrize("text", ["", "a" * 33, "-leading", "spa ce", "한글", "semi;colon", "../etc"])
def test_bad_labels_are_refused_with_the_field_named(text: str) -> None:
    with pytest.raises(InvalidLabel) as caught:
        encode_label(text, "lot_id")

    assert caught.value.field == "lot_id"


def test_non_label_bytes_decode_as_hex() -> None:
    assert decode_label(b"\xff" * 32) == "0x" + "ff" * 32


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mass_g", 0),
        ("mass_g", -5),
        ("mass_g", 2**96),
        ("mass_g", 2**63),
        ("mass_g", 1.5),
        ("mass_g", True),
        ("grade_ppm", 1_000_001),
        ("grade_ppm", -1),
        ("extracted_at", -1),
        ("record_hash", b"short"),
        ("site", "no spaces"),
        ("face", ""),
        ("commodity", "x" * 40),
    ],
)
def test_registration_refuses_bad_fields_by_name(field: str, value: object) -> None:
    with pytest.raises(DomainError) as caught:
        registration(**{field: value})

    assert caught.value.field == field


def test_a_valid_registration_keeps_its_values() -> None:
    lot = registration(mass_g=2**63 - 1, grade_ppm=1_000_000)

    assert (lot.mass_g, lot.grade_ppm) == (2**63 - 1, 1_000_000)


def test_transform_input_needs_positive_mass() -> None:
    with pytest.raises(DomainError, match="mass_g"):
        TransformInput("SH2-1", 0)
