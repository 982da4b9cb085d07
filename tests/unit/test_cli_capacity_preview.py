"""`policy apply --dry-run`'s capacity preview: the domain's own decisions replayed over the coming edges."""

from __future__ import annotations

from datetime import UTC, datetime

from shadowscale.cli.capacity_preview import coming_edges, preview, preview_lines
from shadowscale.shared.endpoint import EndpointMemory, EndpointObservation, VariantObservation

from tests.factories import ENDPOINT, make_policy

# Monday 2026-11-23, 06:00 UTC = 07:00 in Berlin: an hour before the business-hours window opens.
MONDAY_MORNING = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def endpoint(primary: int, candidate: int = 1) -> EndpointObservation:
    return EndpointObservation(
        name=ENDPOINT,
        status="InService",
        config_name="config-1",
        variants=(
            VariantObservation(name="primary", current_instances=primary, current_weight=1.0),
            VariantObservation(name="candidate", current_instances=candidate, current_weight=0.1),
        ),
    )


def test_given_a_weekday_morning_when_previewed_then_the_window_edges_of_the_next_24_hours_are_listed() -> None:
    edges = coming_edges(make_policy(), MONDAY_MORNING)
    # 08:00 and 20:00 Berlin time are 07:00 and 19:00 UTC in November
    assert edges == [
        (datetime(2026, 11, 23, 7, 0, tzinfo=UTC), "primary/business-hours"),
        (datetime(2026, 11, 23, 19, 0, tzinfo=UTC), "primary/business-hours"),
    ]


def test_given_a_new_policy_and_2_instances_when_previewed_then_the_first_heartbeat_scales_to_min() -> None:
    # GIVEN an endpoint at 2 instances that the autopilot has never seen (no memory)
    steps = preview(make_policy(), endpoint(primary=2), EndpointMemory(), MONDAY_MORNING)
    by_variant = [{change.variant: change for change in step.changes} for step in steps]
    # THEN the first heartbeat sees an edge (no window yet) and moves primary to minInstances: 2 -> 1,
    # the surprise the preview exists to show
    assert steps[0].label == "now (the first heartbeat after apply)"
    assert (by_variant[0]["primary"].instances_before, by_variant[0]["primary"].instances_after) == (2, 1)
    # ... at 08:00 Berlin the window asks for 4, at 20:00 it ends and primary goes back to 1
    assert (by_variant[1]["primary"].instances_before, by_variant[1]["primary"].instances_after) == (1, 4)
    assert (by_variant[2]["primary"].instances_before, by_variant[2]["primary"].instances_after) == (4, 1)
    # ... and the candidate, without windows, stays where it is throughout
    assert all(not variants["candidate"].changes_instances for variants in by_variant)


def test_given_a_preview_when_printed_then_each_edge_says_what_happens_and_why() -> None:
    lines = preview_lines(preview(make_policy(), endpoint(primary=2), EndpointMemory(), MONDAY_MORNING))
    assert lines[0] == "2026-11-23 06:00 UTC  now (the first heartbeat after apply)"
    assert lines[1] == "    primary: 2 -> 1 instance(s) (schedule edge: windows now [none] ask for 1)"
    assert "2026-11-23 07:00 UTC  primary/business-hours" in lines
    assert any(
        line.startswith("    primary: 1 -> 4 instance(s) (schedule edge: windows now [business-hours@")
        for line in lines
    )
    assert "    candidate: stays at 1 instance(s) (within bounds; nothing to do)" in lines
