"""What the read API answers: lots, lineage, events, pages of them."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.schemas.common import EXAMPLE_HASH, EXAMPLE_TIME, FromDomain
from provenance.domain.assay_certificate import CertificateCheck, CertificateStatus
from provenance.domain.trace import (
    AssayFact,
    Descendant,
    Descendants,
    LotDetail,
    Provenance,
    Share,
    TimelineEvent,
    decimal_text,
)

#
# Every fact carries the chain coordinates of the event it comes from, so a reader can check it
# against the chain. Exact quantities that are not whole grams (shares, grams through a blend) are
# decimal text with 12 places plus the exact fraction as numerator and denominator (text, so no
# JSON parser rounds them).

_TX = "0x" + "5e" * 32
_BLOCK = "0x" + "b1" * 32
_ACCOUNT = "0x" + "a1" * 20
_COORDINATES: dict[str, JsonValue] = {
    "block_number": 1_204,
    "block_hash": _BLOCK,
    "tx_hash": _TX,
    "tx_index": 0,
    "log_index": 3,
}


class CoordinatesOut(FromDomain):
    """Where on chain a fact was recorded (`log_index` as the node numbers it)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_COORDINATES]})

    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int


_LOT_OUT_EXAMPLE: dict[str, JsonValue] = {
    "lot_id": "SH2-2024-000417",
    "origin": "registered",
    "site": "SH2",
    "face": "F3",
    "commodity": "COAL",
    "mass_g": 24_500_000,
    "grade_ppm": 12_345,
    "extracted_at": EXAMPLE_TIME,
    "record_hash": EXAMPLE_HASH,
    "transform_id": None,
    "creator": _ACCOUNT,
    "custodian": _ACCOUNT,
    "pending_custodian": None,
    "remaining_g": 24_500_000,
    "status": "active",
    "created": _COORDINATES,
}


class LotOut(FromDomain):
    """A lot: origin attributes as registered (or made by a transformation) and its current state."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LOT_OUT_EXAMPLE]})

    lot_id: str
    origin: Literal["registered", "transformed"]
    site: str
    face: str | None
    commodity: str
    mass_g: int = Field(description="Mass at creation, whole grams.")
    grade_ppm: int
    extracted_at: int | None = Field(description="Unix seconds; null for lots made by a transformation.")
    record_hash: str
    transform_id: int | None = Field(description="The transformation that made the lot, if one did.")
    creator: str
    custodian: str
    pending_custodian: str | None = Field(description="The account a handover is offered to, if one is open.")
    remaining_g: int
    status: Literal["active", "consumed", "voided"]
    created: CoordinatesOut = Field(description="Coordinates of the LotRegistered or LotCreated event.")


class AnalyteOut(FromDomain):
    analyte: str
    value: str = Field(description="Decimal text, exactly as certified.")
    unit: str
    method: str


CertificateStatusName = Literal["matches", "not_held", "does_not_match", "not_a_certificate"]


class AssayCertificateOut(BaseModel):
    """What this server holds under the assay's certificate hash, checked against that hash."""

    status: CertificateStatusName = Field(
        description="matches: the held certificate hashes to the on-chain certificate hash (its "
        "analytes follow); not_held: certificate not held here; does_not_match: the held file does not "
        "match the chain (no analytes are shown); not_a_certificate: the held file is what the chain "
        "committed, but not a certificate of analytes (a PDF, say)."
    )
    message: str
    analytes: list[AnalyteOut] | None = Field(
        description="Only when status is matches: every value committed by the hash the lab signed."
    )
    url: str | None = Field(description="Where the held file downloads (any valid token).")


_CERTIFICATE_MESSAGES: dict[CertificateStatusName, str] = {
    "matches": "certificate held here; its SHA-256 equals the certificate hash the lab signed on chain",
    "not_held": "certificate not held here",
    "does_not_match": "certificate does not match the chain",
    "not_a_certificate": "the file held under this hash is not an assay certificate of this lot",
}


class AssayFactOut(FromDomain):
    lab: str
    grade_ppm: int
    method: str
    certificate_hash: str
    assayed_at: int
    submitter: str
    coordinates: CoordinatesOut
    certificate: AssayCertificateOut | None = None

    @classmethod
    def with_certificate(cls, assay: AssayFact, check: CertificateCheck | None) -> AssayFactOut:
        out = cls.of(assay)
        if check is None:
            return out
        status: CertificateStatusName = check.status.value
        out.certificate = AssayCertificateOut(
            status=status,
            message=_CERTIFICATE_MESSAGES[status],
            analytes=[AnalyteOut.of(analyte) for analyte in check.analytes]
            if check.status is CertificateStatus.MATCHES
            else None,
            url=None
            if check.status is CertificateStatus.NOT_HELD
            else "/v1/documents/" + assay.certificate_hash.lower().removeprefix("0x"),
        )
        return out


class AnchoredDocumentOut(FromDomain):
    document_hash: str
    kind: str
    anchored_by: str
    coordinates: CoordinatesOut


class CustodyMoveOut(FromDomain):
    lot_id: str
    action: Literal["offered", "cancelled", "accepted"]
    from_address: str
    to_address: str
    coordinates: CoordinatesOut


_CORRECTION_EXAMPLE: dict[str, JsonValue] = {
    "reason": "incorrect_data",
    "adjustment_g": -100_000,
    "remaining_g": 24_400_000,
    "corrected_by": _ACCOUNT,
    "record_hash": EXAMPLE_HASH,
    "coordinates": {**_COORDINATES, "block_number": 1_377, "log_index": 0},
}


class CorrectionOut(FromDomain):
    """A LotCorrected event: the lot's record was declared wrong. The record is never edited; the
    correction stands beside it."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CORRECTION_EXAMPLE]})

    reason: Literal["did_not_occur", "incorrect_data"] = Field(
        description="The CBV 2.0 error reason: did_not_occur voids the lot (it stays in every lineage), "
        "incorrect_data adjusts its remaining mass."
    )
    adjustment_g: int = Field(
        description="Signed grams added to the lot's remaining mass (negative: taken off)."
    )
    remaining_g: int = Field(description="The lot's remaining mass after the correction, whole grams.")
    corrected_by: str = Field(description="The account that declared the correction (custodian or admin).")
    record_hash: str = Field(description="Hash of the off-chain record explaining the correction, 0x-hex.")
    coordinates: CoordinatesOut = Field(description="Coordinates of the LotCorrected event.")


class LotDetailOut(LotOut):
    """A lot with its assays, anchored documents, open handover offer and corrections."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_LOT_OUT_EXAMPLE,
                    "remaining_g": 24_400_000,
                    "assays": [],
                    "documents": [],
                    "pending_handover": None,
                    "corrections": [_CORRECTION_EXAMPLE],
                }
            ]
        }
    )

    assays: list[AssayFactOut]
    documents: list[AnchoredDocumentOut]
    pending_handover: CustodyMoveOut | None = Field(description="The open offer, with its coordinates.")
    corrections: list[CorrectionOut] = Field(
        description="Every correction of the lot's record, oldest first (empty when none)."
    )

    @classmethod
    def of_detail(
        cls, detail: LotDetail, certificates: Mapping[str, CertificateCheck] | None = None
    ) -> LotDetailOut:
        """`certificates`: each assay's certificate hash (lower case) -> what this server holds."""
        held = certificates or {}
        return cls(
            **LotOut.of(detail.lot).model_dump(),
            assays=[
                AssayFactOut.with_certificate(assay, held.get(assay.certificate_hash.lower()))
                for assay in detail.assays
            ],
            documents=[AnchoredDocumentOut.of(document) for document in detail.documents],
            pending_handover=CustodyMoveOut.of(detail.pending_offer) if detail.pending_offer else None,
            corrections=[CorrectionOut.of(correction) for correction in detail.corrections],
        )


class CustodyOut(BaseModel):
    lot_id: str
    moves: list[CustodyMoveOut] = Field(description="Offers, cancellations and acceptances, oldest first.")


class LotPageOut(BaseModel):
    lots: list[LotOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page. Pages are ordered by "
        "(creation block, lot id), so lots indexed later never shift a page already read."
    )


class ExactOut(BaseModel):
    """An exact rational quantity."""

    decimal: str = Field(description="Rounded to 12 decimal places.", examples=["0.333333333333"])
    numerator: str
    denominator: str

    @classmethod
    def of(cls, value: Fraction) -> ExactOut:
        return cls(
            decimal=decimal_text(value), numerator=str(value.numerator), denominator=str(value.denominator)
        )


class ShareOut(BaseModel):
    key: str | None = Field(description="The origin lot, site or extraction day (YYYY-MM-DD, UTC).")
    share: ExactOut = Field(description="Part of the traced lot's mass; the shares of one list sum to 1.")
    grams: ExactOut = Field(description="The same part in grams of the traced lot's mass.")

    @classmethod
    def of(cls, share: Share) -> ShareOut:
        return cls(key=share.key, share=ExactOut.of(share.fraction), grams=ExactOut.of(share.grams))


class TraceLotOut(FromDomain):
    lot_id: str
    origin: Literal["registered", "transformed"]
    site: str
    commodity: str
    mass_g: int
    extracted_at: int | None
    custodian: str
    status: str
    depth: int = Field(description="Transformations between this lot and the traced one.")
    corrections: int = Field(
        description="How many corrections the lot's record carries (listed in GET /v1/lots/{lot_id})."
    )
    corrected_g: int = Field(description="The sum of their signed mass adjustments, whole grams.")
    did_not_occur: bool = Field(
        description="A correction declared that the lot never occurred: it stays in the lineage, its "
        "edges and shares as recorded, for the reader to weigh."
    )


class LineageEdgeOut(FromDomain):
    input_lot_id: str
    output_lot_id: str
    transform_id: int
    mass_g: int = Field(description="Whole grams of the input in the output.")
    coordinates: CoordinatesOut = Field(description="Coordinates of the output's LotCreated event.")


class ProvenanceOut(BaseModel):
    """The lineage DAG back to the extraction lots, with the share of the lot from each origin
    lot, site and extraction day (mass-weighted through every transformation; exact)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lot_id": "BLEND-7",
                    "complete": True,
                    "max_depth": 50,
                    "lots": [],
                    "edges": [],
                    "by_origin_lot": [
                        {
                            "key": "SH2-2024-000417",
                            "share": {"decimal": "0.250000000000", "numerator": "1", "denominator": "4"},
                            "grams": {
                                "decimal": "2500.000000000000",
                                "numerator": "2500",
                                "denominator": "1",
                            },
                        }
                    ],
                    "by_site": [],
                    "by_extraction_day": [],
                }
            ]
        }
    )

    lot_id: str
    complete: bool = Field(
        description="False when max_depth cut the walk; the deepest lots reached then stand in for origins."
    )
    max_depth: int
    lots: list[TraceLotOut]
    edges: list[LineageEdgeOut]
    by_origin_lot: list[ShareOut]
    by_site: list[ShareOut]
    by_extraction_day: list[ShareOut]

    @classmethod
    def of(cls, trace: Provenance, max_depth: int) -> ProvenanceOut:
        return cls(
            lot_id=trace.lot_id,
            complete=trace.complete,
            max_depth=max_depth,
            lots=[TraceLotOut.of(node) for node in trace.nodes],
            edges=[LineageEdgeOut.of(link) for link in trace.links],
            by_origin_lot=[ShareOut.of(share) for share in trace.by_origin_lot],
            by_site=[ShareOut.of(share) for share in trace.by_site],
            by_extraction_day=[ShareOut.of(share) for share in trace.by_extraction_day],
        )


class DescendantOut(BaseModel):
    lot: TraceLotOut
    grams: ExactOut = Field(description="Grams of the traced lot in this lot.")
    custodians: list[str] = Field(description="Its creator, then every account that accepted it, in order.")

    @classmethod
    def of(cls, descendant: Descendant) -> DescendantOut:
        return cls(
            lot=TraceLotOut.of(descendant.node),
            grams=ExactOut.of(descendant.grams),
            custodians=list(descendant.custodians),
        )


class DescendantsOut(BaseModel):
    """Every lot that received mass from the traced lot (for a recall), and every custodian of it."""

    lot_id: str
    complete: bool
    lots: list[DescendantOut]
    edges: list[LineageEdgeOut]
    custodians: list[str] = Field(description="Every account that held the lot or any lot with its mass.")

    @classmethod
    def of(cls, found: Descendants) -> DescendantsOut:
        return cls(
            lot_id=found.lot_id,
            complete=found.complete,
            lots=[DescendantOut.of(lot) for lot in found.lots],
            edges=[LineageEdgeOut.of(link) for link in found.links],
            custodians=list(found.custodians),
        )


class EventOut(BaseModel):
    name: str = Field(examples=["CustodyAccepted"])
    lot_id: str | None
    args: dict[str, Any]
    coordinates: CoordinatesOut

    @classmethod
    def of(cls, event: TimelineEvent) -> EventOut:
        return cls(
            name=event.name,
            lot_id=event.lot_id,
            args=dict(event.args),
            coordinates=CoordinatesOut.of(event.coordinates),
        )


class TimelineOut(BaseModel):
    events: list[EventOut] = Field(description="In chain order: block, transaction, log.")
    next_cursor: str | None
