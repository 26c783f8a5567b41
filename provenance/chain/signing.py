"""EIP-712 typed data the registry accepts: lab assays and device-measured loads.

The domain binds a signature to one chain and one registry, so a signature made for a test
chain or another deployment is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

from provenance.domain.records import Assay, LotRegistration
from provenance.domain.values import encode_label

DOMAIN_NAME = "OreLotRegistry"
DOMAIN_VERSION = "1"

ASSAY_TYPES = {
    "Assay": [
        {"name": "lotId", "type": "bytes32"},
        {"name": "gradePpm", "type": "uint32"},
        {"name": "method", "type": "bytes32"},
        {"name": "certificateHash", "type": "bytes32"},
        {"name": "assayedAt", "type": "uint64"},
    ]
}
LOAD_TYPES = {
    "Load": [
        {"name": "lotId", "type": "bytes32"},
        {"name": "site", "type": "bytes32"},
        {"name": "face", "type": "bytes32"},
        {"name": "tripId", "type": "bytes32"},
        {"name": "massG", "type": "uint96"},
        {"name": "loadedAt", "type": "uint64"},
    ]
}


def domain(chain_id: int, registry: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": registry,
    }


def assay_message(assay: Assay) -> dict[str, Any]:
    return {
        "lotId": encode_label(assay.lot_id, "lot_id"),
        "gradePpm": assay.grade_ppm,
        "method": encode_label(assay.method, "method"),
        "certificateHash": assay.certificate_hash,
        "assayedAt": assay.assayed_at,
    }


def load_message(lot: LotRegistration, trip_id: str, loaded_at: int) -> dict[str, Any]:
    return {
        "lotId": encode_label(lot.lot_id, "lot_id"),
        "site": encode_label(lot.site, "site"),
        "face": encode_label(lot.face, "face"),
        "tripId": encode_label(trip_id, "trip_id"),
        "massG": lot.mass_g,
        "loadedAt": loaded_at,
    }


def attested_load(arguments: Mapping[str, Any], lot_label: bytes) -> tuple[dict[str, Any], bytes] | None:
    """The EIP-712 `Load` message and device signature of lot `lot_label` in the decoded arguments of
    a `registerAttestedLots` call (as the chain received them), or None if the call has no such lot."""
    for lot, attestation in zip(arguments["lots"], arguments["attestations"], strict=False):
        if bytes(lot["lotId"]) != lot_label:
            continue
        message = {
            "lotId": bytes(lot["lotId"]),
            "site": bytes(arguments["site"]),
            "face": bytes(lot["face"]),
            "tripId": bytes(attestation["tripId"]),
            "massG": lot["massG"],
            "loadedAt": attestation["loadedAt"],
        }
        return message, bytes(attestation["signature"])
    return None


def sign_assay(lab: LocalAccount, chain_id: int, registry: str, assay: Assay) -> bytes:
    """The lab's 65-byte signature over `assay` for this registry on this chain."""
    signable = encode_typed_data(domain(chain_id, registry), ASSAY_TYPES, assay_message(assay))
    return bytes(lab.sign_message(signable).signature)


def sign_load(
    device: LocalAccount, chain_id: int, registry: str, lot: LotRegistration, trip_id: str, loaded_at: int
) -> bytes:
    """A device's 65-byte signature over the load that became `lot`."""
    signable = encode_typed_data(
        domain(chain_id, registry), LOAD_TYPES, load_message(lot, trip_id, loaded_at)
    )
    return bytes(device.sign_message(signable).signature)


def recover_assay_signer(chain_id: int, registry: str, assay: Assay, signature: bytes) -> str:
    """The address that signed `assay`; a verifier compares it with the lab the chain recorded."""
    signable = encode_typed_data(domain(chain_id, registry), ASSAY_TYPES, assay_message(assay))
    return str(Account.recover_message(signable, signature=signature))


def recover_load_signer(
    chain_id: int, registry: str, lot: LotRegistration, trip_id: str, loaded_at: int, signature: bytes
) -> str:
    """The address that signed the load that became `lot` (raises on a malformed signature)."""
    signable = encode_typed_data(
        domain(chain_id, registry), LOAD_TYPES, load_message(lot, trip_id, loaded_at)
    )
    return str(Account.recover_message(signable, signature=signature))
