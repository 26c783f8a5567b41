"""Site mass-balance accounts by calendar period, over HTTP and from `provenance report`, on SQLite
and PostgreSQL: a history on eth-tester whose blocks are placed in two consecutive months after
the chain's own head (the first is the month after next; eth-tester's clock only moves forward, and
no test may depend on today's date), indexed, then read back.

    first month, day 1   A1 1000 g, A2 2000 g at PIT-A; B1 3000 g at PIT-B
                 day 20  stock count at PIT-A: 2990 g (book 3000 g: -0.33 %, within 0.5 %)
    second month, day 5  merge A1 1000 + B1 1000 at PIT-A -> M 1950 (50 lost, 25 charged to each input)
                         A2 corrected by -200 g (incorrect data); a correction of -5000 g is refused
                 day 6   stock count at PIT-A: 3500 g (book 1800 + 1950 = 3750 g: -6.67 %)
    third month, day 3   A2 (1800 g) to the processor, crushed into C1 1000 g + C2 790 g (10 lost)
                 day 4   M (1950 g) sold: the buyer (no role) accepts it
                 day 5   the admin corrects M by -50 g while the buyer holds it
                 day 6   C1 sold, then the buyer hands it back and the registrar accepts it
                 day 7   C2 corrected by +10 g by the processor

The account's figures (site_balance): the site is its registrar and processor accounts; processing
at the site is internal (A1 + B1 -> M adds B1's 1000 g, received from PIT-B, and loses 50 g);
custody accepted by the buyer is shipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from provenance.bootstrap import build_runtime
from provenance.cli.main import app as cli
from provenance.config import Settings
from provenance.domain.values import CorrectionReason, TransformKind, encode_label
from provenance.errors import ContractRevert
from provenance.index.db import make_engine, upgrade
from tests.calendar_months import Month
from tests.dbs import empty_database
from tests.index_chain import SITE, IndexChain, record

pytestmark = pytest.mark.clock

OTHER_SITE = "PIT-B"


@dataclass
class AccountStack:
    chain: IndexChain
    http: TestClient
    url: str
    first: Month
    second: Month
    third: Month

    def account(self, site: str = SITE, **params: Any) -> dict[str, Any]:
        response = self.http.get(f"/v1/sites/{site}/mass-balance", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["expected_closing_g"] == (
            body["opening_g"]
            + body["extracted_g"]
            + body["received_g"]
            - body["shipped_g"]
            - body["lost_g"]
            + body["corrected_g"]
        )
        assert body["processed_g"] == body["produced_g"] + body["lost_g"]
        return body


def build_history(c: IndexChain) -> tuple[Month, Month]:
    """Builds the history; returns its two months."""
    first = Month.after(int(c.w3.eth.get_block("latest")["timestamp"]), 2)
    second = first.shift(1)
    c.client.grant_role(c.admin, c.client.registrar_role(OTHER_SITE), c.registrar)
    c.tester.time_travel(first.at(1))
    c.register(c.lot("A1", 1_000), c.lot("A2", 2_000))
    c.register(replace(c.lot("B1", 3_000), site=OTHER_SITE))
    c.tester.time_travel(first.at(20))
    c.stock_count(2_990, first.at(20))
    c.tester.time_travel(second.at(5))
    c.hand_to_processor("A1", "B1")
    c.transform(TransformKind.MERGE, [("A1", 1_000), ("B1", 1_000)], [("M", 1_950)], 50)
    c.correct(c.registrar, "A2", CorrectionReason.INCORRECT_DATA, -200)
    with pytest.raises(ContractRevert) as refused:
        c.correct(c.registrar, "A2", CorrectionReason.INCORRECT_DATA, -5_000)
    assert refused.value.name == "InvalidCorrection"
    c.tester.time_travel(second.at(6))
    c.client.transact(c.registrar, "recordStockCount", encode_label(SITE), 3_500, second.at(6), record("jan"))
    return first, second


def build_third_month(c: IndexChain, second: Month) -> Month:
    """Processing into intermediate products, a sale, a correction while sold, a return."""
    third = second.shift(1)
    c.tester.time_travel(third.at(3))
    c.hand_to_processor("A2")
    c.transform(TransformKind.PROCESS, [("A2", 1_800)], [("C1", 1_000), ("C2", 790)], 10)
    c.tester.time_travel(third.at(4))
    c.client.hand_over(c.processor, ["M"], c.buyer)
    c.client.accept_handover(c.buyer, ["M"])
    c.tester.time_travel(third.at(5))
    c.correct(c.admin, "M", CorrectionReason.INCORRECT_DATA, -50)
    c.tester.time_travel(third.at(6))
    c.client.hand_over(c.processor, ["C1"], c.buyer)
    c.client.accept_handover(c.buyer, ["C1"])
    c.client.hand_over(c.buyer, ["C1"], c.registrar)
    c.client.accept_handover(c.registrar, ["C1"])
    c.tester.time_travel(third.at(7))
    c.correct(c.processor, "C2", CorrectionReason.INCORRECT_DATA, 10)
    return third


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountStack]:
    data_dir: Path = tmp_path_factory.mktemp("accounts")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        chain = IndexChain.fresh()
        first, second = build_history(chain)
        third = build_third_month(chain, second)
        settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
        chain.deployment.save(settings.deployment_path)
        runtime = build_runtime(settings, w3=chain.w3)
        engine = make_engine(url)
        try:
            chain.indexer(engine).sync()
            yield AccountStack(chain, TestClient(create_app(runtime)), url, first, second, third)
        finally:
            engine.dispose()
            runtime.close()


def test_a_month_opens_with_the_last_months_closing_and_reconciles(accounts: AccountStack) -> None:
    first_month = accounts.account(period=accounts.first.name)
    second_month = accounts.account(period=accounts.second.name)

    assert (first_month["opening_g"], first_month["extracted_g"], first_month["closing_g"]) == (
        0,
        3_000,
        3_000,
    )
    assert first_month["reconciles"]
    assert first_month["problems"] == []
    assert first_month["starts_at"] == accounts.first.at(1, 0)
    assert first_month["ends_at"] == accounts.second.at(1, 0)
    assert second_month["opening_g"] == first_month["closing_g"]
    assert second_month["extracted_g"] == 0
    assert second_month["received_g"] == 1_000  # B1's 1000 g, taken from PIT-B by the merge here
    assert (second_month["processed_g"], second_month["produced_g"]) == (1_000 + 1_000, 1_950)
    assert second_month["lost_g"] == 50  # the merge's whole loss, declared here
    assert second_month["shipped_g"] == 0  # the processor is the site's own
    assert second_month["corrected_g"] == -200
    assert second_month["closing_g"] == 1_800 + 1_950
    assert second_month["reconciles"] is True
    assert next(line["key"] for line in second_month["lines"]) == "opening_g"

    other = accounts.account(OTHER_SITE, period=accounts.second.name)
    assert (other["opening_g"], other["shipped_g"], other["lost_g"], other["closing_g"]) == (
        3_000,
        1_000,  # B1's 1000 g went into PIT-A's merge
        0,
        2_000,
    )
    assert other["transferred_g"] == 1_000
    assert other["received_g"] == 0
    assert other["reconciles"]


def test_weeks_days_and_the_whole_history_give_the_same_movements(accounts: AccountStack) -> None:
    week = accounts.account(period=accounts.second.week_of(5))
    day = accounts.account(period=accounts.second.day(5))
    everything = accounts.account()

    for account in (week, day):
        assert (account["received_g"], account["lost_g"], account["corrected_g"]) == (1_000, 50, -200)
        assert account["reconciles"]
    assert accounts.account(period=accounts.second.day(4))["processed_g"] == 0
    assert everything["opening_g"] == 0
    assert everything["closing_g"] == 1_000 + 800  # C1 (back) and C2 (790 + 10)
    assert everything["reconciles"]
    later = accounts.second.shift(40).name
    assert accounts.account(period=later)["closing_g"] == 1_800  # after the last block: nothing moves


def test_stock_counts_are_compared_with_the_book_within_the_tolerance(accounts: AccountStack) -> None:
    (first_month,) = accounts.account(period=accounts.first.name)["stock_checks"]
    assert (first_month["counted_g"], first_month["book_g"], first_month["variance_g"]) == (2_990, 3_000, -10)
    assert first_month["variance_ppm"] == -3_333
    assert first_month["within_tolerance"]

    second_month = accounts.account(period=accounts.second.name)
    (count,) = second_month["stock_checks"]
    assert (count["counted_g"], count["book_g"], count["variance_g"]) == (3_500, 3_750, -250)
    assert count["within_tolerance"] is False
    assert second_month["stock_agrees"] is False
    assert any("beyond 0.5 %" in problem for problem in second_month["problems"])
    assert second_month["reconciles"] is True  # the book itself adds up; the count disagrees with it

    lenient = accounts.account(period=accounts.second.name, tolerance="10%")
    assert lenient["stock_agrees"]
    assert lenient["problems"] == []


def test_bad_periods_and_tolerances_are_422_naming_the_field(accounts: AccountStack) -> None:
    for params, field in (
        ({"period": "November"}, "period"),
        ({"period": "2026-13"}, "period"),
        ({"period": "2026-W60"}, "period"),
        ({"period": "2026-11", "from": "2026-11-01"}, "period"),
        ({"tolerance": "lots"}, "tolerance"),
        ({"tolerance": "150%"}, "tolerance"),
    ):
        response = accounts.http.get(f"/v1/sites/{SITE}/mass-balance", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["field"] == field, params


def test_the_report_reads_the_index_as_a_table_or_csv(
    accounts: AccountStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("provenance.bootstrap.connect", lambda url: accounts.chain.w3)
    runner = CliRunner()
    base = ["report", "mass-balance", "--site", SITE, "--database", accounts.url]

    first_month = runner.invoke(cli, [*base, "--period", accounts.first.name])
    assert first_month.exit_code == 0, first_month.output
    assert "Closing stock" in first_month.output
    assert "0.003 t" in first_month.output  # tonnes by default: A1 + A2, 3000 g
    assert "reconciles: yes" in first_month.output
    in_grams = runner.invoke(cli, [*base, "--period", accounts.first.name, "--unit", "g"])
    assert "3,000 g" in in_grams.output
    in_kilograms = runner.invoke(cli, [*base, "--period", accounts.first.name, "--unit", "kg"])
    assert "3.000 kg" in in_kilograms.output
    bad_unit = runner.invoke(cli, [*base, "--unit", "lb"])
    assert bad_unit.exit_code == 2
    assert "--unit" in bad_unit.output

    third = runner.invoke(cli, [*base, "--period", accounts.third.name, "--unit", "g"])
    shipped = next(line for line in third.output.splitlines() if "Shipped" in line)
    assert shipped.split()[0] == "-"
    assert shipped.rstrip().endswith(" 2,950 g")
    assert "--" not in third.output
    assert "- -" not in third.output
    assert "(internal: adds no stock)" in third.output

    second_month = runner.invoke(cli, [*base, "--period", accounts.second.name, "--format", "csv"])
    assert second_month.exit_code == 1, second_month.output  # the stock count is beyond 0.5 %
    rows = {row.split(",")[4]: row.split(",") for row in second_month.output.splitlines()[1:]}
    assert rows["received_g"][6] == "1000"
    assert rows["closing_g"][6] == "3750"
    assert rows["reconciles"][7] == "true"

    lenient = runner.invoke(cli, [*base, "--period", accounts.second.name, "--tolerance", "10"])
    assert lenient.exit_code == 0, lenient.output

    whole = runner.invoke(cli, [*base, "--from-block", "0", "--format", "csv"])
    assert whole.exit_code == 1
    assert ",1800," in whole.output

    bad = runner.invoke(cli, [*base, "--period", "someday"])
    assert bad.exit_code == 2
    assert "--period" in bad.output

    unknown = runner.invoke(cli, ["report", "mass-balance", "--site", "NOPE", "--database", accounts.url])
    assert unknown.exit_code == 2, unknown.output
    assert "--site: no site NOPE" in unknown.output
    assert "reconciles" not in unknown.output


def test_intermediate_products_add_no_stock(accounts: AccountStack) -> None:
    third = accounts.account(period=accounts.third.name)

    # A2 (1800 g) crushed into C1 1000 g + C2 790 g: 1800 consumed, 1790 made, 10 lost; the
    # products are not counted again as stock or as anything received.
    assert (third["processed_g"], third["produced_g"], third["lost_g"]) == (1_800, 1_790, 10)
    assert third["extracted_g"] == 0
    assert third["opening_g"] == 1_800 + 1_950
    assert third["reconciles"], third["problems"]


def test_shipped_lots_leave_closing_stock_and_a_return_comes_back(accounts: AccountStack) -> None:
    third = accounts.account(period=accounts.third.name)

    assert third["shipped_g"] == 1_950 + 1_000  # M sold; C1 sold (and then handed back)
    assert third["shipments"] == 2
    assert third["returned_g"] == 1_000
    assert third["received_g"] == 1_000  # only C1's return: the crushing took the site's own A2
    # M's correction (-50 g) happened while the buyer held it: not the site's; C2's +10 g is
    assert third["corrected_g"] == 10
    assert third["closing_g"] == 1_000 + 800
    assert third["expected_closing_g"] == 3_750 + 1_000 - 2_950 - 10 + 10
    assert third["reconciles"], third["problems"]
    assert accounts.account(period=accounts.third.day(4))["shipped_g"] == 1_950


def test_a_month_with_nothing_is_all_zero_and_reconciles(accounts: AccountStack) -> None:
    before = accounts.account(period=accounts.first.shift(-1).name)
    after = accounts.account(period=accounts.third.shift(1).name)

    for key in (
        "extracted_g",
        "received_g",
        "shipped_g",
        "lost_g",
        "corrected_g",
        "processed_g",
        "produced_g",
    ):
        assert before[key] == 0, key
        assert after[key] == 0, key
    assert (before["opening_g"], before["closing_g"]) == (0, 0)
    assert (after["opening_g"], after["closing_g"]) == (1_800, 1_800)
    assert before["reconciles"]
    assert after["reconciles"]
    assert before["problems"] == []
    assert after["problems"] == []
