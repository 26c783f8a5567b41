"""The app factory: `create_app(runtime)` wires routers, error handlers, body limits and write rate
limits; nothing connects here (the runtime arrive connected, from
`provenance.bootstrap.build_runtime`)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import epcis_rest, errors
from api.chain_head import ChainHead
from api.known_tokens import KnownTokens
from api.limits import BodyLimit, JsonDepthLimit
from api.pages.api_docs import router as api_docs_router
from api.pages.home import router as home_router
from api.pages.router import live_verdict
from api.pages.router import router as pages_router  # with the site page (api/pages/__init__.py)
from api.pages.verdicts import PageCache, VerdictCache
from api.ratelimit import WriteRateLimiter
from api.routers import (
    assays,
    corrections,
    devices,
    documents,
    epcis,
    health,
    lots,
    operations,
    reads,
    verify,
)
from api.routers.ngsi_ld import router as ngsi_ld_router
from api.routers.subscriptions import router as subscriptions_router
from api.timing import ServerTiming
from api.waiting import FinalWaits
from provenance.bootstrap import Runtime
from provenance.index.queries import ReadQueries

API_PREFIX = "/v1"


def create_app(runtime: Runtime, *, watch_head: bool = False) -> FastAPI:
    """`watch_head`: a thread asks the node for its head once a second while the app runs, so no
    read or `/health` ever waits on the node (the server's way; tests' apps ask on demand)."""
    settings = runtime.settings
    chain_head = ChainHead(runtime.head_number, read_index=ReadQueries(runtime.engine).index_block)

    verdicts = VerdictCache(lambda lot_id: live_verdict(runtime, lot_id))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if watch_head:
            chain_head.watch()
        try:
            yield
        finally:
            chain_head.stop()
            verdicts.close()

    app = FastAPI(
        lifespan=lifespan,
        docs_url=None,  # served by api/pages/api_docs.py, with its assets from here, not a CDN
        redoc_url=None,
        title="Mineral provenance",
        version="1",
        summary="Ore lots on an EVM chain: register, transform, hand over, assay, document.",
        description=(
            "Writes are stored in an outbox and answered with an operation (202); add `?wait=true` to "
            "answer once it is confirmed or failed. Every write needs `Authorization: Bearer <token>` "
            "(from `provenance accounts create`); the chain's roles decide what a token's account may do. "
            "Send an `Idempotency-Key` header to make a write safe to retry. Reads (GET) need no token: "
            "provenance is public on the chain, and buyers and auditors verify it; each read answers with "
            "`X-Index-Block`, the last block the index holds, and `X-Index-Lag-Blocks` behind the chain's "
            "head (`X-Chain-Head`); `X-Chain-Unreachable: true` while the node does not answer."
        ),
    )
    app.state.runtime = runtime
    app.state.write_limiter = WriteRateLimiter(settings.write_rate_per_s, settings.write_burst)
    app.state.final_waits = FinalWaits(runtime.outbox)
    app.state.known_tokens = KnownTokens()
    app.state.chain_head = chain_head
    app.state.verdicts = verdicts
    app.state.lot_pages = PageCache()
    errors.install(app)
    app.add_middleware(JsonDepthLimit)  # inside BodyLimit, which bounds what it buffers
    app.add_middleware(
        BodyLimit,
        max_request_bytes=settings.max_request_bytes,
        max_document_bytes=settings.max_document_bytes,
    )
    app.add_middleware(ServerTiming)  # outermost: the whole time the app spent on the request
    app.include_router(health.router)
    app.include_router(pages_router)
    app.include_router(home_router)
    app.include_router(api_docs_router)
    app.include_router(lots.router, prefix=API_PREFIX)
    app.include_router(assays.router, prefix=API_PREFIX)
    app.include_router(documents.router, prefix=API_PREFIX)
    app.include_router(operations.router, prefix=API_PREFIX)
    app.include_router(verify.router, prefix=API_PREFIX)
    app.include_router(reads.router, prefix=API_PREFIX)
    app.include_router(epcis.router, prefix=API_PREFIX)
    app.include_router(devices.router, prefix=API_PREFIX)
    app.include_router(corrections.router, prefix=API_PREFIX)
    app.include_router(subscriptions_router, prefix=API_PREFIX)
    app.include_router(ngsi_ld_router)  # /ngsi-ld/v1 (read-only) and our @context
    # EPCIS 2.0 queries and capture (a capture is a write: the same rate limiter)
    app.mount(epcis_rest.BASE_PATH, epcis_rest.create(runtime, chain_head, app.state.write_limiter))
    return app


def from_environment() -> FastAPI:
    """For `uvicorn --factory api.app:from_environment`: settings from PROVENANCE_* variables,
    connected when the server calls this, never at import."""
    from provenance.bootstrap import build_runtime
    from provenance.config import Settings

    return served(build_runtime(Settings()))


def served(runtime: Runtime) -> FastAPI:
    """The app as a server runs it (`provenance serve` hands in the runtime its worker and
    indexer share, so a `?wait=true` request is woken by the worker's commit)."""
    app = create_app(runtime, watch_head=True)
    # what start-up built (modules, the app's routes and models, web3's ABI machinery) lives as long
    # as the process: out of the collector's sight, a full collection no longer walks it every time,
    # which showed as pauses of every request thread at once
    gc.freeze()
    return app
