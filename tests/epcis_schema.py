"""GS1's EPCIS 2.0 JSON schema (tests/data/epcis, see its README), as a validator that also checks
the `uri` and `date-time` formats (jsonschema checks them only with optional packages installed)."""

from __future__ import annotations

import datetime
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft7Validator, FormatChecker

DATA = Path(__file__).parent / "data" / "epcis"
SCHEMA = DATA / "EPCIS-JSON-Schema.json"

formats = FormatChecker()


@formats.checks("uri")
def is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme) and " " not in value and (bool(parts.netloc) or bool(parts.path))


@formats.checks("date-time", raises=ValueError)
def is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value and moment.tzinfo is not None


@cache
def validator() -> Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema, format_checker=formats)


def schema_errors(document: Any) -> list[str]:
    """Every way `document` breaks GS1's schema (empty when it is valid)."""
    return [f"{list(error.absolute_path)}: {error.message}" for error in validator().iter_errors(document)]
