"""The outbox worker and the registry calls it sends (see `worker` for how it works)."""

from provenance.chain.outbox.calls import Call, call_for, jsonable
from provenance.chain.outbox.worker import (
    COALESCE_LOTS,
    LOTS_PER_TX,
    MAX_TX_BYTES,
    SHARED_BASE_GAS,
    SHARED_LOT_GAS,
    TX_GAS_CAP,
    OutboxStorage,
    OutboxWorker,
)

__all__ = [
    "COALESCE_LOTS",
    "LOTS_PER_TX",
    "MAX_TX_BYTES",
    "SHARED_BASE_GAS",
    "SHARED_LOT_GAS",
    "TX_GAS_CAP",
    "Call",
    "OutboxStorage",
    "OutboxWorker",
    "call_for",
    "jsonable",
]
