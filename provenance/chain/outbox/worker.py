"""The outbox worker: signs, sends and tracks the operations the API stored, until the chain has them.

One worker per database (it is the only writer of nonces; run it in one process, e.g. beside the
indexer). The API may write new operations at any time: everything the two share is in the
database. Each `step` does three things, in this order:

1. **Re-check what was mined recently** (`recheck_blocks`): a transaction whose block is no longer
   on the chain (a node restarted from an older state, a reorg) goes back to `sent`, so step 2
   re-sends it; one that moved to another block is recorded there.
2. **Track what is in flight**, in nonce order per sender. A receipt with status 1 confirms the
   transaction once `confirmations` blocks are on top of it; status 0 fails it with the custom
   error decoded from replaying the call at its block. A transaction neither mined nor known to
   the node is re-sent, the *same signed bytes* (same hash), so it can never be mined twice. If
   the sender's nonce has moved past it on chain and it is still not mined, another transaction
   took its nonce (the key was used elsewhere): it goes back to pending and is signed again with a
   fresh nonce after a new simulation (which refuses a duplicate).
3. **Send new work**, oldest operation first. A batch (lots, lot ids) is split into transactions
   of at most `lots_per_tx` items, and split again while one would exceed `max_tx_gas` or
   `max_tx_bytes`. Every transaction of the operation is simulated (`eth_estimateGas`) before
   any gets a nonce: a revert fails the operation with the decoded custom error and uses no nonce.
   Then, in one database transaction, the transactions get consecutive nonces and their signed
   bytes and hashes are stored; only after that commit are they sent.

**Coalescing.** Small registrations (at most `coalesce_lots` lots, not yet split or signed) of one
sender and site that are pending together go out as one `registerLots` transaction: its rows in
the outbox share nonce, bytes and hash (`share` 0, 1, ...), and every operation it carries is
confirmed by its receipt. If the shared call is refused at simulation, each operation goes alone
(so one bad lot fails alone, with its own error); if the shared transaction fails on chain, it
registered nothing, and each operation is tried again alone (`solo`). Single-lot POSTs from many
clients thus cost one transaction per step instead of one each.

Nonces: the store hands out `max(stored next nonce, node's pending count)` (the count asked at
most every `nonce_check_s`), so nonces are never reused (UNIQUE(sender, nonce, share) guards it
too) and every nonce handed out belongs to stored bytes that will be re-sent until mined: no gap
is ever left behind.

A multi-transaction operation (a batch of 1,000 lots) fails as a whole when any of its
transactions is refused at simulation, before any is sent. If one fails later, on chain (the
state changed between simulation and mining), the transactions before it stay confirmed, those
that already hold a nonce are still sent and tracked (their lots are independent, and dropping
them would leave a nonce gap), and those without one are never sent (`NotSent`). Each
transaction's status says which lots made it.

A simulation that reverts while other outbox transactions are still unmined is retried for up to
`defer_s` seconds before it fails the operation: an operation may depend on one sent just before
it (a handover after a registration) that the node has not mined yet.

Fees are EIP-1559: `2 × base fee + priority_fee_wei`, fixed at signing (re-sent bytes cannot
change); a transaction priced out by a sustained fee rise stays pending (no fee bumping yet), and
one the node refuses (a sender out of ether) is offered again every step, holding up that
sender's later nonces until it goes through. Operations of a sender whose key `signer_for`
cannot give stay pending, set aside for `key_retry_s`, without holding up other senders.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hexbytes import HexBytes
from web3 import Web3

from provenance.chain.client import RegistryClient, decode_revert
from provenance.chain.connection import TransactionSigner
from provenance.chain.node_calls import Head, NodeCalls, Receipt, node_calls
from provenance.chain.outbox.calls import call_for, jsonable, shared_registration
from provenance.domain.blocks import FINALIZED, Confirmations
from provenance.domain.commands import RegisterLots
from provenance.domain.operations import OperationStatus
from provenance.domain.outbox import (
    ChainConflict,
    OutboxTransaction,
    PendingOperation,
    SignedTransaction,
    TransactionUpdate,
    coalesce,
)
from provenance.errors import CallReverted, ContractRevert, LeaseLost

log = logging.getLogger(__name__)

TX_GAS_CAP = 2**24
"""EIP-7825: no transaction may ask for more gas than this (eth-tester does not enforce it)."""
MAX_TX_BYTES = 120 * 1024
"""Below the 128 KiB that nodes accept in their transaction pool, with room for the signature."""
LOTS_PER_TX = 400
"""~11 M gas and ~90 KB of calldata for registrations (docs/benchmarks.md: ~27.4k gas per lot)."""
SHARED_BASE_GAS = 80_000
SHARED_LOT_GAS = 45_000
"""Gas limit of a coalesced `registerLots` of n lots: base + n × per lot, over 1.5 times what it
uses (bench/gas.py: 55,414 for one lot, 27,646 a lot in a batch of 100). Unused gas is not paid
for; a transaction that ran out anyway fails on chain, and its operations go again one by one."""
GAS_MARGIN = 1.2
"""Gas limit = estimate × GAS_MARGIN (at most max_tx_gas): the state may change a little by mining."""
TOO_LARGE = "TransactionTooLarge"
COALESCE_LOTS = 10
"""Registrations of at most this many lots are coalesced with others of the same sender and site
into one `registerLots` transaction (0: never). Single-lot POSTs sent one transaction each top out
near 30 lots/s (docs/benchmarks.md); a shared transaction also costs half the gas per lot."""


class OutboxStorage(Protocol):
    """What the worker needs of the outbox (`provenance.index.outbox_store.OutboxStore`)."""

    def pending_operations(
        self, limit: int = ..., exclude_senders: Collection[str] = ...
    ) -> list[PendingOperation]: ...

    def split_transaction(self, operation_id: str, sequence: int, cuts: Sequence[int]) -> None: ...

    def sign_and_record(
        self,
        operation_id: str,
        sequences: Sequence[int],
        chain_nonce: int,
        sign: Callable[[int, int], SignedTransaction],
    ) -> list[OutboxTransaction]: ...

    def sign_and_record_shared(
        self,
        members: Sequence[tuple[str, int]],
        chain_nonce: int,
        sign: Callable[[int], SignedTransaction],
    ) -> list[OutboxTransaction]: ...

    def mark_sent(self, tx_hash: str) -> None: ...

    def in_flight(self) -> list[OutboxTransaction]: ...

    def recently_mined(self, since_block: int) -> list[OutboxTransaction]: ...

    def lost_and_unfinished(self) -> list[OutboxTransaction]: ...

    def apply(self, updates: Sequence[TransactionUpdate]) -> None: ...

    def work_generation(self) -> int: ...

    def wait_for_work(self, timeout_s: float, since: int | None = None) -> None: ...

    def hold(self, conflict: ChainConflict, update: TransactionUpdate | None) -> None: ...

    def open_conflicts(self) -> list[ChainConflict]: ...

    def mark_stuck(self, operation_id: str, reason: str) -> None: ...


@dataclass(frozen=True)
class _Ready:
    plans: dict[int, tuple[bytes, int]]
    """sequence -> (calldata, gas limit)"""


@dataclass(frozen=True)
class _Refused:
    sequence: int
    error: ContractRevert


class OutboxWorker:
    """Sends the outbox's transactions and follows them until confirmed or failed; see the module doc."""

    def __init__(
        self,
        store: OutboxStorage,
        client: RegistryClient,
        signer_for: Callable[[str], TransactionSigner],
        *,
        confirmations: Confirmations = 0,
        recheck_blocks: int = 64,
        lots_per_tx: int = LOTS_PER_TX,
        max_tx_gas: int = TX_GAS_CAP,
        max_tx_bytes: int = MAX_TX_BYTES,
        priority_fee_wei: int = 10**9,
        defer_s: float = 30.0,
        operations_per_step: int = 200,
        full_recheck_s: float = 60.0,
        key_retry_s: float = 60.0,
        coalesce_lots: int = COALESCE_LOTS,
        nonce_check_s: float = 5.0,
        node: NodeCalls | None = None,
    ) -> None:
        """`node`: how to reach the node (default: raw JSON-RPC if `client` talks HTTP)."""
        if (confirmations != FINALIZED and confirmations < 0) or recheck_blocks < 1 or lots_per_tx < 1:
            raise ValueError("confirmations >= 0, recheck_blocks >= 1 and lots_per_tx >= 1 are required")
        self.store = store
        self.client = client
        self.node = node if node is not None else node_calls(client.w3)
        self.signer_for = signer_for
        self.confirmations = confirmations
        self._settled = -1
        """The newest block whose transactions count as confirmed, as of this step."""
        self.recheck_blocks = recheck_blocks
        self.lots_per_tx = lots_per_tx
        self.max_tx_gas = max_tx_gas
        self.max_tx_bytes = max_tx_bytes
        self.priority_fee_wei = priority_fee_wei
        self.defer_s = defer_s
        self.operations_per_step = operations_per_step
        self.full_recheck_s = full_recheck_s
        self.key_retry_s = key_retry_s
        self.coalesce_lots = coalesce_lots
        self.nonce_check_s = nonce_check_s
        self._nonce_seen: dict[str, tuple[int, float]] = {}
        """Each sender's pending count on the node, and when it was asked (lower-case address)."""
        self._receipts: dict[str, Receipt | None] = {}
        """Receipts read during the current step, by hash: the rows of a coalesced transaction share one."""
        self._deferred: dict[str, float] = {}
        self._step_head: tuple[int, str] | None = None
        """(number, hash) of the head the current step started from."""
        self._anchor: tuple[int, str] | None = None
        self._next_full_recheck = 0.0
        self._keyless: dict[str, float] = {}
        """Senders whose key could not be opened (lower case) -> when to try again."""
        self._signers: dict[str, TransactionSigner] = {}
        self._refusals: dict[str, str] = {}
        """The last error the node gave each transaction hash, so a repeated one is not logged again."""
        self._troubles: dict[str, str] = {}
        """The last unexpected error of each operation, likewise."""
        self._held: bool | None = None
        """Whether a chain conflict is open (None: not read yet); only this worker opens one."""
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- public

    def step(self) -> int:
        """One round of work; returns how many transactions changed state (0: nothing to do)."""
        with self._lock:
            self._receipts.clear()
            latest = self.node.block("latest")
            if latest is None:
                raise RuntimeError("the node has no latest block")
            head = latest.number
            self._step_head = (head, latest.hash)
            self._settled = self._settled_block(head)
            if self._held is not False:  # a person may have resolved it meanwhile
                self._held = bool(self.store.open_conflicts())
            changed = self._recheck(head, latest.hash, latest.parent_hash)
            tracked, unmined = self._track()
            if self._held:
                return changed + tracked  # nothing is sent while a conflict is open
            return changed + tracked + self._send_new(busy=unmined > 0, latest=latest)

    def _settled_block(self, head: int) -> int:
        """`confirmations` under the head, or the node's finalized block (-1 while it has none)."""
        if self.confirmations == FINALIZED:
            finalized = self.node.block(FINALIZED)
            return -1 if finalized is None else finalized.number
        return head - self.confirmations

    def close(self) -> None:
        """Closes the worker's connections to the node (made again if it steps once more)."""
        self.node.close()

    def run(self, stop: threading.Event, poll_s: float = 0.2) -> None:
        """Steps until `stop` is set, resting `poll_s` when idle; a node or database that fails is
        retried with backoff (nothing is lost: the state is in the database)."""
        failures = 0
        while not stop.is_set():
            seen = self.store.work_generation()
            try:
                changed = self.step()
            except LeaseLost:
                raise  # another replica leads now: this one stops, it does not retry
            except Exception as error:
                failures += 1
                delay = min(30.0, poll_s * 2 ** min(failures, 8))
                log.warning("outbox worker: %s: %s; retrying in %.1f s", type(error).__name__, error, delay)
                stop.wait(delay)
                continue
            failures = 0
            if not changed:
                self.store.wait_for_work(poll_s, since=seen)

    # ---------------------------------------------------------------- 1. re-check recent blocks

    def _recheck(self, head: int, head_hash: str, parent_hash: str) -> int:
        """Blocks are hash-linked: while the block at the height of the last step's head keeps its
        hash, nothing below it changed, and only transactions mined above it need a look. Every
        `full_recheck_s` the whole window is looked at anyway."""
        since = max(0, head - self.recheck_blocks + 1)
        now = time.monotonic()
        if self._anchor is not None and now < self._next_full_recheck:
            number, block_hash = self._anchor
            if number == head:
                still_there = head_hash == block_hash
            elif number == head - 1:  # the usual case: one block since the last step
                still_there = parent_hash == block_hash
            else:
                still_there = number < head and self._block_hash(number) == block_hash
            if still_there:
                since = max(since, number + 1)
        else:
            self._next_full_recheck = now + self.full_recheck_s
        self._anchor = (head, head_hash)
        mined = self.store.recently_mined(since)
        by_block: dict[int, list[OutboxTransaction]] = {}
        for tx in mined:
            assert tx.block_number is not None
            by_block.setdefault(tx.block_number, []).append(tx)
        updates: list[TransactionUpdate] = []
        known = {head: head_hash, head - 1: parent_hash}  # no need to ask the node for these
        for number, txs in sorted(by_block.items()):
            current = known[number] if number in known else self._block_hash(number)
            if current == txs[0].block_hash and all(tx.block_hash == txs[0].block_hash for tx in txs):
                continue
            carriers = _carriers(txs)
            for tx in txs:
                receipt = self._receipt(tx)
                if receipt is None:
                    log.warning(
                        "transaction %s (nonce %s of %s) is no longer on the chain (block %d is gone); re-sending it",
                        tx.tx_hash,
                        tx.nonce,
                        tx.sender,
                        number,
                    )
                    lost = number if tx.status is OperationStatus.CONFIRMED else tx.lost_block
                    updates.append(
                        TransactionUpdate(tx.operation_id, tx.sequence, OperationStatus.SENT, lost_block=lost)
                    )
                else:
                    update = self._mined(tx, receipt, shared=carriers[tx.tx_hash or ""] > 1)
                    if update is not None and _differs(tx, update):
                        updates.append(update)
        self.store.apply(updates)
        return len(updates)

    # ---------------------------------------------------------------- 2. track what is in flight

    def _track(self) -> tuple[int, int]:
        """Returns (transactions changed, transactions still unmined)."""
        updates: list[TransactionUpdate] = []
        resend: list[OutboxTransaction] = []
        unmined = 0
        in_flight = self.store.in_flight()
        carriers = _carriers(in_flight)
        for tx in in_flight:
            receipt = self._receipt(tx)
            if receipt is None:
                receipt = self._lost_or_waiting(tx, updates, resend)
            if receipt is None:
                unmined += 1
                continue
            update = self._mined(tx, receipt, shared=carriers[tx.tx_hash or ""] > 1)
            if update is not None and _differs(tx, update):
                updates.append(update)
        self.store.apply(updates)
        if self._held:
            resend = []  # what the chain lost waits too: it may be what the conflict is about
        sent = []
        outcome: dict[str, bool] = {}
        # in the order they were sent before, across senders: that is the order the lost blocks had
        # them in, and a later one may need an earlier one of another sender (an acceptance needs
        # its handover); by sender and nonce, one sender's transaction could go before it and fail
        resend.sort(key=_first_sent)
        for tx in resend:  # the rows of a coalesced transaction share its bytes: sent once
            assert tx.raw_tx is not None
            key = tx.tx_hash or tx.raw_tx
            if key not in outcome:
                outcome[key] = self._send(tx.raw_tx, tx)
            if outcome[key]:
                sent.append(TransactionUpdate(tx.operation_id, tx.sequence, OperationStatus.SENT, sent=True))
        self.store.apply(sent)
        return len(updates) + len(sent), unmined

    def _lost_or_waiting(
        self, tx: OutboxTransaction, updates: list[TransactionUpdate], resend: list[OutboxTransaction]
    ) -> Receipt | None:
        """For a transaction without a receipt: wait for it, re-send it, or release its nonce.
        Returns the receipt if it turns out to be mined after all."""
        assert tx.tx_hash is not None
        assert tx.nonce is not None
        if tx.mined:  # it was mined (with success: a failure is final), and that block is gone
            updates.append(
                TransactionUpdate(
                    tx.operation_id, tx.sequence, OperationStatus.SENT, lost_block=tx.block_number
                )
            )
        if self._known(tx.tx_hash):
            return None
        # the nonce first, then the receipt again: a transaction mined between the two reads
        # shows up in the second, so a nonce used by our own transaction is never taken for another's
        chain_nonce = self.node.transaction_count(Web3.to_checksum_address(tx.sender), "latest")
        if chain_nonce > tx.nonce:
            receipt = self._receipt(tx, fresh=True)
            if receipt is not None:
                return receipt
            self._nonce_seen.pop(tx.sender.lower(), None)  # ask the node again before signing anew
            log.warning(
                "nonce %d of %s was used by another transaction; %s will be signed again with a new nonce",
                tx.nonce,
                tx.sender,
                tx.tx_hash,
            )
            updates.append(
                TransactionUpdate(tx.operation_id, tx.sequence, OperationStatus.PENDING, release_nonce=True)
            )
            return None
        resend.append(tx)
        return None

    def _mined(
        self, tx: OutboxTransaction, receipt: Receipt, *, shared: bool = False
    ) -> TransactionUpdate | None:
        """What the receipt says of `tx`; None when it was held as a chain conflict (recorded)."""
        number = receipt.block_number
        block_hash = receipt.block_hash
        gas_used = receipt.gas_used
        if receipt.status == 1:
            deep = number <= self._settled
            status = OperationStatus.CONFIRMED if deep else OperationStatus.SENT
            return TransactionUpdate(tx.operation_id, tx.sequence, status, number, block_hash, gas_used)
        if self._reorg_unsettled([tx], number):
            # it may have failed only because a reorg dropped what it needed (an acceptance whose
            # handover, of another sender, is not back on the chain yet): its nonce is spent, so
            # it is simulated and signed anew once what the chain lost has landed again
            log.warning(
                "transaction %s of operation %s failed on chain in block %d while transactions a reorg "
                "dropped were not back yet; it goes again once they are",
                tx.tx_hash,
                tx.operation_id,
                number,
            )
            return TransactionUpdate(
                tx.operation_id, tx.sequence, OperationStatus.PENDING, release_nonce=True, solo=shared
            )
        if tx.lost_block is not None:
            # the same signed bytes succeeded in the block the chain lost: its nonce is spent now,
            # so it is signed anew (on resume), and the operation is held, not failed
            error = self._failure(tx, receipt)
            update = TransactionUpdate(
                tx.operation_id, tx.sequence, OperationStatus.PENDING, release_nonce=True, solo=shared
            )
            self._hold(tx.operation_id, tx.sequence, tx.tx_hash, tx.lost_block, error, update)
            return None
        if shared:
            # a coalesced transaction registers all of its lots or none: none were, and its nonce
            # is spent. Each operation it carried is tried again by itself, so one lot the state
            # refuses (a lot id registered meanwhile) fails alone with its own error
            if tx.share == 0:
                log.warning(
                    "coalesced transaction %s failed on chain in block %d; its operations go again one by one",
                    tx.tx_hash,
                    number,
                )
            return TransactionUpdate(
                tx.operation_id, tx.sequence, OperationStatus.PENDING, release_nonce=True, solo=True
            )
        error = self._failure(tx, receipt)
        log.info("transaction %s of operation %s failed on chain: %s", tx.tx_hash, tx.operation_id, error)
        return TransactionUpdate(
            tx.operation_id,
            tx.sequence,
            OperationStatus.FAILED,
            number,
            block_hash,
            gas_used,
            error.name,
            jsonable(error.args_by_name),
        )

    def _failure(self, tx: OutboxTransaction, receipt: Receipt) -> ContractRevert:
        """The custom error of a transaction mined with status 0: the call replayed at its block
        (the state after the block holds whatever made it fail), then at the block before."""
        sent = self.node.transaction(tx.tx_hash or "")
        if sent is None:
            return ContractRevert("Reverted", {"tx_hash": tx.tx_hash})
        if receipt.gas_used >= sent.gas:
            return ContractRevert("OutOfGas", {"gas_limit": sent.gas, "tx_hash": tx.tx_hash})
        call: dict[str, Any] = {"from": sent.sender, "to": sent.to, "data": sent.data, "gas": sent.gas}
        for block in (receipt.block_number, receipt.block_number - 1):
            try:
                self.node.call(call, block)
            except CallReverted as error:
                if error.data:
                    return decode_revert(error.data)
            except Exception as error:  # the node could not replay it: say so, not why
                log.debug("replaying %s at block %d failed: %s", tx.tx_hash, block, error)
        return ContractRevert("Reverted", {"tx_hash": tx.tx_hash})

    # ---------------------------------------------------------------- 3. send new work

    def _send_new(self, *, busy: bool, latest: Head) -> int:
        changed = 0
        fees: dict[str, int] | None = None
        now = time.monotonic()
        self._keyless = {sender: until for sender, until in self._keyless.items() if until > now}
        seen: set[str] = set()
        while True:
            pending = self.store.pending_operations(
                self.operations_per_step, exclude_senders=tuple(self._keyless)
            )
            keyless_before = len(self._keyless)
            groups = coalesce(pending, self.coalesce_lots, self.lots_per_tx)
            for operation in pending:
                if operation.id in seen:
                    continue
                group = groups.get(operation.id)
                batch = (
                    [operation] if group is None else [member for member in group if member.id not in seen]
                )
                seen.update(member.id for member in batch)
                signer = self._signer(operation.sender, now)
                if signer is None:
                    continue
                if len(batch) > 1:
                    if fees is None:
                        fees = self._fees(latest)
                    shared = self._send_shared(batch, signer, fees)
                    if shared is not None:
                        changed += shared
                        busy = True
                        continue
                for member in batch:  # alone, or the shared transaction was refused: one by one
                    if self._held:
                        return changed
                    outcome = self._send_one(member, signer, fees, busy=busy, latest=latest)
                    if outcome is None:
                        continue
                    count, fees, sent = outcome
                    changed += count
                    busy = busy or sent
            if len(self._keyless) == keyless_before:
                return changed
            # a sender turned out to have no key: look past its operations at once

    def _send_one(
        self,
        operation: PendingOperation,
        signer: TransactionSigner,
        fees: dict[str, int] | None,
        *,
        busy: bool,
        latest: Head,
    ) -> tuple[int, dict[str, int] | None, bool] | None:
        """Prepares and sends one operation: (transactions changed, fees, whether it sent), or None
        if it stays pending after an unexpected error."""
        try:
            outcome = self._prepare(operation)
            if isinstance(outcome, int):  # split: the new plan is simulated next step
                return outcome, fees, False
            if isinstance(outcome, _Refused):
                return self._refused(operation, outcome, busy=busy), fees, False
            if fees is None:
                fees = self._fees(latest)
            return self._sign_and_send(operation, signer, outcome, fees), fees, True
        except Exception as error:
            # one operation the node chokes on (not a revert) must not hold up the others;
            # it stays pending, and nothing of it was sent unless its nonces were committed
            self._note_trouble(operation.id, error)
            return None

    def _send_shared(
        self, operations: Sequence[PendingOperation], signer: TransactionSigner, fees: Mapping[str, int]
    ) -> int | None:
        """Sends small registrations of one sender and site as one `registerLots` transaction.
        None when the shared call is refused at simulation (or the node fails): the caller then
        sends each operation by itself, so a bad lot fails alone with its own error."""
        commands = [operation.command for operation in operations]
        registrations = [command for command in commands if isinstance(command, RegisterLots)]
        assert len(registrations) == len(commands), "only registrations are coalesced"
        data = shared_registration(registrations).calldata()
        lots = sum(command.items for command in registrations)
        sender = Web3.to_checksum_address(operations[0].sender)
        gas = SHARED_BASE_GAS + SHARED_LOT_GAS * lots
        if gas > self.max_tx_gas or len(data) > self.max_tx_bytes:
            return None
        try:
            # one execution: eth_estimateGas searches for the limit with several, and the node's
            # time per transaction grew with its state (bench/api_write.py after 10,000 lots)
            self.node.call({"from": sender, "to": self.client.address, "data": data, "gas": gas})
        except Exception as error:
            log.debug(
                "%d coalesced registrations refused together (%s); sending them one by one",
                len(operations),
                error,
            )
            return None

        def sign(nonce: int) -> SignedTransaction:
            return self._signed(signer, nonce, data, gas, fees)

        for operation in operations:
            self._deferred.pop(operation.id, None)
        chain_nonce = self._chain_nonce(signer.address)
        members = [(operation.id, operation.pending[0].sequence) for operation in operations]
        try:
            recorded = self.store.sign_and_record_shared(members, chain_nonce, sign)
        except Exception as error:
            self._note_trouble(operations[0].id, error)
            return 0
        assert recorded
        assert recorded[0].raw_tx is not None
        if self._send(recorded[0].raw_tx, recorded[0]):
            self.store.mark_sent(recorded[0].tx_hash or "")
        return len(recorded)

    def _prepare(self, operation: PendingOperation) -> _Ready | _Refused | int:
        """Splits what is too big (returns how many new transactions), or simulates every pending
        transaction of the operation: all pass (their calldata and gas), or the first refusal."""
        pending = operation.pending
        for tx in pending:
            start, end = tx.item_start, tx.item_end
            if start is not None and end is not None and end - start > self.lots_per_tx:
                cuts = list(range(start + self.lots_per_tx, end, self.lots_per_tx))
                self.store.split_transaction(operation.id, tx.sequence, cuts)
                return len(cuts)
        plans: dict[int, tuple[bytes, int]] = {}
        for tx in pending:
            call = call_for(operation.command, tx.item_start, tx.item_end)
            data = call.calldata()
            if len(data) > self.max_tx_bytes:
                return self._halve(operation, tx, f"{len(data)} bytes of calldata, over {self.max_tx_bytes}")
            try:
                estimate = self.node.estimate_gas(
                    {
                        "from": Web3.to_checksum_address(operation.sender),
                        "to": self.client.address,
                        "data": data,
                    }
                )
            except CallReverted as error:
                return _Refused(tx.sequence, decode_revert(error.data))
            if estimate > self.max_tx_gas:
                return self._halve(operation, tx, f"{estimate} gas, over {self.max_tx_gas}")
            plans[tx.sequence] = (data, min(self.max_tx_gas, int(estimate * GAS_MARGIN)))
        return _Ready(plans)

    def _hold(
        self,
        operation_id: str,
        sequence: int,
        tx_hash: str | None,
        lost_block: int,
        error: ContractRevert,
        update: TransactionUpdate | None,
    ) -> None:
        """Records a chain conflict and stops sending (see `ChainConflict`)."""
        conflict = ChainConflict(
            0, operation_id, sequence, tx_hash, lost_block, error.name, jsonable(error.args_by_name), ""
        )
        log.critical(
            "CHAIN CONFLICT: %s. Nothing more is sent until a person resolves it: check the chain "
            "(`provenance audit`), then `provenance outbox resume --held fail|retry`",
            conflict.describe(),
        )
        self.store.hold(conflict, update)
        self._held = True

    def _halve(self, operation: PendingOperation, tx: OutboxTransaction, why: str) -> _Refused | int:
        if tx.item_start is None or tx.item_end is None or tx.item_end - tx.item_start < 2:
            return _Refused(tx.sequence, ContractRevert(TOO_LARGE, {"reason": why}))
        middle = (tx.item_start + tx.item_end) // 2
        log.info("operation %s: transaction %d needs %s; splitting it", operation.id, tx.sequence, why)
        self.store.split_transaction(operation.id, tx.sequence, [middle])
        return 1

    def _refused(self, operation: PendingOperation, refused: _Refused, *, busy: bool) -> int:
        now = time.monotonic()
        first = self._deferred.setdefault(operation.id, now)
        if busy and now - first < self.defer_s and refused.error.name != TOO_LARGE:
            log.debug(
                "operation %s refused while others are in flight; retrying: %s", operation.id, refused.error
            )
            return 0
        if not self._step_head_still_canonical():
            # a reorg after this step's re-check may have dropped what the operation needs (a lot
            # registered a moment ago); the next step re-checks, re-sends it and simulates again
            log.info("operation %s refused while the chain reorganised; trying again", operation.id)
            return 0
        if self._reorg_unsettled(operation.transactions, None):
            log.info(
                "operation %s refused while transactions a reorg dropped are not back yet; trying again",
                operation.id,
            )
            return 0
        del self._deferred[operation.id]
        lost = next((tx for tx in operation.transactions if tx.lost_block is not None), None)
        if lost is not None and lost.lost_block is not None:
            self._hold(operation.id, refused.sequence, lost.tx_hash, lost.lost_block, refused.error, None)
            return 0
        log.info("operation %s refused at simulation: %s", operation.id, refused.error)
        self.store.apply(
            [
                TransactionUpdate(
                    operation.id,
                    refused.sequence,
                    OperationStatus.FAILED,
                    error_name=refused.error.name,
                    error_args=jsonable(refused.error.args_by_name),
                )
            ]
        )
        return len(operation.pending)

    def _sign_and_send(
        self, operation: PendingOperation, signer: TransactionSigner, ready: _Ready, fees: Mapping[str, int]
    ) -> int:
        self._deferred.pop(operation.id, None)

        def sign(sequence: int, nonce: int) -> SignedTransaction:
            data, gas = ready.plans[sequence]
            return self._signed(signer, nonce, data, gas, fees)

        chain_nonce = self._chain_nonce(signer.address)
        recorded = self.store.sign_and_record(operation.id, sorted(ready.plans), chain_nonce, sign)
        sent = []
        for tx in recorded:
            assert tx.raw_tx is not None
            if self._send(tx.raw_tx, tx):
                sent.append(TransactionUpdate(tx.operation_id, tx.sequence, OperationStatus.SENT, sent=True))
        self.store.apply(sent)
        return len(recorded)

    def _signed(
        self, signer: TransactionSigner, nonce: int, data: bytes, gas: int, fees: Mapping[str, int]
    ) -> SignedTransaction:
        """A call of the registry, signed with `fees` (from `_fees`)."""
        signed = signer.sign_transaction(
            {
                "type": 2,
                "chainId": self.client.chain_id,
                "nonce": nonce,
                "to": self.client.address,
                "value": 0,
                "data": data,
                "gas": gas,
                **fees,
            }
        )
        return SignedTransaction(
            HexBytes(signed.raw_transaction).to_0x_hex(), HexBytes(signed.hash).to_0x_hex()
        )

    # ---------------------------------------------------------------- node access

    def _signer(self, sender: str, now: float) -> TransactionSigner | None:
        """The key of `sender`, opened once; None (and the sender set aside a while) without one."""
        key = sender.lower()
        if key in self._keyless:
            return None
        signer = self._signers.get(key)
        if signer is not None:
            return signer
        try:
            signer = self.signer_for(sender)
        except Exception as error:
            log.error(
                "no key to sign for %s (%s); its operations wait, retried in %.0f s",
                sender,
                error,
                self.key_retry_s,
            )
            self._keyless[key] = now + self.key_retry_s
            return None
        if signer.address.lower() != key:
            log.error("the key given for %s is %s's; its operations wait", sender, signer.address)
            self._keyless[key] = now + self.key_retry_s
            return None
        self._signers[key] = signer
        return signer

    def _chain_nonce(self, address: str) -> int:
        """The node's pending transaction count of `address`, asked at most every `nonce_check_s`
        (~7 ms on anvil, on every send). The store takes the larger of it and its own next nonce,
        so an old answer only matters when the key signs elsewhere too; then the node refuses the
        transaction, `_lost_or_waiting` finds the nonce taken, and this asks again."""
        key = address.lower()
        now = time.monotonic()
        seen = self._nonce_seen.get(key)
        if seen is None or now - seen[1] >= self.nonce_check_s:
            seen = (self.node.transaction_count(Web3.to_checksum_address(address), "pending"), now)
            self._nonce_seen[key] = seen
        return seen[0]

    def _note_trouble(self, operation_id: str, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        repeated = self._troubles.get(operation_id) == message
        self._troubles[operation_id] = message
        if len(self._troubles) > 10_000:
            self._troubles.clear()
        if not repeated:  # it stays pending, and says why: /health and the operation show it
            self._mark_stuck(operation_id, f"could not be prepared or sent: {message}")
        log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "operation %s could not be prepared or sent (%s); it stays pending",
            operation_id,
            message,
            exc_info=not repeated,
        )

    def _mark_stuck(self, operation_id: str, reason: str) -> None:
        try:
            self.store.mark_stuck(operation_id, reason)
        except Exception as error:  # the reason is also in the log; the database may be what fails
            log.debug("could not record why operation %s is stuck: %s", operation_id, error)

    def _fees(self, latest: Head) -> dict[str, int]:
        """From the step's latest block: twice its base fee covers six full blocks of rises."""
        base_fee = latest.base_fee
        if base_fee is None:
            return {"gasPrice": self.node.gas_price()}
        return {
            "maxFeePerGas": 2 * base_fee + self.priority_fee_wei,
            "maxPriorityFeePerGas": self.priority_fee_wei,
        }

    def _send(self, raw_tx: str, tx: OutboxTransaction) -> bool:
        """Sends signed bytes; False if the node refused them (the next step looks again)."""
        try:
            self.node.send_raw_transaction(raw_tx)
        except Exception as error:
            if "already known" in str(error).lower() or "known transaction" in str(error).lower():
                return True
            message = str(error)
            repeated = self._refusals.get(tx.tx_hash or "") == message
            self._refusals[tx.tx_hash or ""] = message
            if len(self._refusals) > 10_000:
                self._refusals.clear()
            log.log(
                logging.DEBUG if repeated else logging.WARNING,
                "the node refused %s (nonce %s of %s): %s; will look again",
                tx.tx_hash,
                tx.nonce,
                tx.sender,
                error,
            )
            if not repeated:
                self._mark_stuck(tx.operation_id, f"the node refused its transaction {tx.tx_hash}: {message}")
            return False
        return True

    def _receipt(self, tx: OutboxTransaction, *, fresh: bool = False) -> Receipt | None:
        key = tx.tx_hash or ""
        if key in self._receipts and not fresh:
            return self._receipts[key]
        receipt = self.node.receipt(key)
        self._receipts[key] = receipt
        return receipt

    def _known(self, tx_hash: str) -> bool:
        return self.node.transaction(tx_hash) is not None

    def _reorg_unsettled(self, refused: Sequence[OutboxTransaction], block_number: int | None) -> bool:
        """Whether a refusal of the transactions `refused` (at simulation, or on chain in
        `block_number`) may be a reorg's doing rather than the state's: a transaction of another
        operation that the chain lost before them has not landed again (before that block). Such
        an operation is tried again, not failed: what it needs, of any sender, may be on its way back.

        "Before" is the order the lost blocks had (`_lost_order`), and a transaction the chain never
        lost comes after all that it did: each waits only on earlier ones, so none wait forever."""
        own = {tx.operation_id for tx in refused} | {tx.tx_hash for tx in refused if tx.tx_hash is not None}
        mine = min((_lost_order(tx) for tx in refused if tx.lost_block is not None), default=None)
        for lost in self.store.lost_and_unfinished():
            if lost.operation_id in own or lost.tx_hash in own:
                continue
            if mine is not None and _lost_order(lost) >= mine:
                continue
            if lost.block_number is None:  # not on the chain again yet
                return True
            if block_number is not None and lost.block_number >= block_number:  # back, but not before
                return True
        return False

    def _step_head_still_canonical(self) -> bool:
        """Whether the head this step started from is still on the chain: only then did the step's
        re-check of recent blocks see every transaction a simulation may depend on."""
        if self._step_head is None:
            return True
        number, block_hash = self._step_head
        return self._block_hash(number) == block_hash

    def _block_hash(self, number: int) -> str | None:
        block = self.node.block(number)
        return None if block is None else block.hash


def _lost_order(tx: OutboxTransaction) -> tuple[int, float, str]:
    """Where a lost transaction stood among those the chain lost: its lost block, then its first
    sending (re-sends keep that order); a strict order, so waiting on earlier ones cannot cycle."""
    sent = tx.sent_at.timestamp() if tx.sent_at is not None else 0.0
    return (
        tx.lost_block if tx.lost_block is not None else -1,
        sent,
        f"{tx.tx_hash}:{tx.operation_id}:{tx.sequence}",
    )


def _first_sent(tx: OutboxTransaction) -> tuple[float, str, int, int]:
    when = tx.sent_at.timestamp() if tx.sent_at is not None else float("inf")
    return when, tx.sender, tx.nonce if tx.nonce is not None else -1, tx.share


def _carriers(txs: Sequence[OutboxTransaction]) -> dict[str, int]:
    """How many outbox rows each transaction hash carries (more than one: a coalesced transaction)."""
    counts: dict[str, int] = {}
    for tx in txs:
        counts[tx.tx_hash or ""] = counts.get(tx.tx_hash or "", 0) + 1
    return counts


def _differs(tx: OutboxTransaction, update: TransactionUpdate) -> bool:
    return (tx.status, tx.block_number, tx.block_hash) != (
        update.status,
        update.block_number,
        update.block_hash,
    )
