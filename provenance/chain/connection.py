"""Connections to a node, and the chain types the rest of the package passes around without importing web3."""

from __future__ import annotations

from typing import Any, Protocol

from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

Signer = LocalAccount
"""A key in this process: signs transactions, and typed data (assays, haul-truck loads)."""


class SignedBytes(Protocol):
    @property
    def raw_transaction(self) -> bytes: ...

    @property
    def hash(self) -> bytes: ...


class TransactionSigner(Protocol):
    """What signs a sender's transactions: a key in this process (`Signer`) or an external signer
    (`provenance.chain.remote_signer.RemoteSigner`)."""

    @property
    def address(self) -> str: ...

    def sign_transaction(self, transaction_dict: dict[str, Any], /) -> SignedBytes: ...


__all__ = ["SignedBytes", "Signer", "TransactionSigner", "Web3", "connect", "is_address"]


def connect(rpc_url: str, timeout_s: float = 30.0) -> Web3:
    """web3's validation asks the node for its chain id before every eth_call and eth_estimateGas
    (a quarter of the outbox worker's node time, bench/api_write.py); that answer alone is cached.
    Nothing else is: a transaction or block seen once may be gone after a reorg."""
    provider = HTTPProvider(
        rpc_url,
        request_kwargs={"timeout": timeout_s},
        cache_allowed_requests=True,
        cacheable_requests={RPCEndpoint("eth_chainId")},
    )
    return Web3(provider)


def is_address(text: str) -> bool:
    return bool(Web3.is_address(text))
