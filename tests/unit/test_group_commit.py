"""Group commit: writes from many threads share transactions, each thread gets its own result or
its own error, a failing write fails alone, and nothing is acknowledged before it is committed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import IntegrityError

from provenance.index.db import make_engine
from provenance.index.group_commit import MAX_GROUP, GroupCommit


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'g.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE items (name TEXT PRIMARY KEY, thread INTEGER)"))
    yield engine
    engine.dispose()


class Counting:
    """`transaction()` for GroupCommit that counts the transactions it opened."""

    def __init__(self, engine: Engine, fail_commit: bool = False) -> None:
        self.engine, self.fail_commit, self.opened = engine, fail_commit, 0
        self.lock = threading.Lock()

    @contextmanager
    def __call__(self) -> Iterator[Connection]:
        with self.lock:
            self.opened += 1
        with self.engine.connect() as connection:
            connection.execution_options(sqlite_begin="IMMEDIATE")
            with connection.begin():
                yield connection
                if self.fail_commit:
                    raise OSError("disk full")


def names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {row.name for row in connection.execute(text("SELECT name FROM items"))}


def insert(name: str) -> Callable[[Connection], str]:
    def work(connection: Connection) -> str:
        connection.execute(text("INSERT INTO items VALUES (:n, :t)"), {"n": name, "t": threading.get_ident()})
        return f"stored {name}"

    return work


def run_threads(
    group: GroupCommit, count: int, work_of: Callable[[int], Callable[[Connection], str]]
) -> tuple[dict[int, object], dict[int, BaseException]]:
    results: dict[int, object] = {}
    errors: dict[int, BaseException] = {}
    start = threading.Barrier(count)

    def one(number: int) -> None:
        start.wait()
        try:
            results[number] = group.run(work_of(number))
        except BaseException as error:
            errors[number] = error

    threads = [threading.Thread(target=one, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a thread never got its answer"
    return results, errors


def test_concurrent_writes_share_transactions_and_each_gets_its_own_result(engine: Engine) -> None:
    transaction = Counting(engine)
    group = GroupCommit(transaction)

    results, errors = run_threads(group, 200, lambda number: insert(f"lot-{number}"))

    assert errors == {}
    assert results == {number: f"stored lot-{number}" for number in range(200)}
    assert names(engine) == {f"lot-{number}" for number in range(200)}
    assert transaction.opened < 100, f"writes hardly shared transactions ({transaction.opened} for 200)"
    assert transaction.opened >= 200 / MAX_GROUP


def test_a_failing_write_fails_alone(engine: Engine) -> None:
    group = GroupCommit(Counting(engine))
    group.run(insert("taken"))

    results, errors = run_threads(
        group, 40, lambda number: insert("taken" if number % 10 == 0 else f"lot-{number}")
    )

    assert set(errors) == {0, 10, 20, 30}
    assert all(isinstance(error, IntegrityError) for error in errors.values())
    assert names(engine) == {"taken"} | {f"lot-{number}" for number in range(40) if number % 10}
    assert len(results) == 36


def test_when_the_commit_fails_no_write_of_the_group_is_acknowledged(engine: Engine) -> None:
    group = GroupCommit(Counting(engine, fail_commit=True))

    results, errors = run_threads(group, 20, lambda number: insert(f"lot-{number}"))

    assert results == {}
    assert len(errors) == 20
    assert all(isinstance(error, OSError) for error in errors.values())
    assert names(engine) == set()


def test_the_lead_passes_on_so_later_writers_are_not_stranded(engine: Engine) -> None:
    group = GroupCommit(Counting(engine))
    for round_number in range(5):  # the group is idle between rounds: a new leader each time
        prefix = f"r{round_number}-"
        results, errors = run_threads(group, 8, lambda number: insert(f"{prefix}{number}"))  # noqa: B023
        assert errors == {}
        assert len(results) == 8
    assert len(names(engine)) == 40


def test_a_group_of_good_writes_takes_no_savepoints_and_a_failed_one_falls_back_to_them(
    engine: Engine,
) -> None:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(engine, "before_cursor_execute", record)
    group = GroupCommit(Counting(engine))
    assert group.run(insert("alone")) == "stored alone"
    assert "SAVEPOINT" not in statements

    with engine.begin() as connection:
        connection.execute(text("INSERT INTO items VALUES ('taken', 0)"))
    statements.clear()
    _results, errors = run_threads(group, 8, lambda n: insert("taken" if n == 3 else f"w{n}"))
    assert set(errors) == {3}
    assert isinstance(errors[3], IntegrityError)
    assert names(engine) == {"alone", "taken"} | {f"w{n}" for n in range(8) if n != 3}
    assert "SAVEPOINT" in statements  # the group with the failing write went again, write by write
