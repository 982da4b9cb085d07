"""The artifacts we ship agree with each other: layer closure, pyproject pins, template wiring."""

from __future__ import annotations

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


def test_layer_closure_pins_the_same_versions_as_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = requirement_pins(project["dependencies"])
    layer = requirement_pins((REPO / "layers" / "shadowscale" / "requirements.txt").read_text().splitlines())
    for name, version in declared.items():
        if name in {"boto3"}:
            assert name not in layer, "boto3 comes with the Lambda runtime; the layer must not carry it"
            continue
        assert layer.get(name) == version, f"{name}: pyproject {version}, layer {layer.get(name)}"


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
