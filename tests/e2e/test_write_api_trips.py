"""The smart-mining testbed end to end over HTTP on eth-tester: truck scales registered as devices
through the write path, a simulated shift (3 trucks x 2 h) signed by them and ingested as
device-attested lots in batches; every record registered once or rejected with its reason, and a
second ingest registering nothing new."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from provenance.chain.devices import device_key, sign_trip
from provenance.chain.keys import DevKeyring
from provenance.chain.logsource import RpcLogSource
from provenance.cli.main import app as cli
from provenance.clients.fleet import register_devices, signed_trips
from provenance.clients.ingest import TripIngest
from provenance.domain.trips import FleetPlan, SignedTrip, Trip
from provenance.index.indexer import Indexer
from tests.e2e.conftest import SITE, Stack
from tests.shifts import finished_shift_start

pytestmark = pytest.mark.clock


@dataclass
class ClientApi:
    """The ingest's API protocol over the app's test client."""

    http: TestClient
    token: str

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        response = self.http.get(path, params=params, headers={"Authorization": f"Bearer {self.token}"})
        return response.status_code, response.json()

    def post(
        self, path: str, body: Any, *, params: Mapping[str, Any] | None = None, headers: Mapping[str, str]
    ) -> tuple[int, Any]:
        response = self.http.post(
            path, json=body, params=params, headers={**headers, "Authorization": f"Bearer {self.token}"}
        )
        return response.status_code, response.json()


def index(stack: Stack) -> None:
    deployment = stack.runtime.deployment
    Indexer(stack.runtime.engine, RpcLogSource(stack.w3, deployment.registry), deployment).sync()


def renamed(trip_id: str) -> dict[str, str]:
    return {"trip_id": trip_id, "lot_id": f"{SITE}-{trip_id}"}


def line(signed: SignedTrip, **changes: Any) -> str:
    return json.dumps({**signed.record(), **changes})


@pytest.fixture(scope="module")
def shift(stack: Stack) -> list[SignedTrip]:
    """Three trucks' scales added as devices of SH2 (once), and a two-hour shift they signed."""
    api = ClientApi(stack.http, stack.operator.token)
    data_dir = stack.settings.data_dir
    added = register_devices(api, data_dir, SITE, 3)
    assert [device.status for device in added] == ["added"] * 3
    index(stack)
    assert [device.status for device in register_devices(api, data_dir, SITE, 3)] == ["already active"] * 3
    plan = FleetPlan(SITE, trucks=3, hours=2, start=finished_shift_start(2), seed=7)
    return list(signed_trips(plan, data_dir, stack.runtime.deployment))


def test_the_simulated_shift_is_realistic(shift: list[SignedTrip]) -> None:
    trips = [signed.trip for signed in shift]
    assert 12 <= len(trips) <= 24  # 3 trucks, 20-35 min cycles, 2 h
    assert all(85_000_000 <= trip.mass_g <= 105_000_000 for trip in trips)
    assert len({trip.lot_id for trip in trips}) == len(trips)
    assert {trip.truck for trip in trips} == {"T01", "T02", "T03"}
    for truck in ("T01", "T02", "T03"):
        times = [trip.loaded_at for trip in trips if trip.truck == truck]
        assert all(18 * 60 <= later - earlier <= 60 * 60 for earlier, later in itertools.pairwise(times))


def test_a_shift_is_registered_once_and_every_bad_record_is_rejected_with_its_reason(
    stack: Stack, shift: list[SignedTrip]
) -> None:
    api = ClientApi(stack.http, stack.operator.token)
    data_dir = stack.settings.data_dir
    deployment = stack.runtime.deployment
    good = [signed for signed in shift if (signed.trip.weighbridge_disagreement_ppm() or 0) <= 10_000]
    template = good[0].trip

    def signed_by(key_name: str, trip_number: int, site: str = SITE) -> SignedTrip:
        trip = replace(
            template, truck="T09", trip_id=f"T09-X{trip_number}", lot_id=f"{site}-T09-X{trip_number}"
        )
        key = DevKeyring(data_dir).get_or_create(key_name)
        return sign_trip(key, deployment.chain_id, deployment.registry, replace(trip, site=site))

    # a device of another site, and one of this site that is revoked
    elsewhere = device_key(data_dir, "SH3", "T09")
    stack.runtime.client.add_device(stack.admin, elsewhere.address, "SH3", "haul-truck-scale")
    revoked = device_key(data_dir, SITE, "T08")
    stack.runtime.client.add_device(stack.admin, revoked.address, SITE, "haul-truck-scale")
    stack.runtime.client.revoke_device(stack.admin, revoked.address)
    index(stack)
    wrong_site = sign_trip(
        elsewhere,
        deployment.chain_id,
        deployment.registry,
        replace(template, lot_id=f"{SITE}-T09-X3", trip_id="T09-X3"),
    )
    by_revoked = sign_trip(
        revoked,
        deployment.chain_id,
        deployment.registry,
        replace(template, lot_id=f"{SITE}-T09-X4", trip_id="T09-X4"),
    )

    bad = {
        "malformed": ("{not json", "malformed line: not JSON"),
        "missing": (json.dumps({"site": SITE}), "truck: is required"),
        "forged": (line(signed_by("forger", 1)), "unknown device"),
        "tampered": (
            line(good[1], mass_g=good[1].trip.mass_g + 1, **renamed("T01-TAMPERED")),
            "bad signature",
        ),
        "replayed": (
            line(good[2], signature=good[3].signature, device=good[3].device, **renamed("T02-REPLAYED")),
            "bad signature",
        ),
        "wrong site": (line(wrong_site), "belongs to site SH3, not SH2"),
        "revoked": (line(by_revoked), "was revoked"),
        "weighbridge": (
            line(good[4], weighbridge_mass_g=good[4].trip.mass_g * 100 // 105),
            "weighbridge disagrees with onboard scale by 5.00%",
        ),
        "not derived": (line(good[5], lot_id=f"{SITE}-SOMETHING-ELSE"), "lot_id: must be derived"),
        "duplicate": (line(good[6]), "the same lot as line"),
    }
    lines = [line(signed) + "\n" for signed in shift]
    bad_lines = {len(lines) + position + 1: name for position, name in enumerate(bad)}
    lines += [text + "\n" for text, _ in bad.values()]
    disagreeing = {
        number: signed for number, signed in enumerate(shift, start=1) if signed not in good
    }  # the simulation's own weighbridge disagreements

    run = TripIngest(api, batch_size=5)
    run.feed(lines)
    summary = run.finish()

    assert summary.registered == len(good)
    assert summary.skipped == 0
    reasons = {rejection.line: rejection.reason for rejection in summary.rejected}
    assert set(reasons) == set(bad_lines) | set(disagreeing)
    for number, name in bad_lines.items():
        assert bad[name][1] in reasons[number], (name, reasons[number])
    for number in disagreeing:
        assert reasons[number].startswith("weighbridge_mass_g: weighbridge disagrees with onboard scale by")
    assert summary.exit_code == 1
    assert len(summary.operations) == -(-len(good) // 5)
    for signed in good:
        state = stack.runtime.client.lot(signed.trip.lot_id)
        assert state is not None
        assert (state.custodian, state.remaining_g) == (stack.operator.address, signed.trip.mass_g)
    for name in ("forged", "revoked", "wrong site"):
        assert stack.runtime.client.lot(json.loads(bad[name][0])["lot_id"]) is None

    # again before the index has the lots: each batch is the same request under the same key
    head = stack.w3.eth.block_number
    again = TripIngest(api, batch_size=5)
    again.feed(lines)
    replayed = again.finish()
    assert replayed.operations == summary.operations
    assert (replayed.registered, replayed.resubmitted) == (0, len(good))
    assert stack.w3.eth.block_number == head

    # again once the index has them: nothing is sent
    index(stack)
    third = TripIngest(api, batch_size=5)
    third.feed(lines)
    result = third.finish()
    assert (result.registered, result.skipped, result.operations) == (0, len(good), [])
    lot = stack.http.get(f"/v1/lots/{good[0].trip.lot_id}").json()
    assert (lot["mass_g"], lot["extracted_at"]) == (good[0].trip.mass_g, good[0].trip.loaded_at)
    assert lot["record_hash"] == good[0].trip.record_hash()


def test_the_cli_simulates_into_a_file_and_refuses_bad_arguments(
    stack: Stack, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(stack.settings.data_dir))
    runner = CliRunner()
    out = tmp_path / "shift.jsonl"
    result = runner.invoke(
        cli, ["simulate", "trucks", "--trucks", "2", "--hours", "1", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(text) for text in out.read_text().splitlines()]
    assert records
    assert {record["truck"] for record in records} <= {"T01", "T02"}
    assert all(record["lot_id"] == f"SH2-{record['trip_id']}" for record in records)
    assert {record["commodity"] for record in records} == {"COAL"}, "shaft 2's faces yield coal"
    ore = tmp_path / "ore.jsonl"
    arguments = ["simulate", "trucks", "--trucks", "2", "--hours", "1", "--seed", "3", "--out", str(ore)]
    overridden = runner.invoke(cli, [*arguments, "--commodity", "FE-ORE"])
    assert overridden.exit_code == 0, overridden.output
    assert {json.loads(text)["commodity"] for text in ore.read_text().splitlines()} == {"FE-ORE"}
    assert all(
        record["device"] == device_key(stack.settings.data_dir, SITE, record["truck"]).address
        for record in records
    )

    assert runner.invoke(cli, ["simulate", "trucks", "--trucks", "0"]).exit_code == 2
    assert runner.invoke(cli, ["simulate", "trucks", "--commodity", "iron ore!"]).exit_code == 2
    assert runner.invoke(cli, ["simulate", "trucks", "--site", "A-VERY-LONG-SITE-NAME"]).exit_code == 2
    assert runner.invoke(cli, ["simulate", "trucks", "--start", "2999-01-01"]).exit_code == 2
    assert runner.invoke(cli, ["ingest", "trips", str(out)], env={"PROVENANCE_API_TOKEN": ""}).exit_code == 2
    assert runner.invoke(cli, ["ingest", "trips", str(tmp_path / "none"), "--token", "t"]).exit_code == 2
    assert runner.invoke(cli, ["ingest", "trips", str(out), "--token", "t", "--batch", "0"]).exit_code == 2

    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(b'{"a":1}\n{"b":"caf\xe9"}\n')  # 8 bytes in line 1, 9 before the \xe9
    for args, stdin in (([str(latin)], None), (["-"], latin.read_bytes())):
        refused = runner.invoke(cli, ["ingest", "trips", *args, "--token", "t"], input=stdin)
        assert refused.exit_code == 2, refused.output
        assert f"{args[0] if args[0] != '-' else 'stdin'} is not UTF-8" in refused.output, refused.output
        assert "byte 17 (line 2) is 0xe9" in refused.output
        assert "Traceback" not in refused.output


def test_the_trip_record_round_trips(shift: list[SignedTrip]) -> None:
    from provenance.domain.trips import parse_trip_record

    signed = shift[0]
    assert parse_trip_record(json.loads(line(signed))) == signed
    assert isinstance(signed.trip, Trip)
