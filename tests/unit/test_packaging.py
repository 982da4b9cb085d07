"""The artifacts we ship agree with each other: layer closure, pyproject pins, template wiring."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

REPO = Path(__file__).resolve().parents[2]


def requirement_pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if match := re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;]+)", line):
            pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(REPO / "template.yaml"))
    return loaded


LAYER_REQUIREMENTS = REPO / "layers" / "shadowscale" / "requirements.txt"
# The Lambda target the layer is built for (python3.13 on arm64): what requirement markers are judged on.
LAMBDA_MARKERS = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def layer_pins() -> dict[str, str]:
    return requirement_pins(LAYER_REQUIREMENTS.read_text().splitlines())


def test_layer_closure_pins_the_same_versions_as_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = requirement_pins(project["dependencies"])
    layer = layer_pins()
    # The layer ships the SDK: the runtime's bundled one is not pinned (conditional PutObject needs botocore
    # >= 1.35.69: shadowscale/adapters/sdk_features.py).
    assert {"boto3", "botocore"} <= set(declared)
    for name, version in declared.items():
        assert layer.get(name) == version, f"{name}: pyproject {version}, layer {layer.get(name)}"


def test_layer_closure_is_complete_and_what_the_tests_ran_with() -> None:
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement

    layer = layer_pins()
    for name, pinned in layer.items():
        assert version(name) == pinned, f"{name}: the layer pins {pinned}, the tests ran with {version(name)}"
        for text in requires(name) or []:
            needed = Requirement(text)
            if needed.marker is not None and not needed.marker.evaluate(LAMBDA_MARKERS):
                continue
            dependency = needed.name.lower().replace("_", "-")
            assert dependency in layer, f"{name} needs {needed}, which the layer does not pin"
            assert needed.specifier.contains(layer[dependency], prereleases=True), (
                f"{name} needs {needed}, the layer pins {dependency}=={layer[dependency]}"
            )


def test_globals_pin_runtime_architecture_tracing(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    layer = template["Resources"]["SharedLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def test_every_function_has_its_own_log_group_with_retention(template: dict[str, Any]) -> None:
    for name, function in functions(template).items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert template["Resources"][group]["Type"] == "AWS::Logs::LogGroup", name
        assert "RetentionInDays" in template["Resources"][group]["Properties"], name


def _state_machine_tasks(template: dict[str, Any]) -> set[str]:
    """Functions a state machine invokes synchronously (its Retry and Catch own their failures)."""
    return {
        value["Fn::GetAtt"][0] if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"].split(".")[0]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
        for value in resource["Properties"].get("DefinitionSubstitutions", {}).values()
        if isinstance(value, dict) and "Fn::GetAtt" in value
    }


def test_every_async_function_has_a_dead_letter_queue(template: dict[str, Any]) -> None:
    synchronous = _state_machine_tasks(template)
    assert synchronous == {"ShadowTestTasksFunction", "CaptureBackfillFunction"}
    for name, function in functions(template).items():
        events = function["Properties"].get("Events", {})
        queue_driven = events and all(event["Type"] == "SQS" for event in events.values())
        if not queue_driven and name not in synchronous:
            assert function["Properties"]["DeadLetterQueue"]["Type"] == "SQS", name


def test_no_iam_statement_allows_every_action(template: dict[str, Any]) -> None:
    def statements(node: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if isinstance(node, dict):
            if "Effect" in node and "Action" in node:
                found.append(node)
            for value in node.values():
                found.extend(statements(value))
        elif isinstance(node, list):
            for value in node:
                found.extend(statements(value))
        return found

    for statement in statements(template["Resources"]):
        if statement.get("Effect") != "Allow" or "Principal" in statement:
            continue  # key and queue resource policies name principals, not our roles
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(action != "*" and not action.endswith(":*") for action in actions), statement


def test_outputs_name_what_the_cli_reads(template: dict[str, Any]) -> None:
    from shadowscale.cli.policy_wiring import StackOutputs

    assert set(StackOutputs.model_fields) <= set(template["Outputs"])


# What the Step Functions developer guide ("ResultWriter (Map)", IAM policies) grants a state machine whose
# Distributed Map writes its results to S3, on the results' prefix (the CDK's ResultWriter grants the same).
RESULT_WRITER_ACTIONS = {"s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"}


def test_the_backfill_role_may_write_its_map_results_as_aws_documents(template: dict[str, Any]) -> None:
    definition = json.loads((REPO / "statemachine" / "capture_backfill.asl.json").read_text())
    writer = definition["States"]["DiffEachSlice"]["ResultWriter"]["Parameters"]
    assert writer["Bucket"] == "${DataBucketName}"
    results = f"${{DataBucket.Arn}}/{writer['Prefix'].strip('/')}/*"
    machine = template["Resources"]["CaptureBackfillStateMachine"]["Properties"]
    assert machine["DefinitionSubstitutions"]["DataBucketName"] == {"Ref": "DataBucket"}
    statements = [s for policy in machine["Policies"] if "Statement" in policy for s in policy["Statement"]]

    def actions(statement: dict[str, Any]) -> set[str]:
        action = statement["Action"]
        return set(action if isinstance(action, list) else [action])

    writing = [s for s in statements if actions(s) & RESULT_WRITER_ACTIONS]
    assert len(writing) == 1, writing
    (statement,) = writing
    assert statement["Effect"] == "Allow"
    assert actions(statement) == RESULT_WRITER_ACTIONS
    assert statement["Resource"] == {"Fn::Sub": results}
