"""Powertools Idempotency around one domain call, keyed on what makes an event unique."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from shadowscale.capacity.decision import DecisionReport


class EventKey(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    event_id: str


class Dedup:
    """Runs an action once per event id; a duplicate gets the first run's report back, marked."""

    def __init__(self, persistence: BasePersistenceLayer, ttl_seconds: int) -> None:
        self._config = IdempotencyConfig(expires_after_seconds=ttl_seconds)
        self._once = idempotent_function(
            data_keyword_argument="key",
            persistence_store=persistence,
            config=self._config,
            output_serializer=PydanticSerializer(DecisionReport),
        )(self._run)
        self._ran = False

    def register_context(self, context: LambdaContext | None) -> None:
        if context is not None:
            self._config.register_lambda_context(context)

    def _run(self, key: EventKey, action: Callable[[], DecisionReport]) -> DecisionReport:
        self._ran = True
        return action()

    def once(self, event_id: str, action: Callable[[], DecisionReport]) -> tuple[DecisionReport, bool]:
        """(report, duplicate): duplicate is True when an earlier delivery already ran the action."""
        self._ran = False
        report: DecisionReport = self._once(key=EventKey(event_id=event_id), action=action)
        return report, not self._ran
