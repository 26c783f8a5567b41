"""The composition root: settings in, connected parts out. The CLI and the API both call it;
nothing connects at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance.certificates import store_certificate
from provenance.chain.client import RegistryClient
from provenance.chain.connection import Signer, TransactionSigner, Web3, connect
from provenance.chain.deployment import Deployment, deploy_registry
from provenance.chain.keys import DevKeyring, KeyResolver, load_keystore
from provenance.chain.node import AnvilNode, fund
from provenance.chain.remote_signer import RemoteSigner
from provenance.config import Settings
from provenance.documents import DocumentStore
from provenance.domain.credentials import Credential
from provenance.domain.deliveries import DestinationLag
from provenance.domain.outbox import ChainConflict
from provenance.errors import ConfigurationError, DomainError
from provenance.index.credentials_store import CredentialStore
from provenance.index.outbox import OutboxStore
from provenance.services.access import RoleGate
from provenance.services.verification import Verifier
from provenance.services.writes import WriteService

if TYPE_CHECKING:
    from provenance.chain.reader import ChainReader
    from provenance.index.claims import IndexClaimReader
    from provenance.node_keeper import NodeKeeper, NodeStatus

__all__ = [
    "Health",
    "Runtime",
    "admin_account",
    "build_runtime",
    "connect",
    "embedded_node",
    "ensure_deployment",
    "first_admin_token",
]


def embedded_node(settings: Settings) -> AnvilNode:
    return AnvilNode(
        host=settings.node_host,
        port=settings.node_port,
        state_dir=settings.data_dir / "chain",
        log_path=settings.data_dir / "chain" / "anvil.log",
        niceness=settings.background_nice,
        die_with_parent=True,
    )


def admin_account(settings: Settings) -> TransactionSigner:
    """The admin's key: held by the external signer when `admin_address` is set, else the
    keystore's when one is configured, else the generated development admin key."""
    if settings.admin_address is not None:
        return RemoteSigner(_signer_url(settings), settings.admin_address)
    if settings.keystore is not None:
        return load_keystore(settings.keystore, settings.keystore_password_file)
    return DevKeyring(settings.data_dir).get_or_create("admin")


def _signer_url(settings: Settings) -> str:
    if settings.signer_url is None:
        raise ConfigurationError(
            "PROVENANCE_ADMIN_ADDRESS names a key of an external signer: set PROVENANCE_SIGNER_URL"
        )
    return settings.signer_url


def ensure_deployment(settings: Settings, w3: Web3, admin: TransactionSigner) -> tuple[Deployment, bool]:
    """The recorded deployment, checked against the node; deploys one first if there is none.

    Returns the deployment and whether it was made now.
    """
    path = settings.deployment_path
    if path.exists():
        deployment = Deployment.load(path)
        deployment.check_against(w3)
        return deployment, False
    if settings.embedded:
        fund(w3, admin.address)
    _, deployment = deploy_registry(w3, admin)
    deployment.save(path)
    return deployment, True


@dataclass
class Runtime:
    """A running process's settings and its connected adapters (index engine, node, registry
    client, outbox, credentials, keys, documents), made once at start-up, with the services built
    on them (`writes`, `verifier`). The API and every long-running entrypoint work with one.

    Built by `build_runtime`; tests build it the same way around an in-process chain.
    """

    settings: Settings
    engine: Any
    """The SQLAlchemy engine of the index and outbox (typed loosely: only provenance.index imports sqlalchemy)."""
    w3: Web3
    deployment: Deployment
    client: RegistryClient
    outbox: OutboxStore
    credentials: CredentialStore
    keys: KeyResolver
    roles: RoleGate
    documents: DocumentStore
    node_keeper: NodeKeeper | None = None
    """The embedded node's keeper, in the process of `provenance serve` only (its restarts and saves
    are reported in /health)."""
    replica_engine: Any = None
    """The engine of a read replica of the index (`PROVENANCE_READ_DATABASE_URL`), if there is one:
    only the API's index reads use it (`api.routers.reads.Reading` chooses, per read, between it and `engine`)."""

    @cached_property
    def writes(self) -> WriteService:
        """Every write's way in: preconditions, then the outbox."""
        return WriteService(self.outbox, self.roles, self.client, partial(store_certificate, self.documents))

    @cached_property
    def verifier(self) -> Verifier:
        """The index's claims against the chain, for `/verify` and the lot page alike."""
        return Verifier(self._verification_readers)

    def _verification_readers(self) -> tuple[ChainReader, IndexClaimReader]:
        """Fresh readers for one verification: the chain's (its receipt cache lives as long as the
        check) and the index's claims."""
        from provenance.chain.reader import ChainReader
        from provenance.index.claims import IndexClaimReader

        return ChainReader(self.w3, self.deployment.registry), IndexClaimReader(self.engine)

    def head_number(self) -> int:
        """The node's latest block number."""
        return int(self.w3.eth.block_number)

    @staticmethod
    def checksum_address(address: str) -> str:
        """`address` in its EIP-55 form, the form the index stores; ValueError if it is not one."""
        return Web3.to_checksum_address(address)

    def key_of(self, credential: Credential) -> TransactionSigner:
        """The key that signs for `credential`."""
        return self.keys(credential.key_ref)

    def local_key_of(self, credential: Credential) -> Signer:
        """The key of `credential` when this process holds it (it signs typed data too: assays);
        DomainError when an external signer holds it."""
        key = self.key_of(credential)
        if not isinstance(key, Signer):
            raise DomainError(
                "credential",
                f"the key of {credential.name} is held by an external signer, which signs transactions "
                "only here: sign the assay's EIP-712 message with it and POST the signature to /v1/assays",
            )
        return key

    def signer_for(self, account: str) -> TransactionSigner:
        """The key of `account`, as the outbox worker asks for it: that of a credential mapped to it.

        Revoked credentials count: a write acknowledged before the revocation is still sent.
        """
        for credential in self.credentials.all():
            if credential.account.lower() == account.lower():
                key = self.keys(credential.key_ref)
                if key.address.lower() == account.lower():
                    return key
        raise ConfigurationError(f"no credential holds the key of account {account}")

    def health(self, node: NodeSample | None = None) -> Health:
        return probe_health(self, node)

    def close(self) -> None:
        self.engine.dispose()
        if self.replica_engine is not None:
            self.replica_engine.dispose()


def index_engine(url: str, *, replica: bool = False) -> Any:
    """An engine of the index database at `url` (nothing connects until first use): the one way
    every entrypoint (the API, the CLI, the audit) opens it."""
    from provenance.index.db import make_engine

    return make_engine(url, replica=replica)


def node_connection(rpc_url: str, timeout_s: float = 30.0) -> Web3:
    """A connection to the node at `rpc_url`: the one way every entrypoint reaches a chain."""
    return connect(rpc_url, timeout_s)


def recorded_deployment(path: Path) -> Deployment:
    """The registry deployment recorded at `path` (`provenance deploy` wrote it)."""
    return Deployment.load(path)


def build_runtime(settings: Settings, *, w3: Web3 | None = None) -> Runtime:
    """Connects the parts the API needs: the node (`w3`, or the configured RPC URL), the deployment
    record checked against it, and the index database checked to be at the newest schema."""
    from provenance.index.db import check_current, make_engine

    if w3 is None:
        w3 = connect(settings.effective_rpc_url)
    deployment = Deployment.load(settings.deployment_path)
    deployment.check_against(w3)
    engine = make_engine(settings.effective_database_url)
    check_current(engine)
    replica_engine = None
    if settings.read_database_url is not None:
        if settings.database_url is None:
            raise ConfigurationError(
                "PROVENANCE_READ_DATABASE_URL needs PROVENANCE_DATABASE_URL, its primary"
            )
        replica_engine = make_engine(
            settings.read_database_url, replica=True
        )  # checked per read, not here: it may lag
    client = RegistryClient(w3, deployment.registry)
    return Runtime(
        settings=settings,
        engine=engine,
        w3=w3,
        deployment=deployment,
        client=client,
        outbox=OutboxStore(engine, origin=settings.origin),
        credentials=CredentialStore(engine),
        keys=KeyResolver(settings.data_dir),
        roles=RoleGate(client, ttl_s=settings.role_cache_s),
        documents=DocumentStore(settings.data_dir / "documents", settings.max_document_bytes),
        replica_engine=replica_engine,
    )


def first_admin_token(runtime: Runtime, admin: TransactionSigner) -> str | None:
    """On first start, an API credential `admin` for the admin key; returns its token, or None if
    one exists already (tokens are stored hashed and shown only when made)."""
    from provenance.chain.keys import dev_key_ref, keystore_key_ref, remote_key_ref

    if runtime.credentials.by_name("admin") is not None:
        return None
    settings = runtime.settings
    if settings.admin_address is not None:
        key_ref = remote_key_ref(_signer_url(settings), settings.admin_address)
    elif settings.keystore is not None and settings.keystore_password_file is not None:
        key_ref = keystore_key_ref(settings.keystore, settings.keystore_password_file)
    else:
        key_ref = dev_key_ref("admin")
    _, token = runtime.credentials.create("admin", admin.address, key_ref)
    return token


@dataclass(frozen=True)
class ReplicaSample:
    cursor: int | None
    """The last block the replica's copy of the index holds."""
    error: str | None
    """Why it could not be read (reads then go to the primary)."""


@dataclass(frozen=True)
class Health:
    node_reachable: bool
    chain_id: int | None
    block_number: int | None
    node_error: str | None
    index_cursor: int | None
    index_error: str | None
    outbox_backlog: int | None
    outbox_error: str | None
    conflicts: tuple[ChainConflict, ...] = ()
    """Open chain conflicts: while there is one, the outbox sends nothing."""
    stuck_count: int = 0
    stuck: tuple[tuple[str, str], ...] = ()
    """The oldest operations the node will not take, with the node's answer."""
    embedded_node: NodeStatus | None = None
    """The embedded node's restarts and saves (in `provenance serve` only)."""
    cursor_before_head: int | None = None
    """The index's cursor as read just before `block_number` was: what `index_ahead` compares."""
    leaders: tuple[Leader, ...] = ()
    """Who holds the indexer's and the outbox worker's leases (`provenance.leadership`)."""
    replica: ReplicaSample | None = None
    """The read replica's index, if one is configured."""
    deliveries: tuple[DestinationLag, ...] = ()
    """How far behind the index each active delivery destination is (docs/deliveries.md)."""
    deliveries_error: str | None = None

    @property
    def index_ahead(self) -> int:
        """Blocks the index holds beyond the node's head: a node that lost blocks (restored from
        an older save, a reorg to a shorter chain) or one that lags behind another."""
        if self.block_number is None or self.cursor_before_head is None:
            return 0
        return max(0, self.cursor_before_head - self.block_number)

    @property
    def index_lag(self) -> int | None:
        if self.block_number is None or self.index_cursor is None:
            return None
        return max(0, self.block_number - self.index_cursor)


@dataclass(frozen=True)
class Leader:
    """A role's lease: its holder (host:pid:role), fencing token, and seconds until it ends
    (negative: it ended that long ago, and nobody has taken it since)."""

    role: str
    holder: str
    token: int
    remaining_s: float


@dataclass(frozen=True)
class NodeSample:
    """The node's head as a watcher last heard it (`api.chain_head`), so `/health` need not ask."""

    block_number: int | None
    error: str | None
    cursor_before_head: int | None


def probe_health(runtime: Runtime, node: NodeSample | None = None) -> Health:
    """Each part asked separately, so one that is down does not hide the state of the others. With
    `node`, the node is not asked: its sample stands for it."""
    from provenance.index.delivery_store import DeliveryStore
    from provenance.index.leases import read_leases
    from provenance.index.store import read_cursor

    block_number = chain_id = None
    node_error = index_error = outbox_error = None
    cursor = backlog = None
    conflicts: tuple[ChainConflict, ...] = ()
    stuck_count, stuck = 0, list[tuple[str, str]]()
    try:  # the cursor before the head: on a healthy chain the cursor then never reads ahead of it
        with runtime.engine.connect() as connection:
            found = read_cursor(connection)
        cursor = found.number if found is not None else None
    except Exception as error:
        index_error = brief_error(error)
    cursor_before_head = cursor
    if node is not None:
        node_error, cursor_before_head = node.error, node.cursor_before_head
        if node_error is None:
            block_number, chain_id = node.block_number, runtime.deployment.chain_id
    else:
        try:
            block_number = int(runtime.w3.eth.block_number)
            chain_id = runtime.client.chain_id
        except Exception as error:
            node_error = brief_error(error)
    leaders: tuple[Leader, ...] = ()
    try:
        leaders = tuple(
            Leader(lease.name, lease.holder, lease.token, lease.remaining_s)
            for lease in read_leases(runtime.engine)
        )
    except Exception as error:  # the index's error above already says the database is unreadable
        index_error = index_error or brief_error(error)
    replica = None
    if runtime.replica_engine is not None:
        try:
            with runtime.replica_engine.connect() as connection:
                found = read_cursor(connection)
            replica = ReplicaSample(found.number if found is not None else None, None)
        except Exception as error:
            replica = ReplicaSample(None, brief_error(error))
    lags: tuple[DestinationLag, ...] = ()
    deliveries_error = None
    try:
        lags = tuple(DeliveryStore(runtime.engine).lags())
    except Exception as error:
        deliveries_error = brief_error(error)
    try:
        backlog = runtime.outbox.backlog()
        conflicts = tuple(runtime.outbox.open_conflicts())
        stuck_count, stuck = runtime.outbox.stuck()
    except Exception as error:
        outbox_error = brief_error(error)
    return Health(
        node_reachable=node_error is None,
        chain_id=chain_id,
        block_number=block_number,
        node_error=node_error,
        index_cursor=cursor,
        index_error=index_error,
        outbox_backlog=backlog,
        outbox_error=outbox_error,
        conflicts=conflicts,
        stuck_count=stuck_count,
        stuck=tuple(stuck),
        embedded_node=runtime.node_keeper.status() if runtime.node_keeper is not None else None,
        cursor_before_head=cursor_before_head,
        leaders=leaders,
        replica=replica,
        deliveries=lags,
        deliveries_error=deliveries_error,
    )


def brief_error(error: Exception) -> str:
    """An error in one line of at most 200 characters: its type and its first line."""
    return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200]
