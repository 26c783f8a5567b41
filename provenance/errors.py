"""The exception tree of mineral-provenance.

    ProvenanceError
    ├── ConfigurationError      settings that cannot work (bad URL, missing key, wrong chain)
    │   └── InsufficientFunds    the signing account cannot pay for what it must send
    ├── DomainError (ValueError) input that breaks a rule of the domain, caught before the chain sees it
    │   └── InvalidLabel         a lot id, site, face or commodity that cannot be a bytes32 label
    ├── CompilerError           the Solidity compiler is missing, or the sources do not compile
    ├── ChainError              talking to the node went wrong
    │   ├── NodeError            the embedded node would not start, or stopped
    │   │   └── NodeStateInconsistent  no saved chain of the embedded node agrees with its own blocks
    │   ├── DeploymentError      no deployment record, or one for another chain
    │   ├── ContractRevert       the registry refused a transaction; `name` is the custom error
    │   ├── RpcError             the node answered a JSON-RPC call with an error (not a revert)
    │   ├── CallReverted         a simulated call the registry refused; `data` is the revert data
    │   ├── SignerError          an external signer did not answer, refused, or signed something other than asked
    │   └── LogSourceError       reading logs or headers failed (node down, range refused); retry
    │       └── InconsistentLogs  an answer contradicts the block headers (a reorg under the read)
    ├── IndexStateError (RuntimeError) the SQL index cannot be used as it stands
    │   ├── IndexBehind          the database schema is older than the code: run `provenance db upgrade`
    │   ├── ChainMismatch        the database mirrors another chain, genesis or registry
    │   └── ReorgTooDeep         a reorg reaches below the stored block hashes; halted, nothing changed
    ├── LeaseLost               this process no longer leads its role (indexer, outbox worker): its commit is refused
    └── OperationError          a write request the outbox cannot accept as asked
        ├── IdempotencyConflict (ValueError) an Idempotency-Key reused with another request body
        └── CredentialInactive   the writer's credential was revoked before its write was stored

Each subclasses a builtin where one fits, so callers that know only the builtin still catch it.
"""

from __future__ import annotations

from typing import Any


class ProvenanceError(Exception):
    """Root of every error this package raises on purpose."""


class LeaseLost(ProvenanceError):
    """A commit of a former leader: its lease expired or another replica took it (fencing)."""


class ConfigurationError(ProvenanceError):
    """Settings that cannot work."""


class InsufficientFunds(ConfigurationError):
    """The account that must sign holds too little ether for what it must send."""


class DomainError(ProvenanceError, ValueError):
    """Input that breaks a domain rule; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidLabel(DomainError):
    """A string that cannot be encoded as a bytes32 label."""


class CompilerError(ProvenanceError):
    """No usable compiler, or a compile that failed."""


class ChainError(ProvenanceError):
    """A failure while talking to the chain."""


class NodeError(ChainError):
    """The embedded node would not start or died."""


class NodeStateInconsistent(NodeError):
    """Every saved chain of the embedded node holds state that its blocks do not account for (or
    none could be read): starting from one would serve facts without their events."""


class RpcError(ChainError):
    """A JSON-RPC error the node answered with (not a revert), e.g. a transaction it refused."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code


class CallReverted(ChainError):
    """A simulated call (eth_call, eth_estimateGas) the contract refused; `data` is its revert data."""

    def __init__(self, data: bytes, message: str = "execution reverted") -> None:
        super().__init__(message)
        self.data = data


class SignerError(ChainError):
    """An external signer (docs/deploy.md, "Keys") did not answer, refused to sign, or answered a
    transaction other than the one asked for (another chain id, nonce, key...)."""


class DeploymentError(ChainError):
    """The registry deployment is missing or does not match the chain."""


class ContractRevert(ChainError):
    """The registry reverted with a custom error, decoded to its name and arguments."""

    def __init__(self, name: str, args: dict[str, Any]) -> None:
        rendered = ", ".join(f"{key}={value!r}" for key, value in args.items())
        super().__init__(f"{name}({rendered})")
        self.name = name
        self.args_by_name = args


class LogSourceError(ChainError):
    """Logs or block headers could not be read; the caller may retry."""


class InconsistentLogs(LogSourceError):
    """An eth_getLogs answer contradicts the block headers (hash, number, duplicates): a reorg
    happened under the read, or the node is lagging. Never trust it; read again."""


class IndexStateError(ProvenanceError, RuntimeError):
    """The SQL index cannot be used as it stands; the message says what to do."""


class IndexBehind(IndexStateError):
    """The database schema is older (or newer) than this code."""


class ChainMismatch(IndexStateError):
    """The database mirrors another chain, genesis or registry than the one configured."""


class ReorgTooDeep(IndexStateError):
    """A reorg reaches below every stored block hash. The indexer halts; nothing was changed."""


class OperationError(ProvenanceError):
    """A write request the outbox cannot accept as asked."""


class IdempotencyConflict(OperationError, ValueError):
    """The Idempotency-Key was used before, by the same credential, with a different request."""

    def __init__(self, idempotency_key: str, operation_id: str) -> None:
        super().__init__(
            f"Idempotency-Key {idempotency_key!r} was already used for operation {operation_id} with a "
            "different request; use a new key for a new request"
        )
        self.idempotency_key = idempotency_key
        self.operation_id = operation_id


class CredentialInactive(OperationError):
    """The credential a write came with is revoked (or gone): found when the write was to be stored."""
