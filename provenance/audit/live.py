"""The live index read in a child process, while the audit rebuilds its own from the chain.

Reading half a million rows into a snapshot is seconds of Python work, and so is the rebuild: on
two cores they overlap. The child reads one consistent snapshot and sends its first tables (the
mirror, the cursor, the stored blocks, the lots) as soon as it has them, so the audit knows its
block and its lots before the rest arrives. The child is spawned, never forked: a fork copies
whatever locks the parent's other threads hold at that instant (logging, connection pools), and
its import time overlaps with the rebuild anyway.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from provenance.bootstrap import index_engine
from provenance.errors import IndexStateError, ProvenanceError
from provenance.index.db import check_current
from provenance.index.snapshot import Snapshot, index_snapshot_with_digests


def _read(url: str, early: Any, tables: tuple[str, ...] | None = None) -> tuple[Snapshot, dict[str, str]]:
    engine = index_engine(url)
    try:
        check_current(engine)
        return index_snapshot_with_digests(engine, early=early, tables=tables)
    finally:
        engine.dispose()


def _child(url: str, pipe: Connection, tables: tuple[str, ...] | None) -> None:
    try:
        pipe.send(("done", _read(url, lambda partial: pipe.send(("early", partial)), tables)))
    except ProvenanceError as error:
        pipe.send(("error", str(error)))
    except Exception as error:  # the parent must hear of any failure, not wait forever
        pipe.send(("error", f"reading the index failed: {type(error).__name__}: {error}"))
    finally:
        pipe.close()


class LiveIndexReader:
    """Starts reading the index at `url` (only `tables`, if given); `early()` then `result()` (raise
    IndexStateError)."""

    def __init__(self, url: str, tables: tuple[str, ...] | None = None) -> None:
        self._early: Snapshot | None = None
        self._result: tuple[Snapshot, dict[str, str]] | None = None
        self._process: Any = None
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(url, child_end, tables), daemon=True)
        self._process.start()
        child_end.close()

    def _keep_early(self, partial: Snapshot) -> None:
        self._early = partial

    def _receive(self) -> tuple[str, Any]:
        try:
            kind, body = self._pipe.recv()
        except EOFError:
            raise IndexStateError("the process reading the index stopped without an answer") from None
        if kind == "error":
            self.close()
            raise IndexStateError(str(body))
        return kind, body

    def early(self) -> Snapshot:
        """The EARLY_TABLES of the snapshot (provenance.index.snapshot)."""
        while self._early is None:
            kind, body = self._receive()
            if kind == "early":
                self._early = body
            else:
                self._result = body
                self._early = {name: body[0][name] for name in body[0]}
        return self._early

    def result(self) -> tuple[Snapshot, dict[str, str]]:
        while self._result is None:
            kind, body = self._receive()
            if kind == "done":
                self._result = body
        self.close()
        return self._result

    def close(self, *, kill: bool = False) -> None:
        if self._process is not None:
            if kill:
                self._process.kill()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._pipe.close()
            self._process = None
