"""The IAM policy language, evaluated: what the local cloud's enforcement decides with. Pure, no moto.

What is evaluated, as the IAM User Guide's "Policy evaluation logic" describes it for a request within
one account:
- an explicit Deny in any applicable statement wins; otherwise an Allow grants; otherwise the request is
  implicitly denied;
- Action / NotAction match case-insensitively, with `*` and `?` wildcards;
- Resource / NotResource match the request's resource ARN case-sensitively, with the same wildcards;
- Condition: every operator of a block must hold, every key of an operator must hold, any one of a key's
  policy values may match. Operators: String(Not)Equals(IgnoreCase), String(Not)Like, Arn(Not)Equals,
  Arn(Not)Like (each of the six colon-delimited ARN parts matched on its own), Bool, Null, Numeric*;
  the `...IfExists` suffix (a missing key holds) and the `ForAnyValue:` / `ForAllValues:` set
  qualifiers. A key the request does not carry makes a positive operator false and a negated one true.
- Principal (resource-based policies): "*", an AWS account, role or session ARN.

An operator this module does not know raises `UnknownConditionOperator`: a policy that relies on one
must be noticed, not quietly evaluated as something else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from typing import Any

Context = Mapping[str, Sequence[str]]  # condition key (lower case) → the request's values for it


class UnknownConditionOperator(ValueError, NotImplementedError):
    """A Condition operator the local cloud does not evaluate."""


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class StatementRef:
    """Where a statement lives: its policy (inline name or managed ARN), its Sid and its position."""

    policy: str
    index: int
    sid: str = ""

    def __str__(self) -> str:
        return f"{self.policy}#{self.sid or self.index}"


@dataclass(frozen=True)
class Statement:
    ref: StatementRef
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    principal: Any = None  # resource-based policies only

    def covers(self, action: str, resource: str, context: Context) -> bool:
        """Whether this statement applies to the request (its effect is the caller's business)."""
        if self.not_actions:
            if any(action_matches(pattern, action) for pattern in self.not_actions):
                return False
        elif not any(action_matches(pattern, action) for pattern in self.actions):
            return False
        if self.not_resources:
            if any(resource_matches(pattern, resource) for pattern in self.not_resources):
                return False
        elif self.resources and not any(resource_matches(pattern, resource) for pattern in self.resources):
            return False
        return conditions_hold(self.conditions, context)


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    allowed_by: tuple[StatementRef, ...] = ()
    denied_by: tuple[StatementRef, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


def _as_tuple(value: Any) -> tuple[Any, ...]:  # noqa: ANN401
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(value)
    return (value,)


def parse_policy(name: str, document: str | Mapping[str, Any]) -> tuple[Statement, ...]:
    """A policy document's statements, each knowing where it came from."""
    return _parse_policy(name, document if isinstance(document, str) else json.dumps(document, sort_keys=True))


@cache
def _parse_policy(name: str, document: str) -> tuple[Statement, ...]:
    loaded = json.loads(document)
    statements = []
    for index, raw in enumerate(_as_tuple(loaded.get("Statement"))):
        statements.append(
            Statement(
                ref=StatementRef(policy=name, index=index, sid=str(raw.get("Sid", ""))),
                effect=str(raw.get("Effect", "Deny")),
                actions=tuple(str(a) for a in _as_tuple(raw.get("Action"))),
                not_actions=tuple(str(a) for a in _as_tuple(raw.get("NotAction"))),
                resources=tuple(str(r) for r in _as_tuple(raw.get("Resource"))),
                not_resources=tuple(str(r) for r in _as_tuple(raw.get("NotResource"))),
                conditions=raw.get("Condition") or {},
                principal=raw.get("Principal"),
            )
        )
    return tuple(statements)


def evaluate(statements: Iterable[Statement], action: str, resource: str, context: Context) -> Evaluation:
    """Explicit Deny, then Allow, then the implicit deny, over every statement given."""
    allowed: list[StatementRef] = []
    denied: list[StatementRef] = []
    for statement in statements:
        if statement.covers(action, resource, context):
            (denied if statement.effect == "Deny" else allowed).append(statement.ref)
    if denied:
        return Evaluation(Decision.EXPLICIT_DENY, tuple(allowed), tuple(denied))
    if allowed:
        return Evaluation(Decision.ALLOW, tuple(allowed))
    return Evaluation(Decision.IMPLICIT_DENY)


# --- matching --------------------------------------------------------------------------------------


@cache
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def action_matches(pattern: str, action: str) -> bool:
    return wildcard_matches(pattern, action, ignore_case=True)


def resource_matches(pattern: str, resource: str) -> bool:
    return wildcard_matches(pattern, resource)


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike / ArnEquals: the six colon-delimited parts are matched each on its own."""
    pattern_parts, arn_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(pattern_parts) != 6 or len(arn_parts) != 6:
        return False
    return all(wildcard_matches(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True))


# --- conditions ------------------------------------------------------------------------------------


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(compare: str) -> Any:  # noqa: ANN401
    def test(expected: str, actual: str) -> bool:
        left, right = _number(actual), _number(expected)
        if left is None or right is None:
            return False
        return {
            "eq": left == right,
            "lt": left < right,
            "le": left <= right,
            "gt": left > right,
            "ge": left >= right,
        }[compare]

    return test


_MATCHERS: dict[str, Any] = {
    "stringequals": lambda expected, actual: expected == actual,
    "stringequalsignorecase": lambda expected, actual: expected.lower() == actual.lower(),
    "stringlike": lambda expected, actual: wildcard_matches(expected, actual),
    "arnequals": arn_matches,
    "arnlike": arn_matches,
    "bool": lambda expected, actual: expected.lower() == actual.lower(),
    "numericequals": _numeric("eq"),
    "numericlessthan": _numeric("lt"),
    "numericlessthanequals": _numeric("le"),
    "numericgreaterthan": _numeric("gt"),
    "numericgreaterthanequals": _numeric("ge"),
}
_NEGATIONS = {
    "stringnotequals": "stringequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
    "stringnotlike": "stringlike",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
    "numericnotequals": "numericequals",
}


def conditions_hold(block: Mapping[str, Mapping[str, Any]], context: Context) -> bool:
    return all(
        _condition_holds(operator, key.lower(), [str(v) for v in _as_tuple(expected)], context.get(key.lower()))
        for operator, tests in block.items()
        for key, expected in tests.items()
    )


def _condition_holds(operator: str, key: str, expected: list[str], actual: Sequence[str] | None) -> bool:
    qualifier, _, name = operator.lower().rpartition(":")
    if qualifier not in ("", "foranyvalue", "forallvalues"):
        raise UnknownConditionOperator(operator)
    if_exists = name.endswith("ifexists")
    name = name.removesuffix("ifexists")
    present = bool(actual)
    if name == "null":
        return any((value.lower() == "true") == (not present) for value in expected)
    negated = name in _NEGATIONS
    matcher = _MATCHERS.get(_NEGATIONS.get(name, name))
    if matcher is None:
        raise UnknownConditionOperator(operator)
    if not present:
        return if_exists or qualifier == "forallvalues" or (negated and qualifier != "foranyvalue")
    assert actual is not None

    def one(value: str) -> bool:
        matched = any(matcher(pattern, value) for pattern in expected)
        return not matched if negated else matched

    if qualifier == "forallvalues":
        return all(one(value) for value in actual)
    return any(one(value) for value in actual)


# --- principals (resource-based policies) ----------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, as a resource-based policy's Principal element names it."""

    role_arn: str
    session_arn: str
    account: str

    def named_by(self, principal: Any) -> bool:  # noqa: ANN401
        """Whether the Principal element names this caller itself (not its account: see account_named_by)."""
        if principal == "*":
            return True
        if not isinstance(principal, Mapping):
            return False
        names = [str(name) for name in _as_tuple(principal.get("AWS"))]
        return "*" in names or self.role_arn in names or self.session_arn in names

    def account_named_by(self, principal: Any) -> bool:  # noqa: ANN401
        if not isinstance(principal, Mapping):
            return False
        names = [str(name) for name in _as_tuple(principal.get("AWS"))]
        return f"arn:aws:iam::{self.account}:root" in names or self.account in names
