"""Objects in the data bucket: JSON documents and bytes with their ETags."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shadowscale.shared.aws_errors import error_code, raise_domain_error
from shadowscale.shared.stored_bytes import StoredBytes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Objects:
    def __init__(self, client: S3Client) -> None:
        self._client = client

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> str:
        try:
            self._client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except ClientError as exc:
            raise_domain_error(exc, f"PutObject s3://{bucket}/{key}")
        return f"s3://{bucket}/{key}"

    def get(self, bucket: str, key: str) -> StoredBytes | None:
        """The object's bytes and (unquoted) ETag; None if there is no such key. Errors S3 gives for
        anything else are mapped (raise_domain_error) or propagate as they are (e.g. AccessDenied)."""
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
            return StoredBytes(body=response["Body"].read(), etag=response["ETag"].strip('"'))
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                return None
            raise_domain_error(exc, f"GetObject s3://{bucket}/{key}")

    def get_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        found = self.get(bucket, key)
        if found is None:
            return None
        loaded: dict[str, Any] = json.loads(found.body)
        return loaded
