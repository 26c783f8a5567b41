"""Site mass-balance accounts by calendar period, over HTTP and from `provenance report`, on SQLite
and PostgreSQL: a history on eth-tester whose blocks are placed in two consecutive months after
the chain's own head (the first is the month after next; eth-tester's clock only moves forward, and
no test may depend on today's date), indexed, then read back.

    first month, day 1   A1 1000 g, A2 2000 g at PIT-A; B1 3000 g at PIT-B
                 day 20  stock count at PIT-A: 2990 g (book 3000 g: -0.33 %, within 0.5 %)
    second month, day 5  merge A1 1000 + B1 1000 at PIT-A -> M 1950 (50 lost, 25 charged to each input)
                         A2 corrected by -200 g (incorrect data); a correction of -5000 g is refused
                 day 6   stock count at PIT-A: 3500 g (book 1800 + 1950 = 3750 g: -6.67 %)
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
from provenance.bootstrap import build_services
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

    def account(self, site: str = SITE, **params: Any) -> dict[str, Any]:
        response = self.http.get(f"/v1/sites/{site}/mass-balance", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["expected_closing_g"] == (
            body["opening_g"]
            + body["extracted_g"]
            + body["received_g"]
            + body["transformed_in_g"]
            - body["transformed_out_g"]
            - body["lost_g"]
            + body["corrected_g"]
        )
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


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountStack]:
    data_dir: Path = tmp_path_factory.mktemp("accounts")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        chain = IndexChain.fresh()
        first, second = build_history(chain)
        settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
        chain.deployment.save(settings.deployment_path)
        services = build_services(settings, w3=chain.w3)
        engine = make_engine(url)
        try:
            chain.indexer(engine).sync()
            yield AccountStack(chain, TestClient(create_app(services)), url, first, second)
        finally:
            engine.dispose()
            services.close()


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
    assert second_month["received_g"] == 975  # B1's part of M, made here from PIT-B's lot
    assert second_month["transformed_in_g"] == 975
    assert second_month["transformed_out_g"] == 975
    assert second_month["lost_g"] == 25
    assert second_month["corrected_g"] == -200
    assert second_month["closing_g"] == 1_800 + 1_950
    assert second_month["reconciles"] is True
    assert next(line["key"] for line in second_month["lines"]) == "opening_g"

    other = accounts.account(OTHER_SITE, period=accounts.second.name)
    assert (other["opening_g"], other["transformed_out_g"], other["lost_g"], other["closing_g"]) == (
        3_000,
        975,
        25,
        2_000,
    )
    assert other["received_g"] == 0
    assert other["reconciles"]


def test_weeks_days_and_the_whole_history_give_the_same_movements(accounts: AccountStack) -> None:
    week = accounts.account(period=accounts.second.week_of(5))
    day = accounts.account(period=accounts.second.day(5))
    everything = accounts.account()

    for account in (week, day):
        assert (account["received_g"], account["lost_g"], account["corrected_g"]) == (975, 25, -200)
        assert account["reconciles"]
    assert accounts.account(period=accounts.second.day(4))["transformed_out_g"] == 0
    assert everything["opening_g"] == 0
    assert everything["closing_g"] == 3_750
    assert everything["reconciles"]
    later = accounts.second.shift(40).name
    assert accounts.account(period=later)["closing_g"] == 3_750  # after the last block: nothing moves


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
    assert "3,000 g" in first_month.output
    assert "reconciles: yes" in first_month.output

    second_month = runner.invoke(cli, [*base, "--period", accounts.second.name, "--format", "csv"])
    assert second_month.exit_code == 1, second_month.output  # the stock count is beyond 0.5 %
    rows = {row.split(",")[4]: row.split(",") for row in second_month.output.splitlines()[1:]}
    assert rows["received_g"][6] == "975"
    assert rows["closing_g"][6] == "3750"
    assert rows["reconciles"][7] == "true"

    lenient = runner.invoke(cli, [*base, "--period", accounts.second.name, "--tolerance", "10"])
    assert lenient.exit_code == 0, lenient.output

    whole = runner.invoke(cli, [*base, "--from-block", "0", "--format", "csv"])
    assert whole.exit_code == 1
    assert "3750" in whole.output

    bad = runner.invoke(cli, [*base, "--period", "someday"])
    assert bad.exit_code == 2
    assert "--period" in bad.output

    unknown = runner.invoke(cli, ["report", "mass-balance", "--site", "NOPE", "--database", accounts.url])
    assert unknown.exit_code == 2, unknown.output
    assert "--site: no site NOPE" in unknown.output
    assert "reconciles" not in unknown.output
