"""What a site manager sees on the site's page for a month with real activity, in chromium with
JavaScript switched off: the mass-flow picture with its bands, each node labelled with the
tonnage the account gives, the reconciliation verdict and the stock count, in English and Korean.

The month is the one the anvil history (tests/page_history.py) was recorded in, plus a stock count
at PIT-A; the figures are checked against GET /v1/sites/PIT-A/mass-balance for the same month.
Screenshots go to test-artifacts/browser/site-<site>-<lang>.png.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext

from api.pages.site_view import tonnes_text
from tests.browser.conftest import LiveServer
from tests.browser.test_lot_page import shoot
from tests.index_chain import SITE
from tests.page_history import PageStack, page_stack

pytestmark = [pytest.mark.browser, pytest.mark.anvil]

TIMEOUT_MS = 15_000
COUNTED_G = 860_000_000
"""A stock count of 860 t at PIT-A: short of the book (874 t) by more than 0.5 %."""
FLOWS = (
    ("opening_g", "Opening stock", "기초 재고"),
    ("extracted_g", "Extracted", "채굴"),
    ("received_g", "Received from elsewhere", "외부에서 반입"),
    ("closing_g", "Closing stock", "기말 재고"),
    ("lost_g", "Process losses", "가공 손실"),
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    with page_stack(tmp_path_factory.mktemp("site-page")) as built:
        now = int(built.chain.w3.eth.get_block("latest")["timestamp"])
        built.chain.stock_count(COUNTED_G, now)
        built.index()
        yield built


@pytest.fixture(scope="module")
def month(stack: PageStack) -> str:
    """The month the history's blocks are in (anvil stamps blocks with the wall clock)."""
    moment = datetime.datetime.fromtimestamp(
        int(stack.chain.w3.eth.get_block("latest")["timestamp"]), datetime.UTC
    )
    return f"{moment.year:04d}-{moment.month:02d}"


@pytest.fixture(scope="module")
def account(server: LiveServer, month: str) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/sites/{SITE}/mass-balance", params={"period": month})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A desk-sized window with scripts disabled: the page must not need them."""
    opened = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    opened.set_default_timeout(TIMEOUT_MS)
    try:
        yield opened
    finally:
        opened.close()


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_a_manager_sees_the_months_mass_flow_verdict_and_stock_count(
    context: BrowserContext,
    server: LiveServer,
    month: str,
    account: dict[str, Any],
    lang: str,
    artifacts: Path,
    record_property: Any,
) -> None:
    assert account["extracted_g"] > 0, "the month has real activity"
    assert account["lost_g"] > 0
    page = context.new_page()
    response = page.goto(f"{server.url}/sites/{SITE}?period={month}&lang={lang}")

    assert response is not None
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == lang
    assert page.locator("script").count() == 0
    assert month in page.locator("h1").inner_text()

    verdict = page.locator("#reconciles")
    expected = {
        ("en", True): "The account reconciles",
        ("en", False): "The account does not reconcile",
        ("ko", True): "장부가 맞습니다",
        ("ko", False): "장부가 맞지 않습니다",
    }[lang, account["reconciles"]]
    assert expected in verdict.locator("h2").inner_text()
    assert verdict.get_attribute("data-reconciles") == ("yes" if account["reconciles"] else "no")

    graph = page.locator("#mass-flow")
    assert graph.is_visible()
    bands = graph.locator("path.band")
    drawn = {
        key: int(bands.nth(i).get_attribute("data-grams") or "")
        for i in range(bands.count())
        if (key := bands.nth(i).get_attribute("data-key"))
    }
    for key, english, korean in FLOWS:
        grams = account[key]
        if grams == 0:
            assert graph.locator(f"g.flow-node[data-key='{key}']").count() == 0, (
                f"{key}: zero flows are left out"
            )
            continue
        assert drawn[key] == grams, key
        node = graph.locator(f"g.flow-node[data-key='{key}']")
        assert node.locator("text.flow-label").text_content() == (english if lang == "en" else korean)
        assert node.locator("text.flow-mass").text_content() == tonnes_text(grams), key
    assert graph.locator("path.band[data-key='lost_g']").get_attribute("data-source") == "processing"

    geometry = graph.evaluate(
        """svg => ({
            scale: svg.getBoundingClientRect().width / svg.viewBox.baseVal.width,
            fonts: [...svg.querySelectorAll('text')].map(t => parseFloat(getComputedStyle(t).fontSize)),
            labels: [...svg.querySelectorAll('text')].map(t => {
                const b = t.getBoundingClientRect(); return [b.x, b.y, b.width, b.height];
            }),
            bands: Object.fromEntries([...svg.querySelectorAll('path.band')].map(
                p => [p.dataset.key, p.getBoundingClientRect().height])),
        })"""
    )
    assert min(geometry["fonts"]) * geometry["scale"] >= 10, "labels readable"
    labels = geometry["labels"]
    for i, (ax, ay, aw, ah) in enumerate(labels):
        for bx, by, bw, bh in labels[i + 1 :]:
            assert not (ax < bx + bw - 1 and bx < ax + aw - 1 and ay < by + bh - 1 and by < ay + ah - 1), (
                "labels overlap"
            )

    checks = page.locator("#stock-checks tr.stock-check")
    assert checks.count() == 1
    assert tonnes_text(COUNTED_G) in checks.inner_text()
    (check,) = account["stock_checks"]
    assert checks.get_attribute("data-within") == ("yes" if check["within_tolerance"] else "no")

    shoot(page, artifacts, f"site-{SITE}-{lang}.png", record_property)
