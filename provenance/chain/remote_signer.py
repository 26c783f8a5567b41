"""Keys held outside the process: an external signer reached by URL, so that a worker's host holds
no key at all (docs/deploy.md, "Keys").

The interface is Web3Signer's eth1 JSON-RPC: `eth_accounts` lists the addresses it signs for, and
`eth_signTransaction` takes `{from, to, gas, nonce, value, data, maxFeePerGas,
maxPriorityFeePerGas | gasPrice}` and answers the signed raw transaction. Any service answering
those two calls the same way serves (the tests use anvil's own `eth_signTransaction`).

Such a signer signs with the chain id *it* is configured with (Web3Signer's `--chain-id`), fills
in nothing we did not ask for, and is another party: its answer is decoded and compared with the
request (the sender recovered from the signature, chain id, nonce, recipient, value, calldata,
gas, fees) before anything is recorded or sent. A signer that signed something else is named as
such (`SignerError`), never trusted.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import rlp  # type: ignore[import-untyped]
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from provenance.chain.node_calls import HttpNodeCalls
from provenance.errors import ConfigurationError, RpcError, SignerError

DEFAULT_TIMEOUT_S = 5.0
"""A signature is asked for inside the database transaction that records it: a signer that hangs
must not hold that transaction for long (the operation is tried again on the next step)."""

_COMPARED = (
    "chainId",
    "nonce",
    "to",
    "value",
    "data",
    "gas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "gasPrice",
)


@dataclass(frozen=True)
class RemotelySigned:
    """What `eth_account`'s SignedTransaction offers the callers: the bytes and their hash."""

    raw_transaction: bytes
    hash: bytes


class RemoteSigner:
    """Signs for one address through an external signer at `url`."""

    def __init__(self, url: str, address: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        try:
            self.address = to_checksum_address(address)
        except ValueError:
            raise ConfigurationError(f"{address!r} is not an account address") from None
        try:
            self._calls = HttpNodeCalls(url, timeout_s=timeout_s)
        except ValueError:
            raise ConfigurationError(
                f"the external signer's URL must be http(s)://host[:port]: {public_url(url)}"
            ) from None
        self.url = public_url(url)
        """The URL without any user:password part, for messages and logs."""

    def __repr__(self) -> str:
        return f"RemoteSigner({self.url!r}, {self.address!r})"

    def accounts(self) -> list[str]:
        """The addresses the signer holds keys of (`eth_accounts`)."""
        return [to_checksum_address(address) for address in self._request("eth_accounts", [])]

    def check_holds_key(self) -> None:
        """SignerError unless the signer answers and lists this address."""
        held = self.accounts()
        if self.address not in held:
            raise SignerError(
                f"the external signer at {self.url} holds no key of {self.address} "
                f"(it signs for {', '.join(held) or 'no account'})"
            )

    def sign_transaction(self, transaction_dict: Mapping[str, Any]) -> RemotelySigned:
        raw = bytes(
            HexBytes(self._request("eth_signTransaction", [_request_of(self.address, transaction_dict)]))
        )
        _check_signed(raw, transaction_dict, self.address, self.url)
        return RemotelySigned(raw, keccak(raw))

    def close(self) -> None:
        self._calls.close()

    def _request(self, method: str, params: list[Any]) -> Any:
        try:
            return self._calls.request(method, params)
        except RpcError as error:
            raise SignerError(
                f"the external signer at {self.url} refused {method} for {self.address}: {error}"
            ) from None
        except (OSError, http.client.HTTPException, json.JSONDecodeError) as error:
            raise SignerError(f"no external signer answers at {self.url} ({type(error).__name__})") from None


def public_url(url: str) -> str:
    """`url` without credentials: a signer's URL may carry basic-auth, which no message shows."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _request_of(sender: str, transaction: Mapping[str, Any]) -> dict[str, str]:
    """The transaction as `eth_signTransaction`'s parameter, quantities and bytes in 0x-hex. No
    chain id: Web3Signer takes none and signs with its own, so it is compared afterwards, the one
    check that holds for every signer."""
    request = {"from": sender}
    for field, value in transaction.items():
        if field in ("from", "type", "chainId") or value is None or (field == "to" and not value):
            continue  # (an empty `to` creates a contract: the signer wants none)
        if field in ("to", "data"):
            request[field] = HexBytes(value).to_0x_hex() if not isinstance(value, str) else value
        elif field in _COMPARED:
            request[field] = hex(int(value))
    return request


def _check_signed(raw: bytes, asked: Mapping[str, Any], sender: str, url: str) -> None:
    """SignerError unless `raw` is `asked`, signed by `sender`."""
    try:
        signed = _fields_of(raw)
        recovered = Account.recover_transaction(raw)
    except Exception as error:
        raise SignerError(
            f"the external signer at {url} answered no signed transaction ({type(error).__name__})"
        ) from None
    if recovered != sender:
        raise SignerError(f"the external signer at {url} signed with the key of {recovered}, not {sender}")
    for field in _COMPARED:
        if field not in asked or asked[field] is None:
            continue
        wanted, got = _normal(asked[field]), _normal(signed.get(field))
        if wanted != got:
            hint = " (check the signer's configured chain id)" if field == "chainId" else ""
            raise SignerError(
                f"the external signer at {url} signed {field} {_shown(got)}, not {_shown(wanted)} as asked{hint}"
            )


def _fields_of(raw: bytes) -> dict[str, Any]:
    if raw and raw[0] <= 0x7F:  # EIP-2718 typed transaction
        return dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())
    nonce, gas_price, gas, to, value, data, v, _, _ = rlp.decode(raw)
    chain_id = (_int(v) - 35) // 2 if _int(v) >= 35 else None  # EIP-155
    return {
        "chainId": chain_id,
        "nonce": _int(nonce),
        "gasPrice": _int(gas_price),
        "gas": _int(gas),
        "to": to,
        "value": _int(value),
        "data": data,
    }


def _int(value: bytes) -> int:
    return int.from_bytes(value, "big")


def _normal(value: Any) -> int | str | None:
    """Quantities as ints, addresses and bytes as lower-case hex, so that the two sides compare."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else value
    return HexBytes(value).to_0x_hex().lower()


def _shown(value: int | str | None) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:20] + "..."
