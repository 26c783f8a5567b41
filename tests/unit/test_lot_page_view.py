"""The page's arithmetic and words: shown percentages add up to exactly 100, masses read naturally,
the language follows ?lang and Accept-Language, every phrase exists in both languages, and a
failed check never shows the node's URL."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from api.pages.i18n import WORDS, choose_lang, translator
from api.pages.view import build_page, mass_text, percentages, signed_mass_text, verdict_of
from provenance.domain.trace import (
    Coordinates,
    CorrectionFact,
    LineageLink,
    LotDetail,
    LotFacts,
    TraceNode,
    provenance,
)
from provenance.errors import ChainError, IndexStateError


@pytest.mark.parametrize(
    ("fractions", "shown"),
    [
        ([Fraction(1, 3)] * 3, ["33.34", "33.33", "33.33"]),
        ([Fraction(1, 10), Fraction(1, 2), Fraction(2, 5)], ["10.00", "50.00", "40.00"]),
        ([Fraction(2, 3), Fraction(1, 3)], ["66.67", "33.33"]),
        ([Fraction(1)], ["100.00"]),
        ([Fraction(1, 7)] * 7, ["14.29", "14.29", "14.29", "14.29", "14.28", "14.28", "14.28"]),
    ],
)
def test_percentages_that_sum_to_one_are_shown_summing_to_exactly_100(
    fractions: list[Fraction], shown: list[str]
) -> None:
    assert percentages(fractions) == shown
    assert sum(Decimal(text) for text in shown) == 100


def test_percentages_of_many_uneven_shares_still_sum_to_100() -> None:
    weights = [20_000_000 + 10_000 * i for i in range(48)]
    fractions = [Fraction(w, sum(weights)) for w in weights]

    assert sum(Decimal(text) for text in percentages(fractions)) == 100


@pytest.mark.parametrize(
    ("grams", "text"),
    [
        (400, "400 g"),
        (1_000, "1 kg"),
        (1_800, "1.8 kg"),
        (24_500_000, "24.5 t"),
        (874_152_000, "874.152 t"),
        (1_234_567_890, "1,234.568 t"),
        (Fraction(10_811, 10), "1.081 kg"),
    ],
)
def test_masses_read_in_grams_kilograms_or_tonnes(grams: int | Fraction, text: str) -> None:
    assert mass_text(grams) == text


@pytest.mark.parametrize(
    ("grams", "text"), [(-100, "-100 g"), (1_500, "+1.5 kg"), (0, "0 g"), (-2_000_000, "-2 t")]
)
def test_a_mass_change_always_shows_its_sign(grams: int, text: str) -> None:
    assert signed_mass_text(grams) == text


@pytest.mark.parametrize(
    ("asked", "header", "lang"),
    [
        (None, None, "en"),
        ("ko", None, "ko"),
        ("en", "ko-KR", "en"),
        ("KO", "en", "en"),
        (None, "ko-KR,ko;q=0.9,en-US;q=0.8", "ko"),
        (None, "en-GB,en;q=0.9,ko;q=0.8", "en"),
        (None, "en;q=0.2,ko;q=0.9", "ko"),
        (None, "fr,de;q=0.9", "en"),
        (None, "ko;q=0, en;q=0.1", "en"),
        (None, "ko;q=abc", "en"),
        (None, "*", "en"),
    ],
)
def test_the_language_is_asked_for_else_preferred_else_english(
    asked: str | None, header: str | None, lang: str
) -> None:
    assert choose_lang(asked, header) == lang


def test_every_phrase_exists_in_both_languages_and_fills_in_its_values() -> None:
    for key, (english, korean) in WORDS.items():
        assert english.strip(), key
        assert korean.strip(), key
        assert english.count("{") == korean.count("{"), key
    assert translator("ko")("verified_detail", count=3, block="1,204") == (
        "로트 3개(이 로트와 그 계보)를 블록 1,204 기준으로 블록체인과 대조했으며 차이가 없습니다."
    )
    assert translator("en")("status_pending", "pending") == "pending", "a new status shows as it is"


def test_a_failed_check_is_could_not_verify_with_a_reason_that_names_no_url() -> None:
    down = verdict_of(None, ChainError("the node does not answer: http://user:key@node.example:8545"))
    empty = verdict_of(None, IndexStateError("the index holds nothing yet"))

    assert (down.state, down.reason_key, down.reason_detail) == ("unverifiable", "reason_chain", "ChainError")
    assert (empty.state, empty.reason_key) == ("unverifiable", "reason_other")
    assert empty.reason_detail == "the index holds nothing yet"


def test_a_cut_lineage_marks_its_stand_in_origins_and_still_shows_shares_summing_to_100() -> None:
    where = Coordinates(7, "0x" + "b7" * 32, "0x" + "7a" * 32, 0, 0)
    nodes = [
        TraceNode("P", "transformed", "PIT-A", "Au-conc", 900, None, "0xC", "active", 0),
        TraceNode("M", "transformed", "PIT-A", "Au-conc", 600, None, "0xC", "consumed", 1),
        TraceNode("R", "registered", "PIT-B", "Au-ore", 400, 1_700_000_000, "0xC", "consumed", 1),
    ]
    links = [LineageLink("M", "P", 1, 540, where), LineageLink("R", "P", 1, 360, where)]
    trace = provenance("P", nodes, links, complete=False)
    lot = LotFacts(
        "P", "transformed", "PIT-A", None, "Au-conc", 900, 9_000, None, "0x00", 1, "0xC", "0xC", None, 900,
        "active", where,
    )  # fmt: skip

    page = build_page(
        LotDetail(lot, (), (), None, ()),
        trace,
        (),
        {},
        verdict_of(None, ChainError("down")),
        max_depth=1,
        explorer_url=None,
        index_block=7,
        page_url="http://testserver/lots/P",
        lot_href={node.lot_id: f"/lots/{node.lot_id}" for node in nodes},
    )

    assert page.cut_lots == {"M"}, "a transformed lot where the walk stopped, not the registered one"
    assert [(row.key, row.percent) for row in page.by_origin_lot] == [("M", "60.00"), ("R", "40.00")]
    assert [row.key for row in page.by_day] == [None, "2023-11-14"]
    assert [record.link.anchor for record in page.transactions] == [f"tx-{where.tx_hash}"]
    assert page.transactions[0].facts == ["fact_created", "fact_step"]


def test_corrections_are_listed_with_their_transaction_and_corrected_lots_marked_in_the_lineage() -> None:
    made = Coordinates(7, "0x" + "b7" * 32, "0x" + "7a" * 32, 0, 0)
    fixed = Coordinates(9, "0x" + "b9" * 32, "0x" + "9c" * 32, 0, 1)
    nodes = [
        TraceNode("P", "transformed", "PIT-A", "Au-conc", 900, None, "0xC", "active", 0, 1, -100, False),
        TraceNode("R", "registered", "PIT-B", "Au-ore", 400, 1_700_000_000, "0xC", "voided", 1, 2, 50, True),
        TraceNode("Q", "registered", "PIT-A", "Au-ore", 600, 1_700_000_000, "0xC", "consumed", 1),
    ]
    links = [LineageLink("Q", "P", 1, 540, made), LineageLink("R", "P", 1, 360, made)]
    trace = provenance("P", nodes, links, complete=True)
    lot = LotFacts(
        "P", "transformed", "PIT-A", None, "Au-conc", 900, 9_000, None, "0x00", 1, "0xC", "0xC", None, 800,
        "active", made,
    )  # fmt: skip
    correction = CorrectionFact("incorrect_data", -100, 800, "0xD", "0x" + "cd" * 32, fixed)

    page = build_page(
        LotDetail(lot, (), (), None, (correction,)),
        trace,
        (),
        {},
        verdict_of(None, ChainError("down")),
        max_depth=50,
        explorer_url=None,
        index_block=9,
        page_url="http://testserver/lots/P",
        lot_href={node.lot_id: f"/lots/{node.lot_id}" for node in nodes},
    )

    [row] = page.corrections
    assert (row.reason, row.adjustment, row.remaining, row.corrected_by) == (
        "incorrect_data",
        "-100 g",
        "800 g",
        "0xD",
    )
    assert row.tx.href == f"#tx-{fixed.tx_hash}"
    assert page.transactions[-1].facts == ["fact_correction"], "listed among the chain records"
    assert page.marks == {"P": "corrected", "R": "did-not-occur"}, "a void outweighs other corrections"
    assert [(r.lot_id, r.mark, r.corrections, r.adjustment) for r in page.corrected_lots] == [
        ("R", "did-not-occur", 2, "+50 g")
    ], "the lot's own corrections are in its table, not in the lineage list"
    assert [(r.key, r.percent) for r in page.by_origin_lot] == [("Q", "60.00"), ("R", "40.00")]
