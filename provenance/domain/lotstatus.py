"""A lot's status as the index shows it, derived from its remaining mass and how it got there."""

from __future__ import annotations

import enum

from provenance.domain.values import CorrectionReason


class LotStatus(enum.StrEnum):
    ACTIVE = "active"
    """Mass remains."""
    CONSUMED = "consumed"
    """Nothing remains: transformations took it all (or a correction of its data zeroed it)."""
    VOIDED = "voided"
    """Declared never to have occurred (a `DidNotOccur` correction, which zeroes it)."""


def status_after_consumption(remaining_g: int) -> LotStatus:
    return LotStatus.ACTIVE if remaining_g > 0 else LotStatus.CONSUMED


def status_after_correction(previous: LotStatus, reason: CorrectionReason, remaining_g: int) -> LotStatus:
    """A void is final while nothing remains; a later data correction that restores mass
    reactivates the lot (the contract lets it be used again), and one that leaves it empty
    keeps an empty lot's status."""
    if remaining_g > 0:
        return LotStatus.ACTIVE
    if reason is CorrectionReason.DID_NOT_OCCUR:
        return LotStatus.VOIDED
    return previous if previous is not LotStatus.ACTIVE else LotStatus.CONSUMED
