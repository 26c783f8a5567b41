"""What the read side answers, as plain values, and the arithmetic of tracing mass through lineage.

The index stores lineage as whole-gram edges (`provenance.domain.lineage`): each output lot's
incoming edges add up to exactly its mass. So the fraction of a lot L that came from a parent P is
edge(P -> L) / (sum of L's incoming edges), and the share of L that came from an origin lot O is
the sum, over every path from O to L, of the product of those fractions along the path. With exact
fractions (`fractions.Fraction`) the origins' shares add up to exactly 1: every step distributes
exactly what it received.

Forward (for a recall) the same edges answer "how many grams of lot R are in descendant D": the
grams of R in D are, over D's parents P, (grams of R in P) / (mass of P) * edge(P -> D), with R's
own grams its mass.

Corrections do not enter this arithmetic: a correction adjusts what remains in a lot, not the grams
a transformation already took from it, so the edges (and the shares) stand as recorded. The walk
marks the lots that carry corrections instead (`TraceNode.corrections`, `did_not_occur`), for the
reader to judge.
"""

from __future__ import annotations

import datetime
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal
from fractions import Fraction

from provenance.errors import DomainError

DECIMAL_PLACES = 12
_CONTEXT = Context(prec=60)


def decimal_text(value: Fraction, places: int = DECIMAL_PLACES) -> str:
    """`value` rounded half-even to `places` decimals, as text ("0.333333333333")."""
    quotient = _CONTEXT.divide(Decimal(value.numerator), Decimal(value.denominator))
    return str(quotient.quantize(Decimal(1).scaleb(-places), context=_CONTEXT))


# ---------------------------------------------------------------------- facts with coordinates


@dataclass(frozen=True)
class Coordinates:
    """Where on chain a fact was recorded."""

    block_number: int
    block_hash: str
    tx_hash: str
    tx_index: int
    log_index: int


@dataclass(frozen=True)
class LotFacts:
    """A lot's origin attributes (with the coordinates of the event that created it) and its
    current state as the index holds it."""

    lot_id: str
    origin: str
    site: str
    face: str | None
    commodity: str
    mass_g: int
    grade_ppm: int
    extracted_at: int | None
    record_hash: str
    transform_id: int | None
    creator: str
    custodian: str
    pending_custodian: str | None
    remaining_g: int
    status: str
    created: Coordinates


@dataclass(frozen=True)
class AssayFact:
    lab: str
    grade_ppm: int
    method: str
    certificate_hash: str
    assayed_at: int
    submitter: str
    coordinates: Coordinates


@dataclass(frozen=True)
class DocumentFact:
    document_hash: str
    kind: str
    anchored_by: str
    coordinates: Coordinates


@dataclass(frozen=True)
class CustodyFact:
    """One step of a handover: offered, cancelled or accepted."""

    lot_id: str
    action: str
    from_address: str
    to_address: str
    coordinates: Coordinates


@dataclass(frozen=True)
class CorrectionFact:
    """A declaration (LotCorrected) that the lot's record was wrong: the record is never edited, the
    correction is a fact of its own. A `did_not_occur` correction voids the lot; it stays in every
    lineage it is part of."""

    reason: str
    """The CBV 2.0 error reason: did_not_occur or incorrect_data."""
    adjustment_g: int
    """Signed: grams added to (or, negative, taken from) the lot's remaining mass."""
    remaining_g: int
    """The lot's remaining mass after the correction."""
    corrected_by: str
    record_hash: str
    coordinates: Coordinates


@dataclass(frozen=True)
class LotDetail:
    lot: LotFacts
    assays: tuple[AssayFact, ...]
    documents: tuple[DocumentFact, ...]
    pending_offer: CustodyFact | None
    """The offer that made `pending_custodian`, if one is open."""
    corrections: tuple[CorrectionFact, ...]
    """Oldest first."""


@dataclass(frozen=True)
class TimelineEvent:
    """A registry event as the index logged it."""

    name: str
    lot_id: str | None
    args: Mapping[str, object]
    coordinates: Coordinates


# ---------------------------------------------------------------------- lineage


@dataclass(frozen=True)
class TraceNode:
    """A lot as the lineage walk sees it."""

    lot_id: str
    origin: str
    site: str
    commodity: str
    mass_g: int
    extracted_at: int | None
    custodian: str
    status: str
    depth: int
    """Edges from the lot the walk started at."""
    corrections: int = 0
    """How many corrections the lot's record carries."""
    corrected_g: int = 0
    """The sum of their (signed) mass adjustments."""
    did_not_occur: bool = False
    """A correction declared that the lot never occurred (it stays in the lineage, marked)."""


@dataclass(frozen=True)
class LineageLink:
    """`mass_g` grams of `input_lot_id` went into `output_lot_id` (coordinates of the output's creation)."""

    input_lot_id: str
    output_lot_id: str
    transform_id: int
    mass_g: int
    coordinates: Coordinates


@dataclass(frozen=True)
class Share:
    """An exact part of a lot: `fraction` of it, `grams` of its mass."""

    key: str | None
    fraction: Fraction
    grams: Fraction


@dataclass(frozen=True)
class Provenance:
    lot_id: str
    nodes: tuple[TraceNode, ...]
    links: tuple[LineageLink, ...]
    complete: bool
    """False when `max_depth` cut the walk: the shares then stop at the deepest lots reached."""
    by_origin_lot: tuple[Share, ...]
    by_site: tuple[Share, ...]
    by_extraction_day: tuple[Share, ...]


@dataclass(frozen=True)
class Descendant:
    node: TraceNode
    grams: Fraction
    """Grams of the traced lot in this one."""
    custodians: tuple[str, ...]
    """Every account that has held this lot: its creator, then each that accepted it, in order."""


@dataclass(frozen=True)
class Descendants:
    lot_id: str
    lots: tuple[Descendant, ...]
    links: tuple[LineageLink, ...]
    complete: bool
    custodians: tuple[str, ...]
    """Every account that received any of the traced lot's mass (the lot itself included), sorted."""


def _incoming(links: Iterable[LineageLink]) -> dict[str, list[LineageLink]]:
    incoming: dict[str, list[LineageLink]] = defaultdict(list)
    for link in links:
        incoming[link.output_lot_id].append(link)
    return incoming


def origin_shares(lot_id: str, links: Sequence[LineageLink]) -> dict[str, Fraction]:
    """The exact share of `lot_id` that comes from each lot with no incoming link among `links`
    (its origins), over every path. The shares add up to exactly 1.

    `links` must hold every link on the paths from those origins to `lot_id` (what a backward walk
    returns); links elsewhere are ignored.
    """
    incoming = _incoming(links)
    reachable: set[str] = {lot_id}
    queue = deque([lot_id])
    while queue:
        for link in incoming.get(queue.popleft(), ()):
            if link.input_lot_id not in reachable:
                reachable.add(link.input_lot_id)
                queue.append(link.input_lot_id)
    # A lot is settled once every lot it went into (within the walk) has passed its share on.
    waiting = dict.fromkeys(reachable, 0)
    for lot in reachable:
        for link in incoming.get(lot, ()):
            waiting[link.input_lot_id] += 1
    if waiting[lot_id] != 0:
        raise DomainError("lineage", f"lot {lot_id} is its own ancestor")
    share: dict[str, Fraction] = defaultdict(Fraction)
    share[lot_id] = Fraction(1)
    origins: dict[str, Fraction] = {}
    ready = deque([lot_id])
    settled = 0
    while ready:
        lot = ready.popleft()
        settled += 1
        parents = incoming.get(lot, [])
        if not parents:
            origins[lot] = share[lot]
            continue
        total = sum(link.mass_g for link in parents)
        if total <= 0:
            raise DomainError("lineage", f"lot {lot}'s incoming edges carry no mass")
        for link in parents:
            share[link.input_lot_id] += share[lot] * Fraction(link.mass_g, total)
            waiting[link.input_lot_id] -= 1
            if waiting[link.input_lot_id] == 0:
                ready.append(link.input_lot_id)
    if settled != len(reachable):
        raise DomainError("lineage", f"the lineage of lot {lot_id} has a cycle")
    return origins


def extraction_day(extracted_at: int | None) -> str | None:
    """The UTC date of an extraction time (Unix seconds), as YYYY-MM-DD."""
    if extracted_at is None:
        return None
    return datetime.datetime.fromtimestamp(extracted_at, datetime.UTC).date().isoformat()


def _grouped(
    shares: Mapping[str, Fraction], key_of: Mapping[str, str | None], mass_g: int
) -> tuple[Share, ...]:
    groups: dict[str | None, Fraction] = defaultdict(Fraction)
    for lot, fraction in shares.items():
        groups[key_of[lot]] += fraction
    ordered = sorted(groups.items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))
    return tuple(Share(key, fraction, fraction * mass_g) for key, fraction in ordered)


def provenance(
    lot_id: str, nodes: Sequence[TraceNode], links: Sequence[LineageLink], *, complete: bool
) -> Provenance:
    """The backward trace of `lot_id` from what a walk returned: its origins' shares, and those
    shares grouped by site and by extraction day."""
    by_id = {node.lot_id: node for node in nodes}
    if lot_id not in by_id:
        raise DomainError("lot_id", f"the walk does not hold lot {lot_id}")
    shares = origin_shares(lot_id, links)
    mass_g = by_id[lot_id].mass_g
    return Provenance(
        lot_id=lot_id,
        nodes=tuple(nodes),
        links=tuple(links),
        complete=complete,
        by_origin_lot=_grouped(shares, {lot: lot for lot in shares}, mass_g),
        by_site=_grouped(shares, {lot: by_id[lot].site for lot in shares}, mass_g),
        by_extraction_day=_grouped(
            shares, {lot: extraction_day(by_id[lot].extracted_at) for lot in shares}, mass_g
        ),
    )


def descendant_grams(
    lot_id: str, links: Sequence[LineageLink], mass_of: Mapping[str, int]
) -> dict[str, Fraction]:
    """Exact grams of `lot_id` in each lot reached from it along `links` (not the lot itself).

    `mass_of` gives each lot's mass (for a lot made by a transformation, the sum of all its incoming
    edges, including those from lots that are not descendants of `lot_id`)."""
    outgoing: dict[str, list[LineageLink]] = defaultdict(list)
    for link in links:
        outgoing[link.input_lot_id].append(link)
    reachable: set[str] = {lot_id}
    queue = deque([lot_id])
    while queue:
        for link in outgoing.get(queue.popleft(), ()):
            if link.output_lot_id not in reachable:
                reachable.add(link.output_lot_id)
                queue.append(link.output_lot_id)
    waiting = dict.fromkeys(reachable, 0)
    for link in links:
        if link.input_lot_id in reachable:
            waiting[link.output_lot_id] += 1
    if waiting[lot_id] != 0:
        raise DomainError("lineage", f"lot {lot_id} is its own descendant")
    grams: dict[str, Fraction] = defaultdict(Fraction)
    grams[lot_id] = Fraction(mass_of[lot_id])
    ready = deque([lot_id])
    while ready:
        lot = ready.popleft()
        for link in outgoing.get(lot, ()):
            child = link.output_lot_id
            if mass_of[lot] > 0:
                grams[child] += grams[lot] * Fraction(link.mass_g, mass_of[lot])
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return {lot: value for lot, value in grams.items() if lot != lot_id}


def descendants(
    lot_id: str,
    nodes: Sequence[TraceNode],
    links: Sequence[LineageLink],
    custodians_of: Mapping[str, Sequence[str]],
    *,
    complete: bool,
) -> Descendants:
    """The forward trace of `lot_id`: every lot that received its mass, with how much, and who held them."""
    grams = descendant_grams(lot_id, links, {node.lot_id: node.mass_g for node in nodes})
    ordered = sorted((node for node in nodes if node.lot_id in grams), key=lambda n: (n.depth, n.lot_id))
    lots = tuple(
        Descendant(node, grams[node.lot_id], tuple(custodians_of.get(node.lot_id, ()))) for node in ordered
    )
    everyone = sorted(
        {*custodians_of.get(lot_id, ()), *(account for lot in lots for account in lot.custodians)}
    )
    return Descendants(lot_id, lots, tuple(links), complete, tuple(everyone))


# ---------------------------------------------------------------------- lists, balances


@dataclass(frozen=True)
class LotFilter:
    site: str | None = None
    commodity: str | None = None
    custodian: str | None = None
    """A checksummed address, as the index stores them."""
    status: str | None = None
    extracted_from: int | None = None
    """Inclusive, Unix seconds."""
    extracted_to: int | None = None
    """Exclusive, Unix seconds."""


@dataclass(frozen=True)
class MassBalance:
    """A site's stock over the blocks `from_block` to `to_block`, both included, as a mass-balance
    account (`provenance.domain.site_balance` defines each figure):

        opening + extracted + received - shipped - lost + corrected = closing

    Processing at the site (transformations recorded at it) is internal: `processed_g` is the input
    mass it consumed and `produced_g` the mass of the lots it made, and processed = produced + lost.
    `closing` is read from the lots' current state (rolled back past `to_block`), not from the same
    sums: `reconciles` says whether the event rows and the state cache agree.
    """

    site: str
    from_block: int
    to_block: int
    opening_g: int
    extracted_g: int
    received_g: int
    shipped_g: int
    lost_g: int
    corrected_g: int
    closing_g: int
    processed_g: int
    produced_g: int
    returned_g: int = 0
    """Part of `received_g`: the site's own lots whose custody came back to the site."""
    transferred_g: int = 0
    """Part of `shipped_g`: what transformations at other sites took from the site's stock."""
    shipments: int = 0
    """How many times custody of one of the site's lots left the site."""

    @property
    def expected_closing_g(self) -> int:
        return (
            self.opening_g
            + self.extracted_g
            + self.received_g
            - self.shipped_g
            - self.lost_g
            + self.corrected_g
        )

    @property
    def reconciles(self) -> bool:
        return self.expected_closing_g == self.closing_g


def first_block_at_or_after(timestamp: int, first: int, last: int, timestamp_of: Callable[[int], int]) -> int:
    """The first block in first..last whose timestamp is at least `timestamp` (last + 1 if none),
    by bisection: block timestamps never decrease."""
    low, high = first, last + 1
    while low < high:
        middle = (low + high) // 2
        if timestamp_of(middle) >= timestamp:
            high = middle
        else:
            low = middle + 1
    return low


def parse_time(field: str, text: str) -> int:
    """Unix seconds from whole seconds ("1700000000") or an ISO 8601 date or date-time (UTC unless
    it names an offset); a DomainError naming `field` otherwise."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise DomainError(field, f"{text!r} is neither Unix seconds nor an ISO 8601 date") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    seconds = int(moment.timestamp())
    if seconds < 0:
        raise DomainError(field, "times before 1970 are not supported")
    return seconds
