"""Reads the pages for people need beyond `ReadQueries`: the facts of many lots at once (a lineage's
origins, in one IN-list query per 500 ids rather than one query per lot), which device measured a
lot, the devices behind a set of addresses, and what the home page lists (the latest lots and
handovers, the sites, the time of the index's latest block).

Answers are frozen domain values, as in `queries.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from provenance.domain.devices import DeviceFact
from provenance.domain.trace import CustodyFact, LotFacts
from provenance.index.models import Device, IndexCursor, LoadAttestationRecord
from provenance.index.queries import (
    IN_LIST_CHUNK,
    ReadQueries,
    _coordinates,
    _device,
    _lot_facts,
    block_times,
    lots,
    moves,
)

attestations = LoadAttestationRecord.__table__
devices = Device.__table__


@dataclass(frozen=True)
class SiteSummary:
    site: str
    lots: int
    last_block: int
    """The block of the site's latest lot."""


def _chunked(ids: Iterable[str]) -> list[list[str]]:
    wanted = sorted(set(ids))
    return [wanted[i : i + IN_LIST_CHUNK] for i in range(0, len(wanted), IN_LIST_CHUNK)]


class PageQueries(ReadQueries):
    """The extra reads, on the same connection as the rest of a request's (`RequestReads`)."""

    def index_cursor(self) -> tuple[int, str] | None:
        """The last indexed block's number and hash (a verdict is kept per cursor)."""
        with self._connect() as connection:
            row = connection.execute(select(IndexCursor.block_number, IndexCursor.block_hash)).first()
        return None if row is None else (int(row[0]), str(row[1]))

    def lots_facts(self, lot_ids: Iterable[str]) -> dict[str, LotFacts]:
        """The facts of each of these lots the index holds (an unknown id is left out)."""
        found: dict[str, LotFacts] = {}
        with self._connect() as connection:
            for chunk in _chunked(lot_ids):
                for row in connection.execute(select(lots).where(lots.c.lot_id.in_(chunk))):
                    found[row.lot_id] = _lot_facts(row)
        return found

    def measured_by(self, lot_ids: Iterable[str]) -> dict[str, str]:
        """Lot id -> the device that measured and signed its load, for the lots a device attested."""
        found: dict[str, str] = {}
        with self._connect() as connection:
            for chunk in _chunked(lot_ids):
                rows = connection.execute(
                    select(attestations.c.lot_id, attestations.c.device).where(
                        attestations.c.lot_id.in_(chunk)
                    )
                )
                found.update((row.lot_id, row.device) for row in rows)
        return found

    def devices_at(self, addresses: Iterable[str]) -> dict[str, DeviceFact]:
        """Lower-case address -> the device registered there, for those of `addresses` that are devices."""
        found: dict[str, DeviceFact] = {}
        with self._connect() as connection:
            for chunk in _chunked(address.lower() for address in addresses):
                rows = connection.execute(select(devices).where(func.lower(devices.c.device).in_(chunk)))
                found.update((row.device.lower(), _device(row)) for row in rows)
        return found

    def latest_lots(self, limit: int) -> list[LotFacts]:
        """The lots created last, newest first."""
        with self._connect() as connection:
            rows = connection.execute(
                select(lots)
                .order_by(lots.c.block_number.desc(), lots.c.log_index.desc(), lots.c.lot_id)
                .limit(limit)
            )
            return [_lot_facts(row) for row in rows]

    def latest_handovers(self, limit: int) -> list[CustodyFact]:
        """The handovers accepted last (lots that left their holder: shipments), newest first."""
        with self._connect() as connection:
            rows = connection.execute(
                select(moves)
                .where(moves.c.action == "accepted")
                .order_by(moves.c.block_number.desc(), moves.c.tx_index.desc(), moves.c.log_index.desc())
                .limit(limit)
            )
            return [
                CustodyFact(row.lot_id, row.action, row.from_address, row.to_address, _coordinates(row))
                for row in rows
            ]

    def sites(self) -> list[SiteSummary]:
        """Every site that has a lot, by name."""
        with self._connect() as connection:
            rows = connection.execute(
                select(lots.c.site, func.count(), func.max(lots.c.block_number))
                .group_by(lots.c.site)
                .order_by(lots.c.site)
            )
            return [SiteSummary(row[0], int(row[1]), int(row[2])) for row in rows]

    def latest_block_time(self) -> int | None:
        """The timestamp of the latest block the index dated: "now" as the chain tells it."""
        with self._connect() as connection:
            latest: int | None = connection.scalar(select(func.max(block_times.c.timestamp)))
            return latest
