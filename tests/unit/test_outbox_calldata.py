"""The outbox encodes calls with eth_abi directly (web3's encoder was the slowest part of sending a
batch); the bytes must be exactly those web3 would send, for every kind of operation."""

from __future__ import annotations

from typing import Any

import pytest
from web3 import Web3

from provenance.chain.artifacts import registry_artifact
from provenance.chain.outbox import call_for
from provenance.domain.commands import command_of
from provenance.domain.operations import OperationKind
from tests.outbox_support import EXTRACTED_AT, record_hash, register_payload

BUYER = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
ASSAY = {
    "lot_id": "ROM-1",
    "grade_ppm": 11_800,
    "method": "XRF",
    "certificate_hash": record_hash("certificate"),
    "assayed_at": EXTRACTED_AT + 3600,
}
OUTPUT = {"commodity": "COAL", "mass_g": 12_000_000, "grade_ppm": 11_000}

CASES: list[tuple[OperationKind, dict[str, Any], int | None, int | None]] = [
    (OperationKind.REGISTER_LOTS, register_payload("ROM-1"), 0, 1),
    (OperationKind.REGISTER_LOTS, register_payload(*(f"ROM-{i}" for i in range(400))), 0, 400),
    (OperationKind.REGISTER_LOTS, register_payload(*(f"ROM-{i}" for i in range(10))), 3, 7),
    (
        OperationKind.TRANSFORM,
        {
            "kind": "split",
            "site": "SH2",
            "inputs": [{"lot_id": "ROM-1", "mass_g": 24_500_000}],
            "outputs": [
                {"lot_id": "FINES-1", **OUTPUT, "record_hash": record_hash("F")},
                {"lot_id": "LUMP-1", **OUTPUT, "record_hash": record_hash("L")},
            ],
            "loss_g": 500_000,
            "record_hash": record_hash("split"),
        },
        None,
        None,
    ),
    (OperationKind.HAND_OVER, {"lot_ids": ["ROM-1", "ROM-2"], "to": BUYER.lower()}, 0, 2),
    (OperationKind.ACCEPT_HANDOVER, {"lot_ids": ["ROM-1"]}, 0, 1),
    (OperationKind.CANCEL_HANDOVER, {"lot_ids": ["ROM-1"]}, 0, 1),
    (OperationKind.SUBMIT_ASSAY, {"assay": ASSAY, "signature": "0x" + "1b" * 65}, None, None),
    (
        OperationKind.ANCHOR_DOCUMENT,
        {"lot_id": "ROM-1", "kind": "weighbridge", "document_hash": record_hash("ticket")},
        None,
        None,
    ),
]


@pytest.mark.parametrize(("kind", "payload", "start", "end"), CASES)
def test_calldata_is_the_bytes_web3_would_encode(
    kind: OperationKind, payload: dict[str, Any], start: int | None, end: int | None
) -> None:
    contract = Web3().eth.contract(abi=registry_artifact().abi)
    call = call_for(command_of(kind, payload), start, end)

    expected = bytes.fromhex(contract.encode_abi(call.function, list(call.args))[2:])

    assert call.calldata() == expected
