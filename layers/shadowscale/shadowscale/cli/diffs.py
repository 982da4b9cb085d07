"""`shadowscale diffs ...`: read a shadow test's response diffs, and diff its capture again (backfill).
Everything goes through the stack's outputs and public APIs: the same commands work against AWS and the
local cloud (`--endpoint-url`). The click options live in cli.main."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from shadowscale.cli.errors import NotFound
from shadowscale.cli.policy_wiring import DeployedOutputs
from shadowscale.response_diffs.models import RunningDiffSummary
from shadowscale.shared.diff_contract import diffs_prefix
from shadowscale.shared.errors import InvalidShadowTestInput
from shadowscale.shared.validation import field_problems

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


class DiffStackOutputs(DeployedOutputs):
    CaptureBackfillStateMachineArn: str
    DataBucketName: str


ClientFactory = Callable[[argparse.Namespace, str], Any]


def describe_summary(summary: RunningDiffSummary) -> str:
    """A few readable lines: what was paired, how it agreed, one disagreement."""
    unpaired = ", ".join(f"{count} {reason}" for reason, count in sorted(summary.unpaired.items())) or "none"
    paired_by = ", ".join(f"{count} by {key}" for key, count in sorted(summary.paired_by.items())) or "-"
    stats = summary.abs_diff_stats
    # Live, unlike a report's copy: the count a report or a gate shows is this one as it was then.
    state = (
        f"final as of {summary.updated_at.isoformat()}"
        if summary.final
        else f"open as of {summary.updated_at.isoformat()} ({summary.pending} halves wait for a twin)"
    )
    lines = [
        f"  {summary.records_read} capture records: {summary.paired} pairs ({paired_by}); unpaired {unpaired};"
        f" {summary.quarantined_total} quarantined; {state}",
        f"  exact match {_percent(summary.exact_match_rate)},"
        f" within tolerance {_percent(summary.within_tolerance_rate)}"
        + (f", labels agree {_percent(summary.label_agreement_rate)}" if summary.labels.compared else "")
        + (f"; |difference| p95 {stats.p95:.4g}, max {stats.max:.4g}" if stats.count else ""),
    ]
    fields = ", ".join(f"{field.path} ({field.pairs})" for field in summary.most_differing_fields[:5])
    if fields:
        lines.append(f"  most differing fields: {fields}")
    if summary.mismatch_samples:
        sample = summary.mismatch_samples[0]
        lines.append(
            f"  e.g. input {sample.input[:40]}…: production {sample.production_output[:60]!r},"
            f" shadow {sample.shadow_output[:60]!r}"
        )
    return "\n".join(lines)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


class DiffCommands:
    def __init__(self, args: argparse.Namespace, client: ClientFactory, out: Callable[[str], None] = print) -> None:
        self._args = args
        self._client = client
        self._out = out

    def client(self, service: str) -> Any:  # noqa: ANN401
        return self._client(self._args, service)

    def outputs(self) -> DiffStackOutputs:
        return DiffStackOutputs.from_stack(self.client("cloudformation"), self._args.stack_name)

    def show(self) -> int:
        key = f"{diffs_prefix(self._args.test_id, self._args.backfill)}summary.json"
        bucket = self.outputs().DataBucketName
        s3 = self.client("s3")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey as exc:
            run = f"backfill run {self._args.backfill!r} of " if self._args.backfill else ""
            raise NotFound(
                f"no response-diff summary for {run}shadow test {self._args.test_id!r} (s3://{bucket}/{key}): "
                "is the name right, and did the test capture and pair anything yet?"
            ) from exc
        if self._args.output == "json":
            self._out(json.dumps(json.loads(body), indent=2, sort_keys=True))
            return 0
        summary = RunningDiffSummary.model_validate_json(body)
        self._out(
            f"{self._args.test_id} on {summary.endpoint}: {summary.production_variant} vs {summary.shadow_variant}"
        )
        self._out(describe_summary(summary))
        return 0

    def backfill(self) -> int:
        document: dict[str, Any] = {
            "testId": self._args.test_id,
            "run": self._args.run_name or f"run-{datetime.now(UTC):%Y%m%d-%H%M%S}",
        }
        for field, value in (("since", self._args.since), ("until", self._args.until)):
            if value:
                document[field] = value
        if self._args.comparison:
            path = Path(self._args.comparison)
            try:
                document["comparison"] = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise InvalidShadowTestInput(f"{path}: cannot read a JSON document: {exc}") from exc
        _check_backfill(document)
        outputs = self.outputs()
        stepfunctions = self.client("stepfunctions")
        started = stepfunctions.start_execution(
            stateMachineArn=outputs.CaptureBackfillStateMachineArn,
            name=f"{document['testId']}-{document['run']}"[:80],
            input=json.dumps(document),
        )
        self._out(f"started {started['executionArn']}")
        self._out(f"results: s3://{outputs.DataBucketName}/{diffs_prefix(document['testId'], document['run'])}")
        if not self._args.wait:
            return 0
        while True:
            described = stepfunctions.describe_execution(executionArn=started["executionArn"])
            if described["status"] in TERMINAL:
                break
            time.sleep(self._args.poll_seconds)
        self._out(f"execution {described['status']}")
        if described["status"] != "SUCCEEDED":
            from shadowscale.cli.follow import cause_line

            self._out(f"  {cause_line(described.get('error'), described.get('cause'))}")
            return 1
        self._out(json.dumps(json.loads(described.get("output") or "{}"), indent=2))
        return 0


def _check_backfill(document: dict[str, Any]) -> None:
    """The state machine's first task checks again; failing here costs nothing."""
    from shadowscale.response_diffs.backfill import BackfillRequest

    try:
        BackfillRequest.model_validate(document)
    except ValidationError as exc:
        raise InvalidShadowTestInput(f"invalid backfill input: {field_problems(exc)}") from exc
