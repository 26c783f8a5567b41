"""How the indexer stores an EPCIS event (`epcis_event_ids.document`), and the fingerprints that
say whose the stored events are: the identifier settings they were written with, and the mapping's
code that wrote them.

An event is stored as the compact JSON a read answers, without `recordTime` (when this index
captured it: not the chain's, so not in what an audit rebuilds); a read appends it to the text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from provenance.domain.trace import Coordinates
from provenance.epcis.export import (
    Assayed,
    Chain,
    Corrected,
    CustodyStep,
    Fact,
    LotRecord,
    Names,
    Registered,
    Transformed,
    events_of,
)
from provenance.epcis.ids import IdentifierScheme


def event_text(event: Mapping[str, Any]) -> str:
    """An event as the API's answers write it (compact JSON)."""
    return json.dumps(event, separators=(",", ":"))


def with_record_time(text: str, record_time: str) -> str:
    """A stored event's text with its `recordTime` last, as `event_text` writes an event that has it."""
    return f'{text[:-1]},"recordTime":"{record_time}"}}'


def current_fingerprints(scheme: IdentifierScheme) -> tuple[str, str]:
    """What the stored events must have been made with for `scheme` to be served them: the
    identifiers' fingerprint and the mapping's."""
    return scheme.fingerprint(), mapping_fingerprint(scheme)


def _at(block: int, log_index: int) -> Coordinates:
    return Coordinates(block, f"0x{block:064x}", f"0x{block + log_index:064x}", 0, log_index)


def _specimens(commodity: str) -> list[Fact]:
    """One fact of every kind the mapping writes (and each of its variants)."""
    record = LotRecord(commodity, 8_800, "0x" + "ab" * 32, "F-2", 1_767_225_000)
    registered = Registered("A-1", "S-1", 1_500, _at(10, 0), record)
    transformed = Transformed(
        7, "blend", "S-1", (("A-1", 1_500), ("A-2", 250)), (("B-1", 1_700),), _at(11, 1),
        "0x" + "cd" * 32, (LotRecord(commodity, 9_100, "0x" + "ef" * 32),),
    )  # fmt: skip
    return [
        registered,
        transformed,
        CustodyStep("A-1", "offered", "0x" + "11" * 20, "0x" + "22" * 20, _at(12, 0)),
        CustodyStep("A-1", "accepted", "0x" + "11" * 20, "0x" + "22" * 20, _at(13, 0)),
        Assayed("B-1", "0x" + "33" * 20, 9_000, "ISO 1171", "0x" + "44" * 32, 1_767_225_100, _at(14, 0), "0x55"),
        Assayed("B-1", "0x" + "33" * 20, 9_000, "ISO 1171", "0x" + "44" * 32, 1_900_000_000, _at(15, 0)),
        Corrected("A-1", "incorrect_data", -100, 1_400, "0x" + "66" * 20, "0x" + "77" * 32, registered, _at(16, 0)),
        Corrected("B-1", "did_not_occur", -1_700, 0, "0x" + "66" * 20, "0x" + "88" * 32, transformed, _at(17, 0)),
    ]  # fmt: skip


@lru_cache(maxsize=16)
def mapping_fingerprint(scheme: IdentifierScheme) -> str:
    """The hash of the events this code writes for a fixed set of facts of every kind, with
    `scheme`: it changes with any change of the mapping those facts show, so events stored by
    another version of the code are never served as this one's."""
    gs1 = scheme.gs1
    commodity = gs1.item_references[0][0] if gs1 is not None and gs1.item_references else "COAL"
    facts = _specimens(commodity)
    names = Names(scheme, {lot: commodity for lot in ("A-1", "A-2", "B-1")})
    events: list[Any] = events_of(
        facts, Chain(1, "0x" + "99" * 20), lambda block: 1_767_225_600 + block, names
    )
    return hashlib.sha256("\n".join(event_text(event) for event in events).encode()).hexdigest()
