"""Write operations as the outbox stores them: a kind, a JSON payload, a status.

An operator's request becomes an operation before anything is sent: validated here (plain
Python, naming the offending field), stored durably, then signed and sent by the outbox worker,
possibly as several transactions (a batch of 1,000 lots does not fit one). The payload is plain
JSON so it survives restarts and is readable in the database; `parse_payload` turns it back into
the domain records the chain adapter sends.
"""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provenance.domain.records import (
    Assay,
    LoadAttestation,
    LotRegistration,
    Transformation,
    TransformInput,
    TransformOutput,
)
from provenance.domain.values import MAX_MASS_G, CorrectionReason, TransformKind, encode_label
from provenance.errors import DomainError

MAX_BATCH_LOTS = 1_000


def new_operation_id() -> str:
    """A new operation's id: random, so a caller can name (and wait for) it before it is stored."""
    return str(uuid.uuid4())


class OperationKind(enum.StrEnum):
    REGISTER_LOTS = "register_lots"
    TRANSFORM = "transform"
    HAND_OVER = "hand_over"
    ACCEPT_HANDOVER = "accept_handover"
    CANCEL_HANDOVER = "cancel_handover"
    SUBMIT_ASSAY = "submit_assay"
    ANCHOR_DOCUMENT = "anchor_document"
    REGISTER_ATTESTED_LOTS = "register_attested_lots"
    ADD_DEVICE = "add_device"
    CORRECT_LOT = "correct_lot"
    RECORD_STOCK_COUNT = "record_stock_count"


class OperationStatus(enum.StrEnum):
    """pending: stored, not yet sent · sent: on its way (some transactions may be mined) ·
    confirmed: every transaction mined under the configured confirmations · failed: refused
    (by validation at send time or by the chain), with the decoded error."""

    PENDING = "pending"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in (OperationStatus.CONFIRMED, OperationStatus.FAILED)


@dataclass(frozen=True)
class TransactionView:
    sequence: int
    nonce: int | None
    tx_hash: str | None
    status: OperationStatus
    block_number: int | None = None
    block_hash: str | None = None
    gas_used: int | None = None
    error_name: str | None = None
    error_args: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class OperationView:
    id: str
    kind: OperationKind
    status: OperationStatus
    sender: str
    created_at: str
    updated_at: str
    transactions: tuple[TransactionView, ...] = ()
    error_name: str | None = None
    error_args: Mapping[str, Any] | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    stuck_reason: str | None = None
    """Why the worker cannot send it just now, in the node's words (None: nothing holds it)."""


def fingerprint(kind: OperationKind, payload: Mapping[str, Any]) -> str:
    """A stable hash of a request: the same Idempotency-Key with another body is a client error."""
    canonical = json.dumps({"kind": str(kind), "payload": payload}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _hash(value: Any, field_name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise DomainError(field_name, "must be 0x followed by 64 hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise DomainError(field_name, "must be 0x followed by 64 hex digits") from None


def _require(payload: Mapping[str, Any], key: str, where: str = "") -> Any:
    if key not in payload:
        raise DomainError(f"{where}{key}", "is required")
    return payload[key]


def parse_registration(site: str, item: Mapping[str, Any], where: str) -> LotRegistration:
    try:
        return LotRegistration(
            lot_id=_require(item, "lot_id", where),
            site=site,
            face=_require(item, "face", where),
            commodity=_require(item, "commodity", where),
            mass_g=_require(item, "mass_g", where),
            grade_ppm=_require(item, "grade_ppm", where),
            extracted_at=_require(item, "extracted_at", where),
            record_hash=_hash(_require(item, "record_hash", where), f"{where}record_hash"),
        )
    except DomainError as error:
        if error.field.startswith(where):
            raise
        raise DomainError(f"{where}{error.field}", error.message) from None


def parse_registrations(payload: Mapping[str, Any]) -> list[LotRegistration]:
    site = _require(payload, "site")
    encode_label(site, "site")
    lots = _require(payload, "lots")
    if not isinstance(lots, list) or not lots:
        raise DomainError("lots", "must be a non-empty list")
    if len(lots) > MAX_BATCH_LOTS:
        raise DomainError("lots", f"at most {MAX_BATCH_LOTS} lots per request, got {len(lots)}")
    parsed = [parse_registration(site, item, f"lots[{index}].") for index, item in enumerate(lots)]
    seen: set[str] = set()
    for index, lot in enumerate(parsed):
        if lot.lot_id in seen:
            raise DomainError(f"lots[{index}].lot_id", f"{lot.lot_id} appears twice in this batch")
        seen.add(lot.lot_id)
    return parsed


def parse_attested_registrations(payload: Mapping[str, Any]) -> list[tuple[LotRegistration, LoadAttestation]]:
    """Lots of one site, each with the device attestation of its load (`registerAttestedLots`)."""
    lots = parse_registrations(payload)
    attested = []
    for index, (lot, item) in enumerate(zip(lots, payload["lots"], strict=True)):
        where = f"lots[{index}]."
        signature = _require(item, "signature", where)
        if not isinstance(signature, str) or not signature.startswith("0x") or len(signature) != 132:
            raise DomainError(f"{where}signature", "must be a 65-byte signature as 0x-hex")
        try:
            raw_signature = bytes.fromhex(signature[2:])
            attestation = LoadAttestation(
                _require(item, "trip_id", where), _require(item, "loaded_at", where), raw_signature
            )
        except ValueError as error:
            field = error.field if isinstance(error, DomainError) else "signature"
            message = error.message if isinstance(error, DomainError) else "must be 0x-hex"
            raise DomainError(field if field.startswith(where) else where + field, message) from None
        attested.append((lot, attestation))
    return attested


def parse_device(payload: Mapping[str, Any]) -> tuple[str, str, str]:
    """(device address, site, kind) of an `addDevice` request."""
    device = _require(payload, "device")
    if not isinstance(device, str) or len(device) != 42 or not device.startswith("0x"):
        raise DomainError("device", "must be a 0x-prefixed 20-byte address")
    try:
        bytes.fromhex(device[2:])
    except ValueError:
        raise DomainError("device", "must be a 0x-prefixed 20-byte address") from None
    site, kind = _require(payload, "site"), _require(payload, "kind")
    encode_label(site, "site")
    encode_label(kind, "kind")
    return device, site, kind


def parse_transformation(payload: Mapping[str, Any]) -> Transformation:
    kind_name = _require(payload, "kind")
    try:
        kind = TransformKind[str(kind_name).upper()]
    except KeyError:
        raise DomainError("kind", "must be one of split, merge, blend, process") from None
    inputs = _require(payload, "inputs")
    outputs = _require(payload, "outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise DomainError("inputs", "inputs and outputs must be lists")
    parsed_inputs = []
    for index, item in enumerate(inputs):
        where = f"inputs[{index}]."
        try:
            parsed_inputs.append(
                TransformInput(_require(item, "lot_id", where), _require(item, "mass_g", where))
            )
        except DomainError as error:
            raise DomainError(
                error.field if error.field.startswith(where) else where + error.field, error.message
            ) from None
    parsed_outputs = []
    for index, item in enumerate(outputs):
        where = f"outputs[{index}]."
        try:
            parsed_outputs.append(
                TransformOutput(
                    lot_id=_require(item, "lot_id", where),
                    commodity=_require(item, "commodity", where),
                    mass_g=_require(item, "mass_g", where),
                    grade_ppm=_require(item, "grade_ppm", where),
                    record_hash=_hash(_require(item, "record_hash", where), where + "record_hash"),
                )
            )
        except DomainError as error:
            raise DomainError(
                error.field if error.field.startswith(where) else where + error.field, error.message
            ) from None
    transformation = Transformation(
        kind=kind,
        site=_require(payload, "site"),
        inputs=tuple(parsed_inputs),
        outputs=tuple(parsed_outputs),
        loss_g=_require(payload, "loss_g"),
        record_hash=_hash(_require(payload, "record_hash"), "record_hash"),
    )
    _check_transformation_rules(transformation)
    return transformation


def _check_transformation_rules(transformation: Transformation) -> None:
    """The registry's rules a request breaks on its own, whatever the chain holds: refused before it
    is stored rather than left to fail on chain (`DuplicateInput`, `MassNotConserved`)."""
    seen: set[str] = set()
    for index, item in enumerate(transformation.inputs):
        if item.lot_id in seen:
            raise DomainError(f"inputs[{index}].lot_id", f"{item.lot_id} appears twice in the inputs")
        seen.add(item.lot_id)
    for index, out in enumerate(transformation.outputs):
        if out.lot_id in seen:
            raise DomainError(
                f"outputs[{index}].lot_id", f"{out.lot_id} appears twice in this transformation"
            )
        seen.add(out.lot_id)
    consumed = sum(item.mass_g for item in transformation.inputs)
    produced = sum(out.mass_g for out in transformation.outputs)
    if consumed != produced + transformation.loss_g:
        raise DomainError(
            "loss_g",
            f"inputs consume {consumed} g but outputs ({produced} g) plus loss "
            f"({transformation.loss_g} g) make {produced + transformation.loss_g} g",
        )


def parse_assay(payload: Mapping[str, Any]) -> tuple[Assay, bytes]:
    assay = _require(payload, "assay")
    signature = _require(payload, "signature")
    if not isinstance(signature, str) or not signature.startswith("0x") or len(signature) != 132:
        raise DomainError("signature", "must be a 65-byte signature as 0x-hex")
    try:
        raw_signature = bytes.fromhex(signature[2:])
    except ValueError:
        raise DomainError("signature", "must be a 65-byte signature as 0x-hex") from None
    parsed = Assay(
        lot_id=_require(assay, "lot_id", "assay."),
        grade_ppm=_require(assay, "grade_ppm", "assay."),
        method=_require(assay, "method", "assay."),
        certificate_hash=_hash(_require(assay, "certificate_hash", "assay."), "assay.certificate_hash"),
        assayed_at=_require(assay, "assayed_at", "assay."),
    )
    return parsed, raw_signature


def parse_lot_ids(payload: Mapping[str, Any]) -> list[str]:
    lot_ids = _require(payload, "lot_ids")
    if not isinstance(lot_ids, list) or not lot_ids:
        raise DomainError("lot_ids", "must be a non-empty list")
    if len(lot_ids) > MAX_BATCH_LOTS:
        raise DomainError("lot_ids", f"at most {MAX_BATCH_LOTS} lots per request")
    for index, lot_id in enumerate(lot_ids):
        encode_label(lot_id, f"lot_ids[{index}]")
    if len(set(lot_ids)) != len(lot_ids):
        raise DomainError("lot_ids", "a lot appears twice")
    return list(lot_ids)


@dataclass(frozen=True)
class LotCorrection:
    """`correctLot`: a CBV 2.0 error declaration of a lot's record with its signed adjustment."""

    lot_id: str
    reason: CorrectionReason
    adjustment_g: int
    record_hash: bytes


@dataclass(frozen=True)
class StockCountRecord:
    """`recordStockCount`: a physical count of a site's stock."""

    site: str
    counted_g: int
    counted_at: int
    record_hash: bytes


def _whole(value: Any, field_name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DomainError(field_name, f"must be a whole number from {low} to {high}")
    return value


def _nonzero_hash(value: Any, field_name: str) -> bytes:
    raw = _hash(value, field_name)
    if not any(raw):
        raise DomainError(field_name, "must not be zero: it commits to the off-chain record")
    return raw


def parse_correction(payload: Mapping[str, Any]) -> LotCorrection:
    """A correction as `POST /v1/corrections` takes it: the reason as its CBV name."""
    lot_id = _require(payload, "lot_id")
    encode_label(lot_id, "lot_id")
    reason_name = _require(payload, "reason")
    try:
        reason = CorrectionReason[str(reason_name).upper()]
    except KeyError:
        raise DomainError("reason", "must be did_not_occur or incorrect_data (CBV 2.0)") from None
    adjustment = _whole(_require(payload, "adjustment_g"), "adjustment_g", -MAX_MASS_G, MAX_MASS_G)
    if reason is CorrectionReason.INCORRECT_DATA and adjustment == 0:
        raise DomainError("adjustment_g", "an incorrect_data correction must change the mass")
    if reason is CorrectionReason.DID_NOT_OCCUR and adjustment > 0:
        raise DomainError("adjustment_g", "a lot that did not occur is corrected to zero: adjustment_g <= 0")
    return LotCorrection(
        lot_id, reason, adjustment, _nonzero_hash(_require(payload, "record_hash"), "record_hash")
    )


def parse_stock_count(payload: Mapping[str, Any]) -> StockCountRecord:
    site = _require(payload, "site")
    encode_label(site, "site")
    return StockCountRecord(
        site,
        _whole(_require(payload, "counted_g"), "counted_g", 0, MAX_MASS_G),
        _whole(_require(payload, "counted_at"), "counted_at", 0, 2**64 - 1),
        _nonzero_hash(_require(payload, "record_hash"), "record_hash"),
    )


def validate_payload(kind: OperationKind, payload: Mapping[str, Any]) -> None:
    """Raises DomainError naming the field unless `payload` is a well-formed `kind` request."""
    if kind is OperationKind.REGISTER_LOTS:
        parse_registrations(payload)
    elif kind is OperationKind.REGISTER_ATTESTED_LOTS:
        parse_attested_registrations(payload)
    elif kind is OperationKind.ADD_DEVICE:
        parse_device(payload)
    elif kind is OperationKind.CORRECT_LOT:
        parse_correction(payload)
    elif kind is OperationKind.RECORD_STOCK_COUNT:
        parse_stock_count(payload)
    elif kind is OperationKind.TRANSFORM:
        parse_transformation(payload)
    elif kind is OperationKind.SUBMIT_ASSAY:
        parse_assay(payload)
    elif kind is OperationKind.ANCHOR_DOCUMENT:
        encode_label(_require(payload, "lot_id"), "lot_id")
        encode_label(_require(payload, "kind"), "kind")
        _hash(_require(payload, "document_hash"), "document_hash")
    else:
        parse_lot_ids(payload)
        if kind is OperationKind.HAND_OVER:
            to = _require(payload, "to")
            if not isinstance(to, str) or len(to) != 42 or not to.startswith("0x"):
                raise DomainError("to", "must be a 0x-prefixed 20-byte address")
            try:
                receiver = bytes.fromhex(to[2:])
            except ValueError:
                raise DomainError("to", "must be a 0x-prefixed 20-byte address") from None
            if not any(receiver):
                raise DomainError("to", "must not be the zero address: nobody could accept the lots")
