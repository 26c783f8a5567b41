"""Verification as the API and the buyer's page ask for it: the index's claims against the chain.

`GET /v1/lots/{id}/verify`, the lot page's verdict and `POST /v1/verify/document` all come here,
so they cannot drift apart. Each check gets fresh readers (the chain reader's receipt cache lives
as long as one check) and reads the index in one snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from provenance.verification.model import DEFAULT_MAX_LOTS, DocumentVerification, Verification
from provenance.verification.service import (
    ChainReads,
    IndexReads,
    verify_against_index,
    verify_document,
)


class ClaimSource(Protocol):
    """The index's claims (`provenance.index.claims.IndexClaimReader`)."""

    def snapshot(self) -> AbstractContextManager[IndexReads]: ...


Readers = Callable[[], tuple[ChainReads, ClaimSource]]


class Verifier:
    def __init__(self, readers: Readers) -> None:
        self._readers = readers

    def lot(self, lot_id: str, max_lots: int = DEFAULT_MAX_LOTS) -> Verification | None:
        """The lot and its lineage (at most `max_lots` lots), read at the index's cursor block;
        None if neither the index nor the chain knows it."""
        chain, claims = self._readers()
        with claims.snapshot() as index:
            return verify_against_index(chain, index, lot_id, max_lots=max_lots)

    def document(self, document_hash: str) -> DocumentVerification:
        """Where a document (its 0x-hex SHA-256) is anchored on chain, and what the index says of it."""
        chain, claims = self._readers()
        with claims.snapshot() as index:
            return verify_document(chain, index, document_hash)
