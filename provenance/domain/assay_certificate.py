"""An assay's analytes as a certificate whose SHA-256 the lab signs: committed on chain, no contract change.

The registry's EIP-712 `Assay` carries one grade and a `certificateHash`. The analytes a buyer
reads (for coal: ash, sulphur, moisture, volatile matter, calorific value; for an ore: the
grade of its element) go into a canonical JSON document, and its SHA-256 is that hash: the lab's
signature over the assay covers the hash, so it covers the analytes. Anyone holding the
certificate's bytes re-hashes them and compares with the chain.

The bytes are canonical so that one set of results is one hash, whoever builds it:

    {"analytes":[{"analyte":"ash","method":"ISO 1171","unit":"%","value":"27.4"},...],
     "format":"mineral-provenance/assay-certificate/1","lot_id":"SH2-..."}

* UTF-8 JSON, keys sorted, no whitespace (`separators=(",", ":")`), non-ASCII written as itself;
* analytes sorted by name (each name at most once); each a JSON object of four strings;
* values are decimal text as the lab reported them ("27.40" keeps its last digit), never JSON
  numbers, so no parser rounds them: digits, at most one point, no sign, no exponent;
* no trailing newline.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from provenance.domain.values import encode_label
from provenance.errors import DomainError

FORMAT = "mineral-provenance/assay-certificate/1"
MAX_ANALYTES = 32
MAX_METHOD_CHARS = 64
MAX_CERTIFICATE_BYTES = 16 * 1024
"""A certificate of 32 analytes is about 3 KB; a larger stored file is not one of ours."""

UNITS = ("%", "kcal/kg", "MJ/kg", "ppm", "g/t")
_FRACTION_UNITS = ("%", "ppm", "g/t")
_HEAT_UNITS = ("kcal/kg", "MJ/kg")
_UPPER_BOUND = {"%": Decimal(100), "ppm": Decimal(1_000_000), "g/t": Decimal(1_000_000)}

COAL_ANALYTES: dict[str, tuple[str, ...]] = {
    "total_moisture": ("%",),
    "moisture": ("%",),
    "ash": ("%",),
    "volatile_matter": ("%",),
    "fixed_carbon": ("%",),
    "total_sulphur": ("%",),
    "gross_calorific_value": _HEAT_UNITS,
    "net_calorific_value": _HEAT_UNITS,
}
"""A coal's properties and their units, in the order a buyer reads them (proximate analysis, then
sulphur, then heat)."""

_PERIODIC_TABLE = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br "
    "Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er "
    "Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu"
)
ELEMENTS = frozenset(_PERIODIC_TABLE.split())
"""An ore's analytes are its elements by symbol (`Fe`, `Cu`, `Au`), as a mass fraction."""

_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,17})(\.[0-9]{1,12})?")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")


class CertificateError(DomainError):
    """Analytes that cannot make a certificate; `field` names the one (e.g. `analytes[2].unit`)."""


@dataclass(frozen=True)
class Analyte:
    """One result: what was measured, the value as decimal text, its unit, and the method."""

    analyte: str
    value: str
    unit: str
    method: str

    def check(self, field: str) -> None:
        if self.analyte in COAL_ANALYTES:
            units = COAL_ANALYTES[self.analyte]
        elif self.analyte in ELEMENTS:
            units = _FRACTION_UNITS
        else:
            raise CertificateError(
                f"{field}.analyte",
                f"{self.analyte!r} is not an analyte this registry knows: one of "
                f"{', '.join(COAL_ANALYTES)} or an element symbol (Fe, Cu, Au, ...)",
            )
        if self.unit not in UNITS:
            raise CertificateError(f"{field}.unit", f"{self.unit!r} is not one of {', '.join(UNITS)}")
        if self.unit not in units:
            raise CertificateError(
                f"{field}.unit", f"{self.analyte} is given in {' or '.join(units)}, not {self.unit}"
            )
        if not isinstance(self.value, str) or not _DECIMAL.fullmatch(self.value):
            raise CertificateError(
                f"{field}.value",
                'must be a finite decimal written as text, e.g. "27.4" (digits and at most one point; '
                "no sign, exponent or leading zeros)",
            )
        bound = _UPPER_BOUND.get(self.unit)
        if bound is not None and Decimal(self.value) > bound:
            raise CertificateError(f"{field}.value", f"{self.value} {self.unit} is more than {bound}")
        if (
            not isinstance(self.method, str)
            or not 1 <= len(self.method) <= MAX_METHOD_CHARS
            or not _PRINTABLE.fullmatch(self.method)
            or self.method != self.method.strip()
        ):
            raise CertificateError(
                f"{field}.method",
                f'must be 1 to {MAX_METHOD_CHARS} printable characters naming the standard, e.g. "ISO 1171"',
            )

    def as_dict(self) -> dict[str, str]:
        return {"analyte": self.analyte, "method": self.method, "unit": self.unit, "value": self.value}


def reading_order(analyte: str) -> tuple[int, str]:
    """Coal's properties in a buyer's order, then elements by symbol."""
    order = list(COAL_ANALYTES)
    return (order.index(analyte), "") if analyte in COAL_ANALYTES else (len(order), analyte)


@dataclass(frozen=True)
class AssayCertificate:
    lot_id: str
    analytes: tuple[Analyte, ...]
    """Sorted by name."""

    def canonical_bytes(self) -> bytes:
        document = {
            "analytes": [analyte.as_dict() for analyte in self.analytes],
            "format": FORMAT,
            "lot_id": self.lot_id,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @property
    def certificate_hash(self) -> str:
        """0x-hex SHA-256 of the canonical bytes: the assay's `certificate_hash`."""
        return "0x" + hashlib.sha256(self.canonical_bytes()).hexdigest()

    def for_reading(self) -> tuple[Analyte, ...]:
        return tuple(sorted(self.analytes, key=lambda analyte: reading_order(analyte.analyte)))


def build_certificate(lot_id: str, analytes: Iterable[Analyte], field: str = "analytes") -> AssayCertificate:
    """The certificate of `analytes` for `lot_id`; CertificateError naming the offending input."""
    encode_label(lot_id, "lot_id")
    given = list(analytes)
    if not 1 <= len(given) <= MAX_ANALYTES:
        raise CertificateError(field, f"must list 1 to {MAX_ANALYTES} analytes")
    seen: set[str] = set()
    for number, analyte in enumerate(given):
        analyte.check(f"{field}[{number}]")
        if analyte.analyte in seen:
            raise CertificateError(f"{field}[{number}].analyte", f"{analyte.analyte} is listed twice")
        seen.add(analyte.analyte)
    return AssayCertificate(lot_id, tuple(sorted(given, key=lambda analyte: analyte.analyte)))


def analytes_of(items: Sequence[Mapping[str, Any]], field: str = "analytes") -> tuple[Analyte, ...]:
    """Analytes from JSON objects of four strings (anything else is refused naming the field)."""
    parsed = []
    for number, item in enumerate(items):
        if not isinstance(item, Mapping) or set(item) != {"analyte", "value", "unit", "method"}:
            raise CertificateError(
                f"{field}[{number}]", "must be an object of exactly analyte, value, unit and method"
            )
        for name in ("analyte", "value", "unit", "method"):
            if not isinstance(item[name], str):
                raise CertificateError(f"{field}[{number}].{name}", "must be a string")
        parsed.append(Analyte(item["analyte"], item["value"], item["unit"], item["method"]))
    return tuple(parsed)


class CertificateStatus(StrEnum):
    MATCHES = "matches"
    """The held bytes hash to the chain's certificate hash and are a certificate of this lot."""
    NOT_HELD = "not_held"
    """No file under that hash here (the lab kept its certificate, or it is elsewhere)."""
    DOES_NOT_MATCH = "does_not_match"
    """A file is held under the hash but its bytes hash to something else, or certify another lot."""
    NOT_A_CERTIFICATE = "not_a_certificate"
    """The held file is what the chain committed, but not an analyte certificate (a PDF, say)."""


@dataclass(frozen=True)
class CertificateCheck:
    status: CertificateStatus
    analytes: tuple[Analyte, ...] = ()
    """Only when `status` is MATCHES: never analytes the chain did not commit."""


def check_certificate(held: bytes | None, certificate_hash: str, lot_id: str) -> CertificateCheck:
    """What the bytes held under an assay's certificate hash say, checked against that hash."""
    if held is None:
        return CertificateCheck(CertificateStatus.NOT_HELD)
    if "0x" + hashlib.sha256(held).hexdigest() != certificate_hash.lower():
        return CertificateCheck(CertificateStatus.DOES_NOT_MATCH)
    try:
        document = json.loads(held.decode("utf-8"))
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError("not a certificate")
        items = document["analytes"]
        if not isinstance(items, list):
            raise ValueError("not a list")
        certificate = build_certificate(str(document["lot_id"]), analytes_of(items))
    except (ValueError, KeyError):
        return CertificateCheck(CertificateStatus.NOT_A_CERTIFICATE)
    if certificate.canonical_bytes() != held:
        return CertificateCheck(CertificateStatus.NOT_A_CERTIFICATE)
    if certificate.lot_id != lot_id:
        return CertificateCheck(CertificateStatus.DOES_NOT_MATCH)
    return CertificateCheck(CertificateStatus.MATCHES, certificate.for_reading())
