"""What operators, processors and labs submit, as frozen values checked against the domain's rules.

Each check names the field it refuses, so the API and the CLI can say exactly what is wrong
before anything is stored or sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from provenance.domain.values import (
    MAX_GRADE_PPM,
    MAX_MASS_G,
    TransformKind,
    encode_label,
)
from provenance.errors import DomainError

_UINT64_MAX = 2**64 - 1
HASH_BYTES = 32


def check_mass(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MASS_G:
        raise DomainError(field, "must be a whole number of grams from 1 to 2^63-1")
    return value


def check_grade(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GRADE_PPM:
        raise DomainError(field, "must be a whole number of ppm from 0 to 1,000,000")
    return value


def check_time(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT64_MAX:
        raise DomainError(field, "must be a Unix time in whole seconds")
    return value


def check_hash(value: bytes, field: str, *, allow_zero: bool = True) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_BYTES:
        raise DomainError(field, "must be 32 bytes")
    if not allow_zero and not any(value):
        raise DomainError(field, "must not be all zeros")
    return value


@dataclass(frozen=True)
class LotRegistration:
    """A lot as it leaves the face: one truckload, usually."""

    lot_id: str
    site: str
    face: str
    commodity: str
    mass_g: int
    grade_ppm: int
    extracted_at: int
    record_hash: bytes

    def __post_init__(self) -> None:
        encode_label(self.lot_id, "lot_id")
        encode_label(self.site, "site")
        encode_label(self.face, "face")
        encode_label(self.commodity, "commodity")
        check_mass(self.mass_g, "mass_g")
        check_grade(self.grade_ppm, "grade_ppm")
        check_time(self.extracted_at, "extracted_at")
        check_hash(self.record_hash, "record_hash")


@dataclass(frozen=True)
class LoadAttestation:
    """A device's signed measurement of the load that became a lot."""

    trip_id: str
    loaded_at: int
    signature: bytes

    def __post_init__(self) -> None:
        encode_label(self.trip_id, "trip_id")
        check_time(self.loaded_at, "loaded_at")


@dataclass(frozen=True)
class TransformInput:
    lot_id: str
    mass_g: int

    def __post_init__(self) -> None:
        encode_label(self.lot_id, "lot_id")
        check_mass(self.mass_g, "mass_g")


@dataclass(frozen=True)
class TransformOutput:
    lot_id: str
    commodity: str
    mass_g: int
    grade_ppm: int
    record_hash: bytes

    def __post_init__(self) -> None:
        encode_label(self.lot_id, "lot_id")
        encode_label(self.commodity, "commodity")
        check_mass(self.mass_g, "mass_g")
        check_grade(self.grade_ppm, "grade_ppm")
        check_hash(self.record_hash, "record_hash")


@dataclass(frozen=True)
class Transformation:
    kind: TransformKind
    site: str
    inputs: tuple[TransformInput, ...]
    outputs: tuple[TransformOutput, ...]
    loss_g: int
    record_hash: bytes

    def __post_init__(self) -> None:
        encode_label(self.site, "site")
        if (
            isinstance(self.loss_g, bool)
            or not isinstance(self.loss_g, int)
            or not 0 <= self.loss_g <= MAX_MASS_G
        ):
            raise DomainError("loss_g", "must be a whole number of grams from 0 to 2^63-1")
        check_hash(self.record_hash, "record_hash")


@dataclass(frozen=True)
class Assay:
    """A lab's result for a lot; the lab signs exactly these fields (EIP-712 `Assay`)."""

    lot_id: str
    grade_ppm: int
    method: str
    certificate_hash: bytes
    assayed_at: int

    def __post_init__(self) -> None:
        encode_label(self.lot_id, "lot_id")
        check_grade(self.grade_ppm, "grade_ppm")
        encode_label(self.method, "method")
        check_hash(self.certificate_hash, "certificate_hash")
        check_time(self.assayed_at, "assayed_at")
