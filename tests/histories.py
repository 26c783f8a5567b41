"""Realistic registry histories, written fast, for the integration tests and the benchmarks.

A history is a sequence of rounds. Each round queues the transactions of every actor (registrar,
processor, buyer, lab via its signatures) and mines them into one or more blocks with anvil's
automine off, so blocks hold several transactions and logs are numbered per block as on a real
chain. Transactions are signed locally, nonces are managed here and nothing waits for a receipt
until the round is mined; then every receipt is checked, so a history never silently diverges
from the model it was built from.

Within a round, one actor's transactions depend on each other only through its own nonce order;
anything that needs another actor's transaction (an offer before its acceptance, an acceptance
before a transformation) waits for the next round.

The benchmark imports this module too (`bench/index.py` puts the repository root on sys.path),
so there is one history builder, not two.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from hexbytes import HexBytes
from web3 import Web3

from provenance.chain.artifacts import registry_artifact
from provenance.chain.client import RegistryClient, assay_tuple, registration_tuple
from provenance.chain.deployment import Deployment, deploy_registry
from provenance.chain.node import fund
from provenance.chain.signing import sign_assay, sign_load
from provenance.domain.records import Assay, LotRegistration
from provenance.domain.values import CorrectionReason, TransformKind, encode_label

TX_GAS_CAP = 2**24
"""EIP-7825: no transaction may ask for more gas than this."""
MAX_FEE_WEI = 50 * 10**9
PRIORITY_FEE_WEI = 10**9
BATCH_LOTS = 350
"""Lots per registration (and ids per handover) transaction: fits under TX_GAS_CAP with headroom."""

SITES = ("KALGOORLIE", "PILBARA-N", "OLYMPIC-DAM")
COMMODITIES = ("Au-ore", "Cu-ore", "Fe-ore")
FACES = ("F1", "F2", "F3", "PIT-A", "PIT-B")
METHODS = ("FireAssay", "XRF", "ICP-MS")


class HistoryError(AssertionError):
    """The chain did not do what the history builder meant it to."""


# ----------------------------------------------------------------------------------- encoding


@cache
def _functions() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    table: dict[str, tuple[bytes, tuple[str, ...]]] = {}
    for entry in registry_artifact().abi:
        if entry["type"] == "function":
            table[entry["name"]] = (
                function_abi_to_4byte_selector(entry),
                tuple(get_abi_input_types(entry)),
            )
    return table


def call_data(function: str, *args: Any) -> bytes:
    """ABI-encoded call of a registry function, straight through eth_abi (web3's path is slower)."""
    selector, types = _functions()[function]
    return selector + abi_encode(types, args)


def _gas(function: str, args: Sequence[Any]) -> int:
    """Gas to ask for: measured use plus a third. The receipts check catches an underestimate."""
    if function == "registerLots":
        need = 60_000 + 33_000 * len(args[1])
    elif function == "registerAttestedLots":
        need = 70_000 + 48_000 * len(args[1])
    elif function == "transform":
        need = 90_000 + 12_000 * len(args[2]) + 36_000 * len(args[3])
    elif function in ("handOver", "acceptHandover", "cancelHandover"):
        need = 50_000 + 32_000 * len(args[0])
    elif function in ("submitAssay", "addDevice"):
        need = 150_000
    else:
        need = 100_000
    gas = need * 4 // 3
    if gas >= TX_GAS_CAP:
        raise HistoryError(f"{function} would ask for {gas} gas, over the per-transaction cap")
    return gas


# ----------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class SentTx:
    tx_hash: str
    raw: bytes
    sender: str
    nonce: int
    function: str
    events: int
    gas: int


class ChainWriter:
    """Signs registry calls locally, queues them, and mines them in rounds with automine off."""

    def __init__(self, w3: Web3, registry: str) -> None:
        self.w3 = w3
        self.registry = Web3.to_checksum_address(registry)
        self.chain_id = w3.eth.chain_id
        self._nonces: dict[str, int] = {}
        self._queued: list[SentTx] = []
        self.sent: dict[str, SentTx] = {}
        self.block_of: dict[str, int] = {}
        """The block each sent transaction was mined in (before any reorg)."""
        self.events = 0
        """Registry events emitted by every mined transaction of this writer."""
        self.block_gas_limit = int(w3.eth.get_block("latest")["gasLimit"])
        self.rpc("evm_setAutomine", [False])

    def rpc(self, method: str, params: list[Any]) -> Any:
        answer = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in answer:
            raise HistoryError(f"{method}: {answer['error']}")
        return answer["result"]

    def nonce_of(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = int(self.rpc("eth_getTransactionCount", [address, "pending"]), 16)
        return self._nonces[address]

    def sign(self, sender: LocalAccount, function: str, args: Sequence[Any], *, nonce: int) -> bytes:
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": self.registry,
            "value": 0,
            "data": call_data(function, *args),
            "gas": _gas(function, args),
            "maxFeePerGas": MAX_FEE_WEI,
            "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
        }
        return bytes(sender.sign_transaction(tx).raw_transaction)

    def queue(self, sender: LocalAccount, function: str, args: Sequence[Any], *, events: int) -> SentTx:
        """Signs the call with the sender's next nonce; `events` is how many registry logs it emits."""
        nonce = self.nonce_of(sender.address)
        raw = self.sign(sender, function, args, nonce=nonce)
        self._nonces[sender.address] = nonce + 1
        sent = SentTx(
            Web3.keccak(raw).to_0x_hex(), raw, sender.address, nonce, function, events, _gas(function, args)
        )
        self._queued.append(sent)
        return sent

    def flush(self) -> range:
        """Sends what is queued, mines it, and checks every receipt; returns the block numbers mined.

        A block gets as many transactions as their gas limits allow: anvil drops, rather than
        defers, a pending transaction that no longer fits in the block it is building.
        """
        queued, self._queued = self._queued, []
        first = int(self.rpc("eth_blockNumber", []), 16) + 1
        block: list[SentTx] = []
        for sent in queued:
            if block and sum(item.gas for item in block) + sent.gas > self.block_gas_limit:
                self._mine(block)
                block = []
            block.append(sent)
        if block:
            self._mine(block)
        last = int(self.rpc("eth_blockNumber", []), 16)
        expected = {sent.tx_hash: sent for sent in queued}
        for number in range(first, last + 1):
            for receipt in self.rpc("eth_getBlockReceipts", [hex(number)]):
                sent = expected.pop(receipt["transactionHash"], None)
                if sent is None:
                    continue
                self.block_of[sent.tx_hash] = number
                if int(receipt["status"], 16) != 1:
                    raise HistoryError(f"{sent.function} from {sent.sender} (nonce {sent.nonce}) reverted")
                if len(receipt["logs"]) != sent.events:
                    raise HistoryError(
                        f"{sent.function} emitted {len(receipt['logs'])} logs, the model expected {sent.events}"
                    )
        if expected:
            missing = next(iter(expected.values()))
            raise HistoryError(
                f"{len(expected)} transactions were not mined, e.g. {missing.function} {missing.tx_hash}"
            )
        for sent in queued:
            self.sent[sent.tx_hash] = sent
            self.events += sent.events
        return range(first, last + 1)

    def _mine(self, block: list[SentTx]) -> None:
        for sent in block:
            self.rpc("eth_sendRawTransaction", [HexBytes(sent.raw).to_0x_hex()])
        self.rpc("evm_mine", [])
        status = self.rpc("txpool_status", [])
        if int(status["pending"], 16) or int(status["queued"], 16):
            raise HistoryError(f"a block left transactions in the pool: {status}")

    def mine_empty(self, blocks: int = 1) -> None:
        for _ in range(blocks):
            self.rpc("evm_mine", [])

    def forget_nonces(self) -> None:
        """After a reorg the chain's nonces are no longer those this writer counted."""
        self._nonces.clear()

    def sent_after(self, block: int, sender: str) -> list[SentTx]:
        """`sender`'s transactions mined after `block`, in nonce order."""
        found = [self.sent[h] for h, number in self.block_of.items() if number > block]
        return sorted((sent for sent in found if sent.sender == sender), key=lambda sent: sent.nonce)


# ----------------------------------------------------------------------------------- the chain


@dataclass(frozen=True)
class Actors:
    admin: LocalAccount
    registrar: LocalAccount
    processor: LocalAccount
    buyer: LocalAccount
    lab: LocalAccount
    submitter: LocalAccount
    """Sends transactions only in reorg replacements, so its nonce at any ancestor is known: zero."""
    devices: tuple[LocalAccount, ...]

    @classmethod
    def generate(cls, devices: int = 4) -> Actors:
        return cls(
            admin=Account.create(),
            registrar=Account.create(),
            processor=Account.create(),
            buyer=Account.create(),
            lab=Account.create(),
            submitter=Account.create(),
            devices=tuple(Account.create() for _ in range(devices)),
        )

    def senders(self) -> tuple[LocalAccount, ...]:
        return (self.admin, self.registrar, self.processor, self.buyer, self.submitter)


def deploy_for_history(w3: Web3, actors: Actors) -> tuple[Deployment, ChainWriter]:
    """Funds the senders, deploys a registry (automine still on) and returns a writer for it."""
    for sender in actors.senders():
        fund(w3, sender.address)
    _, deployment = deploy_registry(w3, actors.admin)
    return deployment, ChainWriter(w3, deployment.registry)


# ----------------------------------------------------------------------------------- the model


@dataclass
class LotModel:
    lot_id: str
    site: str
    holder: str
    remaining_g: int
    grade_ppm: int
    commodity: str
    pending: str | None = None
    output: bool = False
    """Created by a transformation (rather than registered at the face)."""


@dataclass
class RoundPlan:
    """How much of each kind of activity one round carries."""

    lots: int = 40
    batch: int = 20
    attested: int = 2
    transforms: int = 6
    assays: int = 2
    documents: int = 2
    corrections: int = 1
    stock_counts: int = 1
    reserve_every: int = 10
    """Every n-th registered lot stays with the registrar (corrections draw from these)."""


SMALL = RoundPlan()
BENCH = RoundPlan(lots=700, batch=BATCH_LOTS, attested=4, transforms=50, assays=6, documents=6, corrections=2)


@dataclass
class HistoryBuilder:
    """Builds a history round by round against a Python model of the registry's state."""

    writer: ChainWriter
    actors: Actors
    seed: int = 0
    tag: str = "H"
    """Prefix of every lot id, so histories built on one chain never collide."""
    lots: dict[str, LotModel] = field(default_factory=dict)
    rounds: int = 0
    _rng: random.Random = field(init=False)
    _counter: int = field(default=0, init=False)
    _fresh: list[str] = field(default_factory=list, init=False)
    _reserve: list[str] = field(default_factory=list, init=False)
    _offered_to_processor: list[str] = field(default_factory=list, init=False)
    _offered_to_buyer: list[str] = field(default_factory=list, init=False)
    devices_added: list[str] = field(default_factory=list, init=False)
    devices_revoked: list[str] = field(default_factory=list, init=False)
    _active_devices: list[tuple[LocalAccount, str]] = field(default_factory=list, init=False)
    _next_device: int = field(default=0, init=False)
    _clock: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        latest = self.writer.w3.eth.get_block("latest")
        self._clock = int(latest["timestamp"]) - 30 * 24 * 3600

    # ------------------------------------------------------------------------- helpers

    @property
    def client(self) -> RegistryClient:
        return RegistryClient(self.writer.w3, self.writer.registry)

    def _id(self, kind: str) -> str:
        self._counter += 1
        return f"{self.tag}-{kind}{self._counter:07d}"

    def _hash(self) -> bytes:
        return self._rng.randbytes(32)

    def _tick(self, seconds: int = 60) -> int:
        self._clock += seconds
        return self._clock

    def _registration(self, site: str, kind: str = "L") -> LotRegistration:
        return LotRegistration(
            lot_id=self._id(kind),
            site=site,
            face=self._rng.choice(FACES),
            commodity=COMMODITIES[SITES.index(site)],
            mass_g=self._rng.randrange(20_000_000, 40_000_000),
            grade_ppm=self._rng.randrange(500, 60_000),
            extracted_at=self._tick(),
            record_hash=self._hash(),
        )

    def _track_registered(self, lot: LotRegistration) -> None:
        self.lots[lot.lot_id] = LotModel(
            lot.lot_id, lot.site, self.actors.registrar.address, lot.mass_g, lot.grade_ppm, lot.commodity
        )

    def _chunks(self, items: Sequence[str], size: int = BATCH_LOTS) -> Iterator[list[str]]:
        for start in range(0, len(items), size):
            yield list(items[start : start + size])

    # ------------------------------------------------------------------------- setup

    def setup(self) -> range:
        """Roles for every actor, a pause and unpause, and the first devices. One round of its own."""
        admin, queue = self.actors.admin, self.writer.queue
        client = self.client
        for site in SITES:
            queue(admin, "grantRole", (client.registrar_role(site), self.actors.registrar.address), events=1)
        queue(admin, "grantRole", (client.role("PROCESSOR_ROLE"), self.actors.processor.address), events=1)
        queue(admin, "grantRole", (client.role("LAB_ROLE"), self.actors.lab.address), events=1)
        queue(admin, "pause", (), events=1)
        queue(admin, "unpause", (), events=1)
        for _ in range(2):
            self._add_device(admin)
        return self.writer.flush()

    def _add_device(self, sender: LocalAccount) -> None:
        if self._next_device >= len(self.actors.devices):
            return
        device = self.actors.devices[self._next_device]
        site = SITES[self._next_device % len(SITES)]
        self._next_device += 1
        self.writer.queue(
            sender,
            "addDevice",
            (device.address, encode_label(site), encode_label("haul-truck")),
            events=1,
        )
        self._active_devices.append((device, site))
        self.devices_added.append(device.address)

    # ------------------------------------------------------------------------- rounds

    def round(self, plan: RoundPlan = SMALL) -> range:
        """Queues one round of every actor's work and mines it; returns the blocks mined.

        Each actor acts on the state as the previous round left it: the offers it answers and the
        lots it uses were all mined before this round began.
        """
        self.rounds += 1
        existing = list(self.lots)
        to_processor, self._offered_to_processor = self._offered_to_processor, []
        to_buyer, self._offered_to_buyer = self._offered_to_buyer, []
        self._registrar_work(plan)
        accepted = self._processor_work(plan, existing, to_processor, to_buyer)
        self._buyer_work(accepted)
        return self.writer.flush()

    def run(self, plan: RoundPlan, *, rounds: int | None = None, events: int | None = None) -> range:
        """Rounds until `rounds` are done or the writer has emitted `events`; returns all blocks mined."""
        first: int | None = None
        last = 0
        done = 0
        while (rounds is None or done < rounds) and (events is None or self.writer.events < events):
            mined = self.round(plan)
            first = mined.start if first is None else first
            last = mined.stop - 1
            done += 1
        return range(first or 0, last + 1)

    def _registrar_work(self, plan: RoundPlan) -> None:
        registrar, queue = self.actors.registrar, self.writer.queue
        fresh: list[str] = []
        remaining = plan.lots
        while remaining > 0:
            count = min(plan.batch, remaining)
            remaining -= count
            site = self._rng.choice(SITES)
            lots = [self._registration(site) for _ in range(count)]
            queue(
                registrar,
                "registerLots",
                (encode_label(site), [registration_tuple(x) for x in lots]),
                events=1 + count,
            )
            for lot in lots:
                self._track_registered(lot)
                fresh.append(lot.lot_id)
        if plan.attested and self._active_devices:
            device, site = self._rng.choice(self._active_devices)
            lots = [self._registration(site) for _ in range(plan.attested)]
            attestations = []
            for lot in lots:
                trip, loaded_at = self._id("TRIP"), lot.extracted_at + 30
                signature = sign_load(
                    device, self.writer.chain_id, self.writer.registry, lot, trip, loaded_at
                )
                attestations.append((encode_label(trip), loaded_at, signature))
            queue(
                registrar,
                "registerAttestedLots",
                (encode_label(site), [registration_tuple(x) for x in lots], attestations),
                events=1 + 2 * len(lots),
            )
            for lot in lots:
                self._track_registered(lot)
                fresh.append(lot.lot_id)
        # last round's lots go to the plant, but every n-th stays in reserve for corrections
        handed = []
        for index, lot_id in enumerate(self._fresh):
            if index % plan.reserve_every == 0:
                self._reserve.append(lot_id)
            else:
                handed.append(lot_id)
        for chunk in self._chunks(handed):
            queue(registrar, "handOver", (_labels(chunk), self.actors.processor.address), events=len(chunk))
        for lot_id in handed:
            self.lots[lot_id].pending = self.actors.processor.address
        self._offered_to_processor = handed
        self._fresh = fresh
        for _ in range(min(plan.corrections, len(self._reserve))):
            self._correct(registrar)
        for _ in range(plan.stock_counts):
            site = self._rng.choice(SITES)
            queue(
                registrar,
                "recordStockCount",
                (encode_label(site), self._rng.randrange(10**9, 10**10), self._tick(), self._hash()),
                events=1,
            )
        if self.rounds % 7 == 0:
            self._add_device(registrar)
        if self.rounds % 11 == 0 and len(self._active_devices) > 1:
            device, _ = self._active_devices.pop(0)
            queue(registrar, "revokeDevice", (device.address,), events=1)
            self.devices_revoked.append(device.address)

    def _correct(self, registrar: LocalAccount) -> None:
        lot = self.lots[self._reserve.pop(self._rng.randrange(len(self._reserve)))]
        if self._rng.random() < 0.3:
            reason, adjustment = CorrectionReason.DID_NOT_OCCUR, -lot.remaining_g
        else:
            reason, adjustment = CorrectionReason.INCORRECT_DATA, self._rng.randrange(-500_000, 500_000)
            self._reserve.append(lot.lot_id)
        lot.remaining_g += adjustment
        self.writer.queue(
            registrar,
            "correctLot",
            (encode_label(lot.lot_id), int(reason), adjustment, self._hash()),
            events=1,
        )

    def _processor_work(
        self, plan: RoundPlan, existing: list[str], to_processor: list[str], to_buyer: list[str]
    ) -> list[str]:
        """The plant's work; returns the offers to the buyer that stand for the buyer to accept."""
        processor, queue = self.actors.processor, self.writer.queue
        me = processor.address
        # what the processor may use this round: held at the start of it, not offered to anyone
        available = [
            lot_id
            for lot_id in existing
            if (lot := self.lots[lot_id]).holder == me and lot.pending is None and lot.remaining_g
        ]
        self._rng.shuffle(available)
        for chunk in self._chunks(to_processor):
            queue(processor, "acceptHandover", (_labels(chunk),), events=len(chunk))
        for lot_id in to_processor:
            self.lots[lot_id].holder, self.lots[lot_id].pending = me, None

        for _ in range(plan.transforms):
            if not self._transform(processor, available):
                break

        for _ in range(plan.assays if existing else 0):
            lot = self.lots[self._rng.choice(existing)]
            assay = Assay(
                lot.lot_id,
                self._rng.randrange(0, 100_000),
                self._rng.choice(METHODS),
                self._hash(),
                self._tick(),
            )
            signature = sign_assay(self.actors.lab, self.writer.chain_id, self.writer.registry, assay)
            queue(processor, "submitAssay", (assay_tuple(assay), signature), events=1)
        for lot_id in available[: plan.documents]:
            queue(
                processor,
                "anchorDocument",
                (encode_label(lot_id), encode_label("weighbridge-ticket"), self._hash()),
                events=1,
            )

        cancelled = [lot_id for lot_id in to_buyer if self._rng.random() < 0.1]
        if cancelled:
            queue(processor, "cancelHandover", (_labels(cancelled),), events=len(cancelled))
            for lot_id in cancelled:
                self.lots[lot_id].pending = None

        # half of the untouched transformation outputs are sold on; the rest wait for more processing
        for_sale = [lot_id for lot_id in available if self.lots[lot_id].output and self._rng.random() < 0.5]
        for chunk in self._chunks(for_sale):
            queue(processor, "handOver", (_labels(chunk), self.actors.buyer.address), events=len(chunk))
        for lot_id in for_sale:
            self.lots[lot_id].pending = self.actors.buyer.address
            available.remove(lot_id)
        self._offered_to_buyer = for_sale
        return [lot_id for lot_id in to_buyer if lot_id not in set(cancelled)]

    def _transform(self, processor: LocalAccount, available: list[str]) -> bool:
        """Queues one transformation of lots taken from `available`; False when too few are left."""
        kind = self._rng.choice(list(TransformKind))
        inputs_wanted = 1 if kind in (TransformKind.SPLIT, TransformKind.PROCESS) else self._rng.randint(2, 3)
        if len(available) < inputs_wanted:
            return False
        inputs = [self.lots[available.pop()] for _ in range(inputs_wanted)]
        consumed: list[tuple[LotModel, int]] = []
        for lot in inputs:
            # now and then a transformation takes only part of a lot
            mass = lot.remaining_g if self._rng.random() < 0.8 else max(1, lot.remaining_g // 2)
            consumed.append((lot, mass))
        total = sum(mass for _, mass in consumed)
        loss = total // 50
        outputs_wanted = (
            self._rng.randint(2, 3) if kind in (TransformKind.SPLIT, TransformKind.PROCESS) else 1
        )
        produced = total - loss
        shares = [produced // outputs_wanted] * outputs_wanted
        shares[0] += produced - sum(shares)
        grade = sum(lot.grade_ppm * mass for lot, mass in consumed) // total
        site = inputs[0].site
        commodity = inputs[0].commodity if kind != TransformKind.PROCESS else "concentrate"
        outputs = [
            LotModel(
                self._id("T"),
                site,
                processor.address,
                share,
                min(grade * 2, 1_000_000),
                commodity,
                output=True,
            )
            for share in shares
        ]
        self.writer.queue(
            processor,
            "transform",
            (
                int(kind),
                encode_label(site),
                [(encode_label(lot.lot_id), mass) for lot, mass in consumed],
                [
                    (
                        encode_label(out.lot_id),
                        encode_label(out.commodity),
                        out.remaining_g,
                        out.grade_ppm,
                        self._hash(),
                    )
                    for out in outputs
                ],
                loss,
                self._hash(),
            ),
            events=1 + len(consumed) + len(outputs),
        )
        for lot, mass in consumed:
            lot.remaining_g -= mass
        for out in outputs:
            self.lots[out.lot_id] = out
        return True

    def _buyer_work(self, accepted: list[str]) -> None:
        buyer = self.actors.buyer
        for chunk in self._chunks(accepted):
            self.writer.queue(buyer, "acceptHandover", (_labels(chunk),), events=len(chunk))
        for lot_id in accepted:
            self.lots[lot_id].holder, self.lots[lot_id].pending = buyer.address, None
        if accepted:
            self.writer.queue(
                buyer,
                "anchorDocument",
                (encode_label(accepted[0]), encode_label("bill-of-lading"), self._hash()),
                events=1,
            )

    def register_fresh(self, count: int, *, kind: str = "X") -> range:
        """One registration of `count` new lots in a block of its own; independent of the model's state."""
        site = self._rng.choice(SITES)
        lots = [self._registration(site, kind) for _ in range(count)]
        self.writer.queue(
            self.actors.registrar,
            "registerLots",
            (encode_label(site), [registration_tuple(x) for x in lots]),
            events=1 + count,
        )
        return self.writer.flush()

    # ------------------------------------------------------------------------- reorgs

    def replacement_txs(
        self, ancestor: int, depth: int, *, replay: Sequence[SentTx] = ()
    ) -> list[tuple[str, int]]:
        """New blocks for `anvil_reorg`: [raw transaction, block offset] pairs, valid on top of `ancestor`.

        Each new block registers fresh lots (ids tagged R); the last records a stock count; the
        first has the submitter post a lab-signed assay of a lot older than the ancestor. The
        registrar transactions in `replay` (its first ones after the ancestor, in nonce order) are
        included again in the second new block, so the same transactions land in other blocks.
        """
        registrar, submitter, rpc = self.actors.registrar, self.actors.submitter, self.writer.rpc
        nonce = int(rpc("eth_getTransactionCount", [registrar.address, hex(ancestor)]), 16)
        replay_offset = min(1, depth - 1)
        pairs: list[tuple[str, int]] = []
        for sent in replay:
            if sent.sender != registrar.address or sent.nonce != nonce:
                raise HistoryError(
                    f"cannot replay {sent.tx_hash}: nonce {sent.nonce}, the ancestor expects {nonce}"
                )
            pairs.append((HexBytes(sent.raw).to_0x_hex(), replay_offset))
            nonce += 1
        for offset in range(depth):
            site = SITES[offset % len(SITES)]
            lots = [self._registration(site, "R") for _ in range(3)]
            args = (encode_label(site), [registration_tuple(x) for x in lots])
            raw = self.writer.sign(registrar, "registerLots", args, nonce=nonce)
            nonce += 1
            pairs.append((HexBytes(raw).to_0x_hex(), max(offset, replay_offset) if replay else offset))
        count = (encode_label(SITES[0]), 123_456_789, self._tick(), self._hash())
        raw = self.writer.sign(registrar, "recordStockCount", count, nonce=nonce)
        pairs.append((HexBytes(raw).to_0x_hex(), depth - 1))
        assay = Assay(next(iter(self.lots)), 4242, "XRF", self._hash(), self._tick())
        signature = sign_assay(self.actors.lab, self.writer.chain_id, self.writer.registry, assay)
        submitter_nonce = int(rpc("eth_getTransactionCount", [submitter.address, hex(ancestor)]), 16)
        raw = self.writer.sign(
            submitter, "submitAssay", (assay_tuple(assay), signature), nonce=submitter_nonce
        )
        pairs.append((HexBytes(raw).to_0x_hex(), 0))
        return pairs


def _labels(lot_ids: Sequence[str]) -> list[bytes]:
    return [encode_label(lot_id) for lot_id in lot_ids]


def reorg(writer: ChainWriter, depth: int, pairs: Sequence[tuple[str, int]]) -> list[str]:
    """Replaces the last `depth` blocks with new ones holding `pairs` ([raw tx, offset]).

    Checks that every new transaction was mined and succeeded; returns their hashes.
    """
    head = int(writer.rpc("eth_blockNumber", []), 16)
    writer.rpc("anvil_reorg", [depth, [[raw, offset] for raw, offset in pairs]])
    writer.forget_nonces()
    if int(writer.rpc("eth_blockNumber", []), 16) != head:
        raise HistoryError("anvil_reorg changed the height")
    hashes = []
    for raw, _ in pairs:
        tx_hash = Web3.keccak(hexstr=raw).to_0x_hex()
        receipt = writer.rpc("eth_getTransactionReceipt", [tx_hash])
        if receipt is None or int(receipt["status"], 16) != 1:
            raise HistoryError(f"replacement transaction {tx_hash} was not mined, or reverted: {receipt}")
        hashes.append(tx_hash)
    return hashes
