"""Lab assays: submit a lab-signed EIP-712 assay; and, for a lab's own credential, sign one.

Why `/v1/assays/sign` is safe enough to offer
--------------------------------------------
The registry trusts an assay because a key holding LAB_ROLE signed it, whoever submits it. The
helper signs only with the key of the *calling credential's own account*, and only when that
account holds LAB_ROLE at the latest block. The service already holds that key: the outbox signs
the lab's own transactions with it. So the helper gives a lab's token no power it did not have
(a lab token could already submit transactions as the lab), and it gives no other token any power
over a lab's key: there is no way to name another account's key. What it does change is that a
stolen lab token can mint assays; a lab that wants its signatures to stay on its own premises keeps
its key in its own keystore, never makes an API credential for it, and signs off-line (any EIP-712
library, domain "OreLotRegistry" version "1" of this chain and registry), then POSTs /v1/assays.
Signatures and keys never appear in logs; the signature is returned only to the lab that made it.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import ServicesDep, WritesDep, WritingCaller, answer
from api.schemas import AssayIn, ErrorOut, OperationOut, SignedAssayIn, SignedAssayOut
from provenance.access import lab_of_signature, refuse_replayed_assay
from provenance.domain.operations import OperationKind, parse_assay, validate_payload
from provenance.errors import ConfigurationError

router = APIRouter(
    tags=["assays"], responses={status: {"model": ErrorOut} for status in (401, 403, 409, 413, 422, 429)}
)


@router.post("/assays", status_code=202, response_model=OperationOut, summary="Submit a lab-signed assay")
def submit_assay(body: SignedAssayIn, writes: WritesDep) -> Response:
    """Anyone may submit; a signature by an account without LAB_ROLE, or an assay the registry
    recorded already, is refused here (422 on `signature`) rather than left to fail on chain."""
    payload = body.payload()
    validate_payload(OperationKind.SUBMIT_ASSAY, payload)
    assay, signature = parse_assay(payload)
    services = writes.services
    lab_of_signature(services.roles, services.client.chain_id, services.client.address, assay, signature)
    if not writes.is_retry():
        refuse_replayed_assay(services.client, assay)
    return answer(writes.submit_blocking(OperationKind.SUBMIT_ASSAY, payload))


@router.post(
    "/assays/sign",
    response_model=SignedAssayOut,
    summary="Sign an assay with your own lab key (LAB_ROLE only)",
    responses={403: {"model": ErrorOut}},
)
def sign_assay(body: AssayIn, services: ServicesDep, caller: WritingCaller) -> SignedAssayOut:
    """Returns the body to POST to /v1/assays. Nothing is stored or sent; rate-limited as a write
    (each answer costs a signature)."""
    services.roles.require(caller.account, services.roles.named("LAB_ROLE"))
    payload = {"assay": body.model_dump(mode="json"), "signature": "0x" + "00" * 65}
    validate_payload(OperationKind.SUBMIT_ASSAY, payload)
    assay, _ = parse_assay(payload)
    key = services.local_key_of(caller)
    if key.address.lower() != caller.account.lower():
        raise ConfigurationError(f"the key of credential {caller.name} does not match its account")
    signature = services.client.sign_assay(key, assay)
    return SignedAssayOut(assay=body, signature="0x" + signature.hex(), lab=key.address)
