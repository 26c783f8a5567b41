"""Submitting a write: the preconditions of its command, then the outbox.

Every write, whichever entrypoint it comes from, passes here: the caller's on-chain role for the
command, the signatures it carries (a lab's assay, a truck scale's loads), a replayed assay, then
the outbox stores it under the caller's idempotency key. The chain decides in the end; these
checks turn a certain on-chain failure into an immediate answer that names the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from provenance.domain.assay_certificate import AssayCertificate
from provenance.domain.commands import (
    Command,
    RecordStockCount,
    RegisterAttestedLots,
    RegisterLots,
    SubmitAssay,
    Transform,
)
from provenance.domain.credentials import Credential
from provenance.domain.operations import OperationView
from provenance.services.access import (
    AttestationReader,
    Role,
    RoleGate,
    check_load_signers,
    lab_of_signature,
    refuse_replayed_assay,
)


class Submissions(Protocol):
    """What the service needs of the outbox (`provenance.index.outbox.OutboxStore`)."""

    def submit(
        self,
        *,
        credential_id: str,
        sender: str,
        command: Command,
        idempotency_key: str | None,
        operation_id: str | None = None,
    ) -> tuple[OperationView, bool]: ...

    def holds_key(self, credential_id: str, idempotency_key: str) -> bool: ...


class ChainFacts(AttestationReader, Protocol):
    """The registry a signature must be made for (`provenance.chain.client.RegistryClient`)."""

    @property
    def chain_id(self) -> int: ...

    @property
    def address(self) -> str: ...


@dataclass(frozen=True)
class WriteService:
    outbox: Submissions
    roles: RoleGate
    chain: ChainFacts
    store_certificate: Callable[[AssayCertificate], object]
    """Keeps an assay's certificate (content-addressed) once its lab is known to have signed it."""

    def submit(
        self,
        command: Command,
        caller: Credential,
        *,
        idempotency_key: str | None = None,
        operation_id: str | None = None,
        certificate: AssayCertificate | None = None,
    ) -> OperationView:
        """Checks `command`'s preconditions for `caller`, then stores it; a retry (a stored
        `idempotency_key`) is not refused for what the chain recorded meanwhile (its own effect)."""

        def retry() -> bool:  # a look-up, asked only where a check of the chain's state could refuse a retry
            return idempotency_key is not None and self.outbox.holds_key(caller.id, idempotency_key)

        required = self.required_role(command)
        if required is not None:
            self.roles.require(caller.account, required)
        if isinstance(command, RegisterAttestedLots) and not retry():
            check_load_signers(self.chain, self.chain.chain_id, self.chain.address, list(command.lots))
        if isinstance(command, SubmitAssay):
            lab_of_signature(
                self.roles, self.chain.chain_id, self.chain.address, command.assay, command.signature
            )
            if certificate is not None:
                self.store_certificate(certificate)
            if not retry():
                refuse_replayed_assay(self.chain, command.assay)
        view, _created = self.outbox.submit(
            credential_id=caller.id,
            sender=caller.account,
            command=command,
            idempotency_key=idempotency_key,
            operation_id=operation_id,
        )
        return view

    def required_role(self, command: Command) -> Role | None:
        """The role the sender must hold, where one role decides; for the others the chain checks
        who may (the custodian of a lot, a registrar or an admin)."""
        if isinstance(command, RegisterLots | RegisterAttestedLots | RecordStockCount):
            return self.roles.registrar(command.site)
        if isinstance(command, Transform):
            return self.roles.named("PROCESSOR_ROLE")
        return None
