"""The embedded node's snapshot files: newest by sequence (not by block: a reorg or a restore from
an older snapshot can lower the block), the newest two kept, a torn file named as damaged, and a
legacy `--state` file found last."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from provenance.chain.node_snapshots import Genesis, SnapshotStore


def test_the_newest_is_the_last_written_even_at_a_lower_block_and_two_are_kept(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    for block in (10, 20, 15):
        store.write(block, gzip.compress(json.dumps({"block": block}).encode()))

    kept = store.newest_first()
    assert [(s.sequence, s.block_number) for s in kept] == [(3, 15), (2, 20)]
    assert json.loads(kept[0].plain_json()) == {"block": 15}
    assert not list(tmp_path.glob("*.tmp")), "a temporary file was left behind"
    assert store.wait_covering(15, timeout_s=0)
    assert not store.wait_covering(16, timeout_s=0.1)


def test_a_torn_snapshot_is_named_damaged(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    snapshot = store.write(1, gzip.compress(b'{"blocks": []}' * 100))
    snapshot.path.write_bytes(snapshot.path.read_bytes()[:-20])

    with pytest.raises(ValueError, match="damaged"):
        snapshot.plain_json()


def test_newer_snapshots_are_set_aside_when_an_older_one_is_restored(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    older = store.write(5, gzip.compress(b"{}"))
    newer = store.write(6, gzip.compress(b"{}"))

    moved = store.abandon_newer_than(older)

    assert [path.name for path in moved] == [newer.path.name + ".abandoned"]
    assert [s.path for s in store.newest_first()] == [older.path]


def test_a_legacy_state_file_comes_last_with_its_genesis_time(tmp_path: Path) -> None:
    blocks = [{"header": {"number": "0x0", "timestamp": hex(t)}} for t in (200, 100)]
    (tmp_path / "anvil-state.json").write_text(json.dumps({"blocks": blocks}))
    store = SnapshotStore(tmp_path)
    assert store.genesis() == Genesis(100, ""), "the earliest block 0 is the chain's genesis"
    store.write(1, gzip.compress(b"{}"))
    store.record_genesis(Genesis(100, "0xabc"))

    assert [s.sequence for s in store.newest_first()] == [1, -1]
    assert store.genesis() == Genesis(100, "0xabc")
