"""Guarded promotion's pure parts: the input, the DeploymentConfig it becomes, the rollback alarms."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from shadowscale.shadow_tests.models import ShadowTestInput, parse_shadow_test_input
from shadowscale.shadow_tests.promotion_guardrails import (
    Guardrails,
    alarm_definitions,
    alarm_prefix,
    deployment_config,
    deployment_seconds,
    rolled_back_reason,
)
from shadowscale.shared.errors import InvalidShadowTestInput

BASE: dict[str, Any] = {
    "endpointName": "fraud",
    "candidate": {"modelName": "fraud-v2", "instanceType": "ml.m5.xlarge"},
    "sampling": {"percent": 10},
    "durationMinutes": 30,
}


def _input(guardrails: dict[str, Any]) -> ShadowTestInput:
    return parse_shadow_test_input({**BASE, "promotion": {"guardrails": guardrails}})


def _shape(service: str, name: str) -> Any:
    return botocore.session.get_session().get_service_model(service).shape_for(name)


def _valid(service: str, shape: str, params: dict[str, Any]) -> None:
    report = ParamValidator().validate(params, _shape(service, shape))
    assert not report.has_errors(), report.generate_report()


# --- input ------------------------------------------------------------------------------------------


def test_given_no_promotion_section_then_the_promotion_is_plain() -> None:
    # GIVEN an input without `promotion` WHEN parsed THEN no guardrails are asked for
    assert parse_shadow_test_input(BASE).promotion.guardrails is None


@pytest.mark.parametrize(
    ("guardrails", "problem"),
    [
        ({"mode": "canary"}, "canarySize is required when mode is canary"),
        ({"mode": "linear"}, "linearStepSize is required when mode is linear"),
        ({"mode": "rolling"}, "maximumBatchSize is required when mode is rolling"),
        (
            {"mode": "allAtOnce", "canarySize": {"type": "INSTANCE_COUNT", "value": 1}},
            "canarySize applies only when mode is canary",
        ),
        ({"mode": "canary", "canarySize": {"type": "CAPACITY_PERCENT", "value": 60}}, "canarySize: value 60"),
        ({"mode": "linear", "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 5}}, "linearStepSize: value 5"),
        (
            {
                "mode": "rolling",
                "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 25},
                "terminationWaitSeconds": 60,
            },
            "terminationWaitSeconds applies only to blue/green",
        ),
        ({"waitIntervalSeconds": 600, "maximumExecutionTimeoutSeconds": 600}, "must be larger than"),
        ({"waitIntervalSeconds": 3601}, "promotion.guardrails.waitIntervalSeconds"),
        ({"maximumExecutionTimeoutSeconds": 599}, "promotion.guardrails.maximumExecutionTimeoutSeconds"),
        ({"mode": "blueGreen"}, "promotion.guardrails.mode"),
        ({"rollbackAlarms": {"periodSeconds": 45}}, "promotion.guardrails.rollbackAlarms.periodSeconds"),
        ({"canarysize": {}}, "promotion.guardrails.canarysize"),
    ],
)
def test_given_a_bad_guardrails_section_then_the_error_names_the_field(
    guardrails: dict[str, Any], problem: str
) -> None:
    # GIVEN guardrails that UpdateEndpoint would refuse (or that make no sense)
    # WHEN the input is validated
    with pytest.raises(InvalidShadowTestInput) as raised:
        _input(guardrails)
    # THEN the message names the field and why
    assert problem in str(raised.value)
    assert "promotion.guardrails" in str(raised.value)


# --- DeploymentConfig -----------------------------------------------------------------------------


def test_a_canary_becomes_a_blue_green_policy_with_its_alarms_as_update_endpoint_accepts() -> None:
    # GIVEN a canary of one instance, 5-minute bakes, 10 minutes before the blue fleet goes
    guardrails = _input(
        {
            "mode": "canary",
            "canarySize": {"type": "INSTANCE_COUNT", "value": 1},
            "waitIntervalSeconds": 300,
            "terminationWaitSeconds": 600,
            "maximumExecutionTimeoutSeconds": 1800,
        }
    ).promotion.guardrails
    assert guardrails is not None

    # WHEN it becomes UpdateEndpoint's DeploymentConfig
    config = deployment_config(guardrails, ("a-5xx", "a-p99"))

    # THEN a BlueGreenUpdatePolicy with the canary and the alarms, valid in botocore's SageMaker model
    assert config == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
            },
            "TerminationWaitInSeconds": 600,
            "MaximumExecutionTimeoutInSeconds": 1800,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a-5xx"}, {"AlarmName": "a-p99"}]},
    }
    _valid(
        "sagemaker", "UpdateEndpointInput", {"EndpointName": "e", "EndpointConfigName": "c", "DeploymentConfig": config}
    )
    assert deployment_seconds(guardrails) == 1800 + 600


@pytest.mark.parametrize(
    ("guardrails", "policy"),
    [
        ({}, "BlueGreenUpdatePolicy"),
        ({"mode": "linear", "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 20}}, "BlueGreenUpdatePolicy"),
        (
            {
                "mode": "rolling",
                "maximumBatchSize": {"type": "CAPACITY_PERCENT", "value": 25},
                "rollbackMaximumBatchSize": {"type": "INSTANCE_COUNT", "value": 2},
            },
            "RollingUpdatePolicy",
        ),
    ],
)
def test_every_mode_builds_one_update_policy_botocore_accepts(guardrails: dict[str, Any], policy: str) -> None:
    # GIVEN each traffic mode WHEN built without alarms THEN exactly one update policy, valid, no rollback
    built = _input(guardrails).promotion.guardrails
    assert built is not None
    config = deployment_config(built, ())
    assert list(config) == [policy]
    _valid("sagemaker", "DeploymentConfig", config)


def test_a_rolling_update_carries_its_batch_sizes_and_no_termination_wait() -> None:
    guardrails = _input(
        {"mode": "rolling", "maximumBatchSize": {"type": "INSTANCE_COUNT", "value": 1}, "waitIntervalSeconds": 120}
    ).promotion.guardrails
    assert guardrails is not None
    assert deployment_config(guardrails, ("x",))["RollingUpdatePolicy"] == {
        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
        "WaitIntervalInSeconds": 120,
        "MaximumExecutionTimeoutInSeconds": 3600,
    }


# --- alarms ---------------------------------------------------------------------------------------


def test_the_rollback_alarms_watch_the_promoted_variant_as_sagemaker_publishes_its_metrics() -> None:
    # GIVEN thresholds of 5 errors a minute and a p99 of 250 ms
    guardrails = Guardrails.model_validate({"rollbackAlarms": {"max5xxErrors": 5, "maxModelLatencyP99Ms": 250}})

    # WHEN the alarms are defined for endpoint fraud, variant primary
    alarms = alarm_definitions(
        guardrails, prefix=alarm_prefix("prod"), endpoint="fraud", variant="primary", tag="ab12cd34"
    )

    # THEN two alarms under the stack's prefix, on AWS/SageMaker with EndpointName + VariantName
    assert [alarm.name for alarm in alarms] == [
        "shadowscale-prod-promotion-fraud-ab12cd34-5xx-errors",
        "shadowscale-prod-promotion-fraud-ab12cd34-p99-latency",
    ]
    errors, latency = (alarm.request() for alarm in alarms)
    assert errors["MetricName"] == "Invocation5XXErrors"
    assert errors["Statistic"] == "Sum"
    assert errors["Threshold"] == 5
    assert latency["MetricName"] == "ModelLatency"
    assert latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == 250_000  # microseconds
    for request in (errors, latency):
        assert request["Namespace"] == "AWS/SageMaker"
        assert request["Dimensions"] == [
            {"Name": "EndpointName", "Value": "fraud"},
            {"Name": "VariantName", "Value": "primary"},
        ]
        _valid("cloudwatch", "PutMetricAlarmInput", request)


def test_the_default_alarm_is_any_5xx_error_and_none_can_be_asked_for() -> None:
    # GIVEN the default thresholds, then both switched off
    default = alarm_definitions(Guardrails(), prefix="p-", endpoint="e", variant="v", tag="t")
    none = alarm_definitions(
        Guardrails.model_validate({"rollbackAlarms": {"max5xxErrors": None}}),
        prefix="p-",
        endpoint="e",
        variant="v",
        tag="t",
    )
    # THEN one alarm on more than 0 errors; without alarms the DeploymentConfig has no AutoRollbackConfiguration
    assert [(alarm.metric, alarm.threshold) for alarm in default] == [("Invocation5XXErrors", 0)]
    assert none == ()
    assert "AutoRollbackConfiguration" not in deployment_config(Guardrails(), ())


def test_the_rollback_reason_names_the_alarm_and_what_sagemaker_said() -> None:
    reason = rolled_back_reason("fraud", "fraud-x-promoted", ("p-5xx",), "Alarm(s) p-5xx in ALARM state")
    assert "rolled back from 'fraud-x-promoted'" in reason
    assert "alarm: p-5xx" in reason
    assert "SageMaker: Alarm(s) p-5xx in ALARM state" in reason
    assert "no promotion alarm is in ALARM now" in rolled_back_reason("fraud", "c", (), None)


def test_a_guarded_promotion_counts_its_longer_promote_polls_in_the_history_budget() -> None:
    # GIVEN the same test, promoted plainly and with guardrails that may take 8 h + 1 h of termination wait
    from datetime import timedelta

    from shadowscale.shadow_tests.history_budget import worst_case_history

    settings: dict[str, Any] = {
        "step_minutes": (30,),
        "evaluation_period_minutes": 5,
        "in_service_timeout_minutes": 30,
        "approval": False,
        "restore_patience": timedelta(hours=6),
    }
    guardrails = Guardrails.model_validate(
        {"maximumExecutionTimeoutSeconds": 28_800, "terminationWaitSeconds": 3600, "waitIntervalSeconds": 600}
    )

    # WHEN the worst-case history is counted
    plain = worst_case_history(**settings)
    guarded = worst_case_history(**settings, promotion_seconds=deployment_seconds(guardrails))

    # THEN only the promotion's InService polls grow, by the 9 hours of 30-second polls
    assert guarded.parts["promote InService polls"] > plain.parts["promote InService polls"] * 18
    assert {k: v for k, v in guarded.parts.items() if k != "promote InService polls"} == {
        k: v for k, v in plain.parts.items() if k != "promote InService polls"
    }


def test_the_sample_guarded_event_is_valid_and_fits_its_history_budget() -> None:
    # GIVEN events/shadow_test_guarded.json (for `sam local invoke` and the README)
    import json
    from pathlib import Path

    document = json.loads((Path(__file__).parents[2] / "events" / "shadow_test_guarded.json").read_text())
    # WHEN validated THEN a linear promotion in 25 % steps with two alarms
    guardrails = parse_shadow_test_input(document).promotion.guardrails
    assert guardrails is not None
    routing: Any = deployment_config(guardrails, ("a", "b"))["BlueGreenUpdatePolicy"]
    assert routing["TrafficRoutingConfiguration"]["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
