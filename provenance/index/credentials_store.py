"""API credentials in the database: random bearer tokens, kept only as their SHA-256.

A token is shown once, when it is created. Authentication hashes the presented token, finds the
credential by that hash and compares the hashes in constant time; a revoked credential never
authenticates again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import IntegrityError

from provenance.domain.credentials import Credential
from provenance.errors import ConfigurationError
from provenance.index.models import Base
from provenance.index.write_models import ApiCredential

TOKEN_PREFIX = "prv_"  # noqa: S105 - a prefix that marks our tokens, not a secret

_credentials = Base.metadata.tables[ApiCredential.__tablename__]
_ACTIVE_BY_DIGEST = select(_credentials).where(
    _credentials.c.token_sha256 == bindparam("digest"), _credentials.c.revoked_at.is_(None)
)
"""Built once: every API request authenticates."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _credential(row: Any) -> Credential:
    revoked = row.revoked_at
    return Credential(
        id=row.id,
        name=row.name,
        account=row.account,
        key_ref=row.key_ref,
        revoked_at=None if revoked is None else revoked.isoformat(),
    )


class CredentialStore:
    """Creates, authenticates and revokes API credentials."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, account: str, key_ref: str) -> tuple[str, str]:
        """A new credential for `account`, signed for by the key `key_ref`; returns (id, token).

        The token is returned only here; the database keeps its SHA-256.
        """
        if not name or len(name) > 64:
            raise ConfigurationError("a credential name has 1 to 64 characters")
        credential_id = str(uuid.uuid4())
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    _credentials.insert().values(
                        id=credential_id,
                        name=name,
                        token_sha256=token_digest(token),
                        account=account,
                        key_ref=key_ref,
                        created_at=datetime.now(UTC),
                        revoked_at=None,
                    )
                )
        except IntegrityError:
            raise ConfigurationError(f"a credential named {name!r} exists already") from None
        return credential_id, token

    def authenticate(self, token: str) -> Credential | None:
        """The active credential whose token this is, or None."""
        digest = token_digest(token)
        with self.engine.connect() as connection:
            row = connection.execute(_ACTIVE_BY_DIGEST, {"digest": digest}).first()
        if row is None or not hmac.compare_digest(row.token_sha256, digest):
            return None
        return _credential(row)

    def revoke(self, name: str) -> bool:
        """Revokes the credential `name`; False if there is no active credential of that name."""
        with self.engine.begin() as connection:
            result = connection.execute(
                _credentials.update()
                .where(_credentials.c.name == name, _credentials.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        return bool(result.rowcount)

    def by_name(self, name: str) -> Credential | None:
        """The credential `name`, revoked or not (see `Credential.active`)."""
        with self.engine.connect() as connection:
            row = connection.execute(select(_credentials).where(_credentials.c.name == name)).first()
        return None if row is None else _credential(row)

    def by_account(self, account: str) -> Credential | None:
        """The oldest active credential of `account` (case-insensitive): whose key signs for it."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(_credentials)
                .where(_credentials.c.revoked_at.is_(None))
                .order_by(_credentials.c.created_at, _credentials.c.id)
            ).all()
        return next((_credential(row) for row in rows if row.account.lower() == account.lower()), None)

    def by_id(self, credential_id: str) -> Credential | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(_credentials).where(_credentials.c.id == credential_id)).first()
        return None if row is None else _credential(row)

    def all(self) -> list[Credential]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(_credentials).order_by(_credentials.c.name)).all()
        return [_credential(row) for row in rows]
