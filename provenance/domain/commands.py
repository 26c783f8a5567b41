"""Every write as a typed command, parsed and validated once, at the edge.

A router (or EPCIS capture) builds a command from its request; the write service checks who may
send it; the outbox stores it as JSON (`to_payload`) and reads it back (`command_of`); the chain
adapter encodes it (`provenance.chain.outbox.calls`). Nothing else parses a payload.

A batch command (lots, lot ids) may go out as several transactions: `items` says how many items
it carries and `part(start, end)` is the command for items `[start, end)`; the other commands are
one call each (`items` None).

Each parse names the field it refuses (`lots[3].mass_g`), so the API can answer 422 on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from provenance.domain.operations import OperationKind
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

Payload = Mapping[str, Any]


# ------------------------------------------------------------------------------- field parsing


def _require(payload: Payload, key: str, where: str = "") -> Any:
    if not isinstance(payload, Mapping):
        raise DomainError(where.rstrip(".") or "payload", "must be an object")
    if key not in payload:
        raise DomainError(f"{where}{key}", "is required")
    return payload[key]


def _hash(value: Any, field_name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise DomainError(field_name, "must be 0x followed by 64 hex digits")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise DomainError(field_name, "must be 0x followed by 64 hex digits") from None


def _nonzero_hash(value: Any, field_name: str) -> bytes:
    raw = _hash(value, field_name)
    if not any(raw):
        raise DomainError(field_name, "must not be zero: it commits to the off-chain record")
    return raw


def _address(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise DomainError(field_name, "must be a 0x-prefixed 20-byte address")
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        raise DomainError(field_name, "must be a 0x-prefixed 20-byte address") from None
    return value


def _signature(value: Any, field_name: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 132:
        raise DomainError(field_name, "must be a 65-byte signature as 0x-hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise DomainError(field_name, "must be a 65-byte signature as 0x-hex") from None


def _whole(value: Any, field_name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DomainError(field_name, f"must be a whole number from {low} to {high}")
    return value


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()


def _within(where: str, error: DomainError) -> DomainError:
    """`error` with its field named inside `where` (a record's own checks know only its fields)."""
    if error.field.startswith(where):
        return error
    return DomainError(where + error.field, error.message)


def _registration(site: str, item: Payload, where: str) -> LotRegistration:
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
        raise _within(where, error) from None


def _registrations(payload: Payload) -> tuple[str, list[Payload], tuple[LotRegistration, ...]]:
    site = _require(payload, "site")
    encode_label(site, "site")
    items = _require(payload, "lots")
    if not isinstance(items, list) or not items:
        raise DomainError("lots", "must be a non-empty list")
    if len(items) > MAX_BATCH_LOTS:
        raise DomainError("lots", f"at most {MAX_BATCH_LOTS} lots per request, got {len(items)}")
    lots = tuple(_registration(site, item, f"lots[{index}].") for index, item in enumerate(items))
    seen: set[str] = set()
    for index, lot in enumerate(lots):
        if lot.lot_id in seen:
            raise DomainError(f"lots[{index}].lot_id", f"{lot.lot_id} appears twice in this batch")
        seen.add(lot.lot_id)
    return site, items, lots


def _registration_payload(lot: LotRegistration) -> dict[str, Any]:
    return {
        "lot_id": lot.lot_id,
        "face": lot.face,
        "commodity": lot.commodity,
        "mass_g": lot.mass_g,
        "grade_ppm": lot.grade_ppm,
        "extracted_at": lot.extracted_at,
        "record_hash": _hex(lot.record_hash),
    }


def _lot_ids(payload: Payload) -> tuple[str, ...]:
    lot_ids = _require(payload, "lot_ids")
    if not isinstance(lot_ids, list) or not lot_ids:
        raise DomainError("lot_ids", "must be a non-empty list")
    if len(lot_ids) > MAX_BATCH_LOTS:
        raise DomainError("lot_ids", f"at most {MAX_BATCH_LOTS} lots per request")
    for index, lot_id in enumerate(lot_ids):
        encode_label(lot_id, f"lot_ids[{index}]")
    if len(set(lot_ids)) != len(lot_ids):
        raise DomainError("lot_ids", "a lot appears twice")
    return tuple(lot_ids)


# ------------------------------------------------------------------------------- the commands


@dataclass(frozen=True)
class RegisterLots:
    """Lots of one site as they leave the face (`registerLot`/`registerLots`)."""

    operation_kind: ClassVar[OperationKind] = OperationKind.REGISTER_LOTS
    site: str
    lots: tuple[LotRegistration, ...]

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
        site, _, lots = _registrations(payload)
        return cls(site, lots)

    def to_payload(self) -> dict[str, Any]:
        return {"site": self.site, "lots": [_registration_payload(lot) for lot in self.lots]}

    @property
    def items(self) -> int:
        return len(self.lots)

    def part(self, start: int | None, end: int | None) -> Self:
        return type(self)(self.site, self.lots[start:end])


@dataclass(frozen=True)
class RegisterAttestedLots:
    """Lots of one site, each with the signed load of the device that weighed it."""

    operation_kind: ClassVar[OperationKind] = OperationKind.REGISTER_ATTESTED_LOTS
    site: str
    lots: tuple[tuple[LotRegistration, LoadAttestation], ...]

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
        site, items, lots = _registrations(payload)
        attested = []
        for index, (lot, item) in enumerate(zip(lots, items, strict=True)):
            where = f"lots[{index}]."
            signature = _signature(_require(item, "signature", where), f"{where}signature")
            try:
                attestation = LoadAttestation(
                    _require(item, "trip_id", where), _require(item, "loaded_at", where), signature
                )
            except DomainError as error:
                raise _within(where, error) from None
            attested.append((lot, attestation))
        return cls(site, tuple(attested))

    def to_payload(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "lots": [
                {
                    **_registration_payload(lot),
                    "trip_id": load.trip_id,
                    "loaded_at": load.loaded_at,
                    "signature": _hex(load.signature),
                }
                for lot, load in self.lots
            ],
        }

    @property
    def items(self) -> int:
        return len(self.lots)

    def part(self, start: int | None, end: int | None) -> Self:
        return type(self)(self.site, self.lots[start:end])


@dataclass(frozen=True)
class Transform:
    """A split, merge, blend or process; mass is conserved (checked here and on chain)."""

    operation_kind: ClassVar[OperationKind] = OperationKind.TRANSFORM
    transformation: Transformation

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
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
                raise _within(where, error) from None
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
                raise _within(where, error) from None
        transformation = Transformation(
            kind=kind,
            site=_require(payload, "site"),
            inputs=tuple(parsed_inputs),
            outputs=tuple(parsed_outputs),
            loss_g=_require(payload, "loss_g"),
            record_hash=_hash(_require(payload, "record_hash"), "record_hash"),
        )
        _check_transformation_rules(transformation)
        return cls(transformation)

    def to_payload(self) -> dict[str, Any]:
        t = self.transformation
        return {
            "kind": t.kind.name.lower(),
            "site": t.site,
            "inputs": [{"lot_id": item.lot_id, "mass_g": item.mass_g} for item in t.inputs],
            "outputs": [
                {
                    "lot_id": out.lot_id,
                    "commodity": out.commodity,
                    "mass_g": out.mass_g,
                    "grade_ppm": out.grade_ppm,
                    "record_hash": _hex(out.record_hash),
                }
                for out in t.outputs
            ],
            "loss_g": t.loss_g,
            "record_hash": _hex(t.record_hash),
        }

    items: ClassVar[None] = None


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


@dataclass(frozen=True)
class HandOver:
    """Offers lots the sender holds to `to`; custody moves when `to` accepts."""

    operation_kind: ClassVar[OperationKind] = OperationKind.HAND_OVER
    lot_ids: tuple[str, ...]
    to: str

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
        lot_ids = _lot_ids(payload)
        to = _address(_require(payload, "to"), "to")
        if not any(bytes.fromhex(to[2:])):
            raise DomainError("to", "must not be the zero address: nobody could accept the lots")
        return cls(lot_ids, to)

    def to_payload(self) -> dict[str, Any]:
        return {"lot_ids": list(self.lot_ids), "to": self.to}

    @property
    def items(self) -> int:
        return len(self.lot_ids)

    def part(self, start: int | None, end: int | None) -> Self:
        return type(self)(self.lot_ids[start:end], self.to)


@dataclass(frozen=True)
class _LotIdsCommand:
    lot_ids: tuple[str, ...]

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
        return cls(_lot_ids(payload))

    def to_payload(self) -> dict[str, Any]:
        return {"lot_ids": list(self.lot_ids)}

    @property
    def items(self) -> int:
        return len(self.lot_ids)

    def part(self, start: int | None, end: int | None) -> Self:
        return type(self)(self.lot_ids[start:end])


@dataclass(frozen=True)
class AcceptHandover(_LotIdsCommand):
    """Accepts lots offered to the sender."""

    operation_kind: ClassVar[OperationKind] = OperationKind.ACCEPT_HANDOVER


@dataclass(frozen=True)
class CancelHandover(_LotIdsCommand):
    """Takes lots the sender holds off offer."""

    operation_kind: ClassVar[OperationKind] = OperationKind.CANCEL_HANDOVER


@dataclass(frozen=True)
class SubmitAssay:
    """A lab's assay with its EIP-712 signature; anyone may submit it."""

    operation_kind: ClassVar[OperationKind] = OperationKind.SUBMIT_ASSAY
    assay: Assay
    signature: bytes

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
        fields = _require(payload, "assay")
        signature = _signature(_require(payload, "signature"), "signature")
        assay = Assay(
            lot_id=_require(fields, "lot_id", "assay."),
            grade_ppm=_require(fields, "grade_ppm", "assay."),
            method=_require(fields, "method", "assay."),
            certificate_hash=_hash(_require(fields, "certificate_hash", "assay."), "assay.certificate_hash"),
            assayed_at=_require(fields, "assayed_at", "assay."),
        )
        return cls(assay, signature)

    def to_payload(self) -> dict[str, Any]:
        assay = self.assay
        return {
            "assay": {
                "lot_id": assay.lot_id,
                "grade_ppm": assay.grade_ppm,
                "method": assay.method,
                "certificate_hash": _hex(assay.certificate_hash),
                "assayed_at": assay.assayed_at,
            },
            "signature": _hex(self.signature),
        }

    items: ClassVar[None] = None


@dataclass(frozen=True)
class AnchorDocument:
    """Anchors a stored document's hash to a lot (the lot's custodian only, on chain)."""

    operation_kind: ClassVar[OperationKind] = OperationKind.ANCHOR_DOCUMENT
    lot_id: str
    kind: str
    document_hash: bytes

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
        lot_id, kind = _require(payload, "lot_id"), _require(payload, "kind")
        encode_label(lot_id, "lot_id")
        encode_label(kind, "kind")
        return cls(lot_id, kind, _hash(_require(payload, "document_hash"), "document_hash"))

    def to_payload(self) -> dict[str, Any]:
        return {"lot_id": self.lot_id, "kind": self.kind, "document_hash": _hex(self.document_hash)}

    items: ClassVar[None] = None


@dataclass(frozen=True)
class AddDevice:
    """Adds a device (a truck scale's key) to a site."""

    operation_kind: ClassVar[OperationKind] = OperationKind.ADD_DEVICE
    device: str
    site: str
    kind: str

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
        device = _address(_require(payload, "device"), "device")
        site, kind = _require(payload, "site"), _require(payload, "kind")
        encode_label(site, "site")
        encode_label(kind, "kind")
        return cls(device, site, kind)

    def to_payload(self) -> dict[str, Any]:
        return {"device": self.device, "site": self.site, "kind": self.kind}

    items: ClassVar[None] = None


@dataclass(frozen=True)
class CorrectLot:
    """`correctLot`: a CBV 2.0 error declaration of a lot's record with its signed adjustment."""

    operation_kind: ClassVar[OperationKind] = OperationKind.CORRECT_LOT
    lot_id: str
    reason: CorrectionReason
    adjustment_g: int
    record_hash: bytes

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
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
            raise DomainError(
                "adjustment_g", "a lot that did not occur is corrected to zero: adjustment_g <= 0"
            )
        return cls(lot_id, reason, adjustment, _nonzero_hash(_require(payload, "record_hash"), "record_hash"))

    def to_payload(self) -> dict[str, Any]:
        return {
            "lot_id": self.lot_id,
            "reason": self.reason.name.lower(),
            "adjustment_g": self.adjustment_g,
            "record_hash": _hex(self.record_hash),
        }

    items: ClassVar[None] = None


@dataclass(frozen=True)
class RecordStockCount:
    """`recordStockCount`: a physical count of a site's stock."""

    operation_kind: ClassVar[OperationKind] = OperationKind.RECORD_STOCK_COUNT
    site: str
    counted_g: int
    counted_at: int
    record_hash: bytes

    @classmethod
    def from_payload(cls, payload: Payload) -> Self:
        site = _require(payload, "site")
        encode_label(site, "site")
        return cls(
            site,
            _whole(_require(payload, "counted_g"), "counted_g", 0, MAX_MASS_G),
            _whole(_require(payload, "counted_at"), "counted_at", 0, 2**64 - 1),
            _nonzero_hash(_require(payload, "record_hash"), "record_hash"),
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "counted_g": self.counted_g,
            "counted_at": self.counted_at,
            "record_hash": _hex(self.record_hash),
        }

    items: ClassVar[None] = None


Command = (
    RegisterLots
    | RegisterAttestedLots
    | Transform
    | HandOver
    | AcceptHandover
    | CancelHandover
    | SubmitAssay
    | AnchorDocument
    | AddDevice
    | CorrectLot
    | RecordStockCount
)
BatchCommand = RegisterLots | RegisterAttestedLots | HandOver | AcceptHandover | CancelHandover

COMMANDS: Mapping[OperationKind, type[Command]] = {
    command.operation_kind: command
    for command in (
        RegisterLots,
        RegisterAttestedLots,
        Transform,
        HandOver,
        AcceptHandover,
        CancelHandover,
        SubmitAssay,
        AnchorDocument,
        AddDevice,
        CorrectLot,
        RecordStockCount,
    )
}
"""Each operation kind's command: how a stored operation's payload is read back."""


def command_of(kind: OperationKind | str, payload: Payload) -> Command:
    """The command a stored (or requested) operation carries; DomainError names a bad field."""
    return COMMANDS[OperationKind(kind)].from_payload(payload)
