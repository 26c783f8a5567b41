"""The outbox's database side, on SQLite and PostgreSQL: what a write acknowledges is stored once,
a retried request never registers twice, nonces are handed out once and in order, and an API token
is kept only as its hash."""

from __future__ import annotations

import hashlib
import threading

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError

from provenance.domain.commands import command_of
from provenance.domain.credentials import Credential
from provenance.domain.operations import OperationKind, OperationStatus
from provenance.domain.outbox import NOT_SENT, SignedTransaction, TransactionUpdate
from provenance.errors import DomainError, IdempotencyConflict
from provenance.index.credentials_store import CredentialStore
from provenance.index.outbox import OutboxStore
from provenance.index.write_models import Operation, OutboxTransaction
from tests.outbox_support import register_payload, registration

SENDER = "0x" + "ab" * 20
OTHER_SENDER = "0x" + "cd" * 20
REGISTER = OperationKind.REGISTER_LOTS


def fake_signature(sequence: int, nonce: int) -> SignedTransaction:
    raw = f"0x{sequence:04x}{nonce:08x}"
    return SignedTransaction(raw, "0x" + hashlib.sha256(raw.encode()).hexdigest())


@pytest.fixture
def store(engine: Engine) -> OutboxStore:
    return OutboxStore(engine)


@pytest.fixture
def credential_id(engine: Engine) -> str:
    credential_id, _ = CredentialStore(engine).create("ops", SENDER, "dev:ops")
    return credential_id


def count(engine: Engine, model: type[Operation] | type[OutboxTransaction]) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


# ------------------------------------------------------------------------------ submit


def test_a_write_is_stored_as_a_pending_operation_with_one_planned_transaction(
    store: OutboxStore, credential_id: str
) -> None:
    payload = register_payload("L-1", "L-2", "L-3")

    view, created = store.submit(
        credential_id=credential_id,
        sender=SENDER,
        command=command_of(REGISTER, payload),
        idempotency_key=None,
    )

    assert created
    assert view.status is OperationStatus.PENDING
    assert view.kind is REGISTER
    assert view.sender == SENDER
    assert view.payload == payload
    assert view.created_at.endswith("Z")
    assert [(tx.sequence, tx.nonce, tx.tx_hash, tx.status) for tx in view.transactions] == [
        (0, None, None, OperationStatus.PENDING)
    ]
    assert store.get(view.id) == view
    assert store.get("no-such-operation") is None


def test_a_retried_request_returns_the_original_operation_and_stores_nothing_new(
    store: OutboxStore, engine: Engine, credential_id: str
) -> None:
    first, created = store.submit(
        credential_id=credential_id,
        sender=SENDER,
        command=command_of(REGISTER, register_payload("L-1")),
        idempotency_key="shift-7",
    )
    again, created_again = store.submit(
        credential_id=credential_id,
        sender=SENDER,
        command=command_of(REGISTER, register_payload("L-1")),
        idempotency_key="shift-7",
    )

    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert count(engine, Operation) == 1
    assert count(engine, OutboxTransaction) == 1


def test_the_same_key_with_another_body_is_a_conflict_naming_the_original(
    store: OutboxStore, credential_id: str
) -> None:
    first, _ = store.submit(
        credential_id=credential_id,
        sender=SENDER,
        command=command_of(REGISTER, register_payload("L-1")),
        idempotency_key="shift-7",
    )

    with pytest.raises(IdempotencyConflict) as conflict:
        store.submit(
            credential_id=credential_id,
            sender=SENDER,
            command=command_of(REGISTER, register_payload("L-2")),
            idempotency_key="shift-7",
        )

    assert conflict.value.operation_id == first.id
    assert isinstance(conflict.value, ValueError)


def test_idempotency_keys_belong_to_one_credential(
    store: OutboxStore, engine: Engine, credential_id: str
) -> None:
    other, _ = CredentialStore(engine).create("plant", OTHER_SENDER, "dev:plant")
    mine, _ = store.submit(
        credential_id=credential_id,
        sender=SENDER,
        command=command_of(REGISTER, register_payload("L-1")),
        idempotency_key="k",
    )
    theirs, created = store.submit(
        credential_id=other,
        sender=OTHER_SENDER,
        command=command_of(REGISTER, register_payload("L-1")),
        idempotency_key="k",
    )

    assert created
    assert theirs.id != mine.id


def test_an_invalid_request_names_its_field_and_stores_nothing(
    store: OutboxStore, engine: Engine, credential_id: str
) -> None:
    payload = {"site": "SH2", "lots": [registration("L-1", mass_g=0)]}

    with pytest.raises(DomainError) as refused:
        store.submit(
            credential_id=credential_id,
            sender=SENDER,
            command=command_of(REGISTER, payload),
            idempotency_key="k",
        )

    assert refused.value.field == "lots[0].mass_g"
    assert count(engine, Operation) == 0


def test_simultaneous_identical_requests_create_one_operation(
    store: OutboxStore, engine: Engine, credential_id: str
) -> None:
    results: list[tuple[str, bool]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def submit() -> None:
        try:
            start.wait()
            view, created = store.submit(
                credential_id=credential_id,
                sender=SENDER,
                command=command_of(REGISTER, register_payload("L-1", "L-2")),
                idempotency_key="retry-storm",
            )
            results.append((view.id, created))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len({operation_id for operation_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert count(engine, Operation) == 1
    assert count(engine, OutboxTransaction) == 1


# ------------------------------------------------------------------------------ the worker's side


def submit(store: OutboxStore, credential_id: str, *lot_ids: str, sender: str = SENDER) -> str:
    view, _ = store.submit(
        credential_id=credential_id,
        sender=sender,
        command=command_of(REGISTER, register_payload(*lot_ids)),
        idempotency_key=None,
    )
    return view.id


def test_nonces_are_consecutive_across_operations_and_never_below_the_nodes_count(
    store: OutboxStore, credential_id: str
) -> None:
    first = submit(store, credential_id, "L-1")
    second = submit(store, credential_id, "L-2")
    third = submit(store, credential_id, "L-3")

    a = store.sign_and_record(first, [0], 0, fake_signature)
    b = store.sign_and_record(second, [0], 0, fake_signature)  # the node has not seen `a` yet
    c = store.sign_and_record(third, [0], 7, fake_signature)  # the key was used elsewhere 7 times

    assert [tx.nonce for tx in a + b + c] == [0, 1, 7]
    assert store.nonce_of(SENDER.upper().replace("0X", "0x")) == 8
    assert [tx.status for tx in a] == [OperationStatus.SENT]
    view = store.get(first)
    assert view is not None
    assert view.status is OperationStatus.SENT
    assert view.transactions[0].tx_hash == a[0].tx_hash


def test_the_database_refuses_two_transactions_with_one_nonce(
    store: OutboxStore, engine: Engine, credential_id: str
) -> None:
    first = submit(store, credential_id, "L-1")
    second = submit(store, credential_id, "L-2")
    store.sign_and_record(first, [0], 0, fake_signature)

    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text("UPDATE outbox_transactions SET nonce = 0 WHERE operation_id = :id"), {"id": second}
        )


def test_a_batch_splits_into_ordered_transactions_of_consecutive_items(
    store: OutboxStore, credential_id: str
) -> None:
    operation_id = submit(store, credential_id, *(f"L-{i}" for i in range(10)))

    store.split_transaction(operation_id, 0, [4, 8])
    store.split_transaction(operation_id, 1, [6])
    (pending,) = store.pending_operations()

    assert [(tx.sequence, tx.item_start, tx.item_end) for tx in pending.transactions] == [
        (0, 0, 4),
        (1, 4, 6),
        (2, 6, 8),
        (3, 8, 10),
    ]


def test_a_refused_transaction_fails_its_operation_and_the_unsigned_rest_is_never_sent(
    store: OutboxStore, credential_id: str
) -> None:
    operation_id = submit(store, credential_id, *(f"L-{i}" for i in range(6)))
    store.split_transaction(operation_id, 0, [2, 4])
    store.sign_and_record(operation_id, [0], 0, fake_signature)

    store.apply(
        [
            TransactionUpdate(
                operation_id, 1, OperationStatus.FAILED, error_name="LotExists", error_args={"lotId": "L-3"}
            )
        ]
    )
    view = store.get(operation_id)

    assert view is not None
    assert view.status is OperationStatus.FAILED
    assert (view.error_name, view.error_args) == ("LotExists", {"lotId": "L-3"})
    assert [(tx.status, tx.error_name) for tx in view.transactions] == [
        (OperationStatus.SENT, None),  # holds a nonce: still sent and tracked, so no nonce gap
        (OperationStatus.FAILED, "LotExists"),
        (OperationStatus.FAILED, NOT_SENT),
    ]
    assert store.pending_operations() == []


def test_an_operation_is_confirmed_when_all_its_transactions_are_and_goes_back_when_one_is_lost(
    store: OutboxStore, credential_id: str
) -> None:
    operation_id = submit(store, credential_id, "L-1", "L-2")
    store.split_transaction(operation_id, 0, [1])
    signed = store.sign_and_record(operation_id, [0, 1], 0, fake_signature)
    mined = [
        TransactionUpdate(
            operation_id, tx.sequence, OperationStatus.CONFIRMED, 5 + tx.sequence, "0x" + "11" * 32, 50_000
        )
        for tx in signed
    ]

    store.apply(mined[:1])
    assert store.get(operation_id).status is OperationStatus.SENT  # type: ignore[union-attr]
    store.apply(mined[1:])
    assert store.get(operation_id).status is OperationStatus.CONFIRMED  # type: ignore[union-attr]
    assert [tx.sequence for tx in store.recently_mined(6)] == [1]

    store.apply([TransactionUpdate(operation_id, 1, OperationStatus.SENT)])  # its block is gone
    view = store.get(operation_id)

    assert view is not None
    assert view.status is OperationStatus.SENT
    assert view.transactions[1].block_number is None
    assert [tx.sequence for tx in store.in_flight()] == [1]


def test_a_released_nonce_sends_the_transaction_back_to_pending_without_its_bytes(
    store: OutboxStore, credential_id: str
) -> None:
    operation_id = submit(store, credential_id, "L-1")
    store.sign_and_record(operation_id, [0], 0, fake_signature)

    store.apply([TransactionUpdate(operation_id, 0, OperationStatus.PENDING, release_nonce=True)])
    (pending,) = store.pending_operations()
    again = store.sign_and_record(operation_id, [0], 1, fake_signature)

    assert pending.transactions[0].nonce is None
    assert pending.transactions[0].raw_tx is None
    assert again[0].nonce == 1


def test_pending_operations_come_oldest_first(store: OutboxStore, credential_id: str) -> None:
    ids = [submit(store, credential_id, f"L-{i}") for i in range(5)]

    assert [operation.id for operation in store.pending_operations(limit=3)] == ids[:3]
    assert store.backlog() == 5


# ------------------------------------------------------------------------------ credentials


def test_a_token_authenticates_its_credential_and_is_stored_only_as_its_hash(engine: Engine) -> None:
    credentials = CredentialStore(engine)

    credential_id, token = credentials.create("mine-ops", SENDER, "dev:mine-ops")

    assert token.startswith("prv_")
    assert len(token) > 40
    assert credentials.authenticate(token) == Credential(credential_id, "mine-ops", SENDER, "dev:mine-ops")
    assert credentials.authenticate(token + "x") is None
    assert credentials.authenticate("") is None
    with engine.connect() as connection:
        stored = [
            str(value) for row in connection.execute(text("SELECT * FROM api_credentials")) for value in row
        ]
    assert token not in stored
    assert hashlib.sha256(token.encode()).hexdigest() in stored


def test_a_revoked_credential_no_longer_authenticates(engine: Engine) -> None:
    credentials = CredentialStore(engine)
    _, token = credentials.create("mine-ops", SENDER, "dev:mine-ops")

    assert credentials.revoke("mine-ops")
    assert not credentials.revoke("mine-ops")

    assert credentials.authenticate(token) is None
    revoked = credentials.by_name("mine-ops")
    assert revoked is not None
    assert not revoked.active
    assert credentials.by_account(SENDER) is None
    assert credentials.by_name("nobody") is None


def test_each_credential_gets_its_own_token(engine: Engine) -> None:
    credentials = CredentialStore(engine)
    _, first = credentials.create("a", SENDER, "dev:a")
    _, second = credentials.create("b", SENDER, "dev:b")

    assert first != second
    assert credentials.by_account(SENDER.upper().replace("0X", "0x")) == credentials.by_name("a")
