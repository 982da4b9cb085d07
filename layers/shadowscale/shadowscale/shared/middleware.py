"""Handler middleware shared by every function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.middleware_factory import lambda_handler_decorator
from aws_lambda_powertools.utilities.typing import LambdaContext

from shadowscale.shared.settings import get_settings


@lambda_handler_decorator
def settings_validated(
    handler: Callable[[dict[str, Any], LambdaContext], dict[str, Any]],
    event: dict[str, Any],
    context: LambdaContext,
) -> dict[str, Any]:
    """Fail fast, before any logging context or AWS call, when the deployment's settings are wrong."""
    get_settings()
    return handler(event, context)
