"""`provenance.background.Child`: the main job's worker and indexer run as supervised child
processes; a child that dies is started again, messages cross both ways, and stop() ends it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from provenance.background import STOP, WORK, Child, _listen
from provenance.config import Settings


def echo_main(settings: Settings, inbox: Connection, outbox: Connection) -> None:
    """Answers every WORK with its pid; exits when told, or when the parent's pipe closes."""
    stop = threading.Event()
    _listen(inbox, stop, lambda: outbox.send(os.getpid()))
    stop.wait(60)


def crashing_main(settings: Settings, inbox: Connection, outbox: Connection) -> None:
    """Counts its starts in a file and dies at once, as a child hitting a bug would."""
    starts = settings.data_dir / "starts"
    starts.write_text(str(int(starts.read_text()) + 1 if starts.exists() else 1))
    os._exit(3)


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_messages_cross_both_ways_and_stop_ends_the_child(tmp_path: Path) -> None:
    answers: list[int] = []
    child = Child("echo", echo_main, Settings(data_dir=tmp_path), on_message=answers.append)
    child.supervise()
    wait_for(lambda: child.process is not None and child.process.is_alive())

    def answered() -> bool:
        child.nudge()
        return bool(answers)

    wait_for(answered)
    assert child.process is not None
    assert answers[0] == child.process.pid
    child.send(WORK)
    child.stop(timeout_s=30)
    wait_for(lambda: child.process is not None and child.process.exitcode is not None)
    assert child.process.exitcode == 0, "the child should exit on STOP, not be killed"
    assert STOP == "stop"


def test_a_child_that_dies_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import provenance.background as background

    monkeypatch.setattr(background, "RESTART_BACKOFF_S", (0.1,))
    child = Child("crashing", crashing_main, Settings(data_dir=tmp_path))
    child.supervise()
    starts = tmp_path / "starts"
    wait_for(lambda: starts.exists() and int(starts.read_text()) >= 3)
    child.stop(timeout_s=5)
    count = int(starts.read_text())
    time.sleep(0.5)
    assert int(starts.read_text()) == count, "a stopped child must not be started again"
