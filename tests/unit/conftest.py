"""One registry on the in-process eth-tester chain, deployed once per session; every test that uses
it starts from the same snapshot and is reverted afterwards, so tests cannot see each other's lots.

The factories below (`lot`, `output`, `transformation`, ...) build what a test submits; the `Chain`
names the accounts by what they may do, so a test reads as "the rival registrar cannot ...".
"""

from __future__ import annotations

import ctypes
import datetime
import gc
import hashlib
import re
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester
from web3 import EthereumTesterProvider, Web3
from web3.logs import DISCARD
from web3.types import TxReceipt

from provenance.chain.client import RegistryClient
from provenance.chain.signing import sign_load
from provenance.domain.records import (
    Assay,
    LoadAttestation,
    LotRegistration,
    Transformation,
    TransformInput,
    TransformOutput,
)
from provenance.domain.values import TransformKind, encode_label
from provenance.errors import ContractRevert

SITE = "SH2"
OTHER_SITE = "PIT9"
EXTRACTED_AT = 1_700_000_000
ZERO_ADDRESS = "0x" + "00" * 20
ZERO_WORD = b"\0" * 32
FUNDING_WEI = 10**18
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Chain:
    """The deployed registry and the accounts of the base state, by what they may do."""

    w3: Web3
    tester: EthereumTester
    client: RegistryClient
    admin: str  # DEFAULT_ADMIN_ROLE
    operator: str  # registrar of SITE and processor: registers lots, then crushes and splits them
    clerk: str  # registrar of SITE only
    rival: str  # registrar of OTHER_SITE and processor
    buyer: str  # no role
    outsider: str  # no role
    lab: LocalAccount  # LAB_ROLE
    device: LocalAccount  # an active haul-truck scale of SITE

    @property
    def chain_id(self) -> int:
        return self.client.chain_id

    def pending_timestamp(self) -> int:
        """The block time the next transaction will see (what `block.timestamp` means to it)."""
        return int(self.w3.eth.get_block("pending")["timestamp"])

    def travel(self, seconds: int) -> int:
        """Moves the chain's clock ahead, so that wall-clock time no longer decides the next block's."""
        self.tester.time_travel(self.pending_timestamp() + seconds)
        return self.pending_timestamp()

    def fund(self, account: str) -> None:
        self.w3.eth.send_transaction({"from": self.admin, "to": account, "value": FUNDING_WEI})

    def new_key(self) -> LocalAccount:
        """A fresh, funded key, for an account that must sign (a lab, a device)."""
        key: LocalAccount = Account.create()
        self.fund(key.address)
        return key

    def register(self, *lots: LotRegistration, sender: str | None = None) -> TxReceipt:
        return self.client.register_lots(sender or self.operator, lots)


@pytest.fixture(scope="session")
def deployed_registry() -> Chain:
    """The registry and its base roles, deployed once per session."""
    w3 = Web3(EthereumTesterProvider())
    tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
    admin, operator, clerk, rival, buyer, outsider = w3.eth.accounts[:6]
    client, _ = RegistryClient.deploy(w3, admin)
    processor_role = client.role("PROCESSOR_ROLE")
    client.grant_role(admin, client.registrar_role(SITE), operator)
    client.grant_role(admin, processor_role, operator)
    client.grant_role(admin, client.registrar_role(SITE), clerk)
    client.grant_role(admin, client.registrar_role(OTHER_SITE), rival)
    client.grant_role(admin, processor_role, rival)
    base = Chain(
        w3, tester, client, admin, operator, clerk, rival, buyer, outsider, Account.create(), Account.create()
    )
    base.fund(base.lab.address)
    base.fund(base.device.address)
    client.grant_role(admin, client.role("LAB_ROLE"), base.lab.address)
    client.add_device(operator, base.device.address, SITE, "haul-truck")
    return base


@pytest.fixture
def chain(deployed_registry: Chain) -> Iterator[Chain]:
    """The session's registry, reverted to its base state after the test (ape's snapshot pattern).

    The snapshot lives here rather than in an autouse fixture keyed on fixture names, because sibling
    modules (the index tests) define a `chain` fixture of their own that must not be touched.
    """
    snapshot = deployed_registry.tester.take_snapshot()
    yield deployed_registry
    deployed_registry.tester.revert_to_snapshot(snapshot)


# -------------------------------------------------------------------- factories


def digest(text: str) -> bytes:
    """A 32-byte record hash that names what it stands for."""
    return hashlib.sha256(text.encode()).digest()


def lot(
    lot_id: str,
    *,
    site: str = SITE,
    face: str = "F3",
    commodity: str = "COAL",
    mass_g: int = 24_500_000,
    grade_ppm: int = 12_345,
    extracted_at: int = EXTRACTED_AT,
) -> LotRegistration:
    return LotRegistration(lot_id, site, face, commodity, mass_g, grade_ppm, extracted_at, digest(lot_id))


def output(lot_id: str, mass_g: int, *, commodity: str = "COAL", grade_ppm: int = 12_000) -> TransformOutput:
    return TransformOutput(lot_id, commodity, mass_g, grade_ppm, digest(lot_id))


def transformation(
    kind: TransformKind,
    inputs: Sequence[tuple[str, int]],
    outputs: Sequence[TransformOutput],
    loss_g: int = 0,
    *,
    site: str = SITE,
) -> Transformation:
    return Transformation(
        kind,
        site,
        tuple(TransformInput(lot_id, mass_g) for lot_id, mass_g in inputs),
        tuple(outputs),
        loss_g,
        digest(f"{kind.name}:{inputs}"),
    )


def assay(lot_id: str, *, grade_ppm: int = 11_800, assayed_at: int = EXTRACTED_AT + 3600) -> Assay:
    return Assay(lot_id, grade_ppm, "XRF", digest(f"certificate of {lot_id}"), assayed_at)


def attestation(
    base: Chain,
    registration: LotRegistration,
    *,
    device: LocalAccount | None = None,
    trip_id: str = "TRIP-0001",
    loaded_at: int = EXTRACTED_AT + 60,
    chain_id: int | None = None,
    registry: str | None = None,
) -> LoadAttestation:
    """A device's signed load; by default the chain's active device, for this registry."""
    signature = sign_load(
        device or base.device,
        chain_id or base.chain_id,
        registry or base.client.address,
        registration,
        trip_id,
        loaded_at,
    )
    return LoadAttestation(trip_id, loaded_at, signature)


def registration_args(registration: LotRegistration, **raw: Any) -> tuple[Any, ...]:
    """The ABI tuple of a registration, with fields overridden by raw values the domain would refuse."""
    fields = {
        "lotId": encode_label(registration.lot_id),
        "face": encode_label(registration.face),
        "commodity": encode_label(registration.commodity),
        "massG": registration.mass_g,
        "gradePpm": registration.grade_ppm,
        "extractedAt": registration.extracted_at,
        "recordHash": registration.record_hash,
    }
    fields.update(raw)
    return tuple(fields.values())


def label(text: str) -> bytes:
    return encode_label(text)


def pack_measurement(mass_g: int, grade_ppm: int, extracted_at: int) -> int:
    return mass_g | grade_ppm << 96 | extracted_at << 128


# -------------------------------------------------------------------- reverts and events


def refusal(refused: pytest.ExceptionInfo[ContractRevert]) -> tuple[str, dict[str, Any]]:
    """The custom error's name and arguments, addresses checksummed as the rest of the code writes them."""
    error = refused.value
    return error.name, {
        key: Web3.to_checksum_address(value)
        if isinstance(value, str) and _ADDRESS.fullmatch(value)
        else value
        for key, value in error.args_by_name.items()
    }


def events(client: RegistryClient, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
    """The arguments of every `name` event in the receipt, in log order."""
    decoded = client.contract.events[name]().process_receipt(receipt, errors=DISCARD)
    return [dict(event["args"]) for event in decoded]


def event_names(client: RegistryClient, receipt: TxReceipt) -> list[str]:
    """The names of the receipt's events in the order they were emitted."""
    by_index: dict[int, str] = {}
    for entry in client.contract.abi:
        if entry["type"] == "event":
            for event in client.contract.events[entry["name"]]().process_receipt(receipt, errors=DISCARD):
                by_index[event["logIndex"]] = event["event"]
    assert len(by_index) == len(receipt["logs"]), "a log the registry's ABI does not describe"
    return [by_index[index] for index in sorted(by_index)]


# -------------------------------------------------------------------- the far-future run

CLOCKLESS = frozenset(
    {
        "test_architecture.py",
        "test_artifacts.py",
        "test_assay_certificate.py",
        "test_audit_compare.py",
        "test_audit_rules.py",
        "test_cli_help.py",
        "test_compiler_and_keys.py",
        "test_delivery_rules.py",
        "test_demo_story.py",
        "test_epcis.py",
        "test_epcis_capture.py",
        "test_epcis_ids.py",
        "test_epcis_query_params.py",
        "test_epcis_stream.py",
        "test_group_commit.py",
        "test_hub_parts.py",
        "test_index_projection.py",
        "test_lineage.py",
        "test_lineage_layout.py",
        "test_lot_page_parts.py",
        "test_lot_page_view.py",
        "test_mass_flow_layout.py",
        "test_ngsi_ld_model.py",
        "test_outbox_calldata.py",
        "test_progress.py",
        "test_records_cli.py",
        "test_remote_signer.py",
        "test_replica_engine.py",
        "test_serve_parts.py",
        "test_site_balance.py",
        "test_site_page_view.py",
        "test_trace_shares.py",
        "test_trips.py",
        "test_values.py",
        "test_wording.py",
        "test_write_rate_limit.py",
    }
)
"""Unit modules whose tests read no wall clock, not even the chain's: left out of the far-future run.
A module is here only if it reads none; the watch below fails any of their tests that reads one."""

BLOCK_TIMES_ONLY = frozenset(
    {
        "test_index_sync.py",  # two indexes of one chain compared (ranges, reorgs, retries)
        "test_index_schema.py",  # migrations against the models
        "test_registry_property.py",  # the ledger's rules against the contract, at random masses
    }
)
"""Slow unit modules whose only wall-clock reads are the eth-tester chain's block times (and the
index's `record_times` trigger, which stamps when a block was indexed) and which never compare them
with a date: every time they submit is EXTRACTED_AT (2023) or after it by hours, so a later block
changes nothing, and they expect no refusal of a time as in the future (the one way a block time
makes a test pass today and fail later). Left out of the far-future run; the watch fails any of
their tests that reads another clock, and `make test` fails one that names a refusal in the future."""

_BLOCK_TIME_READERS = ("eth._utils.headers", "eth_tester.")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests run again under the far-future fake clock (`make test`), all but CLOCKLESS: a new
    module is in that run unless it is listed, and a listed one is watched."""
    for item in items:
        if "tests/unit/" in str(item.path) and item.path.name not in CLOCKLESS | BLOCK_TIMES_ONLY:
            item.add_marker(pytest.mark.clock)


_TIME_READS: dict[str, Callable[[tuple[Any, ...]], bool]] = {
    "time": lambda args: True,
    "time_ns": lambda args: True,
    "localtime": lambda args: not args or args[0] is None,
    "gmtime": lambda args: not args or args[0] is None,
    "ctime": lambda args: not args or args[0] is None,
    "asctime": lambda args: not args,
    "strftime": lambda args: len(args) < 2,
}
"""`time`'s functions, and when a call reads the wall clock (`date.today()`, `datetime.today()` and
`datetime.fromtimestamp`'s callers read it through `time.time` too)."""

_AGES_ONLY = (
    "logging",
    "_pytest.",
    "pluggy",
    "xdist.",
    "execnet.",
    "sqlalchemy.pool.",
    "web3._utils.threads",
    "hypothesis.",
)
"""Callers whose reads reach no outcome: log records' times, pytest's and Hypothesis's own
timings, and ages compared only with another read of the same run (a pool's connection recycling,
web3's receipt timeout)."""

_PROGRAMS_WITHOUT_A_DATE = frozenset({"solc", "solcjs"})
"""Processes a watched test may start: the compiler, whose output (bytecode and metadata) is a
function of its input alone."""

_SQL_CLOCK = re.compile(
    r"'now'|\bnow\(\)|\bcurrent_(timestamp|date|time)\b|\b(clock|statement|transaction)_timestamp\(|\blocaltime",
    re.IGNORECASE,
)
"""SQL that reads the database's clock (SQLite's `julianday('now')`, PostgreSQL's `now()`)."""


class ClockWatch:
    """Notes wall-clock reads: this process's through `time`, `datetime.now` and `utcnow`, SQL that
    reads the database's clock, and any process started (whose reads it cannot see)."""

    def __init__(self) -> None:
        self.depth = 0
        self.reads: list[str] = []
        self.block_times_only = False  # while a BLOCK_TIMES_ONLY module runs

    def note(self, what: str, frames_up: int = 2) -> None:
        if self.depth == 0:
            return
        caller = sys._getframe(frames_up)
        module = str(caller.f_globals.get("__name__", "?"))
        if module.startswith(_AGES_ONLY):
            return
        if self.block_times_only and module.startswith(_BLOCK_TIME_READERS):
            return
        self.reads.append(f"{what} (from {module}, line {caller.f_lineno})")

    def install(self) -> None:
        for name, reads_clock in _TIME_READS.items():
            real = getattr(time, name)

            def watched(
                *args: Any, _real: Any = real, _name: str = name, _reads: Any = reads_clock, **kwargs: Any
            ) -> Any:
                if _reads(args):
                    self.note(f"time.{_name}()")
                return _real(*args, **kwargs)

            setattr(time, name, watched)
        # datetime.now and utcnow read the clock in C, not through time.time, and their type is
        # immutable: they are wrapped in the type's own dict (and the type's method cache reset).
        methods = gc.get_referents(datetime.datetime.__dict__)[0]
        for name in ("now", "utcnow"):
            real = methods[name]

            def watched_now(
                cls: type, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any
            ) -> Any:
                self.note(f"datetime.{_name}()")
                return _real.__get__(None, cls)(*args, **kwargs)

            methods[name] = classmethod(watched_now)
        ctypes.pythonapi.PyType_Modified(ctypes.py_object(datetime.datetime))
        sqlalchemy.event.listen(sqlalchemy.Engine, "before_cursor_execute", self._statement)
        sys.addaudithook(self._audit)

    def _statement(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if self.depth and _SQL_CLOCK.search(statement):
            if self.block_times_only and "record_times" in statement:
                return
            self.reads.append(f"SQL reading the database's clock: {statement[:200]}")

    def _audit(self, event: str, args: tuple[Any, ...]) -> None:
        if self.depth and event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system"):
            if event != "os.system" and Path(str(args[0])).name in _PROGRAMS_WITHOUT_A_DATE:
                return
            self.reads.append(
                f"a process started ({event} {str(args[:2])[:200]}), whose clock is not watched"
            )


WATCH = ClockWatch()
WATCH.install()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """A fixture that read the clock while it was made (a chain's blocks) carries its date into every
    test that uses it, even a test that reads no clock itself."""
    start = len(WATCH.reads)
    WATCH.depth += 1
    try:
        return (yield)
    finally:
        WATCH.depth -= 1
        _FIXTURE_READS[id(fixturedef)] = WATCH.reads[start:]
        del WATCH.reads[start:]


_FIXTURE_READS: dict[int, list[str]] = {}


def _watched(item: pytest.Item) -> bool:
    return "tests/unit/" in str(item.path) and item.path.name in CLOCKLESS | BLOCK_TIMES_ONLY


def pytest_collection_finish(session: pytest.Session) -> None:
    for name in BLOCK_TIMES_ONLY:
        text = (Path(__file__).parent / name).read_text(encoding="utf-8")
        if "InFuture" in text:
            raise pytest.UsageError(f"{name} expects a time refused as in the future: not BLOCK_TIMES_ONLY")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    if _watched(item):
        WATCH.reads.clear()
        WATCH.depth += 1
    WATCH.block_times_only = item.path.name in BLOCK_TIMES_ONLY and "tests/unit/" in str(item.path)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        if _watched(item) and WATCH.depth:
            WATCH.depth -= 1
            _fail_if_read(item, with_fixtures=False)  # they were told after the call


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    if _watched(item):
        _fail_if_read(item)
    return result


def _fail_if_read(item: pytest.Item, *, with_fixtures: bool = True) -> None:
    reads = list(WATCH.reads)
    WATCH.reads.clear()
    for definitions in item._fixtureinfo.name2fixturedefs.values() if with_fixtures else ():  # type: ignore[attr-defined]
        for definition in definitions:
            reads += [
                f"fixture {definition.argname}: {read}" for read in _FIXTURE_READS.get(id(definition), ())
            ]
    if reads:
        pytest.fail(
            f"{item.path.name} is CLOCKLESS or BLOCK_TIMES_ONLY (tests/unit/conftest.py) but this test "
            f"reads a wall clock, so its outcome may depend on the date: take the module out (the "
            f"far-future run of `make test` then runs it). Reads: " + "; ".join(sorted(set(reads))[:10]),
            pytrace=False,
        )
