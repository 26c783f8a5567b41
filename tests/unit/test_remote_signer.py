"""The guard on an external signer's answers: what it signed must be what was asked, by the key
asked for; its URL's credentials never show. (The signer itself, over JSON-RPC, is exercised
against anvil's `eth_signTransaction` in tests/e2e/test_write_api_anvil.py.)"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from provenance.chain.remote_signer import _check_signed, public_url
from provenance.errors import SignerError

URL = "http://signer.internal:9000"
REGISTRY = "0x" + "22" * 20


def asked(**changes: Any) -> dict[str, Any]:
    transaction: dict[str, Any] = {
        "type": 2,
        "chainId": 31337,
        "nonce": 7,
        "to": REGISTRY,
        "value": 0,
        "data": bytes.fromhex("c0ffee"),
        "gas": 210_000,
        "maxFeePerGas": 2_000_000_000,
        "maxPriorityFeePerGas": 1_000_000_000,
    }
    transaction.update(changes)
    return transaction


def test_the_transaction_asked_for_signed_by_the_key_asked_for_passes() -> None:
    key = Account.create()
    raw = bytes(key.sign_transaction(asked()).raw_transaction)

    _check_signed(raw, asked(), key.address, URL)


def test_a_legacy_transaction_is_read_with_its_eip155_chain_id() -> None:
    key = Account.create()
    legacy = {
        "chainId": 31337,
        "nonce": 1,
        "to": REGISTRY,
        "value": 0,
        "data": b"\x01",
        "gas": 50_000,
        "gasPrice": 7,
    }
    raw = bytes(key.sign_transaction(legacy).raw_transaction)

    _check_signed(raw, legacy, key.address, URL)
    with pytest.raises(SignerError, match="chainId 31337, not 1 as asked"):
        _check_signed(raw, {**legacy, "chainId": 1}, key.address, URL)


def test_another_key_is_named() -> None:
    key, other = Account.create(), Account.create()
    raw = bytes(other.sign_transaction(asked()).raw_transaction)

    with pytest.raises(SignerError, match=f"signed with the key of {other.address}, not {key.address}"):
        _check_signed(raw, asked(), key.address, URL)


@pytest.mark.parametrize(
    ("field", "signed_value", "asked_value"),
    [
        ("chainId", 4242, 31337),
        ("nonce", 8, 7),
        ("gas", 1, 210_000),
        ("maxFeePerGas", 10**12, 2_000_000_000),
        ("to", "0x" + "33" * 20, REGISTRY),
        ("data", bytes.fromhex("deadbeef"), bytes.fromhex("c0ffee")),
    ],
)
def test_a_field_signed_otherwise_than_asked_is_named(
    field: str, signed_value: Any, asked_value: Any
) -> None:
    key = Account.create()
    raw = bytes(key.sign_transaction(asked(**{field: signed_value})).raw_transaction)

    with pytest.raises(SignerError, match=f"signed {field} "):
        _check_signed(raw, asked(**{field: asked_value}), key.address, URL)


def test_an_answer_that_is_no_transaction_is_named() -> None:
    with pytest.raises(SignerError, match="answered no signed transaction"):
        _check_signed(b"\x02\x00", asked(), Account.create().address, URL)


def test_a_urls_credentials_never_show() -> None:
    assert (
        public_url("https://ops:s3cret@signer.internal:9000/rpc?x=1")
        == "https://signer.internal:9000/rpc?x=1"
    )
    assert public_url(URL) == URL
