"""Request bodies and helpers shared by the outbox tests (unit and integration)."""

from __future__ import annotations

import hashlib
from typing import Any

from provenance.chain.outbox import OutboxWorker

EXTRACTED_AT = 1_700_000_000


def record_hash(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def registration(lot_id: str, **fields: Any) -> dict[str, Any]:
    """One lot of a register_lots request, as the API receives it."""
    item: dict[str, Any] = {
        "lot_id": lot_id,
        "face": "F3",
        "commodity": "COAL",
        "mass_g": 24_500_000,
        "grade_ppm": 12_345,
        "extracted_at": EXTRACTED_AT,
        "record_hash": record_hash(lot_id),
    }
    item.update(fields)
    return item


def register_payload(*lot_ids: str, site: str = "SH2") -> dict[str, Any]:
    return {"site": site, "lots": [registration(lot_id) for lot_id in lot_ids]}


def settle(worker: OutboxWorker, max_steps: int = 50) -> int:
    """Steps the worker until a step changes nothing; returns the steps taken."""
    for steps in range(1, max_steps + 1):
        if worker.step() == 0:
            return steps
    raise AssertionError(f"the outbox worker still had work after {max_steps} steps")
