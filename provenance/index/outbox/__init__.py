"""The transaction outbox in SQL: operations, their transactions and the nonces of their senders.

`submit` is what the write service calls with a command it has parsed and checked: it writes the
operation, its idempotency record (the `(credential_id, idempotency_key)` unique key and the request's
fingerprint) and its planned transaction in one database transaction. Nothing is sent yet; what
is acknowledged is durable.

The rest is what the outbox worker (`provenance.chain.outbox.OutboxWorker`) calls, one worker per
database: find pending work, split a batch, allocate nonces and record the signed bytes (one
database transaction, committed before the bytes are sent), list what is in flight or recently
mined, and record what it learnt. Every write runs as `BEGIN IMMEDIATE` on SQLite, so the API's
writers and the worker queue instead of failing half-way; on PostgreSQL the nonce row is locked
(`SELECT ... FOR UPDATE`) and `UNIQUE(sender, nonce)` refuses a second write with one nonce.

One module per reason to change: `submissions` (storing writes, idempotency), `worker_storage`
(what the outbox worker reads and records), `views` (what the API and /health show), over `base`
and `rows` (tables, statements, row mappers).
"""

from provenance.index.outbox.store import OutboxStore
from provenance.index.outbox.submissions import MAX_IDEMPOTENCY_KEY

__all__ = ["MAX_IDEMPOTENCY_KEY", "OutboxStore"]
