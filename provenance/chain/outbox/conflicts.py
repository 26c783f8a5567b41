"""Chain conflicts: acknowledged writes the chain lost and then refused. While one is open the
worker sends nothing new (see `provenance.domain.outbox.ChainConflict`)."""

from __future__ import annotations

import logging

from provenance.chain.outbox.calls import jsonable
from provenance.domain.outbox import ChainConflict, OutboxStorage, TransactionUpdate
from provenance.errors import ContractRevert

log = logging.getLogger(__name__)


class Conflicts:
    def __init__(self, store: OutboxStorage) -> None:
        self.store = store
        self._held: bool | None = None
        """Whether a conflict is open (None: not read yet); only this worker opens one."""

    @property
    def held(self) -> bool:
        return bool(self._held)

    def refresh(self) -> None:
        """Reads whether a conflict is open, unless none was when last read (a person may have
        resolved one meanwhile; nobody else opens one)."""
        if self._held is not False:
            self._held = bool(self.store.open_conflicts())

    def hold(
        self,
        operation_id: str,
        sequence: int,
        tx_hash: str | None,
        lost_block: int,
        error: ContractRevert,
        update: TransactionUpdate | None,
    ) -> None:
        """Records a chain conflict and stops sending."""
        conflict = ChainConflict(
            0, operation_id, sequence, tx_hash, lost_block, error.name, jsonable(error.args_by_name), ""
        )
        log.critical(
            "CHAIN CONFLICT: %s. Nothing more is sent until a person resolves it: check the chain "
            "(`provenance audit`), then `provenance outbox resume --held fail|retry`",
            conflict.describe(),
        )
        self.store.hold(conflict, update)
        self._held = True
