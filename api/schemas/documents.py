"""Documents anchored to lots."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas.operations import OperationOut


class DocumentOut(BaseModel):
    sha256: str = Field(
        description="Hex SHA-256 of the content: its name in the store, and the anchored hash."
    )
    document_hash: str = Field(description="The same hash as the 0x-hex bytes32 the registry anchors.")
    size_bytes: int
    lot_id: str
    kind: str
    url: str


class DocumentUploadOut(BaseModel):
    document: DocumentOut
    operation: OperationOut
