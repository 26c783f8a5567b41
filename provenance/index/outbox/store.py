"""The transaction outbox in SQL (see `provenance.index.outbox`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from provenance.domain.outbox import OutboxStorage
from provenance.index.outbox.submissions import Submissions
from provenance.index.outbox.views import OperationViews
from provenance.index.outbox.worker_storage import WorkerStorage


class OutboxStore(Submissions, WorkerStorage, OperationViews):
    """Submissions (the API's side), the worker's storage and the read views, over one database."""


if TYPE_CHECKING:

    def _is_the_workers_storage(store: OutboxStore) -> OutboxStorage:
        return store  # mypy checks that the store is what the worker needs
