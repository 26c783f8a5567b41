"""A read replica's engine gives up on a server that does not answer, so that a read falls back
to the primary instead of hanging (`make_engine(..., replica=True)`)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from provenance.index.db import make_engine


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake but whose server never says a word: what a
    frozen or half-partitioned PostgreSQL looks like to a client."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def _first_query(url: str, *, replica: bool) -> BaseException | None:
    """Runs one query on a thread; returns its error, or None while it is still waiting after 30 s."""
    outcome: list[BaseException] = []

    def run() -> None:
        engine = make_engine(url, replica=replica)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except BaseException as error:  # handed to the test
            outcome.append(error)
        finally:
            engine.dispose()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    return outcome[0] if outcome else None


def test_a_replica_that_never_answers_is_given_up(silent_server: int) -> None:
    error = _first_query(f"postgresql://postgres@127.0.0.1:{silent_server}/test", replica=True)
    assert isinstance(error, OperationalError), error
    assert "timeout" in str(error).lower()
