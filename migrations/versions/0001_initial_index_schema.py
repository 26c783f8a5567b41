"""initial index schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 20:48:40.893283
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_blocks")),
    )
    op.create_table(
        "chain_mirror",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("genesis_hash", sa.String(length=66), nullable=False),
        sa.Column("registry_address", sa.String(length=42), nullable=False),
        sa.Column("deployment_block", sa.BigInteger(), nullable=False),
        sa.Column("deployment_block_hash", sa.String(length=66), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_chain_mirror_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_mirror")),
    )
    op.create_table(
        "devices",
        sa.Column("device", sa.String(length=42), nullable=False),
        sa.Column("site", sa.String(length=66), nullable=False),
        sa.Column("kind", sa.String(length=66), nullable=False),
        sa.Column("added_by", sa.String(length=42), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("revoked_by", sa.String(length=42), nullable=True),
        sa.Column("revoked_block_number", sa.BigInteger(), nullable=True),
        sa.Column("revoked_block_hash", sa.String(length=66), nullable=True),
        sa.Column("revoked_tx_hash", sa.String(length=66), nullable=True),
        sa.Column("revoked_tx_index", sa.Integer(), nullable=True),
        sa.Column("revoked_log_index", sa.Integer(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("device", name=op.f("pk_devices")),
    )
    op.create_index(op.f("ix_devices_block_number"), "devices", ["block_number"], unique=False)
    op.create_index(
        op.f("ix_devices_revoked_block_number"), "devices", ["revoked_block_number"], unique=False
    )
    op.create_index(op.f("ix_devices_site"), "devices", ["site"], unique=False)
    op.create_table(
        "events",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("lot_id", sa.String(length=66), nullable=True),
        sa.Column("args", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_events")),
    )
    op.create_index(
        op.f("ix_events_block_number_tx_index_log_index"),
        "events",
        ["block_number", "tx_index", "log_index"],
        unique=False,
    )
    op.create_index(op.f("ix_events_lot_id"), "events", ["lot_id"], unique=False)
    op.create_table(
        "index_cursor",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_index_cursor_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_cursor")),
    )
    op.create_table(
        "role_changes",
        sa.Column("role", sa.String(length=66), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_role_changes")),
    )
    op.create_index(op.f("ix_role_changes_block_number"), "role_changes", ["block_number"], unique=False)
    op.create_index(
        op.f("ix_role_changes_role_account_block_number"),
        "role_changes",
        ["role", "account", "block_number"],
        unique=False,
    )
    op.create_table(
        "stock_counts",
        sa.Column("site", sa.String(length=66), nullable=False),
        sa.Column("counted_by", sa.String(length=42), nullable=False),
        sa.Column("counted_g", sa.BigInteger(), nullable=False),
        sa.Column("counted_at", sa.BigInteger(), nullable=False),
        sa.Column("record_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_stock_counts")),
    )
    op.create_index(op.f("ix_stock_counts_block_number"), "stock_counts", ["block_number"], unique=False)
    op.create_index(op.f("ix_stock_counts_site"), "stock_counts", ["site"], unique=False)
    op.create_table(
        "transformations",
        sa.Column("transform_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=66), nullable=False),
        sa.Column("operator", sa.String(length=42), nullable=False),
        sa.Column("loss_g", sa.BigInteger(), nullable=False),
        sa.Column("consumed_g", sa.BigInteger(), nullable=False),
        sa.Column("produced_g", sa.BigInteger(), nullable=False),
        sa.Column("record_hash", sa.String(length=66), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('split', 'merge', 'blend', 'process')", name=op.f("ck_transformations_kind")
        ),
        sa.CheckConstraint("consumed_g = produced_g + loss_g", name=op.f("ck_transformations_mass_balance")),
        sa.PrimaryKeyConstraint("transform_id", name=op.f("pk_transformations")),
    )
    op.create_index(
        op.f("ix_transformations_block_number"), "transformations", ["block_number"], unique=False
    )
    op.create_table(
        "lots",
        sa.Column("lot_id", sa.String(length=66), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=66), nullable=False),
        sa.Column("face", sa.String(length=66), nullable=True),
        sa.Column("commodity", sa.String(length=66), nullable=False),
        sa.Column("mass_g", sa.BigInteger(), nullable=False),
        sa.Column("grade_ppm", sa.Integer(), nullable=False),
        sa.Column("extracted_at", sa.BigInteger(), nullable=True),
        sa.Column("record_hash", sa.String(length=66), nullable=False),
        sa.Column("transform_id", sa.BigInteger(), nullable=True),
        sa.Column("creator", sa.String(length=42), nullable=False),
        sa.Column("custodian", sa.String(length=42), nullable=False),
        sa.Column("pending_custodian", sa.String(length=42), nullable=True),
        sa.Column("remaining_g", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.CheckConstraint("origin IN ('registered', 'transformed')", name=op.f("ck_lots_origin")),
        sa.CheckConstraint("status IN ('active', 'consumed', 'voided')", name=op.f("ck_lots_status")),
        sa.CheckConstraint("remaining_g >= 0", name=op.f("ck_lots_remaining_not_negative")),
        sa.ForeignKeyConstraint(
            ["transform_id"],
            ["transformations.transform_id"],
            name=op.f("fk_lots_transform_id_transformations"),
        ),
        sa.PrimaryKeyConstraint("lot_id", name=op.f("pk_lots")),
    )
    op.create_index(op.f("ix_lots_block_number"), "lots", ["block_number"], unique=False)
    op.create_index(op.f("ix_lots_custodian"), "lots", ["custodian"], unique=False)
    op.create_index(op.f("ix_lots_site"), "lots", ["site"], unique=False)
    op.create_index(op.f("ix_lots_transform_id"), "lots", ["transform_id"], unique=False)
    op.create_table(
        "assays",
        sa.Column("lot_id", sa.String(length=66), nullable=False),
        sa.Column("lab", sa.String(length=42), nullable=False),
        sa.Column("grade_ppm", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=66), nullable=False),
        sa.Column("certificate_hash", sa.String(length=66), nullable=False),
        sa.Column("assayed_at", sa.BigInteger(), nullable=False),
        sa.Column("submitter", sa.String(length=42), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.lot_id"], name=op.f("fk_assays_lot_id_lots")),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_assays")),
    )
    op.create_index(op.f("ix_assays_block_number"), "assays", ["block_number"], unique=False)
    op.create_index(op.f("ix_assays_lab"), "assays", ["lab"], unique=False)
    op.create_index(op.f("ix_assays_lot_id"), "assays", ["lot_id"], unique=False)
    op.create_table(
        "corrections",
        sa.Column("lot_id", sa.String(length=66), nullable=False),
        sa.Column("corrected_by", sa.String(length=42), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("adjustment_g", sa.BigInteger(), nullable=False),
        sa.Column("remaining_g", sa.BigInteger(), nullable=False),
        sa.Column("record_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "reason IN ('did_not_occur', 'incorrect_data')", name=op.f("ck_corrections_reason")
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.lot_id"], name=op.f("fk_corrections_lot_id_lots")),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_corrections")),
    )
    op.create_index(op.f("ix_corrections_block_number"), "corrections", ["block_number"], unique=False)
    op.create_index(op.f("ix_corrections_lot_id"), "corrections", ["lot_id"], unique=False)
    op.create_table(
        "custody_moves",
        sa.Column("lot_id", sa.String(length=66), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("from_address", sa.String(length=42), nullable=False),
        sa.Column("to_address", sa.String(length=42), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "action IN ('offered', 'cancelled', 'accepted')", name=op.f("ck_custody_moves_action")
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.lot_id"], name=op.f("fk_custody_moves_lot_id_lots")),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_custody_moves")),
    )
    op.create_index(op.f("ix_custody_moves_block_number"), "custody_moves", ["block_number"], unique=False)
    op.create_index(op.f("ix_custody_moves_lot_id"), "custody_moves", ["lot_id"], unique=False)
    op.create_table(
        "documents",
        sa.Column("lot_id", sa.String(length=66), nullable=False),
        sa.Column("document_hash", sa.String(length=66), nullable=False),
        sa.Column("kind", sa.String(length=66), nullable=False),
        sa.Column("anchored_by", sa.String(length=42), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.lot_id"], name=op.f("fk_documents_lot_id_lots")),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_documents")),
    )
    op.create_index(op.f("ix_documents_block_number"), "documents", ["block_number"], unique=False)
    op.create_index(op.f("ix_documents_document_hash"), "documents", ["document_hash"], unique=False)
    op.create_index(op.f("ix_documents_lot_id"), "documents", ["lot_id"], unique=False)
    op.create_table(
        "lineage_edges",
        sa.Column("output_lot_id", sa.String(length=66), nullable=False),
        sa.Column("input_lot_id", sa.String(length=66), nullable=False),
        sa.Column("transform_id", sa.BigInteger(), nullable=False),
        sa.Column("mass_g", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["input_lot_id"], ["lots.lot_id"], name=op.f("fk_lineage_edges_input_lot_id_lots")
        ),
        sa.ForeignKeyConstraint(
            ["output_lot_id"], ["lots.lot_id"], name=op.f("fk_lineage_edges_output_lot_id_lots")
        ),
        sa.ForeignKeyConstraint(
            ["transform_id"],
            ["transformations.transform_id"],
            name=op.f("fk_lineage_edges_transform_id_transformations"),
        ),
        sa.PrimaryKeyConstraint("output_lot_id", "input_lot_id", name=op.f("pk_lineage_edges")),
    )
    op.create_index(op.f("ix_lineage_edges_block_number"), "lineage_edges", ["block_number"], unique=False)
    op.create_index(op.f("ix_lineage_edges_input_lot_id"), "lineage_edges", ["input_lot_id"], unique=False)
    op.create_index(op.f("ix_lineage_edges_transform_id"), "lineage_edges", ["transform_id"], unique=False)
    op.create_table(
        "load_attestations",
        sa.Column("lot_id", sa.String(length=66), nullable=False),
        sa.Column("device", sa.String(length=42), nullable=False),
        sa.Column("trip_id", sa.String(length=66), nullable=False),
        sa.Column("loaded_at", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.lot_id"], name=op.f("fk_load_attestations_lot_id_lots")),
        sa.PrimaryKeyConstraint("tx_hash", "log_index", name=op.f("pk_load_attestations")),
        sa.UniqueConstraint("lot_id", name=op.f("uq_load_attestations_lot_id")),
    )
    op.create_index(
        op.f("ix_load_attestations_block_number"), "load_attestations", ["block_number"], unique=False
    )
    op.create_index(op.f("ix_load_attestations_device"), "load_attestations", ["device"], unique=False)
    op.create_table(
        "transform_inputs",
        sa.Column("transform_id", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.String(length=66), nullable=False),
        sa.Column("mass_g", sa.BigInteger(), nullable=False),
        sa.Column("remaining_g", sa.BigInteger(), nullable=False),
        sa.Column("loss_g", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.lot_id"], name=op.f("fk_transform_inputs_lot_id_lots")),
        sa.ForeignKeyConstraint(
            ["transform_id"],
            ["transformations.transform_id"],
            name=op.f("fk_transform_inputs_transform_id_transformations"),
        ),
        sa.PrimaryKeyConstraint("transform_id", "lot_id", name=op.f("pk_transform_inputs")),
    )
    op.create_index(
        op.f("ix_transform_inputs_block_number"), "transform_inputs", ["block_number"], unique=False
    )
    op.create_index(op.f("ix_transform_inputs_lot_id"), "transform_inputs", ["lot_id"], unique=False)


def downgrade() -> None:

    op.drop_index(op.f("ix_transform_inputs_lot_id"), table_name="transform_inputs")
    op.drop_index(op.f("ix_transform_inputs_block_number"), table_name="transform_inputs")
    op.drop_table("transform_inputs")
    op.drop_index(op.f("ix_load_attestations_device"), table_name="load_attestations")
    op.drop_index(op.f("ix_load_attestations_block_number"), table_name="load_attestations")
    op.drop_table("load_attestations")
    op.drop_index(op.f("ix_lineage_edges_transform_id"), table_name="lineage_edges")
    op.drop_index(op.f("ix_lineage_edges_input_lot_id"), table_name="lineage_edges")
    op.drop_index(op.f("ix_lineage_edges_block_number"), table_name="lineage_edges")
    op.drop_table("lineage_edges")
    op.drop_index(op.f("ix_documents_lot_id"), table_name="documents")
    op.drop_index(op.f("ix_documents_document_hash"), table_name="documents")
    op.drop_index(op.f("ix_documents_block_number"), table_name="documents")
    op.drop_table("documents")
    op.drop_index(op.f("ix_custody_moves_lot_id"), table_name="custody_moves")
    op.drop_index(op.f("ix_custody_moves_block_number"), table_name="custody_moves")
    op.drop_table("custody_moves")
    op.drop_index(op.f("ix_corrections_lot_id"), table_name="corrections")
    op.drop_index(op.f("ix_corrections_block_number"), table_name="corrections")
    op.drop_table("corrections")
    op.drop_index(op.f("ix_assays_lot_id"), table_name="assays")
    op.drop_index(op.f("ix_assays_lab"), table_name="assays")
    op.drop_index(op.f("ix_assays_block_number"), table_name="assays")
    op.drop_table("assays")
    op.drop_index(op.f("ix_lots_transform_id"), table_name="lots")
    op.drop_index(op.f("ix_lots_site"), table_name="lots")
    op.drop_index(op.f("ix_lots_custodian"), table_name="lots")
    op.drop_index(op.f("ix_lots_block_number"), table_name="lots")
    op.drop_table("lots")
    op.drop_index(op.f("ix_transformations_block_number"), table_name="transformations")
    op.drop_table("transformations")
    op.drop_index(op.f("ix_stock_counts_site"), table_name="stock_counts")
    op.drop_index(op.f("ix_stock_counts_block_number"), table_name="stock_counts")
    op.drop_table("stock_counts")
    op.drop_index(op.f("ix_role_changes_role_account_block_number"), table_name="role_changes")
    op.drop_index(op.f("ix_role_changes_block_number"), table_name="role_changes")
    op.drop_table("role_changes")
    op.drop_table("index_cursor")
    op.drop_index(op.f("ix_events_lot_id"), table_name="events")
    op.drop_index(op.f("ix_events_block_number_tx_index_log_index"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_devices_site"), table_name="devices")
    op.drop_index(op.f("ix_devices_revoked_block_number"), table_name="devices")
    op.drop_index(op.f("ix_devices_block_number"), table_name="devices")
    op.drop_table("devices")
    op.drop_table("chain_mirror")
    op.drop_table("blocks")
