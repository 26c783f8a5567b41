"""The integration suite's anvil with a deployed registry and generated actors (one per test), and
`provenance serve` in a fresh data directory for the tests that kill its parts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import ChaosServer
from tests.integration.conftest import chain

__all__ = ["chain", "server"]


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ChaosServer]:
    """A test module may set NODE_STATE_INTERVAL_S: how much chain a kill of the node loses."""
    interval = getattr(request.module, "NODE_STATE_INTERVAL_S", None)
    server = ChaosServer(tmp_path / "data", **({} if interval is None else {"state_interval_s": interval}))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        server._kill_orphans()
