"""Connections to a node, and the chain types the rest of the package passes around without importing web3."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

Signer = LocalAccount
"""A key that signs transactions."""

__all__ = ["Signer", "Web3", "connect", "is_address"]


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
