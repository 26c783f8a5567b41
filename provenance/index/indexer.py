"""The indexer: mirrors the registry's events into SQL, exactly once, and survives reorgs.

One block range at a time: read the range's logs (checked against the block headers), apply them
in memory, and write the derived rows, the blocks' hashes and the new cursor in one database
transaction, so a crash at any instant leaves all of a range or none of it.

Before each range the indexer checks that the chain it extends is still the one it indexed: the
first new block's parent hash must be the cursor's hash. When it is not, it walks the stored block
hashes down to the newest one the node still has (the common ancestor), deletes every row derived
from the blocks above it, recomputes the current state of what those blocks touched, and indexes
forward again. A reorg below every stored hash halts with ReorgTooDeep and changes nothing: a
lagging or syncing node looks just like one, and guessing would corrupt the index.

Blocks within `reorg_window` of the safe head have every header read and stored (and checked to
chain); older blocks of a backfill only store the hashes the range's logs and ends name. The
header of every block with an event is read (batched), and its timestamp stored with the range:
reads date events from the index, never from the node. After a
range, hashes more than `reorg_window` blocks below the cursor are pruned, so the stored blocks
are always those in (cursor - reorg_window, cursor].
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from provenance.domain.blocks import BlockRef, Confirmations
from provenance.domain.deployment import DeploymentRecord
from provenance.domain.events import DecodedEvent
from provenance.epcis.ids import LOCAL_SCHEME, IdentifierScheme
from provenance.errors import (
    ChainMismatch,
    InconsistentLogs,
    IndexStateError,
    LogSourceError,
    ReorgTooDeep,
)
from provenance.index import epcis_ids_store, store
from provenance.index.db import check_current, describe, writer_lock
from provenance.index.projection import Projection, touched
from provenance.index.store import Cursor

log = logging.getLogger(__name__)

RETRIES = 5
"""Attempts at a range whose answers contradict each other (a reorg under the read) before giving up."""
DATING_BATCH = 1_000
"""Event blocks of an older index dated per transaction."""
FIRST_SPAN = 64
TARGET_EVENTS = 20_000
"""Ranges start at FIRST_SPAN blocks and double while they hold fewer than a quarter of
TARGET_EVENTS, shrink when they hold more: a dense history is written in transactions of
bounded size (memory), a sparse one in few."""
CATCH_UP_BLOCKS = 10_000
"""How far behind the head an index with current stored events may start and still store them
range by range; further, it catches up as a backfill does (`Indexer.catch_up_blocks`)."""


class LogSource(Protocol):
    """Where the indexer reads the chain: `provenance.chain.logsource.RpcLogSource`, or a test double."""

    def head(self, confirmations: Confirmations) -> BlockRef: ...

    def block(self, number: int) -> BlockRef: ...

    def logs(self, from_block: int, to_block: int) -> list[DecodedEvent]: ...


@dataclass(frozen=True)
class SyncResult:
    """What one `sync` did: blocks and events indexed, the cursor it reached, reorgs it undid."""

    blocks: int
    events: int
    head: int
    reorgs: int = 0
    rolled_back_events: int = 0


class _Reorged(Exception):
    """The chain under the cursor changed; find the common ancestor."""


class Indexer:
    """Indexes the registry of `deployment` from `source` into the database behind `engine`."""

    def __init__(
        self,
        engine: Engine,
        source: LogSource,
        deployment: DeploymentRecord,
        *,
        confirmations: Confirmations = 0,
        max_range: int = 2000,
        reorg_window: int = 256,
        identifiers: IdentifierScheme | None = LOCAL_SCHEME,
        catch_up_blocks: int = CATCH_UP_BLOCKS,
    ) -> None:
        if max_range < 1 or reorg_window < 1:
            raise ValueError("max_range and reorg_window must be at least 1")
        self.engine = engine
        self.source = source
        self.deployment = deployment
        self.confirmations = confirmations
        self.max_range = max_range
        self.reorg_window = reorg_window
        self.identifiers = identifiers
        """The deployment's EPCIS identifiers: each range's eventIDs are stored with them (None:
        none stored, as a rebuild that only compares chain facts wants)."""
        self.catch_up_blocks = catch_up_blocks
        """Found more blocks than this behind the head at start, an index with current stored
        events catches up as a backfill does: ranges store none, and the pass at the head goes on
        after the last block stored (`epcis_ids_store.suspend`)."""
        self._epcis_live = False
        """Whether each range stores its EPCIS events in its own transaction: once the stored
        events are current (this deployment's fingerprints). Until then (an empty index, other
        identifiers, another mapping) ranges store none, and `store_epcis_events` stores them all
        once the cursor has reached the head: the backfill's core rows do not wait for them, and
        reads build and hash meanwhile (the fingerprints are not theirs)."""
        self._ready = False
        self._span = min(max_range, FIRST_SPAN)

    # ---------------------------------------------------------------- public

    def sync(
        self,
        stop: threading.Event | None = None,
        progress: Callable[[int, int], None] | None = None,
        *,
        defer_epcis: bool = False,
    ) -> SyncResult:
        """Indexes everything up to the current safe head (undoing reorgs on the way) and returns;
        or returns early, between two ranges, once `stop` is set. `progress` is told, after each
        range, how many of the registry's blocks up to the safe head are indexed, and how many there are.
        Once at the head, stores the EPCIS events still pending (`store_epcis_events`), unless
        `defer_epcis` (then the caller does)."""
        self._prepare()
        blocks = events = reorgs = rolled_back = failures = 0
        while True:
            cursor = self._cursor()
            if stop is not None and stop.is_set():
                break
            safe = self.source.head(self.confirmations)
            try:
                step = self._step(cursor, safe)
            except _Reorged:
                assert cursor is not None
                undone = self._roll_back(cursor, safe)
                if undone is None:
                    failures += 1
                    self._pause(failures)
                else:
                    reorgs += 1
                    rolled_back += undone
                continue
            except InconsistentLogs as error:
                failures += 1
                log.warning("the node contradicted itself (%s); reading again", error)
                self._pause(failures, error)
                continue
            if step is None:
                break
            blocks += step[0]
            events += step[1]
            failures = 0
            if progress is not None:
                first = self.deployment.block_number
                progress(min(step[2], safe.number) - first + 1, safe.number - first + 1)
        head = cursor.number if cursor is not None else self.deployment.block_number - 1
        if not defer_epcis and not (stop is not None and stop.is_set()):
            self.store_epcis_events()
        return SyncResult(blocks, events, head, reorgs, rolled_back)

    def store_epcis_events(self) -> int | None:
        """Stores every EPCIS event of the indexed blocks if the stored ones are not current (the
        backfill left them out: `_epcis_live`), a few thousand blocks per transaction, then records
        the fingerprints, after which each range stores its own; returns the events stored (None
        when there was nothing to do). Run between ranges: no range lands meanwhile."""
        if self.identifiers is None or self._epcis_live:
            return None
        stored = epcis_ids_store.refresh(self.engine, self.identifiers)
        self._epcis_live = True
        return stored

    def _step(self, cursor: Cursor | None, safe: BlockRef) -> tuple[int, int, int] | None:
        """Indexes the next range: returns (blocks, events, the range's last block), or None when
        there is nothing new."""
        if cursor is None:
            if safe.number < self.deployment.block_number:
                return None
            first = self._deployment_block()
            start, before = Cursor(self.deployment.block_number - 1, first.parent_hash), None
        elif cursor.number >= safe.number:
            self._check_at_or_below_head(cursor, safe)
            return None
        else:
            start = before = cursor
        to_block = min(start.number + self._span, safe.number)
        events = self._index_range(before, start, to_block, safe.number)
        self._adapt_span(events)
        return to_block - start.number, events, to_block

    def follow(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Syncs, then polls for new heads every `poll_s` seconds until `stop` is set.

        A node that does not answer, or answers inconsistently, is retried with backoff; a reorg
        too deep, a chain mismatch or a database that is behind stop the indexer (they raise).
        """
        failures = 0
        while not stop.is_set():
            try:
                result = self.sync(stop)
            except (LogSourceError, OperationalError) as error:
                failures += 1
                delay = min(60.0, poll_s * 2 ** min(failures, 6))
                log.warning("indexer: %s; retrying in %.0f s", error, delay)
                stop.wait(delay)
                continue
            failures = 0
            if result.blocks or result.reorgs:
                log.info(
                    "indexed %d blocks, %d events, up to block %d (%d reorgs undone)",
                    result.blocks,
                    result.events,
                    result.head,
                    result.reorgs,
                )
            stop.wait(poll_s)

    # ---------------------------------------------------------------- setup

    def _prepare(self) -> None:
        """Once per indexer: the schema is current, and the database mirrors this deployment."""
        if self._ready:
            return
        check_current(self.engine)
        genesis = self.source.block(0)
        if genesis.hash != self.deployment.genesis_hash:
            raise ChainMismatch(
                f"the node's genesis block is {genesis.hash}, but the deployment record is for chain "
                f"{self.deployment.chain_id} with genesis {self.deployment.genesis_hash}: the node is another chain"
            )
        wanted = {
            "chain_id": self.deployment.chain_id,
            "genesis_hash": self.deployment.genesis_hash,
            "registry_address": self.deployment.registry,
            "deployment_block": self.deployment.block_number,
            "deployment_block_hash": self.deployment.block_hash,
        }
        with self._writing() as connection:
            mirror = store.read_mirror(connection)
            if mirror is None:
                store.write_mirror(connection, wanted)
            else:
                differences = [
                    f"{key} {mirror[key]} (database) vs {wanted[key]} (deployment record)"
                    for key in wanted
                    if str(mirror[key]).lower() != str(wanted[key]).lower()
                ]
                if differences:
                    raise ChainMismatch(
                        f"the index database {describe(self.engine)} mirrors registry {mirror['registry_address']} "
                        f"on chain {mirror['chain_id']}, not registry {self.deployment.registry} on chain "
                        f"{self.deployment.chain_id} ({'; '.join(differences)}). Point the indexer at an empty "
                        f"database (PROVENANCE_DATABASE_URL) for this deployment; one database mirrors one registry"
                    )
        self._date_undated_blocks()
        if self.identifiers is not None:
            # stored events not current: reads stop using them now (`forget`), ranges store none,
            # and `store_epcis_events` stores them all once the cursor is at the head (or resumes)
            self._epcis_live = epcis_ids_store.current(self.engine, self.identifiers)
            if self._epcis_live and self._far_behind():
                epcis_ids_store.suspend(self.engine)
                self._epcis_live = False
            if not self._epcis_live:
                epcis_ids_store.forget(self.engine, self.identifiers)
        self._ready = True

    def _far_behind(self) -> bool:
        cursor = self._cursor()
        if cursor is None:
            return False
        return self.source.head(self.confirmations).number - cursor.number > self.catch_up_blocks

    def _date_undated_blocks(self) -> None:
        """Stores the times of event blocks indexed before block times were kept (migration 0007),
        from the node's headers. A block the node now names by another hash is left undated: the
        next sync rolls it back (a reorg) and dates it when it indexes it again."""
        with self.engine.connect() as connection:
            undated = store.undated_event_blocks(connection)
        if not undated:
            return
        numbers = sorted(undated)
        for start in range(0, len(numbers), DATING_BATCH):
            headers = self._headers(numbers[start : start + DATING_BATCH])
            times = {n: ref.timestamp for n, ref in headers.items() if ref.hash == undated.get(n)}
            with self._writing() as connection:
                store.write_block_times(connection, times)
        log.info("dated %d event blocks indexed before block times were kept", len(numbers))

    def _deployment_block(self) -> BlockRef:
        block = self.source.block(self.deployment.block_number)
        if block.hash != self.deployment.block_hash:
            raise ChainMismatch(
                f"block {self.deployment.block_number} on the node is {block.hash}, but the registry was deployed "
                f"in block {self.deployment.block_hash}: the deployment is not on this chain (reorged away, or "
                "another node); redeploy or fix the deployment record"
            )
        return block

    # ---------------------------------------------------------------- transactions

    def _writing(self) -> _Transaction:
        return _Transaction(self.engine)

    def _cursor(self) -> Cursor | None:
        with self.engine.connect() as connection:
            return store.read_cursor(connection)

    # ---------------------------------------------------------------- one range

    def _index_range(self, before: Cursor | None, start: Cursor, to_block: int, safe_number: int) -> int:
        """Indexes blocks start.number+1 .. to_block in one transaction; returns the events written."""
        from_block = start.number + 1
        dense_from = max(from_block, safe_number - self.reorg_window + 1)
        first = self.source.block(from_block)
        if first.parent_hash != start.hash:
            if before is None:
                raise InconsistentLogs(f"block {from_block} changed while it was read")
            raise _Reorged
        events = self.source.logs(from_block, to_block)
        headers = self._headers(range(max(dense_from, from_block + 1), to_block + 1))
        headers[from_block] = first
        last = headers.get(to_block) or self.source.block(to_block)
        headers[to_block] = last
        self._check_chained(headers, dense_from, to_block)
        headers.update(self._headers({event.block_number for event in events} - headers.keys()))
        hashes = {number: ref.hash for number, ref in headers.items()}
        for event in events:
            known = hashes[event.block_number]
            if known != event.block_hash:
                raise InconsistentLogs(
                    f"a log names block {event.block_number} as {event.block_hash[:10]}…, its header says {known[:10]}…"
                )
        times = {event.block_number: headers[event.block_number].timestamp for event in events}
        after = Cursor(to_block, last.hash)
        with self._writing() as connection:
            done = store.existing_events(connection, from_block, to_block)
            fresh = self._fresh(events, done)
            lot_ids, devices = touched(fresh)
            projection = Projection(
                lots=store.load_rows(connection, "lots", "lot_id", lot_ids),
                devices=store.load_rows(connection, "devices", "device", devices),
            )
            projection.apply(fresh)
            store.write_range(
                connection, projection, hashes, before, after, to_block - self.reorg_window, times
            )
            if self.identifiers is not None and self._epcis_live:
                epcis_ids_store.write_event_ids(connection, self.identifiers, from_block, to_block)
        return len(fresh)

    def _adapt_span(self, events: int) -> None:
        if events > TARGET_EVENTS:
            self._span = max(1, self._span * TARGET_EVENTS // events)
        elif events < TARGET_EVENTS // 4:
            self._span = min(self.max_range, self._span * 2)

    def _headers(self, numbers: Iterable[int]) -> dict[int, BlockRef]:
        wanted = list(numbers)
        if not wanted:
            return {}
        many = getattr(self.source, "blocks", None)
        if many is not None:
            found: dict[int, BlockRef] = many(wanted)
            return found
        return {number: self.source.block(number) for number in wanted}

    @staticmethod
    def _check_chained(headers: dict[int, BlockRef], dense_from: int, to_block: int) -> None:
        for number in range(dense_from + 1, to_block + 1):
            parent, child = headers.get(number - 1), headers.get(number)
            if parent is not None and child is not None and child.parent_hash != parent.hash:
                raise InconsistentLogs(
                    f"block {number} does not extend block {number - 1}: the chain moved under the read"
                )

    @staticmethod
    def _fresh(events: list[DecodedEvent], done: dict[tuple[str, int], str]) -> list[DecodedEvent]:
        """The events not indexed yet; the same logs delivered twice are applied once."""
        fresh: list[DecodedEvent] = []
        seen: set[tuple[str, int]] = set()
        for event in events:
            key = (event.tx_hash, event.log_index)
            if key in seen:
                continue
            seen.add(key)
            indexed_in = done.get(key)
            if indexed_in is None:
                fresh.append(event)
            elif indexed_in != event.block_hash:
                raise IndexStateError(
                    f"log {event.log_index} of tx {event.tx_hash} is indexed from block {indexed_in}, but the node "
                    f"puts it in block {event.block_hash}: a reorg was not rolled back; rebuild the index"
                )
        return fresh

    # ---------------------------------------------------------------- reorgs

    def _check_at_or_below_head(self, cursor: Cursor, safe: BlockRef) -> None:
        """Nothing new to index: raises _Reorged if the chain under the cursor changed anyway."""
        if safe.number == cursor.number:
            if safe.hash != cursor.hash:
                raise _Reorged
            return
        with self.engine.connect() as connection:
            stored = store.stored_block_at_or_below(connection, safe.number)
        if stored is None:
            log.warning(
                "the node's head %d is far below the index's cursor %d; waiting", safe.number, cursor.number
            )
            return
        if self.source.block(stored.number).hash != stored.hash:
            raise _Reorged
        log.info(
            "the node's head %d is below the index's cursor %d (lagging node?); waiting",
            safe.number,
            cursor.number,
        )

    def _roll_back(self, cursor: Cursor, safe: BlockRef) -> int | None:
        """Rolls the index back to the newest stored block still on the node's chain.

        Returns the number of events undone, or None if nothing needed undoing after all (the
        node answered inconsistently a moment ago). Raises ReorgTooDeep, changing nothing, if no
        stored block is still on the chain.
        """
        with self.engine.connect() as connection:
            stored = store.stored_blocks_at_or_below(connection, min(cursor.number, safe.number))
        ancestor: Cursor | None = None
        for candidate in stored:
            if self.source.block(candidate.number).hash == candidate.hash:
                ancestor = candidate
                break
        if ancestor is None:
            lowest = stored[-1].number if stored else cursor.number
            raise ReorgTooDeep(
                f"the node's chain no longer contains any block the index stored (blocks {lowest}..{cursor.number} "
                f"all differ): a reorg deeper than the window of {self.reorg_window} blocks, or a node that is "
                "syncing or on another chain. The indexer stopped and changed nothing. Check the node; if the "
                "reorg is real, rebuild the index into an empty database"
            )
        if ancestor == cursor:
            return None
        with self._writing() as connection:
            undone = store.rollback(connection, ancestor, cursor, self.deployment.registry)
        log.warning(
            "reorg: rolled the index back from block %d to %d (%d events undone, %d lots recomputed)",
            cursor.number,
            ancestor.number,
            undone.events,
            undone.lots_recomputed,
        )
        return undone.events

    @staticmethod
    def _pause(failures: int, error: Exception | None = None) -> None:
        if failures > RETRIES:
            raise InconsistentLogs(f"the node kept contradicting itself after {RETRIES} attempts: {error}")
        time.sleep(min(2.0, 0.05 * 2**failures))


class _Transaction:
    """A write transaction: BEGIN IMMEDIATE on SQLite, so a second writer waits instead of failing."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None
        self.lock = writer_lock(engine)

    def __enter__(self) -> Connection:
        self.lock.__enter__()
        try:
            connection = self.engine.connect()
            connection.execution_options(sqlite_begin="IMMEDIATE")
            connection.begin()
        except BaseException:
            self.lock.__exit__(None, None, None)
            raise
        self.connection = connection
        return connection

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        assert self.connection is not None
        try:
            if kind is None:
                self.connection.commit()
            else:
                self.connection.rollback()
        finally:
            self.connection.close()
            self.lock.__exit__(None, None, None)
