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

Analytes: either endpoint takes the assay's `analytes`; their canonical certificate is stored and
its SHA-256 is the assay's `certificate_hash` (`provenance.certificates.settle_certificate`), so the
lab's signature commits them on chain.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from api.deps import RuntimeDep, WritesDep, WritingCaller, operation_response
from api.schemas import AssayIn, ErrorOut, OperationOut, SignedAssayIn, SignedAssayOut
from provenance.certificates import settle_certificate, store_certificate
from provenance.domain.assay_certificate import AssayCertificate
from provenance.errors import ConfigurationError, DomainError

router = APIRouter(
    tags=["assays"], responses={status: {"model": ErrorOut} for status in (401, 403, 409, 413, 422, 429)}
)


@router.post("/assays", status_code=202, response_model=OperationOut, summary="Submit a lab-signed assay")
def submit_assay(body: SignedAssayIn, writes: WritesDep) -> Response:
    """Anyone may submit; a signature by an account without LAB_ROLE, or an assay the registry
    recorded already, is refused here (422 on `signature`) rather than left to fail on chain.
    With `assay.analytes`, their certificate is stored and must hash to `assay.certificate_hash`."""
    settled, certificate = _certificate(body.assay, "assay.")
    command = body.model_copy(update={"assay": settled}).command()
    return operation_response(writes.submit_blocking(command, certificate=certificate))


@router.post(
    "/assays/sign",
    response_model=SignedAssayOut,
    summary="Sign an assay with your own lab key (LAB_ROLE only)",
    responses={403: {"model": ErrorOut}},
)
def sign_assay(body: AssayIn, runtime: RuntimeDep, caller: WritingCaller) -> SignedAssayOut:
    """Returns the body to POST to /v1/assays. Nothing is sent; rate-limited as a write (each
    answer costs a signature). With `analytes`, their certificate's hash is the one signed and the
    certificate is stored (content-addressed: signing twice stores one file)."""
    runtime.roles.require(caller.account, runtime.roles.named("LAB_ROLE"))
    body, certificate = _certificate(body, "")
    assay = SignedAssayIn(assay=body, signature="0x" + "00" * 65).command().assay
    key = runtime.local_key_of(caller)
    if key.address.lower() != caller.account.lower():
        raise ConfigurationError(f"the key of credential {caller.name} does not match its account")
    signature = runtime.client.sign_assay(key, assay)
    if certificate is not None:
        store_certificate(runtime.documents, certificate)
    return SignedAssayOut(assay=body, signature="0x" + signature.hex(), lab=key.address)


def _certificate(assay: AssayIn, prefix: str) -> tuple[AssayIn, AssayCertificate | None]:
    """The assay with `certificate_hash` settled from its analytes, and their certificate (None
    without analytes)."""
    if assay.analytes is None:
        if assay.certificate_hash is None:
            raise DomainError(f"{prefix}certificate_hash", "is required unless analytes are given")
        return assay, None
    certificate = settle_certificate(assay.lot_id, assay.analyte_items(), assay.certificate_hash, prefix)
    return assay.model_copy(update={"certificate_hash": certificate.certificate_hash}), certificate
