"""The two small parts that keep the API useful while the node is away, without a node."""

from __future__ import annotations

import threading

import pytest

from api.chain_head import UNREACHABLE_AFTER_S, ChainHead
from provenance.errors import ChainError
from provenance.services.access import MissingRole, RoleGate

ACCOUNT = "0x" + "11" * 20


class FlakyRoles:
    """A RoleReader whose node can be switched off; `held` says whether ACCOUNT holds the role."""

    def __init__(self) -> None:
        self.up = True
        self.held = True

    def registrar_role(self, site: str) -> bytes:
        return b"\x01" * 32

    def role(self, name: str) -> bytes:
        return b"\x02" * 32

    def has_role(self, role_id: bytes, account: str) -> bool:
        if not self.up:
            raise ConnectionError("connection refused")
        return self.held


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_role_seen_held_is_trusted_while_the_node_is_unreachable() -> None:
    roles, clock = FlakyRoles(), Clock()
    gate = RoleGate(roles, ttl_s=5, clock=clock)
    registrar = gate.registrar("SH2")
    gate.require(ACCOUNT, registrar)
    roles.up = False
    clock.now = 60  # long past the cache
    gate.require(ACCOUNT, registrar)  # queued; the contract is the guard
    with pytest.raises(ChainError):
        gate.require("0x" + "22" * 20, registrar)  # never seen: no guess


def test_a_role_seen_missing_is_not_trusted_during_an_outage() -> None:
    roles, clock = FlakyRoles(), Clock()
    gate = RoleGate(roles, ttl_s=5, clock=clock)
    registrar = gate.registrar("SH2")
    gate.require(ACCOUNT, registrar)
    clock.now = 60
    roles.held = False
    with pytest.raises(MissingRole):
        gate.require(ACCOUNT, registrar)
    roles.up = False
    with pytest.raises(ChainError):
        gate.require(ACCOUNT, registrar)


def test_the_chain_head_keeps_the_last_block_and_says_when_the_node_is_gone() -> None:
    clock = Clock()
    answers: list[int | Exception] = [7]

    def read_head() -> int:
        answer = answers[-1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    head = ChainHead(read_head, interval_s=1, clock=clock)
    assert (head.seen().block, head.seen().reachable) == (7, True)
    answers.append(ConnectionError("refused"))
    clock.now = 0.5  # within the interval: the node is not asked
    assert head.seen().reachable is True
    clock.now = 1.5
    seen = head.seen()
    assert (seen.block, seen.reachable) == (7, False)
    answers.append(9)
    clock.now = 3.0
    assert (head.seen().block, head.seen().reachable) == (9, True)
    clock.now = 3.0 + UNREACHABLE_AFTER_S + 0.1  # a node that hangs: no answer for too long
    head._asking.acquire()  # the read that asks it is still waiting
    assert head.seen().reachable is False


def test_a_watched_head_is_never_asked_inside_a_read() -> None:
    asked_on: list[str] = []
    hanging = threading.Event()
    release = threading.Event()

    def read_head() -> int:
        asked_on.append(threading.current_thread().name)
        if len(asked_on) > 1:
            hanging.set()
            release.wait(10)  # a node that hangs, as one saving its state does
        return 41 + len(asked_on)

    head = ChainHead(read_head, interval_s=0.01, read_index=lambda: 40)
    head.watch()
    try:
        assert hanging.wait(5)
        seen = [head.seen() for _ in range(100)]  # while the watcher waits on the hanging node
    finally:
        release.set()
        head.stop()

    assert set(asked_on) == {"chain-head"}
    assert {(s.block, s.reachable, s.index_cursor) for s in seen} == {(42, True, 40)}
