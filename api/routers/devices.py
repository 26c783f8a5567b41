"""Devices (truck scales that sign loads) and device-attested lots; the registry's identity.

Writes go through the outbox like every other; reads answer from the index with `X-Index-Block`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from api.deps import RuntimeDep, WritesDep, operation_response
from api.errors import NotFound
from api.routers.reads import Reads, SitePath, reply
from api.schemas import (
    AttestedLotBatchIn,
    DeviceIn,
    DeviceOut,
    DevicesOut,
    ErrorOut,
    OperationOut,
    RegistryOut,
)

WRITE_ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut} for status in (401, 403, 409, 413, 422, 429)
}
router = APIRouter(tags=["devices"])

AddressPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$", description="The device's address.")]


@router.post(
    "/lots/attested",
    status_code=202,
    response_model=OperationOut,
    responses=WRITE_ERRORS,
    summary="Register up to 1,000 device-attested lots of one site",
)
def register_attested_lots(body: AttestedLotBatchIn, writes: WritesDep) -> Response:
    """One operation, sent as as many `registerAttestedLots` transactions as the gas cap needs.
    The chain refuses a whole transaction if one signature is not by an active device of the
    site, so each signer is checked here first (422 on `lots[i].signature`), after the role."""
    return operation_response(writes.submit_blocking(body.command()))


@router.post(
    "/devices",
    status_code=202,
    response_model=OperationOut,
    responses=WRITE_ERRORS,
    summary="Add a device to a site",
)
def add_device(body: DeviceIn, writes: WritesDep) -> Response:
    """No role is checked here: a registrar of the site or an admin may, and the chain decides
    (`NotSiteRegistrar`). A device is never re-used, even after revocation (`DeviceExists`)."""
    return operation_response(writes.submit_blocking(body.command()))


@router.get(
    "/devices/{address}",
    response_model=DeviceOut,
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}},
    summary="A device: its site, kind and whether it is active",
)
def device(address: AddressPath, reads: Reads) -> Response:
    with reads:
        found = reads.device(address)
        if found is None:
            raise NotFound(f"no device {address} in the index")
        return reply(DeviceOut.of(found), reads)


@router.get("/sites/{site}/devices", response_model=DevicesOut, summary="Every device of a site")
def site_devices(site: SitePath, reads: Reads) -> Response:
    with reads:
        return reply(DevicesOut(site=site, devices=[DeviceOut.of(d) for d in reads.devices(site)]), reads)


@router.get("/registry", response_model=RegistryOut, summary="The registry and chain this service mirrors")
def registry(runtime: RuntimeDep) -> RegistryOut:
    from provenance.chain.signing import DOMAIN_NAME, DOMAIN_VERSION

    deployment = runtime.deployment
    return RegistryOut(
        chain_id=deployment.chain_id,
        registry=deployment.registry,
        deployment_block=deployment.block_number,
        eip712_name=DOMAIN_NAME,
        eip712_version=DOMAIN_VERSION,
    )
