"""`?wait=true` on the event loop (api.waiting.FinalWaits): a waiting request is answered when the
outbox says its operation became final, by one read; a notice that never comes is made up for by
a poll; after the timeout the operation is answered as it stands; nothing is left registered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from api.waiting import FinalWaits
from provenance.domain.operations import OperationKind, OperationStatus, OperationView
from provenance.index.outbox import OutboxStore
from tests.outbox_support import register_payload, settle
from tests.unit.test_outbox_worker import Outbox, outbox_on_each_engine  # noqa: F401 (a fixture)


@pytest.fixture
def box(outbox_on_each_engine: Outbox) -> Outbox:  # noqa: F811 (the fixture imported above)
    return outbox_on_each_engine


T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(main())` on a thread of its own: the browser tests' Playwright keeps an event
    loop running on the main thread for the whole session."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def register(box: Outbox, lot_id: str) -> str:
    return box.submit(OperationKind.REGISTER_LOTS, register_payload(lot_id))


async def wait_while_the_worker_settles(
    waits: FinalWaits, box: Outbox, operation_id: str
) -> tuple[OperationView | None, float]:
    future = waits.expect(operation_id)
    started = time.monotonic()
    worker = box.worker()
    settling = asyncio.create_task(asyncio.to_thread(settle, worker))
    view = await waits.until_final(operation_id, future, 20)
    await settling
    return view, time.monotonic() - started


def test_a_waiting_request_is_answered_at_the_workers_commit_not_at_the_next_poll(box: Outbox) -> None:
    waits = FinalWaits(box.store, poll_s=60)
    operation_id = register(box, "FW-1")

    view, seconds = run(lambda: wait_while_the_worker_settles(waits, box, operation_id))

    assert view is not None
    assert view.status is OperationStatus.CONFIRMED
    assert view.transactions[0].tx_hash
    assert seconds < 30, "the request slept until its poll"
    assert waits.waiting() == 0


def test_a_notice_that_never_comes_is_made_up_for_by_the_poll(box: Outbox) -> None:
    deaf = OutboxStore(box.store.engine)  # the worker's commits through box.store never reach it
    waits = FinalWaits(deaf, poll_s=0.05)
    operation_id = register(box, "FW-2")

    view, _seconds = run(lambda: wait_while_the_worker_settles(waits, box, operation_id))

    assert view is not None
    assert view.status is OperationStatus.CONFIRMED
    assert waits.waiting() == 0


def test_after_the_timeout_the_operation_is_answered_as_it_stands(box: Outbox) -> None:
    waits = FinalWaits(box.store, poll_s=0.05)
    operation_id = register(box, "FW-3")

    async def wait() -> OperationView | None:
        return await waits.until_final(operation_id, waits.expect(operation_id), 0.3)

    view = run(wait)

    assert view is not None
    assert view.status is OperationStatus.PENDING
    assert waits.waiting() == 0
