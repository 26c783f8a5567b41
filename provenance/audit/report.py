"""What an audit found, as plain values: the JSON report (`--report FILE`) and the human summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from provenance.wording import counted

CHECKS = ("index_chain", "index_rows", "rules", "state")
"""The audit's four parts, in the order they run and are reported:

* index_chain: the live index mirrors this chain and registry, and its cursor and stored block
  hashes are on this chain (not ahead of it, not another chain's);
* index_rows: the live index equals a fresh rebuild from the chain, row by row and by digest;
* rules: every registry rule, re-checked in plain Python over the replayed events;
* state: `lotState` by eth_call for every lot equals the replay and the index.
"""


@dataclass(frozen=True)
class Finding:
    """One discrepancy. `subject` names what differs ("lot X", "edge A→B", "event 0x…:3");
    `details` carries the values (index's and chain's) and the chain coordinates where known."""

    check: str
    kind: str
    subject: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuditReport:
    chain_id: int
    registry: str
    deployment_block: int
    block: int
    """The audit's block: the live index's cursor, else the chain's head when the audit began."""
    head: int
    database: str | None
    index_compared: bool
    events: int = 0
    lots: int = 0
    checked: dict[str, int] = field(default_factory=dict)
    """How many times each rule was checked."""
    mass: dict[str, int] = field(default_factory=dict)
    digests: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["ok"] = self.ok
        body["findings_by_check"] = {
            check: sum(1 for f in self.findings if f.check == check) for check in CHECKS
        }
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, default=str) + "\n"


def summary(report: AuditReport, *, limit: int = 50) -> str:
    """The human summary: the verdict, what was audited, each part's result, then the findings."""
    r = report
    lines = [
        f"audit: {'OK, everything agrees' if r.ok else f'FAILED, {len(r.findings)} discrepancies'}",
        f"chain {r.chain_id}, registry {r.registry} (deployed in block {r.deployment_block})",
        f"audited at block {r.block} (chain head {r.head}): {counted(r.events, 'event')}, {counted(r.lots, 'lot')} replayed",
    ]
    for check in CHECKS:
        found = sum(1 for f in r.findings if f.check == check)
        if check in ("index_chain", "index_rows") and not r.index_compared:
            lines.append(f"  {check:12} skipped: no --database given, the index comparison was skipped")
            continue
        lines.append(f"  {check:12} {'ok' if not found else f'{found} discrepancies'}")
    if r.index_compared and r.digests:
        lines.append(f"  digest: index {r.digests['index'][:16]}…, chain rebuild {r.digests['chain'][:16]}…")
    if r.mass:
        m = r.mass
        lines.append(
            f"  mass: registered {m['registered_g']:,} g + corrections {m['corrected_g']:,} g = remaining "
            f"{m['remaining_g']:,} g + losses {m['lost_g']:,} g"
        )
    if r.findings:
        lines.append("discrepancies:")
        for finding in r.findings[:limit]:
            lines.append(f"  [{finding.check}] {finding.message}")
        if len(r.findings) > limit:
            lines.append(f"  … and {len(r.findings) - limit} more (see --report)")
    return "\n".join(lines)
