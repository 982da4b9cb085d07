"""`shadowscale policy ...` against moto: the policy, its schedules and its alarm rule stay in step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from shadowscale.cli.main import main
from shadowscale.cli.policy_wiring import schedule_prefix
from shadowscale_localcloud import resources

from tests.factories import ENDPOINT, policy_document
from tests.integration.conftest import REGION, create_endpoint

GROUP = "shadowscale-test"
ACCOUNT = "123456789012"


def outputs_template() -> str:
    outputs = {
        "PolicyTableName": "shadowscale-test-policies",
        "EndpointStateTableName": "shadowscale-test-endpoint-state",
        "ScheduleGroupName": GROUP,
        "SchedulerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler",
        "ScheduledScalerFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shadowscale-test-scheduled-scaler",
        "AlarmScalerFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shadowscale-test-alarm-scaler",
        "AlarmRulePrefix": "shadowscale-test-",
        "DeadLetterQueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/shadowscale-test-dead-letters",
    }
    return json.dumps(
        {
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        resources.create_capacity_resources(boto3, prefix="shadowscale-test")
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="shadowscale-test", TemplateBody=outputs_template()
        )
        scheduler = boto3.client("scheduler", region_name=REGION)
        scheduler.create_schedule_group(Name=GROUP)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        create_endpoint(sagemaker)
        yield {
            "dynamodb": dynamodb,
            "scheduler": scheduler,
            "sagemaker": sagemaker,
            "events": boto3.client("events", region_name=REGION),
        }


def run(*argv: str) -> int:
    return main([*argv, "--stack-name", "shadowscale-test", "--region", REGION])


def write_policy(tmp_path: Path, document: dict[str, Any], name: str = "policy.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def schedules(aws: dict[str, Any]) -> dict[str, dict[str, Any]]:
    listed = aws["scheduler"].list_schedules(GroupName=GROUP, NamePrefix=schedule_prefix(ENDPOINT))["Schedules"]
    return {s["Name"]: aws["scheduler"].get_schedule(Name=s["Name"], GroupName=GROUP) for s in listed}


def test_given_valid_policy_when_applied_then_stored_scheduled_and_alarms_routed(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("policy", "apply", write_policy(tmp_path, policy_document())) == 0
    assert "revision 1" in capsys.readouterr().out
    found = schedules(aws)
    by_label = {json.loads(s["Target"]["Input"])["schedule"]: s for s in found.values()}
    assert set(by_label) == {"heartbeat", "primary/business-hours.start", "primary/business-hours.end"}
    start = by_label["primary/business-hours.start"]
    assert start["ScheduleExpression"] == "cron(0 8 ? * MON-FRI *)"
    assert start["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert start["Target"]["Arn"].endswith("function:shadowscale-test-scheduled-scaler")
    assert json.loads(start["Target"]["Input"])["scheduledTime"] == "<aws.scheduler.scheduled-time>"
    assert by_label["heartbeat"]["ScheduleExpression"] == "rate(5 minutes)"
    [rule] = aws["events"].list_rules(NamePrefix="shadowscale-test-")["Rules"]
    pattern = json.loads(rule["EventPattern"])
    assert pattern["detail"]["alarmName"] == ["fraud-detector-candidate-5xx", "fraud-detector-latency-high"]
    [target] = aws["events"].list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"].endswith("function:shadowscale-test-alarm-scaler")


def test_given_applied_policy_when_window_and_alarm_removed_then_wiring_follows(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    run("policy", "apply", write_policy(tmp_path, policy_document()))
    smaller = policy_document()
    smaller["variants"][0]["schedules"] = []
    smaller["variants"][0]["alarms"] = []
    assert run("policy", "apply", write_policy(tmp_path, smaller, "smaller.yaml")) == 0
    assert [json.loads(s["Target"]["Input"])["schedule"] for s in schedules(aws).values()] == ["heartbeat"]
    [rule] = aws["events"].list_rules(NamePrefix="shadowscale-test-")["Rules"]
    assert json.loads(rule["EventPattern"])["detail"]["alarmName"] == ["fraud-detector-candidate-5xx"]
    stale = aws["dynamodb"].get_item(
        TableName="shadowscale-test-policies", Key={"id": {"S": "alarm#fraud-detector-latency-high"}}
    )
    assert "Item" not in stale
    stored = aws["dynamodb"].get_item(TableName="shadowscale-test-policies", Key={"id": {"S": f"policy#{ENDPOINT}"}})
    assert json.loads(stored["Item"]["value"]["S"])["revision"] == 2


def test_given_invalid_policy_when_applied_then_exit_2_names_field_and_nothing_applied(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = policy_document()
    document["variants"][0]["maxInstances"] = 0
    assert run("policy", "apply", write_policy(tmp_path, document)) == 2
    error = capsys.readouterr().err
    assert "variants.0.maxInstances" in error
    assert "nothing was applied" in error
    assert aws["dynamodb"].scan(TableName="shadowscale-test-policies")["Items"] == []
    assert schedules(aws) == {}


def test_given_policy_for_missing_variant_when_applied_then_refused(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = policy_document()
    document["variants"][1]["name"] = "shadow"
    assert run("policy", "apply", write_policy(tmp_path, document)) == 2
    assert "variants.1.name: endpoint 'fraud-detector' has no variant 'shadow'" in capsys.readouterr().err
    assert schedules(aws) == {}


def test_given_alarm_owned_by_other_endpoint_when_applied_then_refused(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("policy", "apply", write_policy(tmp_path, policy_document()))
    create_endpoint(aws["sagemaker"], name="other-endpoint")
    other = policy_document(endpoint="other-endpoint")
    assert run("policy", "apply", write_policy(tmp_path, other, "other.yaml")) == 2
    assert "already drives endpoint 'fraud-detector'" in capsys.readouterr().err


def test_given_dry_run_when_applied_then_plan_printed_and_nothing_changed(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("policy", "apply", "--dry-run", write_policy(tmp_path, policy_document())) == 0
    out = capsys.readouterr().out
    assert out.count(": create") == 3
    assert schedules(aws) == {}


def test_given_applied_policy_when_deleted_then_everything_it_implied_is_gone(
    aws: dict[str, Any], tmp_path: Path
) -> None:
    run("policy", "apply", write_policy(tmp_path, policy_document()))
    assert run("policy", "delete", ENDPOINT) == 0
    assert schedules(aws) == {}
    assert aws["events"].list_rules(NamePrefix="shadowscale-test-")["Rules"] == []
    assert aws["dynamodb"].scan(TableName="shadowscale-test-policies")["Items"] == []


def test_given_applied_policy_when_status_then_counts_and_floor_printed(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run("policy", "apply", write_policy(tmp_path, policy_document()))
    capsys.readouterr()
    assert run("policy", "status", ENDPOINT) == 0
    out = capsys.readouterr().out
    assert "primary: 1 instance(s), weight 1.0; policy [1..8]" in out
    assert "lease: free" in out


def test_validate_is_offline_and_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_policy(tmp_path, policy_document())
    assert main(["policy", "validate", good]) == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: [unclosed")
    assert main(["policy", "validate", str(broken)]) == 2
    assert f"{broken}: not valid YAML" in capsys.readouterr().err


def test_given_a_policy_naming_a_variant_the_endpoint_lost_when_shown_or_status_then_it_warns_loudly(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an applied policy, then a promotion-like change: the endpoint now serves only "challenger"
    from shadowscale.capacity.policy import parse_policy
    from shadowscale.capacity.policy_store import PolicyRepository

    run("policy", "apply", write_policy(tmp_path, policy_document()))
    repository = PolicyRepository(aws["dynamodb"], "shadowscale-test-policies")
    repository.put(
        parse_policy(policy_document()), reason="carried over by shadow test t1", applied_by="shadow test t1"
    )
    aws["sagemaker"].delete_endpoint(EndpointName=ENDPOINT)
    resources.create_models(aws["sagemaker"], "challenger-model")
    aws["sagemaker"].create_endpoint_config(
        EndpointConfigName="after-promotion",
        ProductionVariants=[
            {
                "VariantName": "challenger",
                "ModelName": "challenger-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    aws["sagemaker"].create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="after-promotion")
    capsys.readouterr()
    # WHEN shown THEN the revision says why and who, and both missing variants are named on stderr
    assert run("policy", "show", ENDPOINT) == 0
    shown = capsys.readouterr()
    assert "# revision 2" in shown.out
    assert "by shadow test t1" in shown.out
    assert "# reason: carried over by shadow test t1" in shown.out
    assert "WARNING: the policy names variant 'primary', which endpoint 'fraud-detector' does not have" in shown.err
    assert "WARNING: the policy names variant 'candidate'" in shown.err
    # ... and status says it too
    assert run("policy", "status", ENDPOINT) == 0
    assert "WARNING: the policy names variant 'primary'" in capsys.readouterr().err
