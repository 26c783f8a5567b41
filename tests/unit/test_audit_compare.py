"""Every index table's differing row is named by the audit, whatever its key looks like."""

from __future__ import annotations

from typing import Any

import pytest

from provenance.audit.compare import row_findings
from provenance.index.models import Base
from provenance.index.snapshot import RowDifference
from provenance.index.tables import INDEX_TABLES


def _key_columns(table: str) -> list[str]:
    return [column.name for column in Base.metadata.tables[table].primary_key.columns]


@pytest.mark.parametrize("table", INDEX_TABLES)
def test_a_row_only_in_the_index_is_named_for_every_table(table: str) -> None:
    key: dict[str, Any] = {
        name: f"0x{index:064x}" if "hash" in name else index + 1
        for index, name in enumerate(_key_columns(table))
    }
    difference = RowDifference(table=table, key=key, kind="only_left", left=dict(key), right=None)

    [finding] = row_findings([difference])

    assert "only in index" in finding.message
    assert finding.details["table"] == table
