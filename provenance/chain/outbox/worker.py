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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from provenance.chain.client import RegistryClient
from provenance.chain.connection import TransactionSigner
from provenance.chain.node_calls import Head, NodeCalls, node_calls
from provenance.chain.outbox.calls import jsonable
from provenance.chain.outbox.conflicts import Conflicts
from provenance.chain.outbox.planner import Planned, Planner, Refused
from provenance.chain.outbox.policy import OutboxPolicy
from provenance.chain.outbox.sender import MAX_REMEMBERED, Sender
from provenance.chain.outbox.storage import record_stuck
from provenance.chain.outbox.tracker import Tracker
from provenance.domain.operations import OperationStatus
from provenance.domain.outbox import OutboxStorage, PendingOperation, SignedTransaction, TransactionUpdate
from provenance.errors import LeaseLost

log = logging.getLogger(__name__)


class OutboxWorker:
    """Sends the outbox's transactions and follows them until confirmed or failed; see the module doc."""

    def __init__(
        self,
        store: OutboxStorage,
        client: RegistryClient,
        signer_for: Callable[[str], TransactionSigner],
        policy: OutboxPolicy | None = None,
        *,
        node: NodeCalls | None = None,
        **options: Any,
    ) -> None:
        """`policy`, with any of its fields given as `options` instead; `node`: how to reach the
        node (default: raw JSON-RPC if `client` talks HTTP)."""
        self.policy = replace(policy or OutboxPolicy(), **options)
        self.store = store
        self.node = node if node is not None else node_calls(client.w3)
        self.conflicts = Conflicts(store)
        self.sender = Sender(store, client, self.node, signer_for, self.policy)
        self.planner = Planner(store, client, self.node, self.policy)
        self.tracker = Tracker(store, self.node, self.sender, self.conflicts, self.policy)
        self._last_error_of: dict[str, str] = {}
        """The last unexpected error of each operation, so a repeated one is not logged again."""
        self._lock = threading.Lock()

    def step(self) -> int:
        """One round of work; returns how many transactions changed state (0: nothing to do)."""
        with self._lock:
            latest = self.node.block("latest")
            if latest is None:
                raise RuntimeError("the node has no latest block")
            self.tracker.begin_step(latest)
            self.conflicts.refresh()
            changed = self.tracker.recheck(latest.number, latest.hash, latest.parent_hash)
            tracked, unmined = self.tracker.track()
            if self.conflicts.held:
                return changed + tracked  # nothing is sent while a conflict is open
            return changed + tracked + self._send_new(busy=unmined > 0, latest=latest)

    def close(self) -> None:
        """Closes the worker's connections to the node (made again if it steps once more)."""
        self.node.close()

    def run(self, stop: threading.Event, poll_s: float = 0.2) -> None:
        """Steps until `stop` is set, resting `poll_s` when idle; a node or database that fails is
        retried with backoff (nothing is lost: the state is in the database)."""
        failures = 0
        while not stop.is_set():
            seen = self.store.signal.work_generation()
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
                self.store.signal.wait_for_work(poll_s, since=seen)

    def _send_new(self, *, busy: bool, latest: Head) -> int:
        changed = 0
        fees: dict[str, int] | None = None
        now = time.monotonic()
        seen: set[str] = set()
        while True:
            pending = self.store.pending_operations(
                self.policy.operations_per_step, exclude_senders=self.sender.keyless(now)
            )
            keyless_before = len(self.sender.keyless(now))
            groups = self.planner.groups(pending)
            for operation in pending:
                if operation.id in seen:
                    continue
                group = groups.get(operation.id)
                batch = (
                    [operation] if group is None else [member for member in group if member.id not in seen]
                )
                seen.update(member.id for member in batch)
                signer = self.sender.signer(operation.sender, now)
                if signer is None:
                    continue
                if len(batch) > 1:
                    if fees is None:
                        fees = self.sender.fees(latest)
                    shared = self._send_shared(batch, signer, fees)
                    if shared is not None:
                        changed += shared
                        busy = True
                        continue
                for member in batch:  # alone, or the shared transaction was refused: one by one
                    if self.conflicts.held:
                        return changed
                    outcome = self._send_one(member, signer, fees, busy=busy, latest=latest)
                    if outcome is None:
                        continue
                    count, fees, sent = outcome
                    changed += count
                    busy = busy or sent
            if len(self.sender.keyless(now)) == keyless_before:
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
            outcome = self.planner.prepare(operation)
            if isinstance(outcome, int):  # split: the new plan is simulated next step
                return outcome, fees, False
            if isinstance(outcome, Refused):
                return self._refused(operation, outcome, busy=busy), fees, False
            if fees is None:
                fees = self.sender.fees(latest)
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
        shared = self.planner.shared(operations)
        if shared is None:
            return None
        data, gas = shared

        def sign(nonce: int) -> SignedTransaction:
            return self.sender.signed(signer, nonce, data, gas, fees)

        for operation in operations:
            self.planner.settled(operation.id)
        chain_nonce = self.sender.chain_nonce(signer.address)
        members = [(operation.id, operation.pending[0].sequence) for operation in operations]
        try:
            recorded = self.store.sign_and_record_shared(members, chain_nonce, sign)
        except Exception as error:
            self._note_trouble(operations[0].id, error)
            return 0
        assert recorded
        assert recorded[0].raw_tx is not None
        if self.sender.send(recorded[0].raw_tx, recorded[0]):
            self.store.mark_sent(recorded[0].tx_hash or "")
        return len(recorded)

    def _refused(self, operation: PendingOperation, refused: Refused, *, busy: bool) -> int:
        if self.planner.defers(operation, refused, busy=busy):
            log.debug(
                "operation %s refused while others are in flight; retrying: %s", operation.id, refused.error
            )
            return 0
        if not self.tracker.step_head_still_canonical():
            # a reorg after this step's re-check may have dropped what the operation needs (a lot
            # registered a moment ago); the next step re-checks, re-sends it and simulates again
            log.info("operation %s refused while the chain reorganised; trying again", operation.id)
            return 0
        if self.tracker.reorg_unsettled(operation.transactions, None):
            log.info(
                "operation %s refused while transactions a reorg dropped are not back yet; trying again",
                operation.id,
            )
            return 0
        self.planner.settled(operation.id)
        lost = next((tx for tx in operation.transactions if tx.lost_block is not None), None)
        if lost is not None and lost.lost_block is not None:
            self.conflicts.hold(
                operation.id, refused.sequence, lost.tx_hash, lost.lost_block, refused.error, None
            )
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
        self, operation: PendingOperation, signer: TransactionSigner, ready: Planned, fees: Mapping[str, int]
    ) -> int:
        self.planner.settled(operation.id)

        def sign(sequence: int, nonce: int) -> SignedTransaction:
            data, gas = ready.plans[sequence]
            return self.sender.signed(signer, nonce, data, gas, fees)

        chain_nonce = self.sender.chain_nonce(signer.address)
        recorded = self.store.sign_and_record(operation.id, sorted(ready.plans), chain_nonce, sign)
        sent = []
        for tx in recorded:
            assert tx.raw_tx is not None
            if self.sender.send(tx.raw_tx, tx):
                sent.append(TransactionUpdate(tx.operation_id, tx.sequence, OperationStatus.SENT, sent=True))
        self.store.apply(sent)
        return len(recorded)

    def _note_trouble(self, operation_id: str, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        repeated = self._last_error_of.get(operation_id) == message
        self._last_error_of[operation_id] = message
        if len(self._last_error_of) > MAX_REMEMBERED:
            self._last_error_of.clear()
        if not repeated:  # it stays pending, and says why: /health and the operation show it
            record_stuck(self.store, operation_id, f"could not be prepared or sent: {message}")
        log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "operation %s could not be prepared or sent (%s); it stays pending",
            operation_id,
            message,
            exc_info=not repeated,
        )
