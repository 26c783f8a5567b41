"""The HTTP API: FastAPI routers over `provenance`; the only package that imports FastAPI."""

from api.app import create_app

__all__ = ["create_app"]
