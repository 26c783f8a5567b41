"""The embedded node's saved chains on disk: whole files or none, the newest two kept.

A snapshot is anvil's own `anvil_dumpState` answer (gzip of its JSON state: blocks, transactions
with their receipts and logs, accounts), taken by `AnvilNode.save` at a quiescent moment and
checked before it is kept. Each is written to a temporary file, flushed to disk, renamed into
place, and the directory flushed: a crash at any instant leaves the previous snapshot or the new
one, never a torn file (anvil's own `--state` truncates its file and writes it in place). A
sequence number and the head's block number are in the name, so the newest is found without
opening any (by sequence: after a reorg or a restore from an older snapshot the block number of a
newer snapshot can be lower).

`genesis.json` records block 0's timestamp and hash once: a restored node must be started with that
timestamp so that the genesis it makes at start is the saved one (docs/faults.md).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

SNAPSHOT_NAME = re.compile(r"^snapshot-(\d{8})-b(\d+)\.json\.gz$")
LEGACY_STATE = "anvil-state.json"
"""What anvil's own `--state` wrote before the project saved the chain itself (read once, to migrate)."""
KEEP = 2


@dataclass(frozen=True)
class Snapshot:
    path: Path
    sequence: int
    """-1 for a legacy `--state` file."""
    block_number: int | None

    def plain_json(self) -> bytes:
        """The state as anvil's `--load-state` reads it; ValueError if the file is damaged (gzip's
        CRC and length catch a torn or corrupted file)."""
        if self.path.name == LEGACY_STATE:
            return self.path.read_bytes()
        try:
            return gzip.decompress(self.path.read_bytes())
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"{self.path.name} is damaged: {error}") from error


@dataclass(frozen=True)
class Genesis:
    timestamp: int
    hash: str


class SnapshotStore:
    """The directory of one node's snapshots."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def newest_first(self) -> list[Snapshot]:
        """Every snapshot, newest first; a legacy `--state` file last (it predates them all)."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in self.directory.iterdir():
                match = SNAPSHOT_NAME.match(entry.name)
                if match:
                    found.append(Snapshot(entry, int(match.group(1)), int(match.group(2))))
        found.sort(key=lambda snapshot: snapshot.sequence, reverse=True)
        legacy = self.directory / LEGACY_STATE
        if legacy.exists():
            found.append(Snapshot(legacy, -1, None))
        return found

    def write(self, block_number: int, gzipped_state: bytes) -> Snapshot:
        """Writes a snapshot durably, then removes all but the newest `KEEP`."""
        saved = [snapshot for snapshot in self.newest_first() if snapshot.sequence >= 0]
        sequence = saved[0].sequence + 1 if saved else 1
        path = self.directory / f"snapshot-{sequence:08d}-b{block_number}.json.gz"
        _write_durably(path, gzipped_state)
        for old in saved[KEEP - 1 :]:
            with contextlib.suppress(FileNotFoundError):
                old.path.unlink()
        return Snapshot(path, sequence, block_number)

    def abandon_newer_than(self, kept: Snapshot) -> list[Path]:
        """Renames the snapshots newer than `kept` (restored instead: theirs is a chain that no
        longer goes on) out of the way, kept for a person to look at. Returns their new names."""
        moved = []
        for snapshot in self.newest_first():
            if snapshot.sequence > kept.sequence:
                target = snapshot.path.with_name(snapshot.path.name + ".abandoned")
                snapshot.path.replace(target)
                moved.append(target)
        return moved

    def genesis(self) -> Genesis | None:
        """Block 0 as recorded at the first save, or as a legacy `--state` file holds it."""
        try:
            record = json.loads((self.directory / "genesis.json").read_text(encoding="utf-8"))
            return Genesis(int(record["timestamp"]), str(record["hash"]))
        except (OSError, ValueError, KeyError, TypeError):
            pass
        stamp = legacy_genesis_timestamp(self.directory / LEGACY_STATE)
        return None if stamp is None else Genesis(stamp, "")

    def record_genesis(self, genesis: Genesis) -> None:
        if (self.directory / "genesis.json").exists():
            return
        record = {"timestamp": genesis.timestamp, "hash": genesis.hash}
        _write_durably(self.directory / "genesis.json", json.dumps(record).encode())

    def wait_covering(self, block_number: int, timeout_s: float) -> bool:
        """Waits until the newest snapshot holds `block_number` (serve's keeper saves the chain
        every few seconds); False if it does not within `timeout_s`. What a write outside the
        outbox (a role granted by `accounts create`) waits for before it is reported done: until
        then a crash of the node would take it back, and nothing would send it again."""
        deadline = time.monotonic() + timeout_s
        while True:
            saved = [snapshot for snapshot in self.newest_first() if snapshot.sequence >= 0]
            if saved and saved[0].block_number is not None and saved[0].block_number >= block_number:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def loading_path(self) -> Path:
        """Where a snapshot is unpacked for anvil to load at start (removed once it has)."""
        return self.directory / "loading.json"


def legacy_genesis_timestamp(state_path: Path) -> int | None:
    """The earliest block 0 in a dump of anvil's own `--state` (after restarts it may hold two)."""
    try:
        blocks = json.loads(state_path.read_text(encoding="utf-8")).get("blocks", [])
        stamps = [
            int(block["header"]["timestamp"], 16) for block in blocks if block["header"]["number"] == "0x0"
        ]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return min(stamps) if stamps else None


def _write_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as output:
        output.write(data)
        output.flush()
        os.fsync(output.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
