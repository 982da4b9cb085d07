"""The response-diff pipeline as deployed: the template's bucket notification, queue, redrive and event
source mapping, the capture_diff function run in-process by the local cloud, and the backfill state
machine's Distributed Map over the capture prefix on moto's interpreter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from shadowscale_localcloud.platform import AcceleratedClock, LocalCloud

from tests.capture_factories import PRODUCTION, SHADOW, T0, diff_config, key, lines, record, times

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    clock = AcceleratedClock(T0 + timedelta(minutes=3))
    with LocalCloud(root=REPO, clock=clock, stack_name="capture-diff-test") as running:
        yield running


class Capture:
    """A test's capture in the deployed data bucket, written as SageMaker would (S3 PutObject)."""

    def __init__(self, cloud: LocalCloud, test_id: str, **comparison: Any) -> None:
        self.cloud = cloud
        self.test_id = test_id
        self.bucket = cloud.outputs["DataBucketName"]
        self.s3 = cloud.client("s3")
        config = diff_config(shadowTest=test_id, **comparison)
        self.s3.put_object(
            Bucket=self.bucket, Key=f"diffs/{test_id}/config.json", Body=config.model_dump_json(by_alias=True)
        )

    def put(self, variant: str, count: int, name: str, *, flip_every: int = 0) -> str:
        records = []
        for index, at in enumerate(times(T0, count)):
            label = "fraud" if flip_every and variant == SHADOW and index % flip_every == 0 else "legit"
            output = f'{{"label":"{label}","score":0.9}}'
            # p00k and s00k hold the two halves of the same requests.
            records.append(record(f"{self.test_id}-{name[-1]}-{index}", at, output, body=f"{index},{name[-1]},2"))
        object_key = key(variant, T0, name).replace("capture/test-1/", f"capture/{self.test_id}/")
        self.s3.put_object(Bucket=self.bucket, Key=object_key, Body=lines(*records))
        return object_key

    def json(self, suffix: str) -> dict[str, Any]:
        body = self.s3.get_object(Bucket=self.bucket, Key=f"diffs/{self.test_id}/{suffix}")["Body"].read()
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def keys(self, suffix: str) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"diffs/{self.test_id}/{suffix}")
        return [item["Key"] for item in listed.get("Contents", [])]


def queue_messages(cloud: LocalCloud, output: str) -> list[dict[str, Any]]:
    sqs = cloud.client("sqs")
    found = sqs.receive_message(QueueUrl=cloud.outputs[output], MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(message["Body"]) for message in found.get("Messages", [])]


def sqs_deliveries(cloud: LocalCloud, queue_suffix: str) -> list[Any]:
    return [d for d in cloud.deliveries if d.kind == "sqs" and d.detail.endswith(queue_suffix)]


def test_the_data_bucket_announces_capture_objects_to_the_diff_queue(cloud: LocalCloud) -> None:
    configuration = cloud.client("s3").get_bucket_notification_configuration(Bucket=cloud.outputs["DataBucketName"])
    [queue] = configuration["QueueConfigurations"]
    assert queue["QueueArn"].endswith(":shadowscale-dev-capture-diffs")
    assert queue["Events"] == ["s3:ObjectCreated:*"]
    assert queue["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "capture/"}]


def test_given_capture_objects_when_they_land_then_the_function_writes_the_tests_summary(cloud: LocalCloud) -> None:
    # GIVEN a shadow test's diff config, and production and shadow capture landing in the bucket
    capture = Capture(cloud, "live-1")
    capture.put(PRODUCTION, 40, "p001")
    capture.put(SHADOW, 40, "s001", flip_every=4)

    # WHEN the queue delivers the notifications to the function
    cloud.advance(5)

    # THEN diffs/<test>/summary.json pairs every request and counts the disagreements
    summary = capture.json("summary.json")
    assert (summary["paired"], summary["exactMatches"], summary["pending"]) == (40, 30, 0)
    assert summary["exactMatchRate"] == pytest.approx(0.75)
    assert summary["pairedBy"] == {"eventId": 40}
    assert summary["objectsProcessed"] == 2
    assert summary["mismatchSamples"][0]["productionOutput"] != summary["mismatchSamples"][0]["shadowOutput"]
    assert sqs_deliveries(cloud, "capture-diffs")


def test_a_redelivered_notification_and_a_later_close_count_nothing_twice(cloud: LocalCloud) -> None:
    # GIVEN a diffed object whose notification S3 sends again (the same object, rewritten identically)
    capture = Capture(cloud, "live-2")
    capture.put(PRODUCTION, 10, "p001")
    capture.put(SHADOW, 10, "s001")
    cloud.advance(5)
    capture.put(SHADOW, 10, "s001")  # same key and bytes: same ETag
    cloud.advance(5)

    # WHEN the test ends and the close request comes due
    cloud.client("sqs").send_message(
        QueueUrl=cloud.outputs["CaptureDiffQueueUrl"],
        MessageBody=json.dumps(
            {"kind": "shadowscale.close-diffs", "testId": "live-2", "endedAt": cloud.clock.now().isoformat()}
        ),
    )
    cloud.advance(16 * 60)

    # THEN the final summary holds each pair once and says so
    summary = capture.json("summary.json")
    assert (summary["paired"], summary["objectsDuplicate"], summary["final"]) == (10, 1, True)
    assert summary["recordsRead"] == 20
    assert capture.keys("windows/")


def test_a_malformed_message_is_dead_lettered_with_its_reason_and_never_retried(cloud: LocalCloud) -> None:
    before = len(sqs_deliveries(cloud, "capture-diffs"))
    cloud.client("sqs").send_message(QueueUrl=cloud.outputs["CaptureDiffQueueUrl"], MessageBody='{"hello": 1}')
    cloud.advance(60)

    assert len(sqs_deliveries(cloud, "capture-diffs")) == before + 1
    [dead] = [m for m in queue_messages(cloud, "DeadLetterQueueUrl") if m.get("function") == "capture_diff"]
    assert "neither an S3 notification" in dead["reason"]
    assert dead["event"]["body"] == '{"hello": 1}'


def test_backfill_diffs_a_tests_capture_again_over_a_distributed_map(cloud: LocalCloud) -> None:
    # GIVEN a test's capture in the bucket (diffed live with the default tolerance)
    capture = Capture(cloud, "history-1")
    for index in range(3):
        capture.put(PRODUCTION, 30, f"p00{index}")
        capture.put(SHADOW, 30, f"s00{index}", flip_every=3)
    cloud.advance(5)

    # WHEN a backfill run diffs it again, as the README's command starts it
    stepfunctions = cloud.client("stepfunctions")
    started = stepfunctions.start_execution(
        stateMachineArn=cloud.outputs["CaptureBackfillStateMachineArn"],
        name="history-1-again",
        input=json.dumps({"testId": "history-1", "run": "again"}),
    )
    described = cloud.wait_for_execution(started["executionArn"])

    # THEN it succeeds, with the live pipeline's numbers, in its own folder
    assert described["status"] == "SUCCEEDED", (described.get("error"), described.get("cause"))
    output = json.loads(described["output"])
    live = capture.json("summary.json")
    again = capture.json("backfill/again/summary.json")
    assert output["paired"] == again["paired"] == live["paired"]
    assert again["exactMatches"] == live["exactMatches"]
    assert again["final"] is True
    assert again["objectsProcessed"] == 6
    # One item per hour slice (the capture's hour, and its neighbours within reach), each with its partial
    slices = capture.keys("backfill/again/slices/")
    assert len(slices) >= 2
    assert sum(capture.json(key.split("history-1/", 1)[1])["objectsProcessed"] for key in slices) == 6


def test_backfill_input_is_checked_before_anything_is_listed(cloud: LocalCloud) -> None:
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.outputs["CaptureBackfillStateMachineArn"],
        name="bad-backfill",
        input=json.dumps({"testId": "history-1", "run": "x", "comparison": {"tolerance": {"absolute": -1}}}),
    )
    described = cloud.wait_for_execution(started["executionArn"])

    assert described["status"] == "FAILED"
    assert "comparison.tolerance.absolute" in described.get("cause", "")


def test_a_backfill_range_without_a_timezone_fails_with_the_fields_named(cloud: LocalCloud) -> None:
    started = cloud.client("stepfunctions").start_execution(
        stateMachineArn=cloud.outputs["CaptureBackfillStateMachineArn"],
        name="naive-backfill",
        input=json.dumps({"testId": "history-1", "run": "x", "since": "2026-03-01T09:00:00"}),
    )
    described = cloud.wait_for_execution(started["executionArn"])

    assert described["status"] == "FAILED"
    assert "since: Input should have timezone info" in described.get("cause", "")


def test_the_cli_shows_a_summary_and_runs_a_backfill_to_the_end(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    from shadowscale.cli.main import main as cli

    # GIVEN a test diffed live
    capture = Capture(cloud, "cli-1")
    capture.put(PRODUCTION, 20, "p001")
    capture.put(SHADOW, 20, "s001", flip_every=2)
    cloud.advance(5)
    stack = ["--stack-name", "capture-diff-test"]

    # WHEN a person reads its diffs, then diffs it again with a looser comparison
    shown = cli(["diffs", "show", "cli-1", *stack])
    printed = capsys.readouterr().out
    loose = Path(cloud.root) / ".pytest_cache" / "loose-comparison.json"
    loose.parent.mkdir(exist_ok=True)
    loose.write_text(json.dumps({"ignorePaths": ["label"]}))
    ran = cli(
        [
            "diffs",
            "backfill",
            "cli-1",
            "--run",
            "loose",
            "--comparison",
            str(loose),
            "--wait",
            "--poll-seconds",
            "0.05",
            *stack,
        ]
    )
    backfilled = capsys.readouterr().out

    # THEN the summary reads as numbers, and the run ignores the label differences it was told to
    assert shown == 0
    assert "20 pairs (20 by eventId)" in printed
    assert "exact match 50.0%" in printed
    assert ran == 0
    assert "execution SUCCEEDED" in backfilled
    assert capture.json("backfill/loose/summary.json")["withinToleranceRate"] == 1.0


def test_the_cli_refuses_a_malformed_backfill_before_starting_anything(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    from shadowscale.cli.main import main as cli

    code = cli(["diffs", "backfill", "cli-1", "--run", "no spaces allowed", "--stack-name", "capture-diff-test"])

    assert code == 2
    assert "run: String should match pattern" in capsys.readouterr().err
