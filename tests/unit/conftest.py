"""One registry on the in-process eth-tester chain, deployed once per session; every test that uses
it starts from the same snapshot and is reverted afterwards, so tests cannot see each other's lots.

The factories below (`lot`, `output`, `transformation`, ...) build what a test submits; the `Chain`
names the accounts by what they may do, so a test reads as "the rival registrar cannot ...".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester
from web3 import EthereumTesterProvider, Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from provenance.chain.client import RegistryClient
from provenance.chain.signing import sign_load
from provenance.domain.records import (
    Assay,
    LoadAttestation,
    LotRegistration,
    Transformation,
    TransformInput,
    TransformOutput,
)
from provenance.domain.values import TransformKind, encode_label
from provenance.errors import ContractRevert

SITE = "SH2"
OTHER_SITE = "PIT9"
EXTRACTED_AT = 1_700_000_000
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_WORD = b"\0" * 32
FUNDING_WEI = 10**18
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Chain:
    """The deployed registry and the accounts of the base state, by what they may do."""

    w3: Web3
    tester: EthereumTester
    client: RegistryClient
    admin: str  # DEFAULT_ADMIN_ROLE
    operator: str  # registrar of SITE and processor: registers lots, then crushes and splits them
    clerk: str  # registrar of SITE only
    rival: str  # registrar of OTHER_SITE and processor
    buyer: str  # no role
    outsider: str  # no role
    lab: LocalAccount  # LAB_ROLE
    device: LocalAccount  # an active haul-truck scale of SITE

    @property
    def chain_id(self) -> int:
        return self.client.chain_id

    def pending_timestamp(self) -> int:
        """The block time the next transaction will see (what `block.timestamp` means to it)."""
        return int(self.w3.eth.get_block("pending")["timestamp"])

    def travel(self, seconds: int) -> int:
        """Moves the chain's clock ahead, so that wall-clock time no longer decides the next block's."""
        self.tester.time_travel(self.pending_timestamp() + seconds)
        return self.pending_timestamp()

    def fund(self, account: str) -> None:
        self.w3.eth.send_transaction({"from": self.admin, "to": account, "value": FUNDING_WEI})

    def new_key(self) -> LocalAccount:
        """A fresh, funded key, for an account that must sign (a lab, a device)."""
        key: LocalAccount = Account.create()
        self.fund(key.address)
        return key

    def register(self, *lots: LotRegistration, sender: str | None = None) -> TxReceipt:
        return self.client.register_lots(sender or self.operator, lots)


@pytest.fixture(scope="session")
def deployed_registry() -> Chain:
    """The registry and its base roles, deployed once per session."""
    w3 = Web3(EthereumTesterProvider())
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    admin, operator, clerk, rival, buyer, outsider = w3.eth.accounts[:6]
    client, _ = RegistryClient.deploy(w3, admin)
    processor_role = client.role("PROCESSOR_ROLE")
    client.grant_role(admin, client.registrar_role(SITE), operator)
    client.grant_role(admin, processor_role, operator)
    client.grant_role(admin, client.registrar_role(SITE), clerk)
    client.grant_role(admin, client.registrar_role(OTHER_SITE), rival)
    client.grant_role(admin, processor_role, rival)
    base = Chain(
        w3, tester, client, admin, operator, clerk, rival, buyer, outsider, Account.create(), Account.create()
    )
    base.fund(base.lab.address)
    base.fund(base.device.address)
    client.grant_role(admin, client.role("LAB_ROLE"), base.lab.address)
    client.add_device(operator, base.device.address, SITE, "haul-truck")
    return base


@pytest.fixture
def chain(deployed_registry: Chain) -> Iterator[Chain]:
    """The session's registry, reverted to its base state after the test (ape's snapshot pattern).

    The snapshot lives here rather than in an autouse fixture keyed on fixture names, because sibling
    modules (the index tests) define a `chain` fixture of their own that must not be touched.
    """
    snapshot = deployed_registry.tester.take_snapshot()
    yield deployed_registry
    deployed_registry.tester.revert_to_snapshot(snapshot)


# -------------------------------------------------------------------- factories


def digest(text: str) -> bytes:
    """A 32-byte record hash that names what it stands for."""
    return hashlib.sha256(text.encode()).digest()


def lot(
    lot_id: str,
    *,
    site: str = SITE,
    face: str = "F3",
    commodity: str = "COAL",
    mass_g: int = 24_500_000,
    grade_ppm: int = 12_345,
    extracted_at: int = EXTRACTED_AT,
) -> LotRegistration:
    return LotRegistration(lot_id, site, face, commodity, mass_g, grade_ppm, extracted_at, digest(lot_id))


def output(lot_id: str, mass_g: int, *, commodity: str = "COAL", grade_ppm: int = 12_000) -> TransformOutput:
    return TransformOutput(lot_id, commodity, mass_g, grade_ppm, digest(lot_id))


def transformation(
    kind: TransformKind,
    inputs: Sequence[tuple[str, int]],
    outputs: Sequence[TransformOutput],
    loss_g: int = 0,
    *,
    site: str = SITE,
) -> Transformation:
    return Transformation(
        kind,
        site,
        tuple(TransformInput(lot_id, mass_g) for lot_id, mass_g in inputs),
        tuple(outputs),
        loss_g,
        digest(f"{kind.name}:{inputs}"),
    )


def assay(lot_id: str, *, grade_ppm: int = 11_800, assayed_at: int = EXTRACTED_AT + 3600) -> Assay:
    return Assay(lot_id, grade_ppm, "XRF", digest(f"certificate of {lot_id}"), assayed_at)


def attestation(
    base: Chain,
    registration: LotRegistration,
    *,
    device: LocalAccount | None = None,
    trip_id: str = "TRIP-0001",
    loaded_at: int = EXTRACTED_AT + 60,
    chain_id: int | None = None,
    registry: str | None = None,
) -> LoadAttestation:
    """A device's signed load; by default the chain's active device, for this registry."""
    signature = sign_load(
        device or base.device,
        chain_id or base.chain_id,
        registry or base.client.address,
        registration,
        trip_id,
        loaded_at,
    )
    return LoadAttestation(trip_id, loaded_at, signature)


def registration_args(registration: LotRegistration, **raw: Any) -> tuple[Any, ...]:
    """The ABI tuple of a registration, with fields overridden by raw values the domain would refuse."""
    fields = {
        "lotId": encode_label(registration.lot_id),
        "face": encode_label(registration.face),
        "commodity": encode_label(registration.commodity),
        "massG": registration.mass_g,
        "gradePpm": registration.grade_ppm,
        "extractedAt": registration.extracted_at,
        "recordHash": registration.record_hash,
    }
    fields.update(raw)
    return tuple(fields.values())


def label(text: str) -> bytes:
    return encode_label(text)


def pack_measurement(mass_g: int, grade_ppm: int, extracted_at: int) -> int:
    return mass_g | grade_ppm << 96 | extracted_at << 128


# -------------------------------------------------------------------- reverts and events


def refusal(refused: pytest.ExceptionInfo[ContractRevert]) -> tuple[str, dict[str, Any]]:
    """The custom error's name and arguments, addresses checksummed as the rest of the code writes them."""
    error = refused.value
    return error.name, {
        key: Web3.to_checksum_address(value)
        if isinstance(value, str) and _ADDRESS.fullmatch(value)
        else value
        for key, value in error.args_by_name.items()
    }


def events(client: RegistryClient, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
    """The arguments of every `name` event in the receipt, in log order."""
    decoded = client.contract.events[name]().process_receipt(receipt, errors=DISCARD)
    return [dict(event["args"]) for event in decoded]


def event_names(client: RegistryClient, receipt: TxReceipt) -> list[str]:
    """The names of the receipt's events in the order they were emitted."""
    by_index: dict[int, str] = {}
    for entry in client.contract.abi:
        if entry["type"] == "event":
            for event in client.contract.events[entry["name"]]().process_receipt(receipt, errors=DISCARD):
                by_index[event["logIndex"]] = event["event"]
    assert len(by_index) == len(receipt["logs"]), "a log the registry's ABI does not describe"
    return [by_index[index] for index in sorted(by_index)]


CLOCKLESS = frozenset(
    {
        "test_index_sync.py",  # ranges, reorgs and retries of the indexer: block numbers, no clock
        "test_registry_property.py",  # the ledger's rules against the contract, at random masses
        "test_artifacts.py",  # a fresh compile
        "test_index_schema.py",  # migrations against the models
        "test_outbox_coalescing.py",  # which registrations share a transaction
    }
)
"""The slowest unit modules, which read no clock: they are left out of the far-future run."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests run again under the far-future fake clock (`make test`), all but CLOCKLESS: any
    may read the clock through the code it calls, and a new one is in that run unless it says not."""
    for item in items:
        if "tests/unit/" in str(item.path) and item.path.name not in CLOCKLESS:
            item.add_marker(pytest.mark.clock)
