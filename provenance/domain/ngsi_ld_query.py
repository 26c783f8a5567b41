"""The subset of the NGSI-LD query language (GS CIM 009 clause 4.9) our read endpoint answers.

Supported: terms joined by `;` (AND), each `attribute operator value` with the operators `==`,
`!=`, `>`, `>=`, `<`, `<=`, a value that is a quoted string, a number, a list (`a,b`: any of them)
or a range (`a..b`, both included); the attributes in `QUERYABLE`. Everything else the grammar
allows (`|` OR, parentheses, `=~` and `!~` patterns, attribute paths `a.b` and `a[b]`, a bare
attribute meaning "has it", dates) is refused with the reason, never ignored: a consumer that
thinks it filtered must not get unfiltered data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from provenance.domain.ngsi_ld import MINING_SITE, parse_entity_id

Operator = Literal["==", "!=", ">", ">=", "<", "<="]

QUERYABLE: dict[str, Literal["text", "kilograms", "ppm", "site"]] = {
    "commodity": "text",
    "status": "text",
    "custodian": "text",
    "face": "text",
    "origin": "text",
    "site": "site",
    "mass": "kilograms",
    "remainingMass": "kilograms",
    "grade": "ppm",
}
"""OreLot attributes a `q` may name, and what their values are."""


class UnsupportedQuery(ValueError):
    """A query we do not answer (or a malformed one): `parameter` names the query parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Term:
    attribute: str
    operator: Operator
    values: tuple[str | float, ...]
    """One value, several (any of them: `==` only), or two for a range (`is_range`)."""
    is_range: bool = False


_TERM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(==|!=|>=|<=|>|<)(.+)$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")


def parse_q(text: str) -> tuple[Term, ...]:
    """The terms of `q`, all of which must hold; UnsupportedQuery naming what we do not answer."""
    if not text.strip():
        raise UnsupportedQuery("q", "is empty")
    for token, what in (("|", "OR (|)"), ("(", "parentheses"), (")", "parentheses")):
        if token in _outside_quotes(text):
            raise UnsupportedQuery("q", f"{what} is not supported here; send one query per alternative")
    if "=~" in text or "!~" in text:
        raise UnsupportedQuery("q", "pattern operators (=~, !~) are not supported")
    return tuple(_term(part) for part in _split(text, ";"))


def _outside_quotes(text: str) -> str:
    return re.sub(r'"[^"]*"', '""', text)


def _split(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for character in text:
        if character == '"':
            quoted = not quoted
        if character == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    if quoted:
        raise UnsupportedQuery("q", "a quoted string is not closed")
    parts.append("".join(current))
    return parts


def _term(text: str) -> Term:
    text = text.strip()
    match = _TERM.match(text)
    if match is None:
        name = re.match(r"^[A-Za-z_][A-Za-z0-9_.\[\]]*", text)
        if name is not None and ("." in name.group(0) or "[" in name.group(0)):
            raise UnsupportedQuery("q", f"attribute paths ({name.group(0)}) are not supported")
        if name is not None and name.group(0) == text:
            raise UnsupportedQuery("q", f"a bare attribute ({text}: has the attribute) is not supported")
        raise UnsupportedQuery("q", f"cannot read the term {text!r} (attribute operator value)")
    attribute, operator, raw = match.group(1), match.group(2), match.group(3).strip()
    kind = QUERYABLE.get(attribute)
    if kind is None:
        raise UnsupportedQuery(
            "q", f"attribute {attribute} cannot be queried; these can: {', '.join(sorted(QUERYABLE))}"
        )
    if ".." in _outside_quotes(raw):
        low, high = raw.split("..", 1)
        if operator != "==":
            raise UnsupportedQuery("q", f"a range needs ==, not {operator}")
        return Term(attribute, "==", (_value(attribute, kind, low), _value(attribute, kind, high)), True)
    values = tuple(_value(attribute, kind, item) for item in _split(raw, ","))
    if len(values) > 1 and operator not in ("==", "!="):
        raise UnsupportedQuery("q", f"a list of values needs == or !=, not {operator}")
    if kind in ("text", "site") and operator not in ("==", "!="):
        raise UnsupportedQuery("q", f"{attribute} is text: only == and != apply")
    return Term(attribute, operator, values)  # type: ignore[arg-type]


def _value(attribute: str, kind: str, raw: str) -> str | float:
    raw = raw.strip()
    if kind in ("text", "site"):
        if len(raw) < 2 or not (raw.startswith('"') and raw.endswith('"')):
            raise UnsupportedQuery("q", f"{attribute} takes a quoted string, not {raw}")
        text = raw[1:-1]
        if kind == "site":
            reference = parse_entity_id(text)
            if reference is None or reference.type != MINING_SITE or reference.site is None:
                raise UnsupportedQuery("q", f"site is a Relationship: give a MiningSite id, not {text}")
            return reference.site
        return text
    if not _NUMBER.match(raw):
        raise UnsupportedQuery("q", f"{attribute} takes a number, not {raw}")
    return float(raw)
