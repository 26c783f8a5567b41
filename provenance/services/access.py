"""Who may do what: the registry's roles, read from the chain, checked before a write is stored.

The chain decides in the end (a transaction from an account without the role reverts), so this
check exists to refuse early and clearly, not to protect anything. That is why a role seen *held*
may be trusted for a few seconds (a revocation then shows up as a failed operation, as it would
for a write already queued), while a role seen *missing* is never cached: a freshly granted role
works on the very next request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from provenance.chain.signing import recover_assay_signer, recover_load_signer
from provenance.domain.records import Assay, LoadAttestation, LotRegistration
from provenance.domain.values import encode_label
from provenance.errors import ChainError, DomainError, ProvenanceError

T = TypeVar("T")


class MissingRole(ProvenanceError, PermissionError):
    """The account does not hold the role the operation needs; `role` says which, in words."""

    def __init__(self, role: str, account: str) -> None:
        super().__init__(f"this operation requires {role}, which {account} does not hold")
        self.role = role
        self.account = account


class RoleReader(Protocol):
    """What the gate needs of `provenance.chain.client.RegistryClient`."""

    def role(self, name: str) -> bytes: ...

    def registrar_role(self, site: str) -> bytes: ...

    def has_role(self, role: bytes, account: str) -> bool: ...


@dataclass(frozen=True)
class Role:
    description: str
    """How an error names it: "registrar of site SH2", "PROCESSOR_ROLE"."""
    role_id: bytes


class RoleGate:
    """Checks roles at the chain's latest block, trusting a role seen held for `ttl_s` seconds."""

    def __init__(
        self, client: RoleReader, ttl_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.clock = clock
        self._ids: dict[str, bytes] = {}
        self._held_until: dict[tuple[bytes, str], float] = {}
        self._lock = threading.Lock()

    def registrar(self, site: str) -> Role:
        encode_label(site, "site")
        return Role(
            f"registrar of site {site}",
            self._role_id(f"site:{site}", lambda: self.client.registrar_role(site)),
        )

    def named(self, name: str) -> Role:
        """PROCESSOR_ROLE, LAB_ROLE or DEFAULT_ADMIN_ROLE."""
        return Role(name, self._role_id(name, lambda: self.client.role(name)))

    def holds(self, account: str, role: Role) -> bool:
        key = (role.role_id, account.lower())
        now = self.clock()
        with self._lock:
            if self._held_until.get(key, 0.0) > now:
                return True
        try:
            held = self._read(lambda: self.client.has_role(role.role_id, account))
        except ChainError:
            # the node is unreachable: a role this process has seen held is trusted until it
            # answers again, so writes keep queueing in the outbox; the contract is the guard and
            # refuses the transaction if the role was revoked meanwhile
            with self._lock:
                if key in self._held_until:
                    return True
            raise
        if held and self.ttl_s > 0:
            with self._lock:
                self._held_until[key] = now + self.ttl_s
        elif not held:
            with self._lock:
                self._held_until.pop(key, None)
        return held

    def require(self, account: str, role: Role) -> None:
        """Raises MissingRole unless `account` holds `role`."""
        if not self.holds(account, role):
            raise MissingRole(role.description, account)

    def _role_id(self, key: str, read: Callable[[], bytes]) -> bytes:
        # role ids are pure functions of their name in the contract: cached for good
        with self._lock:
            known = self._ids.get(key)
        if known is None:
            known = self._read(read)
            with self._lock:
                self._ids[key] = known
        return known

    @staticmethod
    def _read(read: Callable[[], T]) -> T:
        try:
            return read()
        except ProvenanceError:
            raise
        except Exception as error:  # the node's transport errors, whatever the provider
            raise ChainError(f"cannot read roles from the node: {type(error).__name__}: {error}") from error


def lab_of_signature(gate: RoleGate, chain_id: int, registry: str, assay: Assay, signature: bytes) -> str:
    """The lab that signed `assay`; raises DomainError on `signature` unless its signer holds LAB_ROLE.

    The registry checks the same thing when the assay is sent; checking before the operation is
    stored turns a certain on-chain failure into an immediate answer naming the field.
    """
    try:
        signer = recover_assay_signer(chain_id, registry, assay, signature)
    except Exception:  # eth-keys refuses malformed signatures (bad v, s too high) in several ways
        raise DomainError("signature", "is not a valid EIP-712 signature") from None
    if not gate.holds(signer, gate.named("LAB_ROLE")):
        raise DomainError(
            "signature",
            f"was made by {signer}, which does not hold LAB_ROLE on this registry (or was signed for "
            "another chain or registry)",
        )
    return signer


class AttestationReader(Protocol):
    """What the pre-checks of signed data need of `provenance.chain.client.RegistryClient`."""

    def assay_recorded(self, assay: Assay) -> bool: ...

    def device_of(self, device: str) -> tuple[str, bool] | None: ...


def refuse_replayed_assay(client: AttestationReader, assay: Assay) -> None:
    """Raises DomainError on `signature` if the registry recorded this exact assay already: it
    would revert (`AssayReplayed`); a signature counts once."""
    if RoleGate._read(lambda: client.assay_recorded(assay)):
        raise DomainError("signature", "this signed assay is recorded on chain already (a replay)")


def check_load_signers(
    client: AttestationReader,
    chain_id: int,
    registry: str,
    attested: list[tuple[LotRegistration, LoadAttestation]],
) -> None:
    """Raises DomainError on `lots[i].signature` unless each load was signed by an active device of
    its lot's site. The registry refuses the whole batch for one bad attestation
    (`InvalidDeviceSignature`), so one forged or copied signature would fail every lot with it."""
    devices: dict[str, tuple[str, bool] | None] = {}
    for index, (lot, attestation) in enumerate(attested):
        field = f"lots[{index}].signature"
        try:
            signer = recover_load_signer(
                chain_id, registry, lot, attestation.trip_id, attestation.loaded_at, attestation.signature
            )
        except Exception:  # eth-keys refuses malformed signatures (bad v, s too high) in several ways
            raise DomainError(field, "is not a valid EIP-712 signature") from None
        if signer not in devices:
            devices[signer] = RoleGate._read(partial(client.device_of, signer))
        if devices[signer] != (lot.site, True):
            raise DomainError(
                field,
                f"was made by {signer}, which is not an active device of site {lot.site} on this registry "
                "(or the load was signed for another lot, chain or registry)",
            )
