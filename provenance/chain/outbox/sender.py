"""Keys, nonces, fees, signing and sending: everything between a planned call and the node's pool."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from hexbytes import HexBytes
from web3 import Web3

from provenance.chain.client import RegistryClient
from provenance.chain.connection import TransactionSigner
from provenance.chain.node_calls import Head, NodeCalls
from provenance.chain.outbox.policy import OutboxPolicy
from provenance.chain.outbox.storage import record_stuck
from provenance.domain.outbox import OutboxStorage, OutboxTransaction, SignedTransaction

log = logging.getLogger(__name__)

MAX_REMEMBERED = 10_000
"""Refusals remembered (so a repeated one is logged once); forgotten all at once past this."""


class Sender:
    def __init__(
        self,
        store: OutboxStorage,
        client: RegistryClient,
        node: NodeCalls,
        signer_for: Callable[[str], TransactionSigner],
        policy: OutboxPolicy,
    ) -> None:
        self.store = store
        self.client = client
        self.node = node
        self.signer_for = signer_for
        self.policy = policy
        self._signers: dict[str, TransactionSigner] = {}
        self._keyless: dict[str, float] = {}
        """Senders whose key could not be opened (lower case) -> when to try again."""
        self._nonce_seen: dict[str, tuple[int, float]] = {}
        """Each sender's pending count on the node, and when it was asked (lower-case address)."""
        self._refusals: dict[str, str] = {}
        """The last error the node gave each transaction hash, so a repeated one is not logged again."""

    def keyless(self, now: float) -> tuple[str, ...]:
        """Senders set aside for want of a key, as of `now` (those whose time is up are tried again)."""
        self._keyless = {sender: until for sender, until in self._keyless.items() if until > now}
        return tuple(self._keyless)

    def signer(self, sender: str, now: float) -> TransactionSigner | None:
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
                self.policy.key_retry_s,
            )
            self._keyless[key] = now + self.policy.key_retry_s
            return None
        if signer.address.lower() != key:
            log.error("the key given for %s is %s's; its operations wait", sender, signer.address)
            self._keyless[key] = now + self.policy.key_retry_s
            return None
        self._signers[key] = signer
        return signer

    def chain_nonce(self, address: str) -> int:
        """The node's pending transaction count of `address`, asked at most every `nonce_check_s`
        (it costs a round trip on every send otherwise). The store takes the larger of it and its
        own next nonce, so an old answer only matters when the key signs elsewhere too; then the
        node refuses the transaction, the tracker finds the nonce taken, and this asks again."""
        key = address.lower()
        now = time.monotonic()
        seen = self._nonce_seen.get(key)
        if seen is None or now - seen[1] >= self.policy.nonce_check_s:
            seen = (self.node.transaction_count(Web3.to_checksum_address(address), "pending"), now)
            self._nonce_seen[key] = seen
        return seen[0]

    def forget_nonce(self, address: str) -> None:
        """Asks the node again before the next signing for `address` (its nonce was taken)."""
        self._nonce_seen.pop(address.lower(), None)

    def fees(self, latest: Head) -> dict[str, int]:
        """From the step's latest block: twice its base fee covers six full blocks of rises."""
        base_fee = latest.base_fee
        if base_fee is None:
            return {"gasPrice": self.node.gas_price()}
        priority = self.policy.priority_fee_wei
        return {"maxFeePerGas": 2 * base_fee + priority, "maxPriorityFeePerGas": priority}

    def signed(
        self, signer: TransactionSigner, nonce: int, data: bytes, gas: int, fees: Mapping[str, int]
    ) -> SignedTransaction:
        """A call of the registry, signed with `fees` (from `fees`)."""
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

    def send(self, raw_tx: str, tx: OutboxTransaction) -> bool:
        """Sends signed bytes; False if the node refused them (the next step looks again)."""
        try:
            self.node.send_raw_transaction(raw_tx)
        except Exception as error:
            if "already known" in str(error).lower() or "known transaction" in str(error).lower():
                return True
            message = str(error)
            repeated = self._refusals.get(tx.tx_hash or "") == message
            self._refusals[tx.tx_hash or ""] = message
            if len(self._refusals) > MAX_REMEMBERED:
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
                record_stuck(
                    self.store, tx.operation_id, f"the node refused its transaction {tx.tx_hash}: {message}"
                )
            return False
        return True
