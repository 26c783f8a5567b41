"""Verification of lots and documents against the chain itself (see `service`); plain values in `model`."""

from provenance.verification.model import (
    DEFAULT_MAX_LOTS,
    Check,
    Difference,
    DocumentAnchor,
    DocumentVerification,
    Status,
    Verdict,
    Verification,
    Where,
)
from provenance.verification.service import verify_against_index, verify_document, verify_on_chain

__all__ = [
    "DEFAULT_MAX_LOTS",
    "Check",
    "Difference",
    "DocumentAnchor",
    "DocumentVerification",
    "Status",
    "Verdict",
    "Verification",
    "Where",
    "verify_against_index",
    "verify_document",
    "verify_on_chain",
]
