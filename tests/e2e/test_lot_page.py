"""The buyer's page over HTTP: HTML in the language asked for, a bilingual 404 for unknown or
malformed ids, the QR code of the page's absolute URL, and a page that still renders (saying it
could not verify) when the chain node is down, or says "failed" when the index lies.

The history (tests/page_history.py) is on anvil: the page verifies a whole lineage per request,
which eth-tester's eth_getLogs makes take seconds.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import re
import socket
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pypdf
import pytest
import segno
from fastapi.testclient import TestClient
from sqlalchemy import text
from web3 import HTTPProvider, Web3

from api.app import create_app
from api.pages.directory import DIRECTORY_FILE
from api.pages.router import QR_BORDER, QR_SCALE
from provenance.index.queries import ReadQueries
from tests.page_history import BIG_LOT, PITS, SLASHED_LOT, TRUCKS, VOID_TRUCK, PageStack, page_stack

pytestmark = pytest.mark.anvil

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    with page_stack(tmp_path_factory.mktemp("page")) as built:
        yield built


@pytest.fixture(scope="module")
def http(stack: PageStack) -> Iterator[TestClient]:
    with TestClient(stack.app) as client:
        yield client


def app_with(stack: PageStack, **changes: Any) -> TestClient:
    """The app around the same index and chain, with some runtime or settings replaced."""
    settings = stack.runtime.settings.model_copy(update=changes.pop("settings", {}))
    return TestClient(create_app(dataclasses.replace(stack.runtime, settings=settings, **changes)))


def svg_root(content: bytes) -> ET.Element:
    """The QR document parsed, which also proves it well-formed XML."""
    return ET.fromstring(content)  # noqa: S314 - our own response, not untrusted input


def verdict_of(html: str) -> str:
    found = re.search(r'data-verdict="(\w+)"', html)
    assert found is not None, html[:500]
    return found.group(1)


def tx_hex(receipt: Any) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex()


@pytest.mark.parametrize(
    ("query", "accept_language", "expected"),
    [
        ("", None, "en"),
        ("", "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
        ("", "fr-FR,fr;q=0.9,en;q=0.5", "en"),
        ("", "en;q=0.3, ko;q=0.8", "ko"),
        ("", "de-DE", "en"),
        ("?lang=en", "ko-KR", "en"),
        ("?lang=ko", "en-US", "ko"),
        ("?lang=xx", "ko", "ko"),
    ],
)
def test_the_page_comes_in_the_language_asked_for_or_that_the_browser_prefers(
    http: TestClient, query: str, accept_language: str | None, expected: str
) -> None:
    headers = {} if accept_language is None else {"Accept-Language": accept_language}
    response = http.get(f"/lots/X1{query}", headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Language"] == expected
    assert "Accept-Language" in response.headers["Vary"]
    assert f'<html lang="{expected}">' in response.text
    other = "ko" if expected == "en" else "en"
    assert f'href="/lots/X1?lang={other}"' in response.text, "a link to the other language"
    heading = "Verified against the chain" if expected == "en" else "블록체인과 대조하여 검증됨"
    assert heading in response.text


def test_the_page_runs_no_script_and_links_every_fact_to_a_listed_transaction(
    http: TestClient, stack: PageStack
) -> None:
    response = http.get("/lots/X1")

    assert "<script" not in response.text
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    links = set(re.findall(r'class="tx" href="#(tx-0x[0-9a-f]{64})"', response.text))
    listed = set(re.findall(r'<tr id="(tx-0x[0-9a-f]{64})"', response.text))
    assert links == listed
    for name in ("assay", "document", "offer", "accept", "process"):
        assert f"tx-{tx_hex(stack.receipts[name])}" in listed, name


@pytest.mark.parametrize(
    "path",
    [
        "/lots/NO-SUCH-LOT",
        "/lots/X1/no/such/lot",
        "/lots/",
        "/lots/" + "A" * 40,
        "/lots/bad%20id",
        "/lots/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/lots/NO-SUCH-LOT/qr.svg",
    ],
)
def test_an_unknown_or_malformed_lot_is_a_404_page_in_both_languages(http: TestClient, path: str) -> None:
    response = http.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Lot not found" in response.text
    assert "로트를 찾을 수 없음" in response.text
    assert "<script>" not in response.text
    assert "Traceback" not in response.text


def test_the_qr_code_is_the_svg_segno_draws_for_the_page_url(http: TestClient, stack: PageStack) -> None:
    response = http.get("/lots/X1/qr.svg")

    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    root = svg_root(response.content)
    assert root.tag == f"{SVG}svg"
    expected = segno.make("http://testserver/lots/X1", micro=False)
    assert not expected.is_micro
    [path] = root.iter(f"{SVG}path")
    [expected_d] = re.findall(r' d="([^"]+)"', expected.svg_inline(scale=QR_SCALE, border=QR_BORDER))
    assert path.get("d") == expected_d
    assert root.findtext(f"{SVG}title") == "http://testserver/lots/X1"

    public = app_with(stack, settings={"public_url": "https://provenance.example/"})
    root = svg_root(public.get("/lots/X1/qr.svg").content)
    assert root.findtext(f"{SVG}title") == "https://provenance.example/lots/X1"
    [path] = root.iter(f"{SVG}path")
    [expected_d] = re.findall(
        r' d="([^"]+)"',
        segno.make("https://provenance.example/lots/X1", micro=False).svg_inline(
            scale=QR_SCALE, border=QR_BORDER
        ),
    )
    assert path.get("d") == expected_d


GS1_SETTINGS = {
    "public_url": "https://provenance.example.net",
    "epcis_gs1_company_prefix": "4012345",
    "epcis_gs1_item_references": "Au-conc=012345,Au-ore=112345",
}
"""GTIN 04012345123456 (GS1's own 9.6.2 example's class) for the concentrate the history makes."""


def test_with_gs1_identifiers_the_qr_code_is_the_lots_digital_link_and_resolves_to_its_page(
    stack: PageStack,
) -> None:
    gs1 = app_with(stack, settings=GS1_SETTINGS)
    link = "https://provenance.example.net/01/04012345123456/10/X1"
    assert svg_root(gs1.get("/lots/X1/qr.svg").content).findtext(f"{SVG}title") == link

    for query in ("", "?linkType=gs1:pip", "?linkType=all"):
        answer = gs1.get(f"/01/04012345123456/10/X1{query}", follow_redirects=False)
        assert answer.status_code == 307
        assert answer.headers["location"] == "/lots/X1"
    # a lot id GS1's lot number cannot hold (slashes): its mapped number resolves by a look-up
    slashed = gs1.get(f"/lots/{SLASHED_LOT}/qr.svg")
    title = svg_root(slashed.content).findtext(f"{SVG}title")
    assert title is not None
    path, _, number = title.removeprefix("https://provenance.example.net").rpartition("/10/")
    assert "=" in number
    assert len(number) <= 20
    answer = gs1.get(f"{path}/10/{number}", follow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["location"] == f"/lots/{SLASHED_LOT}"
    # another GTIN, a lot that is not there: the 404 page
    assert gs1.get("/01/04012345999994/10/X1").status_code == 404
    assert gs1.get("/01/04012345123456/10/NO-SUCH-LOT").status_code == 404


def test_with_the_chain_node_down_the_page_shows_the_facts_and_says_it_could_not_verify(
    stack: PageStack,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    w3 = Web3(HTTPProvider(dead, exception_retry_configuration=None))
    client = app_with(stack, w3=w3)

    response = client.get("/lots/X1?lang=ko")

    assert response.status_code == 200
    assert verdict_of(response.text) == "unverifiable"
    assert "검증할 수 없음" in response.text
    assert "블록체인 노드가 응답하지 않았습니다" in response.text
    assert dead not in response.text, "the reason never shows the node's URL"
    assert 'data-key="A2"' in response.text, "the facts are still shown"
    assert "Could not verify" in client.get("/lots/X1?lang=en").text


def test_when_the_index_disagrees_with_the_chain_the_page_says_verification_failed(stack: PageStack) -> None:
    def set_mass(grams: int) -> None:
        with stack.engine.begin() as connection:
            connection.execute(text("UPDATE lots SET mass_g = :g WHERE lot_id = 'A2'"), {"g": grams})

    set_mass(2_500)
    try:
        html = app_with(stack).get("/lots/X1").text  # a first view: nothing kept yet
    finally:
        set_mass(2_000)

    assert verdict_of(html) == "failed"
    assert "Verification failed" in html
    [row] = re.findall(r"<tr><td><code>A2</code></td>.*?</tr>", html, re.DOTALL)
    assert "massG" in row
    assert "2500" in row
    assert "2000" in row
    assert verdict_of(app_with(stack).get("/lots/X1").text) == "verified"


def test_a_verdict_is_kept_for_its_block_and_checked_again_once_the_index_moves(stack: PageStack) -> None:
    def set_mass(grams: int) -> None:
        with stack.engine.begin() as connection:
            connection.execute(text("UPDATE lots SET mass_g = :g WHERE lot_id = 'A2'"), {"g": grams})

    with app_with(stack) as client:
        verdicts = client.app.state.verdicts  # type: ignore[attr-defined]
        first = client.get("/lots/X1").text
        assert verdict_of(first) == "verified"
        assert verdict_of(client.get("/lots/X1").text) == "verified"
        assert verdicts.verifications == 1, "a second view at the same block takes the kept verdict"

        set_mass(2_500)
        try:
            stack.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            stack.index()  # the index moves on to a new block
            assert verdict_of(client.get("/lots/X1").text) == "verified", (
                "the kept verdict, while it is checked"
            )
            deadline = time.monotonic() + 30
            while verdicts.verifications < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert verdicts.verifications == 2, "checked again in the background"
            assert verdict_of(client.get("/lots/X1").text) == "failed"
        finally:
            set_mass(2_000)


def test_with_a_block_explorer_configured_facts_link_to_it(stack: PageStack) -> None:
    client = app_with(stack, settings={"explorer_url": "https://explorer.example/"})

    html = client.get("/lots/X1").text

    assay = tx_hex(stack.receipts["assay"])
    assert f'class="tx" href="https://explorer.example/tx/{assay}"' in html
    assert f'<tr id="tx-{assay}"' in html, "the page still lists the transaction and its block"


def test_a_lot_id_with_slashes_has_its_page_and_qr_code(http: TestClient) -> None:
    page = http.get(f"/lots/{SLASHED_LOT}")
    qr = http.get(f"/lots/{SLASHED_LOT}/qr.svg")

    assert page.status_code == 200
    assert "F2" in page.text
    assert qr.status_code == 200
    assert svg_root(qr.content).findtext(f"{SVG}title") == f"http://testserver/lots/{SLASHED_LOT}"


def section(html: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">(.*?)</section>', html, re.DOTALL)
    assert found is not None, f"no section {name}"
    return found.group(1)


def group_of(html: str, anchor: str) -> str:
    found = re.search(rf'<details class="origin-group" id="{anchor}".*?</details>', html, re.DOTALL)
    assert found is not None, f"no group {anchor}"
    return found.group(0)


def group_node_of(html: str, anchor: str) -> str:
    found = re.search(
        rf'<a href="#{anchor}" class="node[^"]*" data-group="{anchor}">.*?</a>', html, re.DOTALL
    )
    assert found is not None, f"no group box {anchor}"
    return found.group(0)


def node_of(html: str, lot_id: str) -> str:
    found = re.search(rf'<a [^>]*class="node[^"]*" data-lot="{re.escape(lot_id)}">.*?</a>', html, re.DOTALL)
    assert found is not None, f"no node {lot_id}"
    return found.group(0)


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ("Corrections", "Incorrect data: the mass was corrected", "Remaining after")),
        ("ko", ("정정", "잘못된 데이터: 중량 정정", "정정 후 잔량")),
    ],
)
def test_a_corrected_lot_shows_its_corrections_linked_to_their_transaction(
    http: TestClient, stack: PageStack, lang: str, words: tuple[str, ...]
) -> None:
    html = http.get(f"/lots/S2?lang={lang}").text

    corrections = section(html, "corrections")
    heading, reason, remaining_after = words
    assert f"<h2>{heading}</h2>" in corrections
    [row] = re.findall(r'<tr class="correction[^"]*".*?</tr>', corrections, re.DOTALL)
    assert reason in row
    assert 'data-reason="incorrect_data"' in row
    assert remaining_after in corrections
    assert '<td class="num">-100 g</td><td class="num">500 g</td>' in row
    assert stack.chain.processor in row
    tx = tx_hex(stack.receipts["correct"])
    assert f'class="tx" href="#tx-{tx}"' in row
    assert f'<tr id="tx-{tx}" class="chain-record">' in html, "the transaction is among the chain records"
    assert 'id="corrected-warning"' in section(html, "origin")
    assert 'class="badge corrected"' in node_of(html, "S2"), "the lot is marked in its lineage picture"
    assert "badge" not in node_of(html, "A1")


def test_a_lot_with_no_correction_says_none_and_its_lineage_has_no_marks(http: TestClient) -> None:
    html = http.get("/lots/X1").text

    assert "None recorded." in section(html, "corrections")
    assert "corrected-warning" not in html
    assert 'class="badge' not in html
    assert 'id="legend-marks"' not in html


def test_a_lineage_marks_the_lot_that_did_not_occur_and_keeps_it(http: TestClient, stack: PageStack) -> None:
    en = http.get(f"/lots/{BIG_LOT}").text
    ko = http.get(f"/lots/{BIG_LOT}?lang=ko").text

    assert verdict_of(en) == "verified"
    # 48 truck lots are drawn as groups: the group holding the voided truck carries its mark
    [anchor] = [
        found
        for found in re.findall(r'<details class="origin-group" id="([^"]+)"', en)
        if f'data-key="{VOID_TRUCK}"' in group_of(en, found)
    ]
    truck = group_node_of(en, anchor)
    assert "did-not-occur" in truck.split(">", 1)[0]
    assert 'class="badge did-not-occur"' in truck
    assert "declared not to have occurred" in truck, "its tooltip says why"
    assert f'data-key="{VOID_TRUCK}"' in section(en, "shares"), "still an origin, its share as recorded"
    listed = re.findall(r'<li class="did-not-occur" data-lot="([^"]+)">', en)
    assert listed == [VOID_TRUCK]
    assert "declared not to have occurred" in en
    assert "발생하지 않은 것으로 선언됨" in ko
    assert "계보 중 정정된 로트" in ko

    own = http.get(f"/lots/{VOID_TRUCK}?lang=ko").text
    assert "이 로트는 발생하지 않은 것으로 선언되었습니다" in section(own, "origin")
    assert '<dd id="fact-status">무효</dd>' in own
    [row] = re.findall(r'<tr class="correction[^"]*".*?</tr>', section(own, "corrections"), re.DOTALL)
    assert "발생하지 않음: 존재하지 않은 로트" in row
    assert f'href="#tx-{tx_hex(stack.receipts["void"])}"' in row


# ---------------------------------------------------------------------- passport, parties, map, home, docs

BUYER_NAME = "buyer-busan-port"
BUYER_ORGANISATION = "Busan Smelting Co."
PLACES = {
    "PIT-A": {
        "name": "Pit A",
        "lat": 37.2042,
        "lon": 129.0131,
        "faces": {"F1": {"lat": 37.2051, "lon": 129.0118}},
    },
    "PIT-B": {"lat": 37.2210, "lon": 129.0302},
}
"""PIT-D has no place: it is listed beside the map, not drawn."""


@pytest.fixture(scope="module")
def named(stack: PageStack) -> dict[str, str]:
    """A credential names X1's custodian, the directory gives its organisation and places of two pits."""
    custodian = ReadQueries(stack.engine).lot("X1")
    assert custodian is not None
    address = custodian.lot.custodian
    stack.runtime.credentials.create(BUYER_NAME, address, "dev:" + BUYER_NAME)
    (stack.runtime.settings.data_dir / DIRECTORY_FILE).write_text(
        json.dumps({"sites": PLACES, "organisations": {address: BUYER_ORGANISATION}}), encoding="utf-8"
    )
    return {"custodian": address}


def pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_the_passport_is_a_pdf_holding_the_lots_facts(http: TestClient, named: dict[str, str]) -> None:
    facts = http.get("/v1/lots/X1").json()
    check = http.get("/v1/lots/X1/verify").json()

    response = http.get("/lots/X1/passport.pdf")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    assert "X1" in text
    for site in {row["key"] for row in http.get("/v1/lots/X1/provenance").json()["by_site"]}:
        assert site in text
    assert f"{facts['mass_g']:,} g" in text
    assert str(check["chain_id"]) in text
    assert check["registry"] in text
    assert f"{check['block_number']:,}" in text, "the block it was checked at"
    assert "Verified against the chain" in text
    assert BUYER_NAME in text
    assert BUYER_ORGANISATION in text
    assert f"{PLACES['PIT-A']['faces']['F1']['lat']:.5f}" in text, "the face's place"  # type: ignore[index]


def test_the_korean_passport_holds_korean_words(http: TestClient) -> None:
    response = http.get("/lots/X1/passport.pdf?lang=ko")

    assert response.headers["Content-Language"] == "ko", "Nanum is installed by make browser"
    text = pdf_text(response.content)
    assert "블록체인과 대조하여 검증됨" in text
    assert "X1" in text


@pytest.mark.parametrize("path", ["/lots/NO-SUCH-LOT/passport.pdf", "/lots/bad%20id/passport.pdf"])
def test_a_passport_of_an_unknown_lot_is_a_404_page(http: TestClient, path: str) -> None:
    response = http.get(path)

    assert response.status_code == 404
    assert "Lot not found" in response.text
    assert "Traceback" not in response.text


def test_the_page_links_its_passport_and_names_the_parties(http: TestClient, named: dict[str, str]) -> None:
    html = http.get("/lots/X1").text
    lab = http.get("/v1/lots/X1").json()["assays"][0]["lab"]

    assert 'href="/lots/X1/passport.pdf?lang=en"' in html
    parties = section(html, "parties")
    row = re.search(
        rf'<tr class="party-row party-account" data-address="{named["custodian"]}".*?</tr>',
        parties,
        re.DOTALL,
    )
    assert row is not None
    assert BUYER_NAME in row.group(0)
    assert BUYER_ORGANISATION in row.group(0)
    unknown = re.search(
        rf'<tr class="party-row party-unknown" data-address="{lab}".*?</tr>', parties, re.DOTALL
    )
    assert unknown is not None, "a lab the system has no name for"
    assert "unknown account" in unknown.group(0)
    assert BUYER_NAME in section(html, "custody")


def test_the_documents_say_how_to_get_them_and_link_the_check_of_a_file(http: TestClient) -> None:
    html = section(http.get("/lots/X1").text, "documents")

    assert 'action="/v1/verify/document"' in html
    assert 'enctype="multipart/form-data"' in html
    assert "needs an API token" in html
    assert re.search(r'<tr class="document" data-stored="(yes|no)"', html)


def test_the_map_draws_the_origin_faces_with_a_place_and_lists_the_others(
    http: TestClient, named: dict[str, str]
) -> None:
    html = http.get(f"/lots/{BIG_LOT}").text
    shares = http.get(f"/v1/lots/{BIG_LOT}/provenance").json()

    drawn = re.findall(
        r'<g class="place" data-site="([^"]+)" data-face="([^"]*)" data-percent="([^"]+)">', html
    )
    assert {site for site, _, _ in drawn} == {"PIT-A", "PIT-B"}, "PIT-D has no place"
    rows = re.findall(
        r'<tr data-site="([^"]+)" data-face="([^"]*)">.*?class="num percent">([\d.]+)%', section(html, "map")
    )
    assert {site for site, _, _ in rows} == set(PITS)
    assert sum(Decimal(percent) for _, _, percent in rows) == 100
    assert "not recorded" in section(html, "map")
    assert len(shares["by_origin_lot"]) == TRUCKS


def test_a_big_lineage_draws_origin_groups_and_the_lot_first(http: TestClient) -> None:
    html = http.get(f"/lots/{BIG_LOT}").text

    groups = re.findall(r'<details class="origin-group" id="[^"]+" data-lots="(\d+)">', html)
    assert sum(int(count) for count in groups) == TRUCKS
    assert len(groups) < TRUCKS
    boxes = {
        lot: (float(x), float(y))
        for lot, x, y in re.findall(
            r'data-lot="([^"]+)">\s*<title>.*?</title>\s*<rect x="([\d.]+)" y="([\d.]+)"', html, re.DOTALL
        )
    }
    x, y = boxes[BIG_LOT]
    assert x == min(bx for bx, _ in boxes.values()), "the lot is the leftmost column"
    assert y == min(by for _, by in boxes.values()), "and at the top"


def test_the_home_page_finds_a_lot_and_lists_lots_shipments_and_sites(
    http: TestClient, stack: PageStack
) -> None:
    home = http.get("/")
    found = http.get("/", params={"lot": "X1"}, follow_redirects=False)
    missing = http.get("/", params={"lot": "NO-SUCH-LOT"})
    korean = http.get("/", headers={"Accept-Language": "ko-KR"})

    assert home.status_code == 200
    assert "script-src" not in home.headers["Content-Security-Policy"]
    assert "<script" not in home.text
    assert '<form class="search" method="get" action="/"' in home.text
    assert found.status_code == 303
    assert found.headers["location"] == "/lots/X1?lang=en"
    assert missing.status_code == 404
    assert "NO-SUCH-LOT" in missing.text
    assert korean.headers["Content-Language"] == "ko"
    assert "로트 찾기" in korean.text
    latest = http.get("/v1/lots", params={"limit": 500}).json()["lots"]
    newest_block = max(lot["created"]["block_number"] for lot in latest)
    listed = re.findall(r'<tr data-lot="([^"]+)">', section(home.text, "latest-lots"))
    assert listed
    assert any(
        lot["lot_id"] == listed[0] and lot["created"]["block_number"] == newest_block for lot in latest
    )
    assert 'data-lot="X1"' in section(home.text, "shipments"), "X1 was handed over"
    with stack.engine.connect() as connection:
        latest_time = connection.execute(text("SELECT max(timestamp) FROM block_times")).scalar_one()
    month = datetime.datetime.fromtimestamp(latest_time, datetime.UTC).strftime("%Y-%m")
    for site in PITS:
        assert f'href="/sites/{site}?period={month}&amp;lang=en"' in home.text
    assert 'href="/docs"' in home.text
    assert 'href="/v1/epcis/events"' in home.text


def test_the_api_docs_load_their_assets_from_this_server(http: TestClient) -> None:
    docs = http.get("/docs")
    redoc = http.get("/redoc")

    assert docs.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', docs.text + redoc.text)
    assert assets
    for asset in assets:
        assert asset.startswith("/docs-assets/"), asset
        fetched = http.get(asset)
        assert fetched.status_code == 200
        assert len(fetched.content) > 10_000
    assert "cdn." not in docs.text
    assert "fonts.googleapis" not in redoc.text
    assert http.get("/docs-assets/..%2Fcore.py").status_code == 404
    assert http.get("/docs-assets/core.py").status_code == 404


def test_a_long_lineage_is_checked_in_the_background_and_the_page_reloads_itself(
    stack: PageStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # X1's lineage holds more (the package exports its APIRouter under the module's name)
    monkeypatch.setattr(sys.modules["api.pages.router"], "SYNC_VERIFY_MAX_LOTS", 3)
    with app_with(stack) as client:
        verdicts = client.app.state.verdicts  # type: ignore[attr-defined]
        first = client.get("/lots/X1").text

        assert verdict_of(first) == "checking"
        assert '<meta http-equiv="refresh" content="5">' in first
        assert 'data-key="A2"' in first, "the facts are there at once"
        deadline = time.monotonic() + 30
        while verdicts.verifications < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        again = client.get("/lots/X1").text
        assert verdict_of(again) == "verified"
        assert 'http-equiv="refresh"' not in again
        passport = client.get("/lots/X1/passport.pdf")  # a certificate always states a verdict
        assert passport.status_code == 200
