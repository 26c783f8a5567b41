"""The CBV 2.0 event hash ID (CBV 2.0 section 8.9, "Event Hash ID") of an EPCIS 2.0 JSON-LD event.

A pre-hash string of `eventType=<type>`, then the event's standard fields in the canonical property
order (`key=value` for a value, a container's name followed by its children, a list's name once
followed by its entries sorted), then the user extension fields (namespace prefix replaced by
`{namespace IRI}`, sorted), all concatenated without separators; `ni:///sha-256;<hex>?ver=CBV2.0`
of its UTF-8 bytes. `eventID`, `recordTime` and `errorDeclaration` are not hashed (a declaration
keeps the eventID of the event it declares in error).

Values are canonicalised as the text asks: time stamps in UTC at millisecond precision (rounded
half up), numbers without trailing zeros, bare CBV words and `urn:epcglobal:cbv:` URNs as CBV web
URIs, CURIEs (`gs1:`, `cbv:`, `epcis:`) expanded, sensor measurement types as the EPCIS 2.0 JSON-LD
context expands them (`https://gs1.org/voc/<type>`), and GS1 keys (the EPC URNs and Digital Link
URIs of `provenance.epcis.ids`: SGTIN, SSCC, SGLN, PGLN, LGTIN) as constrained canonical GS1
Digital Link URIs at `https://id.gs1.org`. A bizTransaction, source or destination is written
type first, then its identifier (CBV 2.0 as the reference implementation's issue #80 reads it).

Where GS1's reference tool (PyPI `epcis-event-hash-generator` 1.9.3) and the text disagree we
follow the text: the tool writes `destinationList` before `sourceList` (positions 22 and 21 of the
canonical order). docs/epcis.md ("Event hashes") lists it, and tests/unit/test_epcis_hash_tool.py
checks that this is the only difference, for every event type we emit and on GS1's own examples.

Not implemented, because no event of ours has them: certificationInfo, ilmd, extensions nested
inside readPoint, bizLocation or sensor elements, and the GS1 keys other than those named above.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, TypeGuard
from urllib.parse import unquote

CBV_VOCABULARY = "https://ref.gs1.org/cbv/"
GS1_VOCABULARY = "https://gs1.org/voc/"
"""The `gs1:` prefix of the EPCIS 2.0 JSON-LD context (measurement types expand under it)."""
EPCIS_VOCABULARY = "https://ref.gs1.org/epcis/"
GS1_RESOLVER = "https://id.gs1.org"

Order = Sequence[tuple[str, "Order | None"]]

_QUANTITY: Order = (("epcClass", None), ("quantity", None), ("uom", None))
_SENSOR_METADATA: Order = tuple(
    (name, None)
    for name in (
        "time",
        "startTime",
        "endTime",
        "deviceID",
        "deviceMetadata",
        "rawData",
        "dataProcessingMethod",
        "bizRules",
    )
)
_SENSOR_REPORT: Order = tuple(
    (name, None)
    for name in (
        "type",
        "exception",
        "deviceID",
        "deviceMetadata",
        "rawData",
        "dataProcessingMethod",
        "time",
        "microorganism",
        "chemicalSubstance",
        "value",
        "component",
        "stringValue",
        "booleanValue",
        "hexBinaryValue",
        "uriValue",
        "minValue",
        "maxValue",
        "meanValue",
        "sDev",
        "percRank",
        "percValue",
        "uom",
        "coordinateReferenceSystem",
    )
)
_SENSOR_ELEMENT: Order = (("sensorMetadata", _SENSOR_METADATA), ("sensorReport", _SENSOR_REPORT))

PROPERTY_ORDER: Order = (
    ("eventTime", None),
    ("eventTimeZoneOffset", None),
    ("epcList", None),
    ("parentID", None),
    ("inputEPCList", None),
    ("childEPCs", None),
    ("quantityList", _QUANTITY),
    ("childQuantityList", _QUANTITY),
    ("inputQuantityList", _QUANTITY),
    ("outputEPCList", None),
    ("outputQuantityList", _QUANTITY),
    ("action", None),
    ("transformationID", None),
    ("bizStep", None),
    ("disposition", None),
    ("persistentDisposition", (("set", None), ("unset", None))),
    ("readPoint", (("id", None),)),
    ("bizLocation", (("id", None),)),
    ("bizTransactionList", (("type", None), ("bizTransaction", None))),
    ("sourceList", (("type", None), ("source", None))),
    ("destinationList", (("type", None), ("destination", None))),
    ("sensorElementList", _SENSOR_ELEMENT),
)
"""CBV 2.0's canonical property order (section 8.9), for the fields implemented here."""

_ENTRY_NAME = {
    "epcList": "epc",
    "inputEPCList": "epc",
    "childEPCs": "epc",
    "outputEPCList": "epc",
    "quantityList": "quantityElement",
    "childQuantityList": "quantityElement",
    "inputQuantityList": "quantityElement",
    "outputQuantityList": "quantityElement",
    "sensorElementList": "sensorElement",
    "sensorReport": "sensorReport",
    "set": "set",
    "unset": "unset",
}
"""The name each entry of a list takes in the pre-hash string (the XML binding's element name);
the entries of bizTransaction, source and destination lists are written without one."""

_LIST_NAME_OMITTED = frozenset({"sensorReport", "set", "unset"})
"""Repeated elements in the XML binding: no list name before their entries."""

_VOCABULARY = {
    "bizStep": CBV_VOCABULARY + "BizStep-",
    "disposition": CBV_VOCABULARY + "Disp-",
    "set.set": CBV_VOCABULARY + "Disp-",
    "unset.unset": CBV_VOCABULARY + "Disp-",
    "bizTransactionList.type": CBV_VOCABULARY + "BTT-",
    "sourceList.type": CBV_VOCABULARY + "SDT-",
    "destinationList.type": CBV_VOCABULARY + "SDT-",
    "sensorReport.type": GS1_VOCABULARY,
    "errorDeclaration.reason": CBV_VOCABULARY + "ER-",
}
"""Where a bare word stands for a web-vocabulary URI (which it is expanded to)."""

_CBV_URNS = (
    ("urn:epcglobal:cbv:bizstep:", CBV_VOCABULARY + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", CBV_VOCABULARY + "Disp-"),
    ("urn:epcglobal:cbv:btt:", CBV_VOCABULARY + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", CBV_VOCABULARY + "SDT-"),
    ("urn:epcglobal:cbv:er:", CBV_VOCABULARY + "ER-"),
)
_CURIES = {"gs1": GS1_VOCABULARY, "cbv": CBV_VOCABULARY, "epcis": EPCIS_VOCABULARY}

_TIME_FIELDS = frozenset({"eventTime", "time", "startTime", "endTime", "declarationTime"})

NOT_HASHED = frozenset({"type", "eventID", "recordTime", "@context", "errorDeclaration"})


# ---------------------------------------------------------------------- GS1 keys


def check_digit(digits: str) -> str:
    """The GS1 check digit of a key without it (GS1 General Specifications 7.9.1)."""
    total = sum(int(digit) * (3 if index % 2 == 0 else 1) for index, digit in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


_DL_UNSAFE = {"!": "%21", "(": "%28", ")": "%29", "*": "%2A", "+": "%2B", ",": "%2C", ":": "%3A"}
"""GS1 Digital Link 1.2 table 7-1: what an EPC URN may hold unescaped but a DL path may not."""


def _dl_text(value: str) -> str:
    return "".join(_DL_UNSAFE.get(char, char) for char in value)


_EPC = re.compile(r"urn:epc:(id|class):(sgtin|sscc|sgln|pgln|lgtin):(\d{6,12})\.(\d*)(?:\.(.+))?")
_DL = re.compile(r"https?://[^/?#]+(?:/[^?#]*)?/(00|01|414|417)/(\d+)((?:/[^/?#]+/[^/?#]+)*)/?(?:[?#].*)?")
_DL_QUALIFIERS = {"01": ("22", "10", "21"), "414": ("254",), "417": (), "00": ()}


def gs1_digital_link(uri: str) -> str | None:
    """The constrained canonical GS1 Digital Link URI (CBV 2.0 section 8.9) of a GS1 key given as
    an EPC URN or a Digital Link URI on any resolver; None for anything else."""
    match = _EPC.fullmatch(uri)
    if match is not None:
        return _from_epc(match.group(2), match.group(3), match.group(4), match.group(5))
    match = _DL.fullmatch(uri)
    if match is None:
        return None
    key, value, rest = match.group(1), match.group(2), match.group(3)
    pairs = re.findall(r"/([^/]+)/([^/]+)", rest)
    allowed = _DL_QUALIFIERS[key]
    kept = [(ai, text) for ai, text in pairs if ai in allowed]
    if key == "01":
        # the finest level only: a serial makes the lot redundant (GTIN + serial names one item)
        serial = [(ai, text) for ai, text in kept if ai == "21"]
        kept = serial or [(ai, text) for ai, text in kept if ai == "10"]
    tail = "".join(f"/{ai}/{_dl_text(unquote(text))}" for ai, text in kept)
    return f"{GS1_RESOLVER}/{key}/{value}{tail}"


def _from_epc(scheme: str, prefix: str, reference: str, rest: str | None) -> str | None:
    if scheme in ("sgtin", "lgtin") and rest is not None:
        if len(prefix) + len(reference) != 13:
            return None
        gtin = reference[:1] + prefix + reference[1:]
        ai = "21" if scheme == "sgtin" else "10"
        return f"{GS1_RESOLVER}/01/{gtin}{check_digit(gtin)}/{ai}/{_dl_text(unquote(rest))}"
    if scheme == "sscc" and rest is None and len(prefix) + len(reference) == 17:
        sscc = reference[:1] + prefix + reference[1:]
        return f"{GS1_RESOLVER}/00/{sscc}{check_digit(sscc)}"
    if scheme in ("sgln", "pgln") and len(prefix) + len(reference) == 12:
        gln = prefix + reference
        if scheme == "pgln":
            return None if rest is not None else f"{GS1_RESOLVER}/417/{gln}{check_digit(gln)}"
        if rest is None:
            return None
        extension = "" if rest == "0" else f"/254/{_dl_text(unquote(rest))}"
        return f"{GS1_RESOLVER}/414/{gln}{check_digit(gln)}{extension}"
    return None


# ---------------------------------------------------------------------- values


def _text(value: object) -> str:
    """A value's canonical text: numbers without trailing zeros, strings trimmed."""
    if type(value) is str:
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        number = Decimal(repr(value))
        if number == number.to_integral_value():
            return str(int(number))
        return format(number.normalize(), "f")
    return str(value).strip()


def _numeric(text: str) -> str:
    """A number written as a string, without a leading `+` or trailing zeros; other text as it is."""
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text):
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _expand(path: str, value: str) -> str:
    if value.startswith("urn:epcglobal:cbv:"):
        for urn, web in _CBV_URNS:
            if value.startswith(urn):
                return web + value[len(urn) :]
    prefix, colon, local = value.partition(":")
    if colon and prefix in _CURIES and not local.startswith("//"):
        return _CURIES[prefix] + local
    vocabulary = _VOCABULARY.get(path)
    if vocabulary is not None and ":" not in value:
        return vocabulary + value
    return value


def _canonical_time(text: str) -> str:
    """An ISO 8601 time stamp in UTC at millisecond precision (rounded half up), with `Z`."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    utc = moment.astimezone(datetime.UTC) + datetime.timedelta(microseconds=500)
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _value(name: str, value: object, path: str) -> str:
    return _written(name, _text(value), path)


@lru_cache(maxsize=1 << 16)
def _written(name: str, text: str, path: str) -> str:
    """`name=<canonical text>` of a value's text (cached: an index's events repeat their sites,
    steps, times and keys, and this runs for every value of every event)."""
    text = _canonical_time(text) if name in _TIME_FIELDS else _canonical(_expand(path, text))
    return f"{name}={text}" if text else ""


_NUMBER_START = frozenset("+-.0123456789")


@lru_cache(maxsize=1 << 16)
def _canonical(text: str) -> str:
    """A GS1 key as its canonical Digital Link, a number without trailing zeros, other text as it
    is (each looked at only when it can be one: this runs for every value of every event)."""
    if text[:1] in _NUMBER_START:
        return _numeric(text)
    if text.startswith(("urn:epc:", "http")):
        return gs1_digital_link(text) or text
    return text


# ---------------------------------------------------------------------- the pre-hash string


_LEAVES = frozenset({str, int, float, bool, list})


def _is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    # by type first: the ABC's check is slow, and an event is dicts, lists, strings and numbers
    kind = type(value)
    return kind is dict or (kind not in _LEAVES and isinstance(value, Mapping))


def _children(container: Mapping[str, Any], order: Order, parent: str) -> str:
    """A container's fields in `order`: a value as `name=text`, a list's entries sorted."""
    out = []
    for name, child_order in order:
        if name not in container:
            continue
        value = container[name]
        path = f"{parent}.{name}" if parent else name
        if isinstance(value, list):
            entries = sorted(filter(None, (_entry(name, item, child_order) for item in value)))
            if entries:
                out.append(("" if name in _LIST_NAME_OMITTED else name) + "".join(entries))
        elif _is_mapping(value):
            body = _children(value, child_order or (), name)
            if body:
                out.append(name + body)
        else:
            out.append(_value(name, value, path))
    return "".join(out)


def _entry(list_name: str, item: object, order: Order | None) -> str:
    entry = _ENTRY_NAME.get(list_name)
    if _is_mapping(item):
        body = _children(item, order or (), list_name)
        return (entry or "") + body if body else ""
    return _value(entry or list_name, item, f"{list_name}.{entry or list_name}")


def _extension_name(name: str, namespaces: Mapping[str, str]) -> str:
    prefix, _, local = name.partition(":")
    if local and prefix in namespaces:
        return "{" + namespaces[prefix] + "}" + local
    return name


def _extensions(container: Mapping[str, Any], namespaces: Mapping[str, str]) -> str:
    parts = []
    for name, value in container.items():
        key = _extension_name(name, namespaces)
        if _is_mapping(value):
            parts.append(key + _extensions(value, namespaces))
        elif isinstance(value, list):
            parts.extend(
                key + _extensions(item, namespaces) if _is_mapping(item) else f"{key}={_text(item)}"
                for item in value
            )
        else:
            text = _text(value)
            if type(value) is str or isinstance(value, str):
                text = _canonical(text)
            parts.append(f"{key}={text}" if text else key)
    return "".join(sorted(parts))


_NOT_EXTENSIONS = frozenset(name for name, _ in PROPERTY_ORDER) | NOT_HASHED


def pre_hash(event: Mapping[str, Any], namespaces: Mapping[str, str]) -> str:
    """The CBV 2.0 pre-hash string of an event; `namespaces` maps the extension prefixes it uses
    to their IRIs (the document's `@context`)."""
    extensions = {name: value for name, value in event.items() if name not in _NOT_EXTENSIONS}
    return (
        f"eventType={event['type']}"
        + _children(event, PROPERTY_ORDER, "")
        + _extensions(extensions, namespaces)
    )


def event_hash(event: Mapping[str, Any], namespaces: Mapping[str, str]) -> str:
    """The event's CBV 2.0 event hash ID, `ni:///sha-256;<hex>?ver=CBV2.0`."""
    digest = hashlib.sha256(pre_hash(event, namespaces).encode()).hexdigest()
    return f"ni:///sha-256;{digest}?ver=CBV2.0"
