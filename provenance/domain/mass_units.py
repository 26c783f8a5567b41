"""Masses for people: grams shown in tonnes (the default), kilograms or grams.

The record keeps whole grams; these only format them. Tonnes are given to the kilogram, or to the
gram below a kilogram, so a small flow never reads "0.000 t"; kilograms to the gram.
"""

from __future__ import annotations

import enum
from decimal import Decimal

from provenance.errors import DomainError


class MassUnit(enum.StrEnum):
    G = "g"
    KG = "kg"
    T = "t"

    @classmethod
    def parse(cls, text: str, field: str = "unit") -> MassUnit:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise DomainError(field, f"{text[:20]!r} is not a unit: use g, kg or t") from None


_GRAMS = {MassUnit.G: 1, MassUnit.KG: 1_000, MassUnit.T: 1_000_000}


def mass_text(grams: int, unit: MassUnit = MassUnit.T) -> str:
    """`grams` in `unit` with thousands separators: 1,234,567 g is "1.235 t", "1,234.567 kg" or
    "1,234,567 g"; 25 g is "0.000025 t"."""
    if unit is MassUnit.G:
        return f"{grams:,} g"
    if unit is MassUnit.KG:
        return f"{(Decimal(grams) / 1_000).quantize(Decimal('0.001')):,} kg"
    places = Decimal("0.001") if abs(grams) >= 1_000 or grams == 0 else Decimal("0.000001")
    return f"{(Decimal(grams) / _GRAMS[unit]).quantize(places):,} t"


def mass_amount(grams: int, unit: MassUnit) -> str:
    """The number alone, without separators (for CSV): "1.234567" t, "1234.567" kg, "1234567" g."""
    if unit is MassUnit.G:
        return str(grams)
    return format(Decimal(grams) / _GRAMS[unit], "f")
