"""A site's month for its manager, `GET /sites/{site}?period=2026-11`: the mass-balance account, its
verdict, the stock counts against the book, and the month's mass flow drawn as inline SVG.

Same rules as the lot page: plain HTML, no script (the same Content-Security-Policy), Korean or
English (`?lang=`, else Accept-Language). The account is `ReadQueries.site_account`, the period
mapped to blocks exactly as `GET /v1/sites/{site}/mass-balance` does (by the block timestamps the
index stores, `ReadQueries.first_block_at_or_after`). Without `period`, the current calendar month
in UTC. Masses in tonnes unless `?unit=kg|g`. The "next month" link is left out when that month
starts after the index's latest block time (the chain's "now", never the server's clock). The page
never asks the node, so it answers while the node is down.

Errors are pages, never tracebacks: a malformed site, period or tolerance is a 422 page naming
the parameter, in both languages; a site with no record a 404 page.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import RuntimeDep
from api.pages import i18n
from api.pages.router import SECURITY_HEADERS, PageReading, templates
from api.pages.site_view import SitePage, build_site_page
from provenance.domain.mass_units import MassUnit, mass_text
from provenance.domain.site_balance import DEFAULT_TOLERANCE_PPM, Period, parse_tolerance
from provenance.domain.values import encode_label
from provenance.errors import DomainError
from provenance.services.site_accounts import AccountSpan, site_account

log = logging.getLogger(__name__)

MAX_PARAMETER = 40
"""Longer `period`/`tolerance` values are refused before parsing (and never echoed whole)."""

router = APIRouter(include_in_schema=False)


def _shown(text: str) -> str:
    return text if len(text) <= MAX_PARAMETER else text[:MAX_PARAMETER] + "…"


def error_page(status: int, title: str, lines: tuple[str, str], value: str) -> HTMLResponse:
    """A page in both languages at once: it may be all a mistyped link ever shows."""
    body = (
        templates()
        .get_template("site_error.html")
        .render(title=title, english=lines[0], korean=lines[1], value=_shown(value), status=status)
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def bad_parameter(error: DomainError, value: str) -> HTMLResponse:
    english = f"{error.field}: {error.message}"
    korean = i18n.BAD_REQUEST_HELP.get(error.field, f"{error.field}: 값이 올바르지 않습니다.")
    return error_page(422, i18n.BAD_REQUEST_TITLE, (english, korean), value)


def parse_request(site: str, period: str | None, tolerance: str | None) -> tuple[Period, int]:
    """The period and tolerance asked for; a DomainError naming the first parameter that is wrong."""
    try:
        encode_label(site, "site")
    except DomainError as error:
        raise DomainError("site", error.message) from None
    if period is None:
        span = Period.current_month(int(time.time()))
    elif len(period) > MAX_PARAMETER:
        raise DomainError("period", "too long to be a period like 2026-11")
    else:
        span = Period.parse(period)
    if tolerance is None:
        return span, DEFAULT_TOLERANCE_PPM
    if len(tolerance) > MAX_PARAMETER:
        raise DomainError("tolerance", "too long to be a percentage like 0.5%")
    return span, parse_tolerance(tolerance)


@router.get("/sites/{site:path}", name="site_page", response_class=HTMLResponse)
def site_page(
    site: str,
    request: Request,
    runtime: RuntimeDep,
    period: Annotated[str | None, Query()] = None,
    tolerance: Annotated[str | None, Query()] = None,
    unit: Annotated[str | None, Query()] = None,
    lang: Annotated[str | None, Query()] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> HTMLResponse:
    """The page in the language asked (`?lang=ko|en`, else Accept-Language, else English)."""
    try:
        span, tolerance_ppm = parse_request(site, period, tolerance)
        mass_unit = MassUnit.T if unit is None else MassUnit.parse(unit[:MAX_PARAMETER])
    except DomainError as error:
        asked = {"site": site, "period": period, "tolerance": tolerance, "unit": unit}
        return bad_parameter(error, asked.get(error.field) or "")
    with PageReading(runtime) as reads:
        if not reads.site_timeline(site, None, 1):
            return error_page(
                404,
                i18n.SITE_NOT_FOUND_TITLE,
                (
                    i18n.SITE_NOT_FOUND_TEXT[0].format(site=site),
                    i18n.SITE_NOT_FOUND_TEXT[1].format(site=site),
                ),
                site,
            )
        index_block = reads.block_seen
        deployed = runtime.deployment.block_number
        head = deployed if index_block is None else index_block
        account = site_account(
            reads, site, AccountSpan(span), deployed=deployed, head=head, tolerance_ppm=tolerance_ppm
        )
        latest_time = reads.latest_block_time()
    page = build_site_page(account, span, index_block, latest_time, mass_unit)
    chosen = i18n.choose_lang(lang, accept_language)
    return HTMLResponse(
        render_site_page(page, chosen, request, tolerance, unit),
        headers={
            "Content-Language": chosen,
            "Vary": "Accept-Language",
            "Cache-Control": "no-cache",
            **SECURITY_HEADERS,
        },
    )


def render_site_page(
    page: SitePage, lang: i18n.Lang, request: Request, tolerance: str | None, unit: str | None = None
) -> str:
    account = page.account
    path = request.url_for("site_page", site=account.site).path
    other = i18n.other(lang)

    def href(period: str, to_lang: i18n.Lang) -> str:
        asked = {"period": period, "lang": to_lang}
        if tolerance is not None:
            asked["tolerance"] = tolerance
        if unit is not None:
            asked["unit"] = str(page.unit)
        return f"{path}?{urlencode(asked)}"

    raw_href = None
    if "/" not in account.site:  # /v1/sites/{site}/... takes one path segment
        raw_href = str(request.app.url_path_for("mass_balance", site=account.site))
        raw_href += "?" + urlencode({"period": account.period})
    return (
        templates()
        .get_template("site.html")
        .render(
            page=page,
            account=account,
            layout=page.layout,
            lang=lang,
            t=i18n.translator(lang),
            other_lang=other,
            switch_href=href(account.period, other),
            previous_href=href(page.previous_month, lang),
            next_href=None if page.next_month is None else href(page.next_month, lang),
            raw_href=raw_href,
            tonnes=lambda grams: mass_text(grams, page.unit),
            unit=page.unit,
        )
    )
