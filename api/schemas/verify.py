"""Verification of a lot against the chain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, JsonValue


class ChainCoordinatesOut(BaseModel):
    """Where on chain a fact is: re-read it from this transaction's receipt."""

    tx_hash: str
    block_number: int = Field(description="-1 when the index names a log the chain does not have.")
    log_index: int


class DifferenceOut(BaseModel):
    """One fact on which the index and the chain disagree."""

    lot_id: str
    event: str = Field(description="The event (or lotState, lineage_edge, events) the fact belongs to.")
    field: str = Field(description="The field that differs, e.g. massG, remaining_g, edge[L2].mass_g.")
    index_value: JsonValue = Field(description="What the index (or the replay of events) says.")
    chain_value: JsonValue = Field(description="What the chain says.")
    where: ChainCoordinatesOut | None = None


class CheckOut(BaseModel):
    name: str = Field(
        description="lot_state, registration, creation, transformation, event:<Event>, "
        "assay_signature, lineage, conservation, events_complete, ..."
    )
    lot_id: str
    status: Literal["pass", "fail"]
    claimed: dict[str, JsonValue] | None = Field(description="What the index claims.")
    on_chain: dict[str, JsonValue] | None = Field(description="What the chain says.")
    where: ChainCoordinatesOut | None = None
    detail: str = ""


class VerificationOut(BaseModel):
    """The index's claims about a lot and its lineage, checked against the chain itself."""

    lot_id: str
    verdict: Literal["verified", "failed"]
    mode: str
    block_number: int = Field(description="The block the chain was read at (the index's cursor).")
    chain_id: int
    registry: str
    lots_checked: list[str] = Field(description="The lot and its lineage, back to origin lots.")
    max_lots: int
    bound_hit: bool = Field(
        description="True if the walk stopped at max_lots: older lineage was not checked."
    )
    differences: list[DifferenceOut]
    checks: list[CheckOut]


class DocumentAnchorOut(BaseModel):
    lot_id: str
    kind: str
    anchored_by: str = Field(description="The account that anchored it (the lot's custodian then).")
    tx_hash: str
    block_number: int
    log_index: int
    in_index: bool = Field(description="Whether the index shows this anchor too.")


class CertifyingAssayOut(BaseModel):
    """An assay whose lab signed this file's SHA-256 as its certificate hash."""

    lot_id: str
    lab: str
    tx_hash: str
    block_number: int
    log_index: int
    confirmed: bool = Field(description="Whether the chain's receipt shows the assay as the index has it.")


class DocumentVerificationOut(BaseModel):
    """Whether a document's SHA-256 is anchored on chain, and where; and whether it is the certificate
    of a recorded assay."""

    sha256: str
    document_hash: str
    size_bytes: int
    anchored: bool
    anchors: list[DocumentAnchorOut] = Field(description="Every DocumentAnchored of this hash on chain.")
    unconfirmed: list[DocumentAnchorOut] = Field(
        description="Anchors the index claims that the chain does not confirm (should be empty)."
    )
    checked_at_block: int
    assays: list[CertifyingAssayOut] = Field(
        default_factory=list,
        description="Assays whose lab signed this hash as their certificate's (an assay certificate of "
        "analytes is one such file; found through the index, each re-read from its receipt).",
    )
