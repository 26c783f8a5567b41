"""Assay certificates in the document store: settling an assay's analytes into the hash the lab
signs, and reading them back only where the held bytes are what the chain committed.

A certificate is stored like any uploaded document (`data_dir/documents/ab/<sha256>`), so it is
downloaded with `GET /v1/documents/{sha256}` and checked with `POST /v1/verify/document`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from provenance.documents import DocumentStore
from provenance.domain.assay_certificate import (
    MAX_CERTIFICATE_BYTES,
    AssayCertificate,
    CertificateCheck,
    CertificateStatus,
    analytes_of,
    build_certificate,
    check_certificate,
)
from provenance.domain.trace import AssayFact
from provenance.errors import DomainError


def settle_certificate(
    lot_id: str,
    analytes: Sequence[Mapping[str, Any]],
    certificate_hash: str | None,
    prefix: str = "",
) -> AssayCertificate:
    """The certificate of `analytes`; DomainError on `{prefix}certificate_hash` if one is given
    that is not its hash, or on the offending `{prefix}analytes[i]...`."""
    certificate = build_certificate(lot_id, analytes_of(analytes, f"{prefix}analytes"), f"{prefix}analytes")
    computed = certificate.certificate_hash
    if certificate_hash is not None and certificate_hash.lower() != computed:
        raise DomainError(
            f"{prefix}certificate_hash",
            f"is not the SHA-256 of the analytes' certificate ({computed}); leave it out and the "
            "server fills it in",
        )
    return certificate


def store_certificate(store: DocumentStore, certificate: AssayCertificate) -> str:
    """Stores the certificate's canonical bytes (content-addressed: once however often); its hash."""
    return store.put([certificate.canonical_bytes()]).anchor_hash


def held_bytes(store: DocumentStore, certificate_hash: str) -> bytes | None:
    """The file held under the hash (read only up to a certificate's size), or None."""
    path = store.find(certificate_hash)
    if path is None:
        return None
    with path.open("rb") as handle:
        return handle.read(MAX_CERTIFICATE_BYTES + 1)


def certificate_checks(
    store: DocumentStore, assays: Iterable[AssayFact], lot_id: str
) -> dict[str, CertificateCheck]:
    """Each assay's certificate hash -> what the store holds for it, checked against that hash."""
    checks: dict[str, CertificateCheck] = {}
    for assay in assays:
        key = assay.certificate_hash.lower()
        if key not in checks:
            held = held_bytes(store, key)
            if held is not None and len(held) > MAX_CERTIFICATE_BYTES:
                checks[key] = CertificateCheck(CertificateStatus.NOT_A_CERTIFICATE)
            else:
                checks[key] = check_certificate(held, key, lot_id)
    return checks
