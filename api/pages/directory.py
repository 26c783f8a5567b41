"""Who and where, for the pages: the names of the accounts and devices behind addresses, and where
sites and faces lie.

Names come from what the system already knows: an API credential's name (`provenance accounts
create --name`) for an account, and a device's kind and site from the registry's `DeviceAdded` (the
index's `devices`). The chain records neither an organisation nor a place, so both come from an
optional file the operator writes, `directory.json` in the data directory:

    {
      "sites": {"SH2": {"name": "Jangseong mine, shaft 2", "lat": 37.2042, "lon": 129.0131,
                        "faces": {"SH2-F1": {"lat": 37.2050, "lon": 129.0120}}}},
      "organisations": {"0x70997970c51812dc3a010c7d01b50e0d17dc79c8": "KIGAM assay laboratory"}
    }

A face without a place of its own is drawn at its site's. A missing file means no places and no
organisations; a malformed one is logged and read as missing (a page never fails for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from provenance.directory import (
    DIRECTORY_FILE,
    Directory,
    Place,
    directory_stamp,
    load_directory,
    parse_directory,
)
from provenance.domain.credentials import Credential
from provenance.domain.devices import DeviceFact

__all__ = [
    "DIRECTORY_FILE",
    "Directory",
    "Parties",
    "Party",
    "Place",
    "directory_stamp",
    "load_directory",
    "parse_directory",
]
"""The directory itself is read in `provenance.directory` (the data hub publisher reads it too)."""


# ---------------------------------------------------------------------- parties


@dataclass(frozen=True)
class Party:
    """Whoever is behind an address, as far as the system knows."""

    address: str
    kind: str
    """"account" (a credential names it), "device" (a registered device) or "unknown"."""
    name: str | None = None
    organisation: str | None = None
    device_kind: str | None = None
    device_site: str | None = None


class Parties:
    """Names addresses: a device first (the registry says what it is), then an account's credential."""

    def __init__(
        self,
        credentials: Iterable[Credential],
        devices: Mapping[str, DeviceFact],
        organisations: Mapping[str, str],
    ) -> None:
        names: dict[str, str] = {}
        # an active credential names an account before a revoked one; of equals, the first by name
        for credential in sorted(credentials, key=lambda c: (not c.active, c.name)):
            names.setdefault(credential.account.lower(), credential.name)
        self._names = names
        self._devices = {address.lower(): device for address, device in devices.items()}
        self._organisations = organisations

    def of(self, address: str) -> Party:
        key = address.lower()
        organisation = self._organisations.get(key)
        device = self._devices.get(key)
        if device is not None:
            return Party(
                address,
                "device",
                self._names.get(key),
                organisation,
                device_kind=device.kind,
                device_site=device.site,
            )
        if key in self._names:
            return Party(address, "account", self._names[key], organisation)
        return Party(address, "unknown", None, organisation)
