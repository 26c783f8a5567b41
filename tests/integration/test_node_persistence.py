"""The embedded node's saved chain, on a real anvil: a save taken while blocks are being mined holds
exactly the state of the blocks it holds; a restart never puts a block before the last one, even
when the chain runs ahead of the wall clock; a damaged or inconsistent snapshot is never loaded; a
legacy `--state` file is taken over; the keeper starts a killed node again."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance.chain.node import AnvilNode
from provenance.chain.node_calls import HttpNodeCalls
from provenance.errors import NodeStateInconsistent
from provenance.node_keeper import NodeKeeper

pytestmark = [pytest.mark.anvil, pytest.mark.clock]

SINK = "0x00000000000000000000000000000000000000aa"


def call(node: AnvilNode, method: str, *params: Any) -> Any:
    calls = HttpNodeCalls(node.url)
    try:
        return calls.request(method, list(params))
    finally:
        calls.close()


def send(node: AnvilNode, sender: str, count: int = 1, *, mined: bool = True) -> None:
    """`count` transfers, each waited for until mined (unless `mined` is False)."""
    for _ in range(count):
        tx_hash = call(node, "eth_sendTransaction", {"from": sender, "to": SINK, "value": "0x1"})
        deadline = time.monotonic() + 10
        while mined and call(node, "eth_getTransactionReceipt", tx_hash) is None:
            assert time.monotonic() < deadline, f"{tx_hash} not mined"
            time.sleep(0.005)


def block_times(node: AnvilNode) -> list[int]:
    head = int(call(node, "eth_blockNumber"), 16)
    return [int(call(node, "eth_getBlockByNumber", hex(n), False)["timestamp"], 16) for n in range(head + 1)]


def snapshot_state(path: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    return state


def nonces_and_transactions(state: dict[str, Any], senders: list[str]) -> tuple[int, int]:
    """The senders' nonces in the saved state, and their transactions in the saved blocks: equal
    in a snapshot whose state is the state of its blocks."""
    lowered = {sender.lower() for sender in senders}
    nonces = sum(
        account["nonce"] for address, account in state["accounts"].items() if address.lower() in lowered
    )
    transactions = sum(len(block["transactions"]) for block in state["blocks"])
    return nonces, transactions


@pytest.fixture
def node(tmp_path: Path) -> Iterator[AnvilNode]:
    node = AnvilNode(state_dir=tmp_path / "chain")
    node.start()
    try:
        yield node
    finally:
        node.kill()


def test_saves_taken_while_blocks_are_mined_hold_exactly_the_state_of_their_blocks(node: AnvilNode) -> None:
    senders = call(node, "eth_accounts")[:3]
    stop = threading.Event()

    def write(sender: str) -> None:
        while not stop.is_set():
            send(node, sender, mined=False)
            time.sleep(0.005)

    writers = [threading.Thread(target=write, args=(sender,), daemon=True) for sender in senders]
    for writer in writers:
        writer.start()
    try:
        saved = []
        for _ in range(12):
            time.sleep(0.1)
            snapshot = node.save()
            assert snapshot is not None, "the head moved, so there was something to save"
            saved.append(snapshot_state(snapshot.path))
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    for state in saved:
        nonces, transactions = nonces_and_transactions(state, senders)
        assert nonces == transactions, "a snapshot holds state its blocks do not account for"
        assert state["best_block_number"] == max(
            int(block["header"]["number"], 16) for block in state["blocks"]
        )
    assert kept_snapshots(node) == 2


def kept_snapshots(node: AnvilNode) -> int:
    assert node.snapshots is not None
    return len([snapshot for snapshot in node.snapshots.newest_first() if snapshot.sequence >= 0])


def test_a_restart_never_puts_a_block_before_the_last_one_even_ahead_of_the_wall_clock(
    node: AnvilNode,
) -> None:
    sender = call(node, "eth_accounts")[0]
    send(node, sender, 3)
    call(node, "evm_increaseTime", 7200)  # the chain two hours ahead of the wall clock
    send(node, sender, 2)
    assert node.save() is not None
    ahead = block_times(node)[-1]
    assert ahead >= time.time() + 7000

    node.kill()
    node.start()
    send(node, sender, 2)

    times = block_times(node)
    assert times == sorted(times)
    assert times[-1] >= ahead
    assert node.restored is not None
    assert node.restored.clock == node.restored.head_timestamp == ahead
    node.stop()  # a clean stop saves
    node.start()
    send(node, sender)
    again = block_times(node)
    assert again == sorted(again)
    assert len(again) == len(times) + 1


def test_a_restart_follows_the_wall_clock_when_the_chain_is_behind_it(node: AnvilNode) -> None:
    sender = call(node, "eth_accounts")[0]
    send(node, sender)
    assert node.save() is not None
    node.kill()
    time.sleep(2)
    before = int(time.time())
    node.start()
    send(node, sender)
    assert block_times(node)[-1] >= before


def test_a_torn_newest_snapshot_is_skipped_and_set_aside(node: AnvilNode) -> None:
    sender = call(node, "eth_accounts")[0]
    send(node, sender)
    good = node.save()
    send(node, sender)
    newest = node.save()
    assert good is not None
    assert newest is not None
    newest.path.write_bytes(newest.path.read_bytes()[:-40])  # a write cut short

    node.kill()
    node.start()

    assert node.restored is not None
    assert node.restored.snapshot == good.path.name
    assert not newest.path.exists()
    assert newest.path.with_name(newest.path.name + ".abandoned").exists()
    assert int(call(node, "eth_blockNumber"), 16) == good.block_number


def test_a_snapshot_whose_state_its_blocks_do_not_account_for_is_refused(
    node: AnvilNode, tmp_path: Path
) -> None:
    sender = call(node, "eth_accounts")[0]
    send(node, sender)
    snapshot = node.save()
    assert snapshot is not None
    state = snapshot_state(snapshot.path)
    account = state["accounts"][next(a for a in state["accounts"] if a.lower() == SINK)]
    account["balance"] = hex(int(account["balance"], 16) + 10**18)  # state no block made
    snapshot.path.write_bytes(gzip.compress(json.dumps(state).encode()))
    node.kill()

    with pytest.raises(NodeStateInconsistent, match="not the state of its newest block"):
        node.start()
    assert not node.alive(), "a node serving an inconsistent chain"


def test_a_legacy_state_file_is_taken_over_and_saved_the_new_way(tmp_path: Path) -> None:
    state_dir = tmp_path / "chain"
    node = AnvilNode(state_dir=state_dir)
    node.start()
    try:
        sender = call(node, "eth_accounts")[0]
        send(node, sender, 2)
        snapshot = node.save()
        assert snapshot is not None
        head = call(node, "eth_getBlockByNumber", "latest", False)
        node.kill()
        (state_dir / "anvil-state.json").write_bytes(gzip.decompress(snapshot.path.read_bytes()))
        for path in [*state_dir.glob("snapshot-*"), state_dir / "genesis.json"]:
            path.unlink()

        node.start()

        assert call(node, "eth_getBlockByNumber", "latest", False)["hash"] == head["hash"]
        assert node.snapshots is not None
        assert next(s.sequence for s in node.snapshots.newest_first()) == 1, "saved the new way at once"
    finally:
        node.kill()


def test_the_keeper_starts_a_killed_node_again_from_its_last_save(tmp_path: Path) -> None:
    node = AnvilNode(state_dir=tmp_path / "chain")
    keeper = NodeKeeper(node, save_every_s=0.2)
    keeper.start()
    try:
        sender = call(node, "eth_accounts")[0]
        send(node, sender, 3)
        deadline = time.monotonic() + 10
        while keeper.status().saved_block != 3:
            assert time.monotonic() < deadline, keeper.status()
            time.sleep(0.05)
        first_pid = node.process.pid if node.process else None
        node.kill()
        deadline = time.monotonic() + 20
        while keeper.status().restarts == 0:
            assert time.monotonic() < deadline, keeper.status()
            time.sleep(0.05)
        status = keeper.status()
        assert status.restarts == 1
        assert node.process is not None
        assert node.process.pid != first_pid
        assert status.last_exit is not None
        assert status.last_exit.startswith("killed by signal 9")
        assert int(call(node, "eth_blockNumber"), 16) == 3
    finally:
        keeper.stop()
    assert not node.alive()
