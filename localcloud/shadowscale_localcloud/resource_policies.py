"""Whether a resource's policy (an SQS queue policy, a KMS key policy) lets an AWS service act on it.

The evaluation AWS documents for a request made by a service principal to a resource in the same account
(IAM User Guide, "Policy evaluation logic"): an explicit Deny in the policy wins; otherwise an Allow
whose Principal names the service (or "*"), whose Action and Resource match, and all of whose conditions
hold. Condition operators (IAM User Guide, "IAM JSON policy elements: Condition operators"): the String,
Arn and Bool families with their IfExists forms; a key missing from the request makes a positive
operator false and a negated one (StringNotEquals, ArnNotLike, ...) true; an IfExists operator is true
when the key is missing. Keys are case-insensitive. Statements are matched and evaluated by the
evaluator identity policies use (iam_policies.py); an operator it does not know raises, so no policy
is ever judged by a rule the local cloud does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shadowscale_localcloud.iam_policies import evaluate, parse_policy


@dataclass(frozen=True)
class ServiceRequest:
    principal: str  # a service principal, e.g. "events.amazonaws.com"
    action: str  # e.g. "sqs:SendMessage"
    resource: str  # the resource's ARN
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys in the request


def _names_service(principal: Any, service: str) -> bool:  # noqa: ANN401
    if principal == "*":
        return True
    if isinstance(principal, dict):
        services = principal.get("Service", [])
        accounts = principal.get("AWS", [])
        return service in (services if isinstance(services, list) else [services]) or "*" in (
            accounts if isinstance(accounts, list) else [accounts]
        )
    return False


def allows(policy: Mapping[str, Any] | None, request: ServiceRequest) -> bool:
    """True if the policy allows the service's request and nothing in it denies it."""
    if not policy:
        return False
    statements = [s for s in parse_policy("resource policy", policy) if _names_service(s.principal, request.principal)]
    context = {key.lower(): (value,) for key, value in request.context.items()}
    return evaluate(statements, request.action, request.resource, context).allowed
