"""The read side of our NGSI-LD interface as use cases (docs/ngsi-ld.md): lots and sites as
entities, one entity by id, one lot's history. The API (`api/routers/ngsi_ld.py`) translates HTTP
into these calls and `EntityNotFound` into a 404; the entities come from the index and the
operator's directory, never from the node."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from provenance.certificates import held_bytes
from provenance.directory import load_directory
from provenance.documents import DocumentStore
from provenance.domain.assay_certificate import MAX_CERTIFICATE_BYTES, CertificateStatus, check_certificate
from provenance.domain.ngsi_ld import (
    DLT_RECEIPT,
    MINING_SITE,
    ORE_LOT,
    LotState,
    Place,
    iso_time,
    lot_entity,
    lot_entity_id,
    lot_fragment,
    parse_entity_id,
    receipt_entity,
    site_entity,
)
from provenance.domain.ngsi_ld_query import Term
from provenance.errors import DomainError, ProvenanceError
from provenance.index.ngsi_queries import NgsiQueries

Entity = dict[str, Any]


class EntityNotFound(ProvenanceError, LookupError):
    """No entity has this id (or it is not one we issue)."""


class NotTemporal(DomainError):
    """The entity does not change, so it has no history to query."""


def certified_analytes(
    documents: DocumentStore, certificate_hash: str, lot_id: str
) -> list[dict[str, str]] | None:
    """The analytes of an assay's certificate when the file held under its hash is the certificate
    the chain committed for this lot; None otherwise (not held, another file, another lot)."""
    held = held_bytes(documents, certificate_hash.lower())
    if held is None or len(held) > MAX_CERTIFICATE_BYTES:
        return None
    check = check_certificate(held, certificate_hash.lower(), lot_id)
    if check.status is not CertificateStatus.MATCHES:
        return None
    return [analyte.as_dict() for analyte in check.analytes]


class NgsiLdReads:
    def __init__(self, engine: Any, data_dir: Path, documents: DocumentStore) -> None:
        self.queries = NgsiQueries(engine)
        self.data_dir = data_dir
        self.documents = documents

    def _certified(self, state: LotState) -> LotState:
        """The lot with its newest assay's analytes, if its certificate is held and matches."""
        if not state.assays:
            return state
        newest = state.assays[-1]
        analytes = certified_analytes(self.documents, newest.certificate_hash, state.origin.lot_id)
        if analytes is None:
            return state
        return replace(state, assays=(*state.assays[:-1], replace(newest, analytes=analytes)))

    def _place(self) -> tuple[Callable[[str, str | None], Place | None], Mapping[str, str]]:
        directory = load_directory(self.data_dir)

        def place(site: str, face: str | None) -> Place | None:
            found = directory.place(site, face)
            return None if found is None else Place(found.latitude, found.longitude)

        return place, directory.site_names

    def lots(
        self, terms: Sequence[Term], ids: Sequence[str], limit: int, offset: int, *, count: bool
    ) -> tuple[list[Entity], int | None]:
        """A page of OreLots (creation order) for which every term holds; with `ids`, only those."""
        keys = _keys(ids, ORE_LOT)
        if ids and not keys:
            return [], 0 if count else None
        place, _ = self._place()
        states = self.queries.lots(terms, keys, limit, offset) if limit else []
        entities = [
            lot_entity(self._certified(state), place(state.origin.site, state.origin.face))
            for state in states
        ]
        return entities, self.queries.count_lots(terms, keys) if count else None

    def sites(
        self, ids: Sequence[str], limit: int, offset: int, *, count: bool
    ) -> tuple[list[Entity], int | None]:
        keys = _keys(ids, MINING_SITE)
        if ids and not keys:
            return [], 0 if count else None
        place, names = self._place()
        found = self.queries.sites(keys, limit, offset) if limit else []
        entities = [site_entity(site, names.get(site), place(site, None)) for site in found]
        return entities, self.queries.count_sites(keys) if count else None

    def entity(self, entity_id: str) -> Entity:
        reference = parse_entity_id(entity_id)
        if reference is None:
            raise EntityNotFound(f"no entity {entity_id}")
        place, names = self._place()
        if reference.type == ORE_LOT and reference.lot_id is not None:
            state = self.queries.lot(reference.lot_id)
            if state is not None and state.origin.site == reference.site:
                return lot_entity(self._certified(state), place(state.origin.site, state.origin.face))
        elif reference.type == MINING_SITE and reference.site is not None:
            if self.queries.sites([reference.site], 1, 0):
                return site_entity(reference.site, names.get(reference.site), place(reference.site, None))
        elif reference.tx_hash is not None and reference.log_index is not None:
            found = self.queries.receipt(reference.tx_hash, reference.log_index)
            if found is not None and found[0].chain_id == reference.chain_id:
                fact, lot_id = found
                sites = self.queries.site_of([lot_id]) if lot_id else {}
                target = lot_entity_id(sites[lot_id], lot_id) if lot_id in sites else ""
                return receipt_entity(fact, target)
        raise EntityNotFound(f"no entity {entity_id}")

    def history(self, entity_id: str) -> dict[str, list[dict[str, Any]]]:
        """A lot's attribute instances, each fact's in chain order, each with an `observedAt` (its
        own, or its block's time): the lot's facts folded as a hub receives them."""
        reference = parse_entity_id(entity_id)
        if reference is not None and reference.type in (MINING_SITE, DLT_RECEIPT):
            raise NotTemporal("id", f"{reference.type} entities do not change: read the entity itself")
        if reference is None or reference.type != ORE_LOT or reference.lot_id is None:
            raise EntityNotFound(f"no entity {entity_id}")
        made = self.queries.origin(reference.lot_id)
        if made is None or made[0].site != reference.site:
            raise EntityNotFound(f"no entity {entity_id}")
        origin, parents = made
        place, _ = self._place()
        located = place(origin.site, origin.face)
        instances: dict[str, list[dict[str, Any]]] = {}
        for fact, args in self.queries.history(reference.lot_id):
            analytes = (
                certified_analytes(self.documents, str(args["certificateHash"]), origin.lot_id)
                if fact.name == "AssayRecorded"
                else None
            )
            fragment = lot_fragment(
                fact,
                args,
                site=origin.site,
                lot_id=origin.lot_id,
                origin=origin,
                parents=parents,
                place=located,
                analytes=analytes,
            )
            for name, attribute in fragment.items():
                if name in ("id", "type"):
                    continue
                for instance in attribute if isinstance(attribute, list) else [attribute]:
                    stamped = dict(instance)
                    if "observedAt" not in stamped and fact.block_time is not None:
                        stamped["observedAt"] = iso_time(fact.block_time)
                    instances.setdefault(name, []).append(stamped)
        return instances


def _keys(ids: Sequence[str], entity_type: str) -> list[str]:
    """The lots (or sites) that ids of `entity_type` name; ids of other types name none."""
    keys = []
    for entity_id in ids:
        reference = parse_entity_id(entity_id)
        if reference is None or reference.type != entity_type:
            continue
        key = reference.lot_id if entity_type == ORE_LOT else reference.site
        if key is not None:
            keys.append(key)
    return keys
