"""Shapes every part of the API shares: labels, masses, hashes, the strict request base."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field

from provenance.domain.values import MAX_GRADE_PPM, MAX_MASS_G

HEX32 = r"^0x[0-9a-fA-F]{64}$"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
SIGNATURE = r"^0x[0-9a-fA-F]{130}$"
EXAMPLE_HASH = "0x" + "ab" * 32
EXAMPLE_TIME = 1_700_000_000

Label = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="1 to 32 characters of A-Z a-z 0-9 . _ : / -, starting with a letter or digit "
        "(stored on chain as a bytes32 label).",
    ),
]
MassG = Annotated[int, Field(gt=0, le=MAX_MASS_G, description="Mass in whole grams.")]
LossG = Annotated[int, Field(ge=0, le=MAX_MASS_G, description="Declared loss in whole grams.")]
GradePpm = Annotated[
    int, Field(ge=0, le=MAX_GRADE_PPM, description="Grade in parts per million (0 to 1,000,000).")
]
UnixSeconds = Annotated[int, Field(ge=0, lt=2**64, description="Unix time in whole seconds.")]
Hash32 = Annotated[str, Field(pattern=HEX32, description="32 bytes as 0x followed by 64 hex digits.")]
Address = Annotated[str, Field(pattern=ADDRESS, description="A 20-byte account address as 0x-hex.")]


class FromDomain(BaseModel):
    """A response model filled from the domain's frozen dataclass of the same field names."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, value: object) -> Self:
        return cls.model_validate(value)


class Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
