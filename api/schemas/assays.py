"""Lab assays and their signing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.schemas.common import (
    EXAMPLE_HASH,
    EXAMPLE_TIME,
    SIGNATURE,
    GradePpm,
    Hash32,
    Label,
    Request,
    UnixSeconds,
)
from provenance.domain.commands import (
    SubmitAssay,
)

_ASSAY_EXAMPLE: dict[str, JsonValue] = {
    "lot_id": "SH2-2024-000417",
    "grade_ppm": 11_800,
    "method": "XRF",
    "certificate_hash": EXAMPLE_HASH,
    "assayed_at": EXAMPLE_TIME + 3600,
}


_COAL_ANALYTES_EXAMPLE: list[JsonValue] = [
    {"analyte": "ash", "value": "24.8", "unit": "%", "method": "ISO 1171, air-dried"},
    {"analyte": "gross_calorific_value", "value": "5710", "unit": "kcal/kg", "method": "ISO 1928, air-dried"},
]


class AnalyteIn(Request):
    """One result of the assay; the list becomes the certificate whose SHA-256 the lab signs."""

    analyte: str = Field(
        min_length=1,
        max_length=32,
        description="A coal property (total_moisture, moisture, ash, volatile_matter, fixed_carbon, "
        "total_sulphur, gross_calorific_value, net_calorific_value) or an element symbol (Fe, Cu, Au).",
    )
    value: str = Field(
        min_length=1,
        max_length=40,
        description='A decimal as text, as the lab reports it ("24.80"), never a JSON number.',
    )
    unit: str = Field(min_length=1, max_length=8, description="%, kcal/kg, MJ/kg, ppm or g/t.")
    method: str = Field(
        min_length=1, max_length=64, description='The standard and basis, e.g. "ISO 1171, air-dried".'
    )


class AssayIn(Request):
    """The fields the lab signs (EIP-712 type `Assay` of domain OreLotRegistry v1), and optionally
    the analytes whose certificate's SHA-256 is `certificate_hash`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _ASSAY_EXAMPLE,
                {
                    **_ASSAY_EXAMPLE,
                    "grade_ppm": 661_000,
                    "method": "ISO-17246",
                    "certificate_hash": None,
                    "analytes": _COAL_ANALYTES_EXAMPLE,
                },
            ]
        }
    )

    lot_id: Label
    grade_ppm: GradePpm
    method: Label = Field(description="The assay method as a label, e.g. XRF, FA-AAS.")
    certificate_hash: Hash32 | None = Field(
        default=None,
        description="SHA-256 of the lab's certificate, 0x-hex. With `analytes`, leave it out (the "
        "server fills in the hash of their certificate) or give exactly that hash; without, required.",
    )
    assayed_at: UnixSeconds
    analytes: list[AnalyteIn] | None = Field(
        default=None,
        max_length=32,
        description="The results a buyer reads, each committed on chain by the certificate hash the "
        "lab signs (docs/api.md, 'Assay certificates'); the certificate is stored and downloadable.",
    )

    def signed_fields(self) -> dict[str, Any]:
        """The assay as the lab signs it and the outbox sends it (the analytes travel as their hash)."""
        return self.model_dump(mode="json", exclude={"analytes"})

    def analyte_items(self) -> list[dict[str, Any]]:
        return [analyte.model_dump() for analyte in self.analytes or ()]


class SignedAssayIn(Request):
    """A lab-signed assay, submitted by anyone; the chain records it only if the signer holds LAB_ROLE."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"assay": _ASSAY_EXAMPLE, "signature": "0x" + "1b" * 65}]}
    )

    assay: AssayIn
    signature: str = Field(pattern=SIGNATURE, description="65-byte EIP-712 signature (r, s, v) as 0x-hex.")

    def command(self) -> SubmitAssay:
        return SubmitAssay.from_payload({"assay": self.assay.signed_fields(), "signature": self.signature})


class SignedAssayOut(BaseModel):
    """A signed assay, ready to POST to /v1/assays (by the lab or by anyone it gives it to)."""

    assay: AssayIn
    signature: str
    lab: str = Field(description="The address that signed: the caller's own account.")
