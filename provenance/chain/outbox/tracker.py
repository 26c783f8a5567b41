"""Following sent transactions: receipts, confirmations, failures, and re-checks after reorgs.

Blocks are re-checked first (a transaction whose block left the chain goes back to `sent`, one
that moved is recorded where it is now), then what is in flight is tracked in nonce order; see
`provenance.chain.outbox.worker` for the rules.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from web3 import Web3

from provenance.chain.client import decode_revert
from provenance.chain.node_calls import Head, NodeCalls, Receipt
from provenance.chain.outbox.calls import jsonable
from provenance.chain.outbox.conflicts import Conflicts
from provenance.chain.outbox.policy import OutboxPolicy
from provenance.chain.outbox.sender import Sender
from provenance.domain.blocks import FINALIZED
from provenance.domain.operations import OperationStatus
from provenance.domain.outbox import OutboxStorage, OutboxTransaction, TransactionUpdate
from provenance.errors import CallReverted, ContractRevert

log = logging.getLogger(__name__)


class Tracker:
    def __init__(
        self,
        store: OutboxStorage,
        node: NodeCalls,
        sender: Sender,
        conflicts: Conflicts,
        policy: OutboxPolicy,
    ) -> None:
        self.store = store
        self.node = node
        self.sender = sender
        self.conflicts = conflicts
        self.policy = policy
        self._settled = -1
        """The newest block whose transactions count as confirmed, as of this step."""
        self._receipts: dict[str, Receipt | None] = {}
        """Receipts read during the current step, by hash: the rows of a coalesced transaction share one."""
        self._step_head: tuple[int, str] | None = None
        """(number, hash) of the head the current step started from."""
        self._anchor: tuple[int, str] | None = None
        """The head of the last re-check: while it keeps its hash, nothing below it changed."""
        self._next_full_recheck = 0.0

    def begin_step(self, latest: Head) -> None:
        """Forgets the last step's receipts and settles on `latest` as this step's head."""
        self._receipts.clear()
        self._step_head = (latest.number, latest.hash)
        self._settled = self._settled_block(latest.number)

    def _settled_block(self, head: int) -> int:
        """`confirmations` under the head, or the node's finalized block (-1 while it has none)."""
        if self.policy.confirmations == FINALIZED:
            finalized = self.node.block(FINALIZED)
            return -1 if finalized is None else finalized.number
        return head - self.policy.confirmations

    def recheck(self, head: int, head_hash: str, parent_hash: str) -> int:
        """Blocks are hash-linked: while the block at the height of the last step's head keeps its
        hash, nothing below it changed, and only transactions mined above it need a look. Every
        `full_recheck_s` the whole window is looked at anyway."""
        since = max(0, head - self.policy.recheck_blocks + 1)
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
            self._next_full_recheck = now + self.policy.full_recheck_s
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
            carriers = _rows_per_hash(txs)
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
                    if update is not None and _changes(tx, update):
                        updates.append(update)
        self.store.apply(updates)
        return len(updates)

    def track(self) -> tuple[int, int]:
        """Returns (transactions changed, transactions still unmined)."""
        updates: list[TransactionUpdate] = []
        resend: list[OutboxTransaction] = []
        unmined = 0
        in_flight = self.store.in_flight()
        carriers = _rows_per_hash(in_flight)
        for tx in in_flight:
            receipt = self._receipt(tx)
            if receipt is None:
                receipt = self._lost_or_waiting(tx, updates, resend)
            if receipt is None:
                unmined += 1
                continue
            update = self._mined(tx, receipt, shared=carriers[tx.tx_hash or ""] > 1)
            if update is not None and _changes(tx, update):
                updates.append(update)
        self.store.apply(updates)
        if self.conflicts.held:
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
                outcome[key] = self.sender.send(tx.raw_tx, tx)
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
            self.sender.forget_nonce(tx.sender)  # ask the node again before signing anew
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
        if self.reorg_unsettled([tx], number):
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
            self.conflicts.hold(tx.operation_id, tx.sequence, tx.tx_hash, tx.lost_block, error, update)
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

    def _receipt(self, tx: OutboxTransaction, *, fresh: bool = False) -> Receipt | None:
        key = tx.tx_hash or ""
        if key in self._receipts and not fresh:
            return self._receipts[key]
        receipt = self.node.receipt(key)
        self._receipts[key] = receipt
        return receipt

    def _known(self, tx_hash: str) -> bool:
        return self.node.transaction(tx_hash) is not None

    def reorg_unsettled(self, refused: Sequence[OutboxTransaction], block_number: int | None) -> bool:
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

    def step_head_still_canonical(self) -> bool:
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


def _rows_per_hash(txs: Sequence[OutboxTransaction]) -> dict[str, int]:
    """How many outbox rows each transaction hash carries (more than one: a coalesced transaction)."""
    counts: dict[str, int] = {}
    for tx in txs:
        counts[tx.tx_hash or ""] = counts.get(tx.tx_hash or "", 0) + 1
    return counts


def _changes(tx: OutboxTransaction, update: TransactionUpdate) -> bool:
    return (tx.status, tx.block_number, tx.block_hash) != (
        update.status,
        update.block_number,
        update.block_hash,
    )
