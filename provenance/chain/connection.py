"""Connections to a node, and the chain types the rest of the package passes around without importing web3."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

Signer = LocalAccount
"""A key that signs transactions."""

__all__ = ["Signer", "Web3", "connect", "is_address"]


def connect(rpc_url: str, timeout_s: float = 30.0) -> Web3:
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))


def is_address(text: str) -> bool:
    return bool(Web3.is_address(text))
