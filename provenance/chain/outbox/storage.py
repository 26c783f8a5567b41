"""The outbox's storage as the worker uses it (the port is `provenance.domain.outbox.OutboxStorage`)."""

from __future__ import annotations

import logging

from provenance.domain.outbox import OutboxStorage

log = logging.getLogger(__name__)


def record_stuck(store: OutboxStorage, operation_id: str, reason: str) -> None:
    """Says why an operation stays pending (/health and the operation show it), if the database lets."""
    try:
        store.mark_stuck(operation_id, reason)
    except Exception as error:  # the reason is also in the log; the database may be what fails
        log.debug("could not record why operation %s is stuck: %s", operation_id, error)
