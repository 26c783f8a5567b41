"""Planning what to send: coalescing small registrations, splitting what is too big, simulating
every transaction of an operation before any gets a nonce, and deferring a refusal while the
chain may still be catching up."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from web3 import Web3

from provenance.chain.client import RegistryClient, decode_revert
from provenance.chain.node_calls import NodeCalls
from provenance.chain.outbox.calls import call_for, shared_registration
from provenance.chain.outbox.policy import GAS_MARGIN, SHARED_BASE_GAS, SHARED_LOT_GAS, OutboxPolicy
from provenance.domain.commands import RegisterLots
from provenance.domain.outbox import OutboxStorage, OutboxTransaction, PendingOperation, coalesce
from provenance.errors import CallReverted, ContractRevert

log = logging.getLogger(__name__)

TOO_LARGE = "TransactionTooLarge"


@dataclass(frozen=True)
class Planned:
    """Every pending transaction of an operation passed simulation."""

    plans: dict[int, tuple[bytes, int]]
    """sequence -> (calldata, gas limit)"""


@dataclass(frozen=True)
class Refused:
    """A transaction of the operation the chain would refuse, and why."""

    sequence: int
    error: ContractRevert


class Planner:
    def __init__(
        self, store: OutboxStorage, client: RegistryClient, node: NodeCalls, policy: OutboxPolicy
    ) -> None:
        self.store = store
        self.client = client
        self.node = node
        self.policy = policy
        self._deferred: dict[str, float] = {}
        """Operations refused while others were in flight -> when they were first refused."""

    def groups(self, pending: Sequence[PendingOperation]) -> dict[str, list[PendingOperation]]:
        """Small registrations that share one transaction (see `provenance.domain.outbox.coalesce`)."""
        return coalesce(pending, self.policy.coalesce_lots, self.policy.lots_per_tx)

    def prepare(self, operation: PendingOperation) -> Planned | Refused | int:
        """Splits what is too big (returns how many new transactions), or simulates every pending
        transaction of the operation: all pass (their calldata and gas), or the first refusal."""
        pending = operation.pending
        lots_per_tx = self.policy.lots_per_tx
        for tx in pending:
            start, end = tx.item_start, tx.item_end
            if start is not None and end is not None and end - start > lots_per_tx:
                cuts = list(range(start + lots_per_tx, end, lots_per_tx))
                self.store.split_transaction(operation.id, tx.sequence, cuts)
                return len(cuts)
        plans: dict[int, tuple[bytes, int]] = {}
        for tx in pending:
            data = call_for(operation.command, tx.item_start, tx.item_end).calldata()
            if len(data) > self.policy.max_tx_bytes:
                return self._halve(
                    operation, tx, f"{len(data)} bytes of calldata, over {self.policy.max_tx_bytes}"
                )
            try:
                estimate = self.node.estimate_gas(
                    {
                        "from": Web3.to_checksum_address(operation.sender),
                        "to": self.client.address,
                        "data": data,
                    }
                )
            except CallReverted as error:
                return Refused(tx.sequence, decode_revert(error.data))
            if estimate > self.policy.max_tx_gas:
                return self._halve(operation, tx, f"{estimate} gas, over {self.policy.max_tx_gas}")
            plans[tx.sequence] = (data, min(self.policy.max_tx_gas, int(estimate * GAS_MARGIN)))
        return Planned(plans)

    def shared(self, operations: Sequence[PendingOperation]) -> tuple[bytes, int] | None:
        """Calldata and gas limit of one `registerLots` carrying every lot of `operations`, or None
        if it is too big or refused at simulation (each then goes alone, so a bad lot fails alone)."""
        registrations = [op.command for op in operations if isinstance(op.command, RegisterLots)]
        assert len(registrations) == len(operations), "only registrations are coalesced"
        data = shared_registration(registrations).calldata()
        gas = SHARED_BASE_GAS + SHARED_LOT_GAS * sum(command.items for command in registrations)
        if gas > self.policy.max_tx_gas or len(data) > self.policy.max_tx_bytes:
            return None
        sender = Web3.to_checksum_address(operations[0].sender)
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
        return data, gas

    def defers(self, operation: PendingOperation, refused: Refused, *, busy: bool) -> bool:
        """Whether to try a refused operation again rather than fail it: other transactions are
        unmined (it may need one of them) and it has not waited `defer_s` yet."""
        now = time.monotonic()
        first = self._deferred.setdefault(operation.id, now)
        return busy and now - first < self.policy.defer_s and refused.error.name != TOO_LARGE

    def settled(self, operation_id: str) -> None:
        """The operation was sent or failed: a later refusal starts a new wait."""
        self._deferred.pop(operation_id, None)

    def _halve(self, operation: PendingOperation, tx: OutboxTransaction, why: str) -> Refused | int:
        if tx.item_start is None or tx.item_end is None or tx.item_end - tx.item_start < 2:
            return Refused(tx.sequence, ContractRevert(TOO_LARGE, {"reason": why}))
        middle = (tx.item_start + tx.item_end) // 2
        log.info("operation %s: transaction %d needs %s; splitting it", operation.id, tx.sequence, why)
        self.store.split_transaction(operation.id, tx.sequence, [middle])
        return 1
