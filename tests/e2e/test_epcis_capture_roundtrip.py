"""A day's events exported through GET /epcis/events and captured through POST /epcis/capture into a
fresh deployment (a new chain, a new registry, a new database), then exported again: the same
events and the same facts on chain.

The day, as the demo tells it (smaller): three truckloads registered at the face, one split at the
plant, its first part assayed by the lab and sold to the buyer (handed over and accepted).

The new deployment holds the same keys (the same accounts; the registry is deployed by the same
admin at the same nonce, so at the same address on its new chain): the lab's EIP-712 signatures name
chain and registry, and would not be valid for a registry at another address. What a capture
cannot keep is compared apart: each event's time is its new block's (eventTime, and so eventID and
`mp:chain`), recordTime the new index's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from provenance.epcis.export import parse_account_uri
from tests.e2e.conftest import SITE, Account, Stack, digest, start_stack
from tests.e2e.test_epcis_capture import index, job, without_chain


def build_day(stack: Stack) -> list[str]:
    """The day's lots, through the JSON write API."""
    loads = [stack.register() for _ in range(3)]
    parts = [f"{loads[0]}-A", f"{loads[0]}-B"]
    split = {
        "kind": "split",
        "site": SITE,
        "inputs": [{"lot_id": loads[0], "mass_g": 24_500_000}],
        "outputs": [
            {
                "lot_id": lot,
                "commodity": "COAL",
                "mass_g": mass,
                "grade_ppm": 12_345,
                "record_hash": digest(lot),
            }
            for lot, mass in zip(parts, (12_000_000, 12_400_000), strict=True)
        ],
        "loss_g": 100_000,
        "record_hash": digest("split"),
    }
    assert stack.write("/v1/transformations", stack.operator, split)["status"] == "confirmed"
    assay = {"lot_id": parts[0], "grade_ppm": 8_800, "method": "FireAssay", "certificate_hash": digest("cert"),
             "assayed_at": 1_700_003_600}  # fmt: skip
    signed = stack.post("/v1/assays/sign", stack.lab, assay)
    assert signed.status_code == 200, signed.text
    submitted = {"assay": signed.json()["assay"], "signature": signed.json()["signature"]}
    assert stack.write("/v1/assays", stack.buyer, submitted)["status"] == "confirmed"
    sale = {"lot_ids": [parts[0]], "to": stack.buyer.address}
    assert stack.write("/v1/handovers", stack.operator, sale)["status"] == "confirmed"
    assert stack.write("/v1/handovers/accept", stack.buyer, {"lot_ids": [parts[0]]})["status"] == "confirmed"
    return [*loads, *parts]


def exported(stack: Stack) -> dict[str, Any]:
    index(stack)
    response = stack.http.get("/epcis/events", params={"perPage": 1_000})
    assert response.status_code == 200, response.text
    assert "Link" not in response.headers
    document: dict[str, Any] = response.json()
    return document


def events(document: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = document["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return found


def sender(stack: Stack, event: dict[str, Any]) -> Account:
    """Whose token captures an event: the party a custody step names, the lab for an assay, the
    operator (registrar and processor) for the rest."""
    accounts = {account.address.lower(): account for account in (stack.operator, stack.buyer, stack.lab)}
    if event.get("bizStep") == "shipping":
        address = parse_account_uri(event["sourceList"][0]["source"])
    elif event.get("bizStep") == "receiving":
        address = parse_account_uri(event["destinationList"][0]["destination"])
    else:
        return stack.lab if event.get("bizStep") == "inspecting" else stack.operator
    assert address is not None
    return accounts[address.lower()]


def capture_in_turn(stack: Stack, document: dict[str, Any]) -> None:
    """The export captured as it happened: each run of events one account sends, as one document
    with that account's token, once the run before it is on chain."""
    runs: list[tuple[Account, list[dict[str, Any]]]] = []
    for event in events(document):
        account = sender(stack, event)
        if runs and runs[-1][0] is account:
            runs[-1][1].append(event)
        else:
            runs.append((account, [event]))
    for account, run in runs:
        body = {key: document[key] for key in ("@context", "schemaVersion", "creationDate")}
        body |= {"type": "EPCISDocument", "epcisBody": {"eventList": run}}
        response = stack.http.post(
            "/epcis/capture",
            content=json.dumps(body),
            headers={"Content-Type": "application/ld+json", **account.auth},
        )
        assert response.status_code == 202, response.text
        found = job(stack, account, response.headers["Location"])
        assert (found["running"], found["success"]) == (False, True), found


def chain_facts(stack: Stack, lots: list[str]) -> list[Any]:
    return [stack.runtime.client.lot(lot) for lot in lots]


def test_a_days_export_captured_into_a_fresh_deployment_exports_the_same_events(tmp_path: Path) -> None:
    first = start_stack(tmp_path / "first", "DAY")
    original = next(first)
    try:
        lots = build_day(original)
        before = exported(original)
        facts_before = chain_facts(original, lots)
        registry = original.runtime.deployment.registry
    finally:
        first.close()

    shutil.copytree(tmp_path / "first" / "keys", tmp_path / "second" / "keys")
    second = start_stack(tmp_path / "second", "DAY")
    fresh = next(second)
    try:
        assert fresh.runtime.deployment.registry == registry
        capture_in_turn(fresh, before)
        after = exported(fresh)
        assert chain_facts(fresh, lots) == facts_before
    finally:
        second.close()

    sent, read = events(before), events(after)
    assert [event["bizStep"] for event in sent] == [
        *["commissioning"] * 3,
        "creating_class_instance",
        "inspecting",
        "shipping",
        "receiving",
    ]
    assert [without_chain(event) for event in read] == [without_chain(event) for event in sent]
    assert [event["transformationID"] for event in read if "transformationID" in event] == [
        event["transformationID"] for event in sent if "transformationID" in event
    ]
    assert all(new["eventID"] != old["eventID"] for new, old in zip(read, sent, strict=True))
