"""The registry's rules in plain Python: a ledger of lots that applies the same operations the
contract does and refuses what it refuses, under the same error names.

It is the model the property tests hold the contract to, and the replay an auditor runs over the
chain's events to re-check every rule without trusting the contract or our index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from provenance.domain.values import (
    MAX_GRADE_PPM,
    MAX_MASS_G,
    Address,
    CorrectionReason,
    TransformKind,
)
from provenance.errors import DomainError


class RuleViolation(DomainError):
    """An operation the registry refuses; `code` is the contract's custom error without its prefix."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(field, message)
        self.code = code


@dataclass
class LotState:
    custodian: Address
    remaining_g: int
    pending_custodian: Address | None = None


@dataclass(frozen=True)
class Consumption:
    lot_id: str
    mass_g: int


@dataclass(frozen=True)
class NewLot:
    lot_id: str
    mass_g: int
    grade_ppm: int


@dataclass
class Ledger:
    """Lots and the mass accounts that must balance: created = remaining + lost (+ corrections)."""

    lots: dict[str, LotState] = field(default_factory=dict)
    registered_g: int = 0
    lost_g: int = 0
    corrected_g: int = 0
    transforms: int = 0

    # ---------------------------------------------------------------- operations

    def register(self, caller: Address, lot: NewLot) -> None:
        self._check_new_lot(lot, "lot_id")
        self.lots[lot.lot_id] = LotState(custodian=caller, remaining_g=lot.mass_g)
        self.registered_g += lot.mass_g

    def register_batch(self, caller: Address, lots: Sequence[NewLot]) -> None:
        """All or nothing, as one transaction."""
        if not lots:
            raise RuleViolation("EmptyBatch", "lots", "a batch needs at least one lot")
        ids = [lot.lot_id for lot in lots]
        for index, lot in enumerate(lots):
            self._check_new_lot(lot, f"lots[{index}].lot_id")
            if lot.lot_id in ids[:index]:
                raise RuleViolation("LotExists", f"lots[{index}].lot_id", f"{lot.lot_id} appears twice")
        for lot in lots:
            self.register(caller, lot)

    def transform(
        self,
        caller: Address,
        kind: TransformKind,
        inputs: Sequence[Consumption],
        outputs: Sequence[NewLot],
        loss_g: int,
    ) -> int:
        """Consumes inputs into outputs held by `caller`; returns the transform id."""
        check_shape(kind, len(inputs), len(outputs))
        if loss_g > MAX_MASS_G:
            raise RuleViolation("MassTooLarge", "loss_g", "must be at most 2^63-1 g")
        seen: set[str] = set()
        for index, item in enumerate(inputs):
            where = f"inputs[{index}]"
            if item.lot_id in seen:
                raise RuleViolation("DuplicateInput", f"{where}.lot_id", f"{item.lot_id} is named twice")
            seen.add(item.lot_id)
            if item.mass_g <= 0:
                raise RuleViolation("ZeroMass", f"{where}.mass_g", "must be positive")
            lot = self._held(caller, item.lot_id, f"{where}.lot_id")
            if lot.remaining_g == 0:
                raise RuleViolation("LotConsumed", f"{where}.lot_id", f"{item.lot_id} has no mass left")
            if item.mass_g > lot.remaining_g:
                raise RuleViolation(
                    "InsufficientMass",
                    f"{where}.mass_g",
                    f"{item.lot_id} has {lot.remaining_g} g left, {item.mass_g} g asked",
                )
            if lot.pending_custodian is not None:
                raise RuleViolation(
                    "HandoverPending", f"{where}.lot_id", f"{item.lot_id} is offered to someone"
                )
        output_ids: set[str] = set()
        for index, out in enumerate(outputs):
            self._check_new_lot(out, f"outputs[{index}].lot_id")
            if out.lot_id in output_ids:
                raise RuleViolation("LotExists", f"outputs[{index}].lot_id", f"{out.lot_id} appears twice")
            output_ids.add(out.lot_id)
        check_conservation(inputs, outputs, loss_g)
        for item in inputs:
            self.lots[item.lot_id].remaining_g -= item.mass_g
        for out in outputs:
            self.lots[out.lot_id] = LotState(custodian=caller, remaining_g=out.mass_g)
        self.lost_g += loss_g
        self.transforms += 1
        return self.transforms

    def hand_over(self, caller: Address, lot_ids: Sequence[str], to: Address) -> None:
        staged: set[str] = set()
        for index, lot_id in enumerate(lot_ids):
            where = f"lot_ids[{index}]"
            lot = self._held(caller, lot_id, where)
            if lot.remaining_g == 0:
                raise RuleViolation("LotConsumed", where, f"{lot_id} has no mass left")
            if to == caller or int(to, 16) == 0:
                raise RuleViolation("InvalidReceiver", "to", "must be another, non-zero address")
            if lot.pending_custodian is not None or lot_id in staged:
                raise RuleViolation("HandoverPending", where, f"{lot_id} is already offered")
            staged.add(lot_id)
        for lot_id in lot_ids:
            self.lots[lot_id].pending_custodian = to

    def cancel_handover(self, caller: Address, lot_ids: Sequence[str]) -> None:
        """Only the custodian may withdraw; a lot named twice has no offer left the second time."""
        staged: set[str] = set()
        for index, lot_id in enumerate(lot_ids):
            where = f"lot_ids[{index}]"
            self._check_pending(self._held(caller, lot_id, where), lot_id, staged, where)
            staged.add(lot_id)
        for lot_id in lot_ids:
            self.lots[lot_id].pending_custodian = None

    def accept_handover(self, caller: Address, lot_ids: Sequence[str]) -> None:
        staged: set[str] = set()
        for index, lot_id in enumerate(lot_ids):
            where = f"lot_ids[{index}]"
            lot = self._existing(lot_id, where)
            self._check_pending(lot, lot_id, staged, where)
            if lot.pending_custodian != caller:
                raise RuleViolation("NotReceiver", where, f"{lot_id} is not offered to {caller}")
            staged.add(lot_id)
        for lot_id in lot_ids:
            lot = self.lots[lot_id]
            lot.custodian, lot.pending_custodian = caller, None

    def correct(
        self, caller: Address, is_admin: bool, lot_id: str, reason: CorrectionReason, adjustment_g: int
    ) -> None:
        lot = self._existing(lot_id, "lot_id")
        if lot.custodian != caller and not is_admin:
            raise RuleViolation("NotCustodian", "lot_id", f"{caller} does not hold {lot_id}")
        corrected = lot.remaining_g + adjustment_g
        if (
            corrected < 0
            or corrected > MAX_MASS_G
            or (reason is CorrectionReason.DID_NOT_OCCUR and corrected)
        ):
            raise RuleViolation(
                "InvalidCorrection",
                "adjustment_g",
                f"would leave {corrected} g of {lot_id}; a void must leave 0",
            )
        lot.remaining_g = corrected
        self.corrected_g += adjustment_g

    # ---------------------------------------------------------------- invariants

    @property
    def remaining_g(self) -> int:
        return sum(lot.remaining_g for lot in self.lots.values())

    def check_balance(self) -> None:
        """Mass is neither created nor destroyed: registered + corrections = remaining + lost."""
        if self.registered_g + self.corrected_g != self.remaining_g + self.lost_g:
            raise AssertionError(
                f"mass out of balance: registered {self.registered_g} + corrected {self.corrected_g} "
                f"!= remaining {self.remaining_g} + lost {self.lost_g}"
            )

    # ---------------------------------------------------------------- helpers

    def _check_new_lot(self, lot: NewLot, where: str) -> None:
        if lot.mass_g <= 0:
            raise RuleViolation("ZeroMass", where.replace("lot_id", "mass_g"), "must be positive")
        if lot.mass_g > MAX_MASS_G:
            raise RuleViolation("MassTooLarge", where.replace("lot_id", "mass_g"), "must be at most 2^63-1 g")
        if not 0 <= lot.grade_ppm <= MAX_GRADE_PPM:
            raise RuleViolation(
                "InvalidGrade", where.replace("lot_id", "grade_ppm"), "must be 0 to 1,000,000 ppm"
            )
        if lot.lot_id in self.lots:
            raise RuleViolation("LotExists", where, f"{lot.lot_id} is already registered")

    def _existing(self, lot_id: str, where: str) -> LotState:
        lot = self.lots.get(lot_id)
        if lot is None:
            raise RuleViolation("UnknownLot", where, f"no lot {lot_id}")
        return lot

    def _held(self, caller: Address, lot_id: str, where: str) -> LotState:
        lot = self._existing(lot_id, where)
        if lot.custodian != caller:
            raise RuleViolation("NotCustodian", where, f"{caller} does not hold {lot_id}")
        return lot

    @staticmethod
    def _check_pending(lot: LotState, lot_id: str, staged: set[str], where: str) -> None:
        """The lot is on offer, and not already taken off offer earlier in the same call."""
        if lot.pending_custodian is None or lot_id in staged:
            raise RuleViolation("NoPendingHandover", where, f"{lot_id} is not offered to anyone")


def check_shape(kind: TransformKind, inputs: int, outputs: int) -> None:
    """Split takes one input; merge and blend take two or more into one; process any to any."""
    if kind is TransformKind.SPLIT:
        valid = inputs == 1 and outputs >= 1
    elif kind in (TransformKind.MERGE, TransformKind.BLEND):
        valid = inputs >= 2 and outputs == 1
    else:
        valid = inputs >= 1 and outputs >= 1
    if not valid:
        raise RuleViolation(
            "InvalidShape", "kind", f"{kind.name.lower()} cannot take {inputs} inputs into {outputs} outputs"
        )


def check_conservation(inputs: Sequence[Consumption], outputs: Sequence[NewLot], loss_g: int) -> None:
    """Inputs consumed equal outputs plus declared loss, to the gram."""
    consumed = sum(item.mass_g for item in inputs)
    produced = sum(out.mass_g for out in outputs)
    if loss_g < 0 or consumed != produced + loss_g:
        raise RuleViolation(
            "MassNotConserved",
            "loss_g",
            f"inputs consume {consumed} g but outputs ({produced} g) plus loss ({loss_g} g) make {produced + loss_g} g",
        )
