"""Step sizing as Application Auto Scaling defines it: aggregated evaluated datapoints minus the threshold,
on the alarm's breaching side; anomaly bands scale towards the side breached."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from shadowscale.capacity.alarm_breach import measure_breach
from shadowscale.capacity.decisions import alarm_change, decide_alarm
from shadowscale.capacity.policy import AlarmAction, StepAdjustment, parse_policy
from shadowscale.shared.endpoint import EndpointMemory, EndpointObservation, VariantObservation

from tests.factories import ENDPOINT, LATENCY_ALARM, make_policy, policy_document, transition

NIGHT = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)
STEPS = AlarmAction(
    steps=(
        StepAdjustment(lower_bound=0, upper_bound=1000, change=1),
        StepAdjustment(lower_bound=1000, upper_bound=5000, change=2),
        StepAdjustment(lower_bound=5000, change=4),
    )
)


def at_two(primary: int = 2) -> EndpointObservation:
    return EndpointObservation(
        name=ENDPOINT,
        status="InService",
        config_name="c",
        variants=(VariantObservation(name="primary", current_instances=primary, current_weight=1.0),),
    )


class TestStaticThreshold:
    def test_given_mixed_side_datapoints_when_average_below_threshold_then_no_step(self) -> None:
        # GIVEN [12000, 0, 11000] against > 10000: the largest distance is 10000, the Average is 7666.7
        breach = measure_breach(
            transition(
                "ALARM", NIGHT, evaluated=(12000.0, 0.0, 11000.0), threshold=10000.0, comparison="GreaterThanThreshold"
            )
        )
        # THEN the aggregated value is on the non-breaching side, and no step matches
        assert (breach.side, breach.beyond, breach.distance) == ("above", False, None)
        assert "Average 7666.67 of 3 datapoints is not beyond > 10000" in breach.described
        assert alarm_change(STEPS, breach) == (0, " (no step applies on the non-breaching side)")

    @pytest.mark.parametrize(
        ("how", "distance", "change"), [("Average", 2666.667, 2), ("Minimum", 500.0, 1), ("Maximum", 6000.0, 4)]
    )
    def test_given_aggregation_when_measured_then_step_of_aggregate(
        self, how: str, distance: float, change: int
    ) -> None:
        breach = measure_breach(
            transition(
                "ALARM",
                NIGHT,
                evaluated=(10500.0, 11500.0, 16000.0),
                threshold=10000.0,
                comparison="GreaterThanOrEqualToThreshold",
            ),
            how,  # type: ignore[arg-type]
        )
        assert breach.distance == pytest.approx(distance)
        assert alarm_change(STEPS, breach)[0] == change

    @pytest.mark.parametrize(
        ("value", "change"), [(10000.0, 1), (10999.0, 1), (11000.0, 2), (14999.0, 2), (15000.0, 4)]
    )
    def test_given_above_threshold_then_lower_bound_inclusive_upper_exclusive(self, value: float, change: int) -> None:
        breach = measure_breach(
            transition("ALARM", NIGHT, evaluated=(value,), threshold=10000.0, comparison="GreaterThanThreshold")
        )
        assert alarm_change(STEPS, breach)[0] == change

    @pytest.mark.parametrize(("value", "change"), [(20.0, -1), (19.5, -1), (10.0, -2), (5.0, -2), (0.0, -4)])
    def test_given_below_threshold_then_distance_below_sizes_the_step(self, value: float, change: int) -> None:
        # AWS's (threshold-10, threshold] with upper bound inclusive is distance [0, 10) here
        scale_in = AlarmAction(
            steps=(
                StepAdjustment(lower_bound=0, upper_bound=10, change=-1),
                StepAdjustment(lower_bound=10, upper_bound=20, change=-2),
                StepAdjustment(lower_bound=20, change=-4),
            )
        )
        breach = measure_breach(
            transition("ALARM", NIGHT, evaluated=(value,), threshold=20.0, comparison="LessThanThreshold")
        )
        assert breach.side == "below"
        assert alarm_change(scale_in, breach)[0] == change

    def test_given_no_evaluated_datapoints_in_event_then_recent_ones_used(self) -> None:
        breach = measure_breach(
            transition(
                "ALARM", NIGHT, datapoints=(11000.0, 13000.0), threshold=10000.0, comparison="GreaterThanThreshold"
            )
        )
        assert breach.distance == 2000.0

    def test_given_evaluated_datapoints_then_recent_ones_ignored(self) -> None:
        breach = measure_breach(
            transition(
                "ALARM",
                NIGHT,
                datapoints=(0.0, 90000.0, 11000.0),
                evaluated=(11000.0,),
                threshold=10000.0,
                comparison="GreaterThanThreshold",
            )
        )
        assert breach.distance == 1000.0

    def test_given_comparison_unknown_and_all_one_side_then_side_from_datapoints(self) -> None:
        breach = measure_breach(transition("ALARM", NIGHT, evaluated=(13000.0, 12000.0), threshold=10000.0))
        assert (breach.side, breach.distance) == ("above", 2500.0)

    def test_given_comparison_unknown_and_mixed_sides_then_breach_unknown_smallest_step(self) -> None:
        breach = measure_breach(transition("ALARM", NIGHT, evaluated=(12000.0, 0.0), threshold=10000.0))
        assert (breach.side, breach.beyond, breach.distance) == (None, None, None)
        assert alarm_change(STEPS, breach)[0] == 1

    def test_given_fixed_change_when_not_beyond_then_fixed_change_still_applies(self) -> None:
        # Simple scaling in AWS applies its adjustment whatever the breach size.
        breach = measure_breach(
            transition("ALARM", NIGHT, evaluated=(9000.0,), threshold=10000.0, comparison="GreaterThanThreshold")
        )
        assert alarm_change(AlarmAction(change=2), breach) == (2, "")


class TestAnomalyBand:
    def test_given_band_breached_below_when_policy_scales_out_then_scales_in(self) -> None:
        breach = measure_breach(
            transition(
                "ALARM",
                NIGHT,
                evaluated=(40.0,),
                threshold=None,
                upper_band=(200.0,),
                lower_band=(100.0,),
                comparison="LessThanLowerOrGreaterThanUpperThreshold",
            )
        )
        assert (breach.band, breach.side, breach.distance) == (True, "below", 60.0)
        assert alarm_change(AlarmAction(steps=(StepAdjustment(lower_bound=0, change=2),)), breach) == (-2, "")

    def test_given_band_breached_above_then_scales_out_by_step_of_distance_to_upper_edge(self) -> None:
        breach = measure_breach(
            transition(
                "ALARM",
                NIGHT,
                evaluated=(1300.0,),
                threshold=None,
                upper_band=(200.0,),
                lower_band=(100.0,),
                comparison="LessThanLowerOrGreaterThanUpperThreshold",
            )
        )
        assert (breach.side, breach.distance) == ("above", 1100.0)
        assert alarm_change(STEPS, breach)[0] == 2

    def test_given_two_sided_band_without_values_then_side_from_reason_text(self) -> None:
        reason = (
            "Thresholds Crossed: 1 out of the last 1 datapoints [3.0 (23/11/26 21:00:00)] was less than the lower"
            " thresholds [10.0]"
        )
        breach = measure_breach(
            transition(
                "ALARM",
                NIGHT,
                evaluated=(3.0,),
                threshold=None,
                reason=reason,
                comparison="LessThanLowerOrGreaterThanUpperThreshold",
            )
        )
        assert (breach.side, breach.distance) == ("below", None)
        assert alarm_change(AlarmAction(change=3), breach) == (-3, "")

    def test_given_two_sided_band_side_unknown_then_no_count_change(self) -> None:
        breach = measure_breach(
            transition(
                "ALARM", NIGHT, evaluated=(3.0,), threshold=None, comparison="LessThanLowerOrGreaterThanUpperThreshold"
            )
        )
        assert breach.side is None
        assert alarm_change(AlarmAction(change=3), breach) == (0, " (the side of the band breached is not known)")

    def test_given_one_sided_lower_band_then_never_scales_out(self) -> None:
        breach = measure_breach(
            transition("ALARM", NIGHT, evaluated=(3.0,), threshold=None, comparison="LessThanLowerThreshold")
        )
        assert alarm_change(AlarmAction(change=2), breach) == (-2, "")


class TestDecisionUsesPolicyAggregation:
    def test_given_policy_maximum_when_alarm_then_step_from_maximum_and_reason_says_so(self) -> None:
        document = policy_document()
        document["variants"][0]["alarms"][0]["metricAggregationType"] = "Maximum"
        document["variants"][0]["schedules"] = []
        decision = decide_alarm(
            parse_policy(document),
            at_two(),
            EndpointMemory(),
            # Average 125000 (25000 beyond: +1); Maximum 350000 (250000 beyond: +4)
            transition(
                "ALARM",
                NIGHT,
                evaluated=(350000.0, 100000.0, 100000.0, 100000.0, 100000.0, 100000.0),
                comparison="GreaterThanThreshold",
            ),
            NIGHT,
            "e",
        )
        change = decision.changes[0]
        assert change.instances_after == 6
        assert "Maximum 350000 of 6 datapoints, 250000 beyond > 100000" in change.reason

    def test_given_default_average_when_mixed_side_alarm_then_no_change_with_reason(self) -> None:
        decision = decide_alarm(
            make_policy(),
            at_two(),
            EndpointMemory(),
            transition(
                "ALARM",
                NIGHT,
                alarm=LATENCY_ALARM,
                evaluated=(120000.0, 0.0, 110000.0),
                comparison="GreaterThanThreshold",
            ),
            NIGHT,
            "e",
        )
        assert decision.effective_changes == ()
        assert "is not beyond > 100000" in decision.changes[0].reason
        assert "no step applies on the non-breaching side" in decision.changes[0].reason
