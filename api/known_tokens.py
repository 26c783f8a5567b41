"""Write tokens seen to be valid lately, so a write need not look its credential up first.

Every write looked its bearer token up in the database before anything else, in a hop to the
thread pool of its own, which under many concurrent writers waited on threads and the GIL for a
large share of a write's time (docs/benchmarks.md, "Profiles behind the code"). A write whose
token is known skips it. Revocation still takes effect at once: the outbox stores a write
only if its credential is active in the same database transaction (`CredentialInactive`, a 401),
and that credential is then forgotten here. Reads always look their token up.

Keyed by the token's SHA-256, as the database keeps it; never the token itself.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from provenance.domain.credentials import Credential
from provenance.index.credentials_store import token_digest

TTL_S = 60.0
MAX_TOKENS = 4096


class KnownTokens:
    def __init__(self, ttl_s: float = TTL_S, max_tokens: int = MAX_TOKENS) -> None:
        self._ttl_s = ttl_s
        self._max_tokens = max_tokens
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[Credential, float]] = OrderedDict()

    def get(self, token: str) -> Credential | None:
        digest = token_digest(token)
        with self._lock:
            entry = self._known.get(digest)
            if entry is None:
                return None
            credential, expires = entry
            if expires < time.monotonic():
                del self._known[digest]
                return None
            return credential

    def put(self, token: str, credential: Credential) -> None:
        with self._lock:
            self._known[token_digest(token)] = (credential, time.monotonic() + self._ttl_s)
            while len(self._known) > self._max_tokens:
                self._known.popitem(last=False)

    def forget(self, credential_id: str) -> None:
        """Drops every token of a credential found revoked."""
        with self._lock:
            for digest in [
                key for key, (credential, _) in self._known.items() if credential.id == credential_id
            ]:
                del self._known[digest]
