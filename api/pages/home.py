"""The front door, `GET /`: find a lot by its id, the latest lots and shipments, the sites with their
current month's account, and the way to the API's documentation and the EPCIS events.

Plain HTML with no script, like the other pages (the same Content-Security-Policy), Korean or
English (`?lang=`, else Accept-Language). The search is a GET form: `/?lot=ID` answers with a
redirect to the lot's page when the index knows the lot, else with this page and a note. "Current
month" is the month of the index's latest block time, never the server's clock: the pages show the
chain's time of facts, and a chain replayed or tested in another year still links a month it has.
"""

from __future__ import annotations

import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import RuntimeDep
from api.pages import i18n
from api.pages.router import SECURITY_HEADERS, PageReading, templates, well_formed

LATEST = 10
EPCIS_EVENTS = "/v1/epcis/events"

router = APIRouter(include_in_schema=False)


def month_of(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m")


@router.get("/", name="home_page", response_class=HTMLResponse)
def home_page(
    request: Request,
    runtime: RuntimeDep,
    lot: Annotated[str | None, Query(max_length=200)] = None,
    lang: Annotated[str | None, Query()] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> Response:
    chosen = i18n.choose_lang(lang, accept_language)
    wanted = (lot or "").strip()
    with PageReading(runtime) as reads:
        if wanted and well_formed(wanted) and reads.custody(wanted) is not None:
            target = request.url_for("lot_page", lot_id=wanted).path + f"?lang={chosen}"
            return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        latest_lots = reads.latest_lots(LATEST)
        shipments = reads.latest_handovers(LATEST)
        sites = reads.sites()
        month = month_of(reads.latest_block_time())
    other = i18n.other(chosen)
    body = (
        templates()
        .get_template("home.html")
        .render(
            lang=chosen,
            t=i18n.translator(chosen),
            other_lang=other,
            switch_href=f"/?lang={other}",
            lang_query=f"?lang={chosen}",
            asked=wanted,
            missing=bool(wanted),
            latest_lots=latest_lots,
            shipments=shipments,
            sites=sites,
            month=month,
            lot_href=lambda lot_id: request.url_for("lot_page", lot_id=lot_id).path,
            site_href=lambda site: request.url_for("site_page", site=site).path,
            docs_href="/docs",
            redoc_href="/redoc",
            epcis_href=EPCIS_EVENTS,
        )
    )
    return HTMLResponse(
        body,
        status_code=404 if wanted else 200,
        headers={
            "Content-Language": chosen,
            "Vary": "Accept-Language",
            "Cache-Control": "no-cache",
            **SECURITY_HEADERS,
        },
    )
