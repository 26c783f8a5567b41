"""The SQL index of the registry: typed SQLAlchemy 2 models, the same on SQLite and PostgreSQL.

Three kinds of table:

* bookkeeping: the chain mirrored (`chain_mirror`), the cursor (`index_cursor`), the hashes of
  recent blocks (`blocks`);
* the append-only event log (`events`): every decoded registry event, keyed (tx_hash, log_index);
* rows derived from it. Every derived row carries the chain coordinates of the event it comes
  from (block_number, block_hash, tx_hash, tx_index, log_index), so a reorg can delete it by
  block number. Current-state columns (a lot's custodian, pending custodian, remaining mass,
  status; a device's revocation) are a cache of the event log, recomputed on rollback.

Masses are integer grams in BIGINT (the contract allows uint96; the indexer halts loudly on a
value beyond 2^63-1 rather than store it wrong). Hashes and addresses are 0x-hex text, addresses
checksummed; bytes32 labels (lot ids, sites, commodities) are their text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

HASH = 66
"""0x + 64 hex digits."""
ADDRESS = 42
LABEL = 66
"""A bytes32 label's text (at most 32 characters), or its 0x-hex when it is not text."""
NAME = 32

JsonArgs = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ChainCoordinates:
    """Where on chain a row comes from: the event's block, transaction and log."""

    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str] = mapped_column(String(HASH))
    tx_hash: Mapped[str] = mapped_column(String(HASH))
    tx_index: Mapped[int] = mapped_column(Integer)
    log_index: Mapped[int] = mapped_column(Integer)


class EventKeyed(ChainCoordinates):
    """A row per event: keyed like the event log."""

    tx_hash: Mapped[str] = mapped_column(String(HASH), primary_key=True)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True)


# ---------------------------------------------------------------------- bookkeeping


class ChainMirror(Base):
    """The one chain and registry this database mirrors (a single row)."""

    __tablename__ = "chain_mirror"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    genesis_hash: Mapped[str] = mapped_column(String(HASH))
    registry_address: Mapped[str] = mapped_column(String(ADDRESS))
    deployment_block: Mapped[int] = mapped_column(BigInteger)
    deployment_block_hash: Mapped[str] = mapped_column(String(HASH))


class IndexCursor(Base):
    """The last block whose events are all in the index (a single row)."""

    __tablename__ = "index_cursor"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(HASH))


class Block(Base):
    """Hashes of the indexed blocks within the reorg window (and of older ones with events,
    until pruned): what a reorg is detected and rolled back against."""

    __tablename__ = "blocks"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(HASH))


class BlockTime(Base):
    """The header timestamp of every block that holds an indexed event: event times and time
    filters (EPCIS, mass balances, reports) read them here, never from the node inside a read."""

    __tablename__ = "block_times"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    timestamp: Mapped[int] = mapped_column(BigInteger, index=True)


# ---------------------------------------------------------------------- the event log


class Event(EventKeyed, Base):
    """Every decoded registry event, append-only; `lot_id` is set for events about one lot."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "block_number", "tx_index", "log_index"),)

    block_number: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(NAME))
    lot_id: Mapped[str | None] = mapped_column(String(LABEL), index=True)
    args: Mapped[dict[str, Any]] = mapped_column(JsonArgs)


# ---------------------------------------------------------------------- lots and lineage


class Transformation(ChainCoordinates, Base):
    """A split, merge, blend or process step (its LotsTransformed event), with its mass balance."""

    __tablename__ = "transformations"
    __table_args__ = (
        CheckConstraint("kind IN ('split', 'merge', 'blend', 'process')", name="kind"),
        CheckConstraint("consumed_g = produced_g + loss_g", name="mass_balance"),
    )

    transform_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(LABEL))
    operator: Mapped[str] = mapped_column(String(ADDRESS))
    loss_g: Mapped[int] = mapped_column(BigInteger)
    consumed_g: Mapped[int] = mapped_column(BigInteger)
    produced_g: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(HASH))


class Lot(ChainCoordinates, Base):
    """A lot: its origin attributes (from LotRegistered or LotCreated, whose coordinates the row
    carries) and its current state (a cache of the event log)."""

    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("origin IN ('registered', 'transformed')", name="origin"),
        CheckConstraint("status IN ('active', 'consumed', 'voided')", name="status"),
        CheckConstraint("remaining_g >= 0", name="remaining_not_negative"),
        # Keyset pages of lots in (creation block, lot id) order: all, by site, by site and status,
        # by custodian (migration 0003).
        Index(None, "block_number", "lot_id"),
        Index(None, "site", "block_number", "lot_id"),
        Index(None, "site", "status", "block_number", "lot_id"),
        Index(None, "custodian", "block_number", "lot_id"),
    )

    lot_id: Mapped[str] = mapped_column(String(LABEL), primary_key=True)
    origin: Mapped[str] = mapped_column(String(16))
    site: Mapped[str] = mapped_column(String(LABEL), index=True)
    face: Mapped[str | None] = mapped_column(String(LABEL))
    commodity: Mapped[str] = mapped_column(String(LABEL))
    mass_g: Mapped[int] = mapped_column(BigInteger)
    grade_ppm: Mapped[int] = mapped_column(Integer)
    extracted_at: Mapped[int | None] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(HASH))
    transform_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("transformations.transform_id"), index=True
    )
    creator: Mapped[str] = mapped_column(String(ADDRESS))
    custodian: Mapped[str] = mapped_column(String(ADDRESS), index=True)
    pending_custodian: Mapped[str | None] = mapped_column(String(ADDRESS))
    remaining_g: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))


class TransformInput(ChainCoordinates, Base):
    """What a transformation consumed of one lot (its LotConsumed event), and the share of the
    transformation's loss charged to it (see provenance.domain.lineage)."""

    __tablename__ = "transform_inputs"

    transform_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("transformations.transform_id"), primary_key=True
    )
    lot_id: Mapped[str] = mapped_column(
        String(LABEL), ForeignKey("lots.lot_id"), primary_key=True, index=True
    )
    mass_g: Mapped[int] = mapped_column(BigInteger)
    remaining_g: Mapped[int] = mapped_column(BigInteger)
    loss_g: Mapped[int] = mapped_column(BigInteger)


class LineageEdge(ChainCoordinates, Base):
    """Grams of an input lot in an output lot (coordinates of the output's LotCreated event)."""

    __tablename__ = "lineage_edges"

    output_lot_id: Mapped[str] = mapped_column(String(LABEL), ForeignKey("lots.lot_id"), primary_key=True)
    input_lot_id: Mapped[str] = mapped_column(
        String(LABEL), ForeignKey("lots.lot_id"), primary_key=True, index=True
    )
    transform_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("transformations.transform_id"), index=True
    )
    mass_g: Mapped[int] = mapped_column(BigInteger)


# ---------------------------------------------------------------------- per-lot records


class CustodyMove(EventKeyed, Base):
    """A step of a handover: offered, cancelled or accepted."""

    __tablename__ = "custody_moves"
    __table_args__ = (CheckConstraint("action IN ('offered', 'cancelled', 'accepted')", name="action"),)

    lot_id: Mapped[str] = mapped_column(String(LABEL), ForeignKey("lots.lot_id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    from_address: Mapped[str] = mapped_column(String(ADDRESS))
    to_address: Mapped[str] = mapped_column(String(ADDRESS))


class AssayRecord(EventKeyed, Base):
    """A lab's signed assay of a lot."""

    __tablename__ = "assays"

    lot_id: Mapped[str] = mapped_column(String(LABEL), ForeignKey("lots.lot_id"), index=True)
    lab: Mapped[str] = mapped_column(String(ADDRESS), index=True)
    grade_ppm: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(LABEL))
    certificate_hash: Mapped[str] = mapped_column(String(HASH))
    assayed_at: Mapped[int] = mapped_column(BigInteger)
    submitter: Mapped[str] = mapped_column(String(ADDRESS))
    signature: Mapped[str] = mapped_column(Text)


class Document(EventKeyed, Base):
    """A document hash anchored to a lot."""

    __tablename__ = "documents"

    lot_id: Mapped[str] = mapped_column(String(LABEL), ForeignKey("lots.lot_id"), index=True)
    document_hash: Mapped[str] = mapped_column(String(HASH), index=True)
    kind: Mapped[str] = mapped_column(String(LABEL))
    anchored_by: Mapped[str] = mapped_column(String(ADDRESS))


class LoadAttestationRecord(EventKeyed, Base):
    """A lot whose mass a device measured and signed, on one truck trip."""

    __tablename__ = "load_attestations"

    lot_id: Mapped[str] = mapped_column(String(LABEL), ForeignKey("lots.lot_id"), unique=True)
    device: Mapped[str] = mapped_column(String(ADDRESS), index=True)
    trip_id: Mapped[str] = mapped_column(String(LABEL))
    loaded_at: Mapped[int] = mapped_column(BigInteger)


class Correction(EventKeyed, Base):
    """A declaration that a lot's record was wrong, with the mass adjustment it made."""

    __tablename__ = "corrections"
    __table_args__ = (CheckConstraint("reason IN ('did_not_occur', 'incorrect_data')", name="reason"),)

    lot_id: Mapped[str] = mapped_column(String(LABEL), ForeignKey("lots.lot_id"), index=True)
    corrected_by: Mapped[str] = mapped_column(String(ADDRESS))
    reason: Mapped[str] = mapped_column(String(16))
    adjustment_g: Mapped[int] = mapped_column(BigInteger)
    remaining_g: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(HASH))


# ---------------------------------------------------------------------- sites, devices, roles


class Device(ChainCoordinates, Base):
    """A device that may attest loads at a site (coordinates of its DeviceAdded event); a
    revocation fills the revoked_* columns."""

    __tablename__ = "devices"

    device: Mapped[str] = mapped_column(String(ADDRESS), primary_key=True)
    site: Mapped[str] = mapped_column(String(LABEL), index=True)
    kind: Mapped[str] = mapped_column(String(LABEL))
    added_by: Mapped[str] = mapped_column(String(ADDRESS))
    active: Mapped[bool] = mapped_column(Boolean)
    revoked_by: Mapped[str | None] = mapped_column(String(ADDRESS))
    revoked_block_number: Mapped[int | None] = mapped_column(BigInteger, index=True)
    revoked_block_hash: Mapped[str | None] = mapped_column(String(HASH))
    revoked_tx_hash: Mapped[str | None] = mapped_column(String(HASH))
    revoked_tx_index: Mapped[int | None] = mapped_column(Integer)
    revoked_log_index: Mapped[int | None] = mapped_column(Integer)


class StockCount(EventKeyed, Base):
    """A physical stock count at a site."""

    __tablename__ = "stock_counts"

    site: Mapped[str] = mapped_column(String(LABEL), index=True)
    counted_by: Mapped[str] = mapped_column(String(ADDRESS))
    counted_g: Mapped[int] = mapped_column(BigInteger)
    counted_at: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(HASH))


class RoleChange(EventKeyed, Base):
    """A role granted or revoked. Whether `account` held `role` at block B: the latest change
    at or before B (by block_number, tx_index, log_index) is a grant."""

    __tablename__ = "role_changes"
    __table_args__ = (Index(None, "role", "account", "block_number"),)

    role: Mapped[str] = mapped_column(String(HASH))
    account: Mapped[str] = mapped_column(String(ADDRESS))
    sender: Mapped[str] = mapped_column(String(ADDRESS))
    granted: Mapped[bool] = mapped_column(Boolean)
