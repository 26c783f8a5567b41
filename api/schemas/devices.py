"""Devices (truck scales that sign loads) and device-attested lots."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import (
    EXAMPLE_HASH,
    EXAMPLE_TIME,
    SIGNATURE,
    Address,
    FromDomain,
    Hash32,
    Label,
    Request,
    UnixSeconds,
)
from api.schemas.lots import _LOT_EXAMPLE, LotIn
from api.schemas.reads import _ACCOUNT, CoordinatesOut
from provenance.domain.commands import (
    MAX_BATCH_LOTS,
    AddDevice,
    CorrectLot,
    RecordStockCount,
    RegisterAttestedLots,
)
from provenance.domain.values import MAX_MASS_G


class AttestedLotIn(LotIn):
    """A lot whose load a device of the site weighed and signed (EIP-712 `Load` over lot id, site,
    face, trip id, mass and load time)."""

    trip_id: Label
    loaded_at: UnixSeconds
    signature: str = Field(pattern=SIGNATURE, description="The device's 65-byte EIP-712 signature as 0x-hex.")


class AttestedLotBatchIn(Request):
    """Registers up to 1,000 device-attested lots of one site (`registerAttestedLots`); the caller
    must be a registrar of `site`, every signer an active device of it (the chain checks)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "SH2",
                    "lots": [
                        {
                            **_LOT_EXAMPLE,
                            "lot_id": "SH2-T03-20261124T0712",
                            "trip_id": "T03-20261124T0712",
                            "loaded_at": EXAMPLE_TIME,
                            "signature": "0x" + "1b" * 65,
                        }
                    ],
                }
            ]
        }
    )

    site: Label
    lots: list[AttestedLotIn] = Field(min_length=1, max_length=MAX_BATCH_LOTS)

    def command(self) -> RegisterAttestedLots:
        return RegisterAttestedLots.from_payload(self.model_dump(mode="json"))


class DeviceIn(Request):
    """Adds a device (a truck scale's key) to a site; a registrar of the site or an admin (on chain)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"device": _ACCOUNT, "site": "SH2", "kind": "haul-truck-scale"}]}
    )

    device: Address
    site: Label
    kind: Label

    def command(self) -> AddDevice:
        return AddDevice.from_payload(self.model_dump(mode="json"))


class CorrectionIn(Request):
    """Declares a lot's record wrong (a CBV 2.0 error declaration) without rewriting it:
    `adjustment_g` changes its remaining mass. The lot's custodian or an admin (on chain)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "lot_id": "SH2-2024-000417",
                    "reason": "incorrect_data",
                    "adjustment_g": -200_000,
                    "record_hash": EXAMPLE_HASH,
                }
            ]
        }
    )

    lot_id: Label
    reason: Literal["did_not_occur", "incorrect_data"] = Field(
        description="CBV 2.0 error reason: did_not_occur (the lot's mass goes to zero) or incorrect_data."
    )
    adjustment_g: int = Field(
        ge=-MAX_MASS_G,
        le=MAX_MASS_G,
        description="Signed grams added to the lot's remaining mass (negative: less than recorded).",
    )
    record_hash: Hash32 = Field(description="Hash of the off-chain correction record (why, by whom).")

    def command(self) -> CorrectLot:
        return CorrectLot.from_payload(self.model_dump(mode="json"))


class StockCountIn(Request):
    """A physical stock count at a site, to set beside the book stock. A registrar of the site."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "SH2",
                    "counted_g": 3_500_000_000,
                    "counted_at": EXAMPLE_TIME,
                    "record_hash": EXAMPLE_HASH,
                }
            ]
        }
    )

    site: Label
    counted_g: int = Field(ge=0, le=MAX_MASS_G, description="The mass found, in whole grams.")
    counted_at: UnixSeconds = Field(
        description="When the count was taken (at most 15 minutes ahead of the chain)."
    )
    record_hash: Hash32 = Field(description="Hash of the off-chain count sheet.")

    def command(self) -> RecordStockCount:
        return RecordStockCount.from_payload(self.model_dump(mode="json"))


class DeviceOut(FromDomain):
    device: str
    site: str
    kind: str
    added_by: str
    active: bool
    added: CoordinatesOut
    revoked_by: str | None
    revoked: CoordinatesOut | None


class DevicesOut(BaseModel):
    site: str
    devices: list[DeviceOut] = Field(description="Every device ever added at the site, active or revoked.")


class RegistryOut(BaseModel):
    """Which registry on which chain: the EIP-712 domain devices and labs sign for."""

    chain_id: int
    registry: str
    deployment_block: int
    eip712_name: str
    eip712_version: str
