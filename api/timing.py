"""`Server-Timing` on every answer (W3C Server Timing): `app;dur=<ms>`, the time from the request
reaching the app to its answer's headers, and, for a read, `wait;dur=<ms>` (from reaching the app
to its queries starting on their thread: the thread pool, the GIL, the event loop) and
`read;dur=<ms>` (its queries and their rows). A client that measures more than `app` waited outside
the app; `bench/load.py` prints them beside its slowest reads, to tell queueing from work."""

from __future__ import annotations

import contextvars
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_phases: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar(
    "server_timing", default=None
)


def mark(phase: str, since: float | None = None) -> float:
    """Records `phase` as lasting from `since` (default: the request reaching the app) until now;
    returns now. Outside a timed request it records nothing. The context travels with the
    request into its worker thread, so a read's thread can mark its own phases."""
    now = time.perf_counter()
    phases = _phases.get()
    if phases is not None:
        phases[phase] = (now - (phases["start"] if since is None else since)) * 1000
    return now


class ServerTiming:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        phases = {"start": time.perf_counter()}
        _phases.set(phases)

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                mark("app")
                metrics = ", ".join(f"{name};dur={ms:.1f}" for name, ms in phases.items() if name != "start")
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"server-timing", metrics.encode())],
                }
            await send(message)

        await self.app(scope, receive, timed)
