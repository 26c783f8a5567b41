"""Small registry histories on the in-process eth-tester chain, for the index's unit tests.

eth-tester's eth_getLogs is quadratic in the chain's length, so each test gets a fresh, short
chain (a deployment and a few role grants) and builds only the history it needs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester
from sqlalchemy import Engine
from web3 import EthereumTesterProvider, Web3
from web3.types import TxReceipt

from provenance.chain.client import RegistryClient
from provenance.chain.deployment import Deployment, deploy_registry
from provenance.chain.logsource import RpcLogSource
from provenance.chain.signing import sign_load
from provenance.domain.records import (
    Assay,
    LoadAttestation,
    LotRegistration,
    Transformation,
    TransformInput,
    TransformOutput,
)
from provenance.domain.values import CorrectionReason, TransformKind, encode_label
from provenance.index.indexer import Indexer

SITE = "PIT-A"
EXTRACTED_AT = 1_700_000_000


def record(text: str) -> bytes:
    """A 32-byte record hash that names what it stands for."""
    return hashlib.sha256(text.encode()).digest()


def hex32(text: str) -> str:
    return "0x" + record(text).hex()


@dataclass
class IndexChain:
    """A fresh eth-tester chain with the registry deployed and the actors' roles granted."""

    w3: Web3
    tester: EthereumTester
    client: RegistryClient
    deployment: Deployment
    admin: str
    registrar: str
    processor: str
    buyer: str
    lab: LocalAccount
    device: LocalAccount

    @classmethod
    def fresh(cls) -> IndexChain:
        w3 = Web3(EthereumTesterProvider())
        tester: EthereumTester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
        admin, registrar, processor, buyer = w3.eth.accounts[:4]
        client, deployment = deploy_registry(w3, admin)
        client.grant_role(admin, client.registrar_role(SITE), registrar)
        client.grant_role(admin, client.role("PROCESSOR_ROLE"), processor)
        lab: LocalAccount = Account.create()
        device: LocalAccount = Account.create()
        client.grant_role(admin, client.role("LAB_ROLE"), lab.address)
        return cls(w3, tester, client, deployment, admin, registrar, processor, buyer, lab, device)

    # ---------------------------------------------------------------- the index side

    def source(self) -> RpcLogSource:
        return RpcLogSource(self.w3, self.client.address)

    def indexer(self, engine: Engine, **options: Any) -> Indexer:
        return Indexer(engine, self.source(), self.deployment, **options)

    @property
    def head(self) -> int:
        return int(self.w3.eth.block_number)

    # ---------------------------------------------------------------- operations

    def lot(self, lot_id: str, mass_g: int, *, grade_ppm: int = 5_000, face: str = "F1") -> LotRegistration:
        return LotRegistration(lot_id, SITE, face, "Au-ore", mass_g, grade_ppm, EXTRACTED_AT, record(lot_id))

    def register(self, *lots: LotRegistration) -> TxReceipt:
        return self.client.register_lots(self.registrar, lots)

    def register_attested(self, lot: LotRegistration, trip_id: str, loaded_at: int) -> TxReceipt:
        signature = sign_load(self.device, self.client.chain_id, self.client.address, lot, trip_id, loaded_at)
        return self.client.register_attested_lots(
            self.registrar, [lot], [LoadAttestation(trip_id, loaded_at, signature)]
        )

    def transform(
        self,
        kind: TransformKind,
        inputs: list[tuple[str, int]],
        outputs: list[tuple[str, int]],
        loss_g: int,
        *,
        sender: str | None = None,
    ) -> TxReceipt:
        transformation = Transformation(
            kind,
            SITE,
            tuple(TransformInput(lot_id, mass) for lot_id, mass in inputs),
            tuple(
                TransformOutput(lot_id, "Au-conc", mass, 9_000, record(lot_id)) for lot_id, mass in outputs
            ),
            loss_g,
            record(f"{kind.name}:{inputs}->{outputs}"),
        )
        return self.client.transform(sender or self.processor, transformation)

    def hand_to_processor(self, *lot_ids: str) -> None:
        self.client.hand_over(self.registrar, lot_ids, self.processor)
        self.client.accept_handover(self.processor, lot_ids)

    def assay(self, lot_id: str, grade_ppm: int, method: str = "FireAssay") -> Assay:
        assay = Assay(lot_id, grade_ppm, method, record(f"certificate {lot_id}"), EXTRACTED_AT + 7200)
        self.client.submit_assay(self.buyer, assay, self.client.sign_assay(self.lab, assay))
        return assay

    def stock_count(self, counted_g: int, counted_at: int) -> TxReceipt:
        return self.client.transact(
            self.registrar, "recordStockCount", encode_label(SITE), counted_g, counted_at, record("count")
        )

    def revoke_role(self, role: bytes, account: str) -> TxReceipt:
        return self.client.transact(self.admin, "revokeRole", role, account)

    def correct(self, sender: str, lot_id: str, reason: CorrectionReason, adjustment_g: int) -> TxReceipt:
        return self.client.correct_lot(sender, lot_id, reason, adjustment_g, record(f"correction {lot_id}"))


@dataclass(frozen=True)
class FullHistory:
    """What `full_history` did, for the assertions."""

    device_added_block: int
    device_revoked_block: int
    lab_granted_block: int
    lab_revoked_block: int


def full_history(chain: IndexChain) -> FullHistory:
    """Every registry event at least once:

    A1 (1000 g) and A2 (2000 g) registered together; A3 (3000 g) measured by a device on TRIP-7.
    All three handed to the processor (A3's first offer cancelled, then offered again).
    Merge A1 1000 g + A2 1500 g -> M1 2400 g, 100 g lost.
    Process A3 3000 g + M1 2400 g -> P1 3000 g + P2 2000 g, 400 g lost.
    P1 assayed (4800 ppm), a weighbridge ticket anchored, P1 sold to the buyer; P2 offered to the
    buyer (pending) and corrected by -100 g; A2 voided (did not occur); a stock count; the device
    and the lab's role revoked; a pause and an unpause.
    """
    c = chain
    c.register(c.lot("A1", 1_000), c.lot("A2", 2_000))
    device_added = c.client.add_device(c.admin, c.device.address, SITE, "haul-truck")
    c.register_attested(c.lot("A3", 3_000, face="F2"), "TRIP-7", EXTRACTED_AT + 60)
    c.client.hand_over(c.registrar, ["A1", "A2", "A3"], c.processor)
    c.client.cancel_handover(c.registrar, ["A3"])
    c.client.hand_over(c.registrar, ["A3"], c.processor)
    c.client.accept_handover(c.processor, ["A1", "A2", "A3"])
    c.transform(TransformKind.MERGE, [("A1", 1_000), ("A2", 1_500)], [("M1", 2_400)], 100)
    c.transform(TransformKind.PROCESS, [("A3", 3_000), ("M1", 2_400)], [("P1", 3_000), ("P2", 2_000)], 400)
    c.assay("P1", 4_800)
    c.client.anchor_document(c.processor, "P1", "weighbridge", record("ticket P1"))
    c.client.hand_over(c.processor, ["P1"], c.buyer)
    c.client.accept_handover(c.buyer, ["P1"])
    c.client.hand_over(c.processor, ["P2"], c.buyer)
    c.correct(c.processor, "P2", CorrectionReason.INCORRECT_DATA, -100)
    c.correct(c.admin, "A2", CorrectionReason.DID_NOT_OCCUR, -500)
    c.stock_count(5_000, EXTRACTED_AT + 86_400)
    device_revoked = c.client.revoke_device(c.admin, c.device.address)
    lab_revoked = c.revoke_role(c.client.role("LAB_ROLE"), c.lab.address)
    c.client.transact(c.admin, "pause")
    c.client.transact(c.admin, "unpause")
    return FullHistory(
        device_added_block=device_added["blockNumber"],
        device_revoked_block=device_revoked["blockNumber"],
        lab_granted_block=c.deployment.block_number + 3,
        lab_revoked_block=lab_revoked["blockNumber"],
    )


def chain_on(w3: Web3) -> IndexChain:
    """`IndexChain.fresh()`'s deployment and roles on any node with unlocked accounts (anvil):
    eth-tester's eth_getLogs takes seconds per lot, so what reads many logs runs on anvil."""
    admin, registrar, processor, buyer = w3.eth.accounts[:4]
    client, deployment = deploy_registry(w3, admin)
    client.grant_role(admin, client.registrar_role(SITE), registrar)
    client.grant_role(admin, client.role("PROCESSOR_ROLE"), processor)
    lab: LocalAccount = Account.create()
    device: LocalAccount = Account.create()
    client.grant_role(admin, client.role("LAB_ROLE"), lab.address)
    tester: Any = None  # eth-tester's handle; nothing on anvil uses it
    return IndexChain(w3, tester, client, deployment, admin, registrar, processor, buyer, lab, device)
