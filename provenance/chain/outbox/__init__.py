"""The outbox worker: signs, sends and tracks the operations the API stored (see `worker`).

One module a job: `calls` (commands as registry calls), `planner` (coalesce, split, simulate,
defer), `sender` (keys, nonces, fees, sending), `tracker` (receipts, confirmations, re-checks
after reorgs), `conflicts` (acknowledged writes the chain lost and refused), and `worker` (the
loop, holding one frozen `OutboxPolicy`).
"""

from provenance.chain.outbox.calls import Call, call_for, jsonable
from provenance.chain.outbox.policy import (
    COALESCE_LOTS,
    LOTS_PER_TX,
    MAX_TX_BYTES,
    SHARED_BASE_GAS,
    SHARED_LOT_GAS,
    TX_GAS_CAP,
    OutboxPolicy,
)
from provenance.chain.outbox.worker import OutboxWorker
from provenance.domain.outbox import OutboxStorage

__all__ = [
    "COALESCE_LOTS",
    "LOTS_PER_TX",
    "MAX_TX_BYTES",
    "SHARED_BASE_GAS",
    "SHARED_LOT_GAS",
    "TX_GAS_CAP",
    "Call",
    "OutboxPolicy",
    "OutboxStorage",
    "OutboxWorker",
    "call_for",
    "jsonable",
]
