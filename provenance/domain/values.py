"""Value types of the domain: ids, labels and quantities, as the registry stores them.

Lot ids, sites, faces, commodities and document kinds travel on chain as `bytes32` labels:
the ASCII text itself, right-padded with zero bytes, so a block explorer shows them readably
and no lookup table is needed to verify them.
"""

from __future__ import annotations

import enum
import re
from typing import NewType

from provenance.errors import InvalidLabel

LotId = NewType("LotId", str)
SiteId = NewType("SiteId", str)
Grams = NewType("Grams", int)
Ppm = NewType("Ppm", int)
UnixSeconds = NewType("UnixSeconds", int)
Address = NewType("Address", str)
"""A checksummed 0x-prefixed account address."""

MAX_GRADE_PPM = 1_000_000
MAX_MASS_G = 2**63 - 1
"""As the registry's MAX_MASS_G: any accepted mass fits a signed 64-bit SQL integer."""
MAX_CLOCK_SKEW_S = 15 * 60
LABEL_BYTES = 32

_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}")


class TransformKind(enum.IntEnum):
    """Mirrors `OreLotRegistry.TransformKind`; the values are the on-chain enum values."""

    SPLIT = 0
    MERGE = 1
    BLEND = 2
    PROCESS = 3


class CorrectionReason(enum.IntEnum):
    """CBV 2.0 error-declaration reasons, as `OreLotRegistry.CorrectionReason`."""

    DID_NOT_OCCUR = 0
    INCORRECT_DATA = 1


def encode_label(text: str, field: str = "label") -> bytes:
    """The bytes32 form of a label; raises InvalidLabel naming `field` if it cannot be one."""
    if not isinstance(text, str) or not _LABEL.fullmatch(text):
        raise InvalidLabel(
            field,
            "must be 1 to 32 characters of A-Z a-z 0-9 . _ : / -, starting with a letter or digit",
        )
    return text.encode("ascii").ljust(LABEL_BYTES, b"\0")


def decode_label(raw: bytes) -> str:
    """The text of a bytes32 label; bytes that are not a label come back as 0x-hex."""
    text = raw.rstrip(b"\0")
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return "0x" + raw.hex()
    return decoded if _LABEL.fullmatch(decoded) else "0x" + raw.hex()
