"""The shadow test's objects in the stack's data bucket (its ObjectStore port), over S3."""

from __future__ import annotations

import json
from datetime import datetime

from shadowscale.shadow_tests.bucket_layout import diff_summary_key
from shadowscale.shadow_tests.models import DiffSummary, ShadowTestReport
from shadowscale.shared.diff_contract import DiffConfig, diff_config_key
from shadowscale.shared.s3 import S3Objects

JSON = "application/json"


class DataBucketObjects:
    def __init__(self, objects: S3Objects) -> None:
        self._objects = objects

    def put_diff_config(self, bucket: str, config: DiffConfig) -> None:
        body = config.model_dump_json(by_alias=True).encode()
        self._objects.put(bucket, diff_config_key(config.shadow_test), body, JSON)

    def diff_summary(self, bucket: str, test_id: str) -> DiffSummary | None:
        document = self._objects.get_json(bucket, diff_summary_key(test_id))
        return DiffSummary.of(document) if document is not None else None

    def put_report(self, bucket: str, key: str, report: ShadowTestReport, html: str) -> None:
        self._objects.put(bucket, f"{key}.json", report.model_dump_json(by_alias=True, indent=2).encode(), JSON)
        self._objects.put(bucket, f"{key}.html", html.encode(), "text/html; charset=utf-8")

    def mark_notified(self, bucket: str, key: str, at: datetime, by: str) -> None:
        self._objects.put(bucket, key, json.dumps({"at": at.isoformat(), "by": by}).encode(), JSON)

    def exists(self, bucket: str, key: str) -> bool:
        return self._objects.get(bucket, key) is not None
