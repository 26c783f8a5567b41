"""What a buyer sees on a lot's page, in chromium with JavaScript switched off: the origin, the
verdict, the lineage picture, shares that add up to 100 %, the assay, and a working link from each
fact to its transaction; in English and Korean; and a 57-lot lineage that stays readable.

Screenshots go to test-artifacts/browser/ (printed, and recorded as a test property).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

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


def shoot(page: Page, artifacts: Path, name: str, record_property: Any) -> None:
    path = artifacts / name
    page.screenshot(path=str(path), full_page=True)
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
        nodes = graph.locator("a.node")
        assert nodes.count() == TRUCKS + 6 + 2 + 1
        assert graph.locator("g.edge").count() == TRUCKS + 6 + 2

        geometry = graph.evaluate(
            """svg => ({
                scale: svg.getBoundingClientRect().width / svg.viewBox.baseVal.width,
                fonts: [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize)),
                boxes: [...svg.querySelectorAll('a.node rect')].map(r => {
                    const b = r.getBoundingClientRect(); return [b.x, b.y, b.width, b.height];
                }),
                scrolls: svg.parentElement.scrollHeight > svg.parentElement.clientHeight,
            })"""
        )
        smallest = min(geometry["fonts"]) * geometry["scale"]
        assert smallest >= 10, f"labels drawn at {smallest:.1f} px"
        assert geometry["scrolls"], "a big lineage scrolls in its frame instead of shrinking"
        boxes = geometry["boxes"]
        for i, (ax, ay, aw, ah) in enumerate(boxes):
            for bx, by, bw, bh in boxes[i + 1 :]:
                assert not (ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah)

        assert page.locator("#shares-origin tbody tr").count() == TRUCKS
        assert sum(percents(page, "shares-origin")) == 100
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
