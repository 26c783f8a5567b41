"""addDevice, revokeDevice, registerAttestedLots: a site's registrars (or the admin) manage the site's
devices, and a lot registered with a device's signed load is bound to that device, site, lot and mass."""

from __future__ import annotations

import dataclasses

import pytest
from eth_keys import keys

from provenance.chain.client import RegistryClient
from provenance.domain.records import LoadAttestation, LotRegistration
from provenance.errors import ContractRevert
from tests.unit.conftest import (
    OTHER_SITE,
    SITE,
    ZERO_ADDRESS,
    ZERO_WORD,
    Chain,
    attestation,
    event_names,
    events,
    label,
    lot,
    refusal,
)


def register_attested(
    chain: Chain, lots: list[LotRegistration], attestations: list[LoadAttestation], sender: str | None = None
) -> object:
    return chain.client.register_attested_lots(sender or chain.operator, lots, attestations)


# ---------------------------------------------------------------- managing devices


def test_a_site_registrar_adds_a_device_that_may_then_attest(chain: Chain) -> None:
    scale = chain.new_key()

    receipt = chain.client.add_device(chain.clerk, scale.address, SITE, "weighbridge")

    assert events(chain.client, receipt, "DeviceAdded") == [
        {"device": scale.address, "site": label(SITE), "kind": label("weighbridge"), "by": chain.clerk}
    ]
    assert chain.client.contract.functions.deviceOf(scale.address).call() == [
        label(SITE),
        label("weighbridge"),
        True,
    ]


def test_the_admin_may_add_and_revoke_devices_of_any_site(chain: Chain) -> None:
    scale = chain.new_key()

    chain.client.add_device(chain.admin, scale.address, OTHER_SITE, "payload-scale")
    receipt = chain.client.revoke_device(chain.admin, scale.address)

    assert events(chain.client, receipt, "DeviceRevoked") == [
        {"device": scale.address, "site": label(OTHER_SITE), "by": chain.admin}
    ]
    assert chain.client.contract.functions.deviceOf(scale.address).call()[2] is False


@pytest.mark.parametrize("who", ["rival", "outsider", "buyer"])
def test_only_a_registrar_of_the_site_or_the_admin_adds_its_devices(chain: Chain, who: str) -> None:
    stranger = getattr(chain, who)
    scale = chain.new_key()

    with pytest.raises(ContractRevert) as refused:
        chain.client.add_device(stranger, scale.address, SITE, "weighbridge")

    assert refusal(refused) == ("NotSiteRegistrar", {"site": SITE, "account": stranger})
    assert chain.client.contract.functions.deviceOf(scale.address).call() == [ZERO_WORD, ZERO_WORD, False]


@pytest.mark.parametrize("who", ["rival", "outsider", "buyer"])
def test_only_a_registrar_of_the_site_or_the_admin_revokes_its_devices(chain: Chain, who: str) -> None:
    stranger = getattr(chain, who)

    with pytest.raises(ContractRevert) as refused:
        chain.client.revoke_device(stranger, chain.device.address)

    assert refusal(refused) == ("NotSiteRegistrar", {"site": SITE, "account": stranger})
    assert chain.client.contract.functions.deviceOf(chain.device.address).call()[2] is True


def test_a_device_is_registered_once_and_never_reused_after_revocation(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.add_device(chain.rival, chain.device.address, OTHER_SITE, "haul-truck")
    assert refusal(refused) == ("DeviceExists", {"device": chain.device.address})

    chain.client.revoke_device(chain.operator, chain.device.address)
    with pytest.raises(ContractRevert) as refused_again:
        chain.client.add_device(chain.operator, chain.device.address, SITE, "haul-truck")
    assert refusal(refused_again) == ("DeviceExists", {"device": chain.device.address})


def test_only_an_active_device_can_be_revoked(chain: Chain) -> None:
    never_added = chain.new_key().address
    with pytest.raises(ContractRevert) as refused:
        chain.client.revoke_device(chain.operator, never_added)
    assert refusal(refused) == ("UnknownDevice", {"device": never_added})

    chain.client.revoke_device(chain.operator, chain.device.address)
    with pytest.raises(ContractRevert) as refused_again:
        chain.client.revoke_device(chain.operator, chain.device.address)
    assert refusal(refused_again) == ("UnknownDevice", {"device": chain.device.address})


@pytest.mark.parametrize(
    ("device", "site", "field"),
    [(ZERO_ADDRESS, label(SITE), "device"), ("new", ZERO_WORD, "site")],
)
def test_a_device_needs_an_address_and_a_site(chain: Chain, device: str, site: bytes, field: str) -> None:
    address = chain.new_key().address if device == "new" else device

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(chain.admin, "addDevice", address, site, label("scale"))

    assert refusal(refused) == ("ZeroValue", {"field": field})


# ---------------------------------------------------------------- attested registration


def test_a_device_signed_load_registers_the_lot_and_records_the_attestation(chain: Chain) -> None:
    registration = lot("T-1", mass_g=98_765_432)
    load = attestation(chain, registration, trip_id="TRIP-77", loaded_at=1_700_000_100)

    receipt = register_attested(chain, [registration], [load])

    assert event_names(chain.client, receipt) == ["LotsRegistered", "LotRegistered", "LoadAttested"]
    assert events(chain.client, receipt, "LoadAttested") == [
        {
            "lotId": label("T-1"),
            "device": chain.device.address,
            "tripId": label("TRIP-77"),
            "loadedAt": 1_700_000_100,
        }
    ]
    assert events(chain.client, receipt, "LotRegistered")[0]["measurement"] & (2**96 - 1) == 98_765_432
    state = chain.client.lot("T-1")
    assert state is not None
    assert (state.custodian, state.remaining_g) == (chain.operator, 98_765_432)


def test_a_shift_of_loads_from_two_devices_registers_in_one_transaction(chain: Chain) -> None:
    second = chain.new_key()
    chain.client.add_device(chain.operator, second.address, SITE, "payload-scale")
    lots = [lot(f"T-{index}", mass_g=1_000 + index) for index in range(4)]
    loads = [
        attestation(chain, item, device=second if index % 2 else None, trip_id=f"TRIP-{index}")
        for index, item in enumerate(lots)
    ]

    receipt = register_attested(chain, lots, loads)

    assert event_names(chain.client, receipt) == ["LotsRegistered"] + ["LotRegistered", "LoadAttested"] * 4
    assert [event["device"] for event in events(chain.client, receipt, "LoadAttested")] == [
        chain.device.address,
        second.address,
        chain.device.address,
        second.address,
    ]


def test_a_load_signed_by_a_key_that_is_no_device_is_refused(chain: Chain) -> None:
    forger = chain.new_key()
    registration = lot("T-1")

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [registration], [attestation(chain, registration, device=forger)])

    assert refusal(refused) == ("InvalidDeviceSignature", {"lotId": "T-1", "recovered": forger.address})
    assert chain.client.lot("T-1") is None


def test_a_revoked_device_can_no_longer_attest(chain: Chain) -> None:
    registration = lot("T-1")
    load = attestation(chain, registration)
    chain.client.revoke_device(chain.clerk, chain.device.address)

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [registration], [load])

    assert refusal(refused) == ("InvalidDeviceSignature", {"lotId": "T-1", "recovered": chain.device.address})


def test_a_device_of_another_site_cannot_attest_here(chain: Chain) -> None:
    pit_scale = chain.new_key()
    chain.client.add_device(chain.rival, pit_scale.address, OTHER_SITE, "haul-truck")
    registration = lot("T-1")

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [registration], [attestation(chain, registration, device=pit_scale)])

    assert refusal(refused) == ("InvalidDeviceSignature", {"lotId": "T-1", "recovered": pit_scale.address})


def test_a_load_signed_for_another_site_does_not_register_here(chain: Chain) -> None:
    pit_scale = chain.new_key()
    chain.client.add_device(chain.rival, pit_scale.address, OTHER_SITE, "haul-truck")
    chain.client.grant_role(chain.admin, chain.client.registrar_role(OTHER_SITE), chain.operator)
    signed_at_pit = attestation(chain, lot("T-1", site=OTHER_SITE), device=pit_scale)

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [lot("T-1")], [signed_at_pit])

    name, args = refusal(refused)
    assert name == "InvalidDeviceSignature"
    assert args["recovered"] != pit_scale.address


@pytest.mark.parametrize(
    "changes",
    [{"lot_id": "T-2"}, {"mass_g": 24_500_001}, {"face": "F9"}],
    ids=["another-lot", "another-mass", "another-face"],
)
def test_a_load_signature_binds_its_lot_id_face_and_mass(chain: Chain, changes: dict[str, object]) -> None:
    signed = lot("T-1")
    submitted = dataclasses.replace(signed, **changes)

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [submitted], [attestation(chain, signed)])

    name, args = refusal(refused)
    assert (name, args["lotId"]) == ("InvalidDeviceSignature", submitted.lot_id)
    assert args["recovered"] != chain.device.address
    assert chain.client.lot(submitted.lot_id) is None


def test_a_load_signature_binds_its_trip_and_load_time(chain: Chain) -> None:
    registration = lot("T-1")
    load = attestation(chain, registration, trip_id="TRIP-1", loaded_at=1_700_000_100)

    for forged in (
        dataclasses.replace(load, trip_id="TRIP-2"),
        dataclasses.replace(load, loaded_at=1_700_000_101),
    ):
        with pytest.raises(ContractRevert) as refused:
            register_attested(chain, [registration], [forged])
        assert refusal(refused)[0] == "InvalidDeviceSignature"
        assert refusal(refused)[1]["recovered"] != chain.device.address


@pytest.mark.parametrize("elsewhere", ["chain", "registry"])
def test_a_load_signed_for_another_chain_or_registry_is_refused(chain: Chain, elsewhere: str) -> None:
    registration = lot("T-1")
    if elsewhere == "chain":
        load = attestation(chain, registration, chain_id=chain.chain_id + 1)
    else:
        other, _ = RegistryClient.deploy(chain.w3, chain.admin)
        load = attestation(chain, registration, registry=other.address)

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [registration], [load])

    name, args = refusal(refused)
    assert name == "InvalidDeviceSignature"
    assert args["recovered"] != chain.device.address


def test_an_attestation_cannot_register_its_lot_twice(chain: Chain) -> None:
    registration = lot("T-1")
    load = attestation(chain, registration)
    register_attested(chain, [registration], [load])

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [registration], [load])

    assert refusal(refused) == ("LotExists", {"lotId": "T-1"})


def test_one_bad_attestation_registers_nothing_of_the_batch(chain: Chain) -> None:
    lots = [lot(f"T-{index}") for index in range(3)]
    loads = [attestation(chain, item) for item in lots]
    loads[2] = attestation(chain, lots[2], device=chain.new_key())

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, lots, loads)

    assert refusal(refused)[1]["lotId"] == "T-2"
    assert [chain.client.lot(item.lot_id) for item in lots] == [None, None, None]


@pytest.mark.parametrize("signature", [b"", b"\x01" * 64, b"\0" * 65])
def test_a_malformed_load_signature_is_refused(chain: Chain, signature: bytes) -> None:
    registration = lot("T-1")

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [registration], [LoadAttestation("TRIP-1", 1_700_000_100, signature)])

    assert refusal(refused) == ("InvalidDeviceSignature", {"lotId": "T-1", "recovered": ZERO_ADDRESS})


def test_each_lot_needs_exactly_one_attestation(chain: Chain) -> None:
    lots = [lot("T-1"), lot("T-2")]

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, lots, [attestation(chain, lots[0])])

    assert refusal(refused) == ("LengthMismatch", {"lots": 2, "attestations": 1})


def test_an_empty_attested_batch_is_refused(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(chain.operator, "registerAttestedLots", label(SITE), [], [])

    assert refusal(refused) == ("EmptyBatch", {})


def test_a_load_time_may_run_ahead_of_the_chain_by_the_clock_skew_only(chain: Chain) -> None:
    now = chain.travel(3600)
    late, on_time = lot("T-1"), lot("T-2")

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [late], [attestation(chain, late, loaded_at=now + 901)])
    assert refusal(refused) == ("TimeInFuture", {"subject": "T-1", "time": now + 901})

    register_attested(chain, [on_time], [attestation(chain, on_time, loaded_at=now + 900)])
    assert chain.client.lot("T-2") is not None


@pytest.mark.parametrize("who", ["outsider", "rival", "admin"])
def test_only_a_registrar_of_the_site_registers_attested_lots(chain: Chain, who: str) -> None:
    stranger = getattr(chain, who)
    registration = lot("T-1")

    with pytest.raises(ContractRevert) as refused:
        register_attested(chain, [registration], [attestation(chain, registration)], sender=stranger)

    needed = "0x" + chain.client.registrar_role(SITE).hex()
    assert refusal(refused) == (
        "AccessControlUnauthorizedAccount",
        {"account": stranger, "neededRole": needed},
    )


def test_the_contract_load_digest_is_what_the_device_signs(chain: Chain) -> None:
    registration = lot("T-1")
    load = attestation(chain, registration, trip_id="TRIP-9", loaded_at=1_700_000_123)
    on_chain = chain.client.contract.functions.loadDigest(
        label("T-1"), label(SITE), label("F3"), label("TRIP-9"), registration.mass_g, 1_700_000_123
    ).call()

    signature = keys.Signature(load.signature[:64] + bytes([load.signature[64] - 27]))

    assert signature.recover_public_key_from_msg_hash(on_chain).to_checksum_address() == chain.device.address
