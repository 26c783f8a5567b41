"""The city data hub as a kind of destination: every fact about a lot is published to an NGSI-LD
hub as a batch upsert (KETI City Data Hub's ingest interface, or any ETSI GS CIM 009 broker).

Each lot event is one message of up to three entities: the OreLot with the attributes the fact
sets (`provenance.domain.ngsi_ld.lot_fragment`, upserted with options=update so the others stay),
the fact's DLTtxReceipt, and, for a lot's creation, its MiningSite. Messages go in batches of
`PROVENANCE_HUB_BATCH_SIZE` (never two of one lot in a batch: `BatchingKind`), and each message's
outcome is its entities' outcomes in the hub's answer (ETSI: 201/204 all taken, 207 a
BatchOperationResult; KETI: 200 with the same `success`/`errors` body). A message whose entities
were partly taken is sent again with only the rest, so nothing is applied twice.

A retraction (a reorg undid a fact) deletes the fact's DLTtxReceipt and replaces the OreLot with the
state the index now holds (an upsert without options=update replaces the entity's attributes), or
deletes it if the index no longer has the lot; the facts of the new branch then follow as usual.
docs/ngsi-ld.md says why.

OAuth 2.0 client credentials (RFC 6749 4.4): a token from `PROVENANCE_HUB_TOKEN_URL` with the
client id and secret in the form body, as KETI's auth server takes them, kept until it expires and
fetched again on a 401. The secret and the token are never logged or put in an error.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlencode

from provenance.config import Settings
from provenance.deliveries.kinds import LotLookup, Message, Outcome
from provenance.directory import load_directory
from provenance.documents import DocumentStore
from provenance.domain.deliveries import Destination, IndexedEvent, event_message_id, retraction_id
from provenance.domain.ngsi_ld import (
    CONTEXT_PATH,
    LOT_FACTS,
    Fact,
    Place,
    lot_entity,
    lot_entity_id,
    lot_fragment,
    receipt_entity,
    site_entity,
)
from provenance.errors import DomainError
from provenance.index.ngsi_queries import NgsiQueries
from provenance.ngsi_ld import certified_analytes

log = logging.getLogger("provenance.deliveries.hub")

KIND = "ngsi-ld-hub"
USER_AGENT = "mineral-provenance-hub/1"


# ---------------------------------------------------------------------- settings


@dataclass(frozen=True)
class HubConfig:
    """What publishing to a hub needs, checked once from the settings."""

    ingest_url: str
    api: Literal["keti", "etsi"]
    dataset_prefix: str
    context_url: str
    batch_size: int
    timeout_s: float
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    data_manager_url: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> HubConfig:
        if not settings.hub_ingest_url:
            raise DomainError("PROVENANCE_HUB_INGEST_URL", "is not set: where the hub takes batch upserts")
        context = settings.hub_context_url or (
            settings.public_url.rstrip("/") + CONTEXT_PATH if settings.public_url else None
        )
        if not context:
            raise DomainError(
                "PROVENANCE_HUB_CONTEXT_URL",
                "is not set, nor PROVENANCE_PUBLIC_URL: the hub must be able to fetch our @context",
            )
        if settings.hub_token_url and not (settings.hub_client_id and settings.hub_client_secret):
            raise DomainError(
                "PROVENANCE_HUB_CLIENT_ID", "and PROVENANCE_HUB_CLIENT_SECRET are needed with a token URL"
            )
        secret = settings.hub_client_secret.get_secret_value() if settings.hub_client_secret else None
        return cls(
            ingest_url=settings.hub_ingest_url.rstrip("/"),
            api=settings.hub_api,
            dataset_prefix=settings.hub_dataset_prefix,
            context_url=context,
            batch_size=settings.hub_batch_size,
            timeout_s=settings.hub_timeout_s,
            token_url=settings.hub_token_url,
            client_id=settings.hub_client_id,
            client_secret=secret,
            data_manager_url=(settings.hub_data_manager_url or "").rstrip("/") or None,
        )

    def dataset(self, entity_type: str) -> str:
        """KETI binds a dataset to one data model: one dataset per entity type."""
        return self.dataset_prefix + entity_type


# ---------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None

    def problem(self) -> str:
        """The hub's ProblemDetails, short (never the request, which may hold a token)."""
        found = self.json()
        if isinstance(found, dict):
            text = " ".join(str(found.get(key, "")) for key in ("type", "title", "detail") if found.get(key))
            return f"HTTP {self.status} {text}"[:300]
        return f"HTTP {self.status} {self.body[:200].decode('utf-8', 'replace')}"


class Transport(Protocol):
    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> Answer:
        """One request; raises OSError when nothing was answered."""
        ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a hub that redirects a write is answered as it answered: not acknowledged


class UrllibTransport:
    def __init__(self) -> None:
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> Answer:
        if not url.startswith(("http://", "https://")):
            raise OSError(f"not an http(s) URL: {url}")
        request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310 - checked above
        try:
            with self._opener.open(request, timeout=timeout_s) as response:
                return Answer(response.status, response.read(1 << 20))
        except urllib.error.HTTPError as error:
            with error:
                return Answer(error.code, error.read(1 << 20))


class TokenRefused(OSError):
    """The token endpoint did not give a token (its status; never the secret)."""


class ClientCredentials:
    """OAuth 2.0 client credentials grant (RFC 6749 4.4), the token kept until shortly before it
    expires."""

    def __init__(
        self,
        config: HubConfig,
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.transport = transport
        self.clock = clock
        self._token: tuple[str, float] | None = None

    def header(self) -> dict[str, str]:
        if not self.config.token_url:
            return {}
        if self._token is None or self._token[1] <= self.clock():
            self._token = self._fetch()
        return {"Authorization": f"Bearer {self._token[0]}"}

    def forget(self) -> None:
        self._token = None

    def _fetch(self) -> tuple[str, float]:
        assert self.config.token_url is not None
        form = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.config.client_id or "",
                "client_secret": self.config.client_secret or "",
            }
        ).encode("ascii")
        answer = self.transport.send(
            "POST",
            self.config.token_url,
            form,
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            self.config.timeout_s,
        )
        found = answer.json()
        if (
            answer.status != 200
            or not isinstance(found, dict)
            or not isinstance(found.get("access_token"), str)
        ):
            raise TokenRefused(f"the token endpoint answered HTTP {answer.status} without an access token")
        lifetime = found.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) else 300.0
        return found["access_token"], self.clock() + max(0.0, seconds - 30.0)


# ---------------------------------------------------------------------- the hub's answers


EntityResults = dict[str, str | None]
"""Per entity id: None if the hub took it, else why not."""


def read_batch_answer(answer: Answer, sent: Sequence[str]) -> EntityResults | str:
    """Per-entity results of a batch operation, or why the whole batch failed. ETSI (clause
    6.15.3.1 / 6.16.3.1 in V1.8.1): 201 (ids created) and 204 mean every entity was taken, 207 a
    BatchOperationResult (5.2.16) naming successes and errors; anything else fails the batch.
    KETI's ingest interface answers 200 with the same `success`/`errors` body."""
    if answer.status in (201, 204) or (answer.status == 200 and answer.json() is None):
        return dict.fromkeys(sent)
    body = answer.json()
    if answer.status in (200, 207) and isinstance(body, dict):
        results: EntityResults = {}
        for entity_id in body.get("success") or []:
            results[str(entity_id)] = None
        for error in body.get("errors") or []:
            if isinstance(error, dict) and error.get("entityId"):
                problem: dict[str, Any] = error["error"] if isinstance(error.get("error"), dict) else {}
                results[str(error["entityId"])] = (
                    " ".join(
                        str(problem.get(key, "")) for key in ("type", "title", "detail") if problem.get(key)
                    )
                    or "refused"
                )[:300]
        for entity_id in sent:
            results.setdefault(entity_id, "the hub's answer does not name it")
        return results
    return answer.problem()


# ---------------------------------------------------------------------- the kind


PlaceLookup = Callable[[str, str | None], Place | None]
SiteNames = Callable[[], Mapping[str, str]]


class HubKind:
    """Publishes lot facts to an NGSI-LD hub in batch upserts (a `BatchingKind`)."""

    name = KIND

    def __init__(
        self,
        config: HubConfig,
        queries: NgsiQueries,
        *,
        chain_id: int,
        registry: str,
        places: PlaceLookup = lambda _site, _face: None,
        site_names: SiteNames = dict,
        transport: Transport | None = None,
        credentials: ClientCredentials | None = None,
        documents: DocumentStore | None = None,
    ) -> None:
        self.config = config
        self.queries = queries
        self.chain_id = chain_id
        self.registry = registry
        self.places = places
        self.site_names = site_names
        self.transport = transport or UrllibTransport()
        self.credentials = credentials or ClientCredentials(config, self.transport)
        self.documents = documents
        """Where assay certificates are held: their analytes go with an assay when they match."""
        self._sites: dict[str, tuple[int, dict[str, str]]] = {}
        """Per destination: the rollbacks it had answered, and the lots' sites known since."""
        self._taken: dict[str, set[str]] = {}
        """Per message id, the entities the hub took already (a partly taken message is sent again
        with the rest only). Kept in memory: after a restart a message is sent whole, and upserting
        the same attributes again changes nothing."""

    # ------------------------------------------------------------------ the interface

    def matcher(self, destination: Destination, lookup: LotLookup) -> Callable[[IndexedEvent], bool]:
        return lambda event: event.name in LOT_FACTS and event.lot_id is not None

    def batch_limit(self, destination: Destination) -> int:
        return self.config.batch_size

    def _fact(self, event: IndexedEvent) -> Fact:
        return Fact(
            event.name,
            self.chain_id,
            self.registry,
            event.block_number,
            event.block_hash,
            event.tx_hash,
            event.tx_index,
            event.log_index,
            event.block_time,
        )

    def _known_sites(self, destination: Destination) -> dict[str, str]:
        """Lots' sites, kept per destination until it answers a rollback (a reorg could undo a
        lot's creation; nothing else changes a lot's site)."""
        epoch, sites = self._sites.get(destination.id, (-1, {}))
        if epoch != destination.rollbacks_seen:
            sites = {}
            self._sites[destination.id] = (destination.rollbacks_seen, sites)
        return sites

    def _site(self, destination: Destination, lot_id: str) -> str:
        sites = self._known_sites(destination)
        site = sites.get(lot_id)
        if site is None:
            site = self.queries.site(lot_id)
            if site is None:
                raise LookupError(f"lot {lot_id} is not in the index")
            sites[lot_id] = site
        return site

    def message(self, destination: Destination, event: IndexedEvent) -> Message:
        assert event.lot_id is not None
        fact = self._fact(event)
        extra: list[dict[str, Any]] = []
        if event.name in ("LotRegistered", "LotCreated"):
            made = self.queries.origin(event.lot_id)
            if made is None:
                raise LookupError(f"lot {event.lot_id} of {event.name} is not in the index")
            origin, parents = made
            self._known_sites(destination)[event.lot_id] = origin.site
            fragment = lot_fragment(
                fact,
                event.args,
                site=origin.site,
                lot_id=origin.lot_id,
                origin=origin,
                parents=parents,
                place=self.places(origin.site, origin.face),
            )
            extra.append(
                site_entity(origin.site, self.site_names().get(origin.site), self.places(origin.site, None))
            )
        else:
            analytes = (
                certified_analytes(self.documents, str(event.args["certificateHash"]), event.lot_id)
                if self.documents is not None and event.name == "AssayRecorded"
                else None
            )
            fragment = lot_fragment(
                fact,
                event.args,
                site=self._site(destination, event.lot_id),
                lot_id=event.lot_id,
                analytes=analytes,
            )
        return {
            "id": event_message_id(self.chain_id, event.block_hash, event.tx_hash, event.log_index),
            "type": "upsert",
            "lot": fragment["id"],
            "entities": [fragment, receipt_entity(fact, fragment["id"]), *extra],
        }

    def retraction(self, destination: Destination, event: IndexedEvent) -> Message:
        assert event.lot_id is not None
        fact = self._fact(event)
        event_id = event_message_id(self.chain_id, event.block_hash, event.tx_hash, event.log_index)
        state = self.queries.lot(event.lot_id)
        message: dict[str, Any] = {
            "id": retraction_id(event_id),
            "type": "retraction",
            "retracts": event_id,
            "delete": [fact.receipt_id],
        }
        if state is None:
            # The lot's creation was undone and its row with it, so its site is unknown: its id
            # at every site the index knows is deleted (ResourceNotFound for the others is fine).
            message["lot"] = None
            for site in self.queries.sites((), 10_000, 0):
                message["delete"].append(lot_entity_id(site, event.lot_id))
        else:
            entity = lot_entity(state, self.places(state.origin.site, state.origin.face))
            message["lot"] = entity["id"]
            message["replace"] = entity
        return message

    def send(self, destination: Destination, message: Message) -> Outcome:
        return self.send_batch(destination, [message])[0]

    def send_batch(self, destination: Destination, messages: Sequence[Message]) -> list[Outcome]:
        outcomes: dict[int, Outcome] = {}
        upserts = [
            (index, message) for index, message in enumerate(messages) if message.get("type") == "upsert"
        ]
        for index, message in enumerate(messages):
            if message.get("type") == "retraction":
                outcomes[index] = self._retract(message)
        if upserts:
            outcomes.update(self._upsert_messages(upserts))
        return [outcomes[index] for index in range(len(messages))]

    def close(self) -> None:
        self._taken.clear()

    # ------------------------------------------------------------------ upserts

    def _upsert_messages(self, upserts: Sequence[tuple[int, Message]]) -> dict[int, Outcome]:
        entities: dict[str, dict[str, Any]] = {}
        for _, message in upserts:
            taken = self._taken.get(str(message["id"]), set())
            for entity in message["entities"]:
                if entity["id"] not in taken:
                    entities.setdefault(entity["id"], entity)  # a site twice in a batch: once
        results = self._operation("upsert", list(entities.values()), update=True)
        outcomes: dict[int, Outcome] = {}
        for index, message in upserts:
            key = str(message["id"])
            if isinstance(results, str):
                outcomes[index] = Outcome.failed(results)
                continue
            taken = self._taken.setdefault(key, set())
            failed: list[str] = []
            for entity in message["entities"]:
                if entity["id"] in taken:
                    continue
                why = results.get(entity["id"], "not sent")
                if why is None:
                    taken.add(entity["id"])
                else:
                    failed.append(f"{entity['id']}: {why}")
            if failed:
                outcomes[index] = Outcome.failed("; ".join(failed)[:500])
            else:
                self._taken.pop(key, None)
                outcomes[index] = Outcome.ok()
        return outcomes

    def _retract(self, message: Message) -> Outcome:
        deleted = self._operation(
            "delete", [{"id": entity_id} for entity_id in message["delete"]], update=False
        )
        if isinstance(deleted, str):
            return Outcome.failed(deleted)
        refused = [
            f"{entity_id}: {why}"
            for entity_id, why in deleted.items()
            if why and "ResourceNotFound" not in why
        ]
        if refused:
            return Outcome.failed("; ".join(refused)[:500])
        if message.get("replace"):
            replaced = self._operation("upsert", [message["replace"]], update=False)
            if isinstance(replaced, str):
                return Outcome.failed(replaced)
            why = replaced.get(message["replace"]["id"])
            if why is not None:
                return Outcome.failed(f"{message['replace']['id']}: {why}"[:500])
        return Outcome.ok()

    def _operation(
        self, operation: Literal["upsert", "delete"], entities: Sequence[dict[str, Any]], *, update: bool
    ) -> EntityResults | str:
        """One batch operation (KETI: one request per entity type, each to its own dataset);
        per-entity results, or why it failed as a whole."""
        if self.config.api == "etsi":
            return self._request(operation, entities, update=update, dataset=None)
        by_type: dict[str, list[dict[str, Any]]] = {}
        for entity in entities:
            by_type.setdefault(_type_of(entity), []).append(entity)
        merged: EntityResults = {}
        for entity_type, group in by_type.items():
            found = self._request(operation, group, update=update, dataset=self.config.dataset(entity_type))
            if isinstance(found, str):
                merged.update(dict.fromkeys((entity["id"] for entity in group), found))
            else:
                merged.update(found)
        return merged

    def _request(
        self,
        operation: Literal["upsert", "delete"],
        entities: Sequence[dict[str, Any]],
        *,
        update: bool,
        dataset: str | None,
    ) -> EntityResults | str:
        ids = [entity["id"] for entity in entities]
        if operation == "upsert":
            payload: list[Any] = [{**entity, "@context": [self.config.context_url]} for entity in entities]
        elif dataset is None:
            payload = ids  # ETSI's delete takes ids (clause 6.17.3.1)
        else:
            payload = [{"id": entity["id"], "type": _type_of(entity)} for entity in entities]
        body: Any = payload if dataset is None else {"datasetId": dataset, "entities": payload}
        url = f"{self.config.ingest_url}/entityOperations/{operation}"
        if operation == "upsert" and update:
            url += "?options=update"
        encoded = json.dumps(body, separators=(",", ":")).encode("utf-8")
        content_type = (
            "application/ld+json" if dataset is None and operation == "upsert" else "application/json"
        )
        for attempt in (1, 2):
            try:
                headers = {
                    "Content-Type": content_type,
                    "Accept": "application/json",
                    "User-Agent": USER_AGENT,
                    **self.credentials.header(),
                }
                answer = self.transport.send("POST", url, encoded, headers, self.config.timeout_s)
            except OSError as error:
                return f"{type(error).__name__}: {error}"[:300]
            if answer.status == 401 and attempt == 1 and self.config.token_url:
                self.credentials.forget()  # the token ran out early or was revoked: one more, at once
                continue
            return read_batch_answer(answer, ids)
        return "HTTP 401 after a fresh token"


def _type_of(entity: Mapping[str, Any]) -> str:
    entity_id = str(entity["id"])
    parts = entity_id.split(":")
    return str(entity.get("type") or (parts[2] if len(parts) > 2 else ""))


# ---------------------------------------------------------------------- construction


def build_hub_kind(settings: Settings, engine: Any, *, chain_id: int, registry: str) -> HubKind | None:
    """The hub kind when a hub is configured (None otherwise: hub destinations then wait)."""
    if not settings.hub_ingest_url:
        return None
    config = HubConfig.from_settings(settings)

    def place(site: str, face: str | None) -> Place | None:
        found = load_directory(settings.data_dir).place(site, face)
        return None if found is None else Place(found.latitude, found.longitude)

    def names() -> Mapping[str, str]:
        return load_directory(settings.data_dir).site_names

    return HubKind(
        config,
        NgsiQueries(engine),
        chain_id=chain_id,
        registry=registry,
        places=place,
        site_names=names,
        documents=DocumentStore(settings.data_dir / "documents", settings.max_document_bytes),
    )


# ---------------------------------------------------------------------- data models (KETI)


def _attribute(
    name: str,
    attribute_type: Literal["Property", "Relationship", "GeoProperty"],
    value_type: str,
    *,
    required: bool = False,
    observed: bool = False,
    unit: bool = False,
    children: Sequence[dict[str, Any]] = (),
    members: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """One attribute of a KETI data model (datamanager's `Attribute`: attributeType, valueType,
    hasObservedAt, hasUnitCode, childAttributes for sub-attributes, objectMembers for objects)."""
    attribute: dict[str, Any] = {
        "name": name,
        "attributeType": attribute_type,
        "valueType": value_type,
        "isRequired": required,
        "hasObservedAt": observed,
        "hasUnitCode": unit,
    }
    if children:
        attribute["childAttributes"] = list(children)
    if members:
        attribute["objectMembers"] = list(members)
    return attribute


def _text(name: str) -> dict[str, Any]:
    return {"name": name, "valueType": "String"}


def keti_data_models(context_url: str) -> list[dict[str, Any]]:
    """Our three types as KETI's data manager registers them (`POST /datamodels`, its DataModelVO:
    context, id, type, name, description, indexAttributeNames, attributes). The data manager reads
    `context_url` and refuses a type or attribute it does not define."""
    position = _attribute("chainPosition", "Property", "ArrayInteger")
    lot = [
        _attribute("commodity", "Property", "String", required=True),
        _attribute("mass", "Property", "Double", required=True, observed=True, unit=True),
        _attribute("remainingMass", "Property", "Double", observed=True, unit=True),
        _attribute("grade", "Property", "Integer", observed=True, unit=True),
        _attribute(
            "assay",
            "Property",
            "Object",
            observed=True,
            members=[
                *(_text(n) for n in ("lab", "method", "certificateHash")),
                {"name": "analytes", "valueType": "ArrayObject"},
            ],
        ),
        _attribute("face", "Property", "String"),
        _attribute("origin", "Property", "String"),
        _attribute("recordHash", "Property", "String"),
        _attribute("custodian", "Property", "String", observed=True),
        _attribute("pendingCustodian", "Property", "String", observed=True),
        _attribute("status", "Property", "String", observed=True),
        _attribute("location", "GeoProperty", "GeoJson"),
        _attribute("site", "Relationship", "String", required=True),
        _attribute(
            "parent",
            "Relationship",
            "String",
            children=[_attribute("massTaken", "Property", "Double", unit=True)],
        ),
        _attribute("lastFact", "Relationship", "String", children=[position]),
    ]
    site = [
        _attribute("name", "Property", "String", required=True),
        _attribute("location", "GeoProperty", "GeoJson"),
    ]
    receipt = [
        _attribute("refEntity", "Relationship", "String", required=True),
        _attribute(
            "TxReceipts",
            "Property",
            "Object",
            required=True,
            observed=True,
            members=[
                _text("dltType"),
                _text("to"),
                _text("blockHash"),
                {"name": "blockNumber", "valueType": "Long"},
                _text("transactionHash"),
                {"name": "transactionIndex", "valueType": "Integer"},
                {"name": "status", "valueType": "Boolean"},
                {"name": "logs", "valueType": "Object"},
            ],
        ),
        _attribute("chainId", "Property", "Long"),
        _attribute("eventName", "Property", "String"),
    ]
    described = (
        (
            "OreLot",
            "An ore lot whose facts are recorded on an EVM chain (mineral-provenance)",
            lot,
            ["commodity", "status"],
        ),
        ("MiningSite", "A mining site (mineral-provenance)", site, ["name"]),
        (
            "DLTtxReceipt",
            "Where a fact about an ore lot is on the chain (Smart Data Models)",
            receipt,
            ["eventName"],
        ),
    )
    return [
        {
            "context": [context_url],
            "id": entity_type,
            "type": entity_type,
            "name": entity_type,
            "description": description,
            "indexAttributeNames": index,
            "attributes": attributes,
        }
        for entity_type, description, attributes, index in described
    ]


def keti_dataset(config: HubConfig, entity_type: str) -> dict[str, Any]:
    """A dataset bound to one data model (datamanager's DatasetBaseVO and the fields it requires)."""
    return {
        "id": config.dataset(entity_type),
        "name": f"mineral-provenance {entity_type}",
        "description": f"{entity_type} entities published by mineral-provenance from its chain index",
        "updateInterval": "continuous",
        "category": "mining",
        "providerOrganization": config.client_id or "mineral-provenance",
        "providerSystem": "mineral-provenance",
        "isProcessed": "processed",
        "ownership": config.client_id or "mineral-provenance",
        "keyword": ["provenance", "mining", entity_type],
        "license": "see the operator's terms",
        "datasetItems": entity_type,
        "targetRegions": "operator's sites",
        "qualityCheckEnabled": False,
        "dataModelId": entity_type,
    }


def keti_dataset_flow() -> dict[str, Any]:
    """Where a dataset's entities go once ingested (datamanager's DatasetFlowVO): the data service
    broker, with full history (the temporal API answers from it)."""
    return {"historyStoreType": "full", "enabled": True, "targetTypes": [{"type": "dataServiceBroker"}]}


@dataclass(frozen=True)
class Registered:
    what: str
    outcome: Literal["created", "updated", "failed"]
    detail: str = ""


class DataManager:
    """KETI's data manager: registers data models, datasets and dataset flows, creating each or,
    when it exists already (400 ALREADY_EXISTS), updating it with PUT."""

    def __init__(self, config: HubConfig, transport: Transport | None = None) -> None:
        if not config.data_manager_url:
            raise DomainError(
                "PROVENANCE_HUB_DATA_MANAGER_URL", "is not set: where KETI's data manager listens"
            )
        self.base = config.data_manager_url
        self.config = config
        self.transport = transport or UrllibTransport()
        self.credentials = ClientCredentials(config, self.transport)

    def register(self) -> list[Registered]:
        done: list[Registered] = []
        for model in keti_data_models(self.config.context_url):
            done.append(
                self._put_or_post(
                    f"data model {model['id']}", "/datamodels", f"/datamodels/{model['id']}", model
                )
            )
        for entity_type in ("OreLot", "MiningSite", "DLTtxReceipt"):
            dataset = keti_dataset(self.config, entity_type)
            done.append(
                self._put_or_post(
                    f"dataset {dataset['id']}", "/datasets", f"/datasets/{dataset['id']}", dataset
                )
            )
            flow = f"/datasets/{dataset['id']}/flow"
            done.append(self._put_or_post(f"dataset flow {dataset['id']}", flow, flow, keti_dataset_flow()))
        return done

    def _put_or_post(self, what: str, create: str, update: str, body: dict[str, Any]) -> Registered:
        encoded = json.dumps(body).encode("utf-8")
        try:
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **self.credentials.header(),
            }
            answer = self.transport.send("POST", self.base + create, encoded, headers, self.config.timeout_s)
            if 200 <= answer.status < 300:
                return Registered(what, "created")
            if answer.status == 400 and b"Already Exists" in answer.body:
                updated = self.transport.send(
                    "PUT", self.base + update, encoded, headers, self.config.timeout_s
                )
                if 200 <= updated.status < 300:
                    return Registered(what, "updated")
                return Registered(what, "failed", updated.problem())
            return Registered(what, "failed", answer.problem())
        except OSError as error:
            return Registered(what, "failed", f"{type(error).__name__}: {error}"[:300])
