"""Progress of a long command (an audit, an index backfill, an ingest) on stderr, where it never
mixes with the command's answer on stdout: a bar on a terminal (rich, as typer brings it), else a
line when a phase starts and at most one every half second after it, so a log stays readable."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

LINE_EVERY_S = 0.5


class ProgressReport:
    """Call it with (phase, done, total, unit) as work goes on; `total` None while it is unknown."""

    def __init__(self, *, terminal: bool | None = None) -> None:
        self._terminal = sys.stderr.isatty() if terminal is None else terminal
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._phase = ""
        self._last = 0.0

    def __enter__(self) -> Self:
        if self._terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[unit]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, phase: str, done: int, total: int | None, unit: str) -> None:
        if self._bar is not None:
            task = self._tasks.get(phase)
            if task is None:
                task = self._tasks[phase] = self._bar.add_task(phase, total=total, unit=unit)
            self._bar.update(task, completed=done, total=total)
            return
        now = time.monotonic()
        finished = total is not None and done >= total
        if phase == self._phase and now - self._last < LINE_EVERY_S and not finished:
            return
        self._phase, self._last = phase, now
        of = f"/{total:,}" if total is not None else ""
        percent = f" ({100 * done // total if total else 100}%)" if total is not None else ""
        print(f"{phase}: {done:,}{of} {unit}{percent}", file=sys.stderr, flush=True)
