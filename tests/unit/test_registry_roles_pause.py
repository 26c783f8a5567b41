"""Roles and pause: the admin grants roles and pauses; a pause stops every state change but role
administration, and unpausing brings every operation back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3

from provenance.chain.client import RegistryClient
from provenance.chain.signing import ASSAY_TYPES, LOAD_TYPES
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.errors import ContractRevert
from tests.unit.conftest import (
    OTHER_SITE,
    SITE,
    ZERO_ADDRESS,
    Chain,
    assay,
    attestation,
    digest,
    events,
    label,
    lot,
    output,
    refusal,
    transformation,
)

ADMIN_ROLE = "0x" + "00" * 32


def type_string(types: dict[str, list[dict[str, str]]]) -> str:
    ((name, members),) = types.items()
    return f"{name}({','.join(member['type'] + ' ' + member['name'] for member in members)})"


# ---------------------------------------------------------------- deployment and role ids


def test_the_deployer_is_admin_unless_another_admin_is_named(chain: Chain) -> None:
    admin_role = chain.client.role("DEFAULT_ADMIN_ROLE")
    assert chain.client.has_role(admin_role, chain.admin)

    other, _ = RegistryClient.deploy(chain.w3, chain.operator, admin=chain.buyer)

    assert other.has_role(admin_role, chain.buyer)
    assert not other.has_role(admin_role, chain.operator)


def test_a_registry_cannot_be_deployed_without_an_admin(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as refused:
        RegistryClient.deploy(chain.w3, chain.admin, admin=ZERO_ADDRESS)

    assert refusal(refused) == ("ZeroValue", {"field": "admin"})


def test_role_ids_and_type_hashes_are_the_documented_hashes(chain: Chain) -> None:
    functions = chain.client.contract.functions

    assert chain.client.role("PROCESSOR_ROLE") == keccak(text="PROCESSOR_ROLE")
    assert chain.client.role("LAB_ROLE") == keccak(text="LAB_ROLE")
    assert chain.client.role("REGISTRAR_ROLE") == keccak(text="REGISTRAR_ROLE")
    assert chain.client.role("DEFAULT_ADMIN_ROLE") == b"\0" * 32
    assert functions.ASSAY_TYPEHASH().call() == keccak(text=type_string(ASSAY_TYPES))
    assert functions.LOAD_TYPEHASH().call() == keccak(text=type_string(LOAD_TYPES))
    assert functions.MAX_GRADE_PPM().call() == 1_000_000
    assert functions.MAX_CLOCK_SKEW().call() == 900


def test_each_site_has_its_own_registrar_role(chain: Chain) -> None:
    site_role = chain.client.registrar_role(SITE)

    assert site_role == keccak(
        abi_encode(["bytes32", "bytes32"], [keccak(text="REGISTRAR_ROLE"), label(SITE)])
    )
    assert site_role != chain.client.registrar_role(OTHER_SITE)
    assert chain.client.has_role(site_role, chain.operator)
    assert not chain.client.has_role(site_role, chain.rival)


def test_the_admin_role_administers_every_role(chain: Chain) -> None:
    for role in (
        chain.client.role("PROCESSOR_ROLE"),
        chain.client.role("LAB_ROLE"),
        chain.client.registrar_role(SITE),
        chain.client.role("DEFAULT_ADMIN_ROLE"),
    ):
        assert chain.client.contract.functions.getRoleAdmin(role).call() == b"\0" * 32


def test_the_registry_declares_the_interfaces_it_implements(chain: Chain) -> None:
    supports = chain.client.contract.functions.supportsInterface

    assert supports(bytes.fromhex("7965db0b")).call() is True  # IAccessControl
    assert supports(bytes.fromhex("01ffc9a7")).call() is True  # IERC165
    assert supports(bytes.fromhex("ffffffff")).call() is False


# ---------------------------------------------------------------- granting and revoking


def test_the_admin_grants_and_revokes_a_role(chain: Chain) -> None:
    processor = chain.client.role("PROCESSOR_ROLE")

    granted = chain.client.grant_role(chain.admin, processor, chain.buyer)
    revoked = chain.client.transact(chain.admin, "revokeRole", processor, chain.buyer)

    assert events(chain.client, granted, "RoleGranted") == [
        {"role": processor, "account": chain.buyer, "sender": chain.admin}
    ]
    assert events(chain.client, revoked, "RoleRevoked") == [
        {"role": processor, "account": chain.buyer, "sender": chain.admin}
    ]
    assert not chain.client.has_role(processor, chain.buyer)


def test_a_revoked_registrar_can_no_longer_register(chain: Chain) -> None:
    chain.client.transact(chain.admin, "revokeRole", chain.client.registrar_role(SITE), chain.clerk)

    with pytest.raises(ContractRevert) as refused:
        chain.register(lot("A"), sender=chain.clerk)

    assert refusal(refused)[0] == "AccessControlUnauthorizedAccount"


@pytest.mark.parametrize("function", ["grantRole", "revokeRole"])
def test_only_the_admin_grants_or_revokes_roles(chain: Chain, function: str) -> None:
    lab_role = chain.client.role("LAB_ROLE")

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(chain.operator, function, lab_role, chain.lab.address)

    assert refusal(refused) == (
        "AccessControlUnauthorizedAccount",
        {"account": chain.operator, "neededRole": ADMIN_ROLE},
    )
    assert chain.client.has_role(lab_role, chain.lab.address)


def test_an_account_renounces_only_its_own_role(chain: Chain) -> None:
    processor = chain.client.role("PROCESSOR_ROLE")

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(chain.operator, "renounceRole", processor, chain.rival)
    assert refusal(refused) == ("AccessControlBadConfirmation", {})
    assert chain.client.has_role(processor, chain.rival)

    chain.client.transact(chain.operator, "renounceRole", processor, chain.operator)
    assert not chain.client.has_role(processor, chain.operator)


# ---------------------------------------------------------------- pause


@pytest.mark.parametrize("who", ["operator", "rival", "outsider"])
@pytest.mark.parametrize("function", ["pause", "unpause"])
def test_only_the_admin_pauses_and_unpauses(chain: Chain, who: str, function: str) -> None:
    stranger = getattr(chain, who)
    if function == "unpause":
        chain.client.transact(chain.admin, "pause")

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(stranger, function)

    assert refusal(refused) == (
        "AccessControlUnauthorizedAccount",
        {"account": stranger, "neededRole": ADMIN_ROLE},
    )
    assert chain.client.contract.functions.paused().call() is (function == "unpause")


def test_pausing_and_unpausing_are_announced(chain: Chain) -> None:
    paused = chain.client.transact(chain.admin, "pause")
    assert events(chain.client, paused, "Paused") == [{"account": chain.admin}]
    assert chain.client.contract.functions.paused().call() is True

    unpaused = chain.client.transact(chain.admin, "unpause")
    assert events(chain.client, unpaused, "Unpaused") == [{"account": chain.admin}]
    assert chain.client.contract.functions.paused().call() is False


def test_a_paused_registry_cannot_be_paused_again_nor_an_active_one_unpaused(chain: Chain) -> None:
    with pytest.raises(ContractRevert) as not_paused:
        chain.client.transact(chain.admin, "unpause")
    assert refusal(not_paused) == ("ExpectedPause", {})

    chain.client.transact(chain.admin, "pause")
    with pytest.raises(ContractRevert) as already_paused:
        chain.client.transact(chain.admin, "pause")
    assert refusal(already_paused) == ("EnforcedPause", {})


@dataclass
class Operation:
    """A state change, with what must exist before it can succeed."""

    act: Callable[[Chain], object]
    prepare: Callable[[Chain], object] = field(default=lambda chain: None)


def _offer(lot_id: str) -> Callable[[Chain], object]:
    def prepare(chain: Chain) -> None:
        chain.register(lot(lot_id))
        chain.client.hand_over(chain.operator, [lot_id], chain.buyer)

    return prepare


_NEW_DEVICE = Web3.to_checksum_address("0x" + "de" * 20)

OPERATIONS = {
    "registerLot": Operation(lambda chain: chain.register(lot("A"))),
    "registerLots": Operation(lambda chain: chain.register(lot("A"), lot("B"))),
    "registerAttestedLots": Operation(
        lambda chain: chain.client.register_attested_lots(
            chain.operator, [lot("A")], [attestation(chain, lot("A"))]
        )
    ),
    "transform": Operation(
        lambda chain: chain.client.transform(
            chain.operator, transformation(TransformKind.SPLIT, [("A", 100)], [output("A1", 60)], 40)
        ),
        lambda chain: chain.register(lot("A", mass_g=100)),
    ),
    "handOver": Operation(
        lambda chain: chain.client.hand_over(chain.operator, ["A"], chain.buyer),
        lambda chain: chain.register(lot("A")),
    ),
    "cancelHandover": Operation(
        lambda chain: chain.client.cancel_handover(chain.operator, ["A"]), _offer("A")
    ),
    "acceptHandover": Operation(lambda chain: chain.client.accept_handover(chain.buyer, ["A"]), _offer("A")),
    "submitAssay": Operation(
        lambda chain: chain.client.submit_assay(
            chain.buyer, assay("A"), chain.client.sign_assay(chain.lab, assay("A"))
        ),
        lambda chain: chain.register(lot("A")),
    ),
    "anchorDocument": Operation(
        lambda chain: chain.client.anchor_document(chain.operator, "A", "photo", digest("photo")),
        lambda chain: chain.register(lot("A")),
    ),
    "addDevice": Operation(lambda chain: chain.client.add_device(chain.operator, _NEW_DEVICE, SITE, "scale")),
    "revokeDevice": Operation(lambda chain: chain.client.revoke_device(chain.operator, chain.device.address)),
    "correctLot": Operation(
        lambda chain: chain.client.correct_lot(
            chain.operator, "A", CorrectionReason.INCORRECT_DATA, -1, digest("reweighed")
        ),
        lambda chain: chain.register(lot("A")),
    ),
    "recordStockCount": Operation(
        lambda chain: chain.client.transact(
            chain.operator, "recordStockCount", label(SITE), 5, 1_700_000_000, digest("c")
        )
    ),
}


def test_every_state_changing_function_is_covered_by_the_pause_test(chain: Chain) -> None:
    state_changing = {
        entry["name"]
        for entry in chain.client.contract.abi
        if entry["type"] == "function" and entry["stateMutability"] == "nonpayable"
    }

    assert state_changing - set(OPERATIONS) == {"pause", "unpause", "grantRole", "revokeRole", "renounceRole"}


@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_a_pause_stops_the_operation_and_unpausing_brings_it_back(chain: Chain, name: str) -> None:
    operation = OPERATIONS[name]
    operation.prepare(chain)
    chain.client.transact(chain.admin, "pause")

    with pytest.raises(ContractRevert) as refused:
        operation.act(chain)
    assert refusal(refused) == ("EnforcedPause", {})

    chain.client.transact(chain.admin, "unpause")
    receipt = operation.act(chain)
    assert receipt["status"] == 1  # type: ignore[index]
    assert receipt["logs"]  # type: ignore[index]


def test_a_pause_stops_even_the_admin_and_tells_a_stranger_only_that_it_is_paused(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.transact(chain.admin, "pause")

    with pytest.raises(ContractRevert) as admin_refused:
        chain.client.correct_lot(
            chain.admin, "A", CorrectionReason.DID_NOT_OCCUR, -24_500_000, digest("void")
        )
    with pytest.raises(ContractRevert) as stranger_refused:
        chain.register(lot("B"), sender=chain.outsider)

    assert refusal(admin_refused) == refusal(stranger_refused) == ("EnforcedPause", {})
    state = chain.client.lot("A")
    assert state is not None
    assert state.remaining_g == 24_500_000


def test_roles_can_be_administered_and_state_read_while_paused(chain: Chain) -> None:
    chain.register(lot("A"))
    chain.client.transact(chain.admin, "pause")
    processor = chain.client.role("PROCESSOR_ROLE")

    chain.client.grant_role(chain.admin, processor, chain.buyer)
    chain.client.transact(chain.admin, "revokeRole", processor, chain.rival)

    assert chain.client.has_role(processor, chain.buyer)
    assert not chain.client.has_role(processor, chain.rival)
    state = chain.client.lot("A")
    assert state is not None
    assert state.custodian == chain.operator
