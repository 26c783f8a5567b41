"""The app factory: `create_app(services)` wires routers, error handlers and body limits; nothing
connects here (the services arrive connected, from `provenance.bootstrap.build_services`)."""

from __future__ import annotations

from fastapi import FastAPI

from api import errors
from api.limits import BodyLimit
from api.routers import assays, documents, epcis, health, lots, operations, reads, verify
from provenance.bootstrap import Services

API_PREFIX = "/v1"


def create_app(services: Services) -> FastAPI:
    settings = services.settings
    app = FastAPI(
        title="Mineral provenance",
        version="1",
        summary="Ore lots on an EVM chain: register, transform, hand over, assay, document.",
        description=(
            "Writes are stored in an outbox and answered with an operation (202); add `?wait=true` to "
            "answer once it is confirmed or failed. Every write needs `Authorization: Bearer <token>` "
            "(from `provenance accounts create`); the chain's roles decide what a token's account may do. "
            "Send an `Idempotency-Key` header to make a write safe to retry. Reads (GET) need no token: "
            "provenance is public on the chain, and buyers and auditors verify it; each read answers with "
            "`X-Index-Block`, the last block the index holds."
        ),
    )
    app.state.services = services
    errors.install(app)
    app.add_middleware(
        BodyLimit,
        max_request_bytes=settings.max_request_bytes,
        max_document_bytes=settings.max_document_bytes,
    )
    app.include_router(health.router)
    app.include_router(lots.router, prefix=API_PREFIX)
    app.include_router(assays.router, prefix=API_PREFIX)
    app.include_router(documents.router, prefix=API_PREFIX)
    app.include_router(operations.router, prefix=API_PREFIX)
    app.include_router(verify.router, prefix=API_PREFIX)
    app.include_router(reads.router, prefix=API_PREFIX)
    app.include_router(epcis.router, prefix=API_PREFIX)
    return app


def from_environment() -> FastAPI:
    """For `uvicorn --factory api.app:from_environment`: settings from PROVENANCE_* variables,
    connected when the server calls this, never at import."""
    from provenance.bootstrap import build_services
    from provenance.config import Settings

    return create_app(build_services(Settings()))
