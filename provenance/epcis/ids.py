"""How a deployment names its lots, sites, faces, parties and methods in EPCIS events.

Two schemes, chosen per deployment (settings `PROVENANCE_EPCIS_GS1_*`, docs/epcis.md "Identifiers"):

* **GS1 identifiers**, when the operator has a GS1 company prefix: a lot is an LGTIN (the GTIN of
  its commodity, from a configured item reference, plus its lot number, GS1 AI (10)); a site is an
  SGLN (the operator's GLN plus the site as its extension, AI (254)), a face the SGLN of
  `<site>/<face>`; a party a PGLN where one is configured for its account. Written as GS1 Digital
  Link URIs on the deployment's own public URL (`https://<public url>/01/<gtin>/10/<lot>`) or as
  EPC URNs (`urn:epc:class:lgtin:…`).
* **URIs under the deployment's public URL** otherwise (and for what has no GS1 key: a lot of a
  commodity with no item reference, an account with no PGLN, assay methods, transformations): a
  lot is its page, `<public url>/lots/<lot id>`; the rest `<public url>/id/<kind>/<label>`.

Lot numbers and GLN extensions are at most 20 characters of GS1's character set 82 (GS1 General
Specifications 7.11, AI (10) and (254)). Our labels are up to 32 characters of `A-Z a-z 0-9 . _ :
/ -`: a label of at most 19 characters of `A-Z a-z 0-9 . _ -` is its own lot number; any other is
`<its first 8 characters, others as "-">=<11 characters of the base64url SHA-256 of the label>`
(at most 20 characters; `=` is in set 82 but never in a label, so no label is mistaken for another's
number, and the tools that canonicalise Digital Links keep it as it is). Such a number names its
label only with a look-up (`LotNumber`), which the index answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from provenance.epcis.hash import check_digit, gs1_digital_link

Form = Literal["digital_link", "epc_urn"]
EPC_FORMATS = ("No_Preference", "Always_GS1_Digital_Link", "Always_EPC_URN", "Never_Translates")

_PLAIN_NUMBER = re.compile(r"[A-Za-z0-9._-]{1,19}")
_MAPPED_NUMBER = re.compile(r"[A-Za-z0-9._-]{1,8}=[A-Za-z0-9_-]{11}")
_URI_SAFE = "-._~"


class IdentifierConfigError(ValueError):
    """A setting of the identifier scheme that cannot be used (names the setting)."""

    def __init__(self, setting: str, detail: str) -> None:
        super().__init__(f"{setting}: {detail}")
        self.setting = setting


def gs1_number(label: str) -> str:
    """The AI (10) lot number or AI (254) extension of a label (see the module's docstring)."""
    if _PLAIN_NUMBER.fullmatch(label):
        return label
    head = re.sub(r"[^A-Za-z0-9._-]", "-", label[:8])
    digest = base64.urlsafe_b64encode(hashlib.sha256(label.encode()).digest()).decode()[:11]
    return f"{head}={digest}"


@dataclass(frozen=True)
class LotNumber:
    """A GS1 lot number that names one of our lots only through a look-up: the lots whose id
    starts with `prefix` and maps to `number`."""

    number: str

    def prefixes(self) -> list[str]:
        """What the ids mapped to this number may start with: its head, each `-` read as `-`, `/`
        or `:` (the characters a number cannot hold became `-`)."""
        head = self.number.partition("=")[0]
        found = [""]
        for char in head:
            found = [start + option for start in found for option in ("-/:" if char == "-" else char)]
        return found

    def names(self, lot_id: str) -> bool:
        return gs1_number(lot_id) == self.number


LotName = str | LotNumber
"""A lot a URI names: its id, or a lot number to look up."""


@dataclass(frozen=True)
class Gs1Keys:
    """The operator's GS1 keys: company prefix, item reference per commodity, the GLN's location
    reference, and the PGLNs of accounts."""

    company_prefix: str
    item_references: tuple[tuple[str, str], ...] = ()
    """(commodity, indicator digit + item reference): 13 - len(company_prefix) digits."""
    location_reference: str = ""
    """The operator's GLN without prefix and check digit: 12 - len(company_prefix) digits (all
    zeros if not given)."""
    party_glns: tuple[tuple[str, str], ...] = ()
    """(account address in lower case, its 13-digit PGLN)."""

    def __post_init__(self) -> None:
        prefix = self.company_prefix
        if not re.fullmatch(r"\d{6,12}", prefix):
            raise IdentifierConfigError("epcis_gs1_company_prefix", "must be 6 to 12 digits")
        if not self.location_reference:
            object.__setattr__(self, "location_reference", "0" * (12 - len(prefix)))
        for commodity, reference in self.item_references:
            if not re.fullmatch(rf"\d{{{13 - len(prefix)}}}", reference):
                raise IdentifierConfigError(
                    "epcis_gs1_item_references",
                    f"{commodity}: an indicator digit and item reference of {13 - len(prefix)} digits "
                    f"in all (a GTIN-14 less the {len(prefix)}-digit company prefix and the check digit)",
                )
        if not re.fullmatch(rf"\d{{{12 - len(prefix)}}}", self.location_reference):
            raise IdentifierConfigError(
                "epcis_gs1_location_reference",
                f"must be {12 - len(prefix)} digits (the GLN less the company prefix and check digit)",
            )
        for address, gln in self.party_glns:
            if not re.fullmatch(r"\d{13}", gln) or check_digit(gln[:12]) != gln[12]:
                raise IdentifierConfigError("epcis_gs1_party_glns", f"{address}: {gln!r} is not a GLN")

    def gtin(self, commodity: str) -> str | None:
        reference = dict(self.item_references).get(commodity)
        if reference is None:
            return None
        digits = reference[:1] + self.company_prefix + reference[1:]
        return digits + check_digit(digits)

    @property
    def gln(self) -> str:
        digits = self.company_prefix + self.location_reference
        return digits + check_digit(digits)


@dataclass(frozen=True)
class IdentifierScheme:
    """A deployment's identifiers: `base_url` is its public URL (no trailing slash), the resolver
    of its Digital Links and the root of its other URIs."""

    base_url: str
    gs1: Gs1Keys | None = None
    form: Form = "digital_link"
    _commodity_by_gtin: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise IdentifierConfigError("public_url", f"{self.base_url!r} is not an http(s) base URL")
        if self.base_url.endswith("/"):
            object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.gs1 is not None:
            for commodity, _ in self.gs1.item_references:
                gtin = self.gs1.gtin(commodity)
                assert gtin is not None
                self._commodity_by_gtin[gtin] = commodity

    # ------------------------------------------------------------------ naming

    @property
    def needs_commodities(self) -> bool:
        """Whether naming a lot needs its commodity (its GTIN does)."""
        return self.gs1 is not None and bool(self.gs1.item_references)

    def lot(self, lot_id: str, commodity: str | None = None) -> str:
        gtin = None if self.gs1 is None or commodity is None else self.gs1.gtin(commodity)
        if gtin is None or self.gs1 is None:
            return f"{self.base_url}/lots/{quote(lot_id, safe=_URI_SAFE)}"
        number = gs1_number(lot_id)
        if self.form == "epc_urn":
            split = len(self.gs1.company_prefix)
            return f"urn:epc:class:lgtin:{gtin[1 : 1 + split]}.{gtin[0]}{gtin[1 + split : 13]}.{number}"
        return f"{self.base_url}/01/{gtin}/10/{number}"

    def _sgln(self, extension: str) -> str:
        assert self.gs1 is not None
        if self.form == "epc_urn":
            split = len(self.gs1.company_prefix)
            gln = self.gs1.gln
            return f"urn:epc:id:sgln:{gln[:split]}.{gln[split:12]}.{extension}"
        return f"{self.base_url}/414/{self.gs1.gln}/254/{extension}"

    def site(self, site: str) -> str:
        if self.gs1 is None:
            return f"{self.base_url}/id/sites/{quote(site, safe=_URI_SAFE)}"
        return self._sgln(gs1_number(site))

    def face(self, site: str, face: str) -> str:
        if self.gs1 is None:
            return (
                f"{self.base_url}/id/sites/{quote(site, safe=_URI_SAFE)}/faces/{quote(face, safe=_URI_SAFE)}"
            )
        return self._sgln(gs1_number(f"{site}/{face}"))

    def party(self, address: str) -> str:
        gln = None if self.gs1 is None else dict(self.gs1.party_glns).get(address.lower())
        if gln is None or self.gs1 is None:
            return f"{self.base_url}/id/accounts/{address}"
        if self.form == "epc_urn":
            split = len(self.gs1.company_prefix)
            return f"urn:epc:id:pgln:{gln[:split]}.{gln[split:12]}"
        return f"{self.base_url}/417/{gln}"

    def method(self, method: str) -> str:
        return f"{self.base_url}/id/methods/{quote(method, safe=_URI_SAFE)}"

    def transformation(self, chain_id: int, registry: str, transform_id: int) -> str:
        return f"{self.base_url}/id/transformations/{chain_id}-{registry}-{transform_id}"

    # ------------------------------------------------------------------ reading

    def parse_lot(self, uri: str) -> LotName | None:
        """The lot a URI names in any form a client may send: our lot URL, an LGTIN as EPC URN or
        as Digital Link on any resolver (ours, id.gs1.org, …). None for anything else."""
        label = self._parse_url(uri, "/lots/")
        if label is not None:
            return label
        if self.gs1 is None:
            return None
        canonical = gs1_digital_link(uri)
        match = re.fullmatch(r"https://id\.gs1\.org/01/(\d{14})/10/(.+)", canonical or "")
        if match is None or match.group(1) not in self._commodity_by_gtin:
            return None
        number = unquote(match.group(2))
        if _PLAIN_NUMBER.fullmatch(number):
            return number
        return LotNumber(number) if _MAPPED_NUMBER.fullmatch(number) else None

    def parse_site(self, uri: str) -> LotName | None:
        """The site a business location URI names (a `LotNumber` for a mapped extension)."""
        label = self._parse_url(uri, "/id/sites/")
        if label is not None:
            # a face is <site>/faces/<face>: a site's own "/" is percent-encoded
            return None if "/" in uri[len(self.base_url + "/id/sites/") :] else label
        if self.gs1 is None:
            return None
        canonical = gs1_digital_link(uri)
        match = re.fullmatch(rf"https://id\.gs1\.org/414/{self.gs1.gln}/254/(.+)", canonical or "")
        if match is None:
            return None
        number = unquote(match.group(1))
        if _PLAIN_NUMBER.fullmatch(number):
            return number
        return LotNumber(number) if _MAPPED_NUMBER.fullmatch(number) else None

    def parse_party(self, uri: str) -> str | None:
        label = self._parse_url(uri, "/id/accounts/")
        if label is not None or self.gs1 is None:
            return label
        canonical = gs1_digital_link(uri) or ""
        for address, gln in self.gs1.party_glns:
            if canonical == f"https://id.gs1.org/417/{gln}":
                return address
        return None

    def parse_method(self, uri: str) -> str | None:
        return self._parse_url(uri, "/id/methods/")

    def parse_transformation(self, uri: str) -> int | None:
        label = self._parse_url(uri, "/id/transformations/")
        tail = (label or "").rpartition("-")[2]
        return int(tail) if tail.isdigit() else None

    def _parse_url(self, uri: str, path: str) -> str | None:
        prefix = self.base_url + path
        if not uri.startswith(prefix) or len(uri) == len(prefix) or "?" in uri or "#" in uri:
            return None
        return unquote(uri[len(prefix) :])

    # ------------------------------------------------------------------ GS1-EPC-Format

    def translated_form(self, requested: str | None) -> tuple[Form | None, str]:
        """What a `GS1-EPC-Format` request gets: the form to write GS1 keys in (None: as they
        are) and the header value answered."""
        if self.gs1 is None:
            return None, "Never_Translates"
        if requested == "Always_EPC_URN":
            return "epc_urn", requested
        if requested in (None, "No_Preference", "Always_GS1_Digital_Link"):
            wanted: Form = "digital_link" if requested == "Always_GS1_Digital_Link" else self.form
            return wanted, requested or "No_Preference"
        return None, "Never_Translates"

    def translate(self, uri: str, form: Form) -> str:
        """One of our GS1 keys in `form` (anything else as it is)."""
        if self.gs1 is None:
            return uri
        canonical = gs1_digital_link(uri)
        if canonical is None:
            return uri
        path = canonical[len("https://id.gs1.org") :]
        prefix = self.gs1.company_prefix
        split = len(prefix)
        parts = path.strip("/").split("/")
        if form == "digital_link":
            return self.base_url + path if uri.startswith("urn:epc:") and self._ours(parts) else uri
        if not self._ours(parts) or uri.startswith("urn:"):
            return uri
        key, value = parts[0], parts[1]
        if key == "01" and len(parts) == 4 and parts[2] == "10":
            return f"urn:epc:class:lgtin:{value[1 : 1 + split]}.{value[0]}{value[1 + split : 13]}.{unquote(parts[3])}"
        if key == "414":
            extension = unquote(parts[3]) if len(parts) == 4 else "0"
            return f"urn:epc:id:sgln:{value[:split]}.{value[split:12]}.{extension}"
        if key == "417":
            return f"urn:epc:id:pgln:{value[:split]}.{value[split:12]}"
        return uri

    def _ours(self, parts: list[str]) -> bool:
        assert self.gs1 is not None
        if len(parts) < 2:
            return False
        key, value = parts[0], parts[1]
        if key == "01":
            return value[1:].startswith(self.gs1.company_prefix)
        return key in ("414", "417") and value.startswith(self.gs1.company_prefix)

    # ------------------------------------------------------------------ change detection

    def fingerprint(self) -> str:
        """Changes whenever any identifier an event is written with would: stored eventIDs made
        under another fingerprint are stale."""
        shape = {
            "base_url": self.base_url,
            "form": self.form,
            "gs1": None
            if self.gs1 is None
            else {
                "company_prefix": self.gs1.company_prefix,
                "item_references": sorted(self.gs1.item_references),
                "location_reference": self.gs1.location_reference,
                "party_glns": sorted(self.gs1.party_glns),
            },
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:32]


def pairs(text: str | None, setting: str) -> tuple[tuple[str, str], ...]:
    """`NAME=VALUE,NAME=VALUE` as pairs (a setting's text)."""
    if text is None or not text.strip():
        return ()
    found = []
    for item in text.split(","):
        name, equals, value = (part.strip() for part in item.partition("="))
        if not equals or not name or not value:
            raise IdentifierConfigError(setting, f"{item.strip()!r} is not NAME=VALUE")
        found.append((name, value))
    return tuple(found)


def scheme_of(
    public_url: str | None,
    fallback_url: str,
    company_prefix: str | None = None,
    item_references: str | None = None,
    location_reference: str | None = None,
    party_glns: str | None = None,
    form: Form = "digital_link",
) -> IdentifierScheme:
    """The scheme from a deployment's settings (IdentifierConfigError naming the setting)."""
    gs1 = None
    if company_prefix:
        gs1 = Gs1Keys(
            company_prefix,
            pairs(item_references, "epcis_gs1_item_references"),
            location_reference or "0" * max(0, 12 - len(company_prefix)),
            tuple((address.lower(), gln) for address, gln in pairs(party_glns, "epcis_gs1_party_glns")),
        )
    elif item_references or location_reference or party_glns:
        raise IdentifierConfigError("epcis_gs1_company_prefix", "is needed by the other epcis_gs1_ settings")
    return IdentifierScheme((public_url or fallback_url).rstrip("/"), gs1, form)


LOCAL_SCHEME = IdentifierScheme("http://127.0.0.1:8000")
"""The scheme of a deployment with default settings (no public URL: its own listening address)."""


def translated(value: Any, scheme: IdentifierScheme, form: Form) -> Any:
    """`value` (an event, or any part of one) with each of our GS1 keys written in `form`."""
    if isinstance(value, str):
        return scheme.translate(value, form)
    if isinstance(value, list):
        return [translated(item, scheme, form) for item in value]
    if isinstance(value, dict):
        return {name: translated(item, scheme, form) for name, item in value.items()}
    return value
