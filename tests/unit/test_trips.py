"""The fleet simulation, trip records and the attested-registration operation (no chain)."""

from __future__ import annotations

import calendar
import datetime
import itertools
from dataclasses import replace

import pytest

from provenance.chain.outbox import call_for
from provenance.domain.commands import command_of
from provenance.domain.operations import OperationKind
from provenance.domain.trips import (
    FleetPlan,
    RejectedRecord,
    SignedTrip,
    attested_lot,
    check_weighbridge,
    parse_trip_record,
    simulate_fleet,
)
from provenance.errors import DomainError

START = calendar.timegm((2026, 11, 3, 4, 0, 0))
SIGNATURE = "0x" + "1b" * 65
DEVICE = "0x" + "ab" * 20


def test_the_same_seed_gives_the_same_shift_and_another_seed_another() -> None:
    plan = FleetPlan("SH2", trucks=4, hours=10, start=START, seed=5)
    assert simulate_fleet(plan) == simulate_fleet(plan)
    assert simulate_fleet(plan) != simulate_fleet(replace(plan, seed=6))


def test_trucks_cycle_in_twenty_to_thirty_five_minutes_and_rest_in_the_breaks() -> None:
    trips = simulate_fleet(FleetPlan("SH2", trucks=6, hours=24, start=START, seed=2))
    for trip in trips:
        moment = datetime.datetime.fromtimestamp(trip.loaded_at, datetime.UTC)
        assert not (moment.hour in (0, 6, 12, 18) and moment.minute < 30), trip
        assert 85_000_000 <= trip.mass_g <= 105_000_000
        assert trip.lot_id == f"SH2-{trip.trip_id}"
    gaps = []
    for truck in {trip.truck for trip in trips}:
        times = [trip.loaded_at for trip in trips if trip.truck == truck]
        gaps += [(later - earlier) / 60 for earlier, later in itertools.pairwise(times)]
    typical = sorted(gaps)[len(gaps) // 10 : -len(gaps) // 10]
    assert min(typical) >= 20
    assert max(typical) <= 45
    assert min(gaps) >= 18
    assert len({trip.face for trip in trips}) == 3
    disagreeing = [trip for trip in trips if (trip.weighbridge_disagreement_ppm() or 0) > 10_000]
    assert 0 < len(disagreeing) < len(trips) // 10


def test_a_plan_whose_lot_ids_cannot_be_labels_is_refused() -> None:
    with pytest.raises(DomainError):
        FleetPlan("A-VERY-LONG-SITE-NAME", trucks=1, hours=1, start=START)
    with pytest.raises(DomainError):
        FleetPlan("SH2", trucks=100, hours=1, start=START)


def signed() -> SignedTrip:
    trip = simulate_fleet(FleetPlan("SH2", trucks=1, hours=1, start=START, seed=1))[0]
    return SignedTrip(replace(trip, weighbridge_mass_g=trip.mass_g), DEVICE, SIGNATURE)


def test_a_record_round_trips_and_bad_fields_are_named() -> None:
    good = signed()
    assert parse_trip_record(good.record()) == good
    for changes, field in (
        ({"mass_g": 1.5}, "mass_g"),
        ({"mass_g": 0}, "mass_g"),
        ({"face": "not a label!"}, "face"),
        ({"signature": "0x12"}, "signature"),
        ({"device": "truck 1"}, "device"),
        ({"lot_id": "SH2-OTHER"}, "lot_id"),
        ({"weighbridge_mass_g": "heavy"}, "weighbridge_mass_g"),
    ):
        with pytest.raises(RejectedRecord) as error:
            parse_trip_record({**good.record(), **changes})
        assert error.value.field == field, changes
    record = good.record()
    del record["truck"]
    with pytest.raises(RejectedRecord, match="truck: is required"):
        parse_trip_record(record)


def test_a_weighbridge_disagreement_beyond_tolerance_is_refused_with_its_size() -> None:
    trip = signed().trip
    check_weighbridge(replace(trip, weighbridge_mass_g=trip.mass_g * 1005 // 1000))
    with pytest.raises(RejectedRecord, match=r"weighbridge disagrees with onboard scale by 3\.00%"):
        check_weighbridge(replace(trip, weighbridge_mass_g=trip.mass_g * 100 // 103))
    check_weighbridge(replace(trip, weighbridge_mass_g=trip.mass_g * 100 // 103), tolerance_ppm=50_000)
    check_weighbridge(replace(trip, weighbridge_mass_g=None))


def test_an_attested_batch_becomes_one_register_attested_lots_call() -> None:
    item = attested_lot(signed())
    payload = {"site": "SH2", "lots": [item, {**item, "lot_id": "SH2-T01-X", "trip_id": "T01-X"}]}
    call = call_for(command_of(OperationKind.REGISTER_ATTESTED_LOTS, payload), 1, 2)
    assert call.function == "registerAttestedLots"
    site, lots, attestations = call.args
    assert site.rstrip(b"\0") == b"SH2"
    assert [lot[0].rstrip(b"\0") for lot in lots] == [b"SH2-T01-X"]
    assert attestations[0][0].rstrip(b"\0") == b"T01-X"
    assert attestations[0][2] == bytes.fromhex(SIGNATURE[2:])
    assert call.calldata()[:4].hex()

    for bad, field in (
        ({**item, "signature": "0x1b"}, "lots[0].signature"),
        ({**item, "trip_id": "no spaces allowed"}, "lots[0].trip_id"),
        ({key: value for key, value in item.items() if key != "loaded_at"}, "lots[0].loaded_at"),
    ):
        with pytest.raises(DomainError) as error:
            command_of(OperationKind.REGISTER_ATTESTED_LOTS, {"site": "SH2", "lots": [bad]})
        assert error.value.field == field


def test_an_add_device_request_is_checked_and_called() -> None:
    payload = {"device": DEVICE, "site": "SH2", "kind": "haul-truck-scale"}
    assert call_for(command_of(OperationKind.ADD_DEVICE, payload)).function == "addDevice"
    with pytest.raises(DomainError) as error:
        command_of(OperationKind.ADD_DEVICE, {**payload, "device": "0x12"})
    assert error.value.field == "device"


def test_shaft_2_yields_coal_graded_by_fixed_carbon_and_the_commodity_can_be_overridden() -> None:
    trips = simulate_fleet(FleetPlan("SH2", trucks=3, hours=6, start=START, seed=4))
    assert {trip.commodity for trip in trips} == {"COAL"}
    # fixed carbon of Korean anthracite: 100 - moisture 4-7 - ash 20-30 - volatile matter 3-5 %
    assert all(580_000 <= trip.grade_ppm <= 740_000 for trip in trips)

    ore = simulate_fleet(FleetPlan("SH2", trucks=3, hours=6, start=START, seed=4, commodity="FE-ORE"))
    assert {trip.commodity for trip in ore} == {"FE-ORE"}
    assert [trip.lot_id for trip in ore] == [trip.lot_id for trip in trips]


def test_a_plan_names_only_faces_of_its_site_and_a_commodity_that_is_a_label() -> None:
    with pytest.raises(DomainError) as face:
        FleetPlan("SH2", trucks=1, hours=1, start=START, faces=("F9",))
    assert face.value.field == "face"
    with pytest.raises(DomainError) as commodity:
        FleetPlan("SH2", trucks=1, hours=1, start=START, commodity="iron ore!")
    assert commodity.value.field == "commodity"
