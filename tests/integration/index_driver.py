"""One indexer backfill in a process of its own, for the crash tests to kill at random moments.

    python -m tests.integration.index_driver MAX_RANGE

Reads the same PROVENANCE_* settings as `provenance index` (database URL, RPC URL, data
directory with deployment.json) but takes block ranges of MAX_RANGE, so that a backfill of a
small history is many database transactions and a kill can land between any two of them.
Prints "syncing" once connected and warmed up, and "synced <head>" when the backfill is complete.
"""

from __future__ import annotations

import sys

from web3 import HTTPProvider, Web3

from provenance.chain.deployment import Deployment
from provenance.chain.events import decoders
from provenance.chain.logsource import RpcLogSource
from provenance.config import Settings
from provenance.index.db import make_engine
from provenance.index.indexer import Indexer


def main(max_range: int) -> None:
    settings = Settings()
    deployment = Deployment.load(settings.deployment_path)
    w3 = Web3(HTTPProvider(settings.effective_rpc_url, request_kwargs={"timeout": 30}))
    engine = make_engine(settings.effective_database_url)
    indexer = Indexer(engine, RpcLogSource(w3, deployment.registry), deployment, max_range=max_range)
    # warm up first (decoder tables, the first HTTP connection), so that the kills the test times
    # after "syncing" land in the backfill rather than in start-up
    decoders()
    w3.eth.get_block("latest")
    print("syncing", flush=True)
    result = indexer.sync()
    print(f"synced {result.head}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
