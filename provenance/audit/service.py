"""`provenance audit`: rebuild the index from the chain alone, then check the live index, every rule
and the contract's state against it.

1. The live index (if given) is read in one snapshot; its `chain_mirror` must name this chain,
   genesis and registry, its cursor and stored block hashes must be on this chain (an index
   "ahead of the chain", or of another chain, is named as such).
2. A fresh index is built by the ordinary `Indexer` into a temporary SQLite file, from the
   registry's deployment block (found from the chain's own events) up to the audit's block: the
   live index's cursor, or the chain's head when there is no live index. The events the rebuild
   read are kept for step 3.
3. Those events are replayed in plain Python (`provenance.audit.rules`) and every rule re-checked.
4. The live index is compared with the rebuild row by row (by primary key) and by digest.
5. `lotState` is read by eth_call at the audit's block for every lot either side knows, and
   compared with the replay and the index.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from provenance.audit.compare import row_findings
from provenance.audit.live import LiveIndexReader
from provenance.audit.report import AuditReport, Finding
from provenance.audit.rules import Replay, Roles
from provenance.bootstrap import index_engine
from provenance.chain.audit_reads import (
    AuditChain,
    ChainLotState,
    SignerRecovery,
    registrar_role_id,
    role_ids,
)
from provenance.chain.connection import Web3
from provenance.chain.deployment import Deployment
from provenance.domain.blocks import BlockRef, Confirmations
from provenance.domain.events import DecodedEvent
from provenance.epcis.ids import LOCAL_SCHEME, IdentifierScheme
from provenance.index.db import describe, upgrade
from provenance.index.epcis_documents import current_fingerprints
from provenance.index.indexer import Indexer
from provenance.index.snapshot import (
    Snapshot,
    digest_of,
    index_snapshot_with_digests,
    keyed_differences,
    snapshot_columns,
)
from provenance.index.tables import INDEX_TABLES

Progress = Callable[[str, int, int], None]
"""(phase, done, total): the rebuild reports blocks, the state check lots."""

SPLIT_READ = ("events",)
BOOKKEEPING_UNCOMPARED = ("blocks",)
"""Which recent block hashes an index keeps depends on how it was filled (followed block by block,
or backfilled); they are checked against the chain instead (step 1)."""


class _PinnedSource:
    """The rebuild's log source: the chain up to `target` only, every event read kept, progress told."""

    def __init__(
        self,
        chain: AuditChain,
        target: int,
        start: int,
        progress: Progress | None,
        recovery: SignerRecovery | None = None,
    ) -> None:
        self.source = chain.source
        self.recovery = recovery
        self.target = target
        self.start = start
        self.progress = progress
        self.read: dict[tuple[str, int], DecodedEvent] = {}

    def head(self, confirmations: Confirmations) -> BlockRef:
        return self.source.block(self.target)

    def block(self, number: int) -> BlockRef:
        return self.source.block(number)

    def blocks(self, numbers: Any) -> dict[int, BlockRef]:
        return self.source.blocks(numbers)

    def logs(self, from_block: int, to_block: int) -> list[DecodedEvent]:
        events = self.source.logs(from_block, to_block)
        fresh = [event for event in events if (event.tx_hash, event.log_index) not in self.read]
        for event in events:
            self.read[(event.tx_hash, event.log_index)] = event
        if self.recovery is not None:
            self.recovery.add(event for event in fresh if event.block_number <= self.target)
        if self.progress is not None:
            self.progress("rebuild", to_block - self.start + 1, self.target - self.start + 1)
        return events

    def events(self) -> list[DecodedEvent]:
        kept = [event for event in self.read.values() if event.block_number <= self.target]
        kept.sort(key=lambda event: (event.block_number, event.tx_index, event.log_index))
        return kept


EVENT_ID_TABLES = ("epcis_event_ids", "epcis_id_scheme")
"""The stored EPCIS events and their eventIDs, as the deployment's identifier settings and the
mapping's code write them."""


def _other_identifiers(live: Snapshot, identifiers: IdentifierScheme) -> Finding | None:
    """One finding, instead of one per event, when the index's events were stored under other
    identifier settings than the audit's, or by another version of the mapping: its rebuild cannot
    be compared with them. The indexer stores them anew when either changes, so this names the
    audit's settings, not the index."""
    stored = [(str(row["fingerprint"]), str(row["mapping"])) for row in _rows(live, "epcis_id_scheme")]
    wanted = current_fingerprints(identifiers)
    if not stored or stored == [wanted]:
        return None
    if stored[0][0] == wanted[0]:
        return Finding(
            "index",
            "other_mapping",
            "EPCIS events",
            "the index's EPCIS events were stored by another version of the EPCIS mapping than this "
            "audit's: its indexer stores them anew at its next start; audit once it has",
            {"index": stored[0][1][:12], "audit": wanted[1][:12]},
        )
    return Finding(
        "index",
        "other_identifiers",
        "EPCIS eventIDs",
        "the index's EPCIS eventIDs were stored under other identifier settings than this audit's "
        "(PROVENANCE_PUBLIC_URL, PROVENANCE_EPCIS_*): audit with the deployment's settings to compare them",
        {"index": stored[0][0][:12], "audit": wanted[0][:12]},
    )


def _rows(snapshot: Snapshot, table: str) -> list[dict[str, Any]]:
    names = snapshot_columns()[table]
    return [dict(zip(names, row, strict=True)) for row in snapshot.get(table, [])]


def audit(
    w3: Web3,
    registry: str,
    *,
    database_url: str | None = None,
    progress: Progress | None = None,
    workdir: Path | None = None,
    identifiers: IdentifierScheme = LOCAL_SCHEME,
) -> AuditReport:
    """Audits the registry at `registry` on the node behind `w3` (and the index at `database_url`).
    The rebuild stores EPCIS eventIDs with `identifiers` (the deployment's): the live index's
    stored eventIDs are compared with them like any other table.

    Raises ChainError for a node that does not answer or no registry at the address, and
    IndexStateError for an index database that cannot be read at all.
    """
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    chain = AuditChain(w3, registry)
    deployment = chain.deployment()
    head = chain.head()
    findings: list[Finding] = []

    live: Snapshot | None = None
    target = head
    reader: LiveIndexReader | None = None
    early_states: Future[dict[str, ChainLotState]] | None = None
    recovery = chain.signer_recovery()
    pool = ThreadPoolExecutor(1, thread_name_prefix="audit-state")
    try:
        if database_url is not None:
            reader = LiveIndexReader(database_url)
            early = reader.early()
            index_findings, cursor_on_chain = _check_index_chain(chain, deployment, early, head)
            findings.extend(index_findings)
            cursor = _rows(early, "index_cursor")
            if cursor and cursor_on_chain:
                target = int(cursor[0]["block_number"])
            known = [str(row["lot_id"]) for row in _rows(early, "lots")]
            if known and target >= deployment.block_number:
                early_states = pool.submit(chain.lot_states, known, target)
        seconds["read_index"] = time.perf_counter() - started

        mark = time.perf_counter()
        fresh, fresh_digests, events = _rebuild(
            chain, deployment, target, progress, workdir, recovery, seconds, identifiers
        )
        seconds["rebuild"] = time.perf_counter() - mark
        if reader is not None:
            mark = time.perf_counter()
            live, live_digests = reader.result()
            seconds["read_index"] += time.perf_counter() - mark
        states = early_states.result() if early_states is not None else {}
    except BaseException:
        if reader is not None:
            reader.close(kill=True)
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    mark = time.perf_counter()
    roles = role_ids()
    replaying = Replay(Roles(roles["admin"], roles["processor"], roles["lab"], registrar_role_id))
    for event in events:
        replaying.apply(event)
    replaying.flush()
    seconds["rules"] = time.perf_counter() - mark
    mark = time.perf_counter()
    digests: dict[str, Any] = {}
    if live is not None:
        uncompared = set(BOOKKEEPING_UNCOMPARED)
        scheme_finding = _other_identifiers(live, identifiers)
        if scheme_finding is not None:
            findings.append(scheme_finding)
            uncompared |= set(EVENT_ID_TABLES)
        compared = [name for name in sorted(fresh) if name not in uncompared]
        differences = keyed_differences(live, fresh, tables=compared, digests=(live_digests, fresh_digests))
        findings.extend(row_findings(list(differences)))
        digests = {
            "index": digest_of(live_digests),
            "chain": digest_of(fresh_digests),
            "tables": {
                name: {
                    "index": live_digests.get(name),
                    "chain": fresh_digests[name],
                    "equal": live_digests.get(name) == fresh_digests[name],
                }
                for name in sorted(fresh_digests)
            },
        }
    else:
        digests = {
            "chain": digest_of(fresh_digests),
            "tables": {name: {"chain": value} for name, value in fresh_digests.items()},
        }
    seconds["compare"] = time.perf_counter() - mark

    mark = time.perf_counter()
    index_lots = {row["lot_id"]: row for row in _rows(live if live is not None else fresh, "lots")}
    replayed_lots = replaying.ledger.lots
    lot_ids = sorted(set(replayed_lots) | set(index_lots))
    if progress is not None:
        progress("state", 0, len(lot_ids))
    missing = [lot_id for lot_id in lot_ids if lot_id not in states]
    if missing and target >= deployment.block_number:
        states.update(chain.lot_states(missing, target))
    if progress is not None:
        progress("state", len(lot_ids), len(lot_ids))
    findings.extend(
        _state_findings(
            lot_ids, states, replayed_lots, index_lots, "index" if live is not None else "rebuild"
        )
    )
    seconds["state"] = time.perf_counter() - mark

    mark = time.perf_counter()
    assay_signers, load_signers = recovery.result()
    replayed = replaying.finish(assay_signers, load_signers)
    for rule in replayed.findings:
        where_text = (
            f" (block {rule.block_number}, tx {rule.tx_hash}, log {rule.log_index})" if rule.tx_hash else ""
        )
        findings.append(
            Finding(
                "rules",
                rule.rule,
                f"lot {rule.lot_id}" if rule.lot_id else rule.event,
                f"{rule.rule}: {rule.event}{where_text}: {rule.message}",
                {
                    "lot_id": rule.lot_id,
                    "event": rule.event,
                    "tx_hash": rule.tx_hash,
                    "block_number": rule.block_number,
                    "log_index": rule.log_index,
                },
            )
        )
    seconds["signatures"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started

    return AuditReport(
        chain_id=deployment.chain_id,
        registry=deployment.registry,
        deployment_block=deployment.block_number,
        block=target,
        head=head,
        database=describe(index_engine(database_url)) if database_url is not None else None,
        index_compared=live is not None,
        events=replayed.events,
        lots=len(replayed.lots),
        checked=replayed.checked,
        mass={
            "registered_g": replayed.registered_g,
            "corrected_g": replayed.corrected_g,
            "remaining_g": replayed.remaining_g,
            "lost_g": replayed.lost_g,
        },
        digests=digests,
        findings=findings,
        seconds={key: round(value, 3) for key, value in seconds.items()},
    )


def _rebuild(
    chain: AuditChain,
    deployment: Deployment,
    target: int,
    progress: Progress | None,
    workdir: Path | None,
    recovery: SignerRecovery | None = None,
    seconds: dict[str, float] | None = None,
    identifiers: IdentifierScheme = LOCAL_SCHEME,
) -> tuple[Snapshot, dict[str, str], list[DecodedEvent]]:
    source = _PinnedSource(chain, target, deployment.block_number, progress, recovery)
    with tempfile.TemporaryDirectory(prefix="provenance-audit-", dir=workdir) as scratch:
        url = f"sqlite:///{Path(scratch) / 'rebuild.sqlite3'}"
        upgrade(url)
        engine = index_engine(url)
        try:
            started = time.perf_counter()
            Indexer(engine, source, deployment, identifiers=identifiers).sync()
            if seconds is not None:
                seconds["rebuild_index"] = time.perf_counter() - started
            # The events table (JSON arguments) is about half the reading: a child reads it meanwhile.
            helper = LiveIndexReader(url, tables=SPLIT_READ)
            try:
                fresh, digests = index_snapshot_with_digests(
                    engine, tables=[name for name in INDEX_TABLES if name not in SPLIT_READ]
                )
                events_part, events_digests = helper.result()
            finally:
                helper.close(kill=True)
            fresh = dict(sorted({**fresh, **events_part}.items()))
            digests = dict(sorted({**digests, **events_digests}.items()))
            if seconds is not None:
                seconds["rebuild_snapshot"] = time.perf_counter() - started - seconds["rebuild_index"]
        finally:
            engine.dispose()
    return fresh, digests, source.events()


def _check_index_chain(
    chain: AuditChain, deployment: Deployment, live: Snapshot, head: int
) -> tuple[list[Finding], bool]:
    """Whether the live index mirrors this chain and registry, and its cursor and stored blocks are
    on this chain; returns the findings and whether the cursor is on this chain."""
    findings: list[Finding] = []
    mirrors = _rows(live, "chain_mirror")
    if mirrors:
        mirror = mirrors[0]
        wanted = {
            "chain_id": deployment.chain_id,
            "genesis_hash": deployment.genesis_hash,
            "registry_address": deployment.registry,
            "deployment_block": deployment.block_number,
            "deployment_block_hash": deployment.block_hash,
        }
        for key, value in wanted.items():
            if str(mirror[key]).lower() != str(value).lower():
                findings.append(
                    Finding(
                        "index_chain",
                        "other_chain",
                        f"chain_mirror {key}",
                        f"index of another chain: its {key} is {mirror[key]}, this chain's is {value}",
                        {"field": key, "index": mirror[key], "chain": value},
                    )
                )
    cursors = _rows(live, "index_cursor")
    if not cursors:
        return findings, True
    cursor = cursors[0]
    number, block_hash = int(cursor["block_number"]), str(cursor["block_hash"])
    stored = {int(row["number"]): str(row["hash"]) for row in _rows(live, "blocks")}
    on_chain = chain.block_hashes([number, *stored])
    cursor_ok = True
    if number > head:
        cursor_ok = False
        findings.append(
            Finding(
                "index_chain",
                "ahead_of_chain",
                "index_cursor",
                f"index ahead of the chain: its cursor is at block {number}, the chain's head is {head}",
                {"index": {"block_number": number, "block_hash": block_hash}, "chain": {"head": head}},
            )
        )
    elif on_chain.get(number, "").lower() != block_hash.lower():
        cursor_ok = False
        findings.append(
            Finding(
                "index_chain",
                "not_on_chain",
                "index_cursor",
                f"index cursor not on this chain: block {number} is {block_hash} in the index, "
                f"{on_chain.get(number)} on the chain",
                {"index": block_hash, "chain": on_chain.get(number), "block_number": number},
            )
        )
    for stored_number, stored_hash in sorted(stored.items()):
        chain_hash = on_chain.get(stored_number)
        if chain_hash is None or chain_hash.lower() != stored_hash.lower():
            findings.append(
                Finding(
                    "index_chain",
                    "block_not_on_chain",
                    f"block {stored_number}",
                    f"stored block {stored_number} is {stored_hash} in the index, "
                    + (f"{chain_hash} on the chain" if chain_hash else "beyond the chain's head"),
                    {"block_number": stored_number, "index": stored_hash, "chain": chain_hash},
                )
            )
    return findings, cursor_ok


def _same_address(left: Any, right: Any) -> bool:
    return (str(left).lower() if left else None) == (str(right).lower() if right else None)


def _state_findings(
    lot_ids: list[str],
    states: dict[str, ChainLotState],
    replayed: dict[str, Any],
    index_lots: dict[str, dict[str, Any]],
    index_name: str,
) -> list[Finding]:
    findings: list[Finding] = []
    for lot_id in lot_ids:
        state = states.get(lot_id)
        if state is None:
            continue
        chain_view = {
            "custodian": state.custodian,
            "remaining_g": state.remaining_g,
            "pending_custodian": state.pending_custodian,
        }
        replay_lot = replayed.get(lot_id)
        views = {
            "replay": None
            if replay_lot is None
            else {
                "custodian": replay_lot.custodian,
                "remaining_g": replay_lot.remaining_g,
                "pending_custodian": replay_lot.pending_custodian,
            },
            index_name: None
            if lot_id not in index_lots
            else {
                column: index_lots[lot_id][column]
                for column in ("custodian", "remaining_g", "pending_custodian")
            },
        }
        for name, view in views.items():
            if view is None:
                if state.custodian is not None:
                    findings.append(
                        Finding(
                            "state",
                            f"{name}_missing_lot",
                            f"lot {lot_id}",
                            f"lot {lot_id}: the contract holds it (custodian {state.custodian}), the {name} does not",
                            {"chain": chain_view},
                        )
                    )
                continue
            if state.custodian is None:
                findings.append(
                    Finding(
                        "state",
                        f"{name}_unknown_lot",
                        f"lot {lot_id}",
                        f"lot {lot_id}: in the {name}, but lotState says the registry has no such lot",
                        {name: view},
                    )
                )
                continue
            for column, chain_value in chain_view.items():
                value = view[column]
                same = value == chain_value if column == "remaining_g" else _same_address(value, chain_value)
                if not same:
                    findings.append(
                        Finding(
                            "state",
                            f"{name}_differs",
                            f"lot {lot_id}",
                            f"lot {lot_id}: {column} {name}={value!r} chain(lotState)={chain_value!r}",
                            {"field": column, name: value, "chain": chain_value},
                        )
                    )
    return findings
