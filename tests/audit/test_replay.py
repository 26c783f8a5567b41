"""The auditor's replay of a whole chain: every rule, the index row for row, lotState of every lot.

A failure prints the audit's summary, which names each lot, edge and event that disagrees.
"""

from __future__ import annotations

from pathlib import Path

from provenance.audit.report import summary
from provenance.audit.service import audit
from tests.audit.conftest import AuditTarget


def test_the_chain_replays_and_everything_agrees(audit_target: AuditTarget, tmp_path: Path) -> None:
    report = audit(audit_target.w3, audit_target.registry, database_url=audit_target.database_url)
    (tmp_path / "audit.json").write_text(report.to_json(), encoding="utf-8")

    assert report.ok, f"{audit_target.name}:\n{summary(report)}"
    assert report.events > 0
    assert (
        report.mass["registered_g"] + report.mass["corrected_g"]
        == report.mass["remaining_g"] + report.mass["lost_g"]
    )
    if audit_target.database_url is not None:
        assert report.digests["index"] == report.digests["chain"]


def test_every_lot_state_was_read_from_the_contract(audit_target: AuditTarget) -> None:
    report = audit(audit_target.w3, audit_target.registry)

    assert report.ok, summary(report)
    assert report.lots > 0
    assert report.checked.get("mass_balance") == 1
    assert not report.index_compared
