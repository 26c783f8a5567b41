"""One place for settings: environment variables prefixed PROVENANCE_, defaults for the embedded setup."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from provenance.epcis.ids import IdentifierScheme, scheme_of

DEFAULT_BACKGROUND_NICE = 5


class Settings(BaseSettings):
    """With no PROVENANCE_RPC_URL the embedded anvil node runs; with no DATABASE_URL, SQLite in data_dir."""

    model_config = SettingsConfigDict(env_prefix="PROVENANCE_", extra="ignore")

    data_dir: Path = Field(
        default=Path("data"), description="Keys, node state, deployment record, SQLite index."
    )
    rpc_url: str | None = Field(
        default=None, description="An EVM JSON-RPC endpoint; unset starts embedded anvil."
    )
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the index; unset: SQLite.")
    read_database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of a read replica of the index (a PostgreSQL standby): the API's "
        "reads go there while it answers and is as fresh as a read asks (`X-Min-Index-Block`), else "
        "to the primary; writes, operations and `?wait=true` always use the primary.",
    )
    node_host: str = "127.0.0.1"
    node_port: int = Field(default=8545, ge=1, le=65535)
    node_state_interval_s: float = Field(
        default=5, gt=0, description="How often the embedded node's chain is saved, if it moved (seconds)."
    )
    background_nice: int = Field(
        default=DEFAULT_BACKGROUND_NICE,
        ge=0,
        le=19,
        description="Niceness of the indexer, the outbox worker and the embedded node: when the cores "
        "are busy, the API's reads are answered first (writes are acknowledged from the outbox anyway).",
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes that answer the API on its one port (`provenance serve`): one process "
        "is one GIL, so a slow request's Python holds up the others' reads; more processes answer "
        "side by side. Write rate limits are counted per process (docs/deploy.md).",
    )
    lease_s: float = Field(
        default=5.0,
        ge=0.5,
        description="How long the indexer's and the outbox worker's leases run between renewals "
        "(seconds): a standby replica takes over within about this long after its leader dies.",
    )
    confirmations: Annotated[int, Field(ge=0)] | Literal["finalized"] = Field(
        default=0,
        description="Blocks a write must be under before it counts, or `finalized`: the node's "
        "finalized block (the indexer follows it, and a write is confirmed once it is under it).",
    )
    keystore: Path | None = Field(default=None, description="Encrypted keystore of the deployer/admin key.")
    keystore_password_file: Path | None = None
    signer_url: str | None = Field(
        default=None,
        description="An external signer holding keys (Web3Signer's eth1 JSON-RPC: eth_accounts, "
        "eth_signTransaction), for `accounts create --address` and `admin_address`.",
    )
    admin_address: str | None = Field(
        default=None,
        description="The admin account, whose key the external signer at `signer_url` holds "
        "(instead of a keystore or the development key).",
    )
    max_document_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1, description="Largest document an upload may store (bytes)."
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Largest JSON request body the API reads (bytes)."
    )
    write_rate_per_s: float = Field(
        default=500.0, gt=0, description="Writes a second each API credential may make, sustained."
    )
    write_burst: int = Field(
        default=1000, ge=1, description="Writes an API credential may make at once, above the rate."
    )
    role_cache_s: float = Field(
        default=5.0, ge=0, description="How long the API trusts a role it saw held on chain (seconds)."
    )
    explorer_url: str | None = Field(
        default=None,
        description="A block explorer of the chain (https://host): lot pages link each fact to "
        "{explorer_url}/tx/{hash}; unset, to the page's own list of transactions and blocks.",
    )
    public_url: str | None = Field(
        default=None,
        description="The API's public base URL (https://host), printed in lot QR codes; unset, the "
        "request's own host.",
    )
    epcis_gs1_company_prefix: str | None = Field(
        default=None,
        description="The operator's GS1 company prefix (6 to 12 digits): EPCIS events name lots as "
        "LGTINs, sites as SGLNs and accounts as PGLNs (docs/epcis.md, Identifiers); unset, as URIs "
        "under `public_url`.",
    )
    epcis_gs1_item_references: str | None = Field(
        default=None,
        description="Each commodity's GTIN as COMMODITY=DIGITS,...: the indicator digit and item "
        "reference (13 digits less the company prefix's); a lot of a commodity not listed keeps its "
        "URI under `public_url`.",
    )
    epcis_gs1_location_reference: str | None = Field(
        default=None,
        description="The operator's GLN less the company prefix and check digit; sites and faces are "
        "its SGLN extensions (default all zeros).",
    )
    epcis_gs1_party_glns: str | None = Field(
        default=None,
        description="PGLNs of accounts as 0xADDRESS=GLN,...; other accounts keep their URI under "
        "`public_url`.",
    )
    epcis_identifier_form: Literal["digital_link", "epc_urn"] = Field(
        default="digital_link",
        description="How GS1 identifiers are written: GS1 Digital Link URIs on `public_url` or EPC "
        "URNs (a client's GS1-EPC-Format header may ask for the other).",
    )

    delivery_allowed_hosts: str | None = Field(
        default=None,
        description="Hosts, addresses and CIDR ranges (comma-separated) that webhook callbacks may "
        "reach although they are loopback, private or otherwise not public (docs/deliveries.md).",
    )
    delivery_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds a callback may take to answer."
    )
    delivery_retry_base_s: float = Field(
        default=1.0, gt=0, description="First retry delay of a failed delivery; doubles each time."
    )
    delivery_retry_max_s: float = Field(default=300.0, gt=0, description="Longest delay between retries.")
    delivery_give_up_after_s: float = Field(
        default=86_400.0,
        gt=0,
        description="How long a message is retried before it is dead-lettered (seconds).",
    )
    delivery_workers: int = Field(
        default=4, ge=1, le=64, description="Destinations the deliverer serves at once."
    )
    delivery_max_subscriptions: int = Field(
        default=100, ge=1, description="Active webhook subscriptions an account may hold."
    )

    ngsi_ld_vocabulary: str | None = Field(
        default=None,
        description="The IRI our NGSI-LD terms expand under (OreLot -> <this>OreLot); unset, "
        "<public URL>/ngsi-ld/vocab#. Never change it once data was published (docs/ngsi-ld.md).",
    )
    hub_ingest_url: str | None = Field(
        default=None,
        description="Where the city data hub takes entityOperations/upsert: KETI's ingest interface "
        "(https://host:8443) or an NGSI-LD broker's https://host/ngsi-ld/v1 (docs/ngsi-ld.md).",
    )
    hub_api: Literal["keti", "etsi"] = Field(
        default="keti",
        description="keti: KETI City Data Hub's ingest body {datasetId, entities}; etsi: the ETSI "
        "batch body (an array of entities).",
    )
    hub_dataset_prefix: str = Field(
        default="mineral-provenance-",
        description="KETI binds a dataset to one data model: our entities go to <prefix>OreLot, "
        "<prefix>MiningSite and <prefix>DLTtxReceipt.",
    )
    hub_data_manager_url: str | None = Field(
        default=None, description="KETI's data manager (https://host:8080), for hub register-models."
    )
    hub_token_url: str | None = Field(
        default=None,
        description="OAuth 2.0 token endpoint for client credentials (KETI: <auth server>/oauth2.0/token); "
        "unset, requests carry no token.",
    )
    hub_client_id: str | None = Field(default=None, description="OAuth client id at the hub.")
    hub_client_secret: SecretStr | None = Field(
        default=None, description="OAuth client secret at the hub (never logged or shown)."
    )
    hub_batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Entities' facts per batch upsert (the hub's limit)."
    )
    hub_context_url: str | None = Field(
        default=None,
        description="The @context URL published entities name (the hub fetches it); unset, "
        "<public URL>/ngsi-ld/context.jsonld.",
    )
    hub_timeout_s: float = Field(default=30.0, gt=0, description="Seconds a hub request may take.")

    @model_validator(mode="after")
    def _identifiers_usable(self) -> Settings:
        self.epcis_identifiers()
        return self

    def epcis_identifiers(self) -> IdentifierScheme:
        """How EPCIS events name things (provenance.epcis.ids): GS1 keys when a company prefix is
        set, URIs under `public_url` (or this API's own address) otherwise."""
        return scheme_of(
            self.public_url,
            f"http://{self.api_host}:{self.api_port}",
            self.epcis_gs1_company_prefix,
            self.epcis_gs1_item_references,
            self.epcis_gs1_location_reference,
            self.epcis_gs1_party_glns,
            self.epcis_identifier_form,
        )

    @property
    def embedded(self) -> bool:
        return self.rpc_url is None

    _origin: str = PrivateAttr(default_factory=lambda: secrets.token_hex(8))

    @property
    def origin(self) -> str:
        """This process tree's name in PostgreSQL wake-ups (index/wakeups.py), so that it skips its
        own: new for each Settings, and the children `serve` starts are given its copy."""
        return self._origin

    @property
    def effective_rpc_url(self) -> str:
        return self.rpc_url or f"http://{self.node_host}:{self.node_port}"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'index.sqlite3').resolve()}"

    @property
    def deployment_path(self) -> Path:
        return self.data_dir / "deployment.json"
