"""The EPCIS query interface's own tables, beside the index's on the same `Base` (migration 0009).

* `record_times`: when the index stored each dated block, in milliseconds since 1970 in the
  database's clock: an event's EPCIS `recordTime` (when this repository captured it). A trigger on
  `block_times` writes it in the indexer's own transaction, so the indexer needs no code for it and
  a block stored again after a reorg is recorded again. Not derived from the chain, so not one of
  the `INDEX_TABLES` an audit compares with a rebuild.
* `epcis_named_queries`: named queries (`POST /epcis/queries`), their definition as the client
  gave it, and the account whose token created them.
* `epcis_event_ids`: each event's eventID (its CBV 2.0 event hash) by its key in chain order
  (block, transaction index, log index, part: a correction's declaration is part 0, its corrective
  event part 1), written by the indexer in the transaction that stores the event and removed with
  it on a reorg (migration 0012), and the finished event itself (`document`: its JSON text as a
  read answers it, but for `recordTime`, which is not the chain's; migration 0013). Both depend on
  the deployment's identifiers and on the mapping's code: `epcis_id_scheme` holds the fingerprint
  of the identifiers they were made with and one of the mapping's output (`mapping`); reads use
  them only while both are their own (`provenance.index.epcis_ids_store`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provenance.index.models import ADDRESS, Base, JsonArgs

QUERY_NAME = 200


class RecordTime(Base):
    __tablename__ = "record_times"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    recorded_ms: Mapped[int] = mapped_column(BigInteger)


class NamedQuery(Base):
    __tablename__ = "epcis_named_queries"

    name: Mapped[str] = mapped_column(String(QUERY_NAME), primary_key=True)
    query: Mapped[dict[str, Any]] = mapped_column(JsonArgs)
    created_by: Mapped[str] = mapped_column(String(ADDRESS))
    created_at: Mapped[float] = mapped_column(Float(precision=53))


EVENT_ID = 100
"""`ni:///sha-256;<64 hex>?ver=CBV2.0` is 88 characters."""


class EpcisEventId(Base):
    __tablename__ = "epcis_event_ids"
    __table_args__ = (Index(None, "event_id"),)

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tx_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    log_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    part: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[str] = mapped_column(String(EVENT_ID))
    document: Mapped[str] = mapped_column(Text)
    """The event as compact JSON (text, not JSON: a read splices it into its answer as stored)."""


class EpcisIdScheme(Base):
    __tablename__ = "epcis_id_scheme"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    mapping: Mapped[str] = mapped_column(String(64))
    """The fingerprint of what the mapping's code writes (`epcis_ids_store.mapping_fingerprint`)."""
