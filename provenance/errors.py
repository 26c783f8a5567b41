"""The exception tree of mineral-provenance.

    ProvenanceError
    ├── ConfigurationError      settings that cannot work (bad URL, missing key, wrong chain)
    ├── DomainError (ValueError) input that breaks a rule of the domain, caught before the chain sees it
    │   └── InvalidLabel         a lot id, site, face or commodity that cannot be a bytes32 label
    ├── CompilerError           the Solidity compiler is missing, or the sources do not compile
    └── ChainError              talking to the node went wrong
        ├── NodeError            the embedded node would not start, or stopped
        ├── DeploymentError      no deployment record, or one for another chain
        └── ContractRevert       the registry refused a transaction; `name` is the custom error

Each subclasses a builtin where one fits, so callers that know only the builtin still catch it.
"""

from __future__ import annotations

from typing import Any


class ProvenanceError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigurationError(ProvenanceError):
    """Settings that cannot work."""


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


class DeploymentError(ChainError):
    """The registry deployment is missing or does not match the chain."""


class ContractRevert(ChainError):
    """The registry reverted with a custom error, decoded to its name and arguments."""

    def __init__(self, name: str, args: dict[str, Any]) -> None:
        rendered = ", ".join(f"{key}={value!r}" for key, value in args.items())
        super().__init__(f"{name}({rendered})")
        self.name = name
        self.args_by_name = args
