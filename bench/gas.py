"""Gas per registry operation, beside its theoretical minimum and OpenZeppelin's ERC721/ERC1155 mints.

    .venv/bin/python bench/gas.py           # the in-process eth-tester chain (py-evm, Prague rules)
    .venv/bin/python bench/gas.py --anvil   # then the same transactions on anvil; gas must match
    .venv/bin/python bench/gas.py --smoke   # eth-tester only: that it runs (the suite does)

Every figure is a receipt's `gasUsed`. Each registry operation's minimum is derived from its own
transaction: 21,000 intrinsic; the calldata it sent (16 per non-zero byte, 4 per zero byte, or the
EIP-7623 floor when that is larger); 22,100 per slot the rules must set from zero; 5,000 per
existing slot they must change (first touch in the transaction, so cold: 2,100 + 2,900); 5,000 per
slot they must clear, less its 4,800 refund (refunds capped at a fifth of the gas); 3,000 per
signature they must recover; and the logs in the receipt (375 + 375 per topic + 8 per data byte).
The rest (dispatch, ABI decoding, checks, role reads, hashing, memory) is overhead.
docs/benchmarks.md walks through the arithmetic.

Prints PASS/FAIL per target, then one JSON object as its last line; exits 1 if anything fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import solcx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt, Wei

from provenance.chain import compiler
from provenance.chain.artifacts import registry_artifact
from provenance.chain.client import RegistryClient, registration_tuple, send
from provenance.chain.node import AnvilNode, fund
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

REPO_ROOT = Path(__file__).resolve().parents[1]
HARNESS_SOURCE = "bench/contracts/OzMintHarness.sol"
OZ_PACKAGE = REPO_ROOT / "node_modules" / "@openzeppelin" / "contracts" / "package.json"

TARGET_SINGLE_GAS = 55_000
TARGET_BATCH100_GAS_PER_LOT = 28_000

TX_GAS_CAP = 2**24
"""EIP-7825: no transaction may have a gas limit above 2^24. eth-tester does not enforce it."""
TX_BASE_GAS = 21_000
CALLDATA_ZERO_GAS = 4
CALLDATA_NONZERO_GAS = 16
FLOOR_GAS_PER_TOKEN = 10
"""EIP-7623: gas used is at least 21,000 + 10 x (zero bytes + 4 x non-zero bytes)."""
NONZERO_BYTE_TOKENS = 4
NEW_SLOT_GAS = 22_100
"""SSTORE zero to non-zero (20,000) on a cold slot (2,100, EIP-2929)."""
COLD_UPDATE_GAS = 5_000
"""SSTORE to a slot not yet touched in the transaction (2,100 cold + 2,900); a warm one costs 2,900."""
CLEAR_REFUND_GAS = 4_800
"""EIP-3529: the refund for clearing a slot that was non-zero when the transaction began."""
MAX_REFUND_QUOTIENT = 5
TXPOOL_MAX_TX_BYTES = 128 * 1024
"""geth's and reth's default txpool refuses a signed transaction larger than this ("oversized data")."""
REGISTRATION_ABI_BYTES = 7 * 32
"""One LotRegistration in registerLots calldata: seven static words."""
ECRECOVER_GAS = 3_000
LOG_GAS = 375
LOG_TOPIC_GAS = 375
LOG_DATA_BYTE_GAS = 8

SEED = 20_261_124
SITE = "SH2"
FACE = "F3"
COMMODITY = "CU-ORE"
TRUCK_INTERVAL_S = 7 * 60
FUNDING_WEI = 10**21
ETH_TESTER_CHAIN_ID = 131_277_322_940_537
"""eth-tester's chain id; anvil is started with it, so EIP-712 signatures (and so calldata) match."""


# ---------------------------------------------------------------------------- minimum gas


@dataclass(frozen=True)
class Writes:
    """What an operation's rules force it to do to storage, and how many signatures they make it check."""

    new_slots: int = 0
    updated_slots: int = 0
    cleared_slots: int = 0
    signatures: int = 0


@dataclass(frozen=True)
class Minimum:
    """The least gas a transaction could use given its calldata, the writes its rules need, and its logs."""

    zero_bytes: int
    nonzero_bytes: int
    writes: Writes
    logs: int
    topics: int
    log_data_bytes: int

    @classmethod
    def of(cls, tx_input: bytes, receipt: TxReceipt, writes: Writes) -> Minimum:
        zero_bytes = tx_input.count(0)
        return cls(
            zero_bytes=zero_bytes,
            nonzero_bytes=len(tx_input) - zero_bytes,
            writes=writes,
            logs=len(receipt["logs"]),
            topics=sum(len(log["topics"]) for log in receipt["logs"]),
            log_data_bytes=sum(len(log["data"]) for log in receipt["logs"]),
        )

    @property
    def calldata_gas(self) -> int:
        return self.zero_bytes * CALLDATA_ZERO_GAS + self.nonzero_bytes * CALLDATA_NONZERO_GAS

    @property
    def floor_gas(self) -> int:
        tokens = self.zero_bytes + NONZERO_BYTE_TOKENS * self.nonzero_bytes
        return TX_BASE_GAS + FLOOR_GAS_PER_TOKEN * tokens

    @property
    def storage_gas(self) -> int:
        w = self.writes
        return w.new_slots * NEW_SLOT_GAS + (w.updated_slots + w.cleared_slots) * COLD_UPDATE_GAS

    @property
    def log_gas(self) -> int:
        return self.logs * LOG_GAS + self.topics * LOG_TOPIC_GAS + self.log_data_bytes * LOG_DATA_BYTE_GAS

    @property
    def before_refund(self) -> int:
        signature_gas = self.writes.signatures * ECRECOVER_GAS
        return TX_BASE_GAS + self.calldata_gas + self.storage_gas + signature_gas + self.log_gas

    @property
    def refund(self) -> int:
        return min(self.writes.cleared_slots * CLEAR_REFUND_GAS, self.before_refund // MAX_REFUND_QUOTIENT)

    @property
    def total(self) -> int:
        return max(self.before_refund - self.refund, self.floor_gas)

    def arithmetic(self) -> str:
        """The sum written out, as docs/benchmarks.md shows it."""
        w = self.writes
        terms = [
            f"{TX_BASE_GAS:,}",
            f"calldata {self.calldata_gas:,} ({self.nonzero_bytes} non-zero B x {CALLDATA_NONZERO_GAS}"
            f" + {self.zero_bytes} zero B x {CALLDATA_ZERO_GAS})",
        ]
        if w.new_slots:
            terms.append(f"{w.new_slots} new slot{_s(w.new_slots)} x {NEW_SLOT_GAS:,}")
        if w.updated_slots:
            terms.append(f"{w.updated_slots} cold update{_s(w.updated_slots)} x {COLD_UPDATE_GAS:,}")
        if w.cleared_slots:
            terms.append(f"{w.cleared_slots} clear{_s(w.cleared_slots)} x {COLD_UPDATE_GAS:,}")
        if w.signatures:
            terms.append(f"{w.signatures} ecrecover x {ECRECOVER_GAS:,}")
        terms.append(
            f"logs {self.log_gas:,} ({self.logs} x {LOG_GAS} + {self.topics} topics x {LOG_TOPIC_GAS}"
            f" + {self.log_data_bytes} B x {LOG_DATA_BYTE_GAS})"
        )
        text = " + ".join(terms)
        if self.refund:
            text += f" - refund {self.refund:,}"
        text += f" = {self.total:,}"
        if self.floor_gas >= self.before_refund - self.refund:
            text += f" (the EIP-7623 floor {self.floor_gas:,} applies)"
        else:
            text += f" (EIP-7623 floor {self.floor_gas:,} is lower)"
        return text


def _s(count: int) -> str:
    return "" if count == 1 else "s"


@dataclass(frozen=True)
class Measurement:
    key: str
    """Its key in the JSON line."""
    label: str
    gas_used: int
    minimum: Minimum
    units: int = 1
    """How many lots or tokens the transaction's gas is shared by."""

    @property
    def per_unit(self) -> float:
        return self.gas_used / self.units

    @property
    def minimum_per_unit(self) -> float:
        return self.minimum.total / self.units

    @property
    def overhead_pct(self) -> float:
        return 100 * (self.gas_used - self.minimum.total) / self.minimum.total


# ---------------------------------------------------------------------------- the chain under test


@dataclass(frozen=True)
class Chain:
    """A web3 connection and how to give an account ether on it."""

    name: str
    w3: Web3
    fund: Callable[[str], None]


def eth_tester_chain() -> Chain:
    w3 = Web3(EthereumTesterProvider())
    if w3.eth.chain_id != ETH_TESTER_CHAIN_ID:
        raise RuntimeError(f"eth-tester's chain id is now {w3.eth.chain_id}; update ETH_TESTER_CHAIN_ID")
    faucet = w3.eth.accounts[0]

    def fund_account(address: str) -> None:
        tx_hash = w3.eth.send_transaction({"from": faucet, "to": address, "value": Wei(FUNDING_WEI)})
        w3.eth.wait_for_transaction_receipt(tx_hash)

    return Chain("eth-tester", w3, fund_account)


def anvil_chain(node: AnvilNode) -> Chain:
    w3 = node.start()
    return Chain("anvil", w3, lambda address: fund(w3, address, FUNDING_WEI))


def bench_account(role: str) -> LocalAccount:
    """A fixed key per role, so both backends see byte-identical transactions. Bench keys only."""
    account: LocalAccount = Account.from_key(keccak(text=f"mineral-provenance bench/gas.py {role}"))
    return account


def sign_with_gas_limit(w3: Web3, call: Any, sender: LocalAccount, gas: int) -> bytes:
    """The signed raw transaction, with an explicit gas limit (so no estimate, which would refuse to fail)."""
    params: TxParams = {
        "from": sender.address,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
        "gas": gas,
    }
    return bytes(sender.sign_transaction(call.build_transaction(params)).raw_transaction)


# ---------------------------------------------------------------------------- realistic inputs


class Scenario:
    """Truckloads from face F3 of site SH2, seeded so that every run sends the same bytes."""

    def __init__(self, now: int) -> None:
        self.now = now
        self.day = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d")
        self._random = random.Random(SEED)
        self._serial = 0

    def record_hash(self) -> bytes:
        return self._random.randbytes(32)

    def lots(self, count: int, truck: str = "T07") -> list[LotRegistration]:
        lots = []
        for i in range(count):
            self._serial += 1
            lots.append(
                LotRegistration(
                    lot_id=f"{SITE}-{self.day}-{truck}-{self._serial:05d}",
                    site=SITE,
                    face=FACE,
                    commodity=COMMODITY,
                    mass_g=self._random.randint(20_000_000, 40_000_000),
                    grade_ppm=self._random.randint(6_000, 18_000),
                    extracted_at=self.now - (count - i) * TRUCK_INTERVAL_S,
                    record_hash=self.record_hash(),
                )
            )
        return lots

    def output(self, lot_id: str, mass_g: int, grade_ppm: int) -> TransformOutput:
        return TransformOutput(lot_id, COMMODITY, mass_g, grade_ppm, self.record_hash())

    def transformation(
        self,
        kind: TransformKind,
        inputs: Sequence[LotRegistration],
        outputs: Sequence[TransformOutput],
        loss_g: int,
    ) -> Transformation:
        """Consumes each input whole."""
        consumed = tuple(TransformInput(lot.lot_id, lot.mass_g) for lot in inputs)
        return Transformation(kind, SITE, consumed, tuple(outputs), loss_g, self.record_hash())


# ---------------------------------------------------------------------------- OpenZeppelin harnesses


@dataclass(frozen=True)
class Harnesses:
    erc721: dict[str, Any]
    erc1155: dict[str, Any]
    compiler_version: str


def compile_harnesses() -> Harnesses:
    """OpenZeppelin's ERC721 and ERC1155 from node_modules, with the registry's pinned compiler and settings."""
    solc = compiler.find_compiler(REPO_ROOT)
    standard_input = compiler.standard_input(REPO_ROOT, HARNESS_SOURCE)
    output = solcx.compile_standard(standard_input, solc_binary=solc.executable)
    contracts = output["contracts"][HARNESS_SOURCE]

    def pick(name: str) -> dict[str, Any]:
        return {
            "abi": contracts[name]["abi"],
            "bytecode": "0x" + contracts[name]["evm"]["bytecode"]["object"],
        }

    return Harnesses(pick("OzErc721MintHarness"), pick("OzErc1155MintHarness"), solc.version)


def token_id(lot_id: str) -> int:
    """A lot as an OpenZeppelin token: its bytes32 label read as a uint256."""
    return int.from_bytes(encode_label(lot_id, "lot_id"), "big")


# ---------------------------------------------------------------------------- the run


@dataclass
class Run:
    chain: str
    measurements: dict[str, Measurement]
    extras: dict[str, Any]
    sent: list[tuple[str, int]]
    """Every transaction the run sent, with its gas: what `--anvil` compares."""


@dataclass(frozen=True)
class Registered:
    """Lots the registration step made, for the steps after it to transform and sell."""

    single: LotRegistration
    batch1: LotRegistration
    batch10: list[LotRegistration]
    batch100: list[LotRegistration]


class Bench:
    """One pass over every operation on one chain, from a fresh registry."""

    registry: RegistryClient

    def __init__(self, chain: Chain, now: int) -> None:
        self.chain = chain
        self.w3 = chain.w3
        self.scenario = Scenario(now)
        self.admin, self.buyer, self.lab, self.device = (
            bench_account(role) for role in ("admin", "buyer", "lab", "device")
        )
        self.run = Run(chain.name, {}, {}, [])

    def record(self, label: str, receipt: TxReceipt) -> TxReceipt:
        self.run.sent.append((label, int(receipt["gasUsed"])))
        return receipt

    def measure(self, key: str, label: str, receipt: TxReceipt, writes: Writes, units: int = 1) -> None:
        self.record(label, receipt)
        tx_input = bytes(self.w3.eth.get_transaction(receipt["transactionHash"])["input"])
        minimum = Minimum.of(tx_input, receipt, writes)
        self.run.measurements[key] = Measurement(key, label, int(receipt["gasUsed"]), minimum, units)

    def execute(self, harnesses: Harnesses) -> Run:
        for account in (self.admin, self.buyer, self.lab):
            self.chain.fund(account.address)
        self.registry = self.deploy_registry()
        registered = self.registration()
        self.transformations(registered)
        self.custody_and_records(registered.batch100[0])
        self.attested_registration()
        self.openzeppelin(harnesses)
        self.largest_batch()
        return self.run

    def deploy_registry(self) -> RegistryClient:
        admin = self.admin
        registry, receipt = RegistryClient.deploy(self.w3, admin)
        self.run.extras["registry_deploy_gas"] = int(self.record("deploy registry", receipt)["gasUsed"])
        processor_role, lab_role = registry.role("PROCESSOR_ROLE"), registry.role("LAB_ROLE")
        self.record(
            "grant registrar", registry.grant_role(admin, registry.registrar_role(SITE), admin.address)
        )
        self.record("grant processor", registry.grant_role(admin, processor_role, admin.address))
        self.record("grant lab", registry.grant_role(admin, lab_role, self.lab.address))
        self.record("add device", registry.add_device(admin, self.device.address, SITE, "HAUL-TRUCK"))
        return registry

    def registration(self) -> Registered:
        """One new slot per lot, whatever the batch size."""
        registry, admin, scenario = self.registry, self.admin, self.scenario
        single = scenario.lots(1)
        receipt = registry.register_lots(admin, single)
        self.measure("register_single_gas", "register 1 lot (registerLot)", receipt, Writes(new_slots=1))
        batch1 = scenario.lots(1)
        site = encode_label(SITE, "site")
        receipt = registry.transact(admin, "registerLots", site, [registration_tuple(batch1[0])])
        self.measure("register_batch1_gas", "registerLots, batch of 1", receipt, Writes(new_slots=1))
        batches = []
        for size in (10, 100):
            lots = scenario.lots(size)
            receipt = registry.register_lots(admin, lots)
            key, label = f"register_batch{size}_gas_per_lot", f"registerLots, batch of {size}, per lot"
            self.measure(key, label, receipt, Writes(new_slots=size), size)
            batches.append(lots)
        return Registered(single[0], batch1[0], *batches)

    def transformations(self, registered: Registered) -> None:
        """Each input's slot changes (remaining mass), each output takes a new slot."""
        registry, admin, scenario = self.registry, self.admin, self.scenario
        # The registry's first transformation also sets its counter from zero: the steady state comes after.
        crushed = registered.batch1
        loss_g = crushed.mass_g // 100
        output = scenario.output(f"{crushed.lot_id}-CR", crushed.mass_g - loss_g, crushed.grade_ppm)
        first = scenario.transformation(TransformKind.PROCESS, [crushed], [output], loss_g)
        receipt = self.record("first transform", registry.transform(admin, first))
        self.run.extras["first_transform_gas"] = int(receipt["gasUsed"])

        parent = registered.single
        loss_g = parent.mass_g // 200
        coarse_g = parent.mass_g * 3 // 5
        outputs = [
            scenario.output(f"{parent.lot_id}-A", coarse_g, parent.grade_ppm),
            scenario.output(f"{parent.lot_id}-B", parent.mass_g - coarse_g - loss_g, parent.grade_ppm),
        ]
        split = scenario.transformation(TransformKind.SPLIT, [parent], outputs, loss_g)
        receipt = registry.transform(admin, split)
        writes = Writes(new_slots=2, updated_slots=1)
        self.measure("transform_1_to_2_gas", "transform: split 1 -> 2", receipt, writes)

        left, right = registered.batch10[:2]
        merged_g = left.mass_g + right.mass_g
        grade_ppm = (left.grade_ppm * left.mass_g + right.grade_ppm * right.mass_g) // merged_g
        output = scenario.output(f"{SITE}-{scenario.day}-STOCK-00001", merged_g, grade_ppm)
        merge = scenario.transformation(TransformKind.MERGE, [left, right], [output], 0)
        receipt = registry.transform(admin, merge)
        self.measure(
            "merge_2_to_1_gas", "transform: merge 2 -> 1", receipt, Writes(new_slots=1, updated_slots=2)
        )

    def custody_and_records(self, sold: LotRegistration) -> None:
        registry, admin, buyer, scenario = self.registry, self.admin, self.buyer, self.scenario
        # An offer takes a new pending slot; withdrawing clears it; accepting changes the custodian and clears it.
        receipt = registry.hand_over(admin, [sold.lot_id], buyer.address)
        self.measure("handover_gas", "hand over 1 lot", receipt, Writes(new_slots=1))
        receipt = registry.cancel_handover(admin, [sold.lot_id])
        self.measure("cancel_gas", "cancel a hand-over", receipt, Writes(cleared_slots=1))
        self.record("hand over again", registry.hand_over(admin, [sold.lot_id], buyer.address))
        receipt = registry.accept_handover(buyer, [sold.lot_id])
        writes = Writes(updated_slots=1, cleared_slots=1)
        self.measure("accept_gas", "accept 1 lot", receipt, writes)

        # The assay's digest is stored so that it cannot be replayed: one new slot and one signature.
        assay = Assay(
            sold.lot_id, sold.grade_ppm + 140, "ICP-OES", scenario.record_hash(), scenario.now - 600
        )
        receipt = registry.submit_assay(buyer, assay, registry.sign_assay(self.lab, assay))
        writes = Writes(new_slots=1, signatures=1)
        self.measure("assay_gas", "submit a lab assay (EIP-712)", receipt, writes)
        ticket_hash = scenario.record_hash()
        receipt = registry.anchor_document(buyer, sold.lot_id, "WEIGHBRIDGE-TICKET", ticket_hash)
        self.measure("anchor_document_gas", "anchor a document hash", receipt, Writes())

    def attested_registration(self) -> None:
        """Registration plus one device signature per lot."""
        lots = self.scenario.lots(100, truck="T08")
        attestations = []
        for number, lot in enumerate(lots, start=1):
            trip_id = f"T08-{self.scenario.day}-{number:04d}"
            loaded_at = lot.extracted_at + 60
            chain_id = self.w3.eth.chain_id
            signature = sign_load(self.device, chain_id, self.registry.address, lot, trip_id, loaded_at)
            attestations.append(LoadAttestation(trip_id, loaded_at, signature))
        receipt = self.registry.register_attested_lots(self.admin, lots, attestations)
        writes = Writes(new_slots=100, signatures=100)
        self.measure(
            "attested_batch100_gas_per_lot", "registerAttestedLots, 100, per lot", receipt, writes, 100
        )

    def openzeppelin(self, harnesses: Harnesses) -> None:
        """One token per lot: the lot id as token id, and for ERC1155 the lot's mass as the amount."""
        w3, admin = self.w3, self.admin
        erc721 = self.deploy_harness("deploy OZ ERC721", harnesses.erc721)
        erc1155 = self.deploy_harness("deploy OZ ERC1155", harnesses.erc1155)
        first, second = (token_id(lot.lot_id) for lot in self.scenario.lots(2, truck="T09"))
        # A holder's first token also sets its balance from zero; after that the balance slot only changes.
        receipt = send(w3, erc721.functions.mint(admin.address, first), admin)
        self.measure(
            "oz_erc721_first_mint_gas", "OZ ERC721 _mint, holder's first", receipt, Writes(new_slots=2)
        )
        receipt = send(w3, erc721.functions.mint(admin.address, second), admin)
        self.measure("oz_erc721_mint_gas", "OZ ERC721 _mint", receipt, Writes(new_slots=1, updated_slots=1))
        lots = self.scenario.lots(100, truck="T10")
        ids, amounts = [token_id(lot.lot_id) for lot in lots], [lot.mass_g for lot in lots]
        receipt = send(w3, erc1155.functions.mintBatch(admin.address, ids, amounts), admin)
        key, label = "oz_erc1155_batch100_gas_per_token", "OZ ERC1155 _mintBatch of 100, per token"
        self.measure(key, label, receipt, Writes(new_slots=100), 100)

    def deploy_harness(self, label: str, contract: dict[str, Any]) -> Contract:
        factory = self.w3.eth.contract(abi=contract["abi"], bytecode=contract["bytecode"])
        receipt = self.record(label, send(self.w3, factory.constructor(), self.admin))
        return cast(Contract, self.w3.eth.contract(address=receipt["contractAddress"], abi=contract["abi"]))

    def largest_batch(self) -> None:
        """The most lots one registerLots can carry: under the 2^24 gas cap (predicted from the marginal
        gas, then shown by sending that batch and one lot more), and under the 128 KiB transaction
        size that geth's and reth's pools accept (shown by signing batches around it)."""
        measured = self.run.measurements
        ten = measured["register_batch10_gas_per_lot"].gas_used
        hundred = measured["register_batch100_gas_per_lot"].gas_used
        marginal = (hundred - ten) / 90
        fixed = hundred - 100 * marginal
        site = encode_label(SITE, "site")

        def signed(size: int) -> bytes:
            lots = [registration_tuple(lot) for lot in self.scenario.lots(size, truck="T11")]
            call = self.registry.contract.functions.registerLots(site, lots)
            return sign_with_gas_limit(self.w3, call, self.admin, TX_GAS_CAP)

        def attempt(size: int) -> TxReceipt:
            tx_hash = self.w3.eth.send_raw_transaction(signed(size))
            return self.record(
                f"batch of {size} at the cap", self.w3.eth.wait_for_transaction_receipt(tx_hash)
            )

        count = int((TX_GAS_CAP - fixed) // marginal)
        fits = attempt(count)
        if fits["status"] == 1:
            while (beyond := attempt(count + 1))["status"] == 1:
                count, fits = count + 1, beyond
        else:  # the prediction itself is one too many, so count + 1 is known to fail
            count -= 1
            while (fits := attempt(count))["status"] != 1:
                count -= 1
        assert int(fits["gasUsed"]) <= TX_GAS_CAP

        over = len(signed(count)) - TXPOOL_MAX_TX_BYTES
        by_size = count - max(0, -(-over // REGISTRATION_ABI_BYTES))
        while len(signed(by_size)) > TXPOOL_MAX_TX_BYTES:
            by_size -= 1
        while by_size < count and len(signed(by_size + 1)) <= TXPOOL_MAX_TX_BYTES:
            by_size += 1
        self.run.extras.update(
            marginal_gas_per_lot=round(marginal, 2),
            fixed_gas_per_batch=round(fixed),
            max_lots_per_tx=count,
            max_lots_tx_gas=int(fits["gasUsed"]),
            max_lots_tx_bytes=len(signed(count)),
            max_lots_per_tx_128kib=by_size,
        )


# ---------------------------------------------------------------------------- report


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def json_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 2)


def print_run(run: Run) -> None:
    print(f"\n== {run.chain}: gasUsed from receipts; per-lot rows divide one transaction by its lots ==")
    print(f"{'operation':<42}{'measured':>12}{'minimum':>12}{'overhead':>11}{'%':>9}")
    for m in run.measurements.values():
        overhead = m.per_unit - m.minimum_per_unit
        print(
            f"{m.label:<42}{number(m.per_unit):>12}{number(m.minimum_per_unit):>12}"
            f"{number(overhead):>11}{m.overhead_pct:>8.1f}%"
        )
    print("\nminimum of each transaction, from its calldata, its rules' writes and its receipt's logs:")
    for m in run.measurements.values():
        per_unit = f"; / {m.units} = {number(m.minimum_per_unit)} each" if m.units > 1 else ""
        print(f"  {m.label}: {m.minimum.arithmetic()}{per_unit}")
    e = run.extras
    print(
        f"\nregistry deployment: {e['registry_deploy_gas']:,} gas; the first transformation on a fresh registry: "
        f"{e['first_transform_gas']:,} (its counter goes 0 -> 1; the figures above are after it)"
    )
    print("\nOpenZeppelin beside the registry, per token / per lot:")
    for key, label in (
        ("oz_erc721_mint_gas", "OZ ERC721 _mint (holder has tokens)"),
        ("oz_erc721_first_mint_gas", "OZ ERC721 _mint (holder's first token)"),
        ("register_single_gas", "registry: register 1 lot"),
        ("oz_erc1155_batch100_gas_per_token", "OZ ERC1155 _mintBatch of 100, per token"),
        ("register_batch100_gas_per_lot", "registry: batch of 100, per lot"),
    ):
        print(f"  {label:<44}{number(run.measurements[key].per_unit):>12}")
    print(
        f"\nEIP-7825 cap {TX_GAS_CAP:,}: marginal {number(e['marginal_gas_per_lot'])} gas per lot, "
        f"{e['fixed_gas_per_batch']:,} per batch; the largest batch that fits is {e['max_lots_per_tx']} lots "
        f"(sent with gas limit 2^24: used {e['max_lots_tx_gas']:,}; {e['max_lots_per_tx'] + 1} lots ran out of gas)"
    )
    print(
        f"txpool size limit {TXPOOL_MAX_TX_BYTES:,} B (geth, reth): {e['max_lots_per_tx']} lots sign to "
        f"{e['max_lots_tx_bytes']:,} B; the largest batch a public pool accepts is {e['max_lots_per_tx_128kib']} lots"
    )


def compare(first: Run, second: Run) -> list[str]:
    """Every transaction whose gas differs between two runs."""
    if len(first.sent) != len(second.sent):
        return [f"{first.chain} sent {len(first.sent)} transactions, {second.chain} {len(second.sent)}"]
    return [
        f"{label}: {first.chain} {a:,}, {second.chain} {b:,}"
        for (label, a), (_, b) in zip(first.sent, second.sent, strict=True)
        if a != b
    ]


def artifact_is_fresh() -> bool:
    """Whether the committed registry artifact was built from the sources on disk now."""
    committed = json.loads(compiler.INPUT_PATH.read_text(encoding="utf-8"))["sources"]
    return bool(committed == compiler.standard_input(REPO_ROOT)["sources"])


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    models = [
        line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
    ]
    cpu = models[0] if models else platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def print_header(now: int, harnesses: Harnesses, fresh: bool) -> None:
    artifact = registry_artifact()
    settings = artifact.settings
    oz_version = json.loads(OZ_PACKAGE.read_text(encoding="utf-8"))["version"]
    print(f"bench/gas.py, {datetime.fromtimestamp(now, UTC):%Y-%m-%d %H:%M} UTC, {machine()}")
    print(
        f"registry artifact: solc {artifact.compiler_version}, evm {settings['evmVersion']}, "
        f"optimizer {settings['optimizer']['runs']:,} runs, viaIR {settings['viaIR']}; "
        + (
            "built from the sources on disk"
            if fresh
            else "STALE: contracts/ changed since; run `provenance compile`"
        )
    )
    print(f"OpenZeppelin contracts {oz_version}, harnesses compiled with solc {harnesses.compiler_version}")


def verdicts(run: Run) -> dict[str, bool]:
    measured = run.measurements
    targets = (
        ("register_single_pass", "register 1 lot", "register_single_gas", TARGET_SINGLE_GAS),
        (
            "register_batch100_pass",
            "register a batch of 100, per lot",
            "register_batch100_gas_per_lot",
            TARGET_BATCH100_GAS_PER_LOT,
        ),
    )
    results = {}
    for key, label, measurement, target in targets:
        gas = measured[measurement].per_unit
        results[key] = gas <= target
        print(f"{'PASS' if results[key] else 'FAIL'} {label}: {number(gas)} gas (target <= {target:,})")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--anvil", action="store_true", help="also run on anvil from node_modules and compare"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="eth-tester only (no --anvil): that it runs; the same sizes"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.anvil = False

    started = time.monotonic()
    now = int(time.time())
    harnesses = compile_harnesses()
    fresh = artifact_is_fresh()
    print_header(now, harnesses, fresh)

    runs = [Bench(eth_tester_chain(), now).execute(harnesses)]
    if args.anvil:
        node = AnvilNode(extra_args=("--chain-id", str(ETH_TESTER_CHAIN_ID)))
        try:
            runs.append(Bench(anvil_chain(node), now).execute(harnesses))
        finally:
            node.stop()
    for run in runs:
        print_run(run)

    print()
    main_run = runs[0]
    results = verdicts(main_run)
    differences = compare(runs[0], runs[1]) if len(runs) > 1 else []
    if len(runs) > 1:
        total = len(main_run.sent)
        if differences:
            print(
                f"FAIL anvil's gas differs from eth-tester's on {len(differences)} of {total} transactions:"
            )
        else:
            print(f"PASS anvil used the same gas as eth-tester on all {total} transactions")
        for line in differences:
            print(f"  {line}")
    print(f"({time.monotonic() - started:.0f} s)")

    summary: dict[str, Any] = {key: json_number(item.per_unit) for key, item in main_run.measurements.items()}
    summary["minimum_gas"] = {
        key: json_number(item.minimum_per_unit) for key, item in main_run.measurements.items()
    }
    summary.update(main_run.extras)
    summary.update(results)
    summary["registry_artifact_fresh"] = fresh
    summary["anvil_identical"] = not differences if len(runs) > 1 else None
    print(json.dumps(summary))
    return 0 if all(results.values()) and not differences else 1


if __name__ == "__main__":
    raise SystemExit(main())
