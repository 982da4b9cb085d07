"""An object's bytes and its ETag, as a store hands them back: a value, with no AWS in it (the S3 adapter is
shared.s3; ports name this type, so they stay free of the SDK)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredBytes:
    """An object's bytes and its (unquoted) ETag."""

    body: bytes
    etag: str
