"""Site mass-balance accounts by calendar period, over HTTP and from `provenance report`, on SQLite
and PostgreSQL: a history on eth-tester whose blocks are placed in December 2026 and January 2027
(eth-tester's clock can only move forward), indexed, then read back.

    2026-12-01  A1 1000 g, A2 2000 g at PIT-A; B1 3000 g at PIT-B
    2026-12-20  stock count at PIT-A: 2990 g (book 3000 g: -0.33 %, within 0.5 %)
    2027-01-05  merge A1 1000 + B1 1000 at PIT-A -> M 1950 (50 lost, 25 charged to each input)
                A2 corrected by -200 g (incorrect data); a correction of -5000 g is refused on chain
    2027-01-06  stock count at PIT-A: 3500 g (book 1800 + 1950 = 3750 g: -6.67 %)
"""

from __future__ import annotations

import calendar
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
from tests.dbs import empty_database
from tests.index_chain import SITE, IndexChain, record

OTHER_SITE = "PIT-B"


def at(year: int, month: int, day: int, hour: int = 8) -> int:
    return calendar.timegm((year, month, day, hour, 0, 0))


@dataclass
class AccountStack:
    chain: IndexChain
    http: TestClient
    url: str

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


def build_history(c: IndexChain) -> None:
    c.client.grant_role(c.admin, c.client.registrar_role(OTHER_SITE), c.registrar)
    c.tester.time_travel(at(2026, 12, 1))
    c.register(c.lot("A1", 1_000), c.lot("A2", 2_000))
    c.register(replace(c.lot("B1", 3_000), site=OTHER_SITE))
    c.tester.time_travel(at(2026, 12, 20))
    c.stock_count(2_990, at(2026, 12, 20))
    c.tester.time_travel(at(2027, 1, 5))
    c.hand_to_processor("A1", "B1")
    c.transform(TransformKind.MERGE, [("A1", 1_000), ("B1", 1_000)], [("M", 1_950)], 50)
    c.correct(c.registrar, "A2", CorrectionReason.INCORRECT_DATA, -200)
    with pytest.raises(ContractRevert) as refused:
        c.correct(c.registrar, "A2", CorrectionReason.INCORRECT_DATA, -5_000)
    assert refused.value.name == "InvalidCorrection"
    c.tester.time_travel(at(2027, 1, 6))
    c.client.transact(
        c.registrar, "recordStockCount", encode_label(SITE), 3_500, at(2027, 1, 6), record("jan")
    )


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def accounts(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AccountStack]:
    data_dir: Path = tmp_path_factory.mktemp("accounts")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        chain = IndexChain.fresh()
        build_history(chain)
        settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
        chain.deployment.save(settings.deployment_path)
        services = build_services(settings, w3=chain.w3)
        engine = make_engine(url)
        try:
            chain.indexer(engine).sync()
            yield AccountStack(chain, TestClient(create_app(services)), url)
        finally:
            engine.dispose()
            services.close()


def test_a_month_opens_with_the_last_months_closing_and_reconciles(accounts: AccountStack) -> None:
    december = accounts.account(period="2026-12")
    january = accounts.account(period="2027-01")

    assert (december["opening_g"], december["extracted_g"], december["closing_g"]) == (0, 3_000, 3_000)
    assert december["reconciles"]
    assert december["problems"] == []
    assert december["starts_at"] == at(2026, 12, 1, 0)
    assert december["ends_at"] == at(2027, 1, 1, 0)
    assert january["opening_g"] == december["closing_g"]
    assert january["extracted_g"] == 0
    assert january["received_g"] == 975  # B1's part of M, made here from PIT-B's lot
    assert january["transformed_in_g"] == 975
    assert january["transformed_out_g"] == 975
    assert january["lost_g"] == 25
    assert january["corrected_g"] == -200
    assert january["closing_g"] == 1_800 + 1_950
    assert january["reconciles"] is True
    assert next(line["key"] for line in january["lines"]) == "opening_g"

    other = accounts.account(OTHER_SITE, period="2027-01")
    assert (other["opening_g"], other["transformed_out_g"], other["lost_g"], other["closing_g"]) == (
        3_000,
        975,
        25,
        2_000,
    )
    assert other["received_g"] == 0
    assert other["reconciles"]


def test_weeks_days_and_the_whole_history_give_the_same_movements(accounts: AccountStack) -> None:
    week = accounts.account(period="2027-W01")  # Monday 4 to Sunday 10 January 2027
    day = accounts.account(period="2027-01-05")
    everything = accounts.account()

    for account in (week, day):
        assert (account["received_g"], account["lost_g"], account["corrected_g"]) == (975, 25, -200)
        assert account["reconciles"]
    assert accounts.account(period="2027-01-04")["transformed_out_g"] == 0
    assert everything["opening_g"] == 0
    assert everything["closing_g"] == 3_750
    assert everything["reconciles"]
    assert accounts.account(period="2030-05")["closing_g"] == 3_750  # after the last block: nothing moves


def test_stock_counts_are_compared_with_the_book_within_the_tolerance(accounts: AccountStack) -> None:
    (december,) = accounts.account(period="2026-12")["stock_checks"]
    assert (december["counted_g"], december["book_g"], december["variance_g"]) == (2_990, 3_000, -10)
    assert december["variance_ppm"] == -3_333
    assert december["within_tolerance"]

    january = accounts.account(period="2027-01")
    (count,) = january["stock_checks"]
    assert (count["counted_g"], count["book_g"], count["variance_g"]) == (3_500, 3_750, -250)
    assert count["within_tolerance"] is False
    assert january["stock_agrees"] is False
    assert any("beyond 0.5 %" in problem for problem in january["problems"])
    assert january["reconciles"] is True  # the book itself adds up; the count disagrees with it

    lenient = accounts.account(period="2027-01", tolerance="10%")
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

    december = runner.invoke(cli, [*base, "--period", "2026-12"])
    assert december.exit_code == 0, december.output
    assert "Closing stock" in december.output
    assert "3,000 g" in december.output
    assert "reconciles: yes" in december.output

    january = runner.invoke(cli, [*base, "--period", "2027-01", "--format", "csv"])
    assert january.exit_code == 1, january.output  # the stock count is beyond 0.5 %
    rows = {row.split(",")[4]: row.split(",") for row in january.output.splitlines()[1:]}
    assert rows["received_g"][6] == "975"
    assert rows["closing_g"][6] == "3750"
    assert rows["reconciles"][7] == "true"

    lenient = runner.invoke(cli, [*base, "--period", "2027-01", "--tolerance", "10"])
    assert lenient.exit_code == 0, lenient.output

    whole = runner.invoke(cli, [*base, "--from-block", "0", "--format", "csv"])
    assert whole.exit_code == 1
    assert "3750" in whole.output

    bad = runner.invoke(cli, [*base, "--period", "someday"])
    assert bad.exit_code == 2
    assert "--period" in bad.output
