"""write path: API credentials, operations, the transaction outbox, account nonces

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 20:59:59.675244
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "status IN ('pending', 'sent', 'confirmed', 'failed')"


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "account_nonces",
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("next_nonce", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sender", name=op.f("pk_account_nonces")),
    )
    op.create_table(
        "api_credentials",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("key_ref", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_credentials")),
        sa.UniqueConstraint("name", name=op.f("uq_api_credentials_name")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_credentials_token_sha256")),
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("credential_id", sa.String(length=36), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_name", sa.String(length=64), nullable=True),
        sa.Column("error_args", _json(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(STATUSES, name=op.f("ck_operations_status")),
        sa.ForeignKeyConstraint(
            ["credential_id"],
            ["api_credentials.id"],
            name=op.f("fk_operations_credential_id_api_credentials"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
        sa.UniqueConstraint(
            "credential_id", "idempotency_key", name=op.f("uq_operations_credential_id_idempotency_key")
        ),
    )
    op.create_index(
        op.f("ix_operations_status_created_at"), "operations", ["status", "created_at"], unique=False
    )
    op.create_table(
        "outbox_transactions",
        sa.Column("operation_id", sa.String(length=36), nullable=False),
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("item_start", sa.Integer(), nullable=True),
        sa.Column("item_end", sa.Integer(), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("raw_tx", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("error_name", sa.String(length=64), nullable=True),
        sa.Column("error_args", _json(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint(STATUSES, name=op.f("ck_outbox_transactions_status")),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_outbox_transactions_operation_id_operations"),
        ),
        sa.PrimaryKeyConstraint("operation_id", "sequence", name=op.f("pk_outbox_transactions")),
        sa.UniqueConstraint("sender", "nonce", name=op.f("uq_outbox_transactions_sender_nonce")),
    )
    op.create_index(
        op.f("ix_outbox_transactions_block_number"), "outbox_transactions", ["block_number"], unique=False
    )
    op.create_index(op.f("ix_outbox_transactions_status"), "outbox_transactions", ["status"], unique=False)
    op.create_index(op.f("ix_outbox_transactions_tx_hash"), "outbox_transactions", ["tx_hash"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_transactions_tx_hash"), table_name="outbox_transactions")
    op.drop_index(op.f("ix_outbox_transactions_status"), table_name="outbox_transactions")
    op.drop_index(op.f("ix_outbox_transactions_block_number"), table_name="outbox_transactions")
    op.drop_table("outbox_transactions")
    op.drop_index(op.f("ix_operations_status_created_at"), table_name="operations")
    op.drop_table("operations")
    op.drop_table("api_credentials")
    op.drop_table("account_nonces")
