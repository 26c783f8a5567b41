"""Registry events to index rows, in memory: no SQL here, so the rules are easy to read and test.

A `Projection` takes one block range's events in chain order, the current rows of the lots and
devices they touch, and produces the rows to insert and the rows to update. The same
`apply_to_lot` that moves a lot's state forward here also replays a lot's surviving events
after a reorg, so a rolled-back lot is recomputed by exactly the code that built it; both fold
with `provenance.domain.lot_state`, as verification and the audit do.

Semantics:
* LotRegistered takes its site and custodian from the preceding LotsRegistered of its transaction.
* LotsTransformed precedes its LotConsumed (inputs) and LotCreated (outputs) in one transaction;
  when the range is complete, each transformation's lineage edges and per-input loss are
  allocated by `provenance.domain.lineage.allocate`.
* A lot's status: active while mass remains; consumed when transformations took it all; voided
  by a DidNotOccur correction (see `provenance.domain.lotstatus`).
* The chain's numbers are checked against the index's as they are applied (remaining mass after a
  consumption or correction, the custodian a handover starts from): a disagreement means the index
  misses events, and it stops loudly rather than drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from provenance.domain.events import DecodedEvent
from provenance.domain.lineage import allocate
from provenance.domain.lot_state import STATE_EVENTS, ReplayedLot, apply_event
from provenance.domain.lotstatus import LotStatus
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.errors import IndexStateError

Row = dict[str, Any]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

LOT_STATE_COLUMNS = ("custodian", "pending_custodian", "remaining_g", "status")
CUSTODY_ACTIONS = {
    "CustodyOffered": "offered",
    "CustodyOfferCancelled": "cancelled",
    "CustodyAccepted": "accepted",
}
CORRECTION_REASONS = {
    CorrectionReason.DID_NOT_OCCUR: "did_not_occur",
    CorrectionReason.INCORRECT_DATA: "incorrect_data",
}
ROLE_EVENTS = {"RoleGranted": True, "RoleRevoked": False}


class ProjectionError(IndexStateError):
    """The events contradict the index (or each other): the index misses events or is corrupt."""

    def __init__(self, event: DecodedEvent | None, message: str) -> None:
        where = (
            f"{event.name} (block {event.block_number}, tx {event.tx_hash}, log {event.log_index}): "
            if event
            else ""
        )
        super().__init__(
            f"{where}{message}. The index disagrees with the chain; rebuild it from the chain "
            "(a fresh database) and report this"
        )


def coordinates(event: DecodedEvent) -> Row:
    return {
        "block_number": event.block_number,
        "block_hash": event.block_hash,
        "tx_hash": event.tx_hash,
        "tx_index": event.tx_index,
        "log_index": event.log_index,
    }


def int64(value: int, event: DecodedEvent | None, what: str) -> int:
    """`value` if a BIGINT column can hold it; the index stops rather than store it wrong."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise ProjectionError(event, f"{what} = {value} does not fit the index's 64-bit integers")
    return value


def event_row(event: DecodedEvent) -> Row:
    lot_id = event.args.get("lotId")
    return {
        **coordinates(event),
        "name": event.name,
        "lot_id": lot_id if isinstance(lot_id, str) else None,
        "args": dict(event.args),
    }


def apply_to_lot(lot: Row, event: DecodedEvent) -> None:
    """Moves a lot's current state (custodian, pending custodian, remaining mass, status) past
    `event`, stopping at an event that does not follow from the index's state."""
    if event.name in ("LotConsumed", "LotCorrected"):
        int64(event.args["remainingG"], event, "remainingG")
    before = ReplayedLot(
        lot["custodian"], lot["remaining_g"], lot["pending_custodian"], LotStatus(lot["status"])
    )
    after, mismatch = apply_event(before, event.name, event.args)
    if mismatch is not None:
        raise ProjectionError(event, _mismatch_message(lot, event))
    lot["custodian"] = after.custodian
    lot["pending_custodian"] = after.pending_custodian
    lot["remaining_g"] = after.remaining_g
    lot["status"] = after.status.value


def _mismatch_message(lot: Row, event: DecodedEvent) -> str:
    args = event.args
    if event.name == "LotConsumed":
        return (
            f"lot {lot['lot_id']} had {lot['remaining_g']} g in the index; consuming {args['massG']} g "
            f"cannot leave the {args['remainingG']} g the chain reports"
        )
    if event.name == "LotCorrected":
        return (
            f"lot {lot['lot_id']} had {lot['remaining_g']} g in the index; adjusting by "
            f"{args['adjustmentG']} g cannot leave the {args['remainingG']} g the chain reports"
        )
    return f"lot {lot['lot_id']} is held by {lot['custodian']} in the index, not by {args['from']}"


def replay_lot(lot: Row, events: Iterable[DecodedEvent]) -> None:
    """Recomputes a lot's current state from its creation and its later events, in chain order."""
    lot["custodian"] = lot["creator"]
    lot["pending_custodian"] = None
    lot["remaining_g"] = lot["mass_g"]
    lot["status"] = LotStatus.ACTIVE.value
    for event in events:
        if event.name in STATE_EVENTS:
            apply_to_lot(lot, event)


@dataclass
class _Transform:
    row: Row
    inputs: list[Row] = field(default_factory=list)
    outputs: list[tuple[str, int, Row]] = field(default_factory=list)
    """(lot id, mass, coordinates of its LotCreated)."""


@dataclass
class Projection:
    """The rows one range of events adds and changes. `lots` and `devices` hold the existing rows
    the events touch (loaded by the caller); new ones are added as they are created."""

    lots: dict[str, Row]
    devices: dict[str, Row]
    new_lots: set[str] = field(default_factory=set)
    new_devices: set[str] = field(default_factory=set)
    changed_lots: set[str] = field(default_factory=set)
    changed_devices: set[str] = field(default_factory=set)
    rows: dict[str, list[Row]] = field(default_factory=dict)
    _batches: dict[str, Row] = field(default_factory=dict)
    _transforms: dict[int, _Transform] = field(default_factory=dict)

    def _add(self, table: str, row: Row) -> None:
        self.rows.setdefault(table, []).append(row)

    def apply(self, events: Sequence[DecodedEvent]) -> None:
        """Applies events in chain order, then completes the transformations they contain."""
        for event in events:
            self._add("events", event_row(event))
            handler = _HANDLERS.get(event.name)
            if handler is not None:
                handler(self, event)
        self._finish_transforms()

    # ---------------------------------------------------------------- lots

    def _lot(self, event: DecodedEvent) -> Row:
        lot_id = event.args["lotId"]
        lot = self.lots.get(lot_id)
        if lot is None:
            raise ProjectionError(event, f"lot {lot_id} is not in the index")
        return lot

    def _new_lot(self, event: DecodedEvent, row: Row) -> None:
        if row["lot_id"] in self.lots:
            raise ProjectionError(event, f"lot {row['lot_id']} is already in the index")
        self.lots[row["lot_id"]] = row
        self.new_lots.add(row["lot_id"])

    def _change_lot(self, event: DecodedEvent) -> None:
        lot = self._lot(event)
        apply_to_lot(lot, event)
        if lot["lot_id"] not in self.new_lots:
            self.changed_lots.add(lot["lot_id"])

    def _lots_registered(self, event: DecodedEvent) -> None:
        self._batches[event.tx_hash] = {"site": event.args["site"], "custodian": event.args["custodian"]}

    def _lot_registered(self, event: DecodedEvent) -> None:
        batch = self._batches.get(event.tx_hash)
        if batch is None:
            raise ProjectionError(event, "no LotsRegistered precedes it in its transaction")
        args = event.args
        mass = int64(args["massG"], event, "massG")
        self._new_lot(
            event,
            {
                "lot_id": args["lotId"],
                "origin": "registered",
                "site": batch["site"],
                "face": args["face"],
                "commodity": args["commodity"],
                "mass_g": mass,
                "grade_ppm": args["gradePpm"],
                "extracted_at": int64(args["extractedAt"], event, "extractedAt"),
                "record_hash": args["recordHash"],
                "transform_id": None,
                "creator": batch["custodian"],
                "custodian": batch["custodian"],
                "pending_custodian": None,
                "remaining_g": mass,
                "status": LotStatus.ACTIVE.value,
                **coordinates(event),
            },
        )

    def _load_attested(self, event: DecodedEvent) -> None:
        args = event.args
        self._lot(event)
        self._add(
            "load_attestations",
            {
                "lot_id": args["lotId"],
                "device": args["device"],
                "trip_id": args["tripId"],
                "loaded_at": int64(args["loadedAt"], event, "loadedAt"),
                **coordinates(event),
            },
        )

    # ---------------------------------------------------------------- transformations

    def _lots_transformed(self, event: DecodedEvent) -> None:
        args = event.args
        transform_id = int64(args["transformId"], event, "transformId")
        if transform_id in self._transforms:
            raise ProjectionError(event, f"transformation {transform_id} appears twice")
        self._transforms[transform_id] = _Transform(
            row={
                "transform_id": transform_id,
                "kind": TransformKind(args["kind"]).name.lower(),
                "site": args["site"],
                "operator": args["operator"],
                "loss_g": int64(args["lossG"], event, "lossG"),
                "record_hash": args["recordHash"],
                **coordinates(event),
            }
        )

    def _transform_of(self, event: DecodedEvent) -> _Transform:
        transform = self._transforms.get(event.args["transformId"])
        if transform is None or transform.row["tx_hash"] != event.tx_hash:
            raise ProjectionError(
                event, f"no LotsTransformed {event.args['transformId']} precedes it in its transaction"
            )
        return transform

    def _lot_consumed(self, event: DecodedEvent) -> None:
        transform = self._transform_of(event)
        self._change_lot(event)
        transform.inputs.append(
            {
                "transform_id": transform.row["transform_id"],
                "lot_id": event.args["lotId"],
                "mass_g": int64(event.args["massG"], event, "massG"),
                "remaining_g": event.args["remainingG"],
                **coordinates(event),
            }
        )

    def _lot_created(self, event: DecodedEvent) -> None:
        transform = self._transform_of(event)
        args = event.args
        mass = int64(args["massG"], event, "massG")
        self._new_lot(
            event,
            {
                "lot_id": args["lotId"],
                "origin": "transformed",
                "site": transform.row["site"],
                "face": None,
                "commodity": args["commodity"],
                "mass_g": mass,
                "grade_ppm": args["gradePpm"],
                "extracted_at": None,
                "record_hash": args["recordHash"],
                "transform_id": transform.row["transform_id"],
                "creator": args["custodian"],
                "custodian": args["custodian"],
                "pending_custodian": None,
                "remaining_g": mass,
                "status": LotStatus.ACTIVE.value,
                **coordinates(event),
            },
        )
        transform.outputs.append((args["lotId"], mass, coordinates(event)))

    def _finish_transforms(self) -> None:
        for transform_id, transform in self._transforms.items():
            row = transform.row
            if not transform.inputs or not transform.outputs:
                raise ProjectionError(
                    None, f"transformation {transform_id} has no inputs or no outputs in its transaction"
                )
            consumed = sum(item["mass_g"] for item in transform.inputs)
            produced = sum(mass for _, mass, _ in transform.outputs)
            if consumed != produced + row["loss_g"]:
                raise ProjectionError(
                    None,
                    f"transformation {transform_id} consumed {consumed} g but made {produced} g "
                    f"and declared {row['loss_g']} g lost",
                )
            allocation = allocate(
                [item["mass_g"] for item in transform.inputs], [mass for _, mass, _ in transform.outputs]
            )
            self._add(
                "transformations",
                {**row, "consumed_g": int64(consumed, None, "consumed mass"), "produced_g": produced},
            )
            for item, loss in zip(transform.inputs, allocation.loss, strict=True):
                self._add("transform_inputs", {**item, "loss_g": loss})
            for j, (output_id, _, where) in enumerate(transform.outputs):
                for i, item in enumerate(transform.inputs):
                    self._add(
                        "lineage_edges",
                        {
                            "output_lot_id": output_id,
                            "input_lot_id": item["lot_id"],
                            "transform_id": transform_id,
                            "mass_g": allocation.edges[i][j],
                            **where,
                        },
                    )

    # ---------------------------------------------------------------- custody, assays, documents

    def _custody(self, event: DecodedEvent) -> None:
        self._change_lot(event)
        self._add(
            "custody_moves",
            {
                "lot_id": event.args["lotId"],
                "action": CUSTODY_ACTIONS[event.name],
                "from_address": event.args["from"],
                "to_address": event.args["to"],
                **coordinates(event),
            },
        )

    def _assay(self, event: DecodedEvent) -> None:
        args = event.args
        self._lot(event)
        self._add(
            "assays",
            {
                "lot_id": args["lotId"],
                "lab": args["lab"],
                "grade_ppm": args["gradePpm"],
                "method": args["method"],
                "certificate_hash": args["certificateHash"],
                "assayed_at": int64(args["assayedAt"], event, "assayedAt"),
                "submitter": args["submitter"],
                "signature": args["signature"],
                **coordinates(event),
            },
        )

    def _document(self, event: DecodedEvent) -> None:
        args = event.args
        self._lot(event)
        self._add(
            "documents",
            {
                "lot_id": args["lotId"],
                "document_hash": args["documentHash"],
                "kind": args["kind"],
                "anchored_by": args["by"],
                **coordinates(event),
            },
        )

    def _correction(self, event: DecodedEvent) -> None:
        args = event.args
        self._change_lot(event)
        self._add(
            "corrections",
            {
                "lot_id": args["lotId"],
                "corrected_by": args["by"],
                "reason": CORRECTION_REASONS[CorrectionReason(args["reason"])],
                "adjustment_g": int64(args["adjustmentG"], event, "adjustmentG"),
                "remaining_g": args["remainingG"],
                "record_hash": args["recordHash"],
                **coordinates(event),
            },
        )

    # ---------------------------------------------------------------- devices, counts, roles

    def _device_added(self, event: DecodedEvent) -> None:
        args = event.args
        device = args["device"]
        if device in self.devices:
            raise ProjectionError(event, f"device {device} is already in the index")
        self.devices[device] = {
            "device": device,
            "site": args["site"],
            "kind": args["kind"],
            "added_by": args["by"],
            "active": True,
            "revoked_by": None,
            "revoked_block_number": None,
            "revoked_block_hash": None,
            "revoked_tx_hash": None,
            "revoked_tx_index": None,
            "revoked_log_index": None,
            **coordinates(event),
        }
        self.new_devices.add(device)

    def _device_revoked(self, event: DecodedEvent) -> None:
        device = self.devices.get(event.args["device"])
        if device is None or not device["active"]:
            raise ProjectionError(
                event, f"device {event.args['device']} is not an active device in the index"
            )
        device["active"] = False
        device["revoked_by"] = event.args["by"]
        for name, value in coordinates(event).items():
            device[f"revoked_{name}"] = value
        if device["device"] not in self.new_devices:
            self.changed_devices.add(device["device"])

    def _stock_counted(self, event: DecodedEvent) -> None:
        args = event.args
        self._add(
            "stock_counts",
            {
                "site": args["site"],
                "counted_by": args["by"],
                "counted_g": int64(args["countedG"], event, "countedG"),
                "counted_at": int64(args["countedAt"], event, "countedAt"),
                "record_hash": args["recordHash"],
                **coordinates(event),
            },
        )

    def _role(self, event: DecodedEvent) -> None:
        args = event.args
        self._add(
            "role_changes",
            {
                "role": args["role"],
                "account": args["account"],
                "sender": args["sender"],
                "granted": ROLE_EVENTS[event.name],
                **coordinates(event),
            },
        )

    # ---------------------------------------------------------------- output

    def lot_rows(self, lot_ids: Iterable[str]) -> list[Row]:
        return [self.lots[lot_id] for lot_id in sorted(lot_ids)]

    def device_rows(self, devices: Iterable[str]) -> list[Row]:
        return [self.devices[device] for device in sorted(devices)]


_HANDLERS: Mapping[str, Callable[[Projection, DecodedEvent], None]] = {
    "LotsRegistered": Projection._lots_registered,
    "LotRegistered": Projection._lot_registered,
    "LoadAttested": Projection._load_attested,
    "LotsTransformed": Projection._lots_transformed,
    "LotConsumed": Projection._lot_consumed,
    "LotCreated": Projection._lot_created,
    "CustodyOffered": Projection._custody,
    "CustodyOfferCancelled": Projection._custody,
    "CustodyAccepted": Projection._custody,
    "AssayRecorded": Projection._assay,
    "DocumentAnchored": Projection._document,
    "LotCorrected": Projection._correction,
    "DeviceAdded": Projection._device_added,
    "DeviceRevoked": Projection._device_revoked,
    "StockCounted": Projection._stock_counted,
    "RoleGranted": Projection._role,
    "RoleRevoked": Projection._role,
}


def touched(events: Iterable[DecodedEvent]) -> tuple[set[str], set[str]]:
    """The lot ids and device addresses whose existing rows a range of events needs."""
    lot_ids: set[str] = set()
    devices: set[str] = set()
    for event in events:
        lot_id = event.args.get("lotId")
        if isinstance(lot_id, str):
            lot_ids.add(lot_id)
        if event.name == "DeviceRevoked":
            devices.add(event.args["device"])
    return lot_ids, devices
