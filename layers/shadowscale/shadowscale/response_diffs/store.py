"""The response-diff pipeline's S3: capture objects in, state and outputs under diffs/<test>/.

State of one test (see response_diffs/state.py for the protocol):
    <prefix>state/manifest.bin                          the commit point, written with If-Match / If-None-Match
    <prefix>state/windows/<start>-<writer>.bin          immutable window blobs, written before the manifest
    <prefix>state/windows/objects-<hour>-<writer>.bin   immutable processed-object sets, one per capture hour

Blobs are named by the commit attempt that wrote them (a uuid), so a writer that loses the conditional
commit never overwrites a blob the winner's manifest names; its own blobs are deleted by the pipeline
(best effort). One that crashed between its blob writes and its commit leaves them behind: no manifest
names them, nothing reads them, and at most one batch's worth is left per crash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from shadowscale.response_diffs.ports import StoredState
from shadowscale.response_diffs.state import WindowRef
from shadowscale.shared.aws_errors import error_code, raise_domain_error
from shadowscale.shared.diff_contract import DiffConfig, diff_config_key
from shadowscale.shared.errors import CaptureObjectForbidden, DiffStateConflict, DiffStateCorrupt
from shadowscale.shared.s3 import S3Objects
from shadowscale.shared.sdk_features import require_conditional_writes
from shadowscale.shared.stored_bytes import StoredBytes

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


FORBIDDEN_CODES = frozenset({"AccessDenied", "403", "KMS.AccessDeniedException", "KMS.DisabledException"})
# S3 answers a conditional write that lost the race with 412; two racing first writes may see 409.
CONFLICT_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
BINARY = "application/octet-stream"


class S3DiffStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._objects = S3Objects(client)
        self.bucket = bucket
        self._conditional_writes_checked = False

    # --- inputs --------------------------------------------------------------------------------

    def read_capture(self, key: str) -> StoredBytes | None:
        """The object's bytes and ETag; None if it is gone (expired or deleted since the notification).
        Raises CaptureObjectForbidden if S3 will not return it to this function."""
        try:
            return self._objects.get(self.bucket, key)
        except ClientError as exc:
            if error_code(exc) in FORBIDDEN_CODES:
                raise CaptureObjectForbidden(
                    f"s3://{self.bucket}/{key}: {error_code(exc)} (capture encrypted with a KMS key this function"
                    " may not use? grant its role kms:Decrypt)"
                ) from exc
            raise

    def load_config(self, test_id: str) -> DiffConfig | None:
        found = self._objects.get(self.bucket, diff_config_key(test_id))
        if found is None:
            return None
        try:
            return DiffConfig.model_validate_json(found.body)
        except ValueError as exc:
            raise DiffStateCorrupt(f"s3://{self.bucket}/{diff_config_key(test_id)}: {exc}") from exc

    # --- state ---------------------------------------------------------------------------------

    def load_state(self, prefix: str) -> StoredState:
        found = self._objects.get(self.bucket, f"{prefix}state/manifest.bin")
        if found is None:
            return StoredState(manifest=None, version=None)
        return StoredState(manifest=found.body, version=found.etag)

    def load_window(self, prefix: str, ref: WindowRef) -> bytes:
        found = self._objects.get(self.bucket, self._window_key(prefix, ref))
        if found is None:
            raise DiffStateCorrupt(f"the manifest under {prefix} names window {ref.name}, which is not stored")
        return found.body

    def write_windows(self, prefix: str, blobs: dict[WindowRef, bytes]) -> None:
        for ref, blob in blobs.items():
            self.put(self._window_key(prefix, ref), blob, BINARY)

    def commit(self, prefix: str, manifest: bytes, expected_version: str | None) -> None:
        """Write the manifest only if nobody else has since the state was read (raises DiffStateConflict).
        Raises ConfigurationError if this SDK cannot send conditional writes (checked on the first commit)."""
        if not self._conditional_writes_checked:
            require_conditional_writes(self._client.meta.service_model)
            self._conditional_writes_checked = True
        key = f"{prefix}state/manifest.bin"
        try:
            if expected_version:
                self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=manifest, ContentType=BINARY, IfMatch=f'"{expected_version}"'
                )
            else:
                self._client.put_object(Bucket=self.bucket, Key=key, Body=manifest, ContentType=BINARY, IfNoneMatch="*")
        except ClientError as exc:
            if error_code(exc) in CONFLICT_CODES:
                raise DiffStateConflict(f"s3://{self.bucket}/{key} was committed by another writer") from exc
            raise_domain_error(exc, f"PutObject s3://{self.bucket}/{key}")

    def delete_windows(self, prefix: str, refs: tuple[WindowRef, ...]) -> None:
        """Best effort: a blob left behind is never read again (no manifest names it)."""
        for ref in refs:
            try:
                self._client.delete_object(Bucket=self.bucket, Key=self._window_key(prefix, ref))
            except ClientError:
                continue

    # --- outputs -------------------------------------------------------------------------------

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> None:
        self._objects.put(self.bucket, key, body, content_type)

    # -------------------------------------------------------------------------------------------

    @staticmethod
    def _window_key(prefix: str, ref: WindowRef) -> str:
        return f"{prefix}state/windows/{ref.name}.bin"
