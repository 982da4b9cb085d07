"""Pydantic models at every boundary: events, policies, state-machine input and output, reports."""

from __future__ import annotations

from pydantic import ValidationError


def field_problems(exc: ValidationError, prefix: str = "", whole: str = "(input)") -> str:
    """Every problem of a validation error on one line, each naming its field ('a.b: reason')."""
    return "; ".join(
        f"{prefix}{'.'.join(str(part) for part in err['loc']) or whole}: {err['msg']}" for err in exc.errors()
    )
