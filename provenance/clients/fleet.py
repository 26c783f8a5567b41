"""The simulated fleet at the edge: each truck's scale key from the development keyring, its
signatures over the simulated trips, and its registration as a device of the site through the API.
The trips themselves are plain Python (`provenance.domain.trips`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from provenance.chain.connection import Signer
from provenance.chain.deployment import Deployment
from provenance.chain.devices import device_key, sign_trip
from provenance.clients.ingest import Api, IngestError, error_text
from provenance.domain.trips import DEVICE_KIND, FleetPlan, SignedTrip, simulate_fleet, truck_name


def signed_trips(plan: FleetPlan, data_dir: Path, deployment: Deployment) -> Iterator[SignedTrip]:
    """The plan's trips, each signed by its truck's scale for this registry on this chain."""
    keys: dict[str, Signer] = {}
    for trip in simulate_fleet(plan):
        key = keys.get(trip.truck)
        if key is None:
            key = keys[trip.truck] = device_key(data_dir, plan.site, trip.truck)
        yield sign_trip(key, deployment.chain_id, deployment.registry, trip)


def trip_lines(trips: Iterator[SignedTrip]) -> Iterator[str]:
    for signed in trips:
        yield json.dumps(signed.record(), sort_keys=True) + "\n"


@dataclass(frozen=True)
class DeviceRegistration:
    truck: str
    device: str
    status: str
    """added, already active, or why it could not be added."""


def register_devices(
    api: Api,
    data_dir: Path,
    site: str,
    trucks: int,
    kind: str = DEVICE_KIND,
    wait_s: float = 60.0,
    fleet: str = "T",
) -> list[DeviceRegistration]:
    """Adds each truck's scale as a device of `site` through the write path (POST /v1/devices),
    skipping those the index shows active already; keyed by device, so a retry adds nothing twice."""
    done = []
    for number in range(1, trucks + 1):
        truck = truck_name(number, fleet)
        address = device_key(data_dir, site, truck).address
        status, body = api.get(f"/v1/devices/{address}")
        if status == 200:
            state = "already active" if body["active"] else "revoked (a device is never re-used)"
            if body["site"] != site:
                state = f"registered at site {body['site']}"
            done.append(DeviceRegistration(truck, address, state))
            continue
        status, body = api.post(
            "/v1/devices",
            {"device": address, "site": site, "kind": kind},
            params={"wait": "true", "timeout": str(wait_s)},
            headers={"Idempotency-Key": f"add-device-{site}-{address.lower()}"},
        )
        if status not in (200, 202):
            raise IngestError(f"POST /v1/devices: HTTP {status} {error_text(body)}")
        error = body.get("error")
        state = body["status"] if error is None else f"failed: {error['name']} {error.get('args', {})}"
        done.append(DeviceRegistration(truck, address, "added" if state == "confirmed" else state))
    return done


def wait_for_devices(
    api: Api, data_dir: Path, site: str, trucks: int, fleet: str = "T", timeout_s: float = 60.0
) -> None:
    """Returns once the index shows every truck's scale (ingest checks signers against the index)."""
    deadline = time.monotonic() + timeout_s
    for number in range(1, trucks + 1):
        address = device_key(data_dir, site, truck_name(number, fleet)).address
        while api.get(f"/v1/devices/{address}")[0] != 200:
            if time.monotonic() > deadline:
                raise IngestError(f"the index does not show device {address} yet; is the indexer running?")
            time.sleep(0.5)
