"""A site's month for its manager over HTTP: the account, its verdict, the stock counts and the
mass-flow picture, in the language asked for; 4xx pages naming the parameter; the same page while the chain node is
down (the month is mapped to blocks by the times the index stores).

The history is the site-accounts one (tests/e2e/test_site_accounts.py) on eth-tester, placed in
two consecutive months after the chain's head: in the second PIT-A receives 1,000 g (PIT-B's B1,
taken by a merge here), loses 50 g in the merge, corrects -200 g and counts 3,500 g against a
book of 3,750 g (beyond 0.5 %).
"""

from __future__ import annotations

import dataclasses
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.pages.site_view import tonnes_text
from provenance.bootstrap import Runtime, build_runtime
from provenance.config import Settings
from provenance.index.db import make_engine, upgrade
from tests.calendar_months import Month
from tests.e2e.test_site_accounts import OTHER_SITE, build_history
from tests.index_chain import SITE, IndexChain
from tests.nodes import unreachable_web3

pytestmark = pytest.mark.clock

SVG = "{http://www.w3.org/2000/svg}"


@dataclasses.dataclass
class SiteStack:
    runtime: Runtime
    http: TestClient
    first: Month
    second: Month


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteStack]:
    data_dir: Path = tmp_path_factory.mktemp("site-page")
    url = f"sqlite:///{data_dir / 'index.sqlite3'}"
    upgrade(url)
    chain = IndexChain.fresh()
    first, second = build_history(chain)
    settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
    chain.deployment.save(settings.deployment_path)
    runtime = build_runtime(settings, w3=chain.w3)
    engine = make_engine(url)
    try:
        chain.indexer(engine).sync()
        with TestClient(create_app(runtime)) as http:
            yield SiteStack(runtime, http, first, second)
    finally:
        engine.dispose()
        runtime.close()


def page(stack: SiteStack, path: str, **headers: str) -> str:
    response = stack.http.get(path, headers=headers)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return response.text


def mass_flow(html: str) -> ET.Element:
    found = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" id="mass-flow".*?</svg>', html, re.DOTALL)
    assert found is not None, "no mass-flow picture"
    return ET.fromstring(found.group(0))  # noqa: S314 - our own response, not untrusted input


def account_rows(html: str) -> dict[str, tuple[str, str]]:
    """Each account line's mass (in the page's unit) and grams as the table shows them."""
    return {key: (mass, grams) for key, (_, mass, grams) in signed_rows(html).items()}


def signed_rows(html: str) -> dict[str, tuple[str, str, str]]:
    """Each account line's sign column, mass and grams."""
    rows = re.findall(
        r'<tr data-key="(\w+)"[^>]*>\s*<td class="sign"[^>]*>(.*?)</td>\s*<td>.*?</td>\s*'
        r'<td class="num tonnes">(.*?)</td>\s*<td class="num">(.*?)</td>',
        html,
        re.DOTALL,
    )
    return {key: (sign, mass, grams) for key, sign, mass, grams in rows}


def test_a_month_shows_the_account_its_verdict_and_the_stock_count_beyond_tolerance(stack: SiteStack) -> None:
    html = page(stack, f"/sites/{SITE}?period={stack.second.name}")

    assert "<script" not in html
    assert f"Site {SITE}: mass balance, {stack.second.name}" in html
    assert 'data-reconciles="yes"' in html
    assert "The account reconciles" in html
    assert 'data-stock-agrees="no"' in html
    assert "A stock count differs from the book by more than 0.5 %" in html
    rows = account_rows(html)
    assert {key: grams for key, (_, grams) in rows.items()} == {
        "opening_g": "3,000 g",
        "extracted_g": "0 g",
        "received_g": "1,000 g",  # B1, taken from PIT-B by the merge here
        "shipped_g": "0 g",
        "lost_g": "50 g",
        "corrected_g": "200 g",
        "closing_g": "3,750 g",
        "processed_g": "2,000 g",  # A1 + B1: internal, adds no stock
        "produced_g": "1,950 g",
    }
    assert rows["closing_g"][0] == "0.004 t"
    assert rows["lost_g"][0] == "0.000050 t"
    assert rows["corrected_g"][0] == "0.000200 t"
    signs = {key: sign for key, (sign, _, _) in signed_rows(html).items()}
    assert (signs["received_g"], signs["lost_g"], signs["corrected_g"], signs["closing_g"]) == (
        "+",
        "−",
        "−",
        "=",
    )
    assert "-" not in rows["lost_g"][0] + rows["corrected_g"][0], "a sign shown once, in its column"
    assert "Processing at the site (internal: adds no stock)" in html
    [count] = re.findall(r'<tr class="stock-check problem" data-within="no">.*?</tr>', html, re.DOTALL)
    assert "beyond tolerance" in count
    assert "-6.6667 %" in count
    [problem] = re.findall(r'<li class="problem">(.*?)</li>', html)
    assert "beyond 0.5 %" in problem
    assert f'href="/v1/sites/PIT-A/mass-balance?period={stack.second.name}"' in html


def test_the_mass_flow_picture_draws_the_account_with_the_loss_as_its_own_branch(stack: SiteStack) -> None:
    svg = mass_flow(page(stack, f"/sites/{SITE}?period={stack.second.name}"))

    bands = {path.get("data-key"): path for path in svg.iter(f"{SVG}path")}
    assert set(bands) == {
        "opening_g",
        "received_g",
        "closing_g",
        "processing",
        "produced_g",
        "lost_g",
        "corrected_out",
    }
    assert {key: int(band.get("data-grams", "")) for key, band in bands.items()} == {
        "opening_g": 3_000,
        "received_g": 1_000,
        "closing_g": 3_750,
        "processing": 2_000,
        "produced_g": 1_950,
        "lost_g": 50,
        "corrected_out": 200,
    }
    assert bands["lost_g"].get("data-source") == "processing"
    assert (bands["produced_g"].get("data-source"), bands["produced_g"].get("data-target")) == (
        "processing",
        "stock",
    )
    assert "loop" in (bands["produced_g"].get("class") or "")
    into = sum(int(b.get("data-grams", "")) for b in bands.values() if b.get("data-target") == "stock")
    out = sum(int(b.get("data-grams", "")) for b in bands.values() if b.get("data-source") == "stock")
    assert into == out == int(svg.get("data-throughput-g", ""))
    labels = {
        node.get("data-key"): [text.text for text in node.iter(f"{SVG}text")]
        for node in svg.iter(f"{SVG}g")
        if node.get("data-key")
    }
    assert labels["lost_g"] == ["Process losses", tonnes_text(50)]
    assert labels["closing_g"] == ["Closing stock", tonnes_text(3_750)]
    assert labels["stock"] == ["Site stock", tonnes_text(3_000 + 1_000 + 1_950)]


def test_the_page_comes_in_korean_and_links_the_months_around_it(stack: SiteStack) -> None:
    first = stack.first.name
    html = page(stack, f"/sites/{SITE}?period={first}&lang=ko")
    by_header = page(stack, f"/sites/{SITE}?period={first}", **{"Accept-Language": "ko-KR,ko;q=0.9"})

    assert '<html lang="ko">' in html
    assert "장부가 맞습니다" in html
    assert "기말 재고" in html
    assert "모든 재고 실사가 장부와 0.5 % 이내로 일치합니다." in html
    assert '<html lang="ko">' in by_header
    headers = stack.http.get(f"/sites/{SITE}?period={first}&lang=ko").headers
    assert headers["Content-Language"] == "ko"
    assert "script-src" not in headers["Content-Security-Policy"]
    assert f'href="/sites/{SITE}?period={stack.first.shift(-1).name}&amp;lang=ko"' in html
    assert f'href="/sites/{SITE}?period={stack.second.name}&amp;lang=ko"' in html
    assert f'href="/sites/{SITE}?period={first}&amp;lang=en"' in html, "the other language"
    labels = [text.text for text in mass_flow(html).iter(f"{SVG}text")]
    assert "채굴" in labels
    assert "기말 재고" in labels


def test_without_a_period_the_page_is_the_current_month(stack: SiteStack) -> None:
    before = Month.after(int(time.time()), 0).name
    html = page(stack, f"/sites/{OTHER_SITE}")
    after = Month.after(int(time.time()), 0).name  # the month may turn during the request

    shown = re.search(rf"Site {OTHER_SITE}: mass balance, (\d{{4}}-\d{{2}})<", html)
    assert shown is not None
    assert shown.group(1) in (before, after)
    assert 'id="previous-month"' in html
    assert 'id="next-month"' in html


def test_a_tolerance_changes_the_verdict_and_follows_the_month_links(stack: SiteStack) -> None:
    html = page(stack, f"/sites/{SITE}?period={stack.second.name}&tolerance=10%25")

    assert 'data-stock-agrees="yes"' in html
    assert "problem" not in re.findall(r'<section id="reconciles".*?</section>', html, re.DOTALL)[0]
    assert f"period={stack.first.name}&amp;lang=en&amp;tolerance=10%25" in html


@pytest.mark.parametrize(
    ("path", "status", "named"),
    [
        (f"/sites/{SITE}?period=November", 422, "period:"),
        (f"/sites/{SITE}?period=2026-13", 422, "period:"),
        (f"/sites/{SITE}?period=" + "9" * 300, 422, "period:"),
        (f"/sites/{SITE}?tolerance=lots", 422, "tolerance:"),
        (f"/sites/{SITE}?tolerance=150%25", 422, "tolerance:"),
        (f"/sites/{SITE}?unit=lb", 422, "unit:"),
        ("/sites/" + "A" * 40, 422, "site:"),
        ("/sites/bad%20site", 422, "site:"),
        ("/sites/NO-SUCH-SITE", 404, "site:"),
    ],
)
def test_a_bad_site_or_period_is_a_page_in_both_languages_naming_the_parameter(
    stack: SiteStack, path: str, status: int, named: str
) -> None:
    response = stack.http.get(path)

    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    english = re.search(r'<p id="error-en">(.*?)</p>', response.text)
    korean = re.search(r'<p id="error-ko" lang="ko">(.*?)</p>', response.text)
    assert english is not None
    assert korean is not None
    assert english.group(1).startswith(named)
    assert korean.group(1).startswith(named)
    assert "Traceback" not in response.text
    assert "9" * 100 not in response.text


def test_with_the_chain_node_down_the_page_shows_the_same_account(stack: SiteStack) -> None:
    down = dataclasses.replace(stack.runtime, w3=unreachable_web3())
    client = TestClient(create_app(down))
    path = f"/sites/{SITE}?period={stack.second.name}&lang=en"

    response = client.get(path)

    assert response.status_code == 200
    rows = account_rows(response.text)
    assert rows == account_rows(page(stack, path))
    assert rows["closing_g"][1] == "3,750 g"
    assert 'data-stock-agrees="no"' in response.text


def test_the_lot_page_links_its_site_to_the_site_page(stack: SiteStack) -> None:
    html = page(stack, "/lots/M?lang=ko")

    assert f'<a href="/sites/{SITE}?lang=ko"' in html


@pytest.mark.parametrize(("months_after", "closing"), [(40, "3,750 g"), (None, "0 g")])
def test_a_month_without_blocks_still_shows_the_stock_it_opens_and_closes_with(
    stack: SiteStack, months_after: int | None, closing: str
) -> None:
    """40 months after the history, or 1999-01, long before any chain."""
    period = "1999-01" if months_after is None else stack.second.shift(months_after).name
    html = page(stack, f"/sites/{SITE}?period={period}")

    assert "no block of the chain falls in this period" in html
    assert account_rows(html)["closing_g"][1] == closing
    assert account_rows(html)["opening_g"][1] == closing
    assert 'data-reconciles="yes"' in html


def test_no_link_leads_past_the_chains_latest_block(stack: SiteStack) -> None:
    """The second month holds the history's last block: the month after it has not happened on
    the chain (whatever the server's clock says), so it is not offered."""
    first = page(stack, f"/sites/{SITE}?period={stack.first.name}")
    last = page(stack, f"/sites/{SITE}?period={stack.second.name}")
    later = page(stack, f"/sites/{SITE}?period={stack.second.shift(3).name}")

    assert f'id="next-month" href="/sites/{SITE}?period={stack.second.name}' in first
    assert 'id="next-month"' not in last
    assert 'id="next-month"' not in later
    assert 'id="previous-month"' in last


def test_masses_are_in_tonnes_unless_another_unit_is_asked(stack: SiteStack) -> None:
    period = stack.second.name
    in_kg = account_rows(page(stack, f"/sites/{SITE}?period={period}&unit=kg"))
    in_g = page(stack, f"/sites/{SITE}?period={period}&unit=g")

    assert in_kg["closing_g"][0] == "3.750 kg"
    assert in_kg["received_g"][0] == "1.000 kg"
    assert account_rows(in_g)["closing_g"][0] == "3,750 g"
    assert '<th class="num">Grams</th><th class="num">Grams</th>' in in_g
    assert f"period={stack.first.name}&amp;lang=en&amp;unit=g" in in_g, "the links keep the unit"
