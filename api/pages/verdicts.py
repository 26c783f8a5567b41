"""The lot page's verdict, kept per lot and index block, and checked again in the background when
the index moves on.

A verdict compares the index's claims with the chain, both at the index's cursor block: at one
cursor (its number and hash, so a reorg to another block of the same height is another key) it
comes out the same every time, and checking a lineage of a thousand lots asks the chain for each
of them. So the first view of a lot at a block verifies and keeps the answer; later views at that
block take it; a view after the cursor moved shows the kept answer (which names the block it was
checked at) and has it checked again on a thread of its own, so no view waits on the chain twice.

What that costs, on purpose: a claim altered in the index's tables without the cursor moving (a
tampered database) shows on the page from the next block on, or on the first view of that lot.
`GET /v1/lots/{id}/verify` always checks live, and the auditor's replay checks every row.

"could not verify" is never kept: the next view tries again. Per API process, at most `capacity`
lots (least recently viewed go first). A lineage too long to check while a buyer waits (the page
decides: `SYNC_VERIFY_MAX_LOTS`) is checked on the same background thread, and the page says so
and reloads itself.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from api.pages.view import VerdictView

log = logging.getLogger(__name__)

Cursor = tuple[int, str]
"""The index's cursor: block number and hash."""

DEFAULT_CAPACITY = 10_000


@dataclass(frozen=True)
class _Kept:
    cursor: Cursor
    view: VerdictView


class VerdictCache:
    def __init__(self, verify: Callable[[str], VerdictView], capacity: int = DEFAULT_CAPACITY) -> None:
        self._verify = verify
        self._capacity = capacity
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._due: OrderedDict[str, Cursor] = OrderedDict()
        """Lots to check again, with the cursor they were last viewed at."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._closed = False
        self._thread: threading.Thread | None = None
        self.verifications = 0
        """How many times a lineage was checked against the chain (tests and figures read it)."""

    def verdict(self, lot_id: str, cursor: Cursor | None) -> VerdictView:
        """The lot's verdict for the index at `cursor` (None: an empty index, never kept)."""
        kept = self.kept(lot_id, cursor)
        return kept if kept is not None else self._check(lot_id, cursor)

    def kept(self, lot_id: str, cursor: Cursor | None) -> VerdictView | None:
        """The verdict kept for the lot, if any (checked again in the background when it was kept
        at another cursor); None asks nothing of the chain."""
        with self._lock:
            kept = self._kept.get(lot_id)
            if kept is None:
                return None
            self._kept.move_to_end(lot_id)
            if kept.cursor != cursor and cursor is not None:
                self._due[lot_id] = cursor
                self._start_or_wake()
            return kept.view

    def check_later(self, lot_id: str, cursor: Cursor | None) -> None:
        """Has the lot checked on the background thread (a lineage too long to check while a buyer
        waits for the page); `kept` has the answer once it is done."""
        if cursor is None:
            return
        with self._lock:
            self._due[lot_id] = cursor
            self._start_or_wake()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _check(self, lot_id: str, cursor: Cursor | None) -> VerdictView:
        view = self._verify(lot_id)
        with self._lock:
            self.verifications += 1
            if cursor is not None and view.state in ("verified", "failed"):
                self._kept[lot_id] = _Kept(cursor, view)
                self._kept.move_to_end(lot_id)
                while len(self._kept) > self._capacity:
                    self._kept.popitem(last=False)
        return view

    def _start_or_wake(self) -> None:
        """Called with the lock held."""
        if self._closed:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="verdicts", daemon=True)
            self._thread.start()
        self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._due and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                lot_id, cursor = self._due.popitem(last=False)
            try:
                self._check(lot_id, cursor)
            except Exception as error:  # the kept answer stays; the next view asks again
                log.warning("checking lot %r again failed: %s", lot_id, type(error).__name__)


class PageCache:
    """Rendered lot pages by (lot, index cursor, language, base URL, the directory's and the
    credentials' stamps), each with the verdict it shows: a page is served again only while that
    verdict is still the one kept for the lot. Which documents this server holds is as fresh as the
    index's last block (a document is uploaded with its anchoring)."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._pages: OrderedDict[tuple[object, ...], tuple[VerdictView, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[object, ...], verdict: VerdictView) -> str | None:
        with self._lock:
            found = self._pages.get(key)
            if found is None or found[0] is not verdict:
                return None
            self._pages.move_to_end(key)
            return found[1]

    def put(self, key: tuple[object, ...], verdict: VerdictView, html: str) -> None:
        with self._lock:
            self._pages[key] = (verdict, html)
            self._pages.move_to_end(key)
            while len(self._pages) > self._capacity:
                self._pages.popitem(last=False)
