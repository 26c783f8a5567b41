"""Every registry rule re-checked over the chain's events, in plain Python: no web3, no SQL.

The events are replayed in chain order into `provenance.domain.ledger.Ledger`, the same model the
contract's property tests are held to, so a rule is written once. Around it the replay tracks what
the ledger does not model: who held which role (RoleGranted/RoleRevoked), which devices were
active at which site (DeviceAdded/DeviceRevoked), and whether the registry was paused.

What is checked, per event:

* registration: the registering account held the site's registrar role; a lot id registers once,
  with a positive mass and a grade of at most 1,000,000 ppm;
* device attestation: the device was active at the lot's site, and the `Load` signature in the
  transaction's calldata recovers to it (the recovery itself is done by the caller, who can read
  calldata: `load_signers`);
* transformation: the operator held PROCESSOR_ROLE and held every input; inputs consumed equal
  outputs plus declared loss; no input consumed beyond what remained; the chain's remaining mass
  after each consumption equals the replay's; outputs are held by the operator;
* custody: only the custodian offers or cancels, only the named receiver accepts;
* assays: the signature recovers to the recorded lab (`assay_signers`), which held LAB_ROLE; each
  assay recorded once;
* documents: anchored by the lot's custodian;
* corrections: by the custodian or an admin; the remaining mass after it matches the replay and a
  did-not-occur leaves zero;
* stock counts and device management: by the site's registrar (or, for devices, an admin);
* nothing but role changes while paused;
* at the end: registered + corrections = remaining + losses, over the whole registry.

A violation is recorded as a `RuleFinding` and the replay follows the chain anyway (it applies
what the event says happened, folded by `provenance.domain.lot_state` as the index and
verification fold it), so one bad event does not hide the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from provenance.domain.ledger import Consumption, Ledger, LotState, NewLot, RuleViolation
from provenance.domain.lot_state import Mismatch, ReplayedLot, apply_event
from provenance.domain.values import Address, CorrectionReason, TransformKind

ZERO_ADDRESS = "0x" + "0" * 40


class ChainEvent(Protocol):
    """A decoded registry event (`provenance.chain.events.DecodedEvent` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def args(self) -> Mapping[str, Any]: ...
    @property
    def block_number(self) -> int: ...
    @property
    def tx_hash(self) -> str: ...
    @property
    def log_index(self) -> int: ...


@dataclass(frozen=True)
class Roles:
    """The registry's role ids (0x-hex bytes32); `registrar(site)` is `registrarRole(site)`."""

    admin: str
    processor: str
    lab: str
    registrar: Callable[[str], str]


@dataclass(frozen=True)
class RuleFinding:
    """A rule the chain's history breaks, at one event."""

    rule: str
    message: str
    lot_id: str | None
    event: str
    tx_hash: str
    block_number: int
    log_index: int


@dataclass
class ReplayResult:
    """The replayed state and what the rules found."""

    lots: dict[str, LotState]
    findings: list[RuleFinding]
    checked: dict[str, int]
    """How many times each rule was checked (for the summary)."""
    registered_g: int
    corrected_g: int
    lost_g: int
    remaining_g: int
    events: int


@dataclass
class _Transform:
    event: ChainEvent
    operator: str
    kind: TransformKind
    loss_g: int
    consumed: list[ChainEvent] = field(default_factory=list)
    created: list[ChainEvent] = field(default_factory=list)


def _lower(value: Any) -> str:
    return str(value).lower()


class Replay:
    """Feeds events one by one (`apply`), then `finish` returns the result."""

    def __init__(
        self,
        roles: Roles,
        *,
        assay_signers: Mapping[tuple[str, int], str | None] | None = None,
        load_signers: Mapping[tuple[str, int], tuple[str, str] | None] | None = None,
    ) -> None:
        self.roles = roles
        self.assay_signers = assay_signers
        self.load_signers = load_signers
        self.ledger = Ledger()
        self.findings: list[RuleFinding] = []
        self.checked: dict[str, int] = {}
        self.events = 0
        self._held: set[tuple[str, str]] = set()
        self._registrar_roles: dict[str, str] = {}
        self._devices: dict[str, tuple[str, bool]] = {}
        self._paused = False
        self._batch: tuple[str, str, str] | None = None
        """(tx hash, site, registrar) of the registration being replayed."""
        self._lot_sites: dict[str, str] = {}
        self._transform: _Transform | None = None
        self._assays: set[tuple[Any, ...]] = set()
        self._signed_assays: list[ChainEvent] = []
        self._attested: list[tuple[ChainEvent, str | None]] = []

    # ---------------------------------------------------------------- bookkeeping

    def _check(self, rule: str, ok: bool, event: ChainEvent, message: str, lot_id: str | None = None) -> bool:
        self.checked[rule] = self.checked.get(rule, 0) + 1
        if not ok:
            lot = lot_id if lot_id is not None else event.args.get("lotId")
            self.findings.append(
                RuleFinding(
                    rule,
                    message,
                    str(lot) if lot is not None else None,
                    event.name,
                    event.tx_hash,
                    event.block_number,
                    event.log_index,
                )
            )
        return ok

    def _has(self, role: str, account: Any) -> bool:
        return (role.lower(), _lower(account)) in self._held

    def _registrar(self, site: str) -> str:
        role = self._registrar_roles.get(site)
        if role is None:
            role = self._registrar_roles[site] = self.roles.registrar(site).lower()
        return role

    def _violation(
        self, rule: str, event: ChainEvent, error: RuleViolation, lot_id: str | None = None
    ) -> None:
        self._check(rule, False, event, f"{error.code}: {error.message}", lot_id)

    # ---------------------------------------------------------------- replay

    def apply_all(self, events: Iterable[ChainEvent]) -> ReplayResult:
        for event in events:
            self.apply(event)
        return self.finish(self.assay_signers, self.load_signers)

    def flush(self) -> None:
        """Completes the transformation in progress: `ledger` then holds the state after every event."""
        if self._transform is not None:
            self._close_transform()

    def _check_signatures(
        self,
        assay_signers: Mapping[tuple[str, int], str | None] | None,
        load_signers: Mapping[tuple[str, int], tuple[str, str] | None] | None,
    ) -> None:
        if assay_signers is not None:
            for event in self._signed_assays:
                signer = assay_signers.get((event.tx_hash.lower(), event.log_index))
                lab = str(event.args["lab"])
                self._check(
                    "assay_signature",
                    signer is not None and signer.lower() == lab.lower(),
                    event,
                    f"the assay signature of lot {event.args['lotId']} recovers to {signer}, not the recorded lab {lab}",
                )
        if load_signers is not None:
            for event, site in self._attested:
                key = (event.tx_hash.lower(), event.log_index)
                if key not in load_signers or load_signers[key] is None:
                    continue  # not a direct registerAttestedLots call: no calldata to recover from
                signer, signed_site = load_signers[key]  # type: ignore[misc]
                device = str(event.args["device"])
                self._check(
                    "device_signature",
                    signer.lower() == device.lower() and signed_site == site,
                    event,
                    f"the Load signature of lot {event.args['lotId']} recovers to {signer} (site {signed_site}), "
                    f"not device {device}",
                )

    def apply(self, event: ChainEvent) -> None:
        self.events += 1
        name = event.name
        if self._transform is not None and not (
            name in ("LotConsumed", "LotCreated")
            and event.tx_hash == self._transform.event.tx_hash
            and event.args.get("transformId") == self._transform.event.args["transformId"]
        ):
            self._close_transform()
        if self._batch is not None and event.tx_hash != self._batch[0]:
            self._batch = None
        if name not in ("RoleGranted", "RoleRevoked", "RoleAdminChanged", "Unpaused", "EIP712DomainChanged"):
            self._check("not_while_paused", not self._paused, event, f"{name} while the registry was paused")
        handler = getattr(self, _handler_name(name), None)
        if handler is not None:
            handler(event)

    def finish(
        self,
        assay_signers: Mapping[tuple[str, int], str | None] | None = None,
        load_signers: Mapping[tuple[str, int], tuple[str, str] | None] | None = None,
    ) -> ReplayResult:
        """Checks the signatures against the signers the caller recovered, then the balance."""
        self.flush()
        self._check_signatures(assay_signers, load_signers)
        ledger = self.ledger
        self.checked["mass_balance"] = self.checked.get("mass_balance", 0) + 1
        if ledger.registered_g + ledger.corrected_g != ledger.remaining_g + ledger.lost_g:
            self.findings.append(
                RuleFinding(
                    "mass_balance",
                    f"mass out of balance: registered {ledger.registered_g} g + corrections {ledger.corrected_g} g "
                    f"!= remaining {ledger.remaining_g} g + losses {ledger.lost_g} g",
                    None,
                    "(whole registry)",
                    "",
                    -1,
                    -1,
                )
            )
        return ReplayResult(
            lots=ledger.lots,
            findings=self.findings,
            checked=dict(sorted(self.checked.items())),
            registered_g=ledger.registered_g,
            corrected_g=ledger.corrected_g,
            lost_g=ledger.lost_g,
            remaining_g=ledger.remaining_g,
            events=self.events,
        )

    # ---------------------------------------------------------------- roles, pause, devices

    def _on_role_granted(self, event: ChainEvent) -> None:
        self._role_change(event, granted=True)

    def _on_role_revoked(self, event: ChainEvent) -> None:
        self._role_change(event, granted=False)

    def _role_change(self, event: ChainEvent, *, granted: bool) -> None:
        role, account, sender = (
            _lower(event.args["role"]),
            _lower(event.args["account"]),
            event.args["sender"],
        )
        first_admin = not self._held and granted and role == self.roles.admin.lower()
        renounced = not granted and _lower(sender) == account
        if not first_admin and not renounced:
            self._check(
                "role_admin",
                self._has(self.roles.admin, sender),
                event,
                f"{sender} changed role {role[:10]}… of {event.args['account']} without the admin role",
            )
        if granted:
            self._held.add((role, account))
        else:
            self._held.discard((role, account))

    def _on_paused(self, event: ChainEvent) -> None:
        self._check(
            "role_admin", self._has(self.roles.admin, event.args["account"]), event, "paused by a non-admin"
        )
        self._paused = True

    def _on_unpaused(self, event: ChainEvent) -> None:
        self._check(
            "role_admin", self._has(self.roles.admin, event.args["account"]), event, "unpaused by a non-admin"
        )
        self._paused = False

    def _site_manager(self, event: ChainEvent, site: str) -> None:
        by = event.args["by"]
        self._check(
            "role_registrar",
            self._has(self._registrar(site), by) or self._has(self.roles.admin, by),
            event,
            f"{by} managed devices of site {site} without its registrar role or the admin role",
        )

    def _on_device_added(self, event: ChainEvent) -> None:
        device, site = _lower(event.args["device"]), str(event.args["site"])
        self._site_manager(event, site)
        self._check(
            "device_once", device not in self._devices, event, f"device {event.args['device']} added twice"
        )
        self._devices[device] = (site, True)

    def _on_device_revoked(self, event: ChainEvent) -> None:
        device = _lower(event.args["device"])
        site, active = self._devices.get(device, (str(event.args["site"]), False))
        self._site_manager(event, site)
        self._check("device_active", active, event, f"device {event.args['device']} revoked but not active")
        self._devices[device] = (site, False)

    # ---------------------------------------------------------------- registration

    def _on_lots_registered(self, event: ChainEvent) -> None:
        site, custodian = str(event.args["site"]), str(event.args["custodian"])
        self._check(
            "role_registrar",
            self._has(self._registrar(site), custodian),
            event,
            f"{custodian} registered lots at site {site} without its registrar role",
        )
        self._batch = (event.tx_hash, site, custodian)

    def _on_lot_registered(self, event: ChainEvent) -> None:
        lot_id = str(event.args["lotId"])
        if self._batch is None:
            self._check(
                "registration_header",
                False,
                event,
                f"lot {lot_id} registered without a LotsRegistered header",
            )
            return
        _, site, registrar = self._batch
        lot = NewLot(lot_id, int(event.args["massG"]), int(event.args["gradePpm"]))
        self.checked["registration"] = self.checked.get("registration", 0) + 1
        try:
            self.ledger.register(Address(registrar), lot)
        except RuleViolation as error:
            self._violation("registration", event, error)
            self.ledger.lots[lot_id] = LotState(Address(registrar), lot.mass_g)
            self.ledger.registered_g += lot.mass_g
        self._lot_sites[lot_id] = site

    def _on_load_attested(self, event: ChainEvent) -> None:
        lot_id, device = str(event.args["lotId"]), str(event.args["device"])
        site = self._lot_sites.get(lot_id)
        known_site, active = self._devices.get(device.lower(), ("", False))
        self._check(
            "device_attestation",
            active and site is not None and known_site == site,
            event,
            f"device {device} was not an active device of site {site} when it attested lot {lot_id}",
        )
        self._attested.append((event, site))

    # ---------------------------------------------------------------- transformation

    def _on_lots_transformed(self, event: ChainEvent) -> None:
        operator = str(event.args["operator"])
        self._check(
            "role_processor",
            self._has(self.roles.processor, operator),
            event,
            f"{operator} transformed lots without PROCESSOR_ROLE",
        )
        self._transform = _Transform(
            event, operator, TransformKind(event.args["kind"]), int(event.args["lossG"])
        )

    def _on_lot_consumed(self, event: ChainEvent) -> None:
        if self._transform is None:
            self._check("transformation_shape", False, event, "LotConsumed outside a transformation")
            return
        self._transform.consumed.append(event)

    def _on_lot_created(self, event: ChainEvent) -> None:
        if self._transform is None:
            self._check("transformation_shape", False, event, "LotCreated outside a transformation")
            return
        self._transform.created.append(event)

    def _close_transform(self) -> None:
        transform, self._transform = self._transform, None
        assert transform is not None
        event, operator = transform.event, Address(transform.operator)
        inputs = [Consumption(str(e.args["lotId"]), int(e.args["massG"])) for e in transform.consumed]
        outputs = [
            NewLot(str(e.args["lotId"]), int(e.args["massG"]), int(e.args["gradePpm"]))
            for e in transform.created
        ]
        before = {item.lot_id: _replayed(self.ledger.lots.get(item.lot_id)) for item in inputs}
        self.checked["mass_conservation"] = self.checked.get("mass_conservation", 0) + 1
        try:
            self.ledger.transform(operator, transform.kind, inputs, outputs, transform.loss_g)
        except RuleViolation as error:
            rule = (
                "mass_conservation"
                if error.code == "MassNotConserved"
                else _TRANSFORM_RULES.get(error.code, "transformation")
            )
            lot_id = _lot_of(error.field, inputs, outputs)
            self._violation(rule, event, error, lot_id)
            self._force_transform(operator, inputs, outputs, transform.loss_g)
        for consumed in transform.consumed:
            lot_id = str(consumed.args["lotId"])
            lot = self.ledger.lots.get(lot_id)
            after, mismatch = _fold(before.get(lot_id), consumed)
            self._check(
                "remaining_after_consumption",
                lot is not None and after is not None and mismatch is None,
                consumed,
                f"lot {lot_id}: the chain says {consumed.args['remainingG']} g remain after the consumption, "
                f"the replay {mismatch and mismatch.expected}",
            )
            _follow(lot, after)
        for created in transform.created:
            self._check(
                "custody_of_outputs",
                _lower(created.args["custodian"]) == operator.lower(),
                created,
                f"output {created.args['lotId']} is held by {created.args['custodian']}, not the operator {operator}",
            )
            self._lot_sites[str(created.args["lotId"])] = str(event.args["site"])

    def _force_transform(
        self, operator: Address, inputs: list[Consumption], outputs: list[NewLot], loss_g: int
    ) -> None:
        for item in inputs:
            lot = self.ledger.lots.get(item.lot_id)
            if lot is not None:
                lot.remaining_g -= item.mass_g
        for out in outputs:
            self.ledger.lots[out.lot_id] = LotState(operator, out.mass_g)
        self.ledger.lost_g += loss_g
        self.ledger.transforms += 1

    # ---------------------------------------------------------------- custody

    def _on_custody_offered(self, event: ChainEvent) -> None:
        lot_id, sender, to = (
            str(event.args["lotId"]),
            Address(str(event.args["from"])),
            Address(str(event.args["to"])),
        )
        lot = self.ledger.lots.get(lot_id)
        after, _ = _fold(_replayed(lot), event)  # an offer by another than the custodian: the ledger names it
        self.checked["custody"] = self.checked.get("custody", 0) + 1
        try:
            self.ledger.hand_over(sender, [lot_id], to)
        except RuleViolation as error:
            self._violation("custody", event, error)
            _follow(lot, after)

    def _on_custody_offer_cancelled(self, event: ChainEvent) -> None:
        lot_id, sender = str(event.args["lotId"]), Address(str(event.args["from"]))
        lot = self.ledger.lots.get(lot_id)
        after, _ = _fold(_replayed(lot), event)  # a cancel by another than the custodian: the ledger names it
        self._check(
            "custody",
            lot is None or _lower(lot.pending_custodian) == _lower(event.args["to"]),
            event,
            f"lot {lot_id}: the offer cancelled names {event.args['to']}, the replay {lot and lot.pending_custodian}",
        )
        try:
            self.ledger.cancel_handover(sender, [lot_id])
        except RuleViolation as error:
            self._violation("custody", event, error)
            _follow(lot, after)

    def _on_custody_accepted(self, event: ChainEvent) -> None:
        lot_id, receiver = str(event.args["lotId"]), Address(str(event.args["to"]))
        lot = self.ledger.lots.get(lot_id)
        after, mismatch = _fold(_replayed(lot), event)
        self._check(
            "custody",
            mismatch is None,
            event,
            f"lot {lot_id}: accepted from {event.args['from']}, but the replay's custodian is {lot and lot.custodian}",
        )
        try:
            self.ledger.accept_handover(receiver, [lot_id])
        except RuleViolation as error:
            self._violation("custody", event, error)
            _follow(lot, after)

    # ---------------------------------------------------------------- assays, documents, corrections, counts

    def _on_assay_recorded(self, event: ChainEvent) -> None:
        args = event.args
        lot_id, lab = str(args["lotId"]), str(args["lab"])
        self._check("lot_exists", lot_id in self.ledger.lots, event, f"assay of unknown lot {lot_id}")
        self._check(
            "role_lab", self._has(self.roles.lab, lab), event, f"assay signed by {lab}, who lacked LAB_ROLE"
        )
        key = (lot_id, args["gradePpm"], args["method"], _lower(args["certificateHash"]), args["assayedAt"])
        self._check("assay_once", key not in self._assays, event, f"assay of lot {lot_id} recorded twice")
        self._assays.add(key)
        self._signed_assays.append(event)

    def _on_document_anchored(self, event: ChainEvent) -> None:
        lot_id, by = str(event.args["lotId"]), str(event.args["by"])
        lot = self.ledger.lots.get(lot_id)
        self._check(
            "custodian_acts",
            lot is not None and lot.custodian.lower() == by.lower(),
            event,
            f"{by} anchored a document to lot {lot_id} without holding it",
        )

    def _on_lot_corrected(self, event: ChainEvent) -> None:
        args = event.args
        lot_id, by = str(args["lotId"]), Address(str(args["by"]))
        lot = self.ledger.lots.get(lot_id)
        before = None if lot is None else lot.remaining_g
        after, mismatch = _fold(_replayed(lot), event)
        try:
            self.ledger.correct(
                by,
                self._has(self.roles.admin, by),
                lot_id,
                CorrectionReason(args["reason"]),
                int(args["adjustmentG"]),
            )
        except RuleViolation as error:
            self._violation(
                "correction_balance" if error.code == "InvalidCorrection" else "custodian_acts", event, error
            )
            if lot is not None:
                _follow(lot, after)
                self.ledger.corrected_g += int(args["adjustmentG"])
            return
        self._check(
            "correction_balance",
            before is not None and mismatch is None,
            event,
            f"lot {lot_id}: {before} g adjusted by {args['adjustmentG']} g cannot leave the {args['remainingG']} g "
            "the chain reports",
        )

    def _on_stock_counted(self, event: ChainEvent) -> None:
        site, by = str(event.args["site"]), event.args["by"]
        self._check(
            "role_registrar",
            self._has(self._registrar(site), by),
            event,
            f"{by} counted stock at site {site} without its registrar role",
        )


@cache
def _handler_name(event_name: str) -> str:
    """`_on_lots_registered` for LotsRegistered."""
    return "_on_" + re.sub(r"(?<!^)(?=[A-Z])", "_", event_name).lower()


_TRANSFORM_RULES = {
    "InsufficientMass": "no_overconsumption",
    "LotConsumed": "no_overconsumption",
    "NotCustodian": "custodian_acts",
    "HandoverPending": "custodian_acts",
    "UnknownLot": "lot_exists",
    "LotExists": "lot_once",
}


def _replayed(lot: LotState | None) -> ReplayedLot | None:
    return None if lot is None else ReplayedLot(lot.custodian, lot.remaining_g, lot.pending_custodian)


def _fold(lot: ReplayedLot | None, event: ChainEvent) -> tuple[ReplayedLot | None, Mismatch | None]:
    """The lot after `event` as the chain tells it, and where the event disagrees with the replay
    (both None for a lot the replay does not know)."""
    return (None, None) if lot is None else apply_event(lot, event.name, event.args)


def _follow(lot: LotState | None, after: ReplayedLot | None) -> None:
    """Sets the ledger's lot to what the chain says happened, whatever the rules said."""
    if lot is not None and after is not None:
        lot.custodian = Address(str(after.custodian))
        lot.remaining_g = after.remaining_g
        lot.pending_custodian = (
            None if after.pending_custodian is None else Address(str(after.pending_custodian))
        )


def _lot_of(where: str, inputs: list[Consumption], outputs: list[NewLot]) -> str | None:
    """The lot a ledger error's field (`inputs[1].mass_g`) points at."""
    for prefix, items in (("inputs[", inputs), ("outputs[", outputs)):
        if where.startswith(prefix):
            index = int(where[len(prefix) : where.index("]")])
            if index < len(items):
                return items[index].lot_id
    return None


def replay(
    events: Iterable[ChainEvent],
    roles: Roles,
    *,
    assay_signers: Mapping[tuple[str, int], str | None] | None = None,
    load_signers: Mapping[tuple[str, int], tuple[str, str] | None] | None = None,
) -> ReplayResult:
    """Replays `events` (chain order) and checks every rule; see the module docstring.

    `assay_signers` and `load_signers` (by (tx hash, log index)) are the signers the caller
    recovered from each AssayRecorded's signature and each LoadAttested's calldata."""
    return Replay(roles, assay_signers=assay_signers, load_signers=load_signers).apply_all(events)
