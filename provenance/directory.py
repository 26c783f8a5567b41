"""Where sites and faces lie, and who the organisations behind addresses are: the operator's optional
`directory.json` in the data directory (docs/pages.md). The chain records neither a place nor an
organisation. Read by the pages (`api.pages.directory`) and by the data hub publisher
(`provenance.deliveries.hub`), so it lives here, below both.

    {
      "sites": {"SH2": {"name": "Jangseong mine, shaft 2", "lat": 37.2042, "lon": 129.0131,
                        "faces": {"SH2-F1": {"lat": 37.2050, "lon": 129.0120}}}},
      "organisations": {"0x70997970c51812dc3a010c7d01b50e0d17dc79c8": "KIGAM assay laboratory"}
    }

A face without a place of its own is at its site's. A missing file means no places and no
organisations; a malformed one is logged and read as missing.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DIRECTORY_FILE = "directory.json"


@dataclass(frozen=True)
class Place:
    latitude: float
    longitude: float

    @property
    def text(self) -> str:
        """As printed on a certificate: 37.20420° N, 129.01310° E."""
        north = "N" if self.latitude >= 0 else "S"
        east = "E" if self.longitude >= 0 else "W"
        return f"{abs(self.latitude):.5f}° {north}, {abs(self.longitude):.5f}° {east}"


@dataclass(frozen=True)
class Directory:
    site_places: Mapping[str, Place] = field(default_factory=dict)
    face_places: Mapping[tuple[str, str], Place] = field(default_factory=dict)
    site_names: Mapping[str, str] = field(default_factory=dict)
    organisations: Mapping[str, str] = field(default_factory=dict)
    """Lower-case address -> organisation."""

    def place(self, site: str, face: str | None) -> Place | None:
        if face is not None and (site, face) in self.face_places:
            return self.face_places[(site, face)]
        return self.site_places.get(site)


def _place(entry: Mapping[str, Any]) -> Place | None:
    latitude, longitude = entry.get("lat"), entry.get("lon")
    if not isinstance(latitude, int | float) or not isinstance(longitude, int | float):
        return None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180) or not math.isfinite(latitude + longitude):
        return None
    return Place(float(latitude), float(longitude))


def parse_directory(document: Any) -> Directory:
    """The directory from the file's JSON; entries of the wrong shape are left out."""
    if not isinstance(document, dict):
        return Directory()
    site_places: dict[str, Place] = {}
    face_places: dict[tuple[str, str], Place] = {}
    site_names: dict[str, str] = {}
    sites = document.get("sites")
    for site, entry in (sites if isinstance(sites, dict) else {}).items():
        if not isinstance(entry, dict):
            continue
        if (place := _place(entry)) is not None:
            site_places[site] = place
        if isinstance(entry.get("name"), str):
            site_names[site] = entry["name"]
        faces = entry.get("faces")
        for face, face_entry in (faces if isinstance(faces, dict) else {}).items():
            if isinstance(face_entry, dict) and (place := _place(face_entry)) is not None:
                face_places[(site, face)] = place
    organisations = document.get("organisations")
    return Directory(
        site_places,
        face_places,
        site_names,
        {
            address.lower(): name
            for address, name in (organisations if isinstance(organisations, dict) else {}).items()
            if isinstance(name, str)
        },
    )


@lru_cache(maxsize=4)
def _read(path: Path, _mtime_ns: int) -> Directory:
    try:
        return parse_directory(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        log.warning("%s is not a readable directory (%s): no places or organisations", path, error)
        return Directory()


def directory_stamp(data_dir: Path) -> int | None:
    """When `directory.json` last changed (None: there is none), for what is kept of pages."""
    try:
        return (data_dir / DIRECTORY_FILE).stat().st_mtime_ns
    except OSError:
        return None


def load_directory(data_dir: Path) -> Directory:
    """The data directory's `directory.json`, read again only when it changes."""
    path = data_dir / DIRECTORY_FILE
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return Directory()
    return _read(path, mtime)
