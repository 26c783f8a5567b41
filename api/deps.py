"""Dependencies every router shares, as `Annotated` aliases: the runtime, the caller, the write flow.

A write is always the same steps, so no router can skip one: authenticate (the `Caller`
dependency, within the credential's rate limit: `WritingCaller`), validate (the request model,
then its command: `body.command()` in the router), the command's preconditions and the outbox
(`provenance.services.writes.WriteService`, under the caller's `Idempotency-Key`); then answer at
once (202) or, asked to wait, once the operation is final.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from anyio import from_thread
from fastapi import Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import NotAuthenticated, NotFound
from api.known_tokens import KnownTokens
from api.ratelimit import WriteRateLimiter
from api.schemas import OperationOut
from api.waiting import FinalWaits
from provenance.bootstrap import Runtime
from provenance.domain.assay_certificate import AssayCertificate
from provenance.domain.commands import Command
from provenance.domain.credentials import Credential
from provenance.domain.operations import OperationView, new_operation_id
from provenance.errors import CredentialInactive

MAX_WAIT_S = 60.0


# Dependencies are `async def`: FastAPI runs a plain `def` dependency in the thread pool, and each
# such hop cost more of the event loop's time than the endpoint's own work (docs/benchmarks.md,
# "Profiles behind the code"). Only the endpoint itself and the token's database lookup still go
# to a thread.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

_bearer = HTTPBearer(auto_error=False, description="An API token from `provenance accounts create`.")


BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def authenticate(runtime: RuntimeDep, authorization: BearerToken) -> Credential:
    if authorization is None or not authorization.credentials:
        raise NotAuthenticated("send Authorization: Bearer <token>")
    credential = await run_in_threadpool(runtime.credentials.authenticate, authorization.credentials)
    if credential is None:
        raise NotAuthenticated("the bearer token is not valid (unknown or revoked)")
    return credential


Caller = Annotated[Credential, Depends(authenticate)]


async def rate_limited_caller(request: Request, caller: Caller) -> Credential:
    """The caller, once its write is within its credential's rate limit (429 otherwise)."""
    _take_write(request, caller)
    return caller


def _take_write(request: Request, caller: Credential) -> None:
    limiter: WriteRateLimiter = request.app.state.write_limiter
    limiter.take(caller.id)


WritingCaller = Annotated[Credential, Depends(rate_limited_caller)]


@dataclass(frozen=True)
class WaitOptions:
    wait: bool
    timeout_s: float


WaitQuery = Annotated[
    bool, Query(description="Answer only once the operation is final (or the timeout passes).")
]
TimeoutQuery = Annotated[
    float, Query(gt=0, le=MAX_WAIT_S, description="Seconds to wait when wait=true (at most 60).")
]


async def wait_options(wait: WaitQuery = False, timeout: TimeoutQuery = 30.0) -> WaitOptions:
    return WaitOptions(wait, timeout)


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Retrying with the same key returns the first operation instead of writing twice.",
    ),
]


def operation_response(view: OperationView) -> Response:
    """202 while the operation is on its way, 200 once it is final; Location names it either way.
    Serialised once, straight from the model: a returned model FastAPI would validate against
    `response_model` again, in one more hop to the thread pool."""
    return Response(
        OperationOut.of(view).model_dump_json(),
        status_code=200 if view.status.is_final else 202,
        headers={"Location": f"/v1/operations/{view.id}"},
        media_type="application/json",
    )


def operation_response_within(
    response: Response, view: OperationView, *, document: str | None = None
) -> OperationOut:
    """`answer`'s status and Location, for an answer that holds the operation inside a larger one."""
    response.status_code = 200 if view.status.is_final else 202
    response.headers["Location"] = f"/v1/operations/{view.id}"
    return OperationOut.of(view, document=document)


@dataclass(frozen=True)
class Writes:
    runtime: Runtime
    caller: Credential
    idempotency_key: str | None
    waiting: WaitOptions
    waits: FinalWaits
    known_tokens: KnownTokens

    async def submit(self, command: Command, *, certificate: AssayCertificate | None = None) -> OperationView:
        """Submits `command` through the write service (one hop to the thread pool for its checks
        and the store); then waits on the event loop if asked (see api.waiting)."""
        operation_id = new_operation_id()
        future = self.waits.expect(operation_id) if self.waiting.wait else None
        try:
            view = await run_in_threadpool(
                self.runtime.writes.submit,
                command,
                self.caller,
                idempotency_key=self.idempotency_key,
                operation_id=operation_id,
                certificate=certificate,
            )
        except BaseException as error:
            if future is not None:
                self.waits.forget(operation_id, future)
            if isinstance(error, CredentialInactive):
                self.known_tokens.forget(self.caller.id)
                raise NotAuthenticated("the bearer token is not valid (unknown or revoked)") from None
            raise
        if future is None:
            return view
        if view.id != operation_id:  # a retry: the operation stored first is the one to wait for
            # (a notice for it between its read and this `expect` is made up for by the poll)
            self.waits.forget(operation_id, future)
            if view.status.is_final:
                return view
            operation_id, future = view.id, self.waits.expect(view.id)
        return await until_final(self.waits, view, future, self.waiting.timeout_s)

    def submit_blocking(
        self, command: Command, *, certificate: AssayCertificate | None = None
    ) -> OperationView:
        """`submit` for a plain `def` endpoint, which FastAPI runs in the thread pool."""
        return from_thread.run(partial(self.submit, command, certificate=certificate))


async def until_final(
    waits: FinalWaits, view: OperationView, future: asyncio.Future[OperationView], timeout_s: float
) -> OperationView:
    """`view` once final (`future` from `waits.expect(view.id)`), or as it stands after `timeout_s`."""
    if view.status.is_final:
        waits.forget(view.id, future)
        return view
    latest = await waits.until_final(view.id, future, timeout_s)
    if latest is None:
        raise NotFound(f"operation {view.id} vanished while waiting")
    return latest


async def writes(
    request: Request,
    authorization: BearerToken,
    wait: WaitQuery = False,
    timeout: TimeoutQuery = 30.0,
    idempotency_key: IdempotencyKey = None,
) -> Writes:
    """Every write's dependencies in one: FastAPI's dependency solving is the largest share of a
    write's time on the event loop, and it grows with each node of the graph, so this
    does in one what `authenticate`, `rate_limited_caller` and `wait_options` do for other routes."""
    runtime = await get_runtime(request)
    known: KnownTokens = request.app.state.known_tokens
    caller = known.get(authorization.credentials) if authorization is not None else None
    if caller is None:
        caller = await authenticate(runtime, authorization)
        assert authorization is not None
        known.put(authorization.credentials, caller)
    _take_write(request, caller)
    waits: FinalWaits = request.app.state.final_waits
    return Writes(runtime, caller, idempotency_key, WaitOptions(wait, timeout), waits, known)


WritesDep = Annotated[Writes, Depends(writes)]
