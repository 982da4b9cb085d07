"""The local cloud refuses what AWS refuses and moto accepts: a dashboard body that is not JSON (through
the API and through CloudFormation), an SNS subject of 100 characters or more or on several lines."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from shadowscale.shadow_tests.notifier import SnsNotifier
from shadowscale_localcloud.platform import LocalCloud
from shadowscale_localcloud.request_validation import RequestValidation

REGION = "us-east-1"
REPO = Path(__file__).resolve().parents[2]
# The old template's mistake: a SEARCH expression's double quotes left unescaped inside a JSON string.
BROKEN_BODY = (
    '{"widgets": [{"type": "metric", "properties": {"metrics": '
    '[[{"expression": "SEARCH(\'{AWS/SageMaker} MetricName="ModelLatency"\', \'p90\', 60)"}]]}}]}'
)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws(), RequestValidation():
        sns = boto3.client("sns", region_name=REGION)
        topic = sns.create_topic(Name="notices")["TopicArn"]
        yield {
            "sns": sns,
            "topic": topic,
            "cloudwatch": boto3.client("cloudwatch", region_name=REGION),
            "cloudformation": boto3.client("cloudformation", region_name=REGION),
        }


def dashboard_stack(body: str) -> str:
    resource = {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardName": "d", "DashboardBody": body}}
    return json.dumps({"Resources": {"Dashboard": resource}})


def test_given_a_body_that_is_not_json_when_a_stack_creates_the_dashboard_then_it_is_refused(
    aws: dict[str, Any],
) -> None:
    with pytest.raises(ClientError) as refused:
        aws["cloudformation"].create_stack(StackName="dashboards", TemplateBody=dashboard_stack(BROKEN_BODY))
    assert refused.value.response["Error"]["Code"] == "InvalidParameterInput"
    assert aws["cloudwatch"].list_dashboards()["DashboardEntries"] == []


def test_given_a_valid_body_when_a_stack_creates_the_dashboard_then_it_exists(aws: dict[str, Any]) -> None:
    aws["cloudformation"].create_stack(StackName="dashboards", TemplateBody=dashboard_stack('{"widgets": []}'))
    assert [d["DashboardName"] for d in aws["cloudwatch"].list_dashboards()["DashboardEntries"]] == ["d"]


def test_put_dashboard_refuses_a_body_that_is_not_json(aws: dict[str, Any]) -> None:
    with pytest.raises(ClientError) as refused:
        aws["cloudwatch"].put_dashboard(DashboardName="d", DashboardBody=BROKEN_BODY)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterInput"


@pytest.mark.parametrize("subject", ["x" * 100, "x" * 140, "two\nlines", "tab\tinside", "bell\x07"])
def test_sns_refuses_a_subject_it_documents_as_invalid(aws: dict[str, Any], subject: str) -> None:
    with pytest.raises(ClientError) as refused:
        aws["sns"].publish(TopicArn=aws["topic"], Subject=subject, Message="m")
    assert refused.value.response["Error"]["Code"] == "InvalidParameter"


def test_sns_accepts_a_subject_of_99_characters(aws: dict[str, Any]) -> None:
    assert aws["sns"].publish(TopicArn=aws["topic"], Subject="x" * 99, Message="m")["MessageId"]


def test_the_notifier_publishes_an_overlong_multi_line_subject_as_a_valid_one(aws: dict[str, Any]) -> None:
    # GIVEN the approval notice's subject for the longest endpoint name (and a stray line break)
    subject = "[approval needed] shadowscale: failed: shadow test on fraud-detector-" + "x" * 48 + "\nmore"
    # WHEN published through the adapter THEN SNS accepts it
    SnsNotifier(aws["sns"]).publish(aws["topic"], subject, "message")


def test_given_the_template_with_the_unescaped_dashboard_body_when_the_local_cloud_starts_then_it_fails(
    tmp_path: Path,
) -> None:
    # GIVEN the repository as it was before the fix: SEARCH's quotes unescaped inside the JSON string
    for name in ("functions", "layers", "statemachine"):
        (tmp_path / name).symlink_to(REPO / name)
    shutil.copy(REPO / "template.yaml", tmp_path / "template.yaml")
    template = (tmp_path / "template.yaml").read_text()
    (tmp_path / "template.yaml").write_text(
        template.replace('MetricName=\\"ModelLatency\\"', 'MetricName="ModelLatency"')
    )
    cloud = LocalCloud(root=tmp_path, stack_name="broken-dashboard")
    # WHEN the local cloud deploys it THEN the deploy fails on the dashboard, as `sam deploy` did
    try:
        with pytest.raises(ClientError, match="dashboard data is invalid"):
            cloud.start()
    finally:
        cloud.stop()
