"""How the command line counts things to people: "1 lot", "2 lots", "1,024 events"."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
