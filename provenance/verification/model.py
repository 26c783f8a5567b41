"""Plain values of verification: what the index claims, and what a check found. Standard library only.

An index claim is written as the event it says it comes from: the event's name, its fields under
the event's own argument names (`massG`, `gradePpm`, ...) and the coordinates of the log. Then
one comparison serves every kind of row: re-read the log at those coordinates from the
transaction's receipt and compare field by field.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_MAX_LOTS = 500
"""How many lots a verification walks through a lineage before it stops and says so."""


@dataclass(frozen=True)
class Where:
    """The chain coordinates of one log."""

    tx_hash: str
    block_number: int
    log_index: int


@dataclass(frozen=True)
class IndexedEvent:
    """A row of the index, as the event it claims to come from."""

    name: str
    table: str
    fields: Mapping[str, Any]
    where: Where
    block_hash: str | None = None
    """The hash of the block the index says the log is in: a row left behind by a reorg names a
    block the chain no longer has, even at the same height."""


@dataclass(frozen=True)
class EdgeClaim:
    """The index's claim: `mass_g` grams of `input_lot_id` went into the lot, by `transform_id`."""

    input_lot_id: str
    transform_id: int
    mass_g: int


@dataclass(frozen=True)
class LotClaims:
    """Everything the index says about one lot."""

    lot_id: str
    origin: IndexedEvent
    """LotRegistered (fields include `site` and `custodian` of its header) or LotCreated (with `site`)."""
    custodian: str
    pending_custodian: str | None
    remaining_g: int
    status: str
    transformation: IndexedEvent | None
    """The LotsTransformed that created the lot, if it was created by one."""
    records: tuple[IndexedEvent, ...]
    """Its later events as derived rows: consumptions, custody moves, assays, documents,
    load attestation, corrections."""
    edges_in: tuple[EdgeClaim, ...]
    logged: frozenset[tuple[str, str, int]]
    """The index's raw event log for the lot: (event name, tx hash, log index)."""


@dataclass(frozen=True)
class IndexCheckpoint:
    """Which chain the index mirrors and how far: checks read the chain at `block_number`."""

    chain_id: int
    registry: str
    deployment_block: int
    block_number: int


class Status(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - a check status, not a password
    FAIL = "fail"


class Verdict(enum.StrEnum):
    VERIFIED = "verified"
    FAILED = "failed"


@dataclass(frozen=True)
class Difference:
    """One fact on which the index (or a replay) and the chain disagree."""

    lot_id: str
    event: str
    field: str
    index_value: Any
    chain_value: Any
    where: Where | None = None


@dataclass(frozen=True)
class Check:
    """One comparison: its name, the lot, what was claimed, what the chain says, and where."""

    name: str
    lot_id: str
    status: Status
    claimed: Mapping[str, Any] | None
    on_chain: Mapping[str, Any] | None
    where: Where | None = None
    detail: str = ""
    differences: tuple[Difference, ...] = ()


@dataclass(frozen=True)
class Verification:
    """The answer for one lot and its lineage."""

    lot_id: str
    mode: str
    """"index" (the index's claims against the chain) or "chain" (the chain alone)."""
    block_number: int
    chain_id: int
    registry: str
    lots_checked: tuple[str, ...]
    max_lots: int
    bound_hit: bool
    checks: tuple[Check, ...] = field(default=())

    @property
    def verdict(self) -> Verdict:
        return Verdict.FAILED if any(c.status is Status.FAIL for c in self.checks) else Verdict.VERIFIED

    @property
    def differences(self) -> tuple[Difference, ...]:
        return tuple(d for check in self.checks for d in check.differences)


@dataclass(frozen=True)
class DocumentAnchor:
    """One DocumentAnchored of a document, as the chain's receipt shows it."""

    lot_id: str
    kind: str
    anchored_by: str
    where: Where
    in_index: bool


@dataclass(frozen=True)
class CertifyingAssay:
    """An AssayRecorded whose certificate hash is the document's: the file is that assay's certificate."""

    lot_id: str
    lab: str
    where: Where
    confirmed: bool
    """Whether the chain's receipt shows the assay as the index has it."""


@dataclass(frozen=True)
class DocumentVerification:
    document_hash: str
    anchors: tuple[DocumentAnchor, ...]
    unconfirmed: tuple[IndexedEvent, ...]
    """Anchors the index claims that the chain's receipts do not show."""
    block_number: int
    assays: tuple[CertifyingAssay, ...] = ()
    """Assays whose lab signed this hash as their certificate's (found through the index: the event
    does not index the hash, so the chain cannot be searched by it; each is re-read from its receipt)."""

    @property
    def anchored(self) -> bool:
        return bool(self.anchors)


def verification_dict(verification: Verification) -> dict[str, Any]:
    """The whole answer as JSON-ready values: verdict, lots, differences, every check."""
    return {
        "lot_id": verification.lot_id,
        "verdict": verification.verdict.value,
        "mode": verification.mode,
        "block_number": verification.block_number,
        "chain_id": verification.chain_id,
        "registry": verification.registry,
        "lots_checked": list(verification.lots_checked),
        "max_lots": verification.max_lots,
        "bound_hit": verification.bound_hit,
        "differences": [asdict(difference) for difference in verification.differences],
        "checks": [
            {
                "name": check.name,
                "lot_id": check.lot_id,
                "status": check.status.value,
                "claimed": check.claimed,
                "on_chain": check.on_chain,
                "where": None if check.where is None else asdict(check.where),
                "detail": check.detail,
            }
            for check in verification.checks
        ],
    }
