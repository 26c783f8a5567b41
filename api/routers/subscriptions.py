"""Buyers' webhook subscriptions (any API token, each sees its own account's), and the operators'
view of every destination and its dead letters (a token whose account holds the admin role)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import Caller, RuntimeDep, WritingCaller
from api.errors import NotFound
from api.schemas import ErrorOut
from api.schemas.subscriptions import DeadLetterOut, DeliveryLagOut, SubscriptionIn, SubscriptionOut
from provenance.bootstrap import Runtime
from provenance.deliveries import DeliveryStore, SubscriptionRequest, Subscriptions

router = APIRouter(
    tags=["subscriptions"],
    responses={401: {"model": ErrorOut}, 404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
)
SubscriptionId = Annotated[str, Path(max_length=40)]


def _subscriptions(runtime: Runtime) -> Subscriptions:
    return Subscriptions(DeliveryStore(runtime.engine), runtime.settings)


def _require_admin(runtime: Runtime, account: str) -> None:
    runtime.roles.require(account, runtime.roles.named("DEFAULT_ADMIN_ROLE"))


@router.post("/subscriptions", status_code=201, response_model=SubscriptionOut, summary="Subscribe a webhook")
def create_subscription(body: SubscriptionIn, runtime: RuntimeDep, caller: WritingCaller) -> SubscriptionOut:
    """Events about the lots chosen, from now on, POSTed to `callback_url` and signed with the
    secret in this answer (shown once)."""
    request = SubscriptionRequest(
        body.callback_url, body.lot_ids, body.held, body.event_types, body.descendants
    )
    destination, secret = _subscriptions(runtime).create(
        request, account=caller.account, credential_id=caller.id
    )
    return SubscriptionOut.of(destination, secret)


@router.get("/subscriptions", response_model=list[SubscriptionOut], summary="The caller's subscriptions")
def list_subscriptions(runtime: RuntimeDep, caller: Caller) -> list[SubscriptionOut]:
    return [SubscriptionOut.of(destination) for destination in _subscriptions(runtime).of(caller.account)]


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionOut, summary="A subscription")
def get_subscription(subscription_id: SubscriptionId, runtime: RuntimeDep, caller: Caller) -> SubscriptionOut:
    destination = _subscriptions(runtime).get(subscription_id, caller.account)
    if destination is None:
        raise NotFound(f"no subscription {subscription_id}")
    return SubscriptionOut.of(destination)


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="Unsubscribe")
def delete_subscription(subscription_id: SubscriptionId, runtime: RuntimeDep, caller: Caller) -> Response:
    if not _subscriptions(runtime).delete(subscription_id, caller.account):
        raise NotFound(f"no subscription {subscription_id}")
    return Response(status_code=204)


@router.get(
    "/subscriptions/{subscription_id}/dead-letters",
    response_model=list[DeadLetterOut],
    summary="A subscription's dead letters",
)
def subscription_dead_letters(
    subscription_id: SubscriptionId, runtime: RuntimeDep, caller: Caller
) -> list[DeadLetterOut]:
    if _subscriptions(runtime).get(subscription_id, caller.account) is None:
        raise NotFound(f"no subscription {subscription_id}")
    return [DeadLetterOut.of(entry) for entry in DeliveryStore(runtime.engine).dead_letters(subscription_id)]


@router.get(
    "/deliveries",
    response_model=list[DeliveryLagOut],
    responses={403: {"model": ErrorOut}},
    summary="Every destination's lag (admin)",
)
def deliveries(runtime: RuntimeDep, caller: Caller) -> list[DeliveryLagOut]:
    _require_admin(runtime, caller.account)
    now = time.time()
    return [DeliveryLagOut.of(lag, now) for lag in DeliveryStore(runtime.engine).lags()]


@router.get(
    "/deliveries/dead-letters",
    response_model=list[DeadLetterOut],
    responses={403: {"model": ErrorOut}},
    summary="Dead letters of every destination, or of one (admin)",
)
def dead_letters(
    runtime: RuntimeDep,
    caller: Caller,
    destination: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterOut]:
    _require_admin(runtime, caller.account)
    return [
        DeadLetterOut.of(entry) for entry in DeliveryStore(runtime.engine).dead_letters(destination, limit)
    ]
