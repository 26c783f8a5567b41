"""The chain reads of `provenance audit`: where the registry was deployed (from its own events),
every lot's `lotState` by batched `eth_call`, the registry's role ids, block hashes, signers.

`lotState` for tens of thousands of lots is the audit's largest read: the calls go out as
JSON-RPC batches (one HTTP request per `STATE_BATCH` lots) and their answers are sliced word by
word rather than decoded through web3's contract layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3
from web3.exceptions import Web3Exception
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint

from provenance.chain.deployment import Deployment
from provenance.chain.events import topic_of
from provenance.chain.logsource import RpcLogSource
from provenance.chain.reader import ChainReader, signed_assay
from provenance.chain.signing import ASSAY_TYPES, LOAD_TYPES, assay_message, attested_load, domain
from provenance.domain.events import DecodedEvent
from provenance.domain.site_balance import SiteRoles
from provenance.domain.values import decode_label, encode_label
from provenance.errors import ChainError, DeploymentError

STATE_BATCH = 500
"""eth_calls per JSON-RPC batch request."""
STATE_WORKERS = 2
"""Batches in flight at once: the node answers one while Python slices another."""
DEFAULT_ADMIN_ROLE = "0x" + "00" * 32
_LOT_STATE = Web3.keccak(text="lotState(bytes32)")[:4].hex()


@dataclass(frozen=True)
class ChainLotState:
    """`lotState(lotId)`: custodian (None for a lot the registry does not know), remaining, pending."""

    custodian: str | None
    remaining_g: int
    pending_custodian: str | None


def role_id(name: str) -> str:
    return Web3.keccak(text=name).to_0x_hex()


def registrar_role_id(site: str) -> str:
    """`registrarRole(site)` = keccak256(abi.encode(REGISTRAR_ROLE, site))."""
    encoded = abi_encode(
        ["bytes32", "bytes32"], [Web3.keccak(text="REGISTRAR_ROLE"), encode_label(site, "site")]
    )
    return Web3.keccak(encoded).to_0x_hex()


def site_roles(site: str) -> SiteRoles:
    """The role ids whose holders a site's mass-balance account counts as the site's own."""
    return SiteRoles(registrar_role_id(site).lower(), role_id("PROCESSOR_ROLE").lower())


def role_ids() -> dict[str, str]:
    return {"admin": DEFAULT_ADMIN_ROLE, "processor": role_id("PROCESSOR_ROLE"), "lab": role_id("LAB_ROLE")}


class AuditChain:
    """The node behind `w3`, seen through one registry; every failure to reach it is a ChainError."""

    def __init__(self, w3: Web3, registry: str) -> None:
        self.w3 = w3
        self.registry = Web3.to_checksum_address(registry)
        self.reader = ChainReader(w3, self.registry)
        self.source = RpcLogSource(w3, self.registry)

    def _call(self, what: str, function: Any, *args: Any) -> Any:
        try:
            return function(*args)
        except (Web3Exception, OSError, ValueError) as error:
            raise ChainError(f"{what} failed: {error}") from error

    @property
    def chain_id(self) -> int:
        return int(self._call("eth_chainId", lambda: self.w3.eth.chain_id))

    def genesis_hash(self) -> str:
        return self.source.block(0).hash

    def head(self) -> int:
        return int(self._call("eth_blockNumber", lambda: self.w3.eth.block_number))

    def has_code(self) -> bool:
        return bool(self._call("eth_getCode", lambda: self.w3.eth.get_code(self.registry)))

    def block_hashes(self, numbers: Iterable[int]) -> dict[int, str]:
        """The node's hash of each block it has; blocks above its head are left out."""
        head = self.head()
        wanted = [number for number in numbers if 0 <= number <= head]
        return {number: ref.hash for number, ref in self.source.blocks(wanted).items()}

    def deployment(self) -> Deployment:
        """The registry's deployment, found from the chain alone: the constructor grants the admin
        role, so the registry's first RoleGranted is in its deployment transaction (checked against
        that transaction's receipt)."""
        if not self.has_code():
            raise DeploymentError(f"no contract at {self.registry}")
        topics = ["0x" + topic_of("RoleGranted").hex(), DEFAULT_ADMIN_ROLE]
        first = self._first_log(topics)
        if first is None:
            raise DeploymentError(
                f"the contract at {self.registry} has emitted no RoleGranted: not an OreLotRegistry"
            )
        receipt = self._call(
            f"eth_getTransactionReceipt {first.tx_hash}",
            lambda: self.w3.eth.get_transaction_receipt(first.tx_hash),  # type: ignore[arg-type]
        )
        created = receipt.get("contractAddress")
        if created is None or Web3.to_checksum_address(created) != self.registry:
            raise DeploymentError(
                f"the first admin grant of {self.registry} (tx {first.tx_hash}) is not its deployment"
            )
        from provenance.chain.artifacts import registry_artifact

        return Deployment(
            chain_id=self.chain_id,
            genesis_hash=self.genesis_hash(),
            registry=self.registry,
            block_number=first.block_number,
            block_hash=first.block_hash,
            tx_hash=first.tx_hash,
            deployer=str(receipt["from"]),
            compiler_version=registry_artifact().compiler_version,
        )

    def _first_log(self, topics: list[Any]) -> DecodedEvent | None:
        head = self.head()
        span = self.reader.max_span
        start = 0
        while start <= head:
            found = self.reader._logs(topics, start, min(start + span - 1, head))
            if found:
                return found[0]
            start += span
        return None

    # ---------------------------------------------------------------- state

    def lot_states(self, lot_ids: Sequence[str], block: int) -> dict[str, ChainLotState]:
        """`lotState` of every lot at `block`, by batched eth_call."""
        chunks = [list(lot_ids[i : i + STATE_BATCH]) for i in range(0, len(lot_ids), STATE_BATCH)]
        found: dict[str, ChainLotState] = {}
        if not isinstance(self.w3.provider, JSONBaseProvider):
            for lot_id in lot_ids:
                state = self.reader.lot_state(lot_id, block)
                found[lot_id] = (
                    ChainLotState(None, 0, None)
                    if state is None
                    else ChainLotState(state.custodian, state.remaining_g, state.pending_custodian)
                )
            return found
        with ThreadPoolExecutor(STATE_WORKERS) as pool:
            for chunk, answers in zip(
                chunks, pool.map(lambda c: self._state_batch(c, block), chunks), strict=True
            ):
                found.update(zip(chunk, answers, strict=True))
        return found

    def _state_batch(self, lot_ids: list[str], block: int) -> list[ChainLotState]:
        provider = self.w3.provider
        assert isinstance(provider, JSONBaseProvider)
        calls = [
            (
                RPCEndpoint("eth_call"),
                [{"to": self.registry, "input": "0x" + _LOT_STATE + _label_hex(lot_id)}, hex(block)],
            )
            for lot_id in lot_ids
        ]
        try:
            answers = provider.make_batch_request(calls)
        except (Web3Exception, OSError) as error:
            raise ChainError(
                f"eth_call lotState ({len(lot_ids)} lots) at block {block} failed: {error}"
            ) from error
        if not isinstance(answers, list):
            raise ChainError(f"eth_call lotState at block {block} failed: {answers.get('error')}")
        states: list[ChainLotState] = []
        for lot_id, answer in zip(lot_ids, answers, strict=True):
            result = answer.get("result")
            if answer.get("error") is not None or not isinstance(result, str):
                raise ChainError(
                    f"eth_call lotState({lot_id}) at block {block} failed: {answer.get('error')}"
                )
            states.append(_lot_state(result))
        return states

    # ---------------------------------------------------------------- signatures

    def signer_recovery(self) -> SignerRecovery:
        """Collects the signatures of each range's events as the rebuild reads them; recovers at the end."""
        return SignerRecovery(self)

    def signature_jobs(
        self, events: Iterable[DecodedEvent], transactions: dict[str, Any]
    ) -> list[tuple[str, tuple[str, int], dict[str, Any], bytes, str | None]]:
        """(kind, (tx hash, log index), typed-data message, signature, site) of each signature in
        `events`; a LoadAttested's comes from its transaction's calldata (cached in `transactions`)."""
        jobs: list[tuple[str, tuple[str, int], dict[str, Any], bytes, str | None]] = []
        for event in events:
            key = (event.tx_hash.lower(), event.log_index)
            if event.name == "AssayRecorded":
                job = _assay_job(event.args)
                if job is not None:
                    jobs.append(("assay", key, job[0], job[1], None))
            elif event.name == "LoadAttested":
                load = self._load_job(event, transactions)
                if load is not None:
                    jobs.append(("load", key, load[0], load[1], load[2]))
        return jobs

    def _load_job(
        self, event: DecodedEvent, transactions: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes, str] | None:
        """The `Load` message and signature of a LoadAttested, from its transaction's calldata; None
        when the registry was not called directly (no calldata to decode)."""
        tx_hash = event.tx_hash.lower()
        if tx_hash not in transactions:
            transactions[tx_hash] = self.reader.attested_registration(tx_hash)
        decoded = transactions[tx_hash]
        if decoded is None:
            return None
        found = attested_load(decoded, _label_bytes(str(event.args["lotId"])))
        if found is None:
            return None
        message, signature = found
        return message, signature, decode_label(bytes(decoded["site"]))


Job = tuple[str, tuple[str, int], dict[str, Any], bytes, str | None]


class SignerRecovery:
    """The signatures of the events `add`ed (each range's, as the rebuild reads them: a device
    attestation's transaction is fetched then); `result()` recovers every signer and gives (assay
    signers, load signers), keyed by (tx hash, log index)."""

    def __init__(self, chain: AuditChain) -> None:
        self.chain = chain
        self.chain_id, self.registry = chain.chain_id, chain.registry
        self.jobs: list[Job] = []
        self._transactions: dict[str, Any] = {}

    def add(self, events: Iterable[DecodedEvent]) -> None:
        self.jobs.extend(self.chain.signature_jobs(events, self._transactions))

    def result(
        self,
    ) -> tuple[dict[tuple[str, int], str | None], dict[tuple[str, int], tuple[str, str] | None]]:
        assays: dict[tuple[str, int], str | None] = {}
        loads: dict[tuple[str, int], tuple[str, str] | None] = {}
        for kind, key, message, signature, site in self.jobs:
            signer = _recover(self.chain_id, self.registry, kind, message, signature)
            if kind == "assay":
                assays[key] = signer
            else:
                loads[key] = None if signer is None or site is None else (signer, site)
        return assays, loads


def _recover(
    chain_id: int, registry: str, kind: str, message: dict[str, Any], signature: bytes
) -> str | None:
    types = ASSAY_TYPES if kind == "assay" else LOAD_TYPES
    try:
        signable = encode_typed_data(domain(chain_id, registry), types, message)
        return str(Account.recover_message(signable, signature=signature))
    except Exception:  # a malformed signature (eth_keys raises its own BadSignature): no signer
        return None


def _assay_job(args: Mapping[str, Any]) -> tuple[dict[str, Any], bytes] | None:
    try:
        assay, signature = signed_assay(args)
        return assay_message(assay), signature
    except (ValueError, TypeError, KeyError):
        return None


def _label_bytes(lot_id: str) -> bytes:
    return bytes.fromhex(_label_hex(lot_id))


def _label_hex(lot_id: str) -> str:
    try:
        return encode_label(lot_id, "lot_id").hex()
    except ValueError:
        return lot_id.removeprefix("0x").rjust(64, "0")[:64]


def _address(word: str) -> str | None:
    value = int(word, 16)
    return None if value == 0 else Web3.to_checksum_address("0x" + word[24:])


def _lot_state(result: str) -> ChainLotState:
    data = result.removeprefix("0x")
    if len(data) < 192:
        raise ChainError(f"lotState answered {result!r:.80}: not a registry")
    return ChainLotState(_address(data[0:64]), int(data[64:128], 16), _address(data[128:192]))
