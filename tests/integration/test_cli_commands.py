"""The command line against moto: it finds its stack, checks before it starts, words what is missing, prints
JSON for machines, previews capacity, and keeps report pages out of the current folder."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws
from shadowscale.cli.errors import ExitCode
from shadowscale.cli.main import main
from shadowscale_localcloud import resources

from tests.factories import ENDPOINT, policy_document
from tests.integration.conftest import REGION, create_endpoint

ACCOUNT = "123456789012"
STACK = "shadowscale-local"
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STACK}-shadow-test"
BUCKET = f"{STACK}-data"

OUTPUTS = {
    "PolicyTableName": "shadowscale-test-policies",
    "EndpointStateTableName": "shadowscale-test-endpoint-state",
    "ScheduleGroupName": "shadowscale-test",
    "SchedulerRoleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler",
    "ScheduledScalerFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shadowscale-test-scheduled-scaler",
    "AlarmScalerFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shadowscale-test-alarm-scaler",
    "AlarmRulePrefix": "shadowscale-test-",
    "DeadLetterQueueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/shadowscale-test-dead-letters",
    "ShadowTestStateMachineArn": MACHINE,
    "ShadowTestRecoveryStateMachineArn": MACHINE.replace("shadow-test", "shadow-test-recovery"),
    "DataBucketName": BUCKET,
    "CaptureBackfillStateMachineArn": MACHINE.replace("shadow-test", "capture-backfill"),
}


def template(outputs: dict[str, str]) -> str:
    return json.dumps(
        {
            "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    monkeypatch.delenv("SHADOWSCALE_STACK", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    with mock_aws():
        resources.create_capacity_resources(boto3, prefix="shadowscale-test")
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName=STACK, TemplateBody=template(OUTPUTS))
        # a stack of something else in the same region: never a candidate
        cloudformation.create_stack(StackName="unrelated", TemplateBody=template({"Other": "x"}))
        boto3.client("scheduler", region_name=REGION).create_schedule_group(Name="shadowscale-test")
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        stepfunctions.create_state_machine(
            name=f"{STACK}-shadow-test",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/machine",
        )
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        create_endpoint(sagemaker, primary=2)
        yield {
            "cloudformation": cloudformation,
            "sagemaker": sagemaker,
            "stepfunctions": stepfunctions,
            "s3": boto3.client("s3", region_name=REGION),
        }


def write(tmp_path: Path, name: str, document: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if name.endswith(".yaml") else json.dumps(document))
    return str(path)


# --- finding the stack -----------------------------------------------------------------------------


def test_given_one_shadowscale_stack_when_no_stack_is_named_then_it_is_found(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the local cloud's stack beside an unrelated one, and no --stack-name nor SHADOWSCALE_STACK
    assert main(["policy", "apply", write(tmp_path, "p.yaml", policy_document())]) == 0
    # WHEN a read command runs without naming a stack THEN it reads shadowscale-local's tables
    assert main(["policy", "show", ENDPOINT, "-o", "json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :])["revision"] == 1


def test_given_no_shadowscale_stack_when_a_command_runs_then_not_found_says_how_to_name_one(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    aws["cloudformation"].delete_stack(StackName=STACK)
    assert main(["policy", "status", ENDPOINT]) == ExitCode.NOT_FOUND
    assert capsys.readouterr().err == (
        f"error: no shadowscale stack found in {REGION}: deploy one (sam deploy), "
        "or name it with --stack-name or SHADOWSCALE_STACK\n"
    )


def test_given_two_shadowscale_stacks_when_none_is_named_then_a_usage_error_lists_them(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws["cloudformation"].create_stack(StackName="shadowscale-dev", TemplateBody=template(OUTPUTS))
    assert main(["policy", "status", ENDPOINT]) == ExitCode.USAGE
    assert "several shadowscale stacks in us-east-1 (shadowscale-dev, shadowscale-local)" in capsys.readouterr().err
    # WHEN one is named through the environment THEN that one is used
    monkeypatch.setenv("SHADOWSCALE_STACK", "shadowscale-dev")
    assert main(["policy", "status", ENDPOINT]) == 0


def test_given_a_stack_name_that_does_not_exist_when_used_then_not_found_names_it(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "status", ENDPOINT, "--stack-name", "nope"]) == ExitCode.NOT_FOUND
    assert capsys.readouterr().err == f"error: stack 'nope' not found in {REGION}\n"


def test_given_a_stack_without_the_outputs_when_named_then_it_says_which_are_missing(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["policy", "status", ENDPOINT, "--stack-name", "unrelated"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "stack 'unrelated' lacks the outputs AlarmRulePrefix, AlarmScalerFunctionArn, DeadLetterQueueUrl" in err


# --- policy status and apply --dry-run --------------------------------------------------------------


def test_given_a_policy_when_status_is_asked_then_text_has_no_none_and_json_is_complete(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = policy_document()
    document["variants"][0]["schedules"] = []  # no window: no floor from the schedule
    main(["policy", "apply", write(tmp_path, "p.yaml", document)])
    capsys.readouterr()
    assert main(["policy", "status", ENDPOINT]) == 0
    text = capsys.readouterr().out
    assert "None" not in text
    assert "primary: 2 instance(s), weight 1.0; policy [1..8], no window floor now, windows: none active" in text
    assert main(["policy", "status", ENDPOINT, "--output", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["policyRevision"] == 1
    assert status["lease"] is None
    primary = next(variant for variant in status["variants"] if variant["name"] == "primary")
    assert primary["policy"] == {"minInstances": 1, "maxInstances": 8, "floor": None, "activeWindows": []}


def test_given_a_dry_run_when_applied_then_the_capacity_now_and_at_each_coming_edge_is_shown(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an endpoint at 2 instances and a policy with a daily window (so edges fall within any 24 h)
    document = policy_document()
    document["variants"][0]["schedules"] = [
        {"name": "daytime", "start": "cron(0 8 * * ? *)", "end": "cron(0 20 * * ? *)", "instances": 4}
    ]
    # WHEN applied with --dry-run
    assert main(["policy", "apply", "--dry-run", write(tmp_path, "p.yaml", document)]) == 0
    out = capsys.readouterr().out
    # THEN the first heartbeat's decision is shown (the edge it sees moves primary off 2), then both edges
    assert "capacity, as the heartbeat and the schedules will set it:" in out
    assert "now (the first heartbeat after apply)" in out
    first = out.split("now (the first heartbeat after apply)")[1].splitlines()[1]
    assert first.startswith("    primary: 2 -> ")
    assert "primary/daytime" in out
    assert "-> 4 instance(s)" in out or "stays at 4 instance(s)" in out
    # ... and nothing was stored
    assert main(["policy", "show", ENDPOINT]) == ExitCode.NOT_FOUND


# --- shadow start checks -----------------------------------------------------------------------------


def shadow_input(endpoint: str = ENDPOINT, model: str = "fraud-detector-v2") -> dict[str, Any]:
    document: dict[str, Any] = json.loads((Path(__file__).parents[2] / "events" / "shadow_test.json").read_text())
    document["endpointName"] = endpoint
    document["candidate"]["modelName"] = model
    return document


@pytest.mark.parametrize(
    ("endpoint", "model", "message"),
    [
        ("no-such-endpoint", "fraud-detector-v2", "endpoint 'no-such-endpoint' not found in us-east-1"),
        (ENDPOINT, "no-such-model", "candidate model 'no-such-model' not found in us-east-1"),
    ],
)
def test_given_a_missing_endpoint_or_model_when_started_then_not_found_and_no_execution(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], endpoint: str, model: str, message: str
) -> None:
    resources.create_models(aws["sagemaker"], "fraud-detector-v2")
    source = write(tmp_path, "t.json", shadow_input(endpoint, model))
    assert main(["shadow", "start", source]) == ExitCode.NOT_FOUND
    assert capsys.readouterr().err == f"error: {message}; nothing was started\n"
    assert aws["stepfunctions"].list_executions(stateMachineArn=MACHINE)["executions"] == []


def test_given_endpoint_and_model_when_started_then_the_follow_command_is_printed(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resources.create_models(aws["sagemaker"], "fraud-detector-v2")
    source = write(tmp_path, "t.json", shadow_input())
    assert main(["shadow", "start", source, "--name", "try-1"]) == 0
    assert "follow it with: shadowscale shadow follow try-1" in capsys.readouterr().out
    assert len(aws["stepfunctions"].list_executions(stateMachineArn=MACHINE)["executions"]) == 1


def test_given_an_unknown_execution_when_followed_then_not_found_names_it(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["shadow", "follow", "never-ran"]) == ExitCode.NOT_FOUND
    assert capsys.readouterr().err.startswith("error: no shadow test execution 'never-ran'")


# --- reports and diffs --------------------------------------------------------------------------------


def started(aws: dict[str, Any], name: str) -> str:
    arn: str = aws["stepfunctions"].start_execution(
        stateMachineArn=MACHINE, name=name, input=json.dumps({"endpointName": ENDPOINT})
    )["executionArn"]
    return arn


def test_given_a_report_when_opened_then_it_is_written_to_the_cache_folder_not_the_current_one(
    aws: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    aws["stepfunctions"].stop_execution(executionArn=started(aws, "with-page"))  # ended: its final page
    aws["s3"].put_object(Bucket=BUCKET, Key=f"reports/{ENDPOINT}/with-page/report.html", Body=b"<html>r</html>")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # WHEN opened without --out THEN the page lands in $XDG_CACHE_HOME/shadowscale/reports, and is opened there
    assert main(["shadow", "report", "with-page", "--open"]) == 0
    page = tmp_path / "cache" / "shadowscale" / "reports" / "with-page.html"
    assert page.read_bytes() == b"<html>r</html>"
    assert opened == [page.resolve().as_uri()]
    assert list(work.iterdir()) == []
    # WHEN --out names a folder THEN it goes there
    assert main(["shadow", "report", "with-page", "--open", "--out", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine" / "with-page.html").exists()


def test_given_no_report_when_an_ended_test_is_asked_for_one_then_not_found_on_stderr(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    arn = started(aws, "no-page")
    aws["stepfunctions"].stop_execution(executionArn=arn)
    assert main(["shadow", "report", "no-page", "-o", "json"]) == ExitCode.NOT_FOUND
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no report was written (`shadowscale shadow recover` writes it)" in captured.err


def test_given_a_report_when_asked_for_json_then_the_document_is_printed(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    arn = started(aws, "json-page")
    aws["stepfunctions"].stop_execution(executionArn=arn)
    report = {"endpoint": ENDPOINT, "outcome": "aborted", "reason": "stopped"}
    aws["s3"].put_object(Bucket=BUCKET, Key=f"reports/{ENDPOINT}/json-page/report.json", Body=json.dumps(report))
    assert main(["shadow", "report", "json-page", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == report
    assert main(["shadow", "report", "json-page", "--json"]) == 0  # the older flag still works
    assert json.loads(capsys.readouterr().out) == report


def test_given_no_such_test_when_its_diffs_are_shown_then_a_sentence_not_botocore(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diffs", "show", "no-such-test"]) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert err.startswith("error: no response-diff summary for shadow test 'no-such-test' (s3://")
    assert "NoSuchKey" not in err
    assert "An error occurred" not in err
    assert err.count("\n") == 1


def test_given_a_test_that_failed_its_restore_when_followed_then_exit_1_and_one_line_with_the_cause(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a state machine that really runs (moto's interpreter) and ends in a Fail state, as RestoreFailed does
    monkeypatch.delenv("SHADOWSCALE_STACK", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        definition = {
            "StartAt": "Restore",
            "States": {
                "Restore": {"Type": "Pass", "Next": "RestoreFailed"},
                "RestoreFailed": {
                    "Type": "Fail",
                    "Error": "RestoreFailed",
                    "Cause": "the endpoint could not be restored",
                },
            },
        }
        stepfunctions = boto3.client("stepfunctions", region_name=REGION)
        machine = stepfunctions.create_state_machine(
            name=f"{STACK}-shadow-test", definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/m"
        )["stateMachineArn"]
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=template({**OUTPUTS, "ShadowTestStateMachineArn": machine})
        )
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        stepfunctions.start_execution(stateMachineArn=machine, name="restore-1", input=json.dumps({}))
        # WHEN followed
        code = main(["shadow", "follow", "restore-1", "--poll-seconds", "0.05", "--region", REGION])
    # THEN it ends with 1, and says in one line where and why, from the Fail state's error and cause
    assert code == ExitCode.FAILED
    out = capsys.readouterr().out
    assert out.startswith("restore-1: FAILED\n")
    assert "  failed in RestoreFailed: RestoreFailed: the endpoint could not be restored\n" in out
    assert "Traceback" not in out


def test_given_a_running_test_when_its_status_is_asked_for_json_then_a_stable_document(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    arn = started(aws, "running-1")
    assert main(["shadow", "status", "running-1", "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "executionArn": arn,
        "status": "RUNNING",
        "waitingForApproval": False,
        "taskToken": None,
        "error": None,
        "cause": None,
    }
