"""API credentials as the rest of the package sees them: who is calling, and which chain account
signs for them. The token itself is never here; the index keeps only its SHA-256."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Credential:
    """One API credential, mapped to one chain account; `key_ref` names the key (a development key
    name or a keystore path), never the key itself."""

    id: str
    name: str
    account: str
    key_ref: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
