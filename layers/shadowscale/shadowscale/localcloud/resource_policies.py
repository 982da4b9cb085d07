"""Whether a resource's policy (an SQS queue policy, a KMS key policy) lets an AWS service act on it.

The evaluation AWS documents for a request made by a service principal to a resource in the same account
(IAM User Guide, "Policy evaluation logic"): an explicit Deny in the policy wins; otherwise an Allow
whose Principal names the service (or "*"), whose Action and Resource match, and all of whose conditions
hold. Condition operators (IAM User Guide, "IAM JSON policy elements: Condition operators"): the String,
Arn and Bool families with their IfExists forms; a key missing from the request makes a positive
operator false and a negated one (StringNotEquals, ArnNotLike, ...) true; an IfExists operator is true
when the key is missing. Keys are case-insensitive. An operator not listed here raises, so no policy is
ever judged by a rule this module does not know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ServiceRequest:
    principal: str  # a service principal, e.g. "events.amazonaws.com"
    action: str  # e.g. "sqs:SendMessage"
    resource: str  # the resource's ARN
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys in the request


def _as_list(value: Any) -> list[Any]:  # noqa: ANN401
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _principal_matches(principal: Any, service: str) -> bool:  # noqa: ANN401
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return service in _as_list(principal.get("Service", [])) or "*" in _as_list(principal.get("AWS", []))
    return False


def _action_matches(statement: dict[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(_glob(p, action, case_sensitive=False) for p in _as_list(statement["NotAction"]))
    return any(_glob(p, action, case_sensitive=False) for p in _as_list(statement.get("Action", [])))


def _resource_matches(statement: dict[str, Any], resource: str) -> bool:
    if "NotResource" in statement:
        return not any(_glob(p, resource, case_sensitive=True) for p in _as_list(statement["NotResource"]))
    return any(_glob(p, resource, case_sensitive=True) for p in _as_list(statement.get("Resource", "*")))


_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda wanted, actual: wanted == actual,
    "StringEqualsIgnoreCase": lambda wanted, actual: wanted.lower() == actual.lower(),
    "StringLike": lambda wanted, actual: _glob(wanted, actual, case_sensitive=True),
    "ArnEquals": lambda wanted, actual: wanted == actual,
    "ArnLike": lambda wanted, actual: _glob(wanted, actual, case_sensitive=True),
    "Bool": lambda wanted, actual: wanted.lower() == actual.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, str]) -> bool:  # noqa: ANN401
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    actual = next((value for name, value in context.items() if name.lower() == key.lower()), None)
    values = [str(value) for value in _as_list(wanted)]
    if base in _NEGATED:
        if actual is None:
            return True
        return not any(_OPERATORS[_NEGATED[base]](value, actual) for value in values)
    if base not in _OPERATORS:
        raise NotImplementedError(f"condition operator {operator} is not evaluated by the local cloud")
    if actual is None:
        return if_exists
    return any(_OPERATORS[base](value, actual) for value in values)


def _statement_applies(statement: dict[str, Any], request: ServiceRequest) -> bool:
    if "NotPrincipal" in statement or not _principal_matches(statement.get("Principal"), request.principal):
        return False
    if not (_action_matches(statement, request.action) and _resource_matches(statement, request.resource)):
        return False
    return all(
        _condition_holds(operator, key, wanted, request.context)
        for operator, block in statement.get("Condition", {}).items()
        for key, wanted in block.items()
    )


def allows(policy: Mapping[str, Any] | None, request: ServiceRequest) -> bool:
    """True if the policy allows the service's request and nothing in it denies it."""
    if not policy:
        return False
    statements = [s for s in _as_list(policy.get("Statement", [])) if _statement_applies(s, request)]
    if any(s.get("Effect") == "Deny" for s in statements):
        return False
    return any(s.get("Effect") == "Allow" for s in statements)
