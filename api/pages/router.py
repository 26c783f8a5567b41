"""The buyer's verification page, `GET /lots/{lot_id}`, and its QR code, `GET /lots/{lot_id}/qr.svg`.

A buyer opens the page from the QR code on a lot's paperwork, on any phone, so it is plain HTML
rendered here: no JavaScript at all (the Content-Security-Policy forbids scripts), the lineage
drawn as inline SVG. The facts come from the index (`ReadQueries`, as `/v1` reads them) and the
verdict from the same live check as `GET /v1/lots/{id}/verify`. A chain node that does not answer
makes the verdict "could not verify", never an error page: the facts are still worth showing,
marked as unchecked. An unknown or malformed lot id gets a 404 page in both languages.

Lot ids may contain "/" (labels allow it), so the routes take the rest of the path.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import replace
from functools import cache
from typing import Annotated
from urllib.parse import quote

import segno
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined

from api.deps import RuntimeDep
from api.pages import i18n
from api.pages.directory import Parties, directory_stamp, load_directory
from api.pages.passport import document_lang, passport_pdf
from api.pages.verdicts import PageCache, VerdictCache
from api.pages.view import (
    MADE_COLOUR,
    LotPage,
    VerdictView,
    build_page,
    grams_text,
    mass_text,
    short_hash,
    time_text,
    verdict_of,
)
from api.routers.reads import DEFAULT_MAX_DEPTH, Reading
from provenance.bootstrap import Runtime
from provenance.certificates import certificate_checks
from provenance.domain.values import encode_label
from provenance.epcis.ids import LotNumber
from provenance.errors import DomainError
from provenance.index.epcis_queries import EpcisQueries
from provenance.index.page_queries import PageQueries

log = logging.getLogger(__name__)

QR_SCALE = 4
QR_BORDER = 4
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


class PageReading(Reading, PageQueries):
    """A request's reads (one connection, its index block) with the pages' extra queries."""


@cache
def templates() -> Environment:
    """Autoescaping everywhere: lot ids, sites, kinds and methods are whatever a registrar typed."""
    environment = Environment(
        loader=PackageLoader("api.pages", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        mass=mass_text, grams=grams_text, time=time_text, short=short_hash, number=lambda n: f"{n:,}"
    )
    return environment


def qr_svg(url: str) -> bytes:
    """The QR code of `url` as an SVG document. Never a Micro QR: most phone cameras cannot read one."""
    out = io.BytesIO()
    segno.make(url, micro=False).save(out, kind="svg", scale=QR_SCALE, border=QR_BORDER, title=url)
    return out.getvalue()


def lot_path(request: Request, lot_id: str) -> str:
    return request.url_for("lot_page", lot_id=lot_id).path


def lot_paths(request: Request, lot_ids: Iterable[str]) -> dict[str, str]:
    """The page path of each lot: the route resolved once (once per lot took a fifth of a page
    with a 1,000-lot lineage), each id percent-encoded but for "/" (an id with "?" or "#" would
    otherwise link to another lot)."""
    marker = "LOT-ID-MARKER"
    head, _, tail = lot_path(request, marker).partition(marker)
    return {lot_id: head + quote(lot_id, safe="/") + tail for lot_id in lot_ids}


def page_url(request: Request, runtime: Runtime, lot_id: str) -> str:
    """The page's absolute URL, as printed in its QR code: under `public_url` when set (behind a proxy
    the request's own host may be an internal one), else the request's."""
    public = runtime.settings.public_url
    if public:
        return public.rstrip("/") + str(request.app.url_path_for("lot_page", lot_id=lot_id))
    return str(request.url_for("lot_page", lot_id=lot_id))


def well_formed(lot_id: str) -> bool:
    try:
        encode_label(lot_id, "lot_id")
    except DomainError:
        return False
    return True


def not_found(lot_id: str) -> HTMLResponse:
    known_form = well_formed(lot_id)
    shown = lot_id if len(lot_id) <= 80 else lot_id[:80] + "…"
    body = (
        templates()
        .get_template("not_found.html")
        .render(
            lot_id=shown,
            malformed=not known_form,
            title=i18n.NOT_FOUND_TITLE,
            text=i18n.NOT_FOUND_TEXT,
            malformed_text=i18n.MALFORMED_TEXT,
        )
    )
    return HTMLResponse(body, status_code=404, headers=SECURITY_HEADERS)


def live_verdict(runtime: Runtime, lot_id: str) -> VerdictView:
    """The same check as GET /v1/lots/{id}/verify; whatever goes wrong becomes "could not verify"."""
    try:
        verification = runtime.verifier.lot(lot_id)
    except Exception as error:  # the page must show the facts even when the chain cannot be asked
        log.warning("verifying lot %r for its page failed: %s", lot_id, type(error).__name__)
        return verdict_of(None, error)
    return verdict_of(verification, None)


def verdicts_of(request: Request) -> VerdictCache:
    cache: VerdictCache = request.app.state.verdicts
    return cache


def pages_of(request: Request) -> PageCache:
    cache: PageCache = request.app.state.lot_pages
    return cache


def qr_url(request: Request, runtime: Runtime, lot_id: str, commodity: str) -> str:
    """What a lot's QR code carries: its GS1 Digital Link when the deployment names lots by GS1
    keys (a GTIN for its commodity), on the page's own base, which resolves it (`resolve_digital_link`);
    else the page's URL."""
    scheme = runtime.settings.epcis_identifiers()
    if scheme.gs1 is None or scheme.gs1.gtin(commodity) is None:
        return page_url(request, runtime, lot_id)
    link = replace(scheme, form="digital_link").lot(lot_id, commodity)
    base = (runtime.settings.public_url or str(request.base_url)).rstrip("/")
    return base + link[len(scheme.base_url) :]


@router.get("/lots/{lot_id:path}/qr.svg", name="lot_qr")
def lot_qr(lot_id: str, request: Request, runtime: RuntimeDep) -> Response:
    if not well_formed(lot_id):
        return not_found(lot_id)
    with Reading(runtime) as reads:
        detail = reads.lot(lot_id)
    if detail is None:
        return not_found(lot_id)
    return Response(
        qr_svg(qr_url(request, runtime, lot_id, detail.lot.commodity)),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600", **SECURITY_HEADERS},
    )


@router.get("/01/{gtin}/10/{lot_number}", name="digital_link")
def resolve_digital_link(gtin: str, lot_number: str, request: Request, runtime: RuntimeDep) -> Response:
    """A GS1 Digital Link of one of our lots (GS1 Digital Link 1.2, a resolver's default link):
    a redirect to its page. `linkType` and other query parameters are ignored: every link type
    gets the page (it carries the lot's facts, documents and passport)."""
    scheme = runtime.settings.epcis_identifiers()
    named = scheme.parse_lot(f"https://id.gs1.org/01/{gtin}/10/{quote(lot_number, safe='')}")
    if isinstance(named, LotNumber):
        with Reading(runtime) as reads, reads._connect() as connection:
            found = EpcisQueries(connection, scheme).resolve([named], "lot").get(named, set())
        named = min(found) if len(found) == 1 else None
    if named is None or not well_formed(named):
        return not_found(lot_number)
    with Reading(runtime) as reads:
        detail = reads.lot(named)
    if detail is None or scheme.gs1 is None or scheme.gs1.gtin(detail.lot.commodity) != gtin:
        return not_found(lot_number)
    return RedirectResponse(lot_paths(request, [named])[named], status_code=307)


SYNC_VERIFY_MAX_LOTS = 200
"""A lineage of more lots is checked against the chain in the background on a page's first view
(it takes seconds): the page shows the facts at once, says the check is under way and reloads."""
CHECKING_REFRESH_S = 5


def gather(
    lot_id: str, request: Request, runtime: Runtime, *, wait_for_verdict: bool = False
) -> LotPage | None:
    """Everything the lot's page (and its passport) shows; None for an unknown lot. A fixed number
    of queries whatever the lineage's size: the origins' facts and devices come in IN-lists."""
    with PageReading(runtime) as reads:  # closed before the verdict, which may ask the chain
        index_block = reads.block_seen
        cursor = reads.index_cursor()
        detail = reads.lot(lot_id)
        trace = reads.provenance(lot_id, DEFAULT_MAX_DEPTH)
        moves = reads.custody(lot_id)
        if detail is None or trace is None or moves is None:
            return None
        origin_ids = [share.key for share in trace.by_origin_lot if share.key is not None]
        origin_facts = reads.lots_facts(origin_ids)
        measured_by = reads.measured_by([lot_id, *origin_ids])
        addresses = {
            detail.lot.creator,
            detail.lot.custodian,
            *(move.from_address for move in moves),
            *(move.to_address for move in moves),
            *(assay.lab for assay in detail.assays),
            *measured_by.values(),
        }
        devices = reads.devices_at(addresses)
    verdicts = verdicts_of(request)
    verdict = verdicts.kept(lot_id, cursor)
    if verdict is None and not wait_for_verdict and len(trace.nodes) > SYNC_VERIFY_MAX_LOTS:
        verdicts.check_later(lot_id, cursor)
        verdict = VerdictView("checking")
    elif verdict is None:
        verdict = verdicts.verdict(lot_id, cursor)
    directory = load_directory(runtime.settings.data_dir)
    parties = Parties(runtime.credentials.all(), devices, directory.organisations)
    stored = frozenset(
        document.document_hash.lower().removeprefix("0x")
        for document in detail.documents
        if runtime.documents.find(document.document_hash) is not None
    )
    return build_page(
        detail,
        trace,
        moves,
        origin_facts,
        verdict,
        max_depth=DEFAULT_MAX_DEPTH,
        explorer_url=runtime.settings.explorer_url,
        index_block=index_block,
        page_url=page_url(request, runtime, lot_id),
        lot_href=lot_paths(request, (node.lot_id for node in trace.nodes)),
        parties=parties,
        directory=directory,
        measured_by=measured_by,
        stored_documents=stored,
        document_href=request.app.url_path_for("download_document", sha256="x")[:-1],
        certificates=certificate_checks(runtime.documents, detail.assays, lot_id),
    )


@router.get("/lots/{lot_id:path}/passport.pdf", name="lot_passport")
def lot_passport(
    lot_id: str,
    request: Request,
    runtime: RuntimeDep,
    lang: Annotated[str | None, Query()] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> Response:
    """The lot's passport: a print-ready PDF of the page's facts, with the QR code of the page."""
    if not well_formed(lot_id):
        return not_found(lot_id)
    page = gather(lot_id, request, runtime, wait_for_verdict=True)  # a certificate states a verdict
    if page is None:
        return not_found(lot_id)
    chosen = i18n.choose_lang(lang, accept_language)
    document = passport_pdf(page, chosen)
    filename = "passport-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in lot_id) + ".pdf"
    return Response(
        document,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Language": document_lang(chosen),
            "Vary": "Accept-Language",
            "Cache-Control": "no-cache",
            **SECURITY_HEADERS,
        },
    )


@router.get("/lots/{lot_id:path}", name="lot_page", response_class=HTMLResponse)
def lot_page(
    lot_id: str,
    request: Request,
    runtime: RuntimeDep,
    lang: Annotated[str | None, Query()] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> HTMLResponse:
    """The page in the language asked (`?lang=ko|en`, else Accept-Language, else English)."""
    if not well_formed(lot_id):
        return not_found(lot_id)
    chosen = i18n.choose_lang(lang, accept_language)
    with PageReading(runtime) as reads:
        cursor = reads.index_cursor()
    # what a page shows besides the index: the names of parties and the directory of places
    key = (
        lot_id,
        cursor,
        chosen,
        str(request.base_url),
        directory_stamp(runtime.settings.data_dir),
        len(runtime.credentials.all()),
    )
    kept = verdicts_of(request).kept(lot_id, cursor)
    html = None if kept is None else pages_of(request).get(key, kept)
    if html is None:
        page = gather(lot_id, request, runtime)
        if page is None:
            return not_found(lot_id)
        html = render_page(page, chosen, request)
        if cursor is not None and page.verdict.state in ("verified", "failed"):
            pages_of(request).put(key, page.verdict, html)
    return HTMLResponse(
        html,
        headers={
            "Content-Language": chosen,
            "Vary": "Accept-Language",
            "Cache-Control": "no-cache",
            **SECURITY_HEADERS,
        },
    )


def render_page(page: LotPage, lang: i18n.Lang, request: Request) -> str:
    other = i18n.other(lang)
    # /v1/lots/{lot_id} takes one path segment: a lot id with "/" has no JSON twin to link to.
    lot_id = page.lot.lot_id
    raw_href = None if "/" in lot_id else str(request.app.url_path_for("lot_detail", lot_id=lot_id))
    return (
        templates()
        .get_template("lot.html")
        .render(
            page=page,
            lang=lang,
            t=i18n.translator(lang),
            other_lang=other,
            other_lang_name=i18n.LANG_NAMES[other],
            switch_href=f"{lot_path(request, page.lot.lot_id)}?lang={other}",
            lang_query=f"?lang={lang}",
            qr_href=request.url_for("lot_qr", lot_id=page.lot.lot_id).path,
            passport_href=request.url_for("lot_passport", lot_id=page.lot.lot_id).path + f"?lang={lang}",
            verify_document_href=str(request.app.url_path_for("verify_uploaded_document")),
            site_href=request.url_for("site_page", site=page.lot.site).path,
            raw_href=raw_href,
            made_colour=MADE_COLOUR,
            refresh_s=CHECKING_REFRESH_S if page.verdict.state == "checking" else None,
        )
    )
