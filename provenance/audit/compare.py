"""The live index against a fresh rebuild from the chain: each differing row named by what it is.

A differing row becomes a finding whose subject a person recognises ("lot X", "edge A→B",
"event 0x…:3") and whose message gives both values: "lot X: mass_g index=1000 chain=900".
"""

from __future__ import annotations

from typing import Any, Protocol

from provenance.audit.report import Finding

INDEX, CHAIN = "index", "chain"


class RowDifferenceView(Protocol):
    """`provenance.index.snapshot.RowDifference`: left is the live index, right the rebuild."""

    @property
    def table(self) -> str: ...
    @property
    def key(self) -> dict[str, Any]: ...
    @property
    def kind(self) -> str: ...
    @property
    def left(self) -> dict[str, Any] | None: ...
    @property
    def right(self) -> dict[str, Any] | None: ...
    @property
    def changed(self) -> tuple[tuple[str, Any, Any], ...]: ...


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] + "…" if text.startswith("0x") and len(text) > 20 else text


def subject_of(difference: RowDifferenceView) -> str:
    key, row = difference.key, difference.left or difference.right or {}
    table = difference.table
    if table == "lots":
        return f"lot {key['lot_id']}"
    if table == "lineage_edges":
        return f"edge {key['input_lot_id']}→{key['output_lot_id']}"
    if table == "transformations":
        return f"transformation {key['transform_id']}"
    if table == "transform_inputs":
        return f"input lot {key['lot_id']} of transformation {key['transform_id']}"
    if table == "devices":
        return f"device {key['device']}"
    if table == "epcis_event_ids":
        return (
            f"stored EPCIS event block {key['block_number']} tx {key['tx_index']} log {key['log_index']} "
            f"part {key['part']}"
        )
    if "tx_hash" not in key or "log_index" not in key:
        return f"{table} {', '.join(f'{k}={_short(v)}' for k, v in key.items())}"
    where = f"tx {_short(key['tx_hash'])} log {key['log_index']}"
    if table == "events":
        return f"event {row.get('name', '?')} {where}" + (
            f" (lot {row['lot_id']})" if row.get("lot_id") else ""
        )
    lot = f" of lot {row['lot_id']}" if row.get("lot_id") else ""
    return f"{table} row {where}{lot}"


def row_findings(differences: list[RowDifferenceView]) -> list[Finding]:
    findings: list[Finding] = []
    for difference in differences:
        subject = subject_of(difference)
        details: dict[str, Any] = {"table": difference.table, "key": difference.key}
        if difference.kind == "only_left":
            details[INDEX] = difference.left
            message = f"{subject} only in index (the chain has no such {_noun(difference.table)})"
            kind = "only_in_index"
        elif difference.kind == "only_right":
            details[CHAIN] = difference.right
            message = f"{subject} missing in index"
            kind = "missing_in_index"
        else:
            details["fields"] = {
                column: {INDEX: mine, CHAIN: theirs} for column, mine, theirs in difference.changed
            }
            values = "; ".join(
                f"{column} index={mine!r} chain={theirs!r}" for column, mine, theirs in difference.changed
            )
            message = f"{subject}: {values}"
            kind = "changed"
        findings.append(Finding("index_rows", f"{difference.table}:{kind}", subject, message, details))
    return findings


def _noun(table: str) -> str:
    return {
        "lots": "lot",
        "lineage_edges": "edge",
        "events": "event",
        "transformations": "transformation",
        "devices": "device",
    }.get(table, "row")
