"""The wire shapes of the write API: what an operator sends, what it gets back.

Units are in the names (`mass_g`, `grade_ppm`, `extracted_at` in Unix seconds, hashes as 0x-hex).
Request models are strict (a JSON number with a fraction or a quoted number is refused, never
rounded) and check the shapes a schema can express; the domain rules (labels, mass balance
limits, duplicate lots) are checked by `provenance.domain.operations.validate_payload`, which
names the same field paths, before anything is stored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from provenance.domain.operations import MAX_BATCH_LOTS, OperationView
from provenance.domain.values import MAX_GRADE_PPM, MAX_MASS_G

HEX32 = r"^0x[0-9a-fA-F]{64}$"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
SIGNATURE = r"^0x[0-9a-fA-F]{130}$"
EXAMPLE_HASH = "0x" + "ab" * 32
EXAMPLE_TIME = 1_700_000_000

Label = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="1 to 32 characters of A-Z a-z 0-9 . _ : / -, starting with a letter or digit "
        "(stored on chain as a bytes32 label).",
    ),
]
MassG = Annotated[int, Field(gt=0, le=MAX_MASS_G, description="Mass in whole grams.")]
LossG = Annotated[int, Field(ge=0, le=MAX_MASS_G, description="Declared loss in whole grams.")]
GradePpm = Annotated[
    int, Field(ge=0, le=MAX_GRADE_PPM, description="Grade in parts per million (0 to 1,000,000).")
]
UnixSeconds = Annotated[int, Field(ge=0, lt=2**64, description="Unix time in whole seconds.")]
Hash32 = Annotated[str, Field(pattern=HEX32, description="32 bytes as 0x followed by 64 hex digits.")]
Address = Annotated[str, Field(pattern=ADDRESS, description="A 20-byte account address as 0x-hex.")]


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


# ------------------------------------------------------------------------------- lots


class LotIn(Request):
    """One lot as it leaves the face, without its site (a batch names the site once)."""

    lot_id: Label
    face: Label
    commodity: Label
    mass_g: MassG
    grade_ppm: GradePpm
    extracted_at: UnixSeconds
    record_hash: Hash32 = Field(description="SHA-256 (or keccak) of the lot's off-chain record, 0x-hex.")


_LOT_EXAMPLE: dict[str, JsonValue] = {
    "lot_id": "SH2-2024-000417",
    "face": "F3",
    "commodity": "COAL",
    "mass_g": 24_500_000,
    "grade_ppm": 12_345,
    "extracted_at": EXAMPLE_TIME,
    "record_hash": EXAMPLE_HASH,
}


class LotRegistrationIn(LotIn):
    """Registers one lot; the caller must be a registrar of `site`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"site": "SH2", **_LOT_EXAMPLE}]})

    site: Label

    def payload(self) -> dict[str, Any]:
        lot = self.model_dump(mode="json", exclude={"site"})
        return {"site": self.site, "lots": [lot]}


class LotBatchIn(Request):
    """Registers up to 1,000 lots of one site, sent as as many transactions as the gas cap needs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "SH2",
                    "lots": [
                        _LOT_EXAMPLE,
                        {**_LOT_EXAMPLE, "lot_id": "SH2-2024-000418", "mass_g": 23_900_000},
                    ],
                }
            ]
        }
    )

    site: Label
    lots: list[LotIn] = Field(min_length=1, max_length=MAX_BATCH_LOTS)

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ------------------------------------------------------------------------------- transformations


class TransformInputIn(Request):
    lot_id: Label
    mass_g: MassG = Field(description="Grams of the input lot this transformation consumes.")


class TransformOutputIn(Request):
    lot_id: Label
    commodity: Label
    mass_g: MassG
    grade_ppm: GradePpm
    record_hash: Hash32


class TransformationIn(Request):
    """Split, merge, blend or process lots; outputs plus `loss_g` must equal the inputs consumed.
    The caller must hold PROCESSOR_ROLE and every input lot."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "split",
                    "site": "SH2",
                    "inputs": [{"lot_id": "SH2-2024-000417", "mass_g": 24_500_000}],
                    "outputs": [
                        {
                            "lot_id": "SH2-2024-000417-A",
                            "commodity": "COAL",
                            "mass_g": 12_000_000,
                            "grade_ppm": 12_345,
                            "record_hash": EXAMPLE_HASH,
                        },
                        {
                            "lot_id": "SH2-2024-000417-B",
                            "commodity": "COAL",
                            "mass_g": 12_400_000,
                            "grade_ppm": 12_345,
                            "record_hash": EXAMPLE_HASH,
                        },
                    ],
                    "loss_g": 100_000,
                    "record_hash": EXAMPLE_HASH,
                }
            ]
        }
    )

    kind: Literal["split", "merge", "blend", "process"]
    site: Label
    inputs: list[TransformInputIn] = Field(min_length=1)
    outputs: list[TransformOutputIn] = Field(min_length=1)
    loss_g: LossG
    record_hash: Hash32

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ------------------------------------------------------------------------------- custody

LotIds = Annotated[list[Label], Field(min_length=1, max_length=MAX_BATCH_LOTS)]


class HandoverIn(Request):
    """Offers lots the caller holds to `to`; custody moves when `to` accepts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"lot_ids": ["SH2-2024-000417"], "to": "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"}]
        }
    )

    lot_ids: LotIds
    to: Address

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class LotIdsIn(Request):
    """Lots to accept (offered to the caller) or to take off offer (held by the caller)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"lot_ids": ["SH2-2024-000417"]}]})

    lot_ids: LotIds

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# ------------------------------------------------------------------------------- assays

_ASSAY_EXAMPLE: dict[str, JsonValue] = {
    "lot_id": "SH2-2024-000417",
    "grade_ppm": 11_800,
    "method": "XRF",
    "certificate_hash": EXAMPLE_HASH,
    "assayed_at": EXAMPLE_TIME + 3600,
}


class AssayIn(Request):
    """Exactly the fields the lab signs (EIP-712 type `Assay` of domain OreLotRegistry v1)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_ASSAY_EXAMPLE]})

    lot_id: Label
    grade_ppm: GradePpm
    method: Label = Field(description="The assay method as a label, e.g. XRF, FA-AAS.")
    certificate_hash: Hash32 = Field(description="SHA-256 of the lab's certificate, 0x-hex.")
    assayed_at: UnixSeconds


class SignedAssayIn(Request):
    """A lab-signed assay, submitted by anyone; the chain records it only if the signer holds LAB_ROLE."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"assay": _ASSAY_EXAMPLE, "signature": "0x" + "1b" * 65}]}
    )

    assay: AssayIn
    signature: str = Field(pattern=SIGNATURE, description="65-byte EIP-712 signature (r, s, v) as 0x-hex.")

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SignedAssayOut(BaseModel):
    """A signed assay, ready to POST to /v1/assays (by the lab or by anyone it gives it to)."""

    assay: AssayIn
    signature: str
    lab: str = Field(description="The address that signed: the caller's own account.")


# ------------------------------------------------------------------------------- operations


class TransactionOut(BaseModel):
    sequence: int = Field(description="Position of this transaction within the operation, from 0.")
    nonce: int | None
    tx_hash: str | None
    status: str
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: dict[str, Any] | None = None


class OperationError(BaseModel):
    name: str = Field(description="The registry's custom error without its prefix, e.g. NotCustodian.")
    args: dict[str, Any] = Field(default_factory=dict)


class OperationLinks(BaseModel):
    self: str
    document: str | None = None


class OperationOut(BaseModel):
    """A write as the outbox tracks it: pending → sent → confirmed, or failed with the chain's error."""

    id: str
    kind: str
    status: Literal["pending", "sent", "confirmed", "failed"]
    final: bool = Field(description="True once the status is confirmed or failed; it never changes again.")
    sender: str = Field(description="The account that signs the operation's transactions.")
    created_at: str
    updated_at: str
    transactions: list[TransactionOut]
    error: OperationError | None = None
    links: OperationLinks

    @classmethod
    def of(cls, view: OperationView, *, document: str | None = None) -> OperationOut:
        return cls(
            id=view.id,
            kind=str(view.kind),
            status=view.status.value,
            final=view.status.final,
            sender=view.sender,
            created_at=view.created_at,
            updated_at=view.updated_at,
            transactions=[
                TransactionOut(
                    sequence=tx.sequence,
                    nonce=tx.nonce,
                    tx_hash=tx.tx_hash,
                    status=str(tx.status),
                    block_number=tx.block_number,
                    block_hash=tx.block_hash,
                    gas_used=tx.gas_used,
                    error_name=tx.error_name,
                    error_args=dict(tx.error_args) if tx.error_args is not None else None,
                )
                for tx in view.transactions
            ],
            error=(
                OperationError(name=view.error_name, args=dict(view.error_args or {}))
                if view.error_name
                else None
            ),
            links=OperationLinks(self=f"/v1/operations/{view.id}", document=document),
        )


# ------------------------------------------------------------------------------- documents


class DocumentOut(BaseModel):
    sha256: str = Field(
        description="Hex SHA-256 of the content: its name in the store, and the anchored hash."
    )
    document_hash: str = Field(description="The same hash as the 0x-hex bytes32 the registry anchors.")
    size_bytes: int
    lot_id: str
    kind: str
    url: str


class DocumentUploadOut(BaseModel):
    document: DocumentOut
    operation: OperationOut


# ------------------------------------------------------------------------------- errors and health


class ErrorBody(BaseModel):
    type: str = Field(description="The error's class, e.g. DomainError, MissingRole.")
    field: str | None = Field(default=None, description="The offending input, as a path like lots[3].mass_g.")
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class NodeHealth(BaseModel):
    reachable: bool
    chain_id: int | None = None
    block_number: int | None = None
    error: str | None = None


class IndexHealth(BaseModel):
    cursor_block: int | None = None
    lag_blocks: int | None = None
    error: str | None = None


class OutboxHealth(BaseModel):
    backlog: int | None = Field(default=None, description="Operations not yet final (pending or sent).")
    error: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    node: NodeHealth
    index: IndexHealth
    outbox: OutboxHealth
