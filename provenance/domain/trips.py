"""An unmanned haul fleet's trips, simulated, and the trip records a fleet system hands over.

Each trip is one lot: the truck's onboard scale weighs the payload at the face, its device signs
the load (EIP-712 `Load`, signed at the edge in `provenance.chain.devices`), and the truck crosses
the weighbridge on its way to the pad, which weighs it a second time. The record carries both
readings; ingest refuses a record whose two readings disagree beyond a tolerance, because then
nobody knows which mass to register.

The simulation is a small discrete-event model, deterministic for a seed:

* trucks of the 90-100 t class (each with its own nominal payload, ~N(95 t, 1.5 t), and per load
  ~N(nominal, 2.5 t), kept within 85-105 t);
* one shovel per face, several faces, each yielding its commodity at its grade (the testbed's
  table, `provenance.domain.testbed`: coal at shaft 2's faces); a truck queues when its shovel is busy; loading 3-5 min,
  haul 8-14 min, dump 1-2 min, return 6-11 min: 20-35 min a cycle, more when it queues;
* no loading during the shift change (06:00-06:30 and 18:00-18:30 UTC) or the crib breaks
  (00:00-00:30 and 12:00-12:30 UTC);
* the weighbridge agrees with the onboard scale to ~0.3 % (one sigma), except on about one trip in
  thirty, when it is off by 2-6 % (a scale out of calibration, a truck that dropped material).

Lot and trip ids are derived from the truck and the time the load was weighed, so the same trip
always gives the same lot id and a lot registers once however often its record is ingested:
trip `T03-20261124T0712`, lot `SH2-T03-20261124T0712`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from provenance.domain.records import check_grade, check_mass, check_time
from provenance.domain.testbed import Site, site_profile
from provenance.domain.values import MAX_GRADE_PPM, encode_label
from provenance.errors import DomainError

TONNE_G = 1_000_000
BREAKS_UTC = ((0, 0, 30), (6, 0, 30), (12, 0, 30), (18, 0, 30))
"""(hour, from minute, to minute): shift changes and crib breaks, when no truck is loaded."""
WEIGHBRIDGE_TOLERANCE_PPM = 10_000
"""1 %: a weighbridge reading further than this from the onboard scale's refuses the record."""
DISAGREEMENT_RATE = 1 / 30
DEVICE_KIND = "haul-truck-scale"


def truck_name(number: int, fleet: str = "T") -> str:
    """T01, T02, ... (another `fleet` prefix keeps a second simulated fleet's lot ids apart)."""
    return f"{fleet}{number:02d}"


def trip_id_of(truck: str, loaded_at: int) -> str:
    moment = datetime.datetime.fromtimestamp(loaded_at, datetime.UTC)
    return f"{truck}-{moment:%Y%m%dT%H%M}"


def lot_id_of(site: str, trip_id: str) -> str:
    """The lot a trip becomes: the site and the trip, so re-ingesting a trip never makes a second lot."""
    lot_id = f"{site}-{trip_id}"
    encode_label(lot_id, "lot_id")
    return lot_id


def device_key_name(site: str, truck: str) -> str:
    """The development keyring's name for a truck's scale (lower case, - for anything else)."""
    raw = f"device-{site}-{truck}".lower()
    return "".join(char if char.isalnum() or char in "-_" else "-" for char in raw)[:64]


@dataclass(frozen=True)
class Trip:
    """One truckload as the fleet reports it (the signature is added at the edge)."""

    site: str
    truck: str
    trip_id: str
    lot_id: str
    face: str
    commodity: str
    grade_ppm: int
    loaded_at: int
    mass_g: int
    """The onboard scale's reading: what the device signs and the lot registers."""
    weighbridge_mass_g: int | None
    """The weighbridge's reading, if the truck crossed it."""

    def record(self) -> dict[str, Any]:
        return asdict(self)

    def weighbridge_disagreement_ppm(self) -> int | None:
        """|onboard - weighbridge| per million of the weighbridge reading (None without one)."""
        if self.weighbridge_mass_g is None:
            return None
        return abs(self.mass_g - self.weighbridge_mass_g) * 1_000_000 // self.weighbridge_mass_g

    def record_hash(self) -> str:
        """The commitment registered with the lot: SHA-256 of the trip's canonical JSON."""
        canonical = json.dumps(self.record(), sort_keys=True, separators=(",", ":"))
        return "0x" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class FleetPlan:
    site: str
    trucks: int
    hours: float
    start: int
    """Unix seconds: when the first truck reaches its face."""
    seed: int = 1
    faces: tuple[str, ...] | None = None
    """The faces the trucks load at (default: all of the site's)."""
    fleet: str = "T"
    commodity: str | None = None
    """What every face yields instead of the testbed table's commodity (the CLI's `--commodity`)."""

    def __post_init__(self) -> None:
        encode_label(self.site, "site")
        profile = self.profile()
        for face in self.faces or ():
            profile.face(face)
        lot_id_of(self.site, trip_id_of(truck_name(max(self.trucks, 1), self.fleet), self.start))
        if not 1 <= self.trucks <= 99:
            raise DomainError("trucks", "must be from 1 to 99")
        if not 0 < self.hours <= 24 * 31:
            raise DomainError("hours", "must be more than 0 and at most a month (744)")

    def profile(self) -> Site:
        return site_profile(self.site, self.commodity)

    @property
    def face_names(self) -> tuple[str, ...]:
        return self.faces or self.profile().face_names


def _in_break(moment: int) -> int | None:
    """The end of the break `moment` falls in, or None."""
    when = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    for hour, start, end in BREAKS_UTC:
        if when.hour == hour and start <= when.minute < end:
            return int(when.replace(minute=end, second=0, microsecond=0).timestamp())
    return None


def simulate_fleet(plan: FleetPlan) -> list[Trip]:
    """The trips of `plan.trucks` trucks over `plan.hours` from `plan.start`, in the order loaded."""
    rng = random.Random(plan.seed)
    profile = plan.profile()
    faces = plan.face_names
    end = plan.start + int(plan.hours * 3600)
    nominal = {truck: rng.gauss(95.0, 1.5) for truck in range(1, plan.trucks + 1)}
    shovel_free = dict.fromkeys(faces, plan.start)
    arrivals = [(plan.start + rng.randint(0, 300), truck) for truck in range(1, plan.trucks + 1)]
    trips: list[Trip] = []
    while arrivals:
        arrivals.sort()
        arrive, truck = arrivals.pop(0)
        if (after_break := _in_break(arrive)) is not None:
            arrive = after_break
        face = faces[(truck - 1) % len(faces)]
        if rng.random() < 0.15:  # dispatch sends it to another face now and then
            face = rng.choice(faces)
        start_loading = max(arrive, shovel_free[face])
        if (after_break := _in_break(start_loading)) is not None:
            start_loading = after_break
        loading_s = rng.randint(180, 300)
        if (after_break := _in_break(start_loading + loading_s)) is not None:  # the break comes first
            start_loading = after_break
        loaded_at = start_loading + loading_s
        if loaded_at > end:
            continue
        shovel_free[face] = loaded_at
        tonnes = min(105.0, max(85.0, rng.gauss(nominal[truck], 2.5)))
        mass_g = round(tonnes * TONNE_G)
        if rng.random() < DISAGREEMENT_RATE:
            error = rng.uniform(0.02, 0.06) * rng.choice((-1, 1))
        else:
            error = rng.gauss(0.0, 0.003)
        name = truck_name(truck, plan.fleet)
        trip_id = trip_id_of(name, loaded_at)
        yielded = profile.face(face)
        grade_ppm = yielded.grade_ppm + round(rng.gauss(0, yielded.grade_sd_ppm))
        trips.append(
            Trip(
                site=plan.site,
                truck=name,
                trip_id=trip_id,
                lot_id=lot_id_of(plan.site, trip_id),
                face=face,
                commodity=yielded.commodity,
                grade_ppm=min(MAX_GRADE_PPM, max(0, grade_ppm)),
                loaded_at=loaded_at,
                mass_g=mass_g,
                weighbridge_mass_g=round(mass_g * (1 + error)),
            )
        )
        cycle_rest = rng.randint(480, 840) + rng.randint(60, 120) + rng.randint(360, 660)
        arrivals.append((loaded_at + cycle_rest, truck))
    trips.sort(key=lambda trip: (trip.loaded_at, trip.truck))
    return trips


# ---------------------------------------------------------------------- records as ingest reads them


@dataclass(frozen=True)
class SignedTrip:
    trip: Trip
    device: str
    """The address the record says signed it (ingest checks the signature recovers to it)."""
    signature: str
    """65 bytes as 0x-hex."""

    def record(self) -> dict[str, Any]:
        return {**self.trip.record(), "device": self.device, "signature": self.signature}


class RejectedRecord(DomainError):
    """A trip record ingest refuses; `field` names the offending input, the message says why."""


_FIELDS: dict[str, type] = {
    "site": str,
    "truck": str,
    "trip_id": str,
    "lot_id": str,
    "face": str,
    "commodity": str,
    "grade_ppm": int,
    "loaded_at": int,
    "mass_g": int,
    "device": str,
    "signature": str,
}


def parse_trip_record(record: Mapping[str, Any]) -> SignedTrip:
    """A signed trip from one JSON record, checked field by field (RejectedRecord naming the field)."""
    if not isinstance(record, Mapping):
        raise RejectedRecord("record", "must be a JSON object")
    for name, kind in _FIELDS.items():
        if name not in record:
            raise RejectedRecord(name, "is required")
        value = record[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise RejectedRecord(name, f"must be a {'whole number' if kind is int else 'string'}")
    weighbridge = record.get("weighbridge_mass_g")
    if weighbridge is not None and (not isinstance(weighbridge, int) or isinstance(weighbridge, bool)):
        raise RejectedRecord("weighbridge_mass_g", "must be a whole number of grams or null")
    try:
        for name in ("site", "truck", "trip_id", "lot_id", "face", "commodity"):
            encode_label(record[name], name)
        check_mass(record["mass_g"], "mass_g")
        check_grade(record["grade_ppm"], "grade_ppm")
        check_time(record["loaded_at"], "loaded_at")
        if weighbridge is not None:
            check_mass(weighbridge, "weighbridge_mass_g")
    except DomainError as error:
        raise RejectedRecord(error.field, error.message) from None
    signature, device = record["signature"], record["device"]
    if not (signature.startswith("0x") and len(signature) == 132 and _hex(signature[2:])):
        raise RejectedRecord("signature", "must be a 65-byte signature as 0x-hex")
    if not (device.startswith("0x") and len(device) == 42 and _hex(device[2:])):
        raise RejectedRecord("device", "must be an address as 0x-hex")
    expected = f"{record['site']}-{record['trip_id']}"
    if record["lot_id"] != expected:
        raise RejectedRecord("lot_id", f"must be derived from site and trip: {expected}")
    trip = Trip(
        site=record["site"],
        truck=record["truck"],
        trip_id=record["trip_id"],
        lot_id=record["lot_id"],
        face=record["face"],
        commodity=record["commodity"],
        grade_ppm=record["grade_ppm"],
        loaded_at=record["loaded_at"],
        mass_g=record["mass_g"],
        weighbridge_mass_g=weighbridge,
    )
    return SignedTrip(trip, device, signature)


def check_weighbridge(trip: Trip, tolerance_ppm: int = WEIGHBRIDGE_TOLERANCE_PPM) -> None:
    """Refuses a trip whose weighbridge reading disagrees with the onboard scale beyond tolerance."""
    disagreement = trip.weighbridge_disagreement_ppm()
    if disagreement is not None and disagreement > tolerance_ppm:
        raise RejectedRecord(
            "weighbridge_mass_g",
            f"weighbridge disagrees with onboard scale by {disagreement / 10_000:.2f}% "
            f"({trip.weighbridge_mass_g} g against {trip.mass_g} g; tolerance "
            f"{tolerance_ppm / 10_000:g}%)",
        )


def attested_lot(signed: SignedTrip) -> dict[str, Any]:
    """The trip as an item of `POST /v1/lots/attested`: the lot and the device's attestation."""
    trip = signed.trip
    return {
        "lot_id": trip.lot_id,
        "face": trip.face,
        "commodity": trip.commodity,
        "mass_g": trip.mass_g,
        "grade_ppm": trip.grade_ppm,
        "extracted_at": trip.loaded_at,
        "record_hash": trip.record_hash(),
        "trip_id": trip.trip_id,
        "loaded_at": trip.loaded_at,
        "signature": signed.signature,
    }


def _hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True
