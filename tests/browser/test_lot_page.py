"""What a buyer sees on a lot's page, in chromium with JavaScript switched off: the origin, the
verdict, the lineage picture, shares that add up to 100 %, the assay, and a working link from each
fact to its transaction; in English and Korean; and a 57-lot lineage that stays readable.

Screenshots go to test-artifacts/browser/ (printed, and recorded as a test property).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pypdf
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route

from api.pages.directory import DIRECTORY_FILE
from provenance.index.queries import ReadQueries
from tests.browser.conftest import LiveServer
from tests.page_history import BIG_LOT, PITS, TRUCKS, PageStack

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT_MS = 15_000


def tx_of(receipt: Any) -> tuple[str, int]:
    return "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A phone-sized window with scripts disabled: the page must not need them."""
    opened = browser.new_context(
        java_script_enabled=False, viewport={"width": 412, "height": 915}, locale="en-US"
    )
    opened.set_default_timeout(TIMEOUT_MS)
    try:
        yield opened
    finally:
        opened.close()


def percents(page: Page, table: str) -> list[Decimal]:
    return [
        Decimal(text.strip().rstrip("%"))
        for text in page.locator(f"#{table} tbody td.percent").all_inner_texts()
    ]


def shoot(page: Page, artifacts: Path, name: str, record_property: Any, *, full_page: bool = True) -> None:
    path = artifacts / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    record_property(name, str(path))
    print(f"screenshot: {path}")


def test_a_buyer_sees_origin_verdict_lineage_shares_assay_and_transactions(
    context: BrowserContext, server: LiveServer, stack: PageStack, artifacts: Path, record_property: Any
) -> None:
    page = context.new_page()
    response = page.goto(f"{server.url}/lots/X1")

    assert response is not None
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("script").count() == 0
    assert "X1" in page.locator("h1").inner_text()

    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-verdict") == "verified"
    assert "Verified against the chain" in verdict.inner_text()
    assert "7 lots" in verdict.inner_text()

    assert "PIT-A" in page.locator("#fact-site").inner_text()
    assert page.locator("#fact-mass").inner_text().startswith("1.8 kg")
    origins = page.locator("#shares-origin tbody tr")
    assert origins.count() == 3
    a2 = page.locator("#shares-origin tbody tr[data-key='A2']")
    assert [cell.strip() for cell in a2.locator("td").all_inner_texts()[:5]] == [
        "A2",
        "PIT-A",
        "F1",
        "2023-11-15",
        "50.00%",
    ]
    assert sum(percents(page, "shares-origin")) == 100
    assert sum(percents(page, "shares-site")) == 100
    assert sum(percents(page, "shares-day")) == 100

    graph = page.locator("#lineage-graph")
    assert graph.is_visible()
    assert graph.locator("a.node").count() == 7
    assert graph.locator("g.edge").count() == 6
    assert graph.locator("a.node.root").get_attribute("data-lot") == "X1"

    assay = page.locator("tr.assay")
    assert assay.count() == 1
    assert "8,800 ppm" in assay.inner_text()
    assert "FireAssay" in assay.inner_text()
    assay_tx, assay_block = tx_of(stack.receipts["assay"])
    link = assay.locator("a.tx")
    assert link.get_attribute("href") == f"#tx-{assay_tx}"
    record = page.locator(f"[id='tx-{assay_tx}']")
    assert assay_tx in record.inner_text()
    assert f"{assay_block:,}" in record.inner_text()

    hrefs = page.locator("a.tx").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert len(hrefs) >= 6, "creation, assay, document, custody steps and transformations"
    for href in set(hrefs):
        assert href.startswith("#tx-0x")
        assert page.locator(f"[id='{href[1:]}']").count() == 1, f"{href} leads nowhere"
    link.click()
    assert page.url.endswith(f"#tx-{assay_tx}")

    shoot(page, artifacts, "lot-X1-en.png", record_property)

    page.locator("#lang-switch").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "ko"
    assert "블록체인과 대조하여 검증됨" in page.locator("#verdict").inner_text()
    assert "원산지" in page.locator("#origin h2").inner_text()

    graph.locator("a.node[data-lot='B1']").click()
    page.wait_for_load_state()
    assert page.url.endswith("/lots/B1?lang=ko")
    assert "PIT-B" in page.locator("#fact-site").inner_text()
    assert page.locator("#fact-face").inner_text() == "F1"


def test_a_lineage_of_57_lots_is_drawn_whole_and_stays_readable(
    browser: Browser, server: LiveServer, artifacts: Path, record_property: Any
) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}, locale="ko-KR"
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/lots/{BIG_LOT}")

        assert page.locator("html").get_attribute("lang") == "ko", "Accept-Language picks Korean"
        assert page.locator("#verdict").get_attribute("data-verdict") == "verified"
        graph = page.locator("#lineage-graph")
        groups = page.locator("details.origin-group")
        assert graph.locator("a.node.group").count() == groups.count(), "one box per group of origins"
        assert sum(int(g.get_attribute("data-lots") or 0) for g in groups.all()) == TRUCKS
        assert graph.locator("a.node[data-lot]").count() == 6 + 2 + 1, "every lot made from them"

        geometry = graph.evaluate(
            """svg => ({
                scale: svg.getBoundingClientRect().width / svg.viewBox.baseVal.width,
                fonts: [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize)),
                boxes: [...svg.querySelectorAll('a.node rect')].map(r => {
                    const b = r.getBoundingClientRect(); return [b.x, b.y, b.width, b.height];
                }),
            })"""
        )
        smallest = min(geometry["fonts"]) * geometry["scale"]
        assert smallest >= 10, f"labels drawn at {smallest:.1f} px"
        boxes = geometry["boxes"]
        for i, (ax, ay, aw, ah) in enumerate(boxes):
            for bx, by, bw, bh in boxes[i + 1 :]:
                assert not (ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah)

        groups.first.locator("summary").click()
        assert groups.first.locator("tbody tr").first.is_visible(), "a group opens without script"
        assert (
            sum(
                Decimal(text.strip().rstrip("%"))
                for text in page.locator("details.origin-group summary .percent").all_inner_texts()
            )
            == 100
        )
        assert page.locator("#shares-site tbody tr").count() == len(PITS)
        assert sum(percents(page, "shares-site")) == 100
        assert page.locator("#legend li").count() == len(PITS) + 1

        shoot(page, artifacts, f"lot-{BIG_LOT}-ko.png", record_property)
    finally:
        context.close()


def test_an_unknown_lot_shows_a_bilingual_not_found_page(context: BrowserContext, server: LiveServer) -> None:
    page = context.new_page()
    response = page.goto(f"{server.url}/lots/NO-SUCH-LOT")

    assert response is not None
    assert response.status == 404
    text = page.locator("body").inner_text()
    assert "Lot not found" in text
    assert "로트를 찾을 수 없음" in text
    assert "NO-SUCH-LOT" in text
    assert "Traceback" not in text


def root_in_view(page: Page) -> dict[str, Any]:
    """Where the lot's own box is once the lineage is scrolled to, against the picture's frame and
    the window (the frame itself not scrolled: what a reader sees first)."""
    page.locator("#lineage h2").scroll_into_view_if_needed()
    return page.locator("#lineage-graph").evaluate(
        """svg => {
            const frame = svg.parentElement.getBoundingClientRect();
            const box = svg.querySelector('a.node.root rect').getBoundingClientRect();
            return {
                in_frame: box.left >= frame.left && box.right <= frame.right
                    && box.top >= frame.top && box.bottom <= frame.bottom,
                in_window: box.left >= 0 && box.right <= window.innerWidth
                    && box.top >= 0 && box.bottom <= window.innerHeight,
            };
        }"""
    )


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("lot", ["X1", BIG_LOT])
def test_the_lot_itself_is_in_view_with_its_map_parties_and_passport(
    browser: Browser,
    server: LiveServer,
    stack: PageStack,
    artifacts: Path,
    record_property: Any,
    width: int,
    lot: str,
) -> None:
    directory = stack.runtime.settings.data_dir / DIRECTORY_FILE
    directory.write_text(
        json.dumps(
            {"sites": {pit: {"lat": 37.2 + 0.01 * i, "lon": 129.0 + 0.012 * i} for i, pit in enumerate(PITS)}}
        )
    )
    custodian = ReadQueries(stack.engine).lot(lot)
    assert custodian is not None
    if stack.runtime.credentials.by_name(f"holder-{lot}") is None:
        stack.runtime.credentials.create(f"holder-{lot}", custodian.lot.custodian, "dev:holder")
    context = browser.new_context(
        java_script_enabled=False,
        viewport={"width": width, "height": 844 if width < 500 else 900},
        locale="en-US",
        accept_downloads=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/lots/{lot}")

        seen = root_in_view(page)
        assert seen["in_frame"], "the lot's box is inside the picture's frame, unscrolled"
        assert seen["in_window"], "and in the window"
        shoot(page, artifacts, f"lot-{lot}-{width}.png", record_property, full_page=False)

        assert page.locator("#origin-map g.place").count() >= 1
        assert page.locator("#origin-map").is_visible()
        assert f"holder-{lot}" in page.locator("#fact-custodian").inner_text()
        assert f"holder-{lot}" in page.locator("#parties").inner_text()

        with page.expect_download() as download_info:
            page.locator("#passport-link").click()
        pdf = download_info.value.path()
        text = "\n".join(p.extract_text() for p in pypdf.PdfReader(str(pdf)).pages)
        assert lot in text
        assert f"holder-{lot}" in text
        assert custodian.lot.site in text
        shoot(page, artifacts, f"lot-{lot}-{width}-full.png", record_property)
    finally:
        context.close()
        directory.unlink()


@pytest.mark.parametrize("width", [1280, 390])
def test_the_home_page_finds_a_lot_by_its_id(
    browser: Browser, server: LiveServer, artifacts: Path, record_property: Any, width: int
) -> None:
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": width, "height": 844}, locale="ko-KR"
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        response = page.goto(f"{server.url}/")
        assert response is not None
        assert response.status == 200
        assert page.locator("html").get_attribute("lang") == "ko"
        assert {li.get_attribute("data-site") for li in page.locator("#sites li").all()} >= set(PITS)
        shoot(page, artifacts, f"home-ko-{width}.png", record_property)

        page.locator("#lot-id").fill("X1")
        page.locator("form.search button").click()
        page.wait_for_load_state()
        assert page.url.endswith("/lots/X1?lang=ko")
        assert page.locator("a.node.root").get_attribute("data-lot") == "X1"
    finally:
        context.close()


def test_the_api_docs_work_with_the_network_cut(
    browser: Browser, server: LiveServer, artifacts: Path, record_property: Any
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    refused: list[str] = []

    def only_here(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_here)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/docs")
        operations = page.locator(".opblock")
        operations.first.wait_for()
        assert operations.count() > 10
        assert "/v1/lots/{lot_id}" in page.locator("#swagger-ui").inner_text()
        assert refused == [], f"asked outside: {refused}"
        shoot(page, artifacts, "docs-offline.png", record_property, full_page=False)
    finally:
        context.close()
