"""The template's parameters: nothing that scopes IAM defaults to every resource."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.static.deployed_template import REPO, sam_template


def parameter(name: str) -> dict[str, object]:
    spec: dict[str, object] = sam_template()["Parameters"][name]
    return spec


def accepted(name: str, value: str) -> bool:
    """CloudFormation's check of a String parameter: AllowedPattern over the whole value, and its lengths."""
    spec = parameter(name)
    pattern = str(spec["AllowedPattern"])
    length_ok = int(str(spec.get("MinLength", 0))) <= len(value) <= int(str(spec.get("MaxLength", 4096)))
    return length_ok and re.fullmatch(pattern, value) is not None


def test_the_endpoint_pattern_has_no_default_so_the_deployer_chooses_it() -> None:
    assert "Default" not in parameter("EndpointNamePattern")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("*", False),
        ("**", False),
        ("", False),
        ("fraud-*", True),
        ("fraud-detector", True),
        ("*-prod", True),
        ("a" * 64, False),
    ],
)
def test_the_endpoint_pattern_refuses_a_bare_wildcard(value: str, ok: bool) -> None:
    assert accepted("EndpointNamePattern", value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("*", False), ("service-role/AmazonSageMaker-ExecutionRole-*", True), ("fraud-model-role", True)],
)
def test_the_model_role_pattern_refuses_a_bare_wildcard(value: str, ok: bool) -> None:
    assert accepted("ModelExecutionRolePattern", value) is ok
    assert accepted("ModelExecutionRolePattern", str(parameter("ModelExecutionRolePattern")["Default"]))


def test_every_samconfig_stage_sets_an_endpoint_pattern_the_template_accepts() -> None:
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    for stage in ("default", "dev", "prod"):
        overrides = config[stage]["deploy"]["parameters"]["parameter_overrides"]
        found = re.search(r'EndpointNamePattern="([^"]*)"', overrides)
        assert found is not None, f"[{stage}] sets no EndpointNamePattern"
        assert accepted("EndpointNamePattern", found.group(1))
