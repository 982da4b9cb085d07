"""The backfill's S3 beyond the pipeline's store (store.py): delimiter listings of the capture's hour
folders, the keys of one hour folder, and its own partial summaries read back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from shadowscale.shared.aws_errors import raise_domain_error
from shadowscale.shared.s3 import S3Objects

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class S3BackfillStorage:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._objects = S3Objects(client)
        self.bucket = bucket

    def folders(self, prefix: str) -> list[str]:
        """CommonPrefixes under `prefix` with Delimiter "/": one request per 1,000 folders."""
        return self._listed(prefix, "CommonPrefixes", "Prefix", Delimiter="/")

    def keys(self, prefix: str) -> list[str]:
        return self._listed(prefix, "Contents", "Key")

    def _listed(self, prefix: str, entries: str, name: str, **options: str) -> list[str]:
        """`name` of every entry of `entries` in each ListObjectsV2 page under `prefix`."""
        found: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, **options):  # type: ignore[arg-type]
                listed: list[dict[str, Any]] = cast(dict[str, Any], page).get(entries, [])
                found.extend(entry[name] for entry in listed if name in entry)
        except ClientError as exc:
            raise_domain_error(exc, f"ListObjectsV2 s3://{self.bucket}/{prefix}")
        return found

    def read(self, key: str) -> bytes | None:
        found = self._objects.get(self.bucket, key)
        return found.body if found is not None else None
