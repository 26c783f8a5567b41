"""Registering lots, transforming them and handing them over."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue

from api.schemas.common import (
    EXAMPLE_HASH,
    EXAMPLE_TIME,
    Address,
    GradePpm,
    Hash32,
    Label,
    LossG,
    MassG,
    Request,
    UnixSeconds,
)
from provenance.domain.commands import (
    MAX_BATCH_LOTS,
    AcceptHandover,
    CancelHandover,
    HandOver,
    RegisterLots,
    Transform,
)
from provenance.errors import DomainError


class LotIn(Request):
    """One lot as it leaves the face, without its site (a batch names the site once)."""

    lot_id: Label
    face: Label
    commodity: Label
    mass_g: MassG
    grade_ppm: GradePpm
    extracted_at: UnixSeconds
    record_hash: Hash32 = Field(description="SHA-256 (or keccak) of the lot's off-chain record, 0x-hex.")


_LOT_EXAMPLE: dict[str, JsonValue] = {
    "lot_id": "SH2-2024-000417",
    "face": "F3",
    "commodity": "COAL",
    "mass_g": 24_500_000,
    "grade_ppm": 12_345,
    "extracted_at": EXAMPLE_TIME,
    "record_hash": EXAMPLE_HASH,
}


class LotRegistrationIn(LotIn):
    """Registers one lot; the caller must be a registrar of `site`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"site": "SH2", **_LOT_EXAMPLE}]})

    site: Label

    def command(self) -> RegisterLots:
        """The domain checks a registration as lots[0] of a batch; the caller sent the lot itself."""
        lot = self.model_dump(mode="json", exclude={"site"})
        try:
            return RegisterLots.from_payload({"site": self.site, "lots": [lot]})
        except DomainError as error:
            raise type(error)(error.field.removeprefix("lots[0]."), error.message) from None


class LotBatchIn(Request):
    """Registers up to 1,000 lots of one site, sent as as many transactions as the gas cap needs."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "site": "SH2",
                    "lots": [
                        _LOT_EXAMPLE,
                        {**_LOT_EXAMPLE, "lot_id": "SH2-2024-000418", "mass_g": 23_900_000},
                    ],
                }
            ]
        }
    )

    site: Label
    lots: list[LotIn] = Field(min_length=1, max_length=MAX_BATCH_LOTS)

    def command(self) -> RegisterLots:
        return RegisterLots.from_payload(self.model_dump(mode="json"))


class TransformInputIn(Request):
    lot_id: Label
    mass_g: MassG = Field(description="Grams of the input lot this transformation consumes.")


class TransformOutputIn(Request):
    lot_id: Label
    commodity: Label
    mass_g: MassG
    grade_ppm: GradePpm
    record_hash: Hash32


class TransformationIn(Request):
    """Split, merge, blend or process lots; outputs plus `loss_g` must equal the inputs consumed.
    The caller must hold PROCESSOR_ROLE and every input lot."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "split",
                    "site": "SH2",
                    "inputs": [{"lot_id": "SH2-2024-000417", "mass_g": 24_500_000}],
                    "outputs": [
                        {
                            "lot_id": "SH2-2024-000417-A",
                            "commodity": "COAL",
                            "mass_g": 12_000_000,
                            "grade_ppm": 12_345,
                            "record_hash": EXAMPLE_HASH,
                        },
                        {
                            "lot_id": "SH2-2024-000417-B",
                            "commodity": "COAL",
                            "mass_g": 12_400_000,
                            "grade_ppm": 12_345,
                            "record_hash": EXAMPLE_HASH,
                        },
                    ],
                    "loss_g": 100_000,
                    "record_hash": EXAMPLE_HASH,
                }
            ]
        }
    )

    kind: Literal["split", "merge", "blend", "process"]
    site: Label
    inputs: list[TransformInputIn] = Field(min_length=1)
    outputs: list[TransformOutputIn] = Field(min_length=1)
    loss_g: LossG
    record_hash: Hash32

    def command(self) -> Transform:
        return Transform.from_payload(self.model_dump(mode="json"))


LotIds = Annotated[list[Label], Field(min_length=1, max_length=MAX_BATCH_LOTS)]


class HandoverIn(Request):
    """Offers lots the caller holds to `to`; custody moves when `to` accepts."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"lot_ids": ["SH2-2024-000417"], "to": "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"}]
        }
    )

    lot_ids: LotIds
    to: Address

    def command(self) -> HandOver:
        return HandOver.from_payload(self.model_dump(mode="json"))


class LotIdsIn(Request):
    """Lots to accept (offered to the caller) or to take off offer (held by the caller)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"lot_ids": ["SH2-2024-000417"]}]})

    lot_ids: LotIds

    def accepting(self) -> AcceptHandover:
        return AcceptHandover.from_payload(self.model_dump(mode="json"))

    def cancelling(self) -> CancelHandover:
        return CancelHandover.from_payload(self.model_dump(mode="json"))
