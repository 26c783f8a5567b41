"""The projection from events to rows, without a chain or a database: the rules of lot state and
the loud refusals when events contradict what the index holds."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from provenance.domain.events import DecodedEvent
from provenance.domain.lotstatus import LotStatus, status_after_correction
from provenance.domain.values import CorrectionReason
from provenance.index.projection import Projection, ProjectionError, replay_lot

REGISTRAR = "0x" + "11" * 20
PROCESSOR = "0x" + "22" * 20
BUYER = "0x" + "33" * 20
_log = count()


def event(name: str, tx: str = "0xa1", **args: Any) -> DecodedEvent:
    return DecodedEvent(name, args, 7, "0x" + "bb" * 32, tx, 0, next(_log), "0x" + "cc" * 20)


def registered(lot_id: str, mass_g: int, tx: str = "0xa1") -> list[DecodedEvent]:
    return [
        event("LotsRegistered", tx, site="PIT-A", custodian=REGISTRAR),
        event(
            "LotRegistered",
            tx,
            lotId=lot_id,
            face="F1",
            commodity="Au-ore",
            measurement=0,
            massG=mass_g,
            gradePpm=5,
            extractedAt=1,
            recordHash="0x" + "00" * 32,
        ),
    ]


def corrected(lot_id: str, reason: CorrectionReason, adjustment_g: int, remaining_g: int) -> DecodedEvent:
    return event(
        "LotCorrected",
        lotId=lot_id,
        by=REGISTRAR,
        reason=int(reason),
        adjustmentG=adjustment_g,
        remainingG=remaining_g,
        recordHash="0x" + "01" * 32,
    )


def project(events: list[DecodedEvent]) -> Projection:
    projection = Projection(lots={}, devices={})
    projection.apply(events)
    return projection


def test_a_void_then_a_data_correction_that_restores_mass_reactivates_the_lot() -> None:
    projection = project(
        [
            *registered("A1", 1_000),
            corrected("A1", CorrectionReason.DID_NOT_OCCUR, -1_000, 0),
            corrected("A1", CorrectionReason.INCORRECT_DATA, 0, 0),
        ]
    )
    assert projection.lots["A1"]["status"] == "voided"

    projection.apply([corrected("A1", CorrectionReason.INCORRECT_DATA, 250, 250)])

    assert (projection.lots["A1"]["remaining_g"], projection.lots["A1"]["status"]) == (250, "active")


@pytest.mark.parametrize(
    ("previous", "reason", "remaining", "status"),
    [
        (LotStatus.ACTIVE, CorrectionReason.INCORRECT_DATA, 0, LotStatus.CONSUMED),
        (LotStatus.ACTIVE, CorrectionReason.INCORRECT_DATA, 5, LotStatus.ACTIVE),
        (LotStatus.ACTIVE, CorrectionReason.DID_NOT_OCCUR, 0, LotStatus.VOIDED),
        (LotStatus.CONSUMED, CorrectionReason.INCORRECT_DATA, 0, LotStatus.CONSUMED),
        (LotStatus.CONSUMED, CorrectionReason.DID_NOT_OCCUR, 0, LotStatus.VOIDED),
        (LotStatus.VOIDED, CorrectionReason.INCORRECT_DATA, 0, LotStatus.VOIDED),
        (LotStatus.VOIDED, CorrectionReason.INCORRECT_DATA, 9, LotStatus.ACTIVE),
    ],
)
def test_status_after_a_correction(
    previous: LotStatus, reason: CorrectionReason, remaining: int, status: LotStatus
) -> None:
    assert status_after_correction(previous, reason, remaining) is status


def test_replaying_a_lots_events_gives_the_state_applying_them_gave() -> None:
    later = [
        event("CustodyOffered", "0xa2", lotId="A1", **{"from": REGISTRAR, "to": PROCESSOR}),
        event("CustodyAccepted", "0xa3", lotId="A1", **{"from": REGISTRAR, "to": PROCESSOR}),
        corrected("A1", CorrectionReason.INCORRECT_DATA, -100, 900),
        event("CustodyOffered", "0xa4", lotId="A1", **{"from": PROCESSOR, "to": BUYER}),
    ]
    projection = project([*registered("A1", 1_000), *later])
    replayed = dict(projection.lots["A1"])

    replay_lot(replayed, later)

    assert replayed == projection.lots["A1"]
    assert (replayed["custodian"], replayed["pending_custodian"], replayed["remaining_g"]) == (
        PROCESSOR,
        BUYER,
        900,
    )


def test_a_lot_registered_without_its_batch_is_refused() -> None:
    with pytest.raises(ProjectionError, match="no LotsRegistered precedes it"):
        project(registered("A1", 1_000)[1:])


def test_a_consumption_that_disagrees_with_the_indexed_mass_is_refused() -> None:
    events = [
        *registered("A1", 1_000),
        event(
            "LotsTransformed",
            "0xa2",
            transformId=1,
            operator=REGISTRAR,
            kind=0,
            site="PIT-A",
            lossG=0,
            recordHash="0x",
        ),
        event("LotConsumed", "0xa2", lotId="A1", transformId=1, massG=400, remainingG=500),
    ]

    with pytest.raises(ProjectionError, match="cannot leave the 500 g the chain reports"):
        project(events)


def test_a_handover_from_someone_who_does_not_hold_the_lot_is_refused() -> None:
    with pytest.raises(ProjectionError, match="is held by"):
        project(
            [
                *registered("A1", 1_000),
                event("CustodyOffered", "0xa2", lotId="A1", **{"from": BUYER, "to": PROCESSOR}),
            ]
        )


def test_an_event_about_a_lot_the_index_does_not_have_is_refused() -> None:
    with pytest.raises(ProjectionError, match="lot Z9 is not in the index"):
        project([event("DocumentAnchored", lotId="Z9", documentHash="0x", by=REGISTRAR, kind="photo")])


def test_a_mass_beyond_64_bits_stops_the_index_rather_than_store_it_wrong() -> None:
    with pytest.raises(ProjectionError, match="does not fit the index's 64-bit integers"):
        project(registered("A1", 2**64))


def test_a_lot_registered_twice_is_refused() -> None:
    with pytest.raises(ProjectionError, match="already in the index"):
        project([*registered("A1", 1_000), *registered("A1", 1_000, tx="0xa2")])
