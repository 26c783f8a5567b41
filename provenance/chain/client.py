"""The registry as Python calls: deploy it, send its transactions, read its state.

Transactions are signed with an eth-account key, by an external signer (`remote_signer`), or, on
test chains, sent from an account the node holds unlocked. A refused transaction surfaces as `ContractRevert` carrying
the contract's custom error name and arguments, decoded from the revert data.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import BlockIdentifier, TxParams, TxReceipt

from provenance.chain.artifacts import registry_artifact
from provenance.chain.connection import TransactionSigner
from provenance.chain.signing import sign_assay
from provenance.domain.records import (
    Assay,
    LoadAttestation,
    LotRegistration,
    Transformation,
)
from provenance.domain.values import CorrectionReason, decode_label, encode_label
from provenance.errors import ChainError, ContractRevert, DomainError, InsufficientFunds

Sender = TransactionSigner | str
"""A key that signs (in this process or an external signer), or an address the node holds
unlocked (test chains only)."""

ERROR_PREFIX = "OreLotRegistry"


@dataclass(frozen=True)
class LotOnChain:
    custodian: str
    remaining_g: int
    pending_custodian: str | None


def registration_tuple(lot: LotRegistration) -> tuple[Any, ...]:
    return (
        encode_label(lot.lot_id, "lot_id"),
        encode_label(lot.face, "face"),
        encode_label(lot.commodity, "commodity"),
        lot.mass_g,
        lot.grade_ppm,
        lot.extracted_at,
        lot.record_hash,
    )


def attestation_tuple(attestation: LoadAttestation) -> tuple[Any, ...]:
    return (encode_label(attestation.trip_id, "trip_id"), attestation.loaded_at, attestation.signature)


def decode_revert(data: str | bytes) -> ContractRevert:
    """The custom error in revert `data`, by name (the registry's prefix dropped) and arguments."""
    raw = HexBytes(data)
    if len(raw) < 4:
        return ContractRevert("Reverted", {"data": raw.to_0x_hex()})
    entry = registry_artifact().errors_by_selector.get(bytes(raw[:4]))
    if entry is None:
        return ContractRevert("UnknownRevert", {"data": raw.to_0x_hex()})
    types = [item["type"] for item in entry["inputs"]]
    values = abi_decode(types, bytes(raw[4:]))
    args = {
        item["name"]: _plain(item["type"], value) for item, value in zip(entry["inputs"], values, strict=True)
    }
    return ContractRevert(entry["name"].removeprefix(ERROR_PREFIX), args)


def _plain(abi_type: str, value: Any) -> Any:
    if abi_type == "bytes32":
        return decode_label(value)
    if abi_type == "address":
        return Web3.to_checksum_address(value)
    return value


class RegistryClient:
    """One deployed `OreLotRegistry` on one chain."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract: Contract = w3.eth.contract(address=self.address, abi=registry_artifact().abi)
        self._chain_id: int | None = None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.w3.eth.chain_id
        return self._chain_id

    # ---------------------------------------------------------------- deploy and send

    @classmethod
    def deploy(cls, w3: Web3, deployer: Sender, admin: str | None = None) -> tuple[RegistryClient, TxReceipt]:
        """Deploys a fresh registry whose admin is `admin` (the deployer by default)."""
        artifact = registry_artifact()
        factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        admin_address = admin or _address_of(deployer)
        constructor = factory.constructor(admin_address)
        try:
            gas: int | None = int(constructor.estimate_gas({"from": _address_of(deployer)}))
        except Exception:  # a constructor that reverts: `send` says why, decoded
            gas = None
        if gas is not None:
            _check_can_pay(w3, _address_of(deployer), gas)
        receipt = send(w3, constructor, deployer)
        address = receipt["contractAddress"]
        if address is None:
            raise ChainError("deployment receipt has no contract address")
        return cls(w3, address), receipt

    def transact(self, sender: Sender, function: str, *args: Any) -> TxReceipt:
        return send(self.w3, self.contract.functions[function](*args), sender)

    # ---------------------------------------------------------------- operations

    def grant_role(self, admin: Sender, role: bytes, account: str) -> TxReceipt:
        return self.transact(admin, "grantRole", role, account)

    def role(self, name: str) -> bytes:
        """The id of PROCESSOR_ROLE, LAB_ROLE or DEFAULT_ADMIN_ROLE."""
        return bytes(self.contract.functions[name]().call())

    def registrar_role(self, site: str) -> bytes:
        return bytes(self.contract.functions.registrarRole(encode_label(site, "site")).call())

    def register_lots(self, sender: Sender, lots: Sequence[LotRegistration]) -> TxReceipt:
        """Registers lots of one site in one transaction (`registerLot` for a single lot)."""
        site = _one_site(lots)
        if len(lots) == 1:
            return self.transact(sender, "registerLot", site, registration_tuple(lots[0]))
        return self.transact(sender, "registerLots", site, [registration_tuple(lot) for lot in lots])

    def register_attested_lots(
        self, sender: Sender, lots: Sequence[LotRegistration], attestations: Sequence[LoadAttestation]
    ) -> TxReceipt:
        return self.transact(
            sender,
            "registerAttestedLots",
            _one_site(lots),
            [registration_tuple(lot) for lot in lots],
            [attestation_tuple(a) for a in attestations],
        )

    def transform(self, sender: Sender, transformation: Transformation) -> TxReceipt:
        return self.transact(sender, "transform", *transform_args(transformation))

    def hand_over(self, sender: Sender, lot_ids: Sequence[str], to: str) -> TxReceipt:
        return self.transact(sender, "handOver", _labels(lot_ids), to)

    def cancel_handover(self, sender: Sender, lot_ids: Sequence[str]) -> TxReceipt:
        return self.transact(sender, "cancelHandover", _labels(lot_ids))

    def accept_handover(self, sender: Sender, lot_ids: Sequence[str]) -> TxReceipt:
        return self.transact(sender, "acceptHandover", _labels(lot_ids))

    def submit_assay(self, sender: Sender, assay: Assay, signature: bytes) -> TxReceipt:
        return self.transact(sender, "submitAssay", assay_tuple(assay), signature)

    def sign_assay(self, lab: LocalAccount, assay: Assay) -> bytes:
        return sign_assay(lab, self.chain_id, self.address, assay)

    def anchor_document(self, sender: Sender, lot_id: str, kind: str, document_hash: bytes) -> TxReceipt:
        return self.transact(
            sender,
            "anchorDocument",
            encode_label(lot_id, "lot_id"),
            encode_label(kind, "kind"),
            document_hash,
        )

    def add_device(self, sender: Sender, device: str, site: str, kind: str) -> TxReceipt:
        return self.transact(
            sender, "addDevice", device, encode_label(site, "site"), encode_label(kind, "kind")
        )

    def revoke_device(self, sender: Sender, device: str) -> TxReceipt:
        return self.transact(sender, "revokeDevice", device)

    def correct_lot(
        self, sender: Sender, lot_id: str, reason: CorrectionReason, adjustment_g: int, record_hash: bytes
    ) -> TxReceipt:
        return self.transact(
            sender, "correctLot", encode_label(lot_id, "lot_id"), int(reason), adjustment_g, record_hash
        )

    # ---------------------------------------------------------------- reads

    def lot(self, lot_id: str, block: BlockIdentifier = "latest") -> LotOnChain | None:
        custodian, remaining_g, pending = self.contract.functions.lotState(
            encode_label(lot_id, "lot_id")
        ).call(block_identifier=block)
        if int(custodian, 16) == 0:
            return None
        return LotOnChain(custodian, remaining_g, None if int(pending, 16) == 0 else pending)

    def has_role(self, role: bytes, account: str, block: BlockIdentifier = "latest") -> bool:
        return bool(self.contract.functions.hasRole(role, account).call(block_identifier=block))

    def assay_recorded(self, assay: Assay, block: BlockIdentifier = "latest") -> bool:
        """Whether the registry has recorded this exact assay already (a resubmission would revert)."""
        functions = self.contract.functions
        digest = functions.assayDigest(assay_tuple(assay)).call(block_identifier=block)
        return bool(functions.assayRecorded(digest).call(block_identifier=block))

    def device_of(self, device: str, block: BlockIdentifier = "latest") -> tuple[str, bool] | None:
        """(site, active) of a device the registry knows, or None."""
        site, _kind, active = self.contract.functions.deviceOf(Web3.to_checksum_address(device)).call(
            block_identifier=block
        )
        if not any(site):
            return None
        return decode_label(site), bool(active)


def transform_args(t: Transformation) -> tuple[Any, ...]:
    """The arguments of `transform(kind, site, inputs, outputs, lossG, recordHash)`."""
    return (
        int(t.kind),
        encode_label(t.site, "site"),
        [(encode_label(i.lot_id, "lot_id"), i.mass_g) for i in t.inputs],
        [
            (
                encode_label(o.lot_id, "lot_id"),
                encode_label(o.commodity, "commodity"),
                o.mass_g,
                o.grade_ppm,
                o.record_hash,
            )
            for o in t.outputs
        ],
        t.loss_g,
        t.record_hash,
    )


def assay_tuple(assay: Assay) -> tuple[Any, ...]:
    return (
        encode_label(assay.lot_id, "lot_id"),
        assay.grade_ppm,
        encode_label(assay.method, "method"),
        assay.certificate_hash,
        assay.assayed_at,
    )


def send(w3: Web3, call: ContractFunction | Any, sender: Sender) -> TxReceipt:
    """Sends one transaction and waits for its receipt; a revert raises ContractRevert."""
    try:
        if isinstance(sender, str):
            tx_hash = call.transact({"from": sender})
        else:
            address = Web3.to_checksum_address(sender.address)
            params: TxParams = {
                "from": address,
                "nonce": w3.eth.get_transaction_count(address, "pending"),
                "chainId": w3.eth.chain_id,
            }
            tx = call.build_transaction(params)
            tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(dict(tx)).raw_transaction)
    except Exception as error:
        data = revert_data(error)
        if data is None:
            raise
        raise decode_revert(data) from error
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1:
        raise ContractRevert("Reverted", {"tx_hash": receipt["transactionHash"].to_0x_hex()})
    return receipt


def revert_data(error: Exception) -> bytes | None:
    """The revert data inside a failed call or estimate, from a real node or from eth-tester.

    Real nodes answer with JSON-RPC error data, which web3 raises as ContractCustomError;
    eth-tester through web3 raises its own TransactionFailed with the bytes' repr in the message.
    """
    if isinstance(error, ContractCustomError):
        return bytes(HexBytes(str(error.data)))
    if isinstance(error, ContractLogicError):
        return (
            bytes(HexBytes(error.data))
            if isinstance(error.data, str) and error.data.startswith("0x")
            else b""
        )
    if type(error).__name__ == "TransactionFailed":
        # web3's eth-tester provider decodes any revert data after its selector as Error(string) when
        # it can, so a custom error with one string argument (ZeroValue("site")) arrives as the bare
        # text "site"; the exception it re-raised from still holds the raw bytes.
        original = error.__context__
        if type(original).__name__ == "TransactionFailed" and original is not None and original.args:
            inner = original.args[0]
            if isinstance(inner, Exception) and inner.args and isinstance(inner.args[0], bytes):
                return inner.args[0]
        message = str(error.args[0]) if error.args else ""
        prefix = "execution reverted: "
        if message.startswith(prefix + "b'") or message.startswith(prefix + 'b"'):
            literal = ast.literal_eval(message[len(prefix) :])
            return bytes(literal) if isinstance(literal, bytes) else None
        if message.startswith(prefix):
            return b""
    return None


def _check_can_pay(w3: Web3, address: str, gas: int) -> None:
    """A deployer that cannot pay is said so in one line, before anything is sent (a node's own
    refusal arrives as a web3 traceback: "Sender doesn't have enough funds")."""
    price = int(w3.eth.gas_price)
    if price == 0:
        return  # a chain without fees (a consortium chain may run so)
    balance, needed = int(w3.eth.get_balance(Web3.to_checksum_address(address))), gas * price
    if balance < needed:
        raise InsufficientFunds(
            f"account {address} holds {balance} wei on chain {w3.eth.chain_id}; deploying the registry "
            f"needs about {needed} wei ({gas} gas at {price} wei): fund that account, or set "
            "PROVENANCE_KEYSTORE and PROVENANCE_KEYSTORE_PASSWORD_FILE (provenance deploy: --keystore "
            "and --password-file) to a funded key"
        )


def _address_of(sender: Sender) -> str:
    return sender if isinstance(sender, str) else sender.address


def _one_site(lots: Sequence[LotRegistration]) -> bytes:
    sites = {lot.site for lot in lots}
    if len(sites) > 1:
        raise DomainError("lots", f"one transaction registers lots of one site, got {sorted(sites)}")
    return encode_label(sites.pop() if sites else "", "site")


def _labels(lot_ids: Sequence[str]) -> list[bytes]:
    return [encode_label(lot_id, "lot_id") for lot_id in lot_ids]
