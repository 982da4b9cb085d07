"""Entry points of the capacity functions: parse, quarantine what cannot be understood, dedupe, decide.

Handlers stay one line: each calls one method here with the raw event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shadowscale.capacity.autopilot import Autopilot
from shadowscale.capacity.decision import DecisionReport
from shadowscale.capacity.dedup import Dedup
from shadowscale.capacity.events import parse_alarm_event, parse_deferred_change, parse_schedule_tick
from shadowscale.capacity.policy_handover import PolicyHandover
from shadowscale.shared.errors import InvalidEvent, InvalidPolicy
from shadowscale.shared.handover import is_handover, parse_handover
from shadowscale.shared.observability import logger, metrics
from shadowscale.shared.quarantine import Quarantine, set_aside

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord


@dataclass
class CapacityEntryPoints:
    autopilot: Autopilot
    dedup: Dedup
    quarantine: Quarantine
    handover: PolicyHandover

    def alarm(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        return self._single("alarm_scaler", event, context, self._alarm_action)

    def schedule_tick(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        return self._single("scheduled_scaler", event, context, self._tick_action)

    def deferred_batch(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """SQS batch of deferred changes; a change that still cannot be applied is a batch item failure."""
        # Imported here: Batch costs ~40 ms of import that the alarm and schedule functions never need.
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

        self.dedup.register_context(context)
        # A batch in which every change is still blocked is reported item by item, like any other.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

        def record_handler(record: SQSRecord) -> None:
            try:
                if is_handover(record.body):
                    handover = parse_handover(record.body)
                    self._once(handover.event_id, lambda: self.handover.on_promotion(handover))
                    return
                change = parse_deferred_change(record.body)
            except InvalidEvent as exc:
                self._reject("deferred_scaler", exc, {"messageId": record.message_id, "body": record.body})
                return
            self._once(change.event_id, lambda: self.autopilot.on_deferred(change))

        return dict(
            process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
        )

    # ---------------------------------------------------------------------------------------------

    def _alarm_action(self, event: dict[str, Any]) -> tuple[str, Callable[[], DecisionReport]]:
        transition = parse_alarm_event(event)
        return transition.event_id, lambda: self.autopilot.on_alarm(transition)

    def _tick_action(self, event: dict[str, Any]) -> tuple[str, Callable[[], DecisionReport]]:
        tick = parse_schedule_tick(event)
        return tick.event_id, lambda: self.autopilot.on_schedule_tick(tick)

    def _single(
        self,
        function: str,
        event: dict[str, Any],
        context: LambdaContext | None,
        prepare: Callable[[dict[str, Any]], tuple[str, Callable[[], DecisionReport]]],
    ) -> dict[str, Any]:
        self.dedup.register_context(context)
        try:
            event_id, action = prepare(event)
        except (InvalidEvent, InvalidPolicy) as exc:
            return self._reject(function, exc, event)
        return self._once(event_id, action).model_dump(mode="json")

    def _once(self, event_id: str, action: Callable[[], DecisionReport]) -> DecisionReport:
        report, duplicate = self.dedup.once(event_id, action)
        if duplicate:
            metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
            logger.info(
                "duplicate delivery: no second effect",
                extra={"source_event": event_id, "first_outcome": report.outcome},
            )
            report = report.model_copy(
                update={
                    "outcome": "duplicate",
                    "changes": (),
                    "notes": (f"duplicate delivery; nothing done (first delivery: {report.outcome})",),
                }
            )
        return report

    def _reject(self, function: str, exc: Exception, event: object) -> dict[str, Any]:
        set_aside(self.quarantine, function, exc, event)
        return {"outcome": "rejected", "reason": str(exc)}
