"""The integration suite's anvil with a deployed registry and generated actors (one per test)."""

from __future__ import annotations

from tests.integration.conftest import chain

__all__ = ["chain"]
