"""What the chain itself says about a lot, read without any index: for `provenance verify` and the
API's verification, which trust nothing the database says.

Everything is a plain read of the node: contract state by `eth_call` at a given block, a
transaction's registry events re-read from its receipt, the events naming a lot (its `lotId`
topic) or a document (its `documentHash` topic) by `eth_getLogs`, role membership by `hasRole`
at a block, and the signer of an assay recovered from its EIP-712 signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3
from web3.exceptions import TransactionNotFound, Web3Exception
from web3.types import FilterParams

from provenance.chain.client import LotOnChain, RegistryClient
from provenance.chain.events import decode_log, topic_of
from provenance.chain.logsource import _RANGE_REFUSED as RANGE_REFUSED
from provenance.chain.signing import LOAD_TYPES, attested_load, domain, recover_assay_signer
from provenance.domain.events import DecodedEvent
from provenance.domain.records import Assay
from provenance.domain.values import decode_label, encode_label
from provenance.errors import ChainError, DomainError

__all__ = ["ChainReader", "LotOnChain"]


def _topic(raw: bytes) -> str:
    return "0x" + raw.hex()


def _address_topic(address: str) -> str:
    return "0x" + Web3.to_checksum_address(address)[2:].lower().rjust(64, "0")


def signed_assay(args: Mapping[str, Any]) -> tuple[Assay, bytes]:
    """The assay and signature an AssayRecorded event (or an index row shaped like one) carries;
    raises ValueError, TypeError or KeyError when its fields cannot be an assay."""
    assay = Assay(
        lot_id=args["lotId"],
        grade_ppm=int(args["gradePpm"]),
        method=args["method"],
        certificate_hash=bytes.fromhex(str(args["certificateHash"]).removeprefix("0x")),
        assayed_at=int(args["assayedAt"]),
    )
    return assay, bytes.fromhex(str(args["signature"]).removeprefix("0x"))


class ChainReader:
    """Reads one registry on the node behind `w3`; every failure to reach it is a ChainError."""

    def __init__(self, w3: Web3, registry: str, *, max_span: int = 50_000) -> None:
        self.max_span = max_span
        self.client = RegistryClient(w3, registry)
        self.w3 = w3
        self.registry: str = str(self.client.address)
        self._receipts: dict[str, list[DecodedEvent] | None] = {}
        self._roles: dict[str, bytes] = {}

    @property
    def chain_id(self) -> int:
        try:
            return self.client.chain_id
        except (Web3Exception, OSError) as error:
            raise ChainError(f"the node does not answer: {error}") from error

    def head(self) -> int:
        try:
            return int(self.w3.eth.block_number)
        except (Web3Exception, OSError) as error:
            raise ChainError(f"the node does not answer: {error}") from error

    def has_code(self) -> bool:
        try:
            return bool(self.w3.eth.get_code(self.client.address))
        except (Web3Exception, OSError) as error:
            raise ChainError(f"the node does not answer: {error}") from error

    def lot_state(self, lot_id: str, block: int) -> LotOnChain | None:
        """`lotState(lotId)` by eth_call at `block`; None for a lot the registry does not know."""
        try:
            return self.client.lot(lot_id, block)
        except DomainError:
            return None
        except (Web3Exception, OSError) as error:
            raise ChainError(f"eth_call lotState({lot_id}) at block {block} failed: {error}") from error

    def has_role(self, role_name: str, account: str, block: int) -> bool:
        """Whether `account` held PROCESSOR_ROLE, LAB_ROLE or DEFAULT_ADMIN_ROLE at the end of `block`.

        Read from the registry's RoleGranted/RoleRevoked events, not by `hasRole` at a past block:
        events are kept by every node, past state only by archive nodes (and by anvil only at a
        large cost in its state dumps).
        """
        try:
            role = self._roles.get(role_name)
            if role is None:
                role = self._roles[role_name] = self.client.role(role_name)
        except (Web3Exception, OSError) as error:
            raise ChainError(f"eth_call {role_name}() failed: {error}") from error
        changes = self._logs(
            [
                [_topic(topic_of("RoleGranted")), _topic(topic_of("RoleRevoked"))],
                _topic(role),
                _address_topic(account),
            ],
            0,
            block,
        )
        return bool(changes) and changes[-1].name == "RoleGranted"

    def receipt_events(self, tx_hash: str) -> list[DecodedEvent] | None:
        """The registry's events in the receipt of `tx_hash`, in log order; None if the node knows no
        such transaction (or it has no receipt yet)."""
        key = tx_hash.lower()
        if key in self._receipts:
            return self._receipts[key]
        try:
            receipt = self.w3.eth.get_transaction_receipt(key)  # type: ignore[arg-type]
        except TransactionNotFound:
            self._receipts[key] = None
            return None
        except ValueError:
            return None  # not a transaction hash at all
        except (Web3Exception, OSError) as error:
            raise ChainError(f"eth_getTransactionReceipt {tx_hash} failed: {error}") from error
        events = [
            event
            for event in (decode_log(log) for log in receipt["logs"])
            if event is not None and event.address == self.registry
        ]
        self._receipts[key] = events
        return events

    def lot_logs(self, lot_id: str, from_block: int, to_block: int) -> list[DecodedEvent]:
        """Every registry event whose `lotId` topic is `lot_id`, in blocks from..to, in chain order."""
        try:
            label = encode_label(lot_id, "lot_id")
        except DomainError:
            return []
        events = self._logs([None, _topic(label)], from_block, to_block)
        return [event for event in events if event.args.get("lotId") == lot_id]

    def document_logs(self, document_hash: str, from_block: int, to_block: int) -> list[DecodedEvent]:
        """Every DocumentAnchored of `document_hash` (0x-hex bytes32), in chain order."""
        topics = [_topic(topic_of("DocumentAnchored")), None, document_hash.lower()]
        return [
            event for event in self._logs(topics, from_block, to_block) if event.name == "DocumentAnchored"
        ]

    def _logs(self, topics: list[Any], from_block: int, to_block: int) -> list[DecodedEvent]:
        """Filtered eth_getLogs over from..to, in ranges of at most `max_span` blocks, halved when the
        node refuses a range as too large (public nodes cap ranges and results)."""
        raw: list[Any] = []
        start = from_block
        span = self.max_span
        while start <= to_block:
            end = min(start + span - 1, to_block)
            params: Mapping[str, Any] = {
                "address": self.registry,
                "fromBlock": start,
                "toBlock": end,
                "topics": topics,
            }
            try:
                raw.extend(self.w3.eth.get_logs(FilterParams(**params)))  # type: ignore[typeddict-item]
            except (Web3Exception, OSError) as error:
                if end == start or not RANGE_REFUSED.search(str(error)):
                    raise ChainError(f"eth_getLogs {start}..{end} failed: {error}") from error
                span = max(1, (end - start + 1) // 2)
                continue
            start = end + 1
        events = [event for event in (decode_log(log) for log in raw) if event is not None]
        events.sort(key=lambda event: (event.block_number, event.tx_index, event.log_index))
        return events

    def assay_signer(self, args: Mapping[str, Any]) -> str | None:
        """The address that signed the assay an AssayRecorded event (or an index row shaped like
        one) describes; None when its fields or signature cannot be an assay at all."""
        try:
            assay, signature = signed_assay(args)
            return recover_assay_signer(self.chain_id, self.registry, assay, signature)
        except (DomainError, ValueError, TypeError, KeyError):
            return None
        except Exception as error:  # eth_keys raises its own BadSignature, not a ValueError
            if type(error).__name__ in {"BadSignature", "ValidationError"}:
                return None
            raise

    def load_signer(self, event: DecodedEvent) -> tuple[str, str] | None:
        """For a LoadAttested: (the device that signed the load, the site it was registered at),
        recovered from the `registerAttestedLots` calldata of its transaction. None when the
        transaction is not a direct call of it (a contract calling the registry), so there is no
        calldata to decode."""
        arguments = self.attested_registration(event.tx_hash)
        if arguments is None:
            return None
        try:
            lot_label = encode_label(str(event.args["lotId"]), "lot_id")
        except DomainError:
            return None
        found = attested_load(arguments, lot_label)
        if found is None:
            return None
        message, signature = found
        signable = encode_typed_data(domain(self.chain_id, self.registry), LOAD_TYPES, message)
        try:
            signer = str(Account.recover_message(signable, signature=signature))
        except Exception:  # a malformed signature: the registry would have refused it
            return None
        return signer, decode_label(bytes(arguments["site"]))

    def attested_registration(self, tx_hash: str) -> dict[str, Any] | None:
        """The `registerAttestedLots` arguments of transaction `tx_hash`, decoded from its calldata
        (verification and the audit both recover device signatures from them); None when it is not
        a direct call of it, so there is no calldata to decode."""
        try:
            transaction = self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        except (Web3Exception, OSError) as error:
            raise ChainError(f"eth_getTransactionByHash {tx_hash} failed: {error}") from error
        if str(transaction.get("to") or "").lower() != self.registry.lower():
            return None
        try:
            function, arguments = self.client.contract.decode_function_input(transaction["input"])
        except ValueError:
            return None
        return dict(arguments) if function.fn_name == "registerAttestedLots" else None

    def device_at(self, device: str, block: int) -> tuple[str, bool]:
        """The device's site and whether it could attest at the end of `block`, from its
        DeviceAdded/DeviceRevoked events (see `has_role` for why events, not past state)."""
        changes = self._logs(
            [[_topic(topic_of("DeviceAdded")), _topic(topic_of("DeviceRevoked"))], _address_topic(device)],
            0,
            block,
        )
        if not changes:
            return decode_label(bytes(32)), False
        return str(changes[0].args["site"]), changes[-1].name == "DeviceAdded"
