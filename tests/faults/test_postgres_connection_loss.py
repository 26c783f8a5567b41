"""PostgreSQL drops the indexer's connections again and again in the middle of a backfill: the
indexer resumes where its last committed range ended, and the index it ends with equals a rebuild
from scratch, row for row (no gap, no duplicate)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from provenance.index.db import upgrade
from provenance.index.snapshot import index_snapshot
from tests.dbs import postgres_database
from tests.histories import BENCH
from tests.integration.support import Chain, assert_same_index, indexer_for, rebuild

pytestmark = [pytest.mark.anvil, pytest.mark.postgres, pytest.mark.slow]

KILLS = 5
EVENTS = 2_500
TERMINATE = text(
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
)
"""Only connections in the middle of a statement or a transaction: a connection idle in the pool
is replaced by the pool's pre-ping without the indexer ever noticing, which tests nothing."""


def lost_connection(error: BaseException | None) -> bool:
    """Whether `error`, or what it was raised from, is a terminated PostgreSQL connection."""
    while error is not None:
        if isinstance(error, DBAPIError) and (error.connection_invalidated or "terminat" in str(error)):
            return True
        error = error.__cause__
    return False


def test_the_indexer_resumes_without_gaps_or_duplicates_after_lost_connections(chain: Chain) -> None:
    history = chain.history(seed=3)
    history.setup()
    history.run(BENCH, events=EVENTS)
    with postgres_database() as live_url, postgres_database() as fresh_url:
        upgrade(live_url)
        upgrade(fresh_url)
        # small ranges: many commits, so each kill lands between or inside them, mid-backfill
        indexer = indexer_for(chain, live_url, max_range=4)
        killer = create_engine(live_url, isolation_level="AUTOCOMMIT")
        done = threading.Event()
        terminated: list[int] = []

        def kill_backends() -> None:
            with killer.connect() as connection:
                while not done.is_set() and len(terminated) < KILLS:
                    count = int(connection.execute(TERMINATE).scalar_one())
                    if count:
                        terminated.append(count)
                        time.sleep(0.2)  # let it resume and commit a few ranges before the next
                    else:
                        time.sleep(0.005)

        thread = threading.Thread(target=kill_backends, daemon=True)
        thread.start()
        lost = 0
        try:
            while True:
                try:
                    indexer.sync()
                    break
                except Exception as error:  # what the supervised child dies of; it is started again
                    if not lost_connection(error):
                        raise
                    lost += 1
        finally:
            done.set()
            thread.join(timeout=10)
            killer.dispose()
        live = index_snapshot(indexer.engine)
        indexer.engine.dispose()
        assert lost >= 2, f"the connections were lost {lost} times during the backfill ({terminated})"
        events = sum(len(rows) for name, rows in live.items() if name == "events")
        assert events > EVENTS, f"a history of a few thousand events, not {events}"
        assert_same_index(live, rebuild(chain, fresh_url))
