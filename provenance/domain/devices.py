"""Devices as the index knows them: a site's measuring devices (truck scales) and their history."""

from __future__ import annotations

from dataclasses import dataclass

from provenance.domain.trace import Coordinates


@dataclass(frozen=True)
class DeviceFact:
    device: str
    site: str
    kind: str
    added_by: str
    active: bool
    added: Coordinates
    revoked_by: str | None = None
    revoked: Coordinates | None = None
