"""`provenance demo`: a realistic day at the testbed, played through the running API.

Three unmanned haul trucks carry run-of-mine coal from three faces of shaft 2 to the pad, one lot
per trip, each with its weighbridge ticket; the crusher takes the morning's lots; two crushed
lots are blended to a buyer's specification and split into two shipments; the lab assays them;
each buyer is offered a shipment and accepts it. Accounts (registrar, processor, lab, two buyers)
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from provenance.accounts import CreatedAccount, RoleName, create_account
from provenance.chain.deployment import Deployment
from provenance.config import Settings
from provenance.domain.trips import FleetPlan
from provenance.errors import ProvenanceError
from provenance.fleet import register_devices, signed_trips, trip_lines, wait_for_devices
from provenance.ingest import HttpApi, TripIngest
from provenance.wording import counted

SITE = "SH2"
FACES = ("SH2-F1", "SH2-F2", "SH2-F3")
TRUCKS = ("HT-01", "HT-02", "HT-03")
SHIFT_HOURS = 8.0


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


def run_demo(
    settings: Settings, api_url: str, day: datetime, say: Callable[[str], None], seed: int = 2
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

    shift_start = day.replace(hour=6, minute=0, second=0, microsecond=0, tzinfo=UTC)
    # the trucks' scales sign each load; a fleet prefix of this run keeps its lot ids apart from
    # an earlier demo's of the same day (lot ids derive from truck and time)
    fleet = f"D{run[:4]}-"
    http = HttpApi(api.base_url, registrar.token)
    for device in register_devices(http, settings.data_dir, SITE, len(TRUCKS), fleet=fleet):
        say(f"truck {device.truck}: scale {device.device} {device.status}")
    wait_for_devices(http, settings.data_dir, SITE, len(TRUCKS), fleet)
    deployment = Deployment.load(settings.deployment_path)
    plan = FleetPlan(
        SITE,
        trucks=len(TRUCKS),
        hours=SHIFT_HOURS,
        start=int(shift_start.timestamp()),
        seed=seed,
        fleet=fleet,
    )
    trips = list(signed_trips(plan, settings.data_dir, deployment))
    ingest = TripIngest(http, say=say)
    ingest.feed(trip_lines(iter(trips)))
    ingested = ingest.finish()
    api.calls += len(ingested.operations)
    rejected = {rejection.lot_id for rejection in ingested.rejected}
    registered = [signed.trip for signed in trips if signed.trip.lot_id not in rejected]
    rom_lots = [trip.lot_id for trip in registered]
    masses = {trip.lot_id: trip.mass_g for trip in registered}
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
                        "commodity": "COAL-CRUSHED",
                        "mass_g": consumed - loss,
                        "grade_ppm": 640_000,
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
                    "commodity": "COAL-BLEND",
                    "mass_g": blend_mass,
                    "grade_ppm": 645_000,
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
                {"lot_id": lot_id, "commodity": "COAL-BLEND", "mass_g": mass, "grade_ppm": 645_000,
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
        certificate = f"ASSAY CERTIFICATE {lot_id}: fixed carbon 64.3 %".encode()
        signed = api.post(
            "/v1/assays/sign",
            lab.token,
            {
                "lot_id": lot_id,
                "grade_ppm": rng.randint(638_000, 652_000),
                "method": "ISO-17247",
                "certificate_hash": "0x" + hashlib.sha256(certificate).hexdigest(),
                "assayed_at": int((shift_start + timedelta(hours=15)).timestamp()),
            },
            wait=False,
        )
        api.post("/v1/assays", processor.token, {"assay": signed["assay"], "signature": signed["signature"]})
    say("lab assays signed by the lab and recorded")

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
        "run_of_mine_lots": rom_lots,
        "crushed_lots": [lot for lot, _ in crushed],
        "blend_lot": blend_id,
        "shipments": shipments,
        "accounts": {name: account.address for name, account in accounts.items()},
        "api_calls": api.calls,
    }
