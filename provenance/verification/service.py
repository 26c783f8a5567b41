"""Verification: the index's claims about a lot and its whole lineage, checked against the chain
itself; or, with no index at all, the chain's own history of a lot checked for consistency.

Both modes first rebuild each lot's history from the chain (`eth_getLogs` by its `lotId` topic,
its origin's receipt for the registration header or the transformation), then:

* chain mode (`verify_on_chain`, what `provenance verify` runs): replays the events into the
  lot's state and compares it with `lotState` by eth_call, checks that every transformation in
  the lineage conserves mass, recovers every assay's signer and checks its LAB_ROLE at the
  assay's block;
* index mode (`verify_against_index`, the API's): additionally compares every fact the index
  claims (its state columns, each derived row re-read from its transaction's receipt at the
  coordinates the index gives, the lineage edges recomputed from the transformation's receipt,
  the set of the lot's events) with the chain, field by field.

Walking the lineage goes backwards through transformations to the origin lots, at most
`max_lots` lots; the answer says when that bound stopped the walk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provenance.domain.events import DecodedEvent
from provenance.domain.lineage import allocate
from provenance.domain.lot_state import STATE_EVENTS, ReplayedLot, apply_event
from provenance.errors import DomainError, IndexStateError
from provenance.verification.model import (
    DEFAULT_MAX_LOTS,
    CertifyingAssay,
    Check,
    Difference,
    DocumentAnchor,
    DocumentVerification,
    IndexCheckpoint,
    IndexedEvent,
    LotClaims,
    Status,
    Verification,
    Where,
)

ORIGIN_EVENTS = ("LotRegistered", "LotCreated")
LAB_ROLE = "LAB_ROLE"


class LotStateView(Protocol):
    @property
    def custodian(self) -> str: ...
    @property
    def remaining_g(self) -> int: ...
    @property
    def pending_custodian(self) -> str | None: ...


class ChainReads(Protocol):
    """What verification reads from the chain (`provenance.chain.reader.ChainReader`)."""

    registry: str

    @property
    def chain_id(self) -> int: ...
    def head(self) -> int: ...
    def lot_state(self, lot_id: str, block: int) -> LotStateView | None: ...
    def has_role(self, role_name: str, account: str, block: int) -> bool: ...
    def receipt_events(self, tx_hash: str) -> list[DecodedEvent] | None: ...
    def lot_logs(self, lot_id: str, from_block: int, to_block: int) -> list[DecodedEvent]: ...
    def document_logs(self, document_hash: str, from_block: int, to_block: int) -> list[DecodedEvent]: ...
    def assay_signer(self, args: Mapping[str, Any]) -> str | None: ...
    def load_signer(self, event: DecodedEvent) -> tuple[str, str] | None: ...
    def device_at(self, device: str, block: int) -> tuple[str, bool]: ...


class IndexReads(Protocol):
    """What verification reads from the index (`provenance.index.claims.IndexSnapshot`)."""

    def checkpoint(self) -> IndexCheckpoint | None: ...
    def lot(self, lot_id: str) -> LotClaims | None: ...
    def documents(self, document_hash: str) -> list[IndexedEvent]: ...
    def assays_certified_by(self, certificate_hash: str) -> list[IndexedEvent]: ...


def where_of(event: DecodedEvent) -> Where:
    return Where(event.tx_hash, event.block_number, event.log_index)


def key_of(event: DecodedEvent) -> tuple[str, str, int]:
    return (event.name, event.tx_hash.lower(), event.log_index)


def equal_ignoring_hex_case(claimed: Any, actual: Any) -> bool:
    """Equal, with hex text (hashes, addresses) compared without regard to case."""
    if isinstance(claimed, str) and isinstance(actual, str):
        return claimed.lower() == actual.lower()
    return bool(claimed == actual)


def as_json_value(value: Any) -> Any:
    """A value as JSON can carry it."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


# ---------------------------------------------------------------------- the chain's history


@dataclass
class ChainLot:
    """One lot as the chain alone tells it."""

    lot_id: str
    events: list[DecodedEvent]
    origin: DecodedEvent | None = None
    header: DecodedEvent | None = None
    """The LotsRegistered that governs a registered lot (site, first custodian)."""
    transformation: DecodedEvent | None = None
    consumed: list[DecodedEvent] = field(default_factory=list)
    """The LotConsumed events of the transformation that created the lot, in input order."""
    created: list[DecodedEvent] = field(default_factory=list)

    @property
    def parents(self) -> list[str]:
        return [str(event.args["lotId"]) for event in self.consumed]

    @property
    def site(self) -> str | None:
        source = self.header or self.transformation
        return None if source is None else str(source.args["site"])

    @property
    def first_custodian(self) -> str | None:
        if self.origin is None:
            return None
        if self.origin.name == "LotCreated":
            return str(self.origin.args["custodian"])
        return None if self.header is None else str(self.header.args["custodian"])


def chain_lot(chain: ChainReads, lot_id: str, from_block: int, to_block: int) -> ChainLot:
    lot = ChainLot(lot_id, chain.lot_logs(lot_id, from_block, to_block))
    lot.origin = next((event for event in lot.events if event.name in ORIGIN_EVENTS), None)
    if lot.origin is None:
        return lot
    receipt = chain.receipt_events(lot.origin.tx_hash) or []
    if lot.origin.name == "LotRegistered":
        headers = [e for e in receipt if e.name == "LotsRegistered" and e.log_index < lot.origin.log_index]
        lot.header = headers[-1] if headers else None
    else:
        transform_id = lot.origin.args["transformId"]
        ours = [e for e in receipt if e.args.get("transformId") == transform_id]
        lot.transformation = next((e for e in ours if e.name == "LotsTransformed"), None)
        lot.consumed = [e for e in ours if e.name == "LotConsumed"]
        lot.created = [e for e in ours if e.name == "LotCreated"]
    return lot


def find_log(chain: ChainReads, where: Where) -> tuple[DecodedEvent | None, str]:
    """The registry log at `where`, re-read from its receipt; else None and why."""
    receipt = chain.receipt_events(where.tx_hash)
    if receipt is None:
        return None, f"the chain has no transaction {where.tx_hash}"
    for event in receipt:
        if event.log_index == where.log_index:
            return event, ""
    return None, f"transaction {where.tx_hash} has no registry log {where.log_index}"


# ---------------------------------------------------------------------- checks


class Checks:
    """Collects checks; a check with differences fails."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(
        self,
        name: str,
        lot_id: str,
        claimed: Mapping[str, Any] | None,
        on_chain: Mapping[str, Any] | None,
        where: Where | None = None,
        *,
        event: str | None = None,
        differences: Sequence[Difference] = (),
        detail: str = "",
    ) -> Check:
        if claimed is not None and on_chain is not None and not differences:
            differences = compare(lot_id, event or name, claimed, on_chain, where)
        failed = bool(differences) or (detail != "" and on_chain is None)
        if failed and not differences:
            differences = [Difference(lot_id, event or name, "*", _brief(claimed), None, where)]
        check = Check(
            name=name,
            lot_id=lot_id,
            status=Status.FAIL if failed else Status.PASS,
            claimed=_json(claimed),
            on_chain=_json(on_chain),
            where=where,
            detail=detail,
            differences=tuple(differences),
        )
        self.items.append(check)
        return check

    def fail(
        self, name: str, lot_id: str, detail: str, difference: Difference, where: Where | None = None
    ) -> None:
        self.items.append(
            Check(name, lot_id, Status.FAIL, None, None, where, detail, differences=(difference,))
        )


def _json(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if values is None else {key: as_json_value(value) for key, value in values.items()}


def _brief(values: Mapping[str, Any] | None) -> Any:
    return None if values is None else _json(values)


def compare(
    lot_id: str, event: str, claimed: Mapping[str, Any], on_chain: Mapping[str, Any], where: Where | None
) -> list[Difference]:
    return [
        Difference(lot_id, event, name, as_json_value(value), as_json_value(on_chain.get(name)), where)
        for name, value in claimed.items()
        if not equal_ignoring_hex_case(value, on_chain.get(name))
    ]


def state_of(state: LotStateView | None) -> dict[str, Any]:
    if state is None:
        return {"custodian": None, "remaining_g": None, "pending_custodian": None}
    return {
        "custodian": state.custodian,
        "remaining_g": state.remaining_g,
        "pending_custodian": state.pending_custodian,
    }


@dataclass
class Replay:
    """A lot's state rebuilt from its events alone, with every step checked."""

    lot: ReplayedLot
    problems: list[tuple[DecodedEvent, str, Any, Any]] = field(default_factory=list)
    """(event, argument, what the state before implies, what the event says)."""

    def apply(self, event: DecodedEvent) -> None:
        self.lot, mismatch = apply_event(self.lot, event.name, event.args)
        if mismatch is not None:
            self.problems.append((event, mismatch.argument, mismatch.expected, mismatch.reported))

    def state(self) -> dict[str, Any]:
        return {
            "custodian": self.lot.custodian,
            "remaining_g": self.lot.remaining_g,
            "pending_custodian": self.lot.pending_custodian,
        }


def replay(lot: ChainLot) -> Replay:
    assert lot.origin is not None
    result = Replay(ReplayedLot(lot.first_custodian, int(lot.origin.args["massG"])))
    for event in lot.events:
        if event.name in STATE_EVENTS:
            result.apply(event)
    return result


def check_chain_lot(chain: ChainReads, lot: ChainLot, block: int, checks: Checks, *, state: bool) -> None:
    """The checks that need only the chain: replay vs eth_call, conservation, assay signatures."""
    lot_id = lot.lot_id
    assert lot.origin is not None
    if lot.origin.name == "LotRegistered" and lot.header is None:
        checks.fail(
            "registration_header",
            lot_id,
            "no LotsRegistered precedes the LotRegistered in its transaction",
            Difference(lot_id, "LotRegistered", "site", None, None, where_of(lot.origin)),
            where_of(lot.origin),
        )
    rebuilt = replay(lot)
    for event, name, expected, actual in rebuilt.problems:
        checks.add(
            "replay",
            lot_id,
            {name: expected},
            {name: actual},
            where_of(event),
            event=event.name,
            detail="the lot's events do not follow from each other: an event is missing",
        )
    if state:
        checks.add(
            "lot_state_replayed",
            lot_id,
            rebuilt.state(),
            state_of(chain.lot_state(lot_id, block)),
            event="lotState",
            detail=f"the state replayed from the lot's events vs lotState by eth_call at block {block}",
        )
    if lot.origin.name == "LotCreated":
        check_conservation(lot, checks)
    for event in lot.events:
        if event.name == "AssayRecorded":
            check_assay(chain, lot_id, event.args, event, checks)
        elif event.name == "LoadAttested":
            check_load(chain, lot_id, event, checks)


def check_conservation(lot: ChainLot, checks: Checks) -> None:
    lot_id = lot.lot_id
    if lot.transformation is None:
        assert lot.origin is not None
        checks.fail(
            "conservation",
            lot_id,
            "no LotsTransformed for the lot's LotCreated in its transaction",
            Difference(lot_id, "LotsTransformed", "transformId", lot.origin.args["transformId"], None),
            where_of(lot.origin),
        )
        return
    consumed = sum(int(e.args["massG"]) for e in lot.consumed)
    produced = sum(int(e.args["massG"]) for e in lot.created)
    loss = int(lot.transformation.args["lossG"])
    checks.add(
        "conservation",
        lot_id,
        {"consumed_g": consumed},
        {"consumed_g": produced + loss},
        where_of(lot.transformation),
        event="LotsTransformed",
        detail=f"transformation {lot.transformation.args['transformId']}: {consumed} g consumed = "
        f"{produced} g produced + {loss} g lost",
    )


def check_assay(
    chain: ChainReads,
    lot_id: str,
    fields: Mapping[str, Any],
    event: DecodedEvent | None,
    checks: Checks,
    where: Where | None = None,
    *,
    name: str = "assay_signature",
) -> None:
    """The assay's signer recovered from `fields` (the chain's event, or the index's claim) must be the
    lab the chain recorded, and hold LAB_ROLE at the assay's block."""
    where = where or (where_of(event) if event is not None else None)
    signer = chain.assay_signer(fields)
    if event is None:
        checks.add(
            name,
            lot_id,
            {"signer": signer, "lab": fields.get("lab")},
            None,
            where,
            event="AssayRecorded",
            detail="the assay is not on chain at the index's coordinates",
        )
        return
    lab = str(event.args["lab"])
    role = chain.has_role(LAB_ROLE, lab, event.block_number)
    checks.add(
        name,
        lot_id,
        {"signer": signer, "lab_role": True},
        {"signer": lab, "lab_role": role},
        where,
        event="AssayRecorded",
        detail=f"signer recovered from the EIP-712 Assay vs the lab recorded; LAB_ROLE at block {event.block_number}",
    )


def check_load(chain: ChainReads, lot_id: str, event: DecodedEvent, checks: Checks) -> None:
    """A device-measured load: the signer recovered from the transaction's calldata is the device the
    event names, registered for the lot's site and active at the registration's block. Skipped (no
    check) when the registry was called through another contract: there is no calldata to decode."""
    recovered = chain.load_signer(event)
    if recovered is None:
        return
    signer, site = recovered
    device = str(event.args["device"])
    device_site, active = chain.device_at(device, event.block_number)
    checks.add(
        "load_signature",
        lot_id,
        {"signer": signer, "site": site, "active": True},
        {"signer": device, "site": device_site, "active": active},
        where_of(event),
        event="LoadAttested",
        detail=f"the device signer recovered from the registerAttestedLots calldata; deviceOf at block {event.block_number}",
    )


# ---------------------------------------------------------------------- the lineage walk


def verified_lineage(
    chain: ChainReads,
    lot_id: str,
    mode: str,
    at: int,
    visit: Callable[[str], Iterable[str]],
    checks: Checks,
    max_lots: int,
) -> Verification:
    """Walks the lineage from `lot_id` with `visit` (which records its checks) and reports it."""
    order, bound_hit = walk(lot_id, visit, max_lots)
    return Verification(
        lot_id=lot_id,
        mode=mode,
        block_number=at,
        chain_id=chain.chain_id,
        registry=chain.registry,
        lots_checked=tuple(order),
        max_lots=max_lots,
        bound_hit=bound_hit,
        checks=tuple(checks.items),
    )


def walk(
    start: str,
    visit: Callable[[str], Iterable[str]],
    max_lots: int,
) -> tuple[list[str], bool]:
    """Breadth first from `start` through the parents `visit` returns; at most `max_lots` lots."""
    seen = {start}
    order: list[str] = []
    queue = deque([start])
    while queue:
        if len(order) >= max_lots:
            return order, True
        lot_id = queue.popleft()
        order.append(lot_id)
        for parent in visit(lot_id):
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return order, False


def verify_on_chain(
    chain: ChainReads,
    lot_id: str,
    *,
    max_lots: int = DEFAULT_MAX_LOTS,
    from_block: int = 0,
    block: int | None = None,
) -> Verification | None:
    """The chain alone: None if the chain knows no lot `lot_id`."""
    at = chain.head() if block is None else block
    target = chain_lot(chain, lot_id, from_block, at)
    if target.origin is None:
        return None
    checks = Checks()

    def visit(current: str) -> list[str]:
        lot = target if current == lot_id else chain_lot(chain, current, from_block, at)
        if lot.origin is None:
            checks.fail(
                "lineage",
                current,
                "a transformation consumed this lot, but the chain shows no registration or creation of it",
                Difference(current, "LotRegistered", "lotId", None, None),
            )
            return []
        check_chain_lot(chain, lot, at, checks, state=True)
        return lot.parents

    return verified_lineage(chain, lot_id, "chain", at, visit, checks, max_lots)


def verify_against_index(
    chain: ChainReads, index: IndexReads, lot_id: str, *, max_lots: int = DEFAULT_MAX_LOTS
) -> Verification | None:
    """The index's claims about `lot_id` and its lineage against the chain, read at the index's cursor
    block. None if neither the index nor the chain knows the lot."""
    checkpoint = index.checkpoint()
    if checkpoint is None:
        raise IndexStateError("the index holds nothing yet: run the indexer before verifying its claims")
    at = checkpoint.block_number
    start = checkpoint.deployment_block
    claims = index.lot(lot_id)
    target = chain_lot(chain, lot_id, start, at)
    if claims is None and target.origin is None:
        return None
    checks = Checks()
    if (
        not equal_ignoring_hex_case(checkpoint.registry, chain.registry)
        or checkpoint.chain_id != chain.chain_id
    ):
        checks.add(
            "chain_mirror",
            lot_id,
            {"chain_id": checkpoint.chain_id, "registry": checkpoint.registry},
            {"chain_id": chain.chain_id, "registry": chain.registry},
            event="chain_mirror",
        )

    def visit(current: str) -> list[str]:
        lot = target if current == lot_id else chain_lot(chain, current, start, at)
        claimed = claims if current == lot_id else index.lot(current)
        return check_lot_against_index(chain, lot, claimed, at, checks)

    return verified_lineage(chain, lot_id, "index", at, visit, checks, max_lots)


def check_lot_against_index(
    chain: ChainReads, lot: ChainLot, claims: LotClaims | None, block: int, checks: Checks
) -> list[str]:
    """Every check of one lot; returns its parents (the chain's and the index's)."""
    lot_id = lot.lot_id
    if claims is None:
        if lot.origin is None:
            checks.fail(
                "lineage",
                lot_id,
                "the lineage names this lot, but neither the index nor the chain has it",
                Difference(lot_id, "lot", "lot_id", None, None),
            )
            return []
        checks.fail(
            "lot_in_index",
            lot_id,
            "the chain has this lot; the index does not",
            Difference(lot_id, lot.origin.name, "lot_id", None, lot_id, where_of(lot.origin)),
            where_of(lot.origin),
        )
        check_chain_lot(chain, lot, block, checks, state=False)
        return lot.parents
    if lot.origin is None:
        checks.fail(
            "lot_on_chain",
            lot_id,
            "the index has this lot; the chain shows no registration or creation of it",
            Difference(lot_id, claims.origin.name, "lot_id", lot_id, None, claims.origin.where),
            claims.origin.where,
        )
        return [edge.input_lot_id for edge in claims.edges_in]

    checks.add(
        "lot_state",
        lot_id,
        {
            "custodian": claims.custodian,
            "remaining_g": claims.remaining_g,
            "pending_custodian": claims.pending_custodian,
        },
        state_of(chain.lot_state(lot_id, block)),
        event="lotState",
        detail=f"the index's current state vs lotState by eth_call at block {block} (the index cursor)",
    )
    check_chain_lot(chain, lot, block, checks, state=True)
    checks.add(
        "lot_status",
        lot_id,
        {"status": claims.status},
        {"status": replay(lot).lot.status.value},
        event="status",
        detail="the index's status vs the status the lot's events on chain give (active, consumed, voided)",
    )
    check_origin(chain, lot, claims, checks)
    for record in claims.records:
        check_record(chain, lot_id, record, checks)
    if lot.origin.name == "LotCreated" or claims.edges_in:
        check_lineage(lot, claims, checks)
    check_completeness(lot, claims, checks)
    parents = list(lot.parents)
    parents += [edge.input_lot_id for edge in claims.edges_in if edge.input_lot_id not in parents]
    return parents


def check_origin(chain: ChainReads, lot: ChainLot, claims: LotClaims, checks: Checks) -> None:
    claim = claims.origin
    lot_id = lot.lot_id
    name = "registration" if claim.name == "LotRegistered" else "creation"
    event, why = find_log(chain, claim.where)
    if event is None or event.name != claim.name or event.args.get("lotId") != lot_id:
        checks.add(
            name,
            lot_id,
            claim.fields,
            None,
            claim.where,
            event=claim.name,
            detail=why
            or f"the log at the index's coordinates is {event.name if event else '?'}, not {claim.name} of {lot_id}",
        )
        return
    on_chain: dict[str, Any] = dict(event.args)
    on_chain["site"] = lot.site
    on_chain["custodian"] = lot.first_custodian if claim.name == "LotRegistered" else event.args["custodian"]
    fields = dict(claim.fields)
    differences = compare(lot_id, claim.name, fields, on_chain, claim.where)
    differences += placement_differences(lot_id, claim, event)
    checks.add(
        name,
        lot_id,
        fields,
        {key: on_chain.get(key) for key in fields},
        claim.where,
        event=claim.name,
        differences=differences,
        detail=f"{claim.name} re-read from the receipt of {claim.where.tx_hash}",
    )
    if claims.transformation is not None:
        check_record(chain, lot_id, claims.transformation, checks, name="transformation")


def placement_differences(lot_id: str, claim: IndexedEvent, event: DecodedEvent) -> list[Difference]:
    """The block the index places a log in vs the block its receipt names (a reorg moves or drops it)."""
    found = []
    if claim.where.block_number != event.block_number:
        found.append(
            Difference(
                lot_id, claim.name, "block_number", claim.where.block_number, event.block_number, claim.where
            )
        )
    if claim.block_hash is not None and not equal_ignoring_hex_case(claim.block_hash, event.block_hash):
        found.append(
            Difference(lot_id, claim.name, "block_hash", claim.block_hash, event.block_hash, claim.where)
        )
    return found


def check_record(
    chain: ChainReads, lot_id: str, claim: IndexedEvent, checks: Checks, *, name: str | None = None
) -> None:
    """One derived row re-read from its receipt at the index's coordinates, field by field."""
    event, why = find_log(chain, claim.where)
    check_name = name or f"event:{claim.name}"
    if event is not None and event.name != claim.name:
        why = f"the log at the index's coordinates is {event.name}, not {claim.name}"
        event = None
    if claim.name == "AssayRecorded":
        check_assay(chain, lot_id, claim.fields, event, checks, claim.where, name="assay_signature_claimed")
    if event is None:
        checks.add(check_name, lot_id, claim.fields, None, claim.where, event=claim.name, detail=why)
        return
    differences = compare(lot_id, claim.name, claim.fields, event.args, claim.where)
    differences += placement_differences(lot_id, claim, event)
    checks.add(
        check_name,
        lot_id,
        claim.fields,
        {key: event.args.get(key) for key in claim.fields},
        claim.where,
        event=claim.name,
        differences=differences,
        detail=f"re-read from the receipt of {claim.where.tx_hash}",
    )


def check_lineage(lot: ChainLot, claims: LotClaims, checks: Checks) -> None:
    """The lot's incoming edges recomputed from its transformation's receipt with `allocate`."""
    lot_id = lot.lot_id
    expected: dict[str, int] = {}
    where = where_of(lot.origin) if lot.origin is not None else None
    if lot.consumed and lot.created:
        try:
            allocation = allocate(
                [int(e.args["massG"]) for e in lot.consumed], [int(e.args["massG"]) for e in lot.created]
            )
        except DomainError as error:
            checks.fail(
                "lineage",
                lot_id,
                f"the transformation cannot be allocated: {error}",
                Difference(lot_id, "LotsTransformed", "lossG", None, None, where),
                where,
            )
            return
        column = next(j for j, e in enumerate(lot.created) if e.args["lotId"] == lot_id)
        for i, consumed in enumerate(lot.consumed):
            input_id = str(consumed.args["lotId"])
            expected[input_id] = expected.get(input_id, 0) + allocation.edges[i][column]
    claimed: dict[str, int] = {}
    for edge in claims.edges_in:
        claimed[edge.input_lot_id] = claimed.get(edge.input_lot_id, 0) + edge.mass_g
    differences = [
        Difference(
            lot_id,
            "lineage_edge",
            f"edge[{input_id}].mass_g",
            claimed.get(input_id),
            expected.get(input_id),
            where,
        )
        for input_id in sorted(set(claimed) | set(expected))
        if claimed.get(input_id) != expected.get(input_id)
    ]
    transform_id = lot.origin.args.get("transformId") if lot.origin is not None else None
    differences += [
        Difference(
            lot_id,
            "lineage_edge",
            f"edge[{edge.input_lot_id}].transform_id",
            edge.transform_id,
            transform_id,
            where,
        )
        for edge in claims.edges_in
        if edge.transform_id != transform_id
    ]
    checks.add(
        "lineage",
        lot_id,
        {"edges_g": claimed},
        {"edges_g": expected},
        where,
        event="lineage_edge",
        differences=differences,
        detail="incoming lineage edges vs allocate() over the transformation's LotConsumed/LotCreated",
    )


def check_completeness(lot: ChainLot, claims: LotClaims, checks: Checks) -> None:
    """The lot's events on chain (eth_getLogs by its lotId topic) vs the index's: none dropped, none invented."""
    lot_id = lot.lot_id
    on_chain = {key_of(event): event for event in lot.events}
    derived = {
        (c.name, c.where.tx_hash.lower(), c.where.log_index): c for c in (claims.origin, *claims.records)
    }
    logged = {(name, tx.lower(), index) for name, tx, index in claims.logged}
    for check_name, claimed in (("events_complete", set(derived)), ("event_log_complete", logged)):
        differences = [
            Difference(
                lot_id, key[0], "missing from the index", None, f"{key[1]}#{key[2]}", where_of(on_chain[key])
            )
            for key in sorted(set(on_chain) - claimed)
        ] + [
            Difference(lot_id, key[0], "not on chain", f"{key[1]}#{key[2]}", None, Where(key[1], -1, key[2]))
            for key in sorted(claimed - set(on_chain))
        ]
        checks.add(
            check_name,
            lot_id,
            {"events": len(claimed)},
            {"events": len(on_chain)},
            event="events",
            differences=differences,
            detail=(
                "the index's rows about the lot"
                if check_name == "events_complete"
                else "the index's raw event log"
            )
            + " vs eth_getLogs by the lot's lotId topic",
        )


# ---------------------------------------------------------------------- documents


def verify_document(chain: ChainReads, index: IndexReads | None, document_hash: str) -> DocumentVerification:
    """Whether a document (its 0x-hex SHA-256) is anchored on chain: every DocumentAnchored of it up to
    the chain's head, and whether the index knows each; the index's anchors the chain does not show
    are listed as unconfirmed."""
    document_hash = document_hash.lower()
    checkpoint = index.checkpoint() if index is not None else None
    head = chain.head()
    from_block = checkpoint.deployment_block if checkpoint is not None else 0
    confirmed: set[tuple[str, int]] = set()
    unconfirmed: list[IndexedEvent] = []
    for claim in index.documents(document_hash) if index is not None else []:
        event, _ = find_log(chain, claim.where)
        if (
            event is not None
            and event.name == "DocumentAnchored"
            and not compare(claim.fields["lotId"], "DocumentAnchored", claim.fields, event.args, claim.where)
        ):
            confirmed.add((event.tx_hash.lower(), event.log_index))
        else:
            unconfirmed.append(claim)
    anchors = tuple(
        DocumentAnchor(
            lot_id=str(event.args["lotId"]),
            kind=str(event.args["kind"]),
            anchored_by=str(event.args["by"]),
            where=where_of(event),
            in_index=(event.tx_hash.lower(), event.log_index) in confirmed,
        )
        for event in chain.document_logs(document_hash, from_block, head)
    )
    assays = []
    for claim in index.assays_certified_by(document_hash) if index is not None else []:
        event, _ = find_log(chain, claim.where)
        certified = (
            event is not None
            and event.name == "AssayRecorded"
            and not compare(claim.fields["lotId"], "AssayRecorded", claim.fields, event.args, claim.where)
        )
        assays.append(
            CertifyingAssay(str(claim.fields["lotId"]), str(claim.fields["lab"]), claim.where, certified)
        )
    return DocumentVerification(document_hash, anchors, tuple(unconfirmed), head, tuple(assays))
