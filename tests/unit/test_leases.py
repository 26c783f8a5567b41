"""Leases in SQL and the fence on a leader's commits, on SQLite and PostgreSQL.

A lease's end is moved by hand (`_expire`) rather than waited for, so that nothing here depends on
how fast the machine is or what the clock says; the one test of a paused leader's idle
transaction waits on PostgreSQL's own timeout, a fraction of a second.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine, text

from provenance.errors import LeaseLost
from provenance.index.db import make_engine
from provenance.index.leases import Leases, fence_commits
from provenance.leadership import Leadership

ROLE = "indexer"


@pytest.fixture
def leases(engine: Engine) -> Leases:
    return Leases(engine)


def _expire(engine: Engine, name: str = ROLE) -> None:
    """Ends the lease as if its time had run out (the database clock moves on by a day)."""
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE leases SET expires_at = expires_at - 86400 WHERE name = :n"), {"n": name}
        )


def _scratch(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE IF NOT EXISTS scratch (value INTEGER)"))


def _rows(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT value FROM scratch ORDER BY value"))]


def test_one_holder_at_a_time_and_a_new_token_for_each_new_holder(leases: Leases, engine: Engine) -> None:
    first = leases.acquire(ROLE, "host-a:1:indexer", ttl_s=30)
    assert first is not None
    assert leases.acquire(ROLE, "host-b:2:indexer", ttl_s=30) is None
    assert leases.acquire("outbox-worker", "host-b:2:outbox-worker", ttl_s=30) is not None  # roles are apart
    state = leases.state(ROLE)
    assert state is not None
    assert state.holder == "host-a:1:indexer"
    assert state.token == first
    assert 0 < state.remaining_s <= 30

    _expire(engine)
    second = leases.acquire(ROLE, "host-b:2:indexer", ttl_s=30)
    assert second == first + 1
    assert leases.state(ROLE).holder == "host-b:2:indexer"  # type: ignore[union-attr]


def test_renewal_keeps_a_running_lease_and_refuses_an_ended_or_taken_one(
    leases: Leases, engine: Engine
) -> None:
    token = leases.acquire(ROLE, "a", ttl_s=30)
    assert token is not None
    assert leases.renew(ROLE, token, ttl_s=30)
    assert not leases.renew(ROLE, token + 1, ttl_s=30)  # not our token

    _expire(engine)
    assert not leases.renew(ROLE, token, ttl_s=30), "an ended lease is not renewed even if nobody took it"
    taken = leases.acquire(ROLE, "b", ttl_s=30)
    assert taken is not None
    assert not leases.renew(ROLE, token, ttl_s=30)


def test_a_release_lets_a_standby_take_over_at_once(leases: Leases) -> None:
    token = leases.acquire(ROLE, "a", ttl_s=30)
    assert token is not None
    assert leases.acquire(ROLE, "b", ttl_s=30) is None
    leases.release(ROLE, token + 7)  # another's token: nothing happens
    assert leases.acquire(ROLE, "b", ttl_s=30) is None
    leases.release(ROLE, token)
    assert leases.acquire(ROLE, "b", ttl_s=30) == token + 1


def test_a_former_leaders_commit_is_refused_and_lands_nothing(leases: Leases, db_url: str) -> None:
    _scratch(leases.engine)
    token = leases.acquire(ROLE, "a", ttl_s=30)
    leader = make_engine(db_url)
    held: list[int | None] = [token]
    fence_commits(leader, ROLE, lambda: held[0], idle_s=30, holder="a")
    try:
        with leader.begin() as connection:
            connection.execute(text("INSERT INTO scratch (value) VALUES (1)"))

        # paused: the lease ran out and a standby took it, but this process still believes it leads
        _expire(leases.engine)
        assert leases.acquire(ROLE, "b", ttl_s=30) is not None
        with (
            pytest.raises(LeaseLost, match="no longer holds the indexer lease"),
            leader.begin() as connection,
        ):
            connection.execute(text("INSERT INTO scratch (value) VALUES (2)"))

        held[0] = None  # it knows it lost: still refused
        with pytest.raises(LeaseLost), leader.begin() as connection:
            connection.execute(text("INSERT INTO scratch (value) VALUES (3)"))
        assert _rows(leases.engine) == [1]
    finally:
        leader.dispose()


def test_an_ended_lease_fences_commits_even_before_anyone_takes_it(leases: Leases, db_url: str) -> None:
    _scratch(leases.engine)
    token = leases.acquire(ROLE, "a", ttl_s=30)
    leader = make_engine(db_url)
    fence_commits(leader, ROLE, lambda: token, idle_s=30)
    try:
        _expire(leases.engine)
        with pytest.raises(LeaseLost), leader.begin() as connection:
            connection.execute(text("INSERT INTO scratch (value) VALUES (1)"))
        assert _rows(leases.engine) == []
    finally:
        leader.dispose()


@pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_leader_paused_inside_a_transaction_loses_it_and_frees_the_lease_row(
    leases: Leases, db_url: str
) -> None:
    """A leader stopped between its writes and its commit would hold its locks: its session ends
    the idle transaction, so its writes never land and a standby's takeover is not kept waiting."""
    _scratch(leases.engine)
    token = leases.acquire(ROLE, "a", ttl_s=30)
    leader = make_engine(db_url)
    fence_commits(leader, ROLE, lambda: token, idle_s=0.3, holder="host-a:1:indexer")
    try:
        connection = leader.connect()
        transaction = connection.begin()
        connection.execute(text("INSERT INTO scratch (value) VALUES (1)"))
        name = connection.execute(text("SELECT current_setting('application_name')")).scalar()
        assert name == "host-a:1:indexer"
        time.sleep(1.0)  # "paused" past the server's idle-in-transaction timeout
        with pytest.raises(Exception, match=r"idle-in-transaction|terminat|closed"):
            transaction.commit()
        connection.close()
        assert _rows(leases.engine) == []
    finally:
        leader.dispose()


def test_a_supervisor_ends_the_lease_of_a_process_it_saw_exit(leases: Leases) -> None:
    assert leases.acquire(ROLE, "host:41:indexer", ttl_s=30) is not None
    assert not leases.release_holder(ROLE, "host:42:indexer")  # not that process's
    assert leases.acquire(ROLE, "host:43:indexer", ttl_s=30) is None
    assert leases.release_holder(ROLE, "host:41:indexer")
    assert leases.acquire(ROLE, "host:43:indexer", ttl_s=30) is not None


def test_leadership_runs_its_role_only_while_it_holds_the_lease(leases: Leases, engine: Engine) -> None:
    leadership = Leadership(leases, ROLE, ttl_s=0.6, holder="a", retry_s=0.05)
    stop = threading.Event()
    terms: list[int | None] = []
    ended = threading.Event()

    def lead(leading: threading.Event) -> None:
        terms.append(leadership.token)
        leading.wait(30)
        ended.set()

    runner = threading.Thread(target=leadership.run, args=(stop, lead))
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while not terms and time.monotonic() < deadline:
            time.sleep(0.01)
        assert terms
        assert terms[0] is not None

        _expire(engine)  # another replica takes the lease while this one was away
        assert leases.acquire(ROLE, "b", ttl_s=2.0) is not None
        assert ended.wait(10), "the role was not told it lost its lease"
        assert leadership.token is None or leadership.token != terms[0]

        # b's lease ends; a leads again, with a new token
        deadline = time.monotonic() + 10
        while len(terms) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(terms) == 2
        assert terms[1] is not None
        assert terms[1] > terms[0]
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()
    state = leases.state(ROLE)
    assert state is not None
    assert state.remaining_s <= 0.01, "a clean stop releases the lease"
