"""Pydantic models at every boundary: events, policies, state-machine input and output, reports."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from shadowscale.shared.errors import InvalidEvent


def _as_pydantic_says(error: ErrorDetails) -> str:
    return f": {error['msg']}"


def field_problems(
    exc: ValidationError,
    prefix: str = "",
    whole: str = "(input)",
    problem: Callable[[ErrorDetails], str] = _as_pydantic_says,
) -> str:
    """Every problem of a validation error on one line, each naming its field ('a.b: reason'); `problem`
    words what follows the field's name."""
    return "; ".join(
        f"{prefix}{'.'.join(str(part) for part in err['loc']) or whole}{problem(err)}" for err in exc.errors()
    )


def parse_body[M: BaseModel](model: type[M], body: object, what: str) -> M:
    """A queue body (JSON text or already decoded) as `model`; InvalidEvent naming the field otherwise."""
    try:
        if isinstance(body, str | bytes):
            return model.model_validate_json(body)
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidEvent(describe_validation_error(exc, what)) from exc


# SageMaker names: endpoint/variant names are 1-63 chars of [a-zA-Z0-9-]; alarm names are freer.
SAGEMAKER_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """'invalid <what>: a.b: reason; …', in the one formatter every boundary uses."""
    return f"invalid {what}: {field_problems(exc, whole='(document)')}"
