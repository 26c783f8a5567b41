"""A real headless browser on the real page: Debian's chromium driven by Playwright, against the
app served by uvicorn on a free local port.

Nothing downloads a browser: Playwright launches the system chromium (`make browser` installs
it). A machine without it fails these tests with that instruction; they are never skipped, since
a page nobody looked at in a browser is a page nobody tested.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.page_history import PageStack, page_stack

CHROMIUM = Path(os.environ.get("PROVENANCE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
"""Screenshots, kept after the run for a person to look at (git-ignored)."""


def pytest_configure(config: pytest.Config) -> None:
    """Registers the marker here too, so `--strict-markers` accepts it whatever pyproject says."""
    config.addinivalue_line("markers", "browser: drives the system chromium through Playwright")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no chromium at {CHROMIUM}: run `make browser` (apt-get install chromium), or point "
            "PROVENANCE_TEST_CHROMIUM at one; the browser tests never download a browser"
        )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


class LiveServer:
    """uvicorn serving an app in a thread, on a port the OS picked."""

    def __init__(self, stack: PageStack) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        config = uvicorn.Config(stack.app, log_level="warning", lifespan="off", ws="none", http="h11")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    with page_stack(tmp_path_factory.mktemp("pages")) as built:
        yield built


@pytest.fixture(scope="module")
def server(stack: PageStack) -> Iterator[LiveServer]:
    with LiveServer(stack) as live:
        yield live


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
