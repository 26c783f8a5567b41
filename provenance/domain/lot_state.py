"""A lot's current state folded from its events, written once: the index, verification and the
audit each replay lots and must reach the same state from the same events. Only what they do with
an event that does not follow from the state before differs (the index stops, verification and
the audit name a finding), so the fold returns the disagreement and leaves that to the caller.

The fold follows the chain: after a disagreement the state is what the event reports, so one
missing event is named once, not again at every later event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from provenance.domain.lotstatus import LotStatus, status_after_consumption, status_after_correction
from provenance.domain.values import CorrectionReason

STATE_EVENTS = frozenset(
    {"LotConsumed", "LotCorrected", "CustodyOffered", "CustodyOfferCancelled", "CustodyAccepted"}
)
"""Events after a lot's creation that change its current state."""
CUSTODY_EVENTS = frozenset({"CustodyOffered", "CustodyOfferCancelled", "CustodyAccepted"})


@dataclass(frozen=True)
class ReplayedLot:
    """A lot's current state as its events tell it."""

    custodian: str | None
    remaining_g: int
    pending_custodian: str | None = None
    status: LotStatus = LotStatus.ACTIVE


@dataclass(frozen=True)
class Mismatch:
    """An event's argument that does not follow from the state before it: the replay misses an
    event, or the chain broke a rule."""

    argument: str
    """`remainingG` (mass) or `from` (custodian)."""
    expected: int | str | None
    """What the state before the event implies."""
    reported: Any
    """What the event says."""


def apply_event(lot: ReplayedLot, name: str, args: Mapping[str, Any]) -> tuple[ReplayedLot, Mismatch | None]:
    """The lot after event `name` with `args` (unchanged by events outside STATE_EVENTS), and the
    event's disagreement with the lot before, if any."""
    if name == "LotConsumed":
        remaining = args["remainingG"]
        expected = lot.remaining_g - args["massG"]
        after = replace(lot, remaining_g=remaining, status=status_after_consumption(remaining))
        return after, _unless_equal("remainingG", expected, remaining)
    if name == "LotCorrected":
        remaining = args["remainingG"]
        expected = lot.remaining_g + args["adjustmentG"]
        status = status_after_correction(lot.status, CorrectionReason(args["reason"]), remaining)
        return replace(lot, remaining_g=remaining, status=status), _unless_equal(
            "remainingG", expected, remaining
        )
    if name in CUSTODY_EVENTS:
        mismatch = (
            None
            if same_account(lot.custodian, args["from"])
            else Mismatch("from", lot.custodian, args["from"])
        )
        if name == "CustodyOffered":
            return replace(lot, pending_custodian=args["to"]), mismatch
        if name == "CustodyOfferCancelled":
            return replace(lot, pending_custodian=None), mismatch
        return replace(lot, custodian=args["to"], pending_custodian=None), mismatch
    return lot, None


def same_account(one: object, other: object) -> bool:
    """Addresses compare without their checksum's letter case."""
    if isinstance(one, str) and isinstance(other, str):
        return one.lower() == other.lower()
    return one == other


def _unless_equal(argument: str, expected: int, reported: int) -> Mismatch | None:
    return None if expected == reported else Mismatch(argument, expected, reported)
