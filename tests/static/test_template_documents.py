"""Every JSON document the template carries as a string is valid JSON once CloudFormation has filled
in its !Sub variables (PutDashboard, SetQueueAttributes and friends reject anything else at deploy)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.static.deployed_template import PlausibleValues, translated_template

# Properties whose value AWS parses as JSON, whatever it starts with.
JSON_PROPERTIES = {"DashboardBody", "PolicyDocument", "EventPattern", "RedrivePolicy", "Input", "DefinitionString"}


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from _strings(item, f"{path}[{number}]")


def json_documents(template: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(logical id and property path, text) for every resolved string that is meant to be JSON."""
    resolved = PlausibleValues(template).resolve(template["Resources"])
    for logical_id, resource in resolved.items():
        for path, text in _strings(resource.get("Properties", {}), logical_id):
            if path.rsplit(".", 1)[-1] in JSON_PROPERTIES or text.lstrip()[:1] in ("{", "["):
                yield path, text


def invalid_json(template: dict[str, Any]) -> list[str]:
    problems = []
    for path, text in json_documents(template):
        try:
            json.loads(text)
        except ValueError as exc:
            problems.append(f"{path}: not valid JSON after !Sub: {exc}")
    return problems


def test_every_json_string_in_the_template_parses_after_substitution() -> None:
    assert invalid_json(translated_template()) == []


def test_the_check_finds_the_dashboard_body_that_sam_deploy_rejected() -> None:
    # GIVEN the dashboard body as it was: a SEARCH expression's quotes left unescaped in a JSON string
    template = translated_template()
    body = template["Resources"]["ShadowTestDashboard"]["Properties"]["DashboardBody"]
    body["Fn::Sub"] = body["Fn::Sub"].replace('\\"', '"')
    # WHEN checked THEN the body is named
    [problem] = invalid_json(template)
    assert problem.startswith("ShadowTestDashboard.DashboardBody: not valid JSON")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    template = translated_template()
    resource = PlausibleValues(template).resolve(template["Resources"]["ShadowTestDashboard"])
    loaded: dict[str, Any] = json.loads(resource["Properties"]["DashboardBody"])
    return loaded


def test_dashboard_body_has_the_structure_cloudwatch_documents(dashboard: dict[str, Any]) -> None:
    # "Dashboard Body Structure and Syntax": a widgets array; a metric widget's metrics is an array of arrays,
    # an expression entry an object with its expression and an id.
    assert isinstance(dashboard["widgets"], list)
    assert dashboard["widgets"]
    for widget in dashboard["widgets"]:
        assert {"type", "x", "y", "width", "height", "properties"} <= set(widget)
        if widget["type"] == "metric":
            metrics = widget["properties"]["metrics"]
            assert all(isinstance(entry, list) for entry in metrics)
            for [expression] in metrics:
                assert expression["expression"].startswith("SEARCH('{")
                assert expression["id"].isidentifier()


def test_dashboard_search_expressions_name_metrics_in_double_quotes(dashboard: dict[str, Any]) -> None:
    expressions = [w["properties"]["metrics"][0][0]["expression"] for w in dashboard["widgets"]]
    assert "SEARCH('{AWS/SageMaker,EndpointName,VariantName} MetricName=\"ModelLatency\"', 'p90', 60)" in expressions
