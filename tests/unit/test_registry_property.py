"""The registry against its plain-Python model: random sequences of registrations, transformations
(valid and not) and custody moves among a few accounts go to the contract and to `Ledger` alike.

After every step the two must agree on what was refused (and why) and on every lot's custodian,
remaining mass and pending receiver; and mass must balance: what was registered (plus corrections)
is exactly what remains plus what was declared lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from eth_abi import decode as abi_decode
from hexbytes import HexBytes
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from web3 import Web3

from provenance.domain.ledger import Consumption, Ledger, NewLot, RuleViolation
from provenance.domain.values import Address, CorrectionReason, TransformKind
from provenance.errors import ContractRevert
from tests.unit.conftest import SITE, ZERO_ADDRESS, Chain, digest, label, lot, registration_args

settings.register_profile(
    "registry-model",
    max_examples=20,
    stateful_step_count=20,
    deadline=None,  # a step is a transaction on an in-process EVM: tens of milliseconds, and uneven
    suppress_health_check=[HealthCheck.too_slow],
)

LOT_IDS = [f"P{index}" for index in range(16)]
# Mostly valid grades, and now and then one above the whole lot: refused as InvalidGrade by both.
GRADES = st.sampled_from([12_345, 0, 1_000_000, 550_000, 12_345, 80_000, 12_345, 1_000_001])
MASSES = st.integers(min_value=0, max_value=10_000)  # 0 now and then: refused as ZeroMass by both
# The shapes each kind allows: split 1 -> n, merge and blend n -> 1, process n -> m.
VALID_SHAPES = {
    TransformKind.SPLIT: st.tuples(st.just(1), st.integers(1, 3)),
    TransformKind.MERGE: st.tuples(st.integers(2, 3), st.just(1)),
    TransformKind.BLEND: st.tuples(st.integers(2, 3), st.just(1)),
    TransformKind.PROCESS: st.tuples(st.integers(1, 3), st.integers(1, 3)),
}
ANY_SHAPE = st.tuples(st.integers(0, 3), st.integers(0, 3))
MOSTLY = st.sampled_from([True, True, True, False])  # one_of() would merge repeated branches


def pick(data: st.DataObject, favoured: Sequence[str], fallback: Sequence[str]) -> str:
    """From `favoured` three times in four (when it has any), otherwise from `fallback`."""
    if favoured and data.draw(MOSTLY):
        return data.draw(st.sampled_from(sorted(favoured)))
    return data.draw(st.sampled_from(sorted(fallback)))


class RegistryMatchesLedger(RuleBasedStateMachine):
    """One example: a fresh registry (the snapshot) and an empty ledger, driven in lockstep."""

    def __init__(self, chain: Chain, snapshot: int, accounts: Sequence[str]) -> None:
        super().__init__()
        chain.tester.revert_to_snapshot(snapshot)
        self.chain = chain
        self.accounts = list(accounts)
        self.ledger = Ledger()
        self.named: set[str] = set()  # every lot id an operation has mentioned, accepted or not
        self.registered_g = 0
        self.lost_g = 0
        self.corrected_g = 0

    # ------------------------------------------------------------ lockstep

    def apply(self, what: str, on_chain: Callable[[], Any], in_ledger: Callable[[], Any]) -> bool:
        """Runs one operation on both sides; they must accept alike or refuse with the same error."""
        try:
            in_ledger()
            ledger_error = None
        except RuleViolation as violation:
            ledger_error = violation.code
        try:
            on_chain()
            chain_error = None
        except ContractRevert as revert:
            chain_error = revert.name
        assert chain_error == ledger_error, f"{what}: the chain says {chain_error}, the ledger {ledger_error}"
        event(f"{what.partition('(')[0]}: {chain_error or 'accepted'}")  # see --hypothesis-show-statistics
        return chain_error is None

    def held_by(self, account: str) -> list[str]:
        return sorted(
            lot_id
            for lot_id, state in self.ledger.lots.items()
            if state.custodian == account and state.remaining_g > 0 and state.pending_custodian is None
        )

    def offered_to(self, account: str) -> list[str]:
        return sorted(
            lot_id for lot_id, state in self.ledger.lots.items() if state.pending_custodian == account
        )

    def fresh(self) -> list[str]:
        return [lot_id for lot_id in LOT_IDS if lot_id not in self.ledger.lots]

    def some_lot(self, data: st.DataObject, likely: list[str]) -> str:
        """Usually a lot that makes the operation valid, otherwise any id (foreign, consumed, unknown)."""
        lot_id = pick(data, likely, LOT_IDS)
        self.named.add(lot_id)
        return lot_id

    def some_lots(self, data: st.DataObject, likely: list[str], count: int) -> list[str]:
        """`count` lots, mostly distinct ones out of `likely`, sometimes anything (repeats included)."""
        if len(likely) >= count and data.draw(MOSTLY):
            chosen = data.draw(st.permutations(likely))[:count]
            self.named.update(chosen)
            return chosen
        return [self.some_lot(data, likely) for _ in range(count)]

    # ------------------------------------------------------------ rules

    def register(self, caller: str, batch: list[tuple[str, int, int]], function: str) -> None:
        self.named.update(lot_id for lot_id, _, _ in batch)
        raw = [
            registration_args(lot(lot_id), massG=mass_g, gradePpm=grade) for lot_id, mass_g, grade in batch
        ]
        lots = [NewLot(*item) for item in batch]
        single = function == "registerLot"
        if self.apply(
            f"{function}({batch}) by {caller}",
            lambda: self.chain.client.transact(caller, function, label(SITE), raw[0] if single else raw),
            lambda: (
                self.ledger.register(Address(caller), lots[0])
                if single
                else self.ledger.register_batch(Address(caller), lots)
            ),
        ):
            self.registered_g += sum(mass_g for _, mass_g, _ in batch)

    def new_lots(self, data: st.DataObject, count: int) -> list[tuple[str, int, int]]:
        """Lots to register: mostly under new ids, now and then a taken one or one named twice."""
        return [
            (lot_id, data.draw(MASSES), data.draw(GRADES))
            for lot_id in self.some_lots(data, self.fresh(), count)
        ]

    @initialize(data=st.data())
    def stock_every_account(self, data: st.DataObject) -> None:
        """Each account starts with two lots (or tries to), so transformations have material early."""
        for account in self.accounts:
            self.register(account, self.new_lots(data, 2), "registerLots")

    @rule(data=st.data())
    def register_one(self, data: st.DataObject) -> None:
        self.register(data.draw(st.sampled_from(self.accounts)), self.new_lots(data, 1), "registerLot")

    @rule(data=st.data(), count=st.integers(min_value=0, max_value=4))
    def register_batch(self, data: st.DataObject, count: int) -> None:
        self.register(data.draw(st.sampled_from(self.accounts)), self.new_lots(data, count), "registerLots")

    @rule(data=st.data(), kind=st.sampled_from(TransformKind))
    def transform(self, data: st.DataObject, kind: TransformKind) -> None:
        caller = pick(data, [account for account in self.accounts if self.held_by(account)], self.accounts)
        input_count, output_count = data.draw(VALID_SHAPES[kind] if data.draw(MOSTLY) else ANY_SHAPE)
        inputs: list[tuple[str, int]] = []
        for lot_id in self.some_lots(data, self.held_by(caller), input_count):
            state = self.ledger.lots.get(lot_id)
            left = state.remaining_g if state else 0
            how_much = data.draw(st.sampled_from(["part", "all"] * 4 + ["over", "none"]))
            mass_g = {"all": left, "over": left + 1, "none": 0}.get(how_much) or data.draw(
                st.integers(min_value=1, max_value=max(left, 1))
            )
            inputs.append((lot_id, mass_g))
        consumed_g = sum(mass_g for _, mass_g in inputs)

        loss_g = data.draw(st.integers(min_value=0, max_value=consumed_g))
        shares = self.shares(data, consumed_g - loss_g, output_count)
        output_ids = self.some_lots(data, self.fresh(), output_count)
        outputs = [
            (lot_id, share, data.draw(GRADES)) for lot_id, share in zip(output_ids, shares, strict=True)
        ]
        loss_g = max(
            0, loss_g + data.draw(st.sampled_from([0, 0, 0, 0, 0, 0, 1, -1]))
        )  # now and then not conserved

        raw_inputs = [(label(lot_id), mass_g) for lot_id, mass_g in inputs]
        raw_outputs = [
            (label(lot_id), label("COAL"), mass_g, grade, digest(lot_id)) for lot_id, mass_g, grade in outputs
        ]
        if self.apply(
            f"transform({kind.name}, {inputs} -> {outputs}, loss {loss_g}) by {caller}",
            lambda: self.chain.client.transact(
                caller, "transform", int(kind), label(SITE), raw_inputs, raw_outputs, loss_g, digest("t")
            ),
            lambda: self.ledger.transform(
                Address(caller),
                kind,
                [Consumption(lot_id, mass_g) for lot_id, mass_g in inputs],
                [NewLot(*item) for item in outputs],
                loss_g,
            ),
        ):
            self.lost_g += loss_g

    @staticmethod
    def shares(data: st.DataObject, total_g: int, count: int) -> list[int]:
        """`count` masses summing to `total_g`, positive when there is enough to go round."""
        if count == 0:
            return []
        cuts = sorted(data.draw(st.lists(st.integers(0, total_g), min_size=count - 1, max_size=count - 1)))
        return [high - low for low, high in zip([0, *cuts], [*cuts, total_g], strict=True)]

    @rule(data=st.data())
    def hand_over(self, data: st.DataObject) -> None:
        caller = pick(data, [account for account in self.accounts if self.held_by(account)], self.accounts)
        to = pick(
            data, [account for account in self.accounts if account != caller], [*self.accounts, ZERO_ADDRESS]
        )
        lot_ids = self.some_lots(data, self.held_by(caller), data.draw(st.integers(0, 2)))
        self.apply(
            f"handOver({lot_ids}, to {to}) by {caller}",
            lambda: self.chain.client.hand_over(caller, lot_ids, to),
            lambda: self.ledger.hand_over(Address(caller), lot_ids, Address(to)),
        )

    @rule(data=st.data())
    def cancel_handover(self, data: st.DataObject) -> None:
        offers = {
            lot_id: state.custodian
            for lot_id, state in self.ledger.lots.items()
            if state.pending_custodian is not None
        }
        caller = pick(data, list(offers.values()), self.accounts)
        mine = [lot_id for lot_id, custodian in offers.items() if custodian == caller]
        lot_ids = self.some_lots(data, mine, data.draw(st.integers(0, 2)))
        self.apply(
            f"cancelHandover({lot_ids}) by {caller}",
            lambda: self.chain.client.cancel_handover(caller, lot_ids),
            lambda: self.ledger.cancel_handover(Address(caller), lot_ids),
        )

    @rule(data=st.data())
    def accept_handover(self, data: st.DataObject) -> None:
        caller = pick(data, [account for account in self.accounts if self.offered_to(account)], self.accounts)
        lot_ids = self.some_lots(data, self.offered_to(caller), data.draw(st.integers(0, 2)))
        self.apply(
            f"acceptHandover({lot_ids}) by {caller}",
            lambda: self.chain.client.accept_handover(caller, lot_ids),
            lambda: self.ledger.accept_handover(Address(caller), lot_ids),
        )

    @rule(data=st.data(), reason=st.sampled_from(CorrectionReason))
    def correct(self, data: st.DataObject, reason: CorrectionReason) -> None:
        admin = self.chain.admin
        lot_id = self.some_lot(data, list(self.ledger.lots))
        state = self.ledger.lots.get(lot_id)
        caller = pick(data, [state.custodian, admin] if state else [], [*self.accounts, admin])
        left = state.remaining_g if state else 0
        adjustment_g = data.draw(st.one_of(st.just(-left), st.integers(min_value=-left - 1, max_value=40)))
        if self.apply(
            f"correctLot({lot_id}, {reason.name}, {adjustment_g}) by {caller}",
            lambda: self.chain.client.correct_lot(caller, lot_id, reason, adjustment_g, digest("fix")),
            lambda: self.ledger.correct(Address(caller), caller == admin, lot_id, reason, adjustment_g),
        ):
            self.corrected_g += adjustment_g

    # ------------------------------------------------------------ invariants

    def view(self, function: str, *args: Any) -> bytes:
        """An eth_call of a view function straight to eth-tester: the same contract code as through web3,
        at a third of the cost, which matters when every lot is read after every step."""
        data = self.chain.client.contract.encode_abi(function, args=list(args))
        answer = self.chain.tester.call(
            {"from": self.chain.admin, "to": self.chain.client.address, "data": data}
        )
        return bytes(HexBytes(answer))

    def lot_state(self, lot_id: str) -> tuple[str, int, str | None] | None:
        custodian, remaining_g, pending = abi_decode(
            ["address", "uint96", "address"], self.view("lotState", label(lot_id))
        )
        if int(custodian, 16) == 0:
            return None
        return (
            Web3.to_checksum_address(custodian),
            remaining_g,
            None if int(pending, 16) == 0 else Web3.to_checksum_address(pending),
        )

    @invariant()
    def every_lot_is_the_same_on_chain_and_in_the_ledger(self) -> None:
        self.compare_lots(self.named)

    def teardown(self) -> None:
        """Ids no operation named must not exist either: nothing appears under an id nobody gave."""
        self.compare_lots(LOT_IDS)

    def compare_lots(self, lot_ids: Iterable[str]) -> None:
        on_chain_g = 0
        for lot_id in sorted(lot_ids):
            on_chain = self.lot_state(lot_id)
            modelled = self.ledger.lots.get(lot_id)
            if modelled is None:
                assert on_chain is None, f"{lot_id} exists on chain only: {on_chain}"
                continue
            assert on_chain == (modelled.custodian, modelled.remaining_g, modelled.pending_custodian), lot_id
            on_chain_g += on_chain[1]
        assert on_chain_g + self.lost_g == self.registered_g + self.corrected_g, (
            "mass created or destroyed on chain"
        )
        self.ledger.check_balance()
        assert (self.ledger.registered_g, self.ledger.lost_g) == (self.registered_g, self.lost_g)

    @invariant()
    def transformations_are_counted_alike(self) -> None:
        assert int.from_bytes(self.view("transformCount")) == self.ledger.transforms


def test_the_registry_applies_exactly_the_ledgers_rules(chain: Chain) -> None:
    accounts = [chain.operator, chain.rival, chain.buyer]
    processor = chain.client.role("PROCESSOR_ROLE")
    for account in accounts:
        chain.client.grant_role(chain.admin, chain.client.registrar_role(SITE), account)
        chain.client.grant_role(chain.admin, processor, account)
    snapshot = chain.tester.take_snapshot()

    run_state_machine_as_test(
        lambda: RegistryMatchesLedger(chain, snapshot, accounts),
        settings=settings.get_profile("registry-model"),
    )
