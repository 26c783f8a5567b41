"""Every registry event's effect on the index, on SQLite and PostgreSQL.

One history (see `tests.index_chain.full_history`) emits every event type; it is indexed once per
engine and each test reads one aspect of the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, and_, select

from provenance.index.db import make_engine, upgrade
from provenance.index.models import (
    AssayRecord,
    Block,
    ChainMirror,
    Correction,
    CustodyMove,
    Device,
    Document,
    Event,
    IndexCursor,
    LineageEdge,
    LoadAttestationRecord,
    Lot,
    RoleChange,
    StockCount,
    Transformation,
    TransformInput,
)
from provenance.index.snapshot import index_snapshot
from tests.dbs import ENGINES, empty_database
from tests.index_chain import EXTRACTED_AT, SITE, FullHistory, IndexChain, full_history, hex32


@dataclass
class Indexed:
    chain: IndexChain
    history: FullHistory
    engine: Engine

    def rows(self, statement: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(statement))

    def lot(self, lot_id: str) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(select(Lot).where(Lot.lot_id == lot_id)).one()


@pytest.fixture(scope="module")
def history_chain() -> tuple[IndexChain, FullHistory]:
    chain = IndexChain.fresh()
    return chain, full_history(chain)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(kind, marks=[pytest.mark.postgres] if kind == "postgresql" else []) for kind in ENGINES
    ],
)
def indexed(
    request: pytest.FixtureRequest,
    history_chain: tuple[IndexChain, FullHistory],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Indexed]:
    chain, history = history_chain
    directory: Path = tmp_path_factory.mktemp("index")
    with empty_database(request.param, directory) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            chain.indexer(engine).sync()
            yield Indexed(chain, history, engine)
        finally:
            engine.dispose()


# ---------------------------------------------------------------------- lots


def test_registered_lots_take_site_and_custodian_from_their_batch(indexed: Indexed) -> None:
    chain = indexed.chain
    a1 = indexed.lot("A1")

    assert (a1.origin, a1.site, a1.face, a1.commodity) == ("registered", SITE, "F1", "Au-ore")
    assert (a1.mass_g, a1.grade_ppm, a1.extracted_at) == (1_000, 5_000, EXTRACTED_AT)
    assert a1.creator == chain.registrar
    assert a1.record_hash == hex32("A1")
    assert a1.transform_id is None
    assert indexed.lot("A3").face == "F2"


def test_lot_current_state_follows_consumption_custody_and_corrections(indexed: Indexed) -> None:
    chain = indexed.chain
    state = {
        lot_id: (lot.custodian, lot.pending_custodian, lot.remaining_g, lot.status)
        for lot_id in ("A1", "A2", "A3", "M1", "P1", "P2")
        for lot in [indexed.lot(lot_id)]
    }

    assert state == {
        "A1": (chain.processor, None, 0, "consumed"),
        "A2": (chain.processor, None, 0, "voided"),
        "A3": (chain.processor, None, 0, "consumed"),
        "M1": (chain.processor, None, 0, "consumed"),
        "P1": (chain.buyer, None, 3_000, "active"),
        "P2": (chain.processor, chain.buyer, 1_900, "active"),
    }


def test_output_lots_record_the_transformation_that_made_them(indexed: Indexed) -> None:
    p1 = indexed.lot("P1")

    assert (p1.origin, p1.transform_id, p1.site, p1.face, p1.extracted_at) == (
        "transformed",
        2,
        SITE,
        None,
        None,
    )
    assert (p1.commodity, p1.mass_g, p1.grade_ppm, p1.creator) == (
        "Au-conc",
        3_000,
        9_000,
        indexed.chain.processor,
    )


# ---------------------------------------------------------------------- transformations and lineage


def test_transformations_record_kind_operator_and_their_loss(indexed: Indexed) -> None:
    rows = indexed.rows(
        select(
            Transformation.transform_id,
            Transformation.kind,
            Transformation.site,
            Transformation.operator,
            Transformation.consumed_g,
            Transformation.produced_g,
            Transformation.loss_g,
        ).order_by(Transformation.transform_id)
    )
    processor = indexed.chain.processor

    assert [tuple(row) for row in rows] == [
        (1, "merge", SITE, processor, 2_500, 2_400, 100),
        (2, "process", SITE, processor, 5_400, 5_000, 400),
    ]


def test_inputs_record_what_they_gave_what_they_kept_and_their_share_of_the_loss(indexed: Indexed) -> None:
    rows = indexed.rows(
        select(
            TransformInput.transform_id,
            TransformInput.lot_id,
            TransformInput.mass_g,
            TransformInput.remaining_g,
            TransformInput.loss_g,
        ).order_by(TransformInput.transform_id, TransformInput.lot_id)
    )

    assert [tuple(row) for row in rows] == [
        (1, "A1", 1_000, 0, 40),
        (1, "A2", 1_500, 500, 60),
        (2, "A3", 3_000, 0, 222),
        (2, "M1", 2_400, 0, 178),
    ]


def test_lineage_edges_share_each_output_among_its_inputs_in_whole_grams(indexed: Indexed) -> None:
    rows = indexed.rows(
        select(
            LineageEdge.input_lot_id, LineageEdge.output_lot_id, LineageEdge.transform_id, LineageEdge.mass_g
        )
    )

    assert sorted(tuple(row) for row in rows) == [
        ("A1", "M1", 1, 960),
        ("A2", "M1", 1, 1_440),
        ("A3", "P1", 2, 1_667),
        ("A3", "P2", 2, 1_111),
        ("M1", "P1", 2, 1_333),
        ("M1", "P2", 2, 889),
    ]


def test_each_edge_carries_the_coordinates_of_its_output_lots_creation(indexed: Indexed) -> None:
    rows = indexed.rows(
        select(
            LineageEdge.output_lot_id, LineageEdge.tx_hash, LineageEdge.log_index, Lot.tx_hash, Lot.log_index
        ).join(Lot, Lot.lot_id == LineageEdge.output_lot_id)
    )

    assert rows
    assert all((row[1], row[2]) == (row[3], row[4]) for row in rows)


# ---------------------------------------------------------------------- custody, assays, documents


def test_custody_moves_record_every_offer_cancellation_and_acceptance(indexed: Indexed) -> None:
    chain = indexed.chain
    moves = indexed.rows(
        select(CustodyMove.action, CustodyMove.from_address, CustodyMove.to_address)
        .where(CustodyMove.lot_id == "A3")
        .order_by(CustodyMove.block_number, CustodyMove.tx_index, CustodyMove.log_index)
    )

    assert [tuple(move) for move in moves] == [
        ("offered", chain.registrar, chain.processor),
        ("cancelled", chain.registrar, chain.processor),
        ("offered", chain.registrar, chain.processor),
        ("accepted", chain.registrar, chain.processor),
    ]


def test_an_assay_keeps_the_lab_its_result_and_the_signature_to_recheck(indexed: Indexed) -> None:
    chain = indexed.chain
    (assay,) = indexed.rows(select(AssayRecord))

    assert (assay.lot_id, assay.lab, assay.grade_ppm, assay.method) == (
        "P1",
        chain.lab.address,
        4_800,
        "FireAssay",
    )
    assert (assay.certificate_hash, assay.assayed_at, assay.submitter) == (
        hex32("certificate P1"),
        EXTRACTED_AT + 7_200,
        chain.buyer,
    )
    assert assay.signature.startswith("0x")
    assert len(assay.signature) == 2 + 2 * 65


def test_a_document_is_anchored_to_its_lot_by_its_custodian(indexed: Indexed) -> None:
    (document,) = indexed.rows(select(Document))

    assert (document.lot_id, document.document_hash, document.kind, document.anchored_by) == (
        "P1",
        hex32("ticket P1"),
        "weighbridge",
        indexed.chain.processor,
    )


def test_a_device_measured_lot_names_the_device_and_the_trip(indexed: Indexed) -> None:
    (attestation,) = indexed.rows(select(LoadAttestationRecord))

    assert (attestation.lot_id, attestation.device, attestation.trip_id, attestation.loaded_at) == (
        "A3",
        indexed.chain.device.address,
        "TRIP-7",
        EXTRACTED_AT + 60,
    )


def test_corrections_record_reason_adjustment_and_what_remained(indexed: Indexed) -> None:
    chain = indexed.chain
    rows = indexed.rows(
        select(
            Correction.lot_id,
            Correction.corrected_by,
            Correction.reason,
            Correction.adjustment_g,
            Correction.remaining_g,
        ).order_by(Correction.block_number)
    )

    assert [tuple(row) for row in rows] == [
        ("P2", chain.processor, "incorrect_data", -100, 1_900),
        ("A2", chain.admin, "did_not_occur", -500, 0),
    ]


# ---------------------------------------------------------------------- devices, counts, roles


def test_a_revoked_device_keeps_when_it_was_added_and_records_its_revocation(indexed: Indexed) -> None:
    chain = indexed.chain
    (device,) = indexed.rows(select(Device))

    assert (device.device, device.site, device.kind, device.added_by) == (
        chain.device.address,
        SITE,
        "haul-truck",
        chain.admin,
    )
    assert device.block_number == indexed.history.device_added_block
    assert device.active is False
    assert (device.revoked_by, device.revoked_block_number) == (
        chain.admin,
        indexed.history.device_revoked_block,
    )


def test_a_stock_count_is_recorded_for_its_site(indexed: Indexed) -> None:
    (count,) = indexed.rows(select(StockCount))

    assert (count.site, count.counted_by, count.counted_g, count.counted_at) == (
        SITE,
        indexed.chain.registrar,
        5_000,
        EXTRACTED_AT + 86_400,
    )


def held_role_at(indexed: Indexed, role: bytes, account: str, block: int) -> bool:
    """Did `account` hold `role` at `block`? The latest grant or revocation at or before it decides."""
    latest = indexed.rows(
        select(RoleChange.granted)
        .where(
            and_(
                RoleChange.role == "0x" + role.hex(),
                RoleChange.account == account,
                RoleChange.block_number <= block,
            )
        )
        .order_by(RoleChange.block_number.desc(), RoleChange.tx_index.desc(), RoleChange.log_index.desc())
        .limit(1)
    )
    return bool(latest and latest[0].granted)


def test_role_changes_answer_whether_an_account_held_a_role_at_a_block(indexed: Indexed) -> None:
    chain, history = indexed.chain, indexed.history
    lab_role = chain.client.role("LAB_ROLE")
    lab = chain.lab.address

    assert not held_role_at(indexed, lab_role, lab, history.lab_granted_block - 1)
    assert held_role_at(indexed, lab_role, lab, history.lab_granted_block)
    assert held_role_at(indexed, lab_role, lab, history.lab_revoked_block - 1)
    assert not held_role_at(indexed, lab_role, lab, history.lab_revoked_block)
    for block in (history.lab_granted_block, history.lab_revoked_block):
        assert held_role_at(indexed, lab_role, lab, block) == chain.client.has_role(lab_role, lab, block)
    assert held_role_at(indexed, b"\0" * 32, chain.admin, chain.deployment.block_number)


# ---------------------------------------------------------------------- the event log


def test_the_event_log_holds_every_registry_log_on_chain(indexed: Indexed) -> None:
    chain = indexed.chain
    logs = chain.w3.eth.get_logs({"address": chain.client.address, "fromBlock": 0, "toBlock": "latest"})
    rows = indexed.rows(
        select(Event.tx_hash, Event.log_index, Event.block_number, Event.block_hash, Event.name)
    )

    assert {(row[0], row[1]) for row in rows} == {
        (entry["transactionHash"].to_0x_hex(), entry["logIndex"]) for entry in logs
    }
    assert {row.name for row in rows} >= {
        "LotsRegistered",
        "LotRegistered",
        "LoadAttested",
        "LotsTransformed",
        "LotConsumed",
        "LotCreated",
        "CustodyOffered",
        "CustodyOfferCancelled",
        "CustodyAccepted",
        "AssayRecorded",
        "DocumentAnchored",
        "DeviceAdded",
        "DeviceRevoked",
        "LotCorrected",
        "StockCounted",
        "RoleGranted",
        "RoleRevoked",
        "Paused",
        "Unpaused",
    }


def test_logged_arguments_are_decoded_to_their_domain_form(indexed: Indexed) -> None:
    rows = indexed.rows(
        select(Event.args, Event.lot_id).where(Event.name == "LotRegistered", Event.lot_id == "A1")
    )
    (args, lot_id) = rows[0]

    assert lot_id == "A1"
    assert (args["lotId"], args["face"], args["commodity"]) == ("A1", "F1", "Au-ore")
    assert (args["massG"], args["gradePpm"], args["extractedAt"]) == (1_000, 5_000, EXTRACTED_AT)
    assert args["measurement"] == 1_000 | 5_000 << 96 | EXTRACTED_AT << 128
    assert args["recordHash"] == hex32("A1")


def test_every_derived_row_points_at_an_event_of_its_block(indexed: Indexed) -> None:
    snapshot_tables = {
        "assays",
        "corrections",
        "custody_moves",
        "devices",
        "documents",
        "lineage_edges",
        "load_attestations",
        "lots",
        "role_changes",
        "stock_counts",
        "transform_inputs",
        "transformations",
    }
    events = {
        (row.tx_hash, row.log_index): (row.block_number, row.block_hash)
        for row in indexed.rows(select(Event.tx_hash, Event.log_index, Event.block_number, Event.block_hash))
    }
    snapshot = index_snapshot(indexed.engine)
    from provenance.index.models import Base

    for name in snapshot_tables:
        columns = [column.name for column in Base.metadata.tables[name].columns]
        assert snapshot[name], name
        for values in snapshot[name]:
            row = dict(zip(columns, values, strict=True))
            assert events[(row["tx_hash"], row["log_index"])] == (row["block_number"], row["block_hash"]), (
                name
            )


def test_the_mirror_cursor_and_block_hashes_describe_the_chain_indexed(indexed: Indexed) -> None:
    chain = indexed.chain
    (mirror,) = indexed.rows(select(ChainMirror))
    (cursor,) = indexed.rows(select(IndexCursor))
    blocks = indexed.rows(select(Block.number, Block.hash).order_by(Block.number))

    assert (mirror.chain_id, mirror.genesis_hash, mirror.registry_address, mirror.deployment_block) == (
        chain.deployment.chain_id,
        chain.deployment.genesis_hash,
        chain.deployment.registry,
        chain.deployment.block_number,
    )
    assert (cursor.block_number, cursor.block_hash) == (
        chain.head,
        chain.w3.eth.get_block(chain.head)["hash"].to_0x_hex(),
    )
    assert [row.number for row in blocks] == list(range(chain.deployment.block_number, chain.head + 1))
    assert all(row.hash == chain.w3.eth.get_block(row.number)["hash"].to_0x_hex() for row in blocks)
