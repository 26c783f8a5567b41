"""Off-chain documents, stored by content: the file's name is its SHA-256, the hash the chain anchors.

Content addressing makes a store idempotent (the same bytes uploaded twice are one file) and
self-verifying (anyone can re-hash a download and compare it with the anchored hash). A write goes
to a temporary file in the same directory first and is renamed into place, so a reader never sees
half a document and a crash leaves at most a stray temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from provenance.errors import ProvenanceError

_SHA256 = re.compile(r"[0-9a-f]{64}")


class DocumentTooLarge(ProvenanceError):
    """A document over the configured size limit; nothing was stored."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"the document is larger than the limit of {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


@dataclass(frozen=True)
class StoredDocument:
    sha256: str
    """Lower-case hex, no 0x: the file's name."""
    size_bytes: int

    @property
    def anchor_hash(self) -> str:
        """The 0x-hex bytes32 the registry anchors."""
        return "0x" + self.sha256


class DocumentStore:
    """Documents under `directory/<first two hex digits>/<sha256>`, each at most `max_bytes` long."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    def put(self, chunks: Iterable[bytes]) -> StoredDocument:
        """Stores the bytes of `chunks`; raises DocumentTooLarge past `max_bytes` (storing nothing)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".upload-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DocumentTooLarge(self.max_bytes)
                    digest.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            stored = StoredDocument(digest.hexdigest(), size)
            target = self._path(stored.sha256)
            target.parent.mkdir(exist_ok=True)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return stored

    def find(self, sha256: str) -> Path | None:
        """The stored file with this hash (hex, with or without 0x, any case), or None."""
        normalized = sha256.lower().removeprefix("0x")
        if not _SHA256.fullmatch(normalized):
            return None
        path = self._path(normalized)
        return path if path.is_file() else None

    def _path(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256
