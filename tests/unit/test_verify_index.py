"""Verification of the index against the chain (`provenance.verification`), on eth-tester.

One history is built and indexed per module; each test copies the index file, tampers with the
copy directly in SQL (as an attacker or a bug with database access could), and asks for a
verdict. The chain is never touched, so every difference found is the tampered fact.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from provenance.chain.reader import ChainReader
from provenance.domain.values import TransformKind
from provenance.errors import IndexStateError
from provenance.index.claims import IndexClaimReader
from provenance.index.db import make_engine, upgrade
from provenance.verification import (
    Verdict,
    Verification,
    verify_against_index,
    verify_document,
    verify_on_chain,
)
from provenance.verification.model import Status
from tests.index_chain import IndexChain, full_history, record


@dataclass
class Indexed:
    chain: IndexChain
    index_file: Path
    ticket: bytes


def build_history(chain: IndexChain) -> bytes:
    """L1 (5000 g), L2 (3000 g), L3 (2000 g) registered; L1 split into S1 3000 + S2 2000; S1 3000 g
    and L2 2000 g blended into B1 4900 g (100 g lost); B1 assayed, a ticket anchored, B1 sold to the
    buyer. Returns the ticket's hash."""
    c = chain
    c.register(c.lot("L1", 5_000), c.lot("L2", 3_000), c.lot("L3", 2_000))
    c.hand_to_processor("L1", "L2", "L3")
    c.transform(TransformKind.SPLIT, [("L1", 5_000)], [("S1", 3_000), ("S2", 2_000)], 0)
    c.transform(TransformKind.BLEND, [("S1", 3_000), ("L2", 2_000)], [("B1", 4_900)], 100)
    c.assay("B1", 8_800)
    ticket = record("weighbridge ticket B1")
    c.client.anchor_document(c.processor, "B1", "weighbridge", ticket)
    c.client.hand_over(c.processor, ["B1"], c.buyer)
    c.client.accept_handover(c.buyer, ["B1"])
    return ticket


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    chain = IndexChain.fresh()
    ticket = build_history(chain)
    path = tmp_path_factory.mktemp("verify") / "index.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    try:
        chain.indexer(engine).sync()
    finally:
        engine.dispose()
    return Indexed(chain, path, ticket)


@dataclass
class Copy:
    chain: IndexChain
    url: str
    ticket: bytes

    def sql(self, statement: str, **values: object) -> None:
        engine = make_engine(self.url)
        try:
            with engine.begin() as connection:
                changed = connection.execute(text(statement), values).rowcount
            assert changed == 1, statement
        finally:
            engine.dispose()

    def verify(self, lot_id: str, **options: int) -> Verification:
        engine = make_engine(self.url)
        try:
            reader = ChainReader(self.chain.w3, self.chain.client.address)
            with IndexClaimReader(engine).snapshot() as index:
                verification = verify_against_index(reader, index, lot_id, **options)
        finally:
            engine.dispose()
        assert verification is not None
        return verification


@pytest.fixture
def index(indexed: Indexed, tmp_path: Path) -> Copy:
    target = tmp_path / "index.sqlite3"
    shutil.copyfile(indexed.index_file, target)
    return Copy(indexed.chain, f"sqlite:///{target}", indexed.ticket)


def failed_fields(verification: Verification) -> set[tuple[str, str, str]]:
    return {(d.lot_id, d.event, d.field) for d in verification.differences}


def failed_checks(verification: Verification) -> set[tuple[str, str]]:
    return {(c.name, c.lot_id) for c in verification.checks if c.status is Status.FAIL}


# ---------------------------------------------------------------------- an honest index


def test_an_honest_index_is_verified_with_the_whole_lineage(index: Copy) -> None:
    verification = index.verify("B1")

    assert verification.verdict is Verdict.VERIFIED, verification.differences
    assert set(verification.lots_checked) == {"B1", "S1", "L2", "L1"}
    assert not verification.bound_hit
    names = {check.name for check in verification.checks}
    assert {
        "lot_state",
        "lot_state_replayed",
        "registration",
        "creation",
        "transformation",
        "event:LotConsumed",
        "event:CustodyAccepted",
        "event:AssayRecorded",
        "event:DocumentAnchored",
        "assay_signature",
        "assay_signature_claimed",
        "lineage",
        "conservation",
        "events_complete",
        "event_log_complete",
    } <= names
    assay = next(c for c in verification.checks if c.name == "event:AssayRecorded")
    assert assay.where is not None
    assert assay.where.tx_hash.startswith("0x")
    assert assay.where.block_number > 0


def test_every_lot_of_an_honest_index_is_verified(index: Copy) -> None:
    for lot_id in ("L1", "L2", "L3", "S1", "S2", "B1"):
        assert index.verify(lot_id).verdict is Verdict.VERIFIED, lot_id


def test_the_walk_stops_at_the_bound_and_says_so(index: Copy) -> None:
    verification = index.verify("B1", max_lots=2)

    assert verification.bound_hit
    assert len(verification.lots_checked) == 2
    assert verification.verdict is Verdict.VERIFIED


def test_an_unknown_lot_has_no_verification(index: Copy) -> None:
    engine = make_engine(index.url)
    try:
        reader = ChainReader(index.chain.w3, index.chain.client.address)
        with IndexClaimReader(engine).snapshot() as claims:
            assert verify_against_index(reader, claims, "NOPE") is None
    finally:
        engine.dispose()


# ---------------------------------------------------------------------- a tampered index


def test_a_changed_remaining_mass_fails_the_lot_state(index: Copy) -> None:
    index.sql("UPDATE lots SET remaining_g = 1234 WHERE lot_id = 'L2'")

    verification = index.verify("B1")

    assert verification.verdict is Verdict.FAILED
    assert failed_fields(verification) == {("L2", "lotState", "remaining_g")}
    difference = verification.differences[0]
    assert (difference.index_value, difference.chain_value) == (1234, 1_000)


def test_a_changed_registered_mass_fails_the_registration(index: Copy) -> None:
    index.sql("UPDATE lots SET mass_g = 3100 WHERE lot_id = 'L2'")

    verification = index.verify("B1")

    assert verification.verdict is Verdict.FAILED
    assert failed_fields(verification) == {("L2", "LotRegistered", "massG")}
    assert failed_checks(verification) == {("registration", "L2")}
    difference = verification.differences[0]
    assert (difference.index_value, difference.chain_value) == (3_100, 3_000)
    assert difference.where is not None
    assert difference.where.block_number > 0


def test_a_dropped_lineage_edge_fails_the_lineage(index: Copy) -> None:
    index.sql("DELETE FROM lineage_edges WHERE output_lot_id = 'B1' AND input_lot_id = 'L2'")

    verification = index.verify("B1")

    assert verification.verdict is Verdict.FAILED
    assert failed_fields(verification) == {("B1", "lineage_edge", "edge[L2].mass_g")}
    difference = verification.differences[0]
    # shares of 4,900 g in proportion to 3,000 g and 2,000 g consumed
    assert (difference.index_value, difference.chain_value) == (None, 1_960)
    assert "L2" in verification.lots_checked, "the walk follows the chain's inputs, not only the index's"


def test_a_changed_edge_mass_fails_the_lineage(index: Copy) -> None:
    index.sql("UPDATE lineage_edges SET mass_g = 3000 WHERE output_lot_id = 'B1' AND input_lot_id = 'S1'")

    verification = index.verify("B1")

    assert failed_fields(verification) == {("B1", "lineage_edge", "edge[S1].mass_g")}


def test_a_forged_assay_fails(index: Copy) -> None:
    lab = index.chain.lab.address
    index.sql(
        "INSERT INTO assays (tx_hash, log_index, block_number, block_hash, tx_index, lot_id, lab, grade_ppm,"
        " method, certificate_hash, assayed_at, submitter, signature) VALUES (:tx, 0, 5, :block, 0, 'B1', :lab,"
        " 9999, 'FireAssay', :certificate, 1700000000, :lab, :signature)",
        tx="0x" + "ab" * 32,
        block="0x" + "cd" * 32,
        lab=lab,
        certificate="0x" + "01" * 32,
        signature="0x" + "11" * 65,
    )

    verification = index.verify("B1")

    assert verification.verdict is Verdict.FAILED
    checks = failed_checks(verification)
    assert ("assay_signature_claimed", "B1") in checks
    assert ("event:AssayRecorded", "B1") in checks
    assert ("B1", "AssayRecorded", "not on chain") in failed_fields(verification)
    assert {lot for lot, _, _ in failed_fields(verification)} == {"B1"}


def test_an_altered_assay_grade_fails_field_and_signature(index: Copy) -> None:
    index.sql("UPDATE assays SET grade_ppm = 9100 WHERE lot_id = 'B1'")

    verification = index.verify("B1")

    assert verification.verdict is Verdict.FAILED
    assert ("B1", "AssayRecorded", "gradePpm") in failed_fields(verification)
    assert ("B1", "AssayRecorded", "signer") in failed_fields(verification), (
        "the lab's signature does not cover the index's grade"
    )
    grade = next(d for d in verification.differences if d.field == "gradePpm")
    assert (grade.index_value, grade.chain_value) == (9_100, 8_800)


def test_a_changed_custodian_fails_the_lot_state(index: Copy) -> None:
    index.sql("UPDATE lots SET custodian = :someone WHERE lot_id = 'B1'", someone=index.chain.admin)

    verification = index.verify("B1")

    assert failed_fields(verification) == {("B1", "lotState", "custodian")}
    difference = verification.differences[0]
    assert (difference.index_value, difference.chain_value) == (index.chain.admin, index.chain.buyer)


def test_a_dropped_custody_move_fails_completeness(index: Copy) -> None:
    index.sql("DELETE FROM custody_moves WHERE lot_id = 'B1' AND action = 'accepted'")

    verification = index.verify("B1")

    assert ("B1", "CustodyAccepted", "missing from the index") in failed_fields(verification)


def test_a_dropped_raw_event_fails_the_event_log(index: Copy) -> None:
    index.sql("DELETE FROM events WHERE lot_id = 'S1' AND name = 'LotConsumed'")

    verification = index.verify("B1")

    assert failed_fields(verification) == {("S1", "LotConsumed", "missing from the index")}
    assert failed_checks(verification) == {("event_log_complete", "S1")}


# ---------------------------------------------------------------------- the chain alone, documents


def test_the_chain_alone_verifies_the_lineage(indexed: Indexed) -> None:
    reader = ChainReader(indexed.chain.w3, indexed.chain.client.address)

    verification = verify_on_chain(reader, "B1")

    assert verification is not None
    assert verification.verdict is Verdict.VERIFIED, verification.differences
    assert set(verification.lots_checked) == {"B1", "S1", "L2", "L1"}
    assert {"lot_state_replayed", "conservation", "assay_signature"} <= {c.name for c in verification.checks}
    assert verify_on_chain(reader, "NOPE") is None


def test_a_document_is_found_anchored_with_its_lot_account_and_block(index: Copy) -> None:
    engine = make_engine(index.url)
    try:
        reader = ChainReader(index.chain.w3, index.chain.client.address)
        with IndexClaimReader(engine).snapshot() as claims:
            anchored = verify_document(reader, claims, "0x" + index.ticket.hex())
            unknown = verify_document(reader, claims, "0x" + record("never anchored").hex())
    finally:
        engine.dispose()

    assert anchored.anchored
    [anchor] = anchored.anchors
    assert (anchor.lot_id, anchor.kind, anchor.anchored_by) == ("B1", "weighbridge", index.chain.processor)
    assert anchor.in_index
    assert anchor.where.block_number > 0
    assert not unknown.anchored
    assert unknown.anchors == ()


def test_an_honest_index_is_verified_on_both_engines(indexed: Indexed, db_url: str) -> None:
    """The claims are read in one snapshot (REPEATABLE READ on PostgreSQL, a WAL read on SQLite)."""
    engine = make_engine(db_url)
    try:
        indexed.chain.indexer(engine).sync()
        reader = ChainReader(indexed.chain.w3, indexed.chain.client.address)
        with IndexClaimReader(engine).snapshot() as claims:
            verification = verify_against_index(reader, claims, "B1")
    finally:
        engine.dispose()

    assert verification is not None
    assert verification.verdict is Verdict.VERIFIED, verification.differences


def test_logs_read_in_small_ranges_give_the_same_answer(indexed: Indexed) -> None:
    """Public nodes cap eth_getLogs ranges; the reader walks the chain in spans of `max_span` blocks."""
    reader = ChainReader(indexed.chain.w3, indexed.chain.client.address, max_span=3)

    verification = verify_on_chain(reader, "B1")

    assert verification is not None
    assert verification.verdict is Verdict.VERIFIED
    assert set(verification.lots_checked) == {"B1", "S1", "L2", "L1"}


def test_an_index_that_holds_nothing_cannot_be_verified(indexed: Indexed, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        reader = ChainReader(indexed.chain.w3, indexed.chain.client.address)
        with (
            IndexClaimReader(engine).snapshot() as claims,
            pytest.raises(IndexStateError, match="run the indexer"),
        ):
            verify_against_index(reader, claims, "B1")
    finally:
        engine.dispose()


def test_a_changed_status_fails_the_lot_status(index: Copy) -> None:
    index.sql("UPDATE lots SET status = 'active' WHERE lot_id = 'L1'")

    verification = index.verify("B1")

    assert failed_fields(verification) == {("L1", "status", "status")}
    difference = verification.differences[0]
    assert (difference.index_value, difference.chain_value) == ("active", "consumed")


def test_every_kind_of_event_verifies(tmp_path: Path) -> None:
    """tests/index_chain.full_history: attested loads, a cancelled offer, merge and process with losses,
    a pending offer, corrections (one voids a lot), and the lab's role revoked after its assay (the
    role is checked at the assay's block, so the assay stands)."""
    chain = IndexChain.fresh()
    full_history(chain)
    url = f"sqlite:///{tmp_path / 'full.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        chain.indexer(engine).sync()
        reader = ChainReader(chain.w3, chain.client.address)
        with IndexClaimReader(engine).snapshot() as claims:
            answers = {
                lot_id: verify_against_index(reader, claims, lot_id) for lot_id in ("P1", "P2", "A2", "A3")
            }
    finally:
        engine.dispose()

    for lot_id, verification in answers.items():
        assert verification is not None
        assert verification.verdict is Verdict.VERIFIED, (lot_id, verification.differences)
    p1 = answers["P1"]
    assert p1 is not None
    assert set(p1.lots_checked) == {"P1", "A3", "M1", "A1", "A2"}
    names = {check.name for check in p1.checks}
    assert {"event:LoadAttested", "event:CustodyOfferCancelled", "event:LotCorrected"} <= names
    [load] = [check for check in p1.checks if check.name == "load_signature"]
    assert load.lot_id == "A3"
    assert load.on_chain == {"signer": chain.device.address, "site": "PIT-A", "active": True}
    for lot_id in ("P1", "P2", "A2"):
        alone = verify_on_chain(reader, lot_id)
        assert alone is not None
        assert alone.verdict is Verdict.VERIFIED, (lot_id, alone.differences)


def test_a_row_placed_in_another_block_fails(index: Copy) -> None:
    """What a reorg the index missed leaves behind: a row naming a block hash the chain does not have."""
    index.sql("UPDATE documents SET block_hash = :other WHERE lot_id = 'B1'", other="0x" + "ee" * 32)

    verification = index.verify("B1")

    assert failed_fields(verification) == {("B1", "DocumentAnchored", "block_hash")}
