"""The auditor's replay: rebuild the index from the chain alone and check everything against it.

`audit` (service.py) runs it; `rules.py` re-checks the registry's rules in plain Python;
`compare.py` names differing index rows; `report.py` holds the findings and the JSON report.
"""

from provenance.audit.report import AuditReport, Finding, summary
from provenance.audit.rules import ReplayResult, Roles, RuleFinding, replay

__all__ = ["AuditReport", "Finding", "ReplayResult", "Roles", "RuleFinding", "replay", "summary"]
