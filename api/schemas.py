"""The wire shapes of the write API: what an operator sends, what it gets back.

Units are in the names (`mass_g`, `grade_ppm`, `extracted_at` in Unix seconds, hashes as 0x-hex).
Request models are strict (a JSON number with a fraction or a quoted number is refused, never
rounded) and check the shapes a schema can express; the domain rules (labels, mass balance
limits, duplicate lots) are checked as each model becomes its command (`command()`, see
`provenance.domain.commands`), which names the same field paths, before anything is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.delivery_schemas import DeliveryLagOut
from provenance.domain.assay_certificate import CertificateCheck, CertificateStatus
from provenance.domain.commands import (
    MAX_BATCH_LOTS,
    AcceptHandover,
    AddDevice,
    CancelHandover,
    CorrectLot,
    HandOver,
    RecordStockCount,
    RegisterAttestedLots,
    RegisterLots,
    SubmitAssay,
    Transform,
)
from provenance.domain.operations import OperationView
from provenance.domain.site_balance import SiteAccount, StockCheck
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
from provenance.domain.values import MAX_GRADE_PPM, MAX_MASS_G
from provenance.errors import DomainError

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


class FromDomain(BaseModel):
    """A response model filled from the domain's frozen dataclass of the same field names."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, value: object) -> Self:
        return cls.model_validate(value)


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

    def command(self) -> RegisterLots:
        """The domain checks a registration as lots[0] of a batch; the caller sent the lot itself."""
        lot = self.model_dump(mode="json", exclude={"site"})
        try:
            return RegisterLots.from_payload({"site": self.site, "lots": [lot]})
        except DomainError as error:
            raise type(error)(error.field.removeprefix("lots[0]."), error.message) from None


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

    def command(self) -> RegisterLots:
        return RegisterLots.from_payload(self.model_dump(mode="json"))


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

    def command(self) -> Transform:
        return Transform.from_payload(self.model_dump(mode="json"))


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

    def command(self) -> HandOver:
        return HandOver.from_payload(self.model_dump(mode="json"))


class LotIdsIn(Request):
    """Lots to accept (offered to the caller) or to take off offer (held by the caller)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"lot_ids": ["SH2-2024-000417"]}]})

    lot_ids: LotIds

    def accepting(self) -> AcceptHandover:
        return AcceptHandover.from_payload(self.model_dump(mode="json"))

    def cancelling(self) -> CancelHandover:
        return CancelHandover.from_payload(self.model_dump(mode="json"))


# ------------------------------------------------------------------------------- assays

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
    stuck_reason: str | None = Field(
        default=None,
        description="Why the outbox cannot send it just now, in the node's words (a sender without "
        "ether, a request the node refuses); it stays pending and is tried again.",
    )
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
            stuck_reason=view.stuck_reason,
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


class EmbeddedNodeHealth(FromDomain):
    """The embedded node as `provenance serve` keeps it: restarted when it dies, saved when it moves."""

    running: bool
    restarts: int = Field(description="How often serve started the node again since serve started.")
    last_exit: str | None = Field(default=None, description="How the node last died, and when.")
    saved_block: int | None = Field(default=None, description="The head of the last saved chain.")
    saved_at: float | None = Field(default=None, description="Unix time of the last save.")
    save_error: str | None = Field(default=None, description="Why the last save failed.")
    halted: str | None = Field(
        default=None, description="Why the node is not started again (its saved chain is inconsistent)."
    )


class NodeHealth(BaseModel):
    reachable: bool
    chain_id: int | None = None
    block_number: int | None = None
    last_seen_block: int | None = Field(
        default=None, description="The head the API last heard from the node (while it is unreachable)."
    )
    error: str | None = None
    embedded: EmbeddedNodeHealth | None = Field(
        default=None, description="Present when this process runs the embedded node."
    )


class StuckOperationOut(BaseModel):
    operation_id: str
    reason: str


class ChainConflictOut(BaseModel):
    operation_id: str
    lost_block: int
    error_name: str
    detected_at: str
    description: str


class IndexHealth(BaseModel):
    cursor_block: int | None = None
    lag_blocks: int | None = None
    error: str | None = None


class ReplicaHealth(BaseModel):
    cursor_block: int | None = Field(default=None, description="The last block the replica's index holds.")
    behind_primary_blocks: int | None = Field(
        default=None, description="How many blocks the replica's index is behind the primary's."
    )
    error: str | None = Field(default=None, description="Why it cannot be read; reads go to the primary.")


class OutboxHealth(BaseModel):
    backlog: int | None = Field(default=None, description="Operations not yet final (pending or sent).")
    error: str | None = None
    sending: bool = Field(
        default=True, description="False while a chain conflict holds the outbox: nothing is sent."
    )
    stuck: int = Field(default=0, description="Unfinished operations the node will not take just now.")
    stuck_operations: list[StuckOperationOut] = Field(
        default_factory=list, description="The oldest of them, with what the node answered."
    )
    conflicts: list[ChainConflictOut] = Field(
        default_factory=list,
        description="Operations the chain accepted, lost and then refused; held until a person "
        "resolves them (`provenance outbox resume`).",
    )


class LeaderOut(BaseModel):
    """Who runs a role that has one holder across replicas (docs/deploy.md)."""

    role: str = Field(description="`indexer` or `outbox-worker`.")
    holder: str = Field(description="host:pid:role of the process holding the lease.")
    token: int = Field(description="The fencing token: one more with every new holder.")
    leading: bool = Field(description="Whether the lease is running now.")
    remaining_s: float = Field(
        description="Seconds until the lease ends if not renewed; negative once ended."
    )


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    reasons: list[str] = Field(default_factory=list, description="Why the status is not ok.")
    node: NodeHealth
    index: IndexHealth
    outbox: OutboxHealth
    leaders: list[LeaderOut] = Field(
        default_factory=list,
        description="The indexer's and the outbox worker's leases; empty until either first ran.",
    )
    read_replica: ReplicaHealth | None = Field(
        default=None, description="The read replica of the index (`PROVENANCE_READ_DATABASE_URL`), if any."
    )
    deliveries: list[DeliveryLagOut] = Field(
        default_factory=list,
        description="Each active delivery destination's lag behind the index (docs/deliveries.md).",
    )


# ------------------------------------------------------------------------------- reads
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


# ------------------------------------------------------------------------------- verification


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


# ------------------------------------------------------------------------------- site accounts


class StockCheckOut(BaseModel):
    """A physical stock count (StockCounted) beside the book stock just before its transaction."""

    counted_g: int
    book_g: int = Field(description="The site's book stock just before the count's transaction.")
    variance_g: int = Field(description="Counted less book: negative when less was found.")
    variance_ppm: int | None = Field(
        description="Variance per million of the book stock; null for an empty book."
    )
    within_tolerance: bool
    counted_at: int = Field(description="When the count was made, Unix seconds (as declared).")
    counted_by: str
    record_hash: str
    coordinates: CoordinatesOut

    @classmethod
    def of(cls, check: StockCheck) -> StockCheckOut:
        return cls(
            counted_g=check.counted_g,
            book_g=check.book_g,
            variance_g=check.variance_g,
            variance_ppm=check.variance_ppm,
            within_tolerance=check.within_tolerance,
            counted_at=check.counted_at,
            counted_by=check.counted_by,
            record_hash=check.record_hash,
            coordinates=CoordinatesOut.of(check.coordinates),
        )


class AccountLineOut(FromDomain):
    key: str
    label: str
    grams: int
    direction: Literal["balance", "in", "out", "adjustment", "internal"] = Field(
        description="in and out lines are never negative (the direction gives the sign); internal: processing."
    )


class SiteAccountOut(FromDomain):
    """A site's mass-balance account for a period; see docs/api.md for what each line counts.

    opening + extracted + received - shipped - lost + corrected = closing; processing at the site is
    internal (processed = produced + lost) and adds no stock."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "SH2",
                    "period": "2026-11",
                    "starts_at": 1_793_491_200,
                    "ends_at": 1_796_083_200,
                    "from_block": 100,
                    "to_block": 200,
                    "opening_g": 0,
                    "extracted_g": 3000,
                    "received_g": 1000,
                    "shipped_g": 1400,
                    "lost_g": 100,
                    "corrected_g": -500,
                    "closing_g": 2000,
                    "expected_closing_g": 2000,
                    "reconciles": True,
                    "processed_g": 2500,
                    "produced_g": 2400,
                    "returned_g": 0,
                    "transferred_g": 0,
                    "shipments": 1,
                    "tolerance_ppm": 5000,
                    "stock_checks": [],
                    "stock_agrees": True,
                    "problems": [],
                    "lines": [],
                }
            ]
        }
    )

    site: str
    period: str = Field(description="The period as asked (2026-11, 2026-W45, ...), or its blocks.")
    starts_at: int | None = Field(description="Unix seconds, included; null when given as blocks.")
    ends_at: int | None = Field(description="Unix seconds, excluded.")
    from_block: int
    to_block: int
    opening_g: int
    extracted_g: int
    received_g: int = Field(
        description="Came from elsewhere: taken by processing here from lots outside the site's stock, "
        "plus the site's lots whose custody came back (returned_g)."
    )
    shipped_g: int = Field(
        description="Custody left the site (accepted by an account without the site's registrar or "
        "processor role), plus what processing at other sites took from the site's stock (transferred_g)."
    )
    lost_g: int = Field(description="Declared by the transformations recorded at this site.")
    corrected_g: int = Field(description="The sum of correction adjustments (may be negative).")
    closing_g: int = Field(description="Held at the end, read from the lots' current state.")
    expected_closing_g: int = Field(
        description="opening + extracted + received - shipped - lost + corrected."
    )
    reconciles: bool = Field(
        description="closing equals expected_closing, processed = produced + lost, no figure is negative."
    )
    processed_g: int = Field(description="Internal: input mass consumed by the transformations at this site.")
    produced_g: int = Field(description="Internal: mass of the lots those transformations made.")
    returned_g: int = Field(description="Part of received_g: the site's own lots whose custody came back.")
    transferred_g: int = Field(description="Part of shipped_g: taken by transformations at other sites.")
    shipments: int = Field(description="How many times custody of one of the site's lots left the site.")
    tolerance_ppm: int
    stock_checks: list[StockCheckOut]
    stock_agrees: bool = Field(description="Every stock count is within the tolerance of the book.")
    problems: list[str] = Field(description="What does not add up, in words; empty for a clean account.")
    lines: list[AccountLineOut] = Field(description="The account in reading order, for display.")

    @classmethod
    def of_account(cls, account: SiteAccount) -> SiteAccountOut:
        return cls(
            **{
                name: getattr(account, name)
                for name in cls.model_fields
                if name not in ("stock_checks", "lines", "problems")
            },
            stock_checks=[StockCheckOut.of(check) for check in account.stock_checks],
            problems=list(account.problems),
            lines=[AccountLineOut.of(line) for line in account.lines()],
        )


# ------------------------------------------------------------------------------- devices and attested lots


class AttestedLotIn(LotIn):
    """A lot whose load a device of the site weighed and signed (EIP-712 `Load` over lot id, site,
    face, trip id, mass and load time)."""

    trip_id: Label
    loaded_at: UnixSeconds
    signature: str = Field(pattern=SIGNATURE, description="The device's 65-byte EIP-712 signature as 0x-hex.")


class AttestedLotBatchIn(Request):
    """Registers up to 1,000 device-attested lots of one site (`registerAttestedLots`); the caller
    must be a registrar of `site`, every signer an active device of it (the chain checks)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "SH2",
                    "lots": [
                        {
                            **_LOT_EXAMPLE,
                            "lot_id": "SH2-T03-20261124T0712",
                            "trip_id": "T03-20261124T0712",
                            "loaded_at": EXAMPLE_TIME,
                            "signature": "0x" + "1b" * 65,
                        }
                    ],
                }
            ]
        }
    )

    site: Label
    lots: list[AttestedLotIn] = Field(min_length=1, max_length=MAX_BATCH_LOTS)

    def command(self) -> RegisterAttestedLots:
        return RegisterAttestedLots.from_payload(self.model_dump(mode="json"))


class DeviceIn(Request):
    """Adds a device (a truck scale's key) to a site; a registrar of the site or an admin (on chain)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"device": _ACCOUNT, "site": "SH2", "kind": "haul-truck-scale"}]}
    )

    device: Address
    site: Label
    kind: Label

    def command(self) -> AddDevice:
        return AddDevice.from_payload(self.model_dump(mode="json"))


class CorrectionIn(Request):
    """Declares a lot's record wrong (a CBV 2.0 error declaration) without rewriting it:
    `adjustment_g` changes its remaining mass. The lot's custodian or an admin (on chain)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lot_id": "SH2-2024-000417",
                    "reason": "incorrect_data",
                    "adjustment_g": -200_000,
                    "record_hash": EXAMPLE_HASH,
                }
            ]
        }
    )

    lot_id: Label
    reason: Literal["did_not_occur", "incorrect_data"] = Field(
        description="CBV 2.0 error reason: did_not_occur (the lot's mass goes to zero) or incorrect_data."
    )
    adjustment_g: int = Field(
        ge=-MAX_MASS_G,
        le=MAX_MASS_G,
        description="Signed grams added to the lot's remaining mass (negative: less than recorded).",
    )
    record_hash: Hash32 = Field(description="Hash of the off-chain correction record (why, by whom).")

    def command(self) -> CorrectLot:
        return CorrectLot.from_payload(self.model_dump(mode="json"))


class StockCountIn(Request):
    """A physical stock count at a site, to set beside the book stock. A registrar of the site."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "SH2",
                    "counted_g": 3_500_000_000,
                    "counted_at": EXAMPLE_TIME,
                    "record_hash": EXAMPLE_HASH,
                }
            ]
        }
    )

    site: Label
    counted_g: int = Field(ge=0, le=MAX_MASS_G, description="The mass found, in whole grams.")
    counted_at: UnixSeconds = Field(
        description="When the count was taken (at most 15 minutes ahead of the chain)."
    )
    record_hash: Hash32 = Field(description="Hash of the off-chain count sheet.")

    def command(self) -> RecordStockCount:
        return RecordStockCount.from_payload(self.model_dump(mode="json"))


class DeviceOut(FromDomain):
    device: str
    site: str
    kind: str
    added_by: str
    active: bool
    added: CoordinatesOut
    revoked_by: str | None
    revoked: CoordinatesOut | None


class DevicesOut(BaseModel):
    site: str
    devices: list[DeviceOut] = Field(description="Every device ever added at the site, active or revoked.")


class RegistryOut(BaseModel):
    """Which registry on which chain: the EIP-712 domain devices and labs sign for."""

    chain_id: int
    registry: str
    deployment_block: int
    eip712_name: str
    eip712_version: str
