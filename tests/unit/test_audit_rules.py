"""The audit's rules in plain Python (provenance/audit/rules.py), fed histories the contract would
refuse: each broken rule is named with its lot and event, and the replay carries on."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provenance.audit.rules import ReplayResult, Roles, replay

ADMIN, REGISTRAR, PROCESSOR, BUYER, LAB, STRANGER, DEVICE = (f"0x{n:040x}" for n in range(1, 8))
ROLES = Roles(admin="0x" + "00" * 32, processor="0xp", lab="0xl", registrar=lambda site: f"0xr-{site}")
_tx = itertools.count(1)


@dataclass(frozen=True)
class Ev:
    name: str
    args: Mapping[str, Any]
    tx_hash: str
    block_number: int = 1
    log_index: int = 0
    tx_index: int = 0


@dataclass
class History:
    events: list[Ev] = field(default_factory=list)

    def tx(self, *events: tuple[str, dict[str, Any]]) -> str:
        tx_hash = f"0x{next(_tx):064x}"
        for index, (name, args) in enumerate(events):
            self.events.append(Ev(name, args, tx_hash, len(self.events) + 1, index))
        return tx_hash

    def grant(self, role: str, account: str) -> None:
        self.tx(("RoleGranted", {"role": role, "account": account, "sender": ADMIN}))

    def register(self, lot_id: str, mass_g: int, by: str = REGISTRAR, site: str = "PIT") -> None:
        self.tx(
            ("LotsRegistered", {"site": site, "custodian": by}),
            ("LotRegistered", {"lotId": lot_id, "massG": mass_g, "gradePpm": 5_000}),
        )

    def hand(self, lot_id: str, frm: str, to: str, accept_by: str | None = None) -> None:
        self.tx(("CustodyOffered", {"lotId": lot_id, "from": frm, "to": to}))
        self.tx(("CustodyAccepted", {"lotId": lot_id, "from": frm, "to": accept_by or to}))

    def transform(
        self,
        inputs: list[tuple[str, int, int]],
        outputs: list[tuple[str, int]],
        loss_g: int,
        by: str = PROCESSOR,
    ) -> None:
        events: list[tuple[str, dict[str, Any]]] = [
            ("LotsTransformed", {"transformId": 1, "operator": by, "kind": 3, "site": "PIT", "lossG": loss_g})
        ]
        events += [
            ("LotConsumed", {"lotId": lot, "transformId": 1, "massG": mass, "remainingG": left})
            for lot, mass, left in inputs
        ]
        events += [
            ("LotCreated", {"lotId": lot, "transformId": 1, "custodian": by, "massG": mass, "gradePpm": 1})
            for lot, mass in outputs
        ]
        self.tx(*events)

    def run(self, **kwargs: Any) -> ReplayResult:
        return replay(self.events, ROLES, **kwargs)


def base() -> History:
    h = History()
    h.tx(("RoleGranted", {"role": ROLES.admin, "account": ADMIN, "sender": STRANGER}))
    h.grant("0xr-PIT", REGISTRAR)
    h.grant("0xp", PROCESSOR)
    h.grant("0xl", LAB)
    h.register("A", 1_000)
    h.register("B", 2_000)
    h.hand("A", REGISTRAR, PROCESSOR)
    h.hand("B", REGISTRAR, PROCESSOR)
    return h


def rules(result: ReplayResult) -> list[tuple[str, str | None]]:
    return [(finding.rule, finding.lot_id) for finding in result.findings]


def test_a_lawful_history_has_no_findings_and_balances() -> None:
    h = base()
    h.transform([("A", 1_000, 0), ("B", 500, 1_500)], [("M", 1_400)], 100)

    result = h.run()

    assert result.findings == []
    assert result.lots["M"].remaining_g == 1_400
    assert result.registered_g == 3_000
    assert result.remaining_g + result.lost_g == 3_000
    assert result.checked["mass_conservation"] == 1


def test_mass_created_by_a_transformation_is_named() -> None:
    h = base()
    h.transform([("A", 1_000, 0)], [("M", 1_100)], 0)

    result = h.run()

    assert ("mass_conservation", None) in rules(result)
    assert any(f.rule == "mass_balance" for f in result.findings)


def test_a_lot_consumed_beyond_its_mass_is_named() -> None:
    h = base()
    h.transform([("A", 1_200, 0)], [("M", 1_200)], 0)

    assert ("no_overconsumption", "A") in rules(h.run())


def test_an_action_without_the_role_is_named() -> None:
    h = base()
    h.tx(("RoleRevoked", {"role": "0xp", "account": PROCESSOR, "sender": ADMIN}))
    h.transform([("A", 1_000, 0)], [("M", 1_000)], 0)
    h.register("C", 10, by=STRANGER)

    found = rules(h.run())

    assert ("role_processor", None) in found
    assert ("role_registrar", None) in found


def test_custody_only_the_custodian_offers_and_only_the_receiver_accepts() -> None:
    h = base()
    h.tx(("CustodyOffered", {"lotId": "A", "from": STRANGER, "to": BUYER}))
    h.tx(("CustodyOffered", {"lotId": "B", "from": PROCESSOR, "to": BUYER}))
    h.tx(("CustodyAccepted", {"lotId": "B", "from": PROCESSOR, "to": STRANGER}))

    found = rules(h.run())

    assert found == [("custody", "A"), ("custody", "B")]


def test_assay_signature_and_lab_role() -> None:
    h = base()
    assay = {
        "lotId": "A",
        "lab": LAB,
        "gradePpm": 1,
        "method": "XRF",
        "certificateHash": "0x1",
        "assayedAt": 5,
    }
    first = h.tx(("AssayRecorded", assay))
    second = h.tx(("AssayRecorded", {**assay, "lab": STRANGER, "assayedAt": 6}))

    result = h.run(assay_signers={(first, 0): LAB, (second, 0): LAB})

    assert sorted(rules(result)) == [("assay_signature", "A"), ("role_lab", "A")]


def test_device_attestation_needs_an_active_device_of_the_site_and_its_signature() -> None:
    h = History(base().events)
    h.tx(("DeviceAdded", {"device": DEVICE, "site": "PIT", "kind": "truck", "by": REGISTRAR}))
    tx = h.tx(
        ("LotsRegistered", {"site": "PIT", "custodian": REGISTRAR}),
        ("LotRegistered", {"lotId": "D1", "massG": 5, "gradePpm": 1}),
        ("LoadAttested", {"lotId": "D1", "device": DEVICE, "tripId": "T", "loadedAt": 1}),
    )
    h.tx(("DeviceRevoked", {"device": DEVICE, "site": "PIT", "by": ADMIN}))
    h.tx(
        ("LotsRegistered", {"site": "PIT", "custodian": REGISTRAR}),
        ("LotRegistered", {"lotId": "D2", "massG": 5, "gradePpm": 1}),
        ("LoadAttested", {"lotId": "D2", "device": DEVICE, "tripId": "T", "loadedAt": 1}),
    )

    result = h.run(load_signers={(tx, 2): (STRANGER, "PIT")})

    assert sorted(rules(result)) == [("device_attestation", "D2"), ("device_signature", "D1")]


def test_corrections_keep_balance_and_a_void_leaves_nothing() -> None:
    h = base()
    h.tx(
        ("LotCorrected", {"lotId": "A", "by": PROCESSOR, "reason": 1, "adjustmentG": -100, "remainingG": 900})
    )
    h.tx(
        (
            "LotCorrected",
            {"lotId": "B", "by": PROCESSOR, "reason": 1, "adjustmentG": -100, "remainingG": 1_950},
        )
    )
    h.tx(
        ("LotCorrected", {"lotId": "A", "by": PROCESSOR, "reason": 0, "adjustmentG": -100, "remainingG": 800})
    )
    h.tx(("LotCorrected", {"lotId": "A", "by": STRANGER, "reason": 1, "adjustmentG": 1, "remainingG": 801}))

    result = h.run()

    assert rules(result) == [
        ("correction_balance", "B"),
        ("correction_balance", "A"),
        ("custodian_acts", "A"),
    ]
    assert result.lots["A"].remaining_g == 801  # the replay follows the chain after a finding


def test_nothing_happens_while_paused() -> None:
    h = base()
    h.tx(("Paused", {"account": ADMIN}))
    h.register("C", 10)

    assert ("not_while_paused", None) in rules(h.run())
