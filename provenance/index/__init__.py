"""The SQL index of registry events: models, migrations, the indexer, snapshots; and the write
path's tables: API credentials and the transaction outbox.

The only package that imports SQLAlchemy.
"""

# the write path's tables share the index's Base: importing the package puts them in its metadata
from provenance.index import (
    delivery_models,  # noqa: F401  (outbound deliveries' tables)
    epcis_models,  # noqa: F401  (the EPCIS query interface's tables)
    write_models,  # noqa: F401
)
from provenance.index.credentials_store import CredentialStore
from provenance.index.db import check_current, make_engine, upgrade
from provenance.index.indexer import Indexer, LogSource, SyncResult
from provenance.index.outbox import OutboxStore
from provenance.index.snapshot import digest, index_snapshot

__all__ = [
    "CredentialStore",
    "Indexer",
    "LogSource",
    "OutboxStore",
    "SyncResult",
    "check_current",
    "digest",
    "index_snapshot",
    "make_engine",
    "upgrade",
]
