"""Both state machine files, linted as cfn-lint lints a definition written inline in a template.

cfn-lint does not open `DefinitionUri` files, and it does not validate the `DefinitionString` SAM makes
of an inline SAM `Definition` either: so each file goes, with its DefinitionSubstitutions filled in, into
a plain AWS::StepFunctions::StateMachine's `Definition`, where cfn-lint's E3601 checks it against the
Amazon States Language schema. cfn-lint does not follow `Next`, so that is checked here too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.api import lint

from tests.static.deployed_template import REPO, PlausibleValues, sam_template

STATE_MACHINES = ("ShadowTestStateMachine", "CaptureBackfillStateMachine")


def inline_template(logical_id: str, definition: dict[str, Any] | None = None) -> dict[str, Any]:
    template = sam_template()
    properties = template["Resources"][logical_id]["Properties"]
    substitutions = PlausibleValues(template).resolve(properties.get("DefinitionSubstitutions", {}))
    text = (REPO / properties["DefinitionUri"]).read_text() if definition is None else json.dumps(definition)
    for name, value in substitutions.items():
        text = text.replace(f"${{{name}}}", str(value))
    machine = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "StateMachineName": str(PlausibleValues(template).resolve(properties["Name"])),
            "StateMachineType": properties.get("Type", "STANDARD"),
            "RoleArn": "arn:aws:iam::123456789012:role/state-machine",
            "Definition": json.loads(text),
        },
    }
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {logical_id: machine}}


def lint_errors(template: dict[str, Any]) -> list[str]:
    return [
        f"{match.rule.id} {'/'.join(str(part) for part in match.path)}: {match.message}"
        for match in lint(json.dumps(template), regions=["us-east-1"])
        if match.rule.id.startswith("E")
    ]


def _scopes(states: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, states
    for name, state in states.items():
        for branch_number, branch in enumerate(state.get("Branches", [])):
            yield from _scopes(branch["States"], f"{path}/{name}/Branches/{branch_number}")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _scopes(processor["States"], f"{path}/{name}/ItemProcessor")


def dangling_transitions(definition: dict[str, Any]) -> list[str]:
    """Every StartAt, Next and Default names a state of its own scope (Catch and Choice rules included)."""
    problems = []
    for path, states in _scopes(definition["States"], "States"):
        scope_start = definition["StartAt"] if path == "States" else None
        targets = [("StartAt", scope_start)] if scope_start else []
        for name, state in states.items():
            targets += [(f"{name}.Next", state.get("Next")), (f"{name}.Default", state.get("Default"))]
            targets += [(f"{name}.Catch", catch.get("Next")) for catch in state.get("Catch", [])]
            targets += [(f"{name}.Choices", choice.get("Next")) for choice in state.get("Choices", [])]
            for branch in state.get("Branches", []):
                targets.append((f"{name}.Branches.StartAt", None if branch["StartAt"] in branch["States"] else "?"))
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor and processor["StartAt"] not in processor["States"]:
                problems.append(f"{path}/{name}: StartAt {processor['StartAt']!r} is not one of its states")
        problems += [
            f"{path}/{where}: {target!r} is not a state here"
            for where, target in targets
            if target and target not in states
        ]
    return problems


@pytest.mark.parametrize("logical_id", STATE_MACHINES)
def test_state_machine_file_passes_cfn_lint_as_an_inline_definition(logical_id: str) -> None:
    assert lint_errors(inline_template(logical_id)) == []


@pytest.mark.parametrize("logical_id", STATE_MACHINES)
def test_every_transition_names_an_existing_state(logical_id: str) -> None:
    definition = inline_template(logical_id)["Resources"][logical_id]["Properties"]["Definition"]
    assert dangling_transitions(definition) == []


def test_the_lint_sees_an_invalid_state() -> None:
    definition = {"StartAt": "A", "States": {"A": {"Type": "Taks", "End": True}}}
    [error] = lint_errors(inline_template("ShadowTestStateMachine", definition))
    assert error.startswith("E3601 Resources/ShadowTestStateMachine/Properties/Definition/States/A")


def test_a_transition_to_a_missing_state_is_found() -> None:
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}
    assert dangling_transitions(definition) == ["States/A.Next: 'B' is not a state here"]
