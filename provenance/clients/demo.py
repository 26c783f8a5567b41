"""`provenance demo`: a realistic day at the testbed, played through the running API.

Three unmanned haul trucks carry run-of-mine anthracite (`COAL`, the commodity the testbed's table
gives shaft 2's faces) from three faces of shaft 2 to the pad over an 8-hour shift, one lot per
trip, each checked against the weighbridge (53 trips; one is refused because the weighbridge and
the truck's scale disagree, so 52 truckloads are registered); the first trips of each truck get
their weighbridge tickets anchored; the crusher takes the morning's twelve lots; the two crushed
lots are blended to a buyer's specification and split into two shipments; the lab assays each
shipment (ash, sulphur, moisture, volatile matter, fixed carbon and calorific value, committed on
chain by the certificate hash it signs); each buyer is offered a shipment and accepts it. Every
lot stays `COAL`: crushing and blending change size and mix, not the commodity. Accounts (registrar, processor, lab, two buyers)
are made on chain first; every lot operation then goes over HTTP, as an operator's client would.
"""

from __future__ import annotations

import hashlib
import json
import random
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from provenance.bootstrap import recorded_deployment
from provenance.clients.fleet import register_devices, signed_trips, trip_lines, wait_for_devices
from provenance.clients.ingest import HttpApi, TripIngest
from provenance.config import Settings
from provenance.domain.trips import FleetPlan
from provenance.errors import ProvenanceError
from provenance.services.accounts import CreatedAccount, RoleName, create_account
from provenance.wording import counted

SITE = "SH2"
TRUCKS = ("HT-01", "HT-02", "HT-03")
SHIFT_HOURS = 8.0
SHIFT_START_UTC_HOUR = 6
SEED = 2
ASSAY_METHOD = "ISO-17246"
"""Proximate analysis: the on-chain grade of coal is its fixed carbon (`provenance.domain.testbed`)."""
DAF_GCV_KCAL_KG = Decimal(8_100)
"""Gross calorific value of the dry, ash-free coal: about 34 MJ/kg, as anthracite's is."""


class DemoError(ProvenanceError):
    """The API refused a step of the demo; the message carries its answer."""


@dataclass
class Api:
    """A small JSON-over-HTTP client (standard library only): each call waits for its operation."""

    base_url: str
    timeout_s: float = 60.0
    calls: int = field(default=0)

    def post(self, path: str, token: str, body: Mapping[str, Any], *, wait: bool = True) -> dict[str, Any]:
        query = "?wait=true&timeout=60" if wait else ""
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        return self._send("POST", path + query, token, data, headers)

    def upload(self, path: str, token: str, name: str, content: bytes, kind: str) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="kind"\r\n\r\n{kind}\r\n'.encode(),
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: text/plain\r\n\r\n"
            ).encode()
            + content
            + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self._send("POST", path + "?wait=true&timeout=60", token, b"".join(parts), headers)

    def _send(
        self, method: str, path: str, token: str, data: bytes, headers: dict[str, str]
    ) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own API
            self.base_url + path,
            data=data,
            method=method,
            headers={**headers, "Authorization": f"Bearer {token}"},
        )
        self.calls += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310
                result: dict[str, Any] = json.load(answer)
        except urllib.error.HTTPError as error:
            raise DemoError(
                f"{method} {path}: HTTP {error.code} {error.read().decode(errors='replace')}"
            ) from None
        except urllib.error.URLError as error:
            raise DemoError(
                f"no API at {self.base_url} ({error.reason}); start it with `provenance serve`"
            ) from None
        operation = result.get("operation", result)
        if isinstance(operation, dict) and operation.get("status") == "failed":
            raise DemoError(f"{method} {path}: operation failed: {operation.get('error')}")
        return result


def record_hash(record: Mapping[str, Any]) -> str:
    """The commitment to an off-chain record: SHA-256 of its canonical JSON."""
    return "0x" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def shift_plan(day: datetime, seed: int = SEED, fleet: str = "T") -> FleetPlan:
    """The day's shift: three trucks from 06:00 UTC for eight hours at the site's faces."""
    start = day.replace(hour=SHIFT_START_UTC_HOUR, minute=0, second=0, microsecond=0, tzinfo=UTC)
    return FleetPlan(
        SITE, trucks=len(TRUCKS), hours=SHIFT_HOURS, start=int(start.timestamp()), seed=seed, fleet=fleet
    )


def kept_commodity(commodities: Iterable[str]) -> str:
    """What a crusher or a blend of these lots makes: their one commodity (a mix of several would be a
    process that changes it on purpose, which the demo never plays)."""
    found = set(commodities)
    if len(found) != 1:
        raise DemoError(f"the inputs are not of one commodity: {sorted(found)}")
    return found.pop()


def mean_grade(parts: Iterable[tuple[int, int]]) -> int:
    """The mass-weighted grade of (mass_g, grade_ppm) parts, rounded to the ppm."""
    given = list(parts)
    total = sum(mass for mass, _ in given)
    return round(Fraction(sum(mass * grade for mass, grade in given), total))


def coal_analytes(grade_ppm: int, rng: random.Random) -> tuple[int, list[dict[str, str]]]:
    """A lab's proximate analysis of a lot of Taebaek anthracite whose fixed carbon is near
    `grade_ppm`: (the fixed carbon it reports, in ppm; its analytes as POST /v1/assays takes them).

    Ranges from Lee and Jung, "A Study on the Quality of Korean Anthracites" (J. Korean Chem. Soc.,
    1965; about 40 collieries): moisture 4-7 %, ash 20-30 %, volatile matter 3-5 %, sulphur
    0.2-0.5 %, calorific value 5,200-6,100 kcal/kg. Total moisture as received adds the surface
    water of a lot stocked in the open (1.5-3 %). Fixed carbon is by difference (ISO 17246), so the
    analytes add up to 100 % with the on-chain grade; gross calorific value follows from the dry,
    ash-free share at DAF_GCV_KCAL_KG."""
    tenth = Decimal("0.1")
    moisture = Decimal(rng.uniform(4.0, 6.0)).quantize(tenth)
    volatile = Decimal(rng.uniform(3.2, 4.8)).quantize(tenth)
    ash = (
        Decimal(100) - Decimal(grade_ppm) / 10_000 - moisture - volatile + Decimal(rng.gauss(0, 0.3))
    ).quantize(tenth)
    fixed_carbon = Decimal(100) - moisture - ash - volatile
    total_moisture = (moisture + Decimal(rng.uniform(1.5, 3.0))).quantize(tenth)
    sulphur = Decimal(rng.uniform(0.25, 0.45)).quantize(Decimal("0.01"))
    gcv = (DAF_GCV_KCAL_KG * (100 - moisture - ash) / 100 + Decimal(rng.gauss(0, 40))).quantize(Decimal(10))
    rows = (
        ("total_moisture", total_moisture, "%", "ISO 589, as received"),
        ("moisture", moisture, "%", "ISO 11722, air-dried"),
        ("ash", ash, "%", "ISO 1171, air-dried"),
        ("volatile_matter", volatile, "%", "ISO 562, air-dried"),
        ("fixed_carbon", fixed_carbon, "%", "ISO 17246 (by difference), air-dried"),
        ("total_sulphur", sulphur, "%", "ISO 19579, air-dried"),
        ("gross_calorific_value", gcv, "kcal/kg", "ISO 1928, air-dried"),
    )
    analytes = [
        {"analyte": name, "value": f"{value:f}", "unit": unit, "method": method}
        for name, value, unit, method in rows
    ]
    return int(fixed_carbon * 10_000), analytes


def run_demo(
    settings: Settings, api_url: str, day: datetime, say: Callable[[str], None], seed: int = SEED
) -> dict[str, Any]:
    """Plays the day; returns a summary (lot ids per stage, accounts, operations)."""
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    api = Api(api_url.rstrip("/"))
    stamp = day.strftime("%Y%m%d")

    accounts: dict[str, CreatedAccount] = {}
    for role_name, role, site in (
        ("registrar", RoleName.REGISTRAR, SITE),
        ("processor", RoleName.PROCESSOR, None),
        ("lab", RoleName.LAB, None),
        ("buyer-a", RoleName.BUYER, None),
        ("buyer-b", RoleName.BUYER, None),
    ):
        accounts[role_name] = create_account(settings, f"demo-{run}-{role_name}", role, site)
        say(f"account {role_name}: {accounts[role_name].address} ({accounts[role_name].described})")
    registrar, processor = accounts["registrar"], accounts["processor"]

    shift_start = day.replace(hour=SHIFT_START_UTC_HOUR, minute=0, second=0, microsecond=0, tzinfo=UTC)
    # the trucks' scales sign each load; a fleet prefix of this run keeps its lot ids apart from
    # an earlier demo's of the same day (lot ids derive from truck and time)
    fleet = f"D{run[:4]}-"
    http = HttpApi(api.base_url, registrar.token)
    for device in register_devices(http, settings.data_dir, SITE, len(TRUCKS), fleet=fleet):
        say(f"truck {device.truck}: scale {device.device} {device.status}")
    wait_for_devices(http, settings.data_dir, SITE, len(TRUCKS), fleet)
    deployment = recorded_deployment(settings.deployment_path)
    plan = shift_plan(day, seed, fleet)
    trips = list(signed_trips(plan, settings.data_dir, deployment))
    ingest = TripIngest(http, say=say)
    ingest.feed(trip_lines(iter(trips)))
    ingested = ingest.finish()
    api.calls += len(ingested.operations)
    rejected = {rejection.lot_id for rejection in ingested.rejected}
    registered = [signed.trip for signed in trips if signed.trip.lot_id not in rejected]
    rom_lots = [trip.lot_id for trip in registered]
    masses = {trip.lot_id: trip.mass_g for trip in registered}
    grades = {trip.lot_id: trip.grade_ppm for trip in registered}
    commodities = {trip.lot_id: trip.commodity for trip in registered}
    say(
        f"{counted(len(rom_lots), 'truckload')} registered from {counted(len(trips), 'trip')} ({len(rejected)} rejected)"
    )
    for truck in sorted({trip.truck for trip in registered}):
        for trip in [trip for trip in registered if trip.truck == truck][:2]:
            ticket_text = (
                f"WEIGHBRIDGE TICKET {trip.lot_id}\nnet {trip.weighbridge_mass_g or trip.mass_g} g\n"
            ).encode()
            api.upload(
                f"/v1/lots/{trip.lot_id}/documents",
                registrar.token,
                "ticket.txt",
                ticket_text,
                "weighbridge-ticket",
            )
    say("weighbridge tickets anchored for the first two trips of each truck")

    # the registrar hands the morning's lots to the processing plant, which accepts them
    morning = rom_lots[:12]
    api.post("/v1/handovers", registrar.token, {"lot_ids": morning, "to": processor.address})
    api.post("/v1/handovers/accept", processor.token, {"lot_ids": morning})
    say(f"{counted(len(morning), 'lot')} handed over to the plant")

    crushed = []
    for half, group in enumerate((morning[:6], morning[6:])):
        consumed = sum(masses[lot_id] for lot_id in group)
        loss = consumed // 200  # fines and moisture: 0.5 %
        crushed_id = f"{SITE}-{stamp}-CR{half + 1}-{run}"
        # crushing sizes the coal; the fines lost take no grade with them in this account
        grades[crushed_id] = mean_grade((masses[lot_id], grades[lot_id]) for lot_id in group)
        commodities[crushed_id] = kept_commodity(commodities[lot_id] for lot_id in group)
        api.post(
            "/v1/transformations",
            processor.token,
            {
                "kind": "process",
                "site": SITE,
                "inputs": [{"lot_id": lot_id, "mass_g": masses[lot_id]} for lot_id in group],
                "outputs": [
                    {
                        "lot_id": crushed_id,
                        "commodity": commodities[crushed_id],
                        "mass_g": consumed - loss,
                        "grade_ppm": grades[crushed_id],
                        "record_hash": record_hash({"crusher": "CR-1", "run": half}),
                    }
                ],
                "loss_g": loss,
                "record_hash": record_hash({"crusher": "CR-1", "inputs": group}),
            },
        )
        crushed.append((crushed_id, consumed - loss))
    say(f"crushed into {', '.join(lot for lot, _ in crushed)}")

    blend_id = f"{SITE}-{stamp}-BLEND-{run}"
    blend_mass = sum(mass for _, mass in crushed)
    blend_grade = mean_grade((mass, grades[lot_id]) for lot_id, mass in crushed)
    blend_commodity = kept_commodity(commodities[lot_id] for lot_id, _ in crushed)
    api.post(
        "/v1/transformations",
        processor.token,
        {
            "kind": "blend",
            "site": SITE,
            "inputs": [{"lot_id": lot_id, "mass_g": mass} for lot_id, mass in crushed],
            "outputs": [
                {
                    "lot_id": blend_id,
                    "commodity": blend_commodity,
                    "mass_g": blend_mass,
                    "grade_ppm": blend_grade,
                    "record_hash": record_hash({"blend": blend_id}),
                }
            ],
            "loss_g": 0,
            "record_hash": record_hash({"blend": blend_id, "spec": "buyer-spec-6000kcal"}),
        },
    )
    shipments = [f"{SITE}-{stamp}-SHIP-A-{run}", f"{SITE}-{stamp}-SHIP-B-{run}"]
    first = blend_mass // 2
    api.post(
        "/v1/transformations",
        processor.token,
        {
            "kind": "split",
            "site": SITE,
            "inputs": [{"lot_id": blend_id, "mass_g": blend_mass}],
            "outputs": [
                {"lot_id": lot_id, "commodity": blend_commodity, "mass_g": mass, "grade_ppm": blend_grade,
                 "record_hash": record_hash({"shipment": lot_id})}
                for lot_id, mass in zip(shipments, (first, blend_mass - first), strict=True)
            ],
            "loss_g": 0,
            "record_hash": record_hash({"split": blend_id}),
        },
    )  # fmt: skip
    say(f"blended into {blend_id} and split into {', '.join(shipments)}")

    lab = accounts["lab"]
    for lot_id in shipments:
        # the lab signs the hash of its certificate of analytes; the API stores the certificate
        fixed_carbon_ppm, analytes = coal_analytes(blend_grade, rng)
        signed = api.post(
            "/v1/assays/sign",
            lab.token,
            {
                "lot_id": lot_id,
                "grade_ppm": fixed_carbon_ppm,
                "method": ASSAY_METHOD,
                "assayed_at": int((shift_start + timedelta(hours=15)).timestamp()),
                "analytes": analytes,
            },
            wait=False,
        )
        api.post("/v1/assays", processor.token, {"assay": signed["assay"], "signature": signed["signature"]})
        said = {analyte["analyte"]: analyte["value"] for analyte in analytes}
        say(
            f"{lot_id} assayed: ash {said['ash']} %, volatile matter {said['volatile_matter']} %, "
            f"total sulphur {said['total_sulphur']} %, GCV {said['gross_calorific_value']} kcal/kg "
            f"(certificate {signed['assay']['certificate_hash'][:10]}…)"
        )
    say("lab assays signed by the lab and recorded, with their certificates")

    for lot_id, buyer_name in zip(shipments, ("buyer-a", "buyer-b"), strict=True):
        buyer = accounts[buyer_name]
        api.post("/v1/handovers", processor.token, {"lot_ids": [lot_id], "to": buyer.address})
        api.post("/v1/handovers/accept", buyer.token, {"lot_ids": [lot_id]})
        say(f"{lot_id} accepted by {buyer_name} ({buyer.address})")

    pages = (settings.public_url or api.base_url).rstrip("/")
    say("pages to open:")
    for lot_id in [*shipments, blend_id]:
        say(f"  {pages}/lots/{urllib.parse.quote(lot_id, safe='')}")
    say(f"  {pages}/sites/{SITE}?period={day:%Y-%m}")
    say("API tokens of the accounts made for this run (shown once; only their hashes are kept):")
    for name, account in accounts.items():
        say(f"  {name}: {account.token}")

    return {
        "run": run,
        "site": SITE,
        "commodity": blend_commodity,
        "run_of_mine_lots": rom_lots,
        "crushed_lots": [lot for lot, _ in crushed],
        "blend_lot": blend_id,
        "shipments": shipments,
        "accounts": {name: account.address for name, account in accounts.items()},
        "api_calls": api.calls,
    }
