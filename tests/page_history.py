"""The history behind the lot-page tests: the read API's realistic history (`build_history`: two
sites, split, merge, blend, process, handovers, an assay, a document, a correction) plus a big
lineage, 48 truck lots from three pits merged, blended and processed in stages into one
concentrate lot (57 lots in one lineage), and a lot whose id holds slashes, on a fresh anvil,
indexed into SQLite.

The big lineage (masses in grams):

    TRUCK-00 .. TRUCK-47    20,000,000 + 10,000 i each, at PIT-A, PIT-B, PIT-D in turn, on 3 days
    merge  8 trucks each    -> ROM-0 .. ROM-5          (no loss)
    blend  3 ROM lots each  -> BLEND-0, BLEND-1        (no loss)
    process BLEND-0 + 1     -> CONC-1 = 90% of the feed (10% lost)
    then TRUCK-47 declared never to have occurred (voided, no mass left to adjust)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from web3.types import TxReceipt

from api.app import create_app
from provenance.bootstrap import Runtime, build_runtime
from provenance.chain.node import AnvilNode
from provenance.config import Settings
from provenance.domain.records import LotRegistration
from provenance.domain.values import CorrectionReason, TransformKind
from provenance.index.db import make_engine, upgrade
from tests.e2e.test_read_api import DAY, OTHER_SITE, build_history
from tests.index_chain import EXTRACTED_AT, SITE, IndexChain, chain_on, record

TRUCKS = 48
PER_MERGE = 8
PER_BLEND = 3
BIG_LOT = "CONC-1"
VOID_TRUCK = f"TRUCK-{TRUCKS - 1:02d}"
"""Declared, after it went into the concentrate, never to have occurred."""
SLASHED_LOT = "PIT-A/2024/0417"
"""Labels may hold "/": the page's URL must still reach the lot."""
PITS = (SITE, OTHER_SITE, "PIT-D")


def truck_mass(i: int) -> int:
    return 20_000_000 + 10_000 * i


@dataclass
class PageStack:
    chain: IndexChain
    runtime: Runtime
    app: FastAPI
    receipts: dict[str, TxReceipt]
    engine: Any

    def index(self) -> None:
        self.chain.indexer(self.engine).sync()


def build_big_lineage(c: IndexChain) -> dict[str, TxReceipt]:
    """The staged lineage above; the processor registers the trucks, so no handover is needed."""
    for pit in PITS:
        c.client.grant_role(c.admin, c.client.registrar_role(pit), c.processor)
    trucks = [
        LotRegistration(
            f"TRUCK-{i:02d}",
            PITS[i % len(PITS)],
            f"F{i % 4 + 1}",
            "Au-ore",
            truck_mass(i),
            5_000,
            EXTRACTED_AT + (i % 3) * DAY,
            record(f"TRUCK-{i:02d}"),
        )
        for i in range(TRUCKS)
    ]
    receipts = {
        f"trucks {pit}": c.client.register_lots(c.processor, [lot for lot in trucks if lot.site == pit])
        for pit in PITS
    }
    slashed = LotRegistration(
        SLASHED_LOT, SITE, "F2", "Au-ore", 7_000, 5_000, EXTRACTED_AT, record(SLASHED_LOT)
    )
    receipts["slashed"] = c.client.register_lots(c.processor, [slashed])
    roms: list[tuple[str, int]] = []
    for m in range(TRUCKS // PER_MERGE):
        inputs = [(f"TRUCK-{i:02d}", truck_mass(i)) for i in range(m * PER_MERGE, (m + 1) * PER_MERGE)]
        rom = (f"ROM-{m}", sum(mass for _, mass in inputs))
        c.transform(TransformKind.MERGE, inputs, [rom], 0)
        roms.append(rom)
    blends: list[tuple[str, int]] = []
    for b in range(len(roms) // PER_BLEND):
        inputs = roms[b * PER_BLEND : (b + 1) * PER_BLEND]
        blend = (f"BLEND-{b}", sum(mass for _, mass in inputs))
        c.transform(TransformKind.BLEND, inputs, [blend], 0)
        blends.append(blend)
    feed = sum(mass for _, mass in blends)
    receipts["concentrate"] = c.transform(
        TransformKind.PROCESS, blends, [(BIG_LOT, feed * 9 // 10)], feed - feed * 9 // 10
    )
    receipts["void"] = c.correct(c.processor, VOID_TRUCK, CorrectionReason.DID_NOT_OCCUR, 0)
    return receipts


@contextmanager
def page_stack(data_dir: Path, **settings: Any) -> Iterator[PageStack]:
    """The history on a fresh anvil, indexed, and the app around it (`settings` added to Settings)."""
    url = f"sqlite:///{data_dir / 'index.sqlite3'}"
    upgrade(url)
    node = AnvilNode()
    w3 = node.start()
    try:
        yield from _stack(chain_on(w3), data_dir, url, settings)
    finally:
        node.kill()


def _stack(chain: IndexChain, data_dir: Path, url: str, settings: dict[str, Any]) -> Iterator[PageStack]:
    receipts = build_history(chain)
    receipts.update(build_big_lineage(chain))
    config = Settings(data_dir=data_dir, rpc_url=chain.w3.provider.endpoint_uri, database_url=url, **settings)
    chain.deployment.save(config.deployment_path)
    runtime = build_runtime(config, w3=chain.w3)
    engine = make_engine(url)
    try:
        stack = PageStack(chain, runtime, create_app(runtime), receipts, engine)
        stack.index()
        yield stack
    finally:
        engine.dispose()
        runtime.close()
