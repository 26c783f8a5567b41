"""The read API over HTTP, on SQLite and PostgreSQL: a real history on eth-tester (registrations at
two sites, a split, a merge, a blend, a process step, handovers, an assay, a document, a correction),
indexed, then read back through /v1 and checked against the chain's receipts and hand-computed
provenance shares.

The history (all masses in grams; every transformation at PIT-A):

    A1 1000 (PIT-A, day 1)  A2 2000 (PIT-A, day 2)  B1 3000 (PIT-B, day 1)
    split   A1 1000            -> S1 400 + S2 600
    merge   S1 400 + A2 2000   -> M 2160            (240 lost: 40 of S1, 200 of A2)
    blend   M 2160 + B1 1440   -> X 3600
    process X 3600             -> X1 1800 + X2 1700 (100 lost)
    S2 corrected by -100; X1 assayed, documented, sold to the buyer; X2 offered to the buyer.

So X1 is 3/5 M and 2/5 B1; M is 1/6 A1 and 5/6 A2: X1 is 1/10 A1, 1/2 A2, 2/5 B1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from web3.types import TxReceipt

from api.app import create_app
from api.routers.reads import Reading
from provenance.bootstrap import build_runtime
from provenance.config import Settings
from provenance.domain.records import Assay, LotRegistration
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.index.db import make_engine, upgrade
from tests.dbs import empty_database
from tests.index_chain import EXTRACTED_AT, SITE, IndexChain, record

OTHER_SITE = "PIT-B"
LIST_SITE = "PIT-C"
DAY = 86_400


@dataclass
class ReadStack:
    chain: IndexChain
    http: TestClient
    receipts: dict[str, TxReceipt]
    engine: Any

    def index(self) -> None:
        self.chain.indexer(self.engine).sync()

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        assert response.headers["X-Index-Block"] == str(self.chain.head)
        return response.json()


def registration(lot_id: str, site: str, mass_g: int, extracted_at: int) -> LotRegistration:
    return LotRegistration(lot_id, site, "F1", "Au-ore", mass_g, 5_000, extracted_at, record(lot_id))


def build_history(c: IndexChain) -> dict[str, TxReceipt]:
    receipts: dict[str, TxReceipt] = {}
    for site in (OTHER_SITE, LIST_SITE):
        c.client.grant_role(c.admin, c.client.registrar_role(site), c.registrar)
    receipts["A"] = c.register(
        registration("A1", SITE, 1_000, EXTRACTED_AT), registration("A2", SITE, 2_000, EXTRACTED_AT + DAY)
    )
    receipts["B"] = c.register(registration("B1", OTHER_SITE, 3_000, EXTRACTED_AT))
    c.client.hand_over(c.registrar, ["A1", "A2"], c.processor)
    c.client.accept_handover(c.processor, ["A1", "A2"])
    c.client.hand_over(c.registrar, ["B1"], c.processor)
    c.client.accept_handover(c.processor, ["B1"])
    c.transform(TransformKind.SPLIT, [("A1", 1_000)], [("S1", 400), ("S2", 600)], 0)
    c.transform(TransformKind.MERGE, [("S1", 400), ("A2", 2_000)], [("M", 2_160)], 240)
    c.transform(TransformKind.BLEND, [("M", 2_160), ("B1", 1_440)], [("X", 3_600)], 0)
    receipts["process"] = c.transform(
        TransformKind.PROCESS, [("X", 3_600)], [("X1", 1_800), ("X2", 1_700)], 100
    )
    receipts["correct"] = c.correct(c.processor, "S2", CorrectionReason.INCORRECT_DATA, -100)
    assay = Assay("X1", 8_800, "FireAssay", record("certificate X1"), EXTRACTED_AT + 7_200)
    receipts["assay"] = c.client.submit_assay(c.buyer, assay, c.client.sign_assay(c.lab, assay))
    receipts["document"] = c.client.anchor_document(c.processor, "X1", "weighbridge", record("ticket X1"))
    receipts["offer"] = c.client.hand_over(c.processor, ["X1"], c.buyer)
    receipts["accept"] = c.client.accept_handover(c.buyer, ["X1"])
    receipts["pending"] = c.client.hand_over(c.processor, ["X2"], c.buyer)
    receipts["list"] = c.register(
        *(registration(f"C{i}", LIST_SITE, 100 + i, EXTRACTED_AT + i) for i in range(5))
    )
    return receipts


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def reads(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadStack]:
    data_dir: Path = tmp_path_factory.mktemp("reads")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        chain = IndexChain.fresh()
        receipts = build_history(chain)
        settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
        chain.deployment.save(settings.deployment_path)
        runtime = build_runtime(settings, w3=chain.w3)
        engine = make_engine(url)
        try:
            stack = ReadStack(chain, TestClient(create_app(runtime)), receipts, engine)
            stack.index()
            yield stack
        finally:
            engine.dispose()
            runtime.close()


def coordinates_of(receipt: TxReceipt) -> tuple[str, int]:
    return "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])


def fact_at(fact: dict[str, Any]) -> tuple[str, int]:
    return fact["tx_hash"], fact["block_number"]


def exact(value: dict[str, str]) -> Fraction:
    return Fraction(int(value["numerator"]), int(value["denominator"]))


def test_a_lot_shows_its_origin_state_assays_documents_and_where_each_fact_is_on_chain(
    reads: ReadStack,
) -> None:
    a1 = reads.get("/v1/lots/A1")
    assert (a1["site"], a1["mass_g"], a1["extracted_at"], a1["origin"]) == (
        SITE,
        1_000,
        EXTRACTED_AT,
        "registered",
    )
    assert (a1["remaining_g"], a1["status"], a1["custodian"]) == (0, "consumed", reads.chain.processor)
    assert fact_at(a1["created"]) == coordinates_of(reads.receipts["A"])

    x1 = reads.get("/v1/lots/X1")
    assert (x1["origin"], x1["mass_g"], x1["remaining_g"], x1["status"]) == (
        "transformed",
        1_800,
        1_800,
        "active",
    )
    assert (x1["custodian"], x1["pending_custodian"], x1["pending_handover"]) == (
        reads.chain.buyer,
        None,
        None,
    )
    assert fact_at(x1["created"]) == coordinates_of(reads.receipts["process"])
    [assay] = x1["assays"]
    assert (assay["grade_ppm"], assay["lab"]) == (8_800, reads.chain.lab.address)
    assert fact_at(assay["coordinates"]) == coordinates_of(reads.receipts["assay"])
    [document] = x1["documents"]
    assert document["document_hash"] == "0x" + record("ticket X1").hex()
    assert fact_at(document["coordinates"]) == coordinates_of(reads.receipts["document"])

    x2 = reads.get("/v1/lots/X2")
    assert (x2["custodian"], x2["pending_custodian"]) == (reads.chain.processor, reads.chain.buyer)
    assert fact_at(x2["pending_handover"]["coordinates"]) == coordinates_of(reads.receipts["pending"])


def test_provenance_gives_the_hand_computed_shares_and_they_sum_to_one(reads: ReadStack) -> None:
    trace = reads.get("/v1/lots/X1/provenance")

    assert trace["complete"] is True
    origins = {share["key"]: exact(share["share"]) for share in trace["by_origin_lot"]}
    assert origins == {"A1": Fraction(1, 10), "A2": Fraction(1, 2), "B1": Fraction(2, 5)}
    assert sum(origins.values()) == 1
    grams = {share["key"]: exact(share["grams"]) for share in trace["by_origin_lot"]}
    assert grams == {"A1": 180, "A2": 900, "B1": 720}
    assert {s["key"]: exact(s["share"]) for s in trace["by_site"]} == {
        SITE: Fraction(3, 5),
        OTHER_SITE: Fraction(2, 5),
    }
    assert {s["key"]: exact(s["share"]) for s in trace["by_extraction_day"]} == {
        "2023-11-14": Fraction(1, 2),
        "2023-11-15": Fraction(1, 2),
    }
    edges = {(e["input_lot_id"], e["output_lot_id"]): e["mass_g"] for e in trace["edges"]}
    assert edges == {
        ("X", "X1"): 1_800,
        ("M", "X"): 2_160,
        ("B1", "X"): 1_440,
        ("S1", "M"): 360,
        ("A2", "M"): 1_800,
        ("A1", "S1"): 400,
    }
    assert {lot["lot_id"]: lot["depth"] for lot in trace["lots"]} == {
        "X1": 0,
        "X": 1,
        "M": 2,
        "B1": 2,
        "S1": 3,
        "A2": 3,
        "A1": 4,
    }


def test_a_cut_walk_says_so_and_its_shares_still_sum_to_one(reads: ReadStack) -> None:
    trace = reads.get("/v1/lots/X1/provenance", max_depth=2)

    assert trace["complete"] is False
    shares = {s["key"]: exact(s["share"]) for s in trace["by_origin_lot"]}
    assert shares == {"M": Fraction(3, 5), "B1": Fraction(2, 5)}


def test_descendants_name_every_lot_and_custodian_a_recall_must_reach(reads: ReadStack) -> None:
    found = reads.get("/v1/lots/A1/descendants")

    grams = {d["lot"]["lot_id"]: exact(d["grams"]) for d in found["lots"]}
    assert grams == {"S1": 400, "S2": 600, "M": 360, "X": 360, "X1": 180, "X2": 170}
    c = reads.chain
    assert set(found["custodians"]) == {c.registrar, c.processor, c.buyer}
    x1 = next(d for d in found["lots"] if d["lot"]["lot_id"] == "X1")
    assert x1["custodians"] == [c.processor, c.buyer]
    assert reads.get("/v1/lots/X1/descendants")["lots"] == []
    near = reads.get("/v1/lots/A1/descendants", max_depth=1)
    assert near["complete"] is False
    assert [d["lot"]["lot_id"] for d in near["lots"]] == ["S1", "S2"]


def test_a_corrected_lot_lists_its_correction_where_the_chain_recorded_it(reads: ReadStack) -> None:
    s2 = reads.get("/v1/lots/S2")

    assert (s2["mass_g"], s2["remaining_g"], s2["status"]) == (600, 500, "active"), "the record stays"
    [correction] = s2["corrections"]
    receipt = reads.receipts["correct"]
    assert {key: value for key, value in correction.items() if key != "coordinates"} == {
        "reason": "incorrect_data",
        "adjustment_g": -100,
        "remaining_g": 500,
        "corrected_by": reads.chain.processor,
        "record_hash": "0x" + record("correction S2").hex(),
    }
    assert fact_at(correction["coordinates"]) == coordinates_of(receipt)
    [log] = receipt["logs"]
    assert correction["coordinates"]["log_index"] == log["logIndex"]
    assert correction["coordinates"]["block_hash"] == "0x" + bytes(receipt["blockHash"]).hex()
    assert reads.get("/v1/lots/X1")["corrections"] == []


def test_the_lineage_flags_a_corrected_lot_and_keeps_its_shares(reads: ReadStack) -> None:
    trace = reads.get("/v1/lots/S2/provenance")

    flags = {
        lot["lot_id"]: (lot["corrections"], lot["corrected_g"], lot["did_not_occur"]) for lot in trace["lots"]
    }
    assert flags == {"S2": (1, -100, False), "A1": (0, 0, False)}
    assert [(s["key"], exact(s["share"]), exact(s["grams"])) for s in trace["by_origin_lot"]] == [
        ("A1", 1, 600)
    ], "shares follow the recorded edges, not the corrected remaining mass"
    assert all(lot["corrections"] == 0 for lot in reads.get("/v1/lots/X1/provenance")["lots"])
    found = {
        d["lot"]["lot_id"]: d["lot"]["corrected_g"] for d in reads.get("/v1/lots/A1/descendants")["lots"]
    }
    assert found["S2"] == -100


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def voided(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReadStack]:
    """A1 1000 and A2 2000 merged into M 3000; then A1 declared never to have occurred."""
    data_dir: Path = tmp_path_factory.mktemp("voided")
    with empty_database(request.param, data_dir) as url:
        upgrade(url)
        c = IndexChain.fresh()
        receipts = {"register": c.register(c.lot("A1", 1_000), c.lot("A2", 2_000))}
        c.hand_to_processor("A1", "A2")
        c.transform(TransformKind.MERGE, [("A1", 1_000), ("A2", 2_000)], [("M", 3_000)], 0)
        receipts["void"] = c.correct(c.processor, "A1", CorrectionReason.DID_NOT_OCCUR, 0)
        settings = Settings(data_dir=data_dir, rpc_url="http://eth-tester.invalid", database_url=url)
        c.deployment.save(settings.deployment_path)
        runtime = build_runtime(settings, w3=c.w3)
        engine = make_engine(url)
        try:
            stack = ReadStack(c, TestClient(create_app(runtime)), receipts, engine)
            stack.index()
            yield stack
        finally:
            engine.dispose()
            runtime.close()


def test_a_lot_that_did_not_occur_stays_in_the_lineage_marked(voided: ReadStack) -> None:
    a1 = voided.get("/v1/lots/A1")
    assert (a1["mass_g"], a1["remaining_g"], a1["status"]) == (1_000, 0, "voided")
    assert [(c["reason"], c["adjustment_g"], c["remaining_g"]) for c in a1["corrections"]] == [
        ("did_not_occur", 0, 0)
    ]
    assert fact_at(a1["corrections"][0]["coordinates"]) == coordinates_of(voided.receipts["void"])

    trace = voided.get("/v1/lots/M/provenance")
    lots = {lot["lot_id"]: lot for lot in trace["lots"]}
    assert set(lots) == {"M", "A1", "A2"}, "never deleted from the history"
    assert (lots["A1"]["did_not_occur"], lots["A1"]["status"], lots["A1"]["corrections"]) == (
        True,
        "voided",
        1,
    )
    assert (lots["A2"]["did_not_occur"], lots["M"]["did_not_occur"]) == (False, False)
    assert {s["key"]: exact(s["share"]) for s in trace["by_origin_lot"]} == {
        "A1": Fraction(1, 3),
        "A2": Fraction(2, 3),
    }, "the shares stand as recorded; the flag tells the reader"


def test_lists_filter_and_page_without_duplicates_or_gaps_even_while_lots_are_added(reads: ReadStack) -> None:
    assert [lot["lot_id"] for lot in reads.get("/v1/lots", site=OTHER_SITE)["lots"]] == ["B1"]
    held = reads.get("/v1/lots", custodian=reads.chain.buyer.lower())["lots"]
    assert [lot["lot_id"] for lot in held] == ["X1"]
    consumed = reads.get("/v1/lots", site=SITE, status="consumed")["lots"]
    assert [lot["lot_id"] for lot in consumed] == ["A1", "A2", "S1", "M", "X"]
    on_day_2 = reads.get("/v1/lots", extracted_from="2023-11-15", extracted_to=str(EXTRACTED_AT + 2 * DAY))
    assert [lot["lot_id"] for lot in on_day_2["lots"]] == ["A2"]
    assert [lot["lot_id"] for lot in reads.get("/v1/lots", commodity="Au-conc", site=SITE)["lots"]] == [
        "S1",
        "S2",
        "M",
        "X",
        "X1",
        "X2",
    ]

    first = reads.get("/v1/lots", site=LIST_SITE, limit=2)
    assert [lot["lot_id"] for lot in first["lots"]] == ["C0", "C1"]
    reads.chain.register(*(registration(f"C{i}", LIST_SITE, 100 + i, EXTRACTED_AT) for i in range(5, 8)))
    reads.index()
    seen = [lot["lot_id"] for lot in first["lots"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = reads.get("/v1/lots", site=LIST_SITE, limit=2, cursor=cursor)
        seen += [lot["lot_id"] for lot in page["lots"]]
        cursor = page["next_cursor"]
    assert seen == [f"C{i}" for i in range(8)]


def test_the_mass_balance_of_a_site_reconciles(reads: ReadStack) -> None:
    balance = reads.get(f"/v1/sites/{SITE}/mass-balance")

    assert balance["extracted_g"] == 3_000
    assert balance["received_g"] == 1_440  # B1's 1440 g, taken from PIT-B by the blend here
    # processing at PIT-A is internal: split, merge, blend and process consume and make lots
    assert balance["processed_g"] == 1_000 + (400 + 2_000) + (2_160 + 1_440) + 3_600
    assert balance["produced_g"] == (400 + 600) + 2_160 + 3_600 + (1_800 + 1_700)
    assert balance["lost_g"] == 240 + 100
    assert balance["shipped_g"] == 1_800  # X1, accepted by the buyer; X2 is only offered
    assert balance["shipments"] == 1
    assert balance["corrected_g"] == -100
    assert balance["closing_g"] == 500 + 1_700  # S2 and X2: X1's custody left the site
    assert balance["opening_g"] == 0
    assert balance["reconciles"] is True

    other = reads.get(f"/v1/sites/{OTHER_SITE}/mass-balance")
    assert (other["extracted_g"], other["shipped_g"], other["closing_g"]) == (3_000, 1_440, 1_560)
    assert other["transferred_g"] == 1_440
    assert other["reconciles"] is True


def test_a_mass_balance_over_part_of_the_history_opens_with_what_was_held(reads: ReadStack) -> None:
    _, process_block = coordinates_of(reads.receipts["process"])
    before = reads.get(f"/v1/sites/{SITE}/mass-balance", to_block=process_block - 1)
    after = reads.get(f"/v1/sites/{SITE}/mass-balance", from_block=process_block)

    assert before["reconciles"]
    assert after["reconciles"]
    assert before["closing_g"] == after["opening_g"] == 600 + 3_600
    assert after["lost_g"] == 100
    assert reads.get(f"/v1/sites/{SITE}/mass-balance", **{"from": "1970-01-01", "to": "2999-01-01"})[
        "reconciles"
    ]


def test_custody_history_and_timelines_are_in_chain_order(reads: ReadStack) -> None:
    custody = reads.get("/v1/lots/X1/custody")["moves"]
    assert [(m["action"], m["to_address"]) for m in custody] == [
        ("offered", reads.chain.buyer),
        ("accepted", reads.chain.buyer),
    ]
    assert fact_at(custody[1]["coordinates"]) == coordinates_of(reads.receipts["accept"])

    names = [event["name"] for event in reads.get("/v1/lots/X1/timeline")["events"]]
    assert names == [
        "LotsTransformed",
        "LotCreated",
        "AssayRecorded",
        "DocumentAnchored",
        "CustodyOffered",
        "CustodyAccepted",
    ]

    every = reads.get(f"/v1/sites/{SITE}/timeline", limit=500)["events"]
    paged: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = reads.get(f"/v1/sites/{SITE}/timeline", limit=7, **({"cursor": cursor} if cursor else {}))
        paged += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert paged == every
    order = [
        (e["coordinates"]["block_number"], e["coordinates"]["tx_index"], e["coordinates"]["log_index"])
        for e in every
    ]
    assert order == sorted(order)
    assert len(set(order)) == len(order)
    assert {"LotRegistered", "LotsTransformed", "LotConsumed", "LotCorrected"} <= {e["name"] for e in every}
    assert all(e["lot_id"] != "B1" for e in every)


def test_unknown_lots_are_404_and_bad_parameters_422_naming_the_field(reads: ReadStack) -> None:
    for path in (
        "/v1/lots/NOPE",
        "/v1/lots/NOPE/provenance",
        "/v1/lots/NOPE/descendants",
        "/v1/lots/NOPE/custody",
        "/v1/lots/NOPE/timeline",
    ):
        response = reads.http.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["type"] == "NotFound"
    cases: list[tuple[str, dict[str, str | int], str]] = [
        ("/v1/lots", {"limit": 501}, "limit"),
        ("/v1/lots", {"cursor": "not-a-cursor"}, "cursor"),
        ("/v1/lots", {"status": "lost"}, "status"),
        ("/v1/lots", {"extracted_from": "last tuesday"}, "extracted_from"),
        ("/v1/lots", {"custodian": "0x123"}, "custodian"),
        ("/v1/lots/X1/provenance", {"max_depth": 0}, "max_depth"),
        (f"/v1/sites/{SITE}/mass-balance", {"from": "soon"}, "from"),
        (f"/v1/sites/{SITE}/timeline", {"cursor": "WzEsMl0"}, "cursor"),
    ]
    for path, params, field in cases:
        response = reads.http.get(path, params=params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["error"]["field"] == field, (path, params)


def test_reads_need_no_token_and_are_in_the_openapi_document(reads: ReadStack) -> None:
    schema = reads.http.get("/openapi.json").json()
    for path in (
        "/v1/lots/{lot_id}",
        "/v1/lots/{lot_id}/provenance",
        "/v1/lots/{lot_id}/descendants",
        "/v1/lots/{lot_id}/custody",
        "/v1/lots/{lot_id}/timeline",
        "/v1/sites/{site}/timeline",
        "/v1/sites/{site}/mass-balance",
    ):
        assert "get" in schema["paths"][path], path
        assert "security" not in schema["paths"][path]["get"]
    assert "get" in schema["paths"]["/v1/lots"]


@pytest.mark.parametrize(
    "path", ["/v1/lots/X1", "/v1/lots/X1/provenance", "/v1/lots/A1/descendants", "/v1/lots?site=SH2"]
)
def test_a_read_takes_one_connection_for_its_index_block_and_all_its_queries(
    reads: ReadStack, path: str
) -> None:
    """One pool checkout per read (there were one per query, plus one for X-Index-Block): under
    load each checkout is a round trip, and on SQLite one connection is one snapshot, so the index
    block in the header is the block the whole answer was read at."""
    engine = reads.http.app.state.runtime.engine  # type: ignore[attr-defined]
    checkouts: list[object] = []

    def count(*_args: object) -> None:
        checkouts.append(None)

    event.listen(engine, "checkout", count)
    try:
        response = reads.http.get(path)
    finally:
        event.remove(engine, "checkout", count)

    assert response.status_code == 200, response.text
    assert response.headers["X-Index-Block"] == str(reads.chain.head)
    assert len(checkouts) == 1


def test_the_queries_of_a_read_run_only_inside_its_with_block(reads: ReadStack) -> None:
    reading = Reading(reads.http.app.state.runtime)  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="inside `with reads:` only"):
        reading.lot("X1")
    with reading:
        found = reading.lot("X1")
    assert found is not None
    assert reading.block_seen == reads.chain.head
