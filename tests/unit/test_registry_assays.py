"""submitAssay: a lab's EIP-712 signature decides, whoever submits it. A signature binds one assay of
one lot, on one chain, for one registry, and counts once."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account.messages import encode_typed_data
from eth_keys.constants import SECPK1_N
from eth_utils import keccak

from provenance.chain.client import RegistryClient, assay_tuple
from provenance.chain.signing import ASSAY_TYPES, assay_message, domain, sign_assay
from provenance.domain.values import TransformKind
from provenance.errors import ContractRevert
from tests.unit.conftest import (
    ZERO_ADDRESS,
    Chain,
    assay,
    events,
    label,
    lot,
    output,
    refusal,
    transformation,
)


def digest_of(chain: Chain, lot_id: str) -> bytes:
    """The EIP-712 digest of the default assay of `lot_id`, as the contract computes it."""
    return bytes(chain.client.contract.functions.assayDigest(assay_tuple(assay(lot_id))).call())


def test_a_lab_signed_assay_is_recorded_whoever_submits_it(chain: Chain) -> None:
    chain.register(lot("A"))
    result = assay("A", grade_ppm=11_800)
    signature = chain.client.sign_assay(chain.lab, result)

    receipt = chain.client.submit_assay(chain.buyer, result, signature)

    assert events(chain.client, receipt, "AssayRecorded") == [
        {
            "lotId": label("A"),
            "lab": chain.lab.address,
            "gradePpm": 11_800,
            "method": label("XRF"),
            "certificateHash": result.certificate_hash,
            "assayedAt": result.assayed_at,
            "submitter": chain.buyer,
            "signature": signature,
        }
    ]
    assert chain.client.contract.functions.assayRecorded(digest_of(chain, "A")).call() is True


def test_the_lab_may_submit_its_own_assay(chain: Chain) -> None:
    chain.register(lot("A"))
    result = assay("A")

    receipt = chain.client.submit_assay(chain.lab, result, chain.client.sign_assay(chain.lab, result))

    assert events(chain.client, receipt, "AssayRecorded")[0]["submitter"] == chain.lab.address


def test_the_contract_digest_is_the_eip712_hash_labs_sign_off_chain(chain: Chain) -> None:
    result = assay("A")
    signable = encode_typed_data(
        domain(chain.chain_id, chain.client.address), ASSAY_TYPES, assay_message(result)
    )
    off_chain = b"\x19\x01" + signable.header + signable.body

    assert chain.client.contract.functions.assayDigest(assay_tuple(result)).call() == keccak(off_chain)
    assert chain.client.contract.functions.assayRecorded(keccak(off_chain)).call() is False


def test_the_domain_names_the_registry_its_version_chain_and_address(chain: Chain) -> None:
    fields, name, version, chain_id, verifying_contract, salt, extensions = (
        chain.client.contract.functions.eip712Domain().call()
    )

    assert (name, version, chain_id, verifying_contract) == (
        "OreLotRegistry",
        "1",
        chain.chain_id,
        chain.client.address,
    )
    assert (fields, salt, extensions) == (b"\x0f", b"\0" * 32, [])


def test_a_signature_by_a_key_without_the_lab_role_is_refused(chain: Chain) -> None:
    chain.register(lot("A"))
    impostor = chain.new_key()
    result = assay("A")

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.buyer, result, chain.client.sign_assay(impostor, result))

    assert refusal(refused) == ("InvalidLabSignature", {"lotId": "A", "recovered": impostor.address})


def test_a_lab_whose_role_was_revoked_can_no_longer_sign(chain: Chain) -> None:
    chain.register(lot("A"))
    result = assay("A")
    signature = chain.client.sign_assay(chain.lab, result)
    chain.client.transact(chain.admin, "revokeRole", chain.client.role("LAB_ROLE"), chain.lab.address)

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.buyer, result, signature)

    assert refusal(refused) == ("InvalidLabSignature", {"lotId": "A", "recovered": chain.lab.address})


def test_an_assay_is_recorded_once(chain: Chain) -> None:
    chain.register(lot("A"))
    result = assay("A")
    signature = chain.client.sign_assay(chain.lab, result)
    chain.client.submit_assay(chain.buyer, result, signature)

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.outsider, result, signature)

    assert refusal(refused) == ("AssayReplayed", {"lotId": "A", "digest": "0x" + digest_of(chain, "A").hex()})


def test_a_malleated_copy_of_a_recorded_signature_is_not_a_second_assay(chain: Chain) -> None:
    chain.register(lot("A"))
    result = assay("A")
    signature = chain.client.sign_assay(chain.lab, result)
    chain.client.submit_assay(chain.buyer, result, signature)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    twin = (
        r + (SECPK1_N - s).to_bytes(32, "big") + bytes([55 - v])
    )  # the other valid (r, s, v) of the same key

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.buyer, result, twin)

    assert refusal(refused) == ("InvalidLabSignature", {"lotId": "A", "recovered": ZERO_ADDRESS})


@pytest.mark.parametrize(("field", "value"), [("lot_id", "B"), ("grade_ppm", 99_999), ("assayed_at", 1)])
def test_a_signature_covers_its_lot_and_its_result(chain: Chain, field: str, value: object) -> None:
    chain.register(lot("A"), lot("B"))
    signed = assay("A")
    submitted = dataclasses.replace(signed, **{field: value})
    signature = chain.client.sign_assay(chain.lab, signed)

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.buyer, submitted, signature)

    name, args = refusal(refused)
    assert name == "InvalidLabSignature"
    assert args["lotId"] == submitted.lot_id
    assert args["recovered"] != chain.lab.address


def test_a_signature_made_for_another_chain_is_refused(chain: Chain) -> None:
    chain.register(lot("A"))
    result = assay("A")

    signature = sign_assay(chain.lab, chain.chain_id + 1, chain.client.address, result)

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.buyer, result, signature)
    name, args = refusal(refused)
    assert name == "InvalidLabSignature"
    assert args["recovered"] != chain.lab.address


def test_a_signature_made_for_another_registry_is_refused_here_and_valid_there(chain: Chain) -> None:
    other, _ = RegistryClient.deploy(chain.w3, chain.admin)
    for registry in (chain.client, other):
        registry.grant_role(chain.admin, registry.registrar_role("SH2"), chain.operator)
        registry.grant_role(chain.admin, registry.role("LAB_ROLE"), chain.lab.address)
        registry.register_lots(chain.operator, [lot("A")])
    result = assay("A")
    signature_for_other = other.sign_assay(chain.lab, result)

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.buyer, result, signature_for_other)
    assert refusal(refused)[0] == "InvalidLabSignature"
    assert refusal(refused)[1]["recovered"] != chain.lab.address

    receipt = other.submit_assay(chain.buyer, result, signature_for_other)
    assert events(other, receipt, "AssayRecorded")[0]["lab"] == chain.lab.address


@pytest.mark.parametrize("signature", [b"", b"\x01" * 64, b"\0" * 65, b"\x02" * 66])
def test_a_malformed_signature_is_refused(chain: Chain, signature: bytes) -> None:
    chain.register(lot("A"))

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.buyer, assay("A"), signature)

    assert refusal(refused) == ("InvalidLabSignature", {"lotId": "A", "recovered": ZERO_ADDRESS})


def test_an_assay_of_an_unknown_lot_is_refused(chain: Chain) -> None:
    result = assay("GHOST")

    with pytest.raises(ContractRevert) as refused:
        chain.client.submit_assay(chain.buyer, result, chain.client.sign_assay(chain.lab, result))

    assert refusal(refused) == ("UnknownLot", {"lotId": "GHOST"})


def test_an_assay_grade_above_the_whole_lot_is_refused(chain: Chain) -> None:
    chain.register(lot("A"))
    raw = (label("A"), 1_000_001, label("XRF"), b"\x11" * 32, 1)

    with pytest.raises(ContractRevert) as refused:
        chain.client.transact(chain.buyer, "submitAssay", raw, b"\0" * 65)

    assert refusal(refused) == ("InvalidGrade", {"lotId": "A", "gradePpm": 1_000_001})


def test_a_consumed_lot_may_still_be_assayed(chain: Chain) -> None:
    chain.register(lot("A", mass_g=10))
    chain.client.transform(
        chain.operator, transformation(TransformKind.SPLIT, [("A", 10)], [output("A1", 10)])
    )
    result = assay("A")

    receipt = chain.client.submit_assay(chain.buyer, result, chain.client.sign_assay(chain.lab, result))

    assert events(chain.client, receipt, "AssayRecorded")[0]["lotId"] == label("A")
