"""What the buyer's page shows, gathered from the read side and the live verification.

The facts come from `ReadQueries` and `verify_against_index` (the same calls as the JSON API,
so the page and `/v1` cannot disagree); this module only arranges them for the template:
percentages that add up to exactly 100.00, masses in units a person reads, a colour per site,
the lineage picture's layout, and every transaction behind a fact, so each fact can link to it.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import cmp_to_key

from api.pages.directory import Directory, Parties, Party
from api.pages.lineage_layout import GraphEdge, GraphNode, Layout, layered_layout
from api.pages.origin_map import FaceShare, OriginMap, origin_map
from provenance.domain.assay_certificate import Analyte, CertificateCheck, CertificateStatus
from provenance.domain.trace import (
    AssayFact,
    Coordinates,
    CorrectionFact,
    CustodyFact,
    LineageLink,
    LotDetail,
    LotFacts,
    Provenance,
    Share,
    TraceNode,
    extraction_day,
)
from provenance.errors import ChainError, IndexStateError
from provenance.verification.model import Verification

PERCENT_PLACES = 2
SITE_COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
"""Tableau 10: distinguishable, also in print; past ten sites the colours repeat (the legend and
each box's title still name the site)."""
MADE_COLOUR = "#f4f4f4"
MAX_ORIGIN_BOXES = 12
"""Past this many origin lots the picture draws one box per site, face and extraction day (each
listed lot by lot under "Origin shares", folded), so 1,000 truckloads stay a readable picture."""
GROUP_PREFIX = "origins "
"""Node ids of origin groups in the picture: a space, so never a lot id (labels have none)."""


# ------------------------------------------------------------------ formatting


def mass_text(grams: int | Fraction) -> str:
    """Grams in the unit a person reads at a glance: g below a kilogram, kg below a tonne, else t."""
    value = (
        Decimal(grams.numerator) / Decimal(grams.denominator)
        if isinstance(grams, Fraction)
        else Decimal(grams)
    )
    for unit, size in (("t", 1_000_000), ("kg", 1_000)):
        if abs(value) >= size:
            scaled = (value / size).quantize(Decimal("0.001"))
            text = f"{scaled:,.3f}".rstrip("0").rstrip(".")
            return f"{text} {unit}"
    return f"{value.quantize(Decimal(1)):,} g"


def grams_text(grams: int) -> str:
    return f"{grams:,} g"


def signed_mass_text(grams: int) -> str:
    """A mass change, its sign always shown: "+1.5 kg", "-100 g", "0 g"."""
    return f"+{mass_text(grams)}" if grams > 0 else mass_text(grams)


def time_text(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def percentages(fractions: list[Fraction], places: int = PERCENT_PLACES) -> list[str]:
    """Each fraction as a percentage with `places` decimals, rounded by largest remainder so that
    shares summing to exactly 1 are shown summing to exactly 100 (a buyer adds them up)."""
    unit = 100 * 10**places
    # integer arithmetic on numerator and denominator: Fraction arithmetic took a fifth of a
    # 1,000-origin page
    floors: list[int] = []
    remainders: list[tuple[int, int]] = []
    for fraction in fractions:
        whole, rest = divmod(fraction.numerator * unit, fraction.denominator)
        floors.append(whole)
        remainders.append((rest, fraction.denominator))

    def larger_remainder_first(i: int, j: int) -> int:
        (rest_i, of_i), (rest_j, of_j) = remainders[i], remainders[j]
        return rest_j * of_i - rest_i * of_j or i - j

    missing = round(sum(fractions) * unit) - sum(floors)
    by_remainder = sorted(range(len(floors)), key=cmp_to_key(larger_remainder_first))
    for i in by_remainder[: max(missing, 0)]:
        floors[i] += 1
    return [f"{Decimal(units).scaleb(-places):.{places}f}" for units in floors]


def short_hash(value: str) -> str:
    return value if len(value) <= 14 else f"{value[:8]}…{value[-4:]}"


# ------------------------------------------------------------------ page model


@dataclass(frozen=True)
class TxLink:
    """A link from a fact to the transaction that recorded it."""

    tx_hash: str
    block_number: int
    href: str
    anchor: str


@dataclass
class TxRecord:
    """A transaction behind one or more facts, for the page's list of chain records."""

    link: TxLink
    block_hash: str
    facts: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ShareRow:
    key: str | None
    """The origin lot, site or extraction day; None when unknown (a lot made before any extraction time)."""
    percent: str
    mass: str
    site: str | None = None
    extraction_day: str | None = None
    face: str | None = None
    colour: str | None = None
    href: str | None = None


@dataclass(frozen=True)
class StepRow:
    transform_id: int
    inputs: tuple[tuple[str, str], ...]
    """(input lot, mass carried into the outputs)."""
    outputs: tuple[str, ...]
    tx: TxLink


@dataclass(frozen=True)
class CustodyRow:
    action: str
    from_address: str | None
    to_address: str
    tx: TxLink


@dataclass(frozen=True)
class CorrectionRow:
    """One correction of the lot, as the page's "Corrections" table shows it."""

    reason: str
    """did_not_occur or incorrect_data; the words are `correction_<reason>`."""
    adjustment: str
    adjustment_g: int
    remaining: str
    corrected_by: str
    record_hash: str
    tx: TxLink


@dataclass(frozen=True)
class CorrectedLotRow:
    """A lot of the lineage (not the page's own) whose record carries corrections."""

    lot_id: str
    mark: str
    """"did-not-occur" or "corrected", as the picture marks it."""
    corrections: int
    adjustment: str


@dataclass(frozen=True)
class OriginGroup:
    """Origin lots of one site, face and extraction day, drawn as one box and listed folded."""

    node_id: str
    anchor: str
    site: str
    face: str | None
    day: str | None
    colour: str | None
    percent: str
    mass: str
    rows: tuple[ShareRow, ...]
    mark: str | None = None
    """The worst mark of its lots: "did-not-occur", else "corrected", else none."""


@dataclass(frozen=True)
class PartyRole:
    """A party the page names, with what it did for this lot."""

    party: Party
    roles: tuple[str, ...]
    """Word keys: role_custodian, role_lab, role_device, ..."""


@dataclass(frozen=True)
class AssayRow:
    """An assay with what this server holds under its certificate hash: analytes only if they match."""

    assay: AssayFact
    tx: TxLink
    certificate: CertificateCheck

    @property
    def status_key(self) -> str:
        return "certificate_" + self.certificate.status.value

    @property
    def analytes(self) -> tuple[Analyte, ...]:
        return self.certificate.analytes if self.certificate.status is CertificateStatus.MATCHES else ()


@dataclass(frozen=True)
class DocumentRow:
    kind: str
    document_hash: str
    anchored_by: str
    stored: bool
    """Whether this server holds the file (then it downloads with a token)."""
    download_href: str
    tx: TxLink


@dataclass(frozen=True)
class VerdictView:
    """The live verification as the page states it: verified, failed, or could not verify (why)."""

    state: str
    """"verified", "failed", "unverifiable", or "checking" (a long lineage, checked in the background)."""
    verification: Verification | None = None
    reason_key: str | None = None
    reason_detail: str | None = None


@dataclass(frozen=True)
class LotPage:
    lot: LotFacts
    detail: LotDetail
    created: TxLink
    verdict: VerdictView
    trace: Provenance
    max_depth: int
    layout: Layout
    colours: dict[str, str]
    max_weight: int
    by_origin_lot: tuple[ShareRow, ...]
    by_site: tuple[ShareRow, ...]
    by_day: tuple[ShareRow, ...]
    steps: tuple[StepRow, ...]
    custody: tuple[CustodyRow, ...]
    assay_links: tuple[TxLink, ...]
    document_links: tuple[TxLink, ...]
    corrections: tuple[CorrectionRow, ...]
    marks: Mapping[str, str]
    """Lot id -> "did-not-occur" or "corrected", for every lot of the lineage with corrections."""
    corrected_lots: tuple[CorrectedLotRow, ...]
    transactions: tuple[TxRecord, ...]
    index_block: int | None
    page_url: str
    chain_id: int | None
    lot_href: Mapping[str, str]
    has_inputs: frozenset[str]
    cut_lots: frozenset[str]
    """Lots made by a transformation where `max_depth` stopped the walk: drawn as stand-in origins."""
    origin_groups: tuple[OriginGroup, ...] = ()
    """Set when the origins are folded (more than MAX_ORIGIN_BOXES of them)."""
    origin_map: OriginMap | None = None
    face_shares: tuple[tuple[FaceShare, str], ...] = ()
    """The origin faces with their shown percentage, largest first."""
    parties: Parties = field(default_factory=lambda: Parties((), {}, {}))
    party_roles: tuple[PartyRole, ...] = ()
    documents: tuple[DocumentRow, ...] = ()
    assays: tuple[AssayRow, ...] = ()
    measured_by: str | None = None
    """The device that measured this lot's load, if one did."""
    directory: Directory = field(default_factory=Directory)


class Links:
    """Where a fact's transaction link points: the configured block explorer, else the entry in
    the page's own list of chain records (which shows the hash, the block and the block hash)."""

    def __init__(self, explorer_url: str | None) -> None:
        self.explorer = explorer_url.rstrip("/") if explorer_url else None
        self.records: dict[str, TxRecord] = {}

    def tx(self, coordinates: Coordinates, fact: str) -> TxLink:
        anchor = f"tx-{coordinates.tx_hash}"
        href = f"{self.explorer}/tx/{coordinates.tx_hash}" if self.explorer else f"#{anchor}"
        link = TxLink(coordinates.tx_hash, coordinates.block_number, href, anchor)
        record = self.records.setdefault(coordinates.tx_hash, TxRecord(link, coordinates.block_hash))
        if fact not in record.facts:
            record.facts.append(fact)
        return link

    def ordered(self) -> tuple[TxRecord, ...]:
        return tuple(sorted(self.records.values(), key=lambda r: (r.link.block_number, r.link.tx_hash)))


def verdict_of(verification: Verification | None, error: Exception | None) -> VerdictView:
    """How the page states the live check; an error is shown as "could not verify" with a reason
    that names no node URL (an RPC URL may carry an API key)."""
    if verification is not None:
        return VerdictView(verification.verdict.value, verification)
    if isinstance(error, ChainError | OSError):
        return VerdictView("unverifiable", reason_key="reason_chain", reason_detail=type(error).__name__)
    if isinstance(error, IndexStateError):
        return VerdictView("unverifiable", reason_key="reason_other", reason_detail=str(error))
    detail = type(error).__name__ if error is not None else None
    return VerdictView("unverifiable", reason_key="reason_other", reason_detail=detail)


def site_colours(sites: list[str]) -> dict[str, str]:
    return {site: SITE_COLOURS[i % len(SITE_COLOURS)] for i, site in enumerate(sorted(set(sites)))}


def group_mark(rows: tuple[ShareRow, ...] | list[ShareRow], marks: Mapping[str, str]) -> str | None:
    found = {marks.get(row.key or "") for row in rows}
    return "did-not-occur" if "did-not-occur" in found else ("corrected" if "corrected" in found else None)


def origin_groups(
    trace: Provenance,
    rows: tuple[ShareRow, ...],
    colours: Mapping[str, str],
    marks: Mapping[str, str] | None = None,
) -> tuple[OriginGroup, ...]:
    """The origin lots by site, face and extraction day, largest share first; their percentages
    rounded together (largest remainder), so the groups too add up to exactly 100.00."""
    fractions = {share.key: share.fraction for share in trace.by_origin_lot}
    grams = {share.key: share.grams for share in trace.by_origin_lot}
    members: dict[tuple[str, str, str], list[ShareRow]] = defaultdict(list)
    for row in rows:
        members[(row.site or "", row.face or "", row.extraction_day or "")].append(row)
    keyed = sorted(members.items(), key=lambda item: (-sum(fractions[row.key] for row in item[1]), item[0]))
    shown = percentages([sum((fractions[row.key] for row in group), Fraction(0)) for _, group in keyed])
    return tuple(
        OriginGroup(
            node_id=f"{GROUP_PREFIX}{index}",
            anchor=f"origin-group-{index}",
            site=site,
            face=face or None,
            day=day or None,
            colour=colours.get(site),
            percent=percent,
            mass=mass_text(sum((grams[row.key] for row in group), Fraction(0))),
            rows=tuple(group),
            mark=group_mark(group, marks or {}),
        )
        for index, (((site, face, day), group), percent) in enumerate(zip(keyed, shown, strict=True), 1)
    )


def lineage_picture(
    trace: Provenance, groups: tuple[OriginGroup, ...] = ()
) -> tuple[Layout, dict[str, str], int]:
    """The layout of the trace's lots and links (the origin lots of each group as one box), the
    colour of each origin site, the heaviest edge. The lot is the top-left box."""
    has_inputs = {link.output_lot_id for link in trace.links}
    origins = [node for node in trace.nodes if node.lot_id not in has_inputs]
    colours = site_colours([node.site for node in origins])
    group_of = {row.key: group for group in groups for row in group.rows if row.key is not None}
    nodes = [
        GraphNode(
            node.lot_id,
            (node.lot_id, mass_text(node.mass_g)),
            node.site if node.lot_id not in has_inputs else None,
        )
        for node in trace.nodes
        if node.lot_id not in group_of
    ]
    nodes += [
        GraphNode(
            group.node_id,
            (
                " · ".join(part for part in (group.site, group.face) if part),
                group.day or "?",
                f"n={len(group.rows)} · {group.mass}",
            ),
            group.site,
        )
        for group in groups
    ]
    carried: dict[tuple[str, str], int] = defaultdict(int)
    for link in trace.links:
        source = group_of[link.input_lot_id].node_id if link.input_lot_id in group_of else link.input_lot_id
        carried[(source, link.output_lot_id)] += link.mass_g
    edges = [GraphEdge(source, target, grams) for (source, target), grams in carried.items()]
    heaviest = max(carried.values(), default=1)
    return layered_layout(nodes, edges, lot_first=True), colours, max(heaviest, 1)


def face_shares(trace: Provenance, origin_facts: Mapping[str, LotFacts]) -> tuple[tuple[FaceShare, str], ...]:
    """The origin lots' shares summed by site and face, largest first, with shown percentages."""
    node_of = {node.lot_id: node for node in trace.nodes}
    fraction: dict[tuple[str, str | None], Fraction] = defaultdict(Fraction)
    grams: dict[tuple[str, str | None], Fraction] = defaultdict(Fraction)
    count: dict[tuple[str, str | None], int] = defaultdict(int)
    for share in trace.by_origin_lot:
        node = node_of[share.key or ""]
        facts = origin_facts.get(node.lot_id)
        key = (node.site, None if facts is None else facts.face)
        fraction[key] += share.fraction
        grams[key] += share.grams
        count[key] += 1
    keys = sorted(fraction, key=lambda key: (-fraction[key], key[0], key[1] or ""))
    faces = [
        FaceShare(site, face, fraction[(site, face)], grams[(site, face)], count[(site, face)])
        for site, face in keys
    ]
    return tuple(zip(faces, percentages([face.fraction for face in faces]), strict=True))


def party_roles(
    lot: LotFacts,
    detail: LotDetail,
    moves: tuple[CustodyFact, ...],
    parties: Parties,
    devices: Mapping[str, int],
) -> tuple[PartyRole, ...]:
    """Every party the page names, in the order they first acted, each with its roles here;
    `devices` counts the origin lots each device measured."""
    roles: dict[str, list[str]] = {}

    def add(address: str | None, role: str) -> None:
        if address is None:
            return
        held = roles.setdefault(address.lower(), [address])
        if role not in held[1:]:
            held.append(role)

    add(lot.creator, "role_creator")
    for move in moves:
        add(move.from_address, "role_custodian")
        add(move.to_address, "role_receiver" if move.action != "accepted" else "role_custodian")
    add(lot.custodian, "role_custodian_now")
    for assay in detail.assays:
        add(assay.lab, "role_lab")
    for document in detail.documents:
        add(document.anchored_by, "role_documents")
    for correction in detail.corrections:
        add(correction.corrected_by, "role_corrections")
    for device in sorted(devices, key=lambda address: (-devices[address], address)):
        add(device, "role_device")
    return tuple(PartyRole(parties.of(held[0]), tuple(held[1:])) for held in roles.values())


def share_rows(
    shares: tuple[Share, ...], about: Mapping[str | None, Mapping[str, str | None]] | None = None
) -> tuple[ShareRow, ...]:
    """Rows of a share list; `about` adds per key what the table shows beside the share."""
    rows = []
    for share, percent in zip(shares, percentages([share.fraction for share in shares]), strict=True):
        extra = (about or {}).get(share.key, {})
        rows.append(
            ShareRow(
                key=share.key,
                percent=percent,
                mass=mass_text(share.grams),
                site=extra.get("site"),
                extraction_day=extra.get("extraction_day"),
                face=extra.get("face"),
                colour=extra.get("colour"),
                href=extra.get("href"),
            )
        )
    return tuple(rows)


def steps_of(links: tuple[LineageLink, ...], record: Links) -> tuple[StepRow, ...]:
    grouped: dict[int, list[LineageLink]] = defaultdict(list)
    for link in links:
        grouped[link.transform_id].append(link)
    steps = []
    for transform_id, group in grouped.items():
        first = min(group, key=lambda link: (link.coordinates.block_number, link.coordinates.log_index))
        carried: dict[str, int] = defaultdict(int)
        for link in group:
            carried[link.input_lot_id] += link.mass_g
        outputs = tuple(sorted({link.output_lot_id for link in group}))
        steps.append(
            StepRow(
                transform_id,
                tuple((lot, mass_text(grams)) for lot, grams in sorted(carried.items())),
                outputs,
                record.tx(first.coordinates, "fact_step"),
            )
        )
    steps.sort(key=lambda step: (step.tx.block_number, step.transform_id))
    return tuple(steps)


def custody_rows(lot: LotFacts, moves: tuple[CustodyFact, ...], record: Links) -> tuple[CustodyRow, ...]:
    first = CustodyRow(
        "action_registered" if lot.origin == "registered" else "action_transformed",
        None,
        lot.creator,
        record.tx(lot.created, "fact_created"),
    )
    return (
        first,
        *(
            CustodyRow(
                f"action_{move.action}",
                move.from_address,
                move.to_address,
                record.tx(move.coordinates, "fact_custody"),
            )
            for move in moves
        ),
    )


def correction_rows(corrections: tuple[CorrectionFact, ...], record: Links) -> tuple[CorrectionRow, ...]:
    return tuple(
        CorrectionRow(
            reason=correction.reason,
            adjustment=signed_mass_text(correction.adjustment_g),
            adjustment_g=correction.adjustment_g,
            remaining=mass_text(correction.remaining_g),
            corrected_by=correction.corrected_by,
            record_hash=correction.record_hash,
            tx=record.tx(correction.coordinates, "fact_correction"),
        )
        for correction in corrections
    )


def correction_mark(node: TraceNode) -> str | None:
    """How the picture marks a lot: a void outweighs any other correction; none when it has none."""
    if node.did_not_occur:
        return "did-not-occur"
    return "corrected" if node.corrections else None


def corrected_lineage(trace: Provenance) -> tuple[dict[str, str], tuple[CorrectedLotRow, ...]]:
    """The mark of every lot of the lineage with corrections, and a row for each one other than the
    traced lot (whose own corrections the page lists in full), nearest first."""
    marks: dict[str, str] = {}
    rows: list[CorrectedLotRow] = []
    for node in trace.nodes:
        mark = correction_mark(node)
        if mark is None:
            continue
        marks[node.lot_id] = mark
        if node.lot_id != trace.lot_id:
            rows.append(
                CorrectedLotRow(node.lot_id, mark, node.corrections, signed_mass_text(node.corrected_g))
            )
    return marks, tuple(rows)


def build_page(
    detail: LotDetail,
    trace: Provenance,
    moves: tuple[CustodyFact, ...],
    origin_facts: dict[str, LotFacts],
    verdict: VerdictView,
    *,
    max_depth: int,
    explorer_url: str | None,
    index_block: int | None,
    page_url: str,
    lot_href: Mapping[str, str],
    parties: Parties | None = None,
    directory: Directory | None = None,
    measured_by: Mapping[str, str] | None = None,
    stored_documents: frozenset[str] = frozenset(),
    document_href: str = "/v1/documents/",
    certificates: Mapping[str, CertificateCheck] | None = None,
) -> LotPage:
    """Everything the template shows. `origin_facts` holds the full facts (face, ...) of the origin
    lots the page lists; `lot_href` the link of each lot in the trace; `measured_by` the device of
    each lot (the page's own and its origins) a device measured; `stored_documents` the hashes of
    the documents this server holds; `certificates` what it holds under each assay's certificate
    hash (lower case), checked against that hash."""
    parties = parties or Parties((), {}, {})
    directory = directory or Directory()
    measured_by = measured_by or {}
    record = Links(explorer_url)
    lot = detail.lot
    created = record.tx(lot.created, "fact_created")
    assay_links = tuple(record.tx(a.coordinates, "fact_assay") for a in detail.assays)
    document_links = tuple(record.tx(d.coordinates, "fact_document") for d in detail.documents)
    corrections = correction_rows(detail.corrections, record)
    custody = custody_rows(lot, moves, record)
    steps = steps_of(trace.links, record)
    made = {link.output_lot_id for link in trace.links}
    colours = site_colours([node.site for node in trace.nodes if node.lot_id not in made])
    marks, corrected_lots = corrected_lineage(trace)
    node_of = {node.lot_id: node for node in trace.nodes}
    origin_fields: dict[str | None, dict[str, str | None]] = {}
    for share in trace.by_origin_lot:
        node = node_of[share.key or ""]
        facts = origin_facts.get(node.lot_id)
        origin_fields[share.key] = {
            "site": node.site,
            "extraction_day": extraction_day(node.extracted_at),
            "face": None if facts is None else facts.face,
            "colour": colours.get(node.site),
            "href": lot_href.get(node.lot_id),
        }
    by_origin_lot = share_rows(trace.by_origin_lot, origin_fields)
    groups = (
        origin_groups(trace, by_origin_lot, colours, marks) if len(by_origin_lot) > MAX_ORIGIN_BOXES else ()
    )
    layout, colours, heaviest = lineage_picture(trace, groups)
    site_fields: dict[str | None, dict[str, str | None]] = {
        share.key: {"colour": colours.get(share.key or "")} for share in trace.by_site
    }
    faces = face_shares(trace, origin_facts)
    device_counts: dict[str, int] = defaultdict(int)
    for share in trace.by_origin_lot:
        if share.key is not None and share.key in measured_by:
            device_counts[measured_by[share.key]] += 1
    chain_id = verdict.verification.chain_id if verdict.verification is not None else None
    has_inputs = frozenset(link.output_lot_id for link in trace.links)
    return LotPage(
        lot=lot,
        detail=detail,
        created=created,
        verdict=verdict,
        trace=trace,
        max_depth=max_depth,
        layout=layout,
        colours=colours,
        max_weight=heaviest,
        by_origin_lot=by_origin_lot,
        by_site=share_rows(trace.by_site, site_fields),
        by_day=share_rows(trace.by_extraction_day),
        steps=steps,
        custody=custody,
        assay_links=assay_links,
        document_links=document_links,
        corrections=corrections,
        marks=marks,
        corrected_lots=corrected_lots,
        transactions=record.ordered(),
        index_block=index_block,
        page_url=page_url,
        chain_id=chain_id,
        lot_href=lot_href,
        has_inputs=has_inputs,
        cut_lots=frozenset(
            node.lot_id
            for node in trace.nodes
            if node.lot_id not in has_inputs and node.origin != "registered"
        ),
        origin_groups=groups,
        origin_map=origin_map(
            [face for face, _ in faces], [percent for _, percent in faces], directory, colours
        ),
        face_shares=faces,
        parties=parties,
        party_roles=party_roles(lot, detail, moves, parties, device_counts),
        documents=tuple(
            DocumentRow(
                document.kind,
                document.document_hash,
                document.anchored_by,
                document.document_hash.lower().removeprefix("0x") in stored_documents,
                document_href + document.document_hash.lower().removeprefix("0x"),
                link,
            )
            for document, link in zip(detail.documents, document_links, strict=True)
        ),
        assays=tuple(
            AssayRow(
                assay,
                link,
                (certificates or {}).get(
                    assay.certificate_hash.lower(), CertificateCheck(CertificateStatus.NOT_HELD)
                ),
            )
            for assay, link in zip(detail.assays, assay_links, strict=True)
        ),
        measured_by=measured_by.get(lot.lot_id),
        directory=directory,
    )
